"""The relevance workbench on the page, in Debian's Chromium against `python app.py` with its own data
directory (EXPLORER_DATA): judge with the keyboard, save a case, reopen its links, measure, snapshot,
two tabs at once, hostile text. References: the store read directly, ir_measures on the exported zip."""

from __future__ import annotations

import io
import json
import zipfile

import ir_measures
import pytest
from browser_support import browser_page, open_app
from ir_measures import nDCG

from explorer.data.corpus import Corpus, Document, corpus_from_text
from explorer.data.teaching_examples import EXAMPLES
from explorer.pipeline.compare import compare
from explorer.store.cases import CaseStore
from explorer.store.database import FILE_NAME
from explorer.store.records import Judgment

QUERY, CORPUS, TOP_K = EXAMPLES[0]  # the landing page: "python snake", ten documents, top-5
FIRST = "#board .board-column[data-role=first]"
RERANK = "#board .board-column[data-role=rerank]"
IDEAL = "#board .board-column[data-role=ideal]"
HOSTILE = '<img src=x onerror="window.__xss=1">'
SETTINGS = {"first_stage": "bi", "rerankers": ["cross"], "precision": "auto", "top_k": TOP_K, "score_all": False}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app on its own data directory: (url, the store on the same database file)."""
    from explorer.tools.app_process import running_app

    data = tmp_path_factory.mktemp("workbench-data")
    log_path = tmp_path_factory.mktemp("app") / "app.log"
    with log_path.open("wb") as log:
        try:
            with running_app(timeout_s=600, extra_env={"HF_HUB_OFFLINE": "1", "EXPLORER_DATA": str(data)},
                             log=log) as running:
                store = CaseStore(data / FILE_NAME)
                yield running.url, store
                store.close()
        except RuntimeError as error:
            pytest.fail(f"{error}:\n{log_path.read_text()[-4000:]}")


def _ideal(page) -> dict[str, int]:
    """{doc id: grade} as the ideal-order column shows them."""
    rows = page.locator(f"{IDEAL} li.hit").evaluate_all(
        "rows => rows.map(r => [r.dataset.docId, r.querySelector('.grade').dataset.grade])")
    return {doc: int(grade) for doc, grade in rows}


def _wait_judged(page, count: int) -> None:
    page.wait_for_function("([sel, n]) => document.querySelectorAll(sel + ' li.hit').length === n",
                           arg=[IDEAL, count], timeout=120_000)


def _measures(page) -> dict[str, dict[str, str]]:
    """{column name: {measure label: shown value}} of every measured column."""
    return dict(page.locator("#board .board-column").evaluate_all(
        "cols => cols.filter(c => c.querySelector('.measure')).map(c => [c.dataset.column,"
        " Object.fromEntries([...c.querySelectorAll('.measure')].map(m => [m.dataset.measure, m.innerText]))])"))


def _grade_with_keys(page) -> None:
    """Five documents graded from the keyboard: focus the first stage's first row, then key, ↓, key, ..."""
    page.locator(f"{FIRST} li.hit").first.focus()
    for count, key in enumerate("21031", start=1):
        page.keyboard.press(key)
        _wait_judged(page, count)
        page.wait_for_function("() => document.activeElement && document.activeElement.matches('li.hit')",
                               timeout=30_000)
        page.keyboard.press("ArrowDown")


def _save(page, name: str) -> tuple[str, str]:
    page.locator("#case-name").get_by_role("textbox").fill(name)
    page.locator("#save-case").click()
    page.locator("#case-links .edit-link").wait_for(timeout=60_000)
    return page.locator("#case-links .edit-link").inner_text(), page.locator("#case-links .read-link").inner_text()


@pytest.fixture(scope="module")
def judged_case(app):
    """The landing example, five grades from the keyboard and one regraded with a reason, saved as a case."""
    url, _ = app
    with browser_page(offline=True, viewport=(1440, 900)) as page:
        open_app(page, url)
        _grade_with_keys(page)
        reason = f"snakes {HOSTILE}"
        page.locator("#judge-reason").get_by_role("textbox").fill(reason)
        top = page.locator(f"{RERANK} li.hit").first
        reasoned = top.get_attribute("data-doc-id")
        top.locator(".grade-button[data-value='3']").click()
        page.wait_for_function("([sel, id]) => [...document.querySelectorAll(sel + ' li.hit')].some("
                               "r => r.dataset.docId === id && r.querySelector('.grade').dataset.grade === '3')",
                               arg=[IDEAL, reasoned], timeout=60_000)
        grades, measures = _ideal(page), _measures(page)
        edit, read = _save(page, f"lesson {HOSTILE}")
        page.screenshot(path="artifacts/workbench-judged.png", full_page=True)
    return {"edit": edit, "read": read, "grades": grades, "measures": measures, "reasoned": reasoned,
            "reason": reason}


