"""The Evaluate tab's pipelines panel in Debian's Chromium (Playwright), and its named endpoint
through gradio_client, against `python app.py` on loopback.

A small labelled zip is uploaded, three pipelines are evaluated against a baseline, and the
page's tables must equal `eval --pipelines ... --json` on the same zip; one click on the most
disagreeing query opens it in Compare, where every shown document's grade badge must equal
the qrels' grade (or say "unjudged").
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from browser_support import browser_page
from labelled_zip import QRELS, QUERIES, write_labelled_zip

from explorer.cli import main

SHOTS = Path(os.environ.get("EXPLORER_SHOTS", Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"))
PIPELINES = ["bm25", "bi", "bi+cross"]
TOP_K = 5


@pytest.fixture(scope="module")
def labelled_zip(tmp_path_factory) -> Path:
    return write_labelled_zip(tmp_path_factory.mktemp("labels") / "myset.zip")


@pytest.fixture(scope="module")
def cli_report(labelled_zip) -> dict:
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        assert main(["eval", "--corpus", str(labelled_zip), "--top-k", str(TOP_K), "--pipelines", ",".join(PIPELINES),
                     "--baseline", "bi", "--disagree", "bm25,bi+cross", "--json"]) == 0
    return json.loads(buffer.getvalue())
# The board's columns: the first stage's, and the re-ranker's (one re-ranker in these pipelines).
FIRST, SHOWN = "#board .board-column[data-role=first]", "#board .board-column[data-role=rerank]"


def _rows(page, elem_id: str):
    """A gradio 6 Dataframe's body rows (its body is a grid of divs, not table rows)."""
    return page.locator(f"#{elem_id} .virtual-body [role=row]")


def _table(page, elem_id: str) -> list[list[str]]:
    return _rows(page, elem_id).evaluate_all(
        "rows => rows.map(r => [...r.querySelectorAll('[role=gridcell]')].map(c => c.innerText.trim()))")


def _open_pipelines_panel(page, app_url: str) -> None:
    page.goto(app_url)
    page.get_by_role("tab", name="Evaluate").click()
    page.locator("#run-pipelines").wait_for(state="visible", timeout=120_000)


def test_upload_evaluate_three_pipelines_and_open_the_most_disagreeing_query(app_url, labelled_zip, cli_report):
    SHOTS.mkdir(parents=True, exist_ok=True)
    with browser_page(offline=True, viewport=(1440, 1000)) as page:
        _open_pipelines_panel(page, app_url)
        page.locator("#pipe-source").get_by_text("Upload", exact=True).click()
        page.locator("#pipe-zip input[type=file]").set_input_files(str(labelled_zip))
        page.locator("#pipe-zip").get_by_text("myset.zip").wait_for(timeout=60_000)
        page.locator("#pipe-top-k input[type=number]").fill(str(TOP_K))
        page.locator("#pipe-top-k input[type=number]").press("Enter")
        page.locator("#run-pipelines").click()
        page.wait_for_function(
            "() => document.querySelectorAll('#pipe-significance .virtual-body [role=row]').length === 6",
            timeout=300_000)
        page.locator("#pipe-cost-quality .js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
        points = page.locator("#pipe-cost-quality .scatterlayer .point").count()
        labels = page.locator("#pipe-cost-quality .scatterlayer .textpoint").evaluate_all("els => els.map(e => e.textContent)")
        metrics = _table(page, "pipe-metrics")
        significance = _table(page, "pipe-significance")
        note = page.locator("#pipe-significance-note").inner_text()
        # Where BM25 and bi+cross disagree: pick A = bm25 (B is bi+cross, the last pipeline).
        page.locator("#pipe-disagree-a input").click()
        page.get_by_role("option", name="bm25", exact=True).click()
        page.locator("#pipe-disagreements").get_by_text("nDCG@10 bm25").wait_for(timeout=60_000)
        disagreement = _table(page, "pipe-disagreements")
        page.screenshot(path=str(SHOTS / "eval-pipelines.png"), full_page=True)

        # One click on the most disagreeing query opens it in Compare, run, with grade badges.
        top_query_id = disagreement[0][0]
        _rows(page, "pipe-disagreements").first.locator("[role=gridcell]").nth(1).click()
        page.wait_for_function(
            "() => { const rows = document.querySelectorAll('#board .board-column[data-role=rerank] li.hit');"
            " return rows.length > 0 && [...rows].every(r => r.querySelector('.grade')); }",
            timeout=300_000,
        )
        shown_query = page.locator("#query textarea, #query input").first.input_value()
        badges = {}
        for list_id, selector in (("bi-list", FIRST), ("cross-list", SHOWN)):
            badges[list_id] = page.locator(f"{selector} li.hit").evaluate_all(
                "rows => rows.map(r => [r.dataset.docId, r.querySelector('.grade').dataset.grade])")
        page.locator("#board .board-column[data-role=first]").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "eval-compare-grades.png"), full_page=False)

    assert points == 3 and sorted(labels) == sorted(PIPELINES)
    # The page's means equal the command line's on the same zip (4 decimals shown).
    assert [row[0] for row in metrics] == ["bm25", "bi (baseline)", "bi+cross"]
    for row, name in zip(metrics, PIPELINES):
        for value, measure in zip(row[1:4], ["nDCG@10", "RR@10", f"R@{TOP_K}"]):
            assert float(value) == pytest.approx(cli_report["metrics"][name][measure], abs=1e-4)
    for row, expected in zip(significance, cli_report["significance"]):
        assert (row[0], row[1]) == (expected["pipeline"], expected["measure"])
        assert float(row[2]) == pytest.approx(expected["mean_diff"], abs=1e-3)
        assert row[7].replace(" ", "") == f"{expected['wins']}/{expected['ties']}/{expected['losses']}"
        assert float(row[6]) == pytest.approx(expected["p_holm"], abs=1e-3)
    assert "too few for these tests to mean anything" in note  # 5 queries
    # The disagreement rows in the command line's order and values; the first is the one clicked.
    assert [row[0] for row in disagreement] == [row["query_id"] for row in cli_report["disagreements"]]
    for row, expected in zip(disagreement, cli_report["disagreements"]):
        assert float(row[4]) == pytest.approx(expected["diff"], abs=1e-4)
    assert abs(float(disagreement[0][4])) > 0  # BM25 and the re-ranked bi-encoder differ somewhere
    assert shown_query == QUERIES[top_query_id]
    for list_id, rows in badges.items():
        assert rows, list_id
        for doc_id, grade in rows:
            expected = QRELS[top_query_id].get(doc_id)
            assert grade == ("unjudged" if expected is None else str(expected)), (list_id, doc_id)
    assert any(grade != "unjudged" for _, grade in badges["cross-list"])


