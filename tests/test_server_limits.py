"""A server that runs for weeks: per-request files are removed, the on-disk embedding cache keeps
to its size, and what one request may ask is budgeted by the work it causes."""

from __future__ import annotations

import os
import time
import uuid

import numpy as np
import pytest

from explorer.data.corpus import corpus_from_text
from explorer.paths import checksum_path, trim_to_size, write_checked


def _cache_file(folder, name: str, size: int, mtime: float):
    path = folder / name
    write_checked(path, b"x" * size)
    os.utime(path, (mtime, mtime))
    return path


def test_trim_removes_least_recently_used_first_until_under_the_cap(tmp_path):
    # Four 1,000-byte files (+ 64-byte checksums), used in the order b, d, a, c (oldest first).
    paths = {name: _cache_file(tmp_path, f"{name}.npy", 1000, mtime)
             for name, mtime in {"a": 300, "b": 100, "c": 400, "d": 200}.items()}
    removed = trim_to_size(tmp_path, max_bytes=2200)  # room for two files and their checksums (2 x 1064)
    assert removed == [paths["b"], paths["d"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "a.npy.sha256", "c.npy", "c.npy.sha256"]


def test_trim_keeps_the_newest_file_even_past_the_cap(tmp_path):
    old = _cache_file(tmp_path, "old.npy", 5000, 100)
    new = _cache_file(tmp_path, "new.npy", 5000, 200)
    assert trim_to_size(tmp_path, max_bytes=10) == [old]
    assert new.is_file() and checksum_path(new).is_file() and not checksum_path(old).exists()


def test_embedding_disk_cache_evicts_the_least_recently_used_corpus(bi_model, tmp_path, monkeypatch):
    """Three corpora through the real encoder with room for two files: reading corpus A again makes
    B the least recently used, so writing C removes B's file and keeps A's."""
    from explorer.rankers import bi_encoder
    from explorer.caches import CORPUS_INDEXES as EMBEDDING_CACHE
    from explorer.rankers.bi_encoder import BiEncoder, _disk_path

    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path))
    encoder = BiEncoder(bi_model, "fp32")
    corpora = {name: corpus_from_text(f"{name} one about cats.\n{name} two about dogs.\n{name} three about birds.")
               for name in "ABC"}
    one_file = 3 * encoder.dimension * 4 + 128 + 64  # float32 rows, the .npy header, the checksum
    monkeypatch.setattr(bi_encoder, "MAX_EMBEDDING_DISK_BYTES", 2 * one_file + 100)
    EMBEDDING_CACHE.clear()
    paths = {}
    for clock, name in enumerate("AB"):
        encoder.index_corpus(corpora[name].texts, corpora[name].fingerprint, persist=True)
        paths[name] = _disk_path(encoder, corpora[name].fingerprint)
        os.utime(paths[name], (1000 + clock, 1000 + clock))  # A written before B
    EMBEDDING_CACHE.clear()  # the next read of A comes from disk and marks it used
    again, from_disk = encoder.index_corpus(corpora["A"].texts, corpora["A"].fingerprint, persist=True)
    assert from_disk
    EMBEDDING_CACHE.clear()
    encoder.index_corpus(corpora["C"].texts, corpora["C"].fingerprint, persist=True)
    paths["C"] = _disk_path(encoder, corpora["C"].fingerprint)
    assert paths["A"].is_file() and paths["C"].is_file()
    assert not paths["B"].exists() and not checksum_path(paths["B"]).exists()
    np.testing.assert_allclose(again.embeddings, encoder.encode(corpora["A"].texts), atol=1e-6)
    EMBEDDING_CACHE.clear()