def test_a_saved_case_reopens_exactly_and_its_read_only_link_refuses_a_grade(app, judged_case):
    url, store = app
    assert len(judged_case["grades"]) == 5 and judged_case["grades"][judged_case["reasoned"]] == 3
    with browser_page(offline=True, viewport=(1440, 900)) as page:  # a fresh browser
        open_app(page, judged_case["edit"])
        _wait_judged(page, 5)
        assert page.locator("#query").get_by_role("textbox").input_value() == QUERY
        assert page.locator("#top-k input[type=number]").input_value() == str(TOP_K)
        assert _ideal(page) == judged_case["grades"] and _measures(page) == judged_case["measures"]
        assert judged_case["reason"] in page.locator(IDEAL).inner_text()  # as text
        assert f"lesson {HOSTILE}" in page.locator("#case-bar").inner_text()
    with browser_page(offline=True, viewport=(1440, 900)) as page:
        open_app(page, judged_case["read"])
        _wait_judged(page, 5)
        assert _ideal(page) == judged_case["grades"] and _measures(page) == judged_case["measures"]
        assert page.locator("#board .grade-button").count() == 0
        doc = next(d for d, g in judged_case["grades"].items() if g != 0)
        # The buttons are gone; a grade forced into the hidden box is refused by the server.
        page.evaluate("doc => { const box = document.querySelector('#judge-box textarea, #judge-box input');"
                      " box.value = JSON.stringify({doc_id: doc, grade: 0, reason: '', n: 99});"
                      " box.dispatchEvent(new Event('input', {bubbles: true})); }", doc)
        page.get_by_text("it shows the case but cannot change it").first.wait_for(timeout=60_000)
        assert page.evaluate("window.__xss") is None and page.locator("img[src='x']").count() == 0
    access = store.open(judged_case["edit"].split("case=")[1])
    case = store.case(access)
    assert {d: j.grade for d, j in case.judgments[QUERY].items()} == judged_case["grades"]  # the forced 0 is not there
    assert case.judgments[QUERY][judged_case["reasoned"]].reason == judged_case["reason"]


def test_the_pages_ndcg_equals_ir_measures_on_the_exported_qrels_and_run(app, judged_case, tmp_path):
    """And the zip imported back is a new case with the same judgments."""
    url, _ = app
    with browser_page(offline=True, viewport=(1440, 900)) as page:
        open_app(page, judged_case["edit"])
        _wait_judged(page, 5)
        _snapshot(page, "now")
        shown = _measures(page)
        page.locator("#export-case").click()
        link = page.locator("#case-zip a").first
        link.wait_for(timeout=300_000)
        data = page.request.get(link.get_attribute("href")).body()
        (tmp_path / "case.zip").write_bytes(data)
        page.locator("#import-case input[type=file]").set_input_files(str(tmp_path / "case.zip"))
        page.locator("#case-links .edit-link").wait_for(timeout=120_000)
        imported = page.locator("#case-links .edit-link").inner_text()
        open_app(page, imported)
        _wait_judged(page, 5)
        assert _ideal(page) == judged_case["grades"]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        qrels = list(ir_measures.read_trec_qrels(archive.read("qrels.txt").decode()))
        runs = {column: list(ir_measures.read_trec_run(archive.read(name).decode()))
                for column, name in manifest["snapshots"][0]["runs"].items()}
    assert set(runs) == set(shown)  # every stage's column has its run
    for column, run in runs.items():
        expected = ir_measures.calc_aggregate([nDCG @ 10], qrels, run)[nDCG @ 10]
        assert float(shown[column]["nDCG@10"]) == pytest.approx(expected, abs=5e-4), column


def _snapshot(page, name: str) -> None:
    """Save a snapshot under `name` and wait until the case bar lists it."""
    page.locator("#snapshot-name").get_by_role("textbox").fill(name)
    page.locator("#save-snapshot").click()
    page.wait_for_function("name => [...document.querySelectorAll('#case-bar .case-snapshot')].some("
                           "s => s.dataset.name === name)", arg=name, timeout=300_000)


def _run_first_stage(page, label: str, kind: str) -> None:
    """Pick a first stage, compare, and wait for its column (the first-stage column of that kind)."""
    page.locator("#first-stage").get_by_text(label, exact=True).click()
    page.locator("#run-compare").click()
    page.wait_for_function("kind => document.querySelector(`#board .board-column[data-role=first][data-kind=${kind}]`)",
                           arg=kind, timeout=300_000)


def _case(store: CaseStore, queries: list[str], judgments: list[Judgment], corpus: Corpus | None = None,
          name: str = "three queries") -> str:
    corpus = corpus or corpus_from_text(CORPUS)
    links = store.create_case(name, corpus, {"kind": "stored", "name": corpus.name}, {**SETTINGS, "query": queries[0]},
                              queries, judgments)
    return links.edit_token