def test_a_broken_zip_gets_a_clear_message_and_changes_nothing(app_url, tmp_path):
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with browser_page(offline=True, viewport=(1440, 900)) as page:
        _open_pipelines_panel(page, app_url)
        page.locator("#pipe-source").get_by_text("Upload", exact=True).click()
        page.locator("#pipe-zip input[type=file]").set_input_files(str(broken))
        page.locator("#pipe-zip").get_by_text("broken.zip").wait_for(timeout=60_000)
        page.locator("#run-pipelines").click()
        toast = page.get_by_text("broken.zip is not a readable zip file")
        toast.first.wait_for(timeout=120_000)
        rows = _table(page, "pipe-metrics")
        page.screenshot(path=str(SHOTS / "eval-broken-zip.png"), full_page=False)
    assert not any(cell for row in rows for cell in row)  # the tables stayed empty


def test_evaluate_pipelines_endpoint_with_an_imported_run(app_url, labelled_zip, cli_report, tmp_path):
    """gradio_client: the zip plus an imported run (the CLI's bi+cross run renamed `prod`): its
    metrics equal bi+cross's, and the runs zip holds PIPELINE.run for our pipelines only."""
    from gradio_client import Client, handle_file

    from explorer.data.trec_runs import format_run

    run = tmp_path / "prod.run"
    run.write_text(format_run(cli_report["top_ids"]["bi+cross"], "prod"))
    client = Client(app_url, verbose=False)
    outputs = client.predict(
        label_source="Upload", labels_zip=handle_file(str(labelled_zip)), pipelines=PIPELINES, baseline="bi",
        run_files=[handle_file(str(run))], top_k=TOP_K, api_name="/evaluate_pipelines",
    )
    report = next(o for o in outputs if isinstance(o, dict) and "significance" in o)
    runs_zip = next(o for o in outputs if isinstance(o, str) and o.endswith(".zip"))
    assert report["pipelines"] == PIPELINES + ["prod"] and report["external_runs"] == ["prod"]
    for name in PIPELINES:
        assert report["metrics"][name] == pytest.approx(cli_report["metrics"][name])
    # top_ids holds each query's first ten: with a 12-document corpus, nDCG@10 and RR@10 match exactly.
    assert report["metrics"]["prod"]["nDCG@10"] == pytest.approx(cli_report["metrics"]["bi+cross"]["nDCG@10"])
    assert report["metrics"]["prod"]["RR@10"] == pytest.approx(cli_report["metrics"]["bi+cross"]["RR@10"])
    assert len(report["significance"]) == 3 * 3
    with zipfile.ZipFile(runs_zip) as archive:
        assert sorted(archive.namelist()) == sorted(f"{name}.run" for name in PIPELINES)
        assert archive.read("bi.run").decode().splitlines()[0].split()[5] == "bi"


