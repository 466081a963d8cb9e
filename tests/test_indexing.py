"""Prebuilt indexes on a local Ray with two workers (loopback only, started once for the module).

An index built through Ray ranks like the in-process path; a worker killed mid-job and a job
that fails half-way both end with the same files; a rerun computes only what is missing;
a mismatched index is refused, naming what differs; `compare --index` prints what
`compare --corpus` prints.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from cli_support import SNAKE_CORPUS, run_cli, write_corpus
from requirements_support import require

from explorer.cli import main
from explorer.data.corpus import corpus_from_text, read_corpus
from explorer.engine.catalog import BGE_SMALL, DEFAULT_BI_ENCODER
from explorer.errors import ExplorerError
from explorer.indexing.build import build
from explorer.indexing.prebuilt import PrebuiltIndex
from explorer.indexing.shards import ShardWorker
from explorer.paths import write_checked
from explorer.rankers.bi_encoder import load_bi_encoder
from explorer.rankers.bm25 import BM25
from explorer.rankers.late_interaction import load_late_interaction

# Not imported here: ray_session sets Ray up for loopback before its first import.
RAY_INSTALLED = importlib.util.find_spec("ray") is not None
QUERIES = ["python snake", "a programming language", "comedy", "pets that purr"]
SHARD = 2  # 7 documents -> 4 shards
BI_JOB = "bi--sentence-transformers--all-MiniLM-L6-v2-e9e2c881"
quiet = lambda what: lambda done, total: None  # noqa: E731  (no progress lines in the test log)


@pytest.fixture(scope="module", autouse=True)
def ray_is_installed():
    """Every test here needs Ray: without it each one fails, naming it (see requirements_support)."""
    require(RAY_INSTALLED, "ray", "pip install -r requirements-ray.txt")


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module: 2 CPUs on 127.0.0.1, shut down after the last test."""
    from explorer.indexing.ray_jobs import ray_session

    with ray_session(None, 2):
        import ray

        assert ray.util.get_node_ip_address() == "127.0.0.1"
        yield


@pytest.fixture(scope="module")
def corpus():
    return corpus_from_text("\n".join(SNAKE_CORPUS))


def build_snake(out: Path, corpus, **options):
    options = {"bi_encoders": [DEFAULT_BI_ENCODER], "workers": 2, "precision": "fp32", "shard_size": SHARD,
               "progress": quiet, **options}
    return build(corpus, out, **options)


@pytest.fixture(scope="module")
def built(local_ray, corpus, tmp_path_factory):
    """The snake corpus indexed in 4 shards: bi-encoder, BM25 and late-interaction token vectors."""
    out = tmp_path_factory.mktemp("index")
    manifest, computed = build_snake(out, corpus, bm25=True, late=True)
    return out, manifest, computed


def stored_embeddings(out: Path) -> np.ndarray:
    entry = PrebuiltIndex(out).manifest["bi_encoders"][0]
    return np.load(out / entry["embeddings"])


def test_ray_index_ranks_like_the_in_process_path(built, corpus):
    out, manifest, computed = built
    assert sorted(computed[BI_JOB]) == [0, 1, 2, 3]  # in the order they finished
    assert manifest["corpus"] == {"name": corpus.name, "fingerprint": corpus.fingerprint, "documents": 7,
                                  "file": "documents.jsonl"}
    entry = manifest["bi_encoders"][0]
    assert (entry["model_id"], entry["precision"], entry["index_type"], entry["count"]) == (DEFAULT_BI_ENCODER, "fp32", "exact", 7)

    index = PrebuiltIndex(out)
    assert [d.id for d in index.corpus.documents] == [d.id for d in corpus.documents]
    live = load_bi_encoder(DEFAULT_BI_ENCODER, "fp32")
    # Shards are encoded in other batches than the whole corpus: equal up to float rounding.
    np.testing.assert_allclose(stored_embeddings(out), live.encode(corpus.texts), atol=1e-5)
    prebuilt_bi = index.first_stage("bi", DEFAULT_BI_ENCODER, "fp32")
    prebuilt_bm25 = index.first_stage("bm25", DEFAULT_BI_ENCODER, "fp32")
    for query in QUERIES:
        ours = prebuilt_bi.rank(query, corpus.texts, corpus.fingerprint, 7)
        theirs = live.rank(query, corpus.texts, corpus.fingerprint, 7)
        assert [p for p, _ in ours] == [p for p, _ in theirs]
        np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-5)
        assert prebuilt_bm25.rank(query, corpus.texts, corpus.fingerprint, 7) == \
            BM25().rank(query, corpus.texts, corpus.fingerprint, 7)


