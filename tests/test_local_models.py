"""Local models registered at start (`python app.py --model PATH`): offered in the pickers by a
"local:NAME" id, scored exactly like the same weights under their own name, and an ONNX file
run by onnxruntime like the shipped int8 original."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from explorer.engine import catalog
from explorer.engine.catalog import DEFAULT_BI_ENCODER, DEFAULT_CROSS_ENCODER
from explorer.engine.loading import offline_cross_encoder_dir, register_model_path, resolve_source
from explorer.engine.onnx_rebuild import CROSS_ENCODER, source_dir
from explorer.errors import ExplorerError
from explorer.pipeline.compare import first_stage_ranker, reranker

QUERY = "what is the capital of France?"
DOCUMENTS = ["Paris is the capital of France.", "London is the capital of England.", "Cats purr when content."]


@pytest.fixture(autouse=True)
def empty_registry(monkeypatch):
    """Each test registers into a registry of its own: the process-wide one stays as it was."""
    monkeypatch.setattr(catalog, "_local_models", {})


def test_a_cross_encoder_folder_scores_like_the_same_weights_by_name(tmp_path):
    folder = shutil.copytree(offline_cross_encoder_dir(), tmp_path / "my-reranker")
    choice = register_model_path(str(folder))
    assert (choice.id, choice.kind) == ("local:my-reranker", "cross")
    assert choice in catalog.model_choices("cross") and choice not in catalog.model_choices("bi")
    ours = reranker("cross", choice.id, "fp32", False)
    assert "local cross-encoder folder" in ours.info.name
    expected = reranker("cross", DEFAULT_CROSS_ENCODER, "fp32", False).score_query(QUERY, DOCUMENTS).scores
    np.testing.assert_allclose(ours.score_query(QUERY, DOCUMENTS).scores, expected, rtol=0, atol=1e-5)


def test_a_bi_encoder_folder_embeds_like_the_same_weights_by_name(tmp_path):
    folder = shutil.copytree(resolve_source(DEFAULT_BI_ENCODER, "bi"), tmp_path / "my-encoder")
    choice = register_model_path(str(folder))
    assert (choice.id, choice.kind) == ("local:my-encoder", "bi")
    ours = first_stage_ranker("bi", choice.id, "fp32", False).encode(DOCUMENTS)
    expected = first_stage_ranker("bi", DEFAULT_BI_ENCODER, "fp32", False).encode(DOCUMENTS)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)
    with pytest.raises(ExplorerError, match="registered as a bi-encoder"):
        reranker("cross", choice.id, "fp32", False)


def test_an_onnx_file_runs_like_the_shipped_int8_original(tmp_path):
    folder = shutil.copytree(source_dir(CROSS_ENCODER), tmp_path / "reranker_onnx")
    choice = register_model_path(str(folder / "model.onnx"))
    assert (choice.id, choice.kind) == ("local:reranker_onnx", "cross")
    ours = reranker("cross", choice.id, "fp32", False)
    assert ours.info.engine == "onnxruntime" and "ONNX file" in ours.info.name
    expected = reranker("cross@int8", DEFAULT_CROSS_ENCODER, "fp32", False).score_query(QUERY, DOCUMENTS).scores
    np.testing.assert_array_equal(ours.score_query(QUERY, DOCUMENTS).scores, expected)
    with pytest.raises(ExplorerError, match="no attention to inspect"):
        resolve_source(choice.id, "cross")


def test_paths_that_are_not_models_stop_the_start_with_a_reason(tmp_path):
    from explorer.cli import parse_start_arguments, register_models

    (tmp_path / "empty").mkdir()
    with pytest.raises(ExplorerError, match="no config.json"):
        register_model_path(str(tmp_path / "empty"))
    lonely = tmp_path / "lonely" / "model.onnx"
    lonely.parent.mkdir()
    lonely.write_bytes(b"not onnx")
    with pytest.raises(ExplorerError, match="tokenizer"):
        register_model_path(str(lonely))
    arguments = parse_start_arguments(["--model", str(tmp_path / "empty")])
    with pytest.raises(SystemExit, match="no config.json"):
        register_models(arguments.model)
    # A mistyped flag stops the start (argparse exits 2) instead of being ignored.
    with pytest.raises(SystemExit) as stopped:
        parse_start_arguments(["--modle", str(tmp_path / "empty")])
    assert stopped.value.code == 2
    assert catalog.model_choices() == list(catalog.MODEL_CHOICES)


def test_the_pickers_offer_registered_models_and_a_visitor_still_cannot_name_a_path(tmp_path):
    from explorer.cli import register_models
    from explorer.ui.app import build_app
    from explorer.ui.compare_tab import run_comparison

    folder = shutil.copytree(offline_cross_encoder_dir(), tmp_path / "picker-reranker")
    (choice,) = register_models([str(folder)])
    app = build_app()
    dropdowns = [block for block in app.blocks.values() if getattr(block, "label", "") == "Cross-encoder (re-rank)"]
    assert dropdowns and any(value == choice.id for _, value in dropdowns[0].choices)
    import gradio as gr

    with pytest.raises(gr.Error, match="not a model id"):
        run_comparison("q", "Paste", "a\nb", top_k=2, cross_encoder=str(folder))


def test_an_error_quoting_what_the_visitor_typed_reaches_the_page_as_text():
    import gradio as gr

    from explorer.ui.compare_tab import run_comparison

    with pytest.raises(gr.Error) as caught:
        run_comparison("q", "Paste", "a\nb", top_k=2, cross_encoder="<img src=x onerror=alert(1)>")
    assert "&lt;img src=x onerror=alert(1)&gt;" in caught.value.message and "<img" not in caught.value.message


def test_explorer_models_adds_local_models_as_the_model_flag_does(tmp_path, monkeypatch):
    """EXPLORER_MODELS (paths joined by the OS path separator) is for a Space, whose start command
    is fixed: its paths come after any --model, empty entries ignored, and each is registered."""
    import os

    from explorer.cli import parse_start_arguments, register_models

    folder = shutil.copytree(offline_cross_encoder_dir(), tmp_path / "env-reranker")
    monkeypatch.setenv("EXPLORER_MODELS", os.pathsep.join(["", str(folder), " ", "/somewhere/else"]))
    arguments = parse_start_arguments(["--model", "/from/the/flag"])
    assert arguments.model == ["/from/the/flag", str(folder), "/somewhere/else"]
    monkeypatch.setenv("EXPLORER_MODELS", str(folder))
    (choice,) = register_models(parse_start_arguments([]).model)
    assert (choice.id, choice.kind) == ("local:env-reranker", "cross")
    assert choice in catalog.model_choices("cross")