HOSTILE_ID = "<img/src=x/onerror=window.__xss=1>"
HOSTILE_QUERY = 'python <img src=x onerror="window.__xss=2;alert(2)"> snake'


def _hostile_zip(path: Path, unknown_document: bool = False) -> Path:
    documents = {HOSTILE_ID: "The python is a large snake <script>window.__xss=3</script> of Asia.",
                 "plain": "Python is a programming language."}
    qrels = f"q1\t{HOSTILE_ID}\t2\nq1\tplain\t0\n" + ("q1\t<b/onmouseover=alert(4)>ghost</b>\t1\n" if unknown_document else "")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("corpus.jsonl", "".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in documents.items()))
        archive.writestr("queries.jsonl", json.dumps({"_id": "q1", "text": HOSTILE_QUERY}) + "\n")
        archive.writestr("qrels/test.tsv", qrels)
    return path


def test_hostile_labels_are_shown_as_text_and_run_nothing(app_url, tmp_path):
    """Ids, queries and documents from an uploaded zip, in the tables, in Compare with badges, and in
    the warning that names a qrels line's document missing from the corpus: text, never markup."""
    dialogs: list[str] = []
    with browser_page(offline=True, viewport=(1440, 1000)) as page:
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        _open_pipelines_panel(page, app_url)
        page.locator("#pipe-source").get_by_text("Upload", exact=True).click()
        for name in ("bi", "bi+cross"):  # BM25 alone: no model needed for the evaluation itself
            page.locator("#pipe-pipelines").get_by_text(name, exact=True).click()
        page.locator("#pipe-zip input[type=file]").set_input_files(str(_hostile_zip(tmp_path / "hostile.zip")))
        page.locator("#pipe-zip").get_by_text("hostile.zip").wait_for(timeout=60_000)
        page.locator("#run-pipelines").click()
        page.wait_for_function(
            "() => document.querySelectorAll('#pipe-disagreements .virtual-body [role=row]').length === 1",
            timeout=300_000)
        table = _table(page, "pipe-disagreements")
        _rows(page, "pipe-disagreements").first.locator("[role=gridcell]").nth(1).click()
        page.wait_for_function(
            "() => { const rows = document.querySelectorAll('#board .board-column[data-role=rerank] li.hit');"
            " return rows.length === 2 && [...rows].every(r => r.querySelector('.grade')); }", timeout=300_000)
        shown = page.locator("#board .board-column[data-role=first]").inner_text()
        grades = page.locator("#board .board-column[data-role=rerank] li.hit").evaluate_all(
            "rows => rows.map(r => [r.dataset.docId, r.querySelector('.grade').dataset.grade])")
        page.screenshot(path=str(SHOTS / "eval-hostile-compare.png"), full_page=False)

        page.get_by_role("tab", name="Evaluate").click()
        page.locator("#pipe-zip button[aria-label='Clear']").click()
        page.locator("#pipe-zip input[type=file]").set_input_files(
            str(_hostile_zip(tmp_path / "unknown.zip", unknown_document=True)))
        page.locator("#pipe-zip").get_by_text("unknown.zip").wait_for(timeout=60_000)
        page.locator("#run-pipelines").click()
        # Loaded, not refused: the missing document is counted and named in a note.
        page.get_by_text("not in the corpus").first.wait_for(timeout=300_000)
        message = page.get_by_text("not in the corpus").first.inner_text()
        page.wait_for_timeout(1500)  # give any injected handler time to fire
        xss = page.evaluate("window.__xss")
        images = page.locator("img[src='x']").count()
    assert table[0][1] == HOSTILE_QUERY
    assert HOSTILE_ID in shown and "<script>window.__xss=3</script>" in shown
    assert sorted(grades) == sorted([[HOSTILE_ID, "2"], ["plain", "0"]])
    assert "1 judgment(s)" in message and "<b/onmouseover=alert(4)>ghost</b>" in message
    assert "relevant and unretrievable" in message
    assert xss is None and images == 0 and dialogs == []
