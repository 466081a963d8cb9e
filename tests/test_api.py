"""The named `compare` endpoint, called with gradio_client against the app on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.data.teaching_examples import EXAMPLES, FEW_SHARED_WORDS

ROOT = Path(__file__).resolve().parent.parent
QUERY, _, _ = EXAMPLES[1]  # the teaching example whose answer shares few words with the question
DOCUMENTS = FEW_SHARED_WORDS.split("\n")
OUTPUT_NAMES = [
    "summary", "board", "agreement", "timings", "scatter", "slope",
    "projection_md", "projection_plot", "downloads", "json", "inspect_pick",
]  # the order of the endpoint's outputs (run_comparison's, less the session state clients never see)


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "plants.txt"
    path.write_text("\n".join(DOCUMENTS) + "\n", encoding="utf-8")
    return path


def _comparison_json(outputs) -> dict:
    """The comparison dict among the endpoint's outputs (the only one with both rankings)."""
    found = [o for o in outputs if isinstance(o, dict) and "bi_encoder" in o and "cross_encoder" in o]
    assert len(found) == 1, outputs
    return found[0]


def _cli_json(corpus: Path, *flags: str) -> dict:
    completed = subprocess.run(
        [sys.executable, "-m", "explorer", "compare", "--query", QUERY, "--corpus", str(corpus), "--json", *flags],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=True,
    )
    return json.loads(completed.stdout)


def _ids(hits) -> list[str]:
    return [hit["id"] for hit in hits]


def test_compare_endpoint_is_named_in_the_api(client):
    info = client.view_api(print_info=False, return_format="dict")
    assert "/compare" in info["named_endpoints"]
    names = [p["parameter_name"] for p in info["named_endpoints"]["/compare"]["parameters"]]
    assert names[:3] == ["query", "corpus_source", "corpus_text"]


def test_upload_ranking_equals_the_command_line(client, corpus_file):
    from gradio_client import handle_file

    outputs = client.predict(
        query=QUERY, corpus_source="Upload", corpus_file=handle_file(str(corpus_file)),
        top_k=4, precision="fp32", api_name="/compare",
    )
    app = _comparison_json(outputs)
    cli = _cli_json(corpus_file, "--top-k", "4", "--precision", "fp32")
    assert _ids(app["bi_encoder"]) == _ids(cli["bi_encoder"])
    assert _ids(app["cross_encoder"]) == _ids(cli["cross_encoder"])
    for ours, theirs in zip(app["cross_encoder"], cli["cross_encoder"]):
        assert ours["score"] == pytest.approx(theirs["score"], abs=1e-4)
        assert ours["move"] == theirs["move"]
    assert app["precision"] == {"bi_encoder": "fp32 on cpu", "cross_encoder": "fp32 on cpu"}
    # What the example teaches: the answer shares few words with the question, so the
    # bi-encoder does not put it first, and the cross-encoder does.
    assert app["bi_encoder"][0]["id"] != "1"
    assert app["cross_encoder"][0]["id"] == "1" and app["cross_encoder"][0]["move"] > 0


def test_pasted_corpus_with_score_all_equals_the_command_line(client, corpus_file):
    outputs = client.predict(
        query=QUERY, corpus_source="Paste", corpus_text="\n".join(DOCUMENTS),
        top_k=3, score_all=True, api_name="/compare",
    )
    app = _comparison_json(outputs)
    cli = _cli_json(corpus_file, "--top-k", "3", "--all")
    assert _ids(app["bi_encoder"]) == _ids(cli["bi_encoder"])
    assert _ids(app["cross_encoder_full"]) == _ids(cli["cross_encoder_full"])
    assert len(app["cross_encoder_full"]) == len(DOCUMENTS)
    # The board's whole-corpus column is the cross-encoder's top-3 over the whole corpus, with NEW badges
    # exactly for the ones the bi-encoder's top-3 missed (the re-ranked columns mark moves, never NEW).
    cross_html = outputs[OUTPUT_NAMES.index("board")]
    new_ids = [h["id"] for h in app["cross_encoder_full"][:3] if not h["in_first_stage_top_k"]]
    assert cross_html.count("move-new'") == len(new_ids)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"query": "   "}, "The query is empty"),
        ({"corpus_text": "\n\n"}, "The corpus is empty"),
        ({"bi_encoder": "../../etc/passwd"}, "is not a model id"),
        ({"bi_encoder": "/tmp"}, "is not a model id"),
        ({"cross_encoder": "cross-encoder/ms-marco-MiniLM-L-6-v2"}, "available offline: cross-encoder/ms-marco-MiniLM-L-12-v2"),
        ({"cross_encoder": "sentence-transformers/all-MiniLM-L6-v2"}, "is not a cross-encoder"),
        ({"corpus_source": "Built-in", "builtin_corpus": "../corpora"}, "not in the list of choices|Unknown built-in corpus"),
    ],
)
def test_bad_input_is_an_error_with_the_explorer_message(client, overrides, message):
    from gradio_client.exceptions import AppError

    arguments = dict(query=QUERY, corpus_source="Paste", corpus_text="\n".join(DOCUMENTS), top_k=3)
    arguments.update(overrides)
    with pytest.raises(AppError, match=message):
        client.predict(**arguments, api_name="/compare")


ROUNDED = 1e-4 / 2 + 1e-9  # the Evaluate tables show 4 decimal places


def test_evaluate_endpoint_gives_the_command_lines_numbers(client):
    """`/evaluate` (the Evaluate tab's three stages) through gradio_client: its table of means and its
    per-query table hold the numbers `eval --json` computes in another process, rounded as shown."""
    summary, metrics, _chart, per_query = client.predict(  # each table as gradio_client returns it
        corpus_name="negation", top_k=5, score_all=False, api_name="/evaluate")
    completed = subprocess.run(
        [sys.executable, "-m", "explorer", "eval", "--corpus", "builtin:negation", "--top-k", "5", "--skip-full", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=True,
    )
    cli = json.loads(completed.stdout)
    assert "negation" in summary
    measures = list(cli["metrics"]["bi_encoder"])
    rows = {row[0]: row[1:] for row in _table(metrics)}
    assert len(rows) == 3  # (a), (b), and (c) shown as skipped
    # Both sides run the same engines on this CPU; the page rounds to 4 places.
    for prefix, stage in (("(a)", "bi_encoder"), ("(b)", "rerank")):
        (shown,) = [values for label, values in rows.items() if label.startswith(prefix)]
        assert shown == pytest.approx([cli["metrics"][stage][m] for m in measures], abs=ROUNDED)
    assert cli["metrics"]["cross_encoder_full"] is None and any("skipped" in label for label in rows)
    by_id = {row["query_id"]: row for row in cli["per_query"]}
    assert sorted(str(row[0]) for row in _table(per_query)) == sorted(by_id)
    for row in _table(per_query):
        reference = by_id[str(row[0])]
        assert row[2:5] == pytest.approx([reference["bi_encoder"]["nDCG@10"], reference["rerank"]["nDCG@10"],
                                          reference["change"]["nDCG@10"]], abs=ROUNDED)


def _table(dataframe) -> list[list]:
    """The rows of a gr.Dataframe output as gradio_client returns it: an update {"value": {"headers",
    "data", ...}} or the table itself."""
    assert isinstance(dataframe, dict), dataframe
    return dataframe.get("value", dataframe)["data"]