def test_two_snapshots_and_the_current_pipeline_on_a_three_query_case(app):
    url, store = app
    queries = [QUERY, "python programming language", "snake skin"]
    judgments = [Judgment(QUERY, "2", 3, ""), Judgment(QUERY, "4", 2, ""), Judgment(QUERY, "1", 0, ""),
                 Judgment(queries[1], "1", 3, ""), Judgment(queries[1], "5", 2, ""),
                 Judgment(queries[2], "7", 3, ""), Judgment(queries[2], "9", 1, "")]
    token = _case(store, queries, judgments)
    pipelines = {"bi-cross": "bi", "bm25-cross": "bm25"}
    with browser_page(offline=True, viewport=(1440, 900)) as page:
        open_app(page, f"{url}?case={token}")
        _snapshot(page, "bi-cross")
        page.locator("#pipeline").click()
        _run_first_stage(page, "BM25 (exact words)", "lexical")
        _snapshot(page, "bm25-cross")
        _run_first_stage(page, "hybrid: BM25 + bi-encoder, reciprocal rank fusion", "hybrid")
        for name in pipelines:
            page.locator("#snapshot-pick input").click()
            page.get_by_role("option", name=name, exact=True).click()
        page.keyboard.press("Escape")
        page.locator("#compare-snapshots").click()
        page.wait_for_function("() => document.querySelectorAll('#snapshot-view tr[data-query]').length === 3",
                               timeout=300_000)
        rows = page.locator("#snapshot-view tr[data-query]").evaluate_all(
            "rows => rows.map(r => [r.dataset.query, r.querySelector('.current').dataset.ndcg,"
            " [...r.querySelectorAll('.snapshot')].map(c => [c.dataset.snapshot, c.dataset.ndcg])])")
        page.screenshot(path="artifacts/workbench-snapshots.png", full_page=True)
    corpus = corpus_from_text(CORPUS)
    qrels = [ir_measures.Qrel(str(queries.index(j.query)), j.doc_id, j.grade) for j in judgments]

    def reference(first_stage: str, query: str) -> float:
        result = compare(query, corpus, top_k=TOP_K, first_stage=first_stage)
        run = [ir_measures.ScoredDoc(str(queries.index(query)), hit.id, float(-hit.rank)) for hit in result.reranked]
        per = {m.query_id: m.value for m in ir_measures.iter_calc([nDCG @ 10], [q for q in qrels if q.query_id ==
                                                                                 str(queries.index(query))], run)}
        return per[str(queries.index(query))]

    assert [row[0] for row in rows] == queries
    for query, current, snapshots in rows:
        assert float(current) == pytest.approx(reference("hybrid", query), abs=1e-6)
        assert [name for name, _ in snapshots] == list(pipelines)
        for name, value in snapshots:
            assert float(value) == pytest.approx(reference(pipelines[name], query), abs=1e-6), (query, name)


def test_two_pages_judging_one_case_interleave_without_loss(app):
    url, store = app
    token = _case(store, [QUERY], [], name="two tabs")
    link = f"{url}?case={token}"
    with browser_page(offline=True) as first_page:
        second_page = first_page.context.browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        for page in (first_page, second_page):
            open_app(page, link)
        ids = first_page.locator(f"{FIRST} li.hit").evaluate_all("rows => rows.map(r => r.dataset.docId)")
        for place, doc in enumerate(ids):
            page = (first_page, second_page)[place % 2]
            page.locator(f"{FIRST} li.hit[data-doc-id='{doc}'] .grade-button[data-value='{place % 4}']").click()
            page.wait_for_function("([sel, id]) => [...document.querySelectorAll(sel + ' li.hit')].some("
                                   "r => r.dataset.docId === id)", arg=[IDEAL, doc], timeout=60_000)
    case = store.case(store.open(token))
    assert {d: j.grade for d, j in case.judgments[QUERY].items()} == {doc: place % 4 for place, doc in enumerate(ids)}


def test_hostile_ids_queries_reasons_and_names_render_as_text(app):
    url, store = app
    documents = [Document(f"{HOSTILE}{n}", f"python snake {HOSTILE} number {n}") for n in range(3)]
    query = f"python {HOSTILE}"
    corpus = Corpus(documents, name="hostile.jsonl")
    token = _case(store, [query], [Judgment(query, documents[0].id, 2, "<script>window.__xss=2</script>")],
                  corpus=corpus, name="<b onmouseover=alert(3)>case</b>")
    dialogs: list[str] = []
    with browser_page(offline=True) as page:
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        open_app(page, f"{url}?case={token}")
        _wait_judged(page, 1)
        page.locator("#board").hover()
        ids = page.locator(f"{FIRST} li.hit").evaluate_all("rows => rows.map(r => r.dataset.docId)")
        board_text = page.locator("#board").inner_text()
        assert page.locator("#case-bar").get_by_text("<b onmouseover=alert(3)>case</b>").count() == 1
        assert page.evaluate("window.__xss") is None
        assert page.locator("img[src='x']").count() == 0 and page.locator("#case-bar b[onmouseover]").count() == 0
    assert sorted(ids) == sorted(doc.id for doc in documents)
    assert "<script>window.__xss=2</script>" in board_text and HOSTILE in board_text
    assert dialogs == []