def test_late_interaction_token_vectors_equal_the_in_process_ones(built, corpus):
    out, manifest, _ = built
    stored = np.load(out / manifest["late"]["file"])
    vectors, _ = load_late_interaction(precision="fp32").token_vectors(corpus.texts)
    assert list(stored["lengths"]) == [len(v) for v in vectors]
    np.testing.assert_allclose(stored["vectors"], np.concatenate(vectors), atol=1e-5)


def test_a_worker_killed_mid_job_ends_with_the_same_files(local_ray, corpus, built, tmp_path):
    marker = tmp_path / "killed-once"

    class DiesOnce(ShardWorker):
        """Kills its own process on the first shard any worker takes; Ray restarts it and retries."""

        def __call__(self, batch):
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return super().__call__(batch)
            os._exit(1)

    _, computed = build_snake(tmp_path / "index", corpus, worker_class=DiesOnce)
    assert marker.exists() and computed[BI_JOB] and sorted(computed[BI_JOB]) == [0, 1, 2, 3]
    reference = built[0] / "shards" / BI_JOB
    for shard in range(4):
        name = f"{shard:06d}.npz"
        assert (tmp_path / "index" / "shards" / BI_JOB / name).read_bytes() == (reference / name).read_bytes()
    assert np.array_equal(stored_embeddings(tmp_path / "index"), stored_embeddings(built[0]))


def test_a_rerun_after_a_crash_computes_only_the_missing_shards(local_ray, corpus, built, tmp_path):
    out = tmp_path / "index"
    shutil.copytree(built[0] / "shards", out / "shards")
    # What a crash after shards 0 and 2 leaves: their files, no others, no manifest; and shard 0 damaged.
    shards = out / "shards" / BI_JOB
    for name in ("000001.npz", "000001.npz.sha256", "000003.npz", "000003.npz.sha256"):
        (shards / name).unlink()
    (shards / "000000.npz").write_bytes(b"damaged")

    _, computed = build_snake(out, corpus)
    assert sorted(computed[BI_JOB]) == [0, 1, 3]
    _, again = build_snake(out, corpus)
    assert again[BI_JOB] == []
    assert np.array_equal(stored_embeddings(out), stored_embeddings(built[0]))


def test_hnsw_recall_in_the_manifest_is_measured_against_exact_search(built, corpus, tmp_path):
    # The built shards are reused (nothing is encoded): only the assembly runs, with HNSW.
    shutil.copytree(built[0] / "shards", tmp_path / "index" / "shards")
    manifest, computed = build_snake(tmp_path / "index", corpus, index_type="hnsw")
    assert computed[BI_JOB] == []
    entry = manifest["bi_encoders"][0]
    assert entry["index_type"] == "hnsw"
    dense = PrebuiltIndex(tmp_path / "index").dense_index(entry)
    embeddings = dense.embeddings
    # Recall@10 recomputed with numpy (k = 7 here, the whole corpus), every document as a query.
    truth = np.argsort(-(embeddings @ embeddings.T), axis=1, kind="stable")[:, :10]
    _, found = dense.index.search(embeddings, 10)
    expected = np.mean([len(set(t) & set(f)) / len(t) for t, f in zip(truth, found)])
    assert entry["recall_at_10"] == pytest.approx(expected)


def refusal(capsys, *argv: str) -> str:
    assert main(list(argv)) == 2
    return capsys.readouterr().err


