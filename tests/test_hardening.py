"""Hardening: spreadsheet-safe exports, caches that prove themselves, and messages instead of crashes."""

from __future__ import annotations

import csv
import io
import json
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest

from explorer.cli import main
from explorer.data.corpus import Corpus, Document, corpus_from_text
from explorer.errors import ExplorerError
from explorer.interpret.pair import encode_pair
from explorer.pipeline.compare import compare
from explorer.paths import checksum_path
from explorer.caches import CORPUS_INDEXES
from explorer.rankers.bi_encoder import BiEncoder, _disk_path
from explorer.views.export import write_downloads

FORMULAS = ["=1+1", "+SUM(A1:A2)", "-2+3", "@cmd", "=HYPERLINK(\"http://127.0.0.1\")"]


def test_csv_export_cells_never_start_a_formula_and_json_stays_exact():
    corpus = Corpus([Document(id=text, text=f"{text} cats purr") for text in FORMULAS], name="formulas")
    result = compare("cats", corpus, top_k=3, score_all=True, precision="fp32")
    csv_path, json_path = write_downloads(result)
    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(FORMULAS)
    for row in rows:
        for column in ("doc_id", "text"):
            assert not row[column].startswith(("=", "+", "-", "@")), row
            assert row[column].lstrip("'") in {text for text in FORMULAS} | {f"{t} cats purr" for t in FORMULAS}
        float(row["first_stage_score"]), float(row["cross_logit"])  # numbers stay numbers
    data = json.loads(open(json_path, encoding="utf-8").read())
    assert {hit["id"] for hit in data["cross_encoder_full"]} == set(FORMULAS)


def test_same_size_corrupted_embedding_cache_is_detected_and_rebuilt(bi_model, tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path))
    corpus = corpus_from_text("Cats purr.\nDogs bark.\nThe Berlin Wall fell in 1989.\nPython is a language.")
    encoder = BiEncoder(bi_model, "fp32")
    CORPUS_INDEXES.clear()
    first, _ = encoder.index_corpus(corpus.texts, corpus.fingerprint, persist=True)
    path = _disk_path(encoder, corpus.fingerprint)
    assert path.is_file() and checksum_path(path).is_file()
    path.write_bytes(b"\0" * path.stat().st_size)  # same size, zeros: np.load alone would not notice
    CORPUS_INDEXES.clear()
    result = compare("cats", corpus, top_k=2, precision="fp32", persist_embeddings=True)
    assert any("damaged" in note for note in result.notes)
    CORPUS_INDEXES.clear()
    again, from_disk = encoder.index_corpus(corpus.texts, corpus.fingerprint, persist=True)
    assert from_disk and again.cache_note is None  # the rebuilt file passes its check
    np.testing.assert_array_equal(again.embeddings, first.embeddings)
    CORPUS_INDEXES.clear()


@pytest.mark.parametrize("query", ["\u200b\u200b", " \ufeff ", "\u00ad"])
def test_invisible_queries_are_empty(query):
    with pytest.raises(ExplorerError, match="empty"):
        compare(query, corpus_from_text("a\nb"), top_k=1)


def test_lone_surrogate_is_a_message():
    with pytest.raises(ExplorerError, match="not valid Unicode"):
        compare("cats \ud800", corpus_from_text("a\nb"), top_k=1)


@pytest.mark.parametrize("top_k", [2.5, "two", None, "1e400x"])
def test_top_k_must_be_a_whole_number(top_k):
    with pytest.raises(ExplorerError, match="whole number"):
        compare("cats", corpus_from_text("a\nb\nc"), top_k=top_k)


def test_whole_floats_and_numeric_strings_are_accepted():
    assert compare("cats", corpus_from_text("a\nb\nc"), top_k=2.0, precision="fp32").top_k == 2
    assert compare("cats", corpus_from_text("a\nb\nc"), top_k="2", precision="fp32").top_k == 2


def test_a_query_too_long_for_a_pair_is_a_message_not_a_truncation_error(cross_model):
    with pytest.raises(ExplorerError, match="query tokens"):
        encode_pair(cross_model, "word " * 300, "A short document.")