# Text inside `root` that its nearest clipping ancestor (overflow other than visible) cuts off, as strings.
CLIPPED_TEXT_JS = """root => {
  const cut = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.textContent.trim()) continue;
    const range = document.createRange(); range.selectNodeContents(node);
    const text = range.getBoundingClientRect();
    if (!text.width) continue;
    for (let el = node.parentElement; el && el !== document.body; el = el.parentElement) {
      if (getComputedStyle(el).overflow === 'visible') continue;
      const box = el.getBoundingClientRect();
      if (text.top < box.top - 1 || text.bottom > box.bottom + 1) cut.push(node.textContent.trim());
      break;
    }
  }
  return cut;
}"""


def test_the_landing_page_opens_compared_on_the_python_snake_example(app):
    url, _ = app
    with browser_page(offline=True, viewport=(1440, 900)) as page:
        open_app(page, url)  # nothing typed, nothing clicked
        query = page.locator("#query").get_by_role("textbox").input_value()
        shown = {role: page.locator(f"#board .board-column[data-role={role}] li.hit").evaluate_all(
            "rows => rows.map(r => r.dataset.docId)") for role in ("first", "rerank")}
        # The import box's text lies inside the box's own clipping area (it was cut off once, squeezed by an
        # empty download box), and that download box waits for a zip.
        clipped = page.locator("#import-case").evaluate(CLIPPED_TEXT_JS)
        download_box_shown = page.locator("#case-zip").is_visible()
        # Evaluate's tables wait for a run too (empty, they showed Gradio's placeholder headers 1 2 3).
        page.get_by_role("tab", name="Evaluate").click()
        page.locator("#run-pipelines").wait_for(state="visible")
        empty_tables = [t for t in ("pipe-metrics", "pipe-significance", "pipe-disagreements")
                        if page.locator(f"#{t}").is_visible()]
    reference = compare(QUERY, corpus_from_text(CORPUS), top_k=TOP_K)
    assert clipped == [] and not download_box_shown and empty_tables == []
    assert query == QUERY
    assert shown == {"first": [h.id for h in reference.first_stage], "rerank": [h.id for h in reference.reranked]}


def test_evaluate_this_case_measures_the_case_as_eval_case_does(app, monkeypatch):
    """"Evaluate this case" fills the Evaluate tab with the case's corpus, queries and judgments; the pipelines it
    then measures equal `eval --case TOKEN` on the same database (the command line, read independently)."""
    import io
    from contextlib import redirect_stdout

    from explorer.cli import main

    url, store = app
    queries = [QUERY, "snake skin"]
    token = _case(store, queries, [Judgment(QUERY, "2", 3, ""), Judgment(QUERY, "4", 2, ""), Judgment(QUERY, "1", 0, ""),
                                   Judgment(queries[1], "7", 3, "")], name="evaluate me")
    with browser_page(offline=True, viewport=(1440, 1000)) as page:
        open_app(page, f"{url}?case={token}")
        page.locator("#evaluate-case").click()
        for elem_id, name in (("pipe-corpus", "corpus.jsonl"), ("pipe-queries", "queries.jsonl"), ("pipe-qrels", "qrels.txt")):
            page.locator(f"#{elem_id} a[href*='{name}']").first.wait_for(state="attached", timeout=120_000)
        page.locator("#run-pipelines").click()
        page.wait_for_function(
            "() => document.querySelectorAll('#pipe-metrics .virtual-body [role=row]').length === 3", timeout=300_000)
        metrics = page.locator("#pipe-metrics .virtual-body [role=row]").evaluate_all(
            "rows => rows.map(r => [...r.querySelectorAll('[role=gridcell]')].map(c => c.innerText.trim()))")
    monkeypatch.setenv("EXPLORER_DATA", str(store.path.parent))
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        assert main(["eval", "--case", token, "--pipelines", "bm25,bi,bi+cross", "--baseline", "bi", "--top-k", "10",
                     "--json"]) == 0
    report = json.loads(buffer.getvalue())
    assert [row[0] for row in metrics] == ["bm25", "bi (baseline)", "bi+cross"]
    for row, name in zip(metrics, ("bm25", "bi", "bi+cross")):
        assert float(row[1]) == pytest.approx(report["metrics"][name]["nDCG@10"], abs=1e-4)
