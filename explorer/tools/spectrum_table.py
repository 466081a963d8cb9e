"""nDCG@10 of every ranker and pipeline on every shipped labelled set: the table in corpora/README.md.

`spectrum_table()` runs `pipeline/experiment.py:run_experiment` (each ranker bound once,
re-ranker pairs scored once, measures by trec_eval through `score_rankings`) at fp32 over each
set, once with the default bi-encoder (all-MiniLM-L6-v2, also inside hybrid) and once with
bge-small as the bi-encoder; `format_markdown()` prints the table. A developer tool, not a test:

    .venv/bin/python -c "from explorer.tools.spectrum_table import main; main()"
"""

from __future__ import annotations

import sys
import time

from explorer.engine.catalog import BGE_SMALL, DEFAULT_BI_ENCODER

# Column label -> (pipeline as run_experiment names it, bi-encoder it runs with).
COLUMNS = {
    "bm25": ("bm25", DEFAULT_BI_ENCODER),
    "bi MiniLM": ("bi", DEFAULT_BI_ENCODER),
    "bi bge": ("bi", BGE_SMALL),
    "hybrid": ("hybrid", DEFAULT_BI_ENCODER),
    "bi+late": ("bi+late", DEFAULT_BI_ENCODER),
    "bi+cross": ("bi+cross", DEFAULT_BI_ENCODER),
    "bi+cross@int8": ("bi+cross@int8", DEFAULT_BI_ENCODER),
    "bm25+cross": ("bm25+cross", DEFAULT_BI_ENCODER),
    "bge+cross": ("bi+cross", BGE_SMALL),
    "hybrid+cross": ("hybrid+cross", DEFAULT_BI_ENCODER),
    "hybrid+late+cross": ("hybrid+late+cross", DEFAULT_BI_ENCODER),
}
SETS = ("numbers_entities", "negation", "lexical_overlap", "topic_vs_answer", "few_shared_words", "ambiguity",
        "python_docs")


def spectrum_table(sets=SETS, top_k: int = 10, precision: str = "fp32", progress=print,
                   columns: dict | None = None) -> dict:
    """{set: {"queries", "docs", "seconds", "ndcg": {column: nDCG@10}}} for every column of `columns`
    (default COLUMNS); a column left out of a set is shown as "not run"."""
    columns = COLUMNS if columns is None else columns
    from explorer.data.builtin_corpora import load_set
    from explorer.pipeline.experiment import run_experiment

    table = {}
    for name in sets:
        started = time.perf_counter()
        labelled = load_set(name)
        ndcg = {}
        for bi_encoder in dict.fromkeys(bi for _, bi in columns.values()):
            wanted = {label: pipeline for label, (pipeline, bi) in columns.items() if bi == bi_encoder}
            report = run_experiment(labelled.corpus, labelled.queries, labelled.qrels,
                                    list(dict.fromkeys(wanted.values())), top_k=top_k, bi_encoder=bi_encoder,
                                    precision=precision, persist_embeddings=True)
            for label, pipeline in wanted.items():
                ndcg[label] = report.metrics[pipeline]["nDCG@10"]
            queries = report.query_count
        table[name] = {"queries": queries, "docs": len(labelled.corpus), "ndcg": ndcg,
                       "seconds": round(time.perf_counter() - started, 1)}
        progress(f"{name}: {table[name]}")
    return table


def format_markdown(table: dict) -> str:
    """The spectrum table as Markdown: one row per set (documents, queries), one nDCG@10 column per ranker,
    the best in each row bold; "not run" where a ranker was left out."""
    labels = list(COLUMNS)
    lines = ["| set (docs, queries) | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for name, row in table.items():
        best = max(row["ndcg"].values())
        cells = ["not run" if l not in row["ndcg"] else
                 f"**{row['ndcg'][l]:.3f}**" if abs(row["ndcg"][l] - best) < 5e-4 else f"{row['ndcg'][l]:.3f}"
                 for l in labels]
        lines.append(f"| {name} ({row['docs']:,}, {row['queries']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# python_docs (6,125 passages): encoding it at fp32 takes minutes per bi-encoder on 2 cores, so
# the bge-small columns are left out there.
WITHOUT_BGE = {label: spec for label, spec in COLUMNS.items() if spec[1] != BGE_SMALL}


def main(argv: list[str] | None = None) -> None:
    """Compute the spectrum table for the sets named in `argv` (default: all) and print it as Markdown;
    progress goes to stderr."""
    sets = (argv if argv is not None else sys.argv[1:]) or SETS
    table = {}
    for name in sets:
        table.update(spectrum_table([name], progress=lambda m: print(m, file=sys.stderr, flush=True),
                                    columns=WITHOUT_BGE if name == "python_docs" else COLUMNS))
    print(format_markdown(table))