def test_a_huge_document_is_cut_before_tokenizing_and_marked(cross_model):
    pair = encode_pair(cross_model, "cats", "Cats purr. " * 10_000)
    assert pair.truncated and pair.document_chars_cut > 0 and len(pair.document) <= 5000


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    "argv",
    [
        ["compare", "--query", "cats \ud800", "--corpus", "builtin:negation"],
        ["compare", "--query", "cats", "--corpus", "builtin:negation", "--cross-encoder", "x" * 500],
        ["inspect", "--query", "word " * 300, "--doc", "A short document."],
    ],
    ids=["lone-surrogate", "model-name-500-chars", "inspect-query-300-tokens"],
)
def test_cli_crash_cases_exit_2_with_one_line(argv):
    code, out, err = cli(*argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_a_long_document_is_occluded_in_runs_each_a_true_rescoring(cross_model):
    from explorer.budgets import MAX_OCCLUSION_PASSES
    from explorer.interpret.attribution import occlusion_attribution, remove_span
    from explorer.rankers.cross_encoder import CrossEncoder

    scorer = CrossEncoder(cross_model, "fp32")
    document = " ".join(f"word{i} of the capital city Paris in France." for i in range(60))  # ~420 words
    pair = encode_pair(cross_model, "what is the capital of France?", document)
    attribution = occlusion_attribution(scorer, pair)
    spans = pair.document_word_spans()
    assert len(attribution.words) <= MAX_OCCLUSION_PASSES < len(spans)
    assert attribution.words_per_span == -(-len(spans) // MAX_OCCLUSION_PASSES)
    # The runs tile the kept words in order, and each delta is the rescoring of that run removed.
    assert attribution.words[0].start == spans[0][0] and attribution.words[-1].end == spans[-1][1]
    for run in (attribution.words[0], attribution.words[len(attribution.words) // 2]):
        edited = remove_span(document, run.start, run.end)
        rescored = scorer.score_query(pair.query, [edited]).logits[0]
        assert run.occluded_logit == pytest.approx(float(rescored), abs=1e-4)


@pytest.mark.parametrize("spec_name", ["CROSS_ENCODER", "BGE_SMALL", "COLBERT_BACKBONE"])
def test_a_damaged_rebuilt_model_is_rebuilt(tmp_path, monkeypatch, spec_name):
    """The cross-encoder, bge and the ColBERT backbone alike: a file whose bytes changed fails its
    checksum on the next load and the model is rebuilt from the ONNX file, byte for byte."""
    from explorer.engine import loading, onnx_rebuild
    from explorer.engine.onnx_rebuild import is_complete_build

    spec = getattr(onnx_rebuild, spec_name)
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path))
    monkeypatch.setattr(loading, "_verified_builds", set())  # this cache is new: nothing verified yet
    folder = loading.offline_rebuilt_dir(spec)
    assert folder.parent.parent == tmp_path  # built here, not in the shared cache
    weights = folder / "model.safetensors"
    assert is_complete_build(folder, spec)
    original = weights.read_bytes()
    with weights.open("r+b") as handle:  # flip bytes inside, size unchanged
        handle.seek(len(original) // 2)
        handle.write(b"\xff" * 64)
    assert not is_complete_build(folder, spec)
    monkeypatch.setattr(loading, "_verified_builds", set())  # the next process, which checks the build again
    rebuilt = loading.offline_rebuilt_dir(spec)
    assert rebuilt == folder and is_complete_build(rebuilt, spec) and weights.read_bytes() == original


def test_a_pasted_corpus_with_a_lone_surrogate_is_a_message():
    with pytest.raises(ExplorerError, match="pasted corpus.*not valid Unicode"):
        corpus_from_text("Cats purr.\nDogs \udc80 bark.")


def test_the_query_cap_is_2000_characters_in_compare_and_inspect(cross_model):
    """The documented cap: 2,000 characters pass the character check, 2,001 are refused by name."""
    from explorer.interpret.pair import encode_pair
    from explorer.pipeline.stages import check_query

    assert check_query("a" * 2000) == "a" * 2000
    assert check_query("  " + "a" * 2000 + "  ") == "a" * 2000  # counted after the surrounding blanks go
    for refuse in (check_query, lambda query: encode_pair(cross_model, query, "Cats purr.")):
        with pytest.raises(ExplorerError, match=r"2,001 characters long; the limit is 2,000"):
            refuse("a" * 2001)


def test_a_query_too_long_for_a_pair_is_refused_in_compare_too():
    # 1,500 characters pass the character limit, but 300 tokens would push the documents out of every pair.
    with pytest.raises(ExplorerError, match="query tokens"):
        compare("word " * 300, corpus_from_text("Cats purr.\nDogs bark."), top_k=1)