def test_request_folders_live_in_gradios_cache_and_old_ones_are_swept(tmp_path, monkeypatch):
    from explorer.ui import served_files

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    folders = [served_files.request_folder(kind) for kind in served_files.KINDS]
    for folder in folders:
        (folder / "file.txt").write_text("x")
        assert folder.parent == tmp_path and folder.name.startswith("explorer-")
    assert len(folders) == 4 and served_files.count_files()["request_files"] == 4  # results, runs, labels, cases
    keep = served_files.SERVED_FILES_MAX_AGE_S + 2 * served_files.SERVED_FILES_SWEEP_S
    # Just inside the age, nothing goes; a second past it, all four go (their creation time is in the name).
    assert served_files.sweep(now=time.time() + keep - 5) == 0
    assert served_files.sweep(now=time.time() + keep + 5) == 4
    left = served_files.count_files()
    assert (left["request_files"], left["request_folders"], left["gradio_cache_files"]) == (0, 0, 0)


def test_the_app_deletes_gradios_cached_files_on_the_served_files_schedule():
    from explorer.ui import served_files
    from explorer.ui.app import build_app

    assert build_app().delete_cache == (served_files.SERVED_FILES_SWEEP_S, served_files.SERVED_FILES_MAX_AGE_S)


# ---- the long-job lane ---------------------------------------------------------------------------


def test_the_lane_runs_one_long_job_lets_one_wait_in_order_and_refuses_the_next():
    """Threads and events only: the second job is told its place and runs after the first; a third
    finds the line full and is refused with a message; the lane is empty again at the end."""
    import threading

    from explorer.errors import ExplorerError
    from explorer.pipeline.work import Lane

    lane = Lane("test", running=1, waiting=1)
    first_in, release_first, second_told, second_in = (threading.Event() for _ in range(4))
    order, messages = [], []

    def first():
        with lane.slot("job 1"):
            order.append("first")
            first_in.set()
            release_first.wait()

    def second():
        def progress(message):
            messages.append(message)
            if message.startswith("Waiting"):
                second_told.set()
        with lane.slot("job 2", progress):
            order.append("second")
            second_in.set()

    threads = [threading.Thread(target=first)]
    threads[0].start()
    first_in.wait()
    threads.append(threading.Thread(target=second))
    threads[1].start()
    second_told.wait()
    assert messages[0] == "Waiting for the test lane: 1 job(s) ahead"
    assert lane.state() == {"running": 1, "waiting": 1}
    with pytest.raises(ExplorerError, match=r"busy with long jobs \(1 running, 1 waiting, at most 1 may wait; job 3"):
        with lane.slot("job 3"):
            pass
    assert not second_in.is_set()  # still waiting behind the first
    release_first.set()
    for thread in threads:
        thread.join()
    assert order == ["first", "second"] and messages[-1] == "Running in the test lane: job 2"
    assert lane.state() == {"running": 0, "waiting": 0}


def test_every_event_that_may_run_a_long_job_has_room_for_short_ones_beside_it():
    from explorer.ui.app import build_app
    from explorer.ui.lanes import EVENT_CONCURRENCY, LONG_JOBS

    groups = {}
    for fn in build_app().fns.values():
        groups.setdefault(fn.concurrency_id, set()).add(fn.concurrency_limit)
    for name in ("compare", "inspect", "contrast", "evaluate", "evaluate_pipelines", "evaluate_depths", "heads"):
        assert groups[name] == {EVENT_CONCURRENCY}, name
    # The long job, every one allowed to wait for the lane, and at least two short ones.
    assert EVENT_CONCURRENCY >= LONG_JOBS.running + LONG_JOBS.waiting + 2


# ---- budgets by work done ------------------------------------------------------------------------


