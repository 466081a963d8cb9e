"""What the page does with a case (views/case_page.py), on a real store in a temporary file: the store
read back directly is the reference."""

from __future__ import annotations

import pytest

from explorer.data.teaching_examples import PYTHON_SNAKE
from explorer.errors import ExplorerError
from explorer.store.cases import CaseStore
from explorer.views import case_page
from explorer.views.workbench import new_bench

SETTINGS = {"query": "python snake", "first_stage": "hybrid", "rerankers": ["late", "cross"], "bi_encoder": "b",
            "cross_encoder": "c", "precision": "fp32", "top_k": 4, "cross_label": None, "score_all": True}
STATE = {"query": "python snake", "inputs": {"source": "Paste", "text": PYTHON_SNAKE, "file": None, "builtin": None,
                                            "settings": SETTINGS}}


@pytest.fixture()
def store(tmp_path):
    opened = CaseStore(tmp_path / "cases.sqlite3")
    yield opened
    opened.close()


def test_session_grades_are_saved_with_the_case_and_a_link_restores_the_page(store):
    bench = case_page.record_grade(store, new_bench(), "python snake", "2", 3, "the snake")
    bench = case_page.record_grade(store, bench, "python snake", "1", 0, "")
    bench = case_page.record_grade(store, bench, "python snake", "1", None, "")  # removed again
    bench = case_page.add_query(store, bench, "snake skin")
    links, bench = case_page.save_case(store, "lesson", STATE, bench)
    case = store.case(store.open(links.read_token))
    assert case.queries == ["snake skin", "python snake"]
    assert {d: (j.grade, j.reason) for d, j in case.judgments["python snake"].items()} == {"2": (3, "the snake")}
    opened = case_page.open_case(store, links.read_token)
    assert opened.inputs["source"] == "Paste" and opened.inputs["text"] == PYTHON_SNAKE
    assert {k: opened.inputs[k] for k in ("query", "first_stage", "rerankers", "precision", "top_k", "score_all")} == {
        "query": "python snake", "first_stage": "hybrid", "rerankers": ["late", "cross"], "precision": "fp32",
        "top_k": 4, "score_all": True}
    assert opened.bench["judgments"] == {"python snake": {"2": {"grade": 3, "reason": "the snake"}}}
    assert opened.bench["access"].can_edit is False
    # The read-only link cannot write, the edit link can, and each grade is in the store at once.
    with pytest.raises(ExplorerError, match="read-only"):
        case_page.record_grade(store, opened.bench, "python snake", "3", 1, "")
    edit = case_page.open_case(store, links.edit_token).bench
    case_page.record_grade(store, edit, "python snake", "3", 1, "")
    assert store.case(store.open(links.edit_token)).judgments["python snake"]["3"].grade == 1


def test_a_bad_link_gets_one_message_whatever_is_wrong_with_it(store):
    links, _ = case_page.save_case(store, "c", STATE, new_bench())
    messages = set()
    for token in ("", "nonsense", links.edit_token[:-3], links.edit_token + "x", links.read_token.upper()):
        with pytest.raises(ExplorerError) as error:
            case_page.open_case(store, token)
        messages.add(str(error.value))
    assert len(messages) == 1


def test_next_and_previous_walk_the_list_round():
    bench = {**new_bench(), "queries": ["a", "b", "c"]}
    assert [case_page.step_query(bench, q, 1) for q in ("a", "b", "c", "x")] == ["b", "c", "a", "a"]
    assert [case_page.step_query(bench, q, -1) for q in ("a", "b", "x")] == ["c", "a", "c"]
    assert case_page.step_query(new_bench(), "q", 1) == "q"


def test_nothing_to_save_or_export_says_what_to_do(store, tmp_path):
    with pytest.raises(ExplorerError, match="Run a comparison first"):
        case_page.save_case(store, "c", None, new_bench())
    with pytest.raises(ExplorerError, match="Save the page as a case first"):
        case_page.export_zip(store, new_bench(), tmp_path)