def test_a_mismatched_index_is_refused_naming_what_differs(built, corpus, tmp_path, capsys):
    out = str(built[0])
    message = refusal(capsys, "compare", "--index", out, "--query", "snake", "--bi-encoder", BGE_SMALL)
    assert BGE_SMALL in message and DEFAULT_BI_ENCODER in message
    message = refusal(capsys, "compare", "--index", out, "--query", "snake", "--precision", "bf16")
    assert "fp32" in message and "bf16" in message

    edited = tmp_path / "edited.txt"
    edited.write_text("\n".join(SNAKE_CORPUS[:-1] + ["Snakes hear through their jaws."]) + "\n")
    message = refusal(capsys, "compare", "--index", out, "--corpus", str(edited), "--query", "snake")
    assert "edited.txt" in message and corpus.fingerprint[:12] in message

    # Documents edited inside the index (checksum rewritten to match): its fingerprint gives it away.
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("manifest.json", "manifest.json.sha256"):
        (copy / name).write_bytes((built[0] / name).read_bytes())
    lines = (built[0] / "documents.jsonl").read_text().splitlines()
    lines[0] = json.dumps({"id": "1", "text": "Ball pythons are popular pets.", "title": ""})
    write_checked(copy / "documents.jsonl", ("\n".join(lines) + "\n").encode())
    with pytest.raises(ExplorerError, match="fingerprint"):
        PrebuiltIndex(copy)
    # A manifest naming another model: that model is what the index holds, so the default is refused.
    manifest = json.loads((built[0] / "manifest.json").read_text())
    manifest["bi_encoders"][0]["model_id"] = BGE_SMALL
    write_checked(copy / "manifest.json", json.dumps(manifest).encode())
    write_checked(copy / "documents.jsonl", (built[0] / "documents.jsonl").read_bytes())
    with pytest.raises(ExplorerError, match="holds no embeddings of bi-encoder 'sentence-transformers"):
        PrebuiltIndex(copy).first_stage("bi", DEFAULT_BI_ENCODER, "fp32")
    # Building into a folder that holds another corpus's index.
    with pytest.raises(ExplorerError, match="another corpus"):
        build(read_corpus(edited), out, [DEFAULT_BI_ENCODER], progress=quiet)


def test_compare_index_prints_the_lists_compare_corpus_prints(local_ray, tmp_path):
    path = write_corpus(tmp_path)
    out = str(tmp_path / "index")
    # The default shard size holds the whole corpus in one shard: encoded in the same batches as in-process.
    assert main(["index", "--corpus", path, "--out", out, "--bm25", "--precision", "fp32", "--json"]) == 0
    for flags in ([], ["--first-stage", "hybrid", "--all"]):
        common = ["--query", "python snake", "--top-k", "4", "--precision", "fp32", "--json", *flags]
        from_index = run_cli("compare", "--index", out, *common)
        from_corpus = run_cli("compare", "--corpus", path, *common)
        assert from_index["corpus_embeddings_cached"] is True
        for key in ("bi_encoder", "first_stage", "cross_encoder", "cross_encoder_full"):
            assert from_index.get(key) == from_corpus.get(key)
        assert from_index["cross_encoder"]


def test_recall_at_10_equals_a_numpy_count_on_an_index_that_misses():
    import faiss

    from explorer.indexing.build import recall_at_10

    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((2000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = faiss.IndexHNSWFlat(32, 4, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efSearch = 10  # narrow on purpose, so it misses neighbours
    index.add(vectors)
    truth = np.argsort(-(vectors @ vectors.T), axis=1, kind="stable")[:, :10]
    _, found = index.search(vectors, 10)
    expected = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found)])
    assert expected < 0.95
    assert recall_at_10(index, vectors, queries=len(vectors)) == pytest.approx(expected)


def test_the_app_offers_a_prebuilt_index_in_the_corpus_picker(built, tmp_path):
    """`EXPLORER_INDEX` (what `app.py --index DIR` sets): the picker offers the index, and /compare on it
    gives the rankings `compare --index` gives."""
    from gradio_client import Client

    from explorer.tools.app_process import running_app

    out = str(built[0])
    expected = run_cli("compare", "--index", out, "--query", "python snake", "--top-k", "3", "--json")
    with (tmp_path / "app.log").open("wb") as log, \
            running_app(timeout_s=600, extra_env={"HF_HUB_OFFLINE": "1", "EXPLORER_INDEX": out}, log=log) as app:
        client = Client(app.url, verbose=False)
        outputs = client.predict(query="python snake", corpus_source="Built-in", builtin_corpus="prebuilt-index",
                                 top_k=3, api_name="/compare")
    found = [o for o in outputs if isinstance(o, dict) and "cross_encoder" in o]
    assert len(found) == 1
    assert found[0]["corpus_size"] == 7 and found[0]["corpus_embeddings_cached"] is True
    for key in ("bi_encoder", "cross_encoder"):
        assert [(h["id"], h["rank"]) for h in found[0][key]] == [(h["id"], h["rank"]) for h in expected[key]]


