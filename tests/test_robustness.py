"""Bad input, many users and hostile content, against the running app on loopback.

Every bad request must come back as a clear message, and the next good request must
still be answered: nothing a user sends breaks the app for the others.
"""

from __future__ import annotations

import pytest

GOOD_CORPUS = "Cats purr when they are content.\nDogs bark at strangers.\nParrots can mimic human speech."


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


def _comparison(outputs) -> dict:
    return next(o for o in outputs if isinstance(o, dict) and "cross_encoder" in o)


def _good_request_still_works(client) -> None:
    data = _comparison(client.predict(query="which animal purrs", corpus_source="Paste",
                                      corpus_text=GOOD_CORPUS, top_k=3, api_name="/compare"))
    assert data["cross_encoder"][0]["text"] == "Cats purr when they are content."


def _upload(tmp_path, name: str, data: bytes):
    from gradio_client import handle_file

    path = tmp_path / name
    path.write_bytes(data)
    return handle_file(str(path))


BAD_REQUESTS = {
    "empty query": (dict(query="   ", corpus_text=GOOD_CORPUS), "query is empty"),
    "empty corpus": (dict(query="cats", corpus_text=" \n\n "), "corpus is empty"),
    "unknown model": (dict(query="cats", corpus_text=GOOD_CORPUS, cross_encoder="nobody/no-such-reranker"),
                      "nobody/no-such-reranker"),
    "model path": (dict(query="cats", corpus_text=GOOD_CORPUS, cross_encoder="/etc/passwd"), "not a model id"),
    "bi-encoder as cross-encoder": (
        dict(query="cats", corpus_text=GOOD_CORPUS, cross_encoder="sentence-transformers/all-MiniLM-L6-v2"),
        "not a cross-encoder"),
    "cross-encoder as bi-encoder": (
        dict(query="cats", corpus_text=GOOD_CORPUS, bi_encoder="cross-encoder/ms-marco-MiniLM-L-12-v2"),
        "is a cross-encoder"),
    "unknown built-in corpus": (dict(query="cats", corpus_source="Built-in", builtin_corpus="../../etc"),
                                r"\.\./\.\./etc"),  # refused by name, by us or by the dropdown
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_request_is_explained_and_app_keeps_answering(client, case):
    from gradio_client.exceptions import AppError

    arguments, message = BAD_REQUESTS[case]
    arguments = {"corpus_source": "Paste", **arguments}
    with pytest.raises(AppError, match=message):
        client.predict(api_name="/compare", **arguments)
    _good_request_still_works(client)


BAD_UPLOADS = {
    "duplicate ids": ("c.jsonl", b'{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', "appears twice"),
    "not utf-8": ("c.txt", b"caf\xe9 au lait\n", "not UTF-8"),
    "binary": ("c.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    "malformed csv": ("c.csv", b"id,text\n1,fine\n2,too,many,fields\n", "line 3"),
    "malformed jsonl": ("c.jsonl", b'{"id": "a", "text": "fine"}\n{"id": "b", "text": \n', "line 2"),
    "wrong extension": ("c.exe", b"MZ\x90\x00", "(?i)file type"),  # gradio or we refuse it
}


@pytest.mark.parametrize("case", sorted(BAD_UPLOADS))
def test_bad_upload_is_explained_and_app_keeps_answering(client, tmp_path, case):
    from gradio_client.exceptions import AppError

    name, data, message = BAD_UPLOADS[case]
    with pytest.raises(AppError, match=message):
        client.predict(query="cats", corpus_source="Upload", corpus_file=_upload(tmp_path, name, data),
                       api_name="/compare")
    _good_request_still_works(client)


def test_corpus_over_the_document_cap_is_refused(client):
    from gradio_client.exceptions import AppError

    from explorer.data.corpus import MAX_DOCUMENTS

    lines = "\n".join(f"document number {i}" for i in range(MAX_DOCUMENTS + 1))
    with pytest.raises(AppError, match=f"limit is {MAX_DOCUMENTS:,}"):
        client.predict(query="cats", corpus_source="Paste", corpus_text=lines, api_name="/compare")
    _good_request_still_works(client)


def test_top_k_larger_than_corpus_is_clamped_and_said(client):
    outputs = client.predict(query="cats", corpus_source="Paste", corpus_text=GOOD_CORPUS, top_k=50,
                             api_name="/compare")
    data = _comparison(outputs)
    assert data["top_k"] == 3 and len(data["cross_encoder"]) == 3
    assert any("clamped" in note for note in data["notes"])
    assert any(isinstance(o, str) and "clamped" in o for o in outputs)  # shown on the page too


def test_overlong_documents_are_truncated_and_counted(client):
    long_document = "The cat sat on the mat. " * 400  # ~2,800 tokens, the model takes 512
    outputs = client.predict(query="cat on a mat", corpus_source="Paste",
                             corpus_text=f"{long_document}\nA short note about dogs.", top_k=2, api_name="/compare")
    data = _comparison(outputs)
    assert any("1 document(s) were longer" in note for note in data["notes"])


def test_load_thirty_clients_five_mixed_requests_each(app_url):
    from explorer.tools.loadtest import format_load_report, run_load

    report = run_load(app_url, clients=30, requests_per_client=5, timeout_s=900, mixed=True)
    print(format_load_report(report))  # p50/p95 per endpoint, in the test log
    assert report.errors == 0, report.error_messages
    assert report.completed == 150 and report.p95_ms is not None
    assert set(report.per_kind_ms) == {"compare", "inspect", "long_document"}
    # Models are shared and caches bounded: memory must level off, not climb with traffic.
    assert report.rss_growth_percent is not None and report.rss_growth_percent < 10


def test_upload_over_the_server_cap_is_refused(client, tmp_path):
    from gradio_client.exceptions import AppError

    from explorer.data.corpus import MAX_CORPUS_BYTES

    oversized = ("a line about cats\n" * (MAX_CORPUS_BYTES // 18 + 1000)).encode()
    # The client checks the cap the server publishes, and the server enforces it too.
    with pytest.raises((AppError, ValueError), match="exceeds the maximum file size"):
        client.predict(query="cats", corpus_source="Upload", corpus_file=_upload(tmp_path, "big.txt", oversized),
                       api_name="/compare")
    _good_request_still_works(client)


# A short inspection answered while long ones run: tests/test_server_limits.py, where two long
# inspections hold the long-job lane one after the other, so the window does not hang on one
# inspection's speed on this CPU.


def test_whole_corpus_scoring_past_the_pair_budget_is_refused_with_a_message(client):
    from gradio_client.exceptions import AppError

    from explorer.budgets import MAX_WHOLE_CORPUS_TOKENS

    # Pairs cut at 512 tokens each: one pair more than the token budget holds.
    document = "Cats purr when they are content and sleep in the sun for most of the day. " * 40
    corpus = "\n".join([document] * (MAX_WHOLE_CORPUS_TOKENS // 512 + 1))
    with pytest.raises(AppError) as caught:
        client.predict(query="cats", corpus_source="Paste", corpus_text=corpus, top_k=3, score_all=True,
                       first_stage="bm25", api_name="/compare")
    assert f"{MAX_WHOLE_CORPUS_TOKENS:,} tokens" in str(caught.value) and "command line" in str(caught.value)
    _good_request_still_works(client)


@pytest.mark.parametrize("top_k", ["many", None])
def test_a_top_k_gradio_cannot_read_names_the_value(client, top_k):
    """Through the API, a top-k that is not a number is refused with a message naming it, not a generic error."""
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=r"slider.*\n*.*Expected a `float`") as caught:
        client.predict(query="cats", corpus_source="Paste", corpus_text=GOOD_CORPUS, top_k=top_k, api_name="/compare")
    assert str(top_k) in str(caught.value)  # 'many' or None, as sent
    _good_request_still_works(client)
