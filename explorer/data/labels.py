"""Bring your own labels: a corpus, its queries and relevance labels, checked as one set.

Either three files (corpus .jsonl/.csv/.txt, queries .jsonl/.csv/.txt, qrels as TREC lines
``qid 0 docid grade``, jsonl ``{"query_id", "doc_id", "relevance"}`` or BEIR's tsv with the
header ``query-id corpus-id score``), or one zip in the BEIR layout: ``corpus.jsonl``
(``_id``, ``text``, ``title``), ``queries.jsonl`` (``_id``, ``text``) and ``qrels/test.tsv``,
at the zip's top or inside one folder. Every problem raises `ExplorerError` naming the file
and line; the set is returned only once all of it has been read and checked, so nothing is
ever half-loaded. Sizes and counts are capped (see budgets.py). Judgments that name a document
missing from the corpus, or a query missing from the queries file, load (real BEIR sets hold
them); the evaluation counts and names them (`pipeline/measures.py:labelled_queries`).
"""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from explorer.budgets import (
    MAX_CORPUS_BYTES,
    MAX_DOCUMENTS,
    MAX_EVAL_QUERIES,
    MAX_LABELS_FILE_BYTES,
    MAX_LABELS_ZIP_BYTES,
)
from explorer.data.corpus import Corpus, Qrels, Query, _decode, parse_qrels, read_corpus, read_corpus_bytes
from explorer.errors import ExplorerError

BEIR_MEMBERS = ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv")


@dataclass
class LabelledData:
    """A corpus with labelled queries and qrels (query id -> document id -> grade), and notes for the user
    about what reading them dropped or assumed."""
    corpus: Corpus
    queries: list[Query]
    qrels: Qrels
    notes: list[str] = field(default_factory=list)