def test_whole_corpus_scoring_on_ray_gives_the_in_process_numbers(local_ray, tmp_path):
    from explorer.data.builtin_corpora import load_set
    from explorer.engine.catalog import DEFAULT_CROSS_ENCODER
    from explorer.indexing.ray_scoring import RayPairScorer
    from explorer.pipeline.evaluate import evaluate

    shipped = load_set("negation")
    scorers = []

    def on_ray(scorer):
        scorers.append(RayPairScorer(scorer, workers=2, work_dir=tmp_path, shard_pairs=40, shard_progress=quiet))
        return scorers[-1]

    def run(runner=None):
        return evaluate(shipped.corpus, shipped.queries, shipped.qrels, top_k=5, cross_encoder=DEFAULT_CROSS_ENCODER,
                        precision="fp32", persist_embeddings=False, cross_encoder_runner=runner)

    reference, on_ray_report = run(), run(on_ray)
    pairs = len(shipped.corpus) * on_ray_report.query_count
    assert sorted(scorers[0].computed) == list(range(-(-pairs // 40)))
    assert on_ray_report.metrics == reference.metrics
    assert on_ray_report.rankings == reference.rankings  # every pipeline's ranking of every query
    # The same job again finds every shard on disk and computes none.
    again = run(on_ray)
    assert scorers[1].computed == [] and again.metrics == reference.metrics


def test_cli_eval_with_ray_prints_what_eval_without_it_prints(local_ray, tmp_path, monkeypatch):
    """`eval --ray --workers 2` (stage (c) as a Ray job) against the plain command, on `negation`."""
    from cli_support import run_cli
    from explorer.indexing import ray_scoring

    monkeypatch.setattr(ray_scoring, "cache_dir", lambda: tmp_path)  # no shards from an earlier run

    folder = Path(__file__).resolve().parent.parent / "corpora" / "negation"
    arguments = ["eval", "--corpus", str(folder / "corpus.jsonl"), "--queries", str(folder / "queries.jsonl"),
                 "--qrels", str(folder / "qrels.jsonl"), "--top-k", "5", "--precision", "fp32", "--json"]
    plain, on_ray = run_cli(*arguments), run_cli(*arguments, "--ray", "--workers", "2")
    assert on_ray["metrics"] == plain["metrics"] and on_ray["metrics"]["cross_encoder_full"] is not None
    assert [q["top_ids"] for q in on_ray["per_query"]] == [q["top_ids"] for q in plain["per_query"]]
    assert list((tmp_path / "ray_jobs").glob("*/*.npz"))  # the pairs were scored on Ray, shard by shard


def test_late_interaction_on_an_index_uses_its_stored_vectors_and_ranks_as_encoding_does(built, tmp_path):
    out = built[0]
    index = PrebuiltIndex(out)
    late = index.stored_reranker("late", "auto")
    text = index.corpus.texts[0]
    assert late.token_vectors([text])[0][0] is index.late_vectors(index.manifest["late"])[text]
    assert index.stored_reranker("cross", "auto") is None

    path = write_corpus(tmp_path)  # the same documents, so the same fingerprint
    common = ["--query", "python snake", "--top-k", "5", "--rerankers", "late,cross", "--precision", "fp32", "--json"]
    from_index = run_cli("compare", "--index", str(out), *common)
    from_corpus = run_cli("compare", "--corpus", path, *common)
    for ours, theirs in zip(from_index["stages"], from_corpus["stages"]):
        assert ours["kind"] == theirs["kind"] and ours["model"] == theirs["model"]
        assert [h["id"] for h in ours["ranking"]] == [h["id"] for h in theirs["ranking"]]
        np.testing.assert_allclose([h["score"] for h in ours["ranking"]], [h["score"] for h in theirs["ranking"]], atol=1e-4)



def test_a_job_that_fails_keeps_its_finished_shards_and_says_what_failed(local_ray, corpus, tmp_path):
    """Last in the module: the failed job's actors may outlive it until this Ray shuts down."""
    class FailsOnShardTwo(ShardWorker):
        def __call__(self, batch):
            if 2 in list(batch["shard"]):
                raise RuntimeError("shard 2 failed")
            return super().__call__(batch)

    out = tmp_path / "index"
    with pytest.raises(ExplorerError, match="RuntimeError: shard 2 failed.*run the same command again") as caught:
        build_snake(out, corpus, worker_class=FailsOnShardTwo, workers=1)
    assert not (out / "manifest.json").exists()
    # Whatever came back before the failure is on disk, as many shards as the message says; the
    # failed shard is not. (Which others finished first is Ray's choice: none at all is possible.)
    finished = {int(p.stem) for p in (out / "shards" / BI_JOB).glob("*.npz")}
    kept = int(re.search(r"Its (\d+) finished shard\(s\) of 4", str(caught.value)).group(1))
    assert 2 not in finished and finished <= {0, 1, 3} and len(finished) == kept
    # The same command again computes exactly the missing shards, and the index is complete.
    _, computed = build_snake(out, corpus, workers=1)
    assert sorted(computed[BI_JOB]) == sorted({0, 1, 2, 3} - finished)
    assert (out / "manifest.json").exists()