def test_word_diff_sets_aside_the_shared_ends_and_reports_a_huge_middle_as_one_block():
    from explorer.budgets import MAX_DIFF_WORDS
    from explorer.interpret.rescore import word_changes

    before = " ".join(f"w{i}" for i in range(30_000))
    # Two changes ten words apart in 30,000 words: the shared ends are set aside, difflib sees 11 words.
    near = before.replace("w10 ", "x10 ").replace("w20 ", "")
    assert word_changes(before, near) == [
        {"op": "replace", "before": "w10", "after": "x10", "word": 10},
        {"op": "delete", "before": "w20", "after": "", "word": 20},
    ]
    # Changes 29,980 words apart: past MAX_DIFF_WORDS, one replacement from the first to the last.
    far = before.replace("w10 ", "x10 ").replace("w29990 ", "")
    assert 29_980 > MAX_DIFF_WORDS
    assert word_changes(before, far) == [
        {"op": "replace", "before": " ".join(f"w{i}" for i in range(10, 29991)),
         "after": " ".join(["x10", *(f"w{i}" for i in range(11, 29990))]), "word": 10},
    ]
    # With room for them, difflib finds the same two changes.
    assert word_changes(before, far, max_words=30_000) == [
        {"op": "replace", "before": "w10", "after": "x10", "word": 10},
        {"op": "delete", "before": "w29990", "after": "", "word": 29990},
    ]


def test_an_edit_longer_than_inspect_reads_is_refused_naming_the_limit(cross_model):
    from explorer.budgets import MAX_EDIT_CHARS
    from explorer.errors import ExplorerError
    from explorer.interpret.rescore import edit_and_rescore
    from explorer.rankers.cross_encoder import CrossEncoder

    scorer = CrossEncoder(cross_model, "fp32")
    with pytest.raises(ExplorerError, match=f"{MAX_EDIT_CHARS + 1:,} characters long; the limit is {MAX_EDIT_CHARS:,}"):
        edit_and_rescore(scorer, "cats", "Cats purr.", "x" * (MAX_EDIT_CHARS + 1))