def _read_small(path: Path, limit: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > limit:
            raise ExplorerError(f"{path.name} is {size / 1e6:.1f} MB; the limit is {limit / 1e6:.1f} MB.")
        return path.read_bytes()
    except OSError as error:
        raise ExplorerError(f"Cannot read {path}: {error.strerror or error}.") from None


def _check(corpus: Corpus, queries: list[Query], qrels: Qrels, where: dict[tuple[str, str], int],
           queries_name: str, qrels_name: str) -> LabelledData:
    """The set as read: a judgment naming a document missing from the corpus, or a query missing
    from the queries file, is kept, and the evaluation counts and names it (`pipeline/evaluate.py`:
    a relevant missing document counts as relevant and unretrievable, as in trec_eval)."""
    labelled = [q for q in queries if q.id in qrels]
    if len(labelled) > MAX_EVAL_QUERIES:
        raise ExplorerError(
            f"{qrels_name} labels {len(labelled):,} queries; the limit is {MAX_EVAL_QUERIES:,}. Use a sample."
        )
    if not labelled:
        first = min(where.items(), key=lambda item: item[1])
        raise ExplorerError(
            f"{qrels_name}: no judged query is in {queries_name} (line {first[1]} names query {first[0][0]!r}); "
            "check that the two files belong together."
        )
    notes = []
    if len(labelled) < len(queries):
        unjudged = [q.id for q in queries if q.id not in qrels]
        shown = ", ".join(repr(i) for i in unjudged[:5]) + (f" and {len(unjudged) - 5} more" if len(unjudged) > 5 else "")
        notes.append(f"{len(unjudged)} query(ies) in {queries_name} have no judgments and were left out: {shown}.")
    return LabelledData(corpus, labelled, qrels, notes)


def labelled_in_memory(corpus: Corpus, queries: list[Query], qrels: Qrels, name: str) -> LabelledData:
    """A labelled set made in memory (a workbench case's judgments), checked as the files are (`_check`): queries
    without judgments are left out with a note. `name` says where it came from in messages."""
    if not qrels:
        raise ExplorerError(f"{name} has no judgments yet: grade some documents first.")
    where = {(qid, doc): number for number, (qid, doc) in
             enumerate(((qid, doc) for qid, grades in qrels.items() for doc in grades), start=1)}
    return _check(corpus, queries, qrels, where, f"the queries of {name}", f"the judgments of {name}")


def _queries_from(data: bytes, name: str) -> list[Query]:
    parsed = read_corpus_bytes(data, name, max_documents=MAX_DOCUMENTS, max_bytes=MAX_LABELS_FILE_BYTES)
    return [Query(doc.id, doc.text) for doc in parsed.documents]


def read_labels(corpus_path: str | os.PathLike, queries_path: str | os.PathLike | None = None,
                qrels_path: str | os.PathLike | None = None) -> LabelledData:
    """The three files, or a BEIR zip (whose queries and qrels the other two paths replace, when given)."""
    corpus_path = Path(corpus_path)
    if corpus_path.suffix.lower() == ".zip":
        return read_beir_zip(corpus_path, queries_path, qrels_path)
    if queries_path is None or qrels_path is None:
        raise ExplorerError("Give --queries and --qrels with a corpus file (only a BEIR .zip holds its own).")
    corpus = read_corpus(corpus_path)
    queries_path, qrels_path = Path(queries_path), Path(qrels_path)
    queries = _queries_from(_read_small(queries_path, MAX_LABELS_FILE_BYTES), queries_path.name)
    qrels, where = parse_qrels(_decode(_read_small(qrels_path, MAX_LABELS_FILE_BYTES), qrels_path.name), qrels_path.name)
    return _check(corpus, queries, qrels, where, queries_path.name, qrels_path.name)


def read_beir_zip(path: str | os.PathLike, queries_path=None, qrels_path=None) -> LabelledData:
    """A labelled set from a BEIR zip holding corpus.jsonl, queries.jsonl and qrels/test.tsv (at its top or in
    one folder); `queries_path` / `qrels_path` replace the zip's own. Every member is size-checked before
    and while unpacking; raises ExplorerError (one message naming the file) for an unreadable, damaged,
    oversized or incomplete zip or bad content."""
    path = Path(path)
    data = _read_small(path, MAX_LABELS_ZIP_BYTES)


    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = {info.filename: info for info in archive.infolist() if not info.is_dir()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as error:
        raise ExplorerError(f"{path.name} is not a readable zip file ({error}).") from None
    found = {}
    for wanted in BEIR_MEMBERS:
        matches = [n for n in members if n == wanted or
                   (n.endswith("/" + wanted) and len(PurePosixPath(n).parts) == len(PurePosixPath(wanted).parts) + 1)]
        if len(matches) > 1:
            raise ExplorerError(f"{path.name} holds {wanted} more than once ({', '.join(sorted(matches))}).")
        found[wanted] = matches[0] if matches else None
    needed = ["corpus.jsonl"] + (["queries.jsonl"] if queries_path is None else []) + \
        (["qrels/test.tsv"] if qrels_path is None else [])
    missing = [w for w in needed if found[w] is None]
    if missing:
        raise ExplorerError(
            f"{path.name} lacks {', '.join(missing)}: a BEIR zip holds corpus.jsonl, queries.jsonl and "
            f"qrels/test.tsv (at its top or in one folder)."
        )

    def member(wanted: str, limit: int) -> tuple[bytes, str]:
        info = members[found[wanted]]
        label = f"{path.name}:{info.filename}"
        if info.file_size > limit:
            raise ExplorerError(f"{label} is {info.file_size / 1e6:.1f} MB unpacked; the limit is {limit / 1e6:.1f} MB.")
        try:
            with archive.open(info) as handle:
                content = handle.read(limit + 1)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError) as error:
            raise ExplorerError(f"{label} cannot be unpacked ({error}); the zip is damaged.") from None
        if len(content) > limit:
            raise ExplorerError(f"{label} is larger unpacked than the limit of {limit / 1e6:.1f} MB.")
        return content, label

    content, label = member("corpus.jsonl", MAX_CORPUS_BYTES)
    corpus = read_corpus_bytes(content, label)
    if queries_path is None:
        content, queries_name = member("queries.jsonl", MAX_LABELS_FILE_BYTES)
        queries = _queries_from(content, queries_name)
    else:
        queries_name = Path(queries_path).name
        queries = _queries_from(_read_small(Path(queries_path), MAX_LABELS_FILE_BYTES), queries_name)
    if qrels_path is None:
        content, qrels_name = member("qrels/test.tsv", MAX_LABELS_FILE_BYTES)
    else:
        qrels_name = Path(qrels_path).name
        content = _read_small(Path(qrels_path), MAX_LABELS_FILE_BYTES)
    qrels, where = parse_qrels(_decode(content, qrels_name), qrels_name)
    return _check(corpus, queries, qrels, where, queries_name, qrels_name)


def write_corpus_jsonl(corpus: Corpus, path: str | os.PathLike) -> Path:
    """The corpus as JSON lines ``{"id", "text"[, "title"]}``, which `read_corpus` reads back to the same
    documents (the Compare tab opens an uploaded labelled corpus this way)."""
    import json

    path = Path(path)
    lines = []
    for doc in corpus.documents:
        record = {"id": doc.id, "text": doc.text}
        if doc.title:
            record["title"] = doc.title
        lines.append(json.dumps(record, ensure_ascii=False))
    try:
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    except OSError as error:
        raise ExplorerError(f"Cannot write the corpus to {path}: {error.strerror or error}.") from None
    return path


def labels_from_inputs(source: str, builtin: str | None, labels_zip: str | None, corpus_file: str | None,
                       queries_file: str | None, qrels_file: str | None) -> LabelledData:
    """The labelled set the user meant: a shipped one by name, one uploaded BEIR zip (whose queries or
    qrels an uploaded file replaces), or three uploaded files. Raises ExplorerError for anything
    else, and for unreadable or inconsistent labels (`read_labels`)."""
    if source != "Upload":
        from explorer.data.builtin_corpora import load_set  # builtin_corpora reads labels too

        shipped = load_set(builtin or "")
        return LabelledData(shipped.corpus, list(shipped.queries), shipped.qrels)
    if labels_zip:
        return read_labels(labels_zip, queries_file, qrels_file)
    if corpus_file and queries_file and qrels_file:
        return read_labels(corpus_file, queries_file, qrels_file)
    raise ExplorerError(
        "Upload one BEIR zip (corpus.jsonl, queries.jsonl, qrels/test.tsv), or all three of a corpus, "
        "a queries and a qrels file."
    )
