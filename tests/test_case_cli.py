"""`python -m explorer case ...` and `eval --case` end to end, on a database under a temporary EXPLORER_DATA."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.store.cases import READ_ONLY, UNKNOWN_LINK

from cli_support import run_cli, write_corpus

REPO = Path(__file__).resolve().parent.parent
QUERIES = ["python snake", "programming language", "comedy group"]
# Grades by document line (the pasted corpus's ids are line numbers): see cli_support.SNAKE_CORPUS.
GRADES = {"python snake": {"1": 3, "6": 3, "3": 1, "2": 0}, "programming language": {"2": 3, "4": 0},
          "comedy group": {"4": 2}}


@pytest.fixture
def case(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA", str(tmp_path / "data"))
    corpus = write_corpus(tmp_path)
    argv = ["case", "new", "--name", "snakes <lesson>", "--corpus", corpus, "--first-stage", "bm25",
            "--rerankers", "none", "--top-k", "5", "--json"]
    for query in QUERIES:
        argv += ["--query", query]
    links = run_cli(*argv)
    for query, grades in GRADES.items():
        for doc, grade in grades.items():
            run_cli("case", "judge", links["edit_token"], "--query", query, "--doc", doc, "--grade", str(grade),
                    "--reason", f"<b>why</b> {doc}", "--json")
    return links


def failed(capsys, *argv) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 2
    return capsys.readouterr().err


def test_new_judge_show(case, tmp_path):
    assert Path(case["database"]) == tmp_path / "data" / "workbench.sqlite3"
    shown = run_cli("case", "show", case["read_token"], "--json")
    assert shown["name"] == "snakes <lesson>" and shown["queries"] == QUERIES and not shown["can_edit"]
    assert shown["settings"]["first_stage"] == "bm25" and shown["settings"]["top_k"] == 5
    assert {q: {j["doc_id"]: j["grade"] for j in js} for q, js in shown["judgments"].items()} == GRADES
    assert shown["progress"] == {"judged_queries": 3, "queries": 3}
    run_cli("case", "judge", case["edit_token"], "--query", "comedy group", "--doc", "4", "--grade", "none", "--json")
    assert "comedy group" not in run_cli("case", "show", case["edit_token"], "--json")["judgments"]


def test_tokens_that_cannot_write_or_open(case, capsys):
    assert READ_ONLY in failed(capsys, "case", "judge", case["read_token"], "--query", "q", "--doc", "1", "--grade", "1")
    assert UNKNOWN_LINK in failed(capsys, "case", "show", case["edit_token"][:-4])
    assert UNKNOWN_LINK in failed(capsys, "eval", "--case", "not-a-token", "--pipelines", "bm25")


def test_snapshot_export_import(case, tmp_path):
    saved = run_cli("case", "snapshot", case["edit_token"], "--name", "bm25 baseline", "--json")
    assert saved["queries"] == 3 and saved["columns"] == ["BM25 (bm25s)"]
    out = tmp_path / "case.zip"
    run_cli("case", "export", case["read_token"], "--out", str(out), "--json")
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
    assert {"manifest.json", "corpus.jsonl", "queries.jsonl", "qrels.txt", "runs/bm25-baseline__BM25-bm25s.txt"} <= names
    again = run_cli("case", "import", str(out), "--json")
    before, after = (run_cli("case", "show", token, "--json") for token in (case["read_token"], again["read_token"]))
    for shown in (before, after):
        shown.pop("case_id")
    assert before == after


def test_eval_case_equals_eval_on_the_exported_files(case, tmp_path):
    out = tmp_path / "case.zip"
    run_cli("case", "export", case["read_token"], "--out", str(out), "--json")
    with zipfile.ZipFile(out) as archive:
        archive.extractall(tmp_path / "files")
    files = ["--corpus", str(tmp_path / "files" / "corpus.jsonl"), "--queries", str(tmp_path / "files" / "queries.jsonl"),
             "--qrels", str(tmp_path / "files" / "qrels.txt"), "--top-k", "5", "--json"]
    # What may differ: timings, the corpus's file name, and notes that name where the labels came from.
    unlike = {"timings_ms", "ms_per_query", "notes", "corpus_name"}
    for extra in (["--pipelines", "bm25,bm25+cross"], ["--skip-full"]):
        from_case = run_cli("eval", "--case", case["edit_token"], "--top-k", "5", "--json", *extra)
        from_files = run_cli("eval", *files, *extra)
        assert {k: v for k, v in from_case.items() if k not in unlike} == \
            {k: v for k, v in from_files.items() if k not in unlike}
        assert from_case["per_query" if "per_query" in from_case else "rerank"]  # something was measured


def test_the_installed_command_reports_errors_with_exit_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "explorer", "case", "show", "x" * 43], cwd=REPO, capture_output=True,
                            text=True, env={"EXPLORER_DATA": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 2 and UNKNOWN_LINK in result.stderr