def test_uploaded_runs_are_capped_by_number_and_bytes(tmp_path):
    import gradio as gr

    from explorer.budgets import MAX_UPLOADED_RUNS, MAX_UPLOADED_RUNS_BYTES, check_uploaded_runs
    from explorer.errors import ExplorerError
    from explorer.ui.eval_tab import run_pipelines

    runs = []
    for i in range(MAX_UPLOADED_RUNS + 1):
        path = tmp_path / f"r{i}.run"
        path.write_text("q1 Q0 d1 1 1.0 r\n")
        runs.append(str(path))
    # The page refuses before reading any run or running any pipeline.
    with pytest.raises(gr.Error, match=f"{MAX_UPLOADED_RUNS + 1} TREC runs were uploaded; .* at most {MAX_UPLOADED_RUNS}"):
        run_pipelines("Built-in set", "negation", pipelines=["bm25"], baseline="bm25", run_files=runs, top_k=5)
    check_uploaded_runs([1000] * MAX_UPLOADED_RUNS)  # at the cap: accepted
    with pytest.raises(ExplorerError, match="MB together; the limit is"):
        check_uploaded_runs([MAX_UPLOADED_RUNS_BYTES // 2, MAX_UPLOADED_RUNS_BYTES // 2 + 1])


def test_integrated_gradients_batches_by_tokens_and_refuses_past_its_budget(cross_model):
    from explorer.budgets import IG_BATCH_TOKENS, MAX_IG_STEP_TOKENS
    from explorer.errors import ExplorerError
    from explorer.interpret.integrated_gradients import ig_batch_size, integrated_gradients
    from explorer.interpret.pair import encode_pair
    from explorer.rankers.cross_encoder import CrossEncoder

    assert ig_batch_size(512) == IG_BATCH_TOKENS // 512 and ig_batch_size(10_000) == 1 and ig_batch_size(8, 50) == 50
    scorer = CrossEncoder(cross_model, "fp32")
    pair = encode_pair(scorer, "cats", "Cats purr when they are content.")
    tokens = int(pair.features["input_ids"].shape[1])
    steps = MAX_IG_STEP_TOKENS // tokens + 1
    with pytest.raises(ExplorerError, match=f"{steps} steps over a {tokens}-token pair is {steps * tokens:,} token-steps"):
        integrated_gradients(scorer, pair, steps=steps)


# ---- through the running app (gradio_client), with small budgets so it stays cheap ------------------

SMALL_BUDGETS = {
    # A "maximum-size" upload: set by `small_app` from this CPU's measured encoding speed (see
    # `_encode_cap`), so the big comparison outlasts the steps the test takes meanwhile on any CPU.
    "EXPLORER_MAX_ENCODE_TOKENS": "12000",
    "EXPLORER_LONG_JOB_TOKENS": "2000",
    "EXPLORER_LONG_JOBS_WAITING": "1",
    # Per-request files go ten seconds after they are made (gradio's delete_cache every two).
    "EXPLORER_SERVED_FILES_MAX_AGE_S": "10",
    "EXPLORER_SERVED_FILES_SWEEP_S": "2",
}
TWO_DOCUMENTS = "Cats purr when they are content.\nDogs bark at strangers."


# How long a maximum-size upload should take to encode on the machine running the tests. The
# steps the test takes while it runs (a second upload reaching the lane, a third refused, a
# two-document comparison answered) take about a second; 30 s leaves a wide margin on every CPU.
BIG_UPLOAD_ENCODE_S = 30.0


def _encode_cap(bi_model) -> int:
    """EXPLORER_MAX_ENCODE_TOKENS for `small_app`: the tokens this CPU's bi-encoder encodes in
    BIG_UPLOAD_ENCODE_S, measured in-process on the same model (at least 12,000). Speed sizes the
    test's input here; no assertion is ever made about time."""
    import time

    passage = ("The committee met on Tuesday to discuss the annual budget, the parking arrangements "
               "and the summer festival of the town, and it decided nothing at all about any of them. ") * 2
    texts = [f"{i} {passage}" for i in range(64)]
    tokens = sum(len(ids) for ids in bi_model.tokenizer(texts)["input_ids"])
    bi_model.library.encode(texts[:8])  # warm-up: first-call costs are not encoding speed
    start = time.perf_counter()
    bi_model.library.encode(texts, batch_size=32)
    tokens_per_s = tokens / (time.perf_counter() - start)
    return max(12_000, int(tokens_per_s * BIG_UPLOAD_ENCODE_S))


@pytest.fixture(scope="module")
def small_app(tmp_path_factory, bi_model):
    """The app with SMALL_BUDGETS and its own gradio cache folder: (url, cache folder)."""
    from explorer.tools.app_process import running_app

    SMALL_BUDGETS["EXPLORER_MAX_ENCODE_TOKENS"] = str(_encode_cap(bi_model))

    cache = tmp_path_factory.mktemp("gradio-cache")
    # Its own temporary folder too: per-request files must never land there (others' runs share /tmp).
    temporary = tmp_path_factory.mktemp("app-tmp")
    log_path = tmp_path_factory.mktemp("small-app") / "app.log"
    with log_path.open("wb") as log:
        try:
            with running_app(timeout_s=900, log=log, extra_env={
                "HF_HUB_OFFLINE": "1", "GRADIO_TEMP_DIR": str(cache), "TMPDIR": str(temporary), **SMALL_BUDGETS,
            }) as app:
                yield app.url, cache, temporary
        except RuntimeError as error:
            pytest.fail(f"{error}:\n{log_path.read_text()[-4000:]}")


def _corpus_of_tokens(bi_model, tokens: int, seed: str, path):
    """A .txt corpus of distinct ~100-token passages whose bi-encoder tokens sum to at most `tokens`,
    within one passage of it (counted by the model's own tokenizer, as the app counts)."""
    passage = ("{seed} {i}: the committee met on Tuesday to discuss the annual budget, the parking arrangements "
               "and the summer festival of the town, and it decided nothing at all about any of them, again. ") * 2
    lines, total, i = [], 0, 0
    while True:
        text = passage.format(seed=seed, i=i)
        count = len(bi_model.tokenizer(text, truncation=True, max_length=bi_model.max_length)["input_ids"])
        if total + count > tokens:
            break
        lines.append(text)
        total, i = total + count, i + 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, len(lines), total


def _wait_for_progress(job, prefix: str, timeout_s: float = 600) -> str:
    """Block until the job reports a progress message starting with `prefix` (gradio_client's own
    stream of status updates, no sleeping); fails if the job finishes first."""
    import asyncio

    from gradio_client.utils import StatusUpdate

    async def watch() -> str:
        async for update in job:
            if isinstance(update, StatusUpdate):
                for unit in update.progress_data or []:
                    if (unit.desc or "").startswith(prefix):
                        return unit.desc
        raise AssertionError(f"the job finished without reporting {prefix!r}: {job.status()}")

    return asyncio.run(asyncio.wait_for(watch(), timeout_s))


def _comparison(outputs) -> dict:
    return next(o for o in outputs if isinstance(o, dict) and "cross_encoder" in o)


def test_a_small_comparison_is_answered_while_a_maximum_size_upload_is_compared(small_app, bi_model, tmp_path):
    """A maximum-size upload (just inside EXPLORER_MAX_ENCODE_TOKENS) runs in the long-job lane; a
    second big one waits there, told its place; a third finds the line full and is refused; a
    two-document comparison sent meanwhile is answered while both big ones are still unfinished."""
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError
    from gradio_client.utils import Status

    url, _, _ = small_app
    cap = int(SMALL_BUDGETS["EXPLORER_MAX_ENCODE_TOKENS"])
    # Fresh texts each run, so no cache of the app's already holds their embeddings.
    big, documents, tokens = _corpus_of_tokens(bi_model, cap, f"first {uuid.uuid4().hex}", tmp_path / "big.txt")
    other, other_documents, _ = _corpus_of_tokens(bi_model, cap, f"second {uuid.uuid4().hex}", tmp_path / "other.txt")
    assert cap - 200 < tokens <= cap
    users = [Client(url, verbose=False) for _ in range(4)]

    def upload(client, path):
        return client.submit(query="when did the committee meet", corpus_source="Upload",
                             corpus_file=handle_file(str(path)), top_k=5, api_name="/compare")

    first = upload(users[0], big)
    _wait_for_progress(first, "Indexing corpus")  # in the lane, encoding
    second = upload(users[1], other)
    assert _wait_for_progress(second, "Waiting for the long-job lane") == "Waiting for the long-job lane: 1 job(s) ahead"
    assert not first.done()  # still encoding: the second waits behind it
    with pytest.raises(AppError, match=r"busy with long jobs \(1 running, 1 waiting, at most 1 may wait"):
        users[2].predict(query="committee", corpus_source="Upload", corpus_file=handle_file(str(big)), top_k=5,
                         api_name="/compare")
    small = _comparison(users[3].predict(query="which animal purrs", corpus_source="Paste", corpus_text=TWO_DOCUMENTS,
                                         top_k=2, api_name="/compare"))
    # Answered first: both big ones are still running or waiting.
    assert not first.done() and not second.done()
    assert {first.status().code, second.status().code} <= {Status.PROCESSING, Status.PROGRESS}
    assert small["cross_encoder"][0]["text"] == "Cats purr when they are content."
    assert _comparison(first.result(timeout=900))["corpus_size"] == documents
    assert _comparison(second.result(timeout=900))["corpus_size"] == other_documents


def test_an_upload_past_the_encode_budget_is_refused_naming_it(small_app, bi_model, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    url, _, _ = small_app
    cap = int(SMALL_BUDGETS["EXPLORER_MAX_ENCODE_TOKENS"])
    path, documents, tokens = _corpus_of_tokens(bi_model, 2 * cap, "over", tmp_path / "over.txt")
    client = Client(url, verbose=False)
    with pytest.raises(AppError) as caught:
        client.predict(query="committee", corpus_source="Upload", corpus_file=handle_file(str(path)), top_k=5,
                       api_name="/compare")
    message = str(caught.value)
    assert f"reading {tokens:,} tokens ({documents:,} documents)" in message
    assert f"at most {cap:,} tokens" in message and "EXPLORER_MAX_ENCODE_TOKENS" in message and "BM25" in message
    # BM25 encodes nothing: the same upload is compared.
    data = _comparison(client.predict(query="committee", corpus_source="Upload", corpus_file=handle_file(str(path)),
                                      top_k=5, first_stage="bm25", api_name="/compare"))
    assert data["corpus_size"] == documents


def test_a_short_inspection_is_answered_while_two_long_ones_hold_the_lane(small_app):
    from gradio_client import Client

    url, _, _ = small_app
    users = [Client(url, verbose=False) for _ in range(3)]
    # ~480 tokens: the inspection's passes (attention, occlusion) outlast the short one's on any CPU.
    long_document = "The cat sat on the mat and looked at the garden for a long while. " * 34
    first = users[0].submit(query="where did the cat sit", document=long_document, api_name="/inspect")
    _wait_for_progress(first, "Running in the long-job lane")
    second = users[1].submit(query="what did the cat look at", document=long_document, api_name="/inspect")
    _wait_for_progress(second, "Waiting for the long-job lane")
    short = users[2].predict(query="cats", document="Cats purr when they are content.", api_name="/inspect")
    assert not first.done() and not second.done()
    assert "score" in short[0] and "logit" in short[0]
    first.result(timeout=900), second.result(timeout=900)


def test_whole_corpus_scoring_is_budgeted_in_tokens_not_pairs(small_app):
    """Ten long documents are far fewer pairs than the old cap of 500, and past the token budget."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from explorer.budgets import MAX_WHOLE_CORPUS_TOKENS

    url, _, _ = small_app
    long_document = "The committee met on Tuesday to discuss the annual budget and decided nothing. " * 60
    documents = MAX_WHOLE_CORPUS_TOKENS // 512 + 1  # each pair is cut at 512 tokens
    with pytest.raises(AppError) as caught:
        Client(url, verbose=False).predict(
            query="committee", corpus_source="Paste", corpus_text="\n".join([long_document] * documents), top_k=3,
            score_all=True, first_stage="bm25", api_name="/compare")
    message = str(caught.value)
    assert f"{documents:,} (query, document) pairs of {documents * 512:,} tokens" in message
    assert f"budget is {MAX_WHOLE_CORPUS_TOKENS:,} tokens" in message and "command line" in message


def test_a_short_soak_leaves_no_per_request_files_behind(small_app):
    """Two rounds of every kind of soak request: each compare and evaluation made its files in
    gradio's cache folder (none in the system temporary folder), and once their age has passed the
    app's delete_cache and sweep leave none of them (waited for as a condition, with a deadline)."""
    import threading
    import time

    from explorer.tools.loadtest import SOAK_MIX, run_soak
    from explorer.ui.served_files import count_files

    url, cache, temporary = small_app
    report = run_soak(url, rounds=2, requests_per_round=len(SOAK_MIX), clients=2, timeout_s=1800, files_dir=str(cache))
    assert [r.errors for r in report.rounds] == [0, 0], report.error_messages
    assert [r.requests for r in report.rounds] == [len(SOAK_MIX)] * 2
    assert all(r.server_rss_mb for r in report.rounds)
    assert not list(temporary.glob("explorer-*"))  # nothing in the app's temporary folder
    deadline, tick = time.monotonic() + 120, threading.Event()
    while (left := count_files(cache))["request_folders"] or left["request_files"] or left["gradio_cache_files"]:
        assert time.monotonic() < deadline, f"per-request files still on disk: {left}"
        tick.wait(0.5)  # polling the folder: the app removes the files on its own schedule
