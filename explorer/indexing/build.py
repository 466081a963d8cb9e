"""`python -m explorer index`: a persistent index folder built on Ray.

What the folder holds (every file written whole, with its SHA-256 beside it or in the manifest):

    manifest.json                 what was built: models, precision, corpus fingerprint, counts, timings
    documents.jsonl               the corpus itself, so opening the index needs nothing else
    bi/<model>/embeddings.npy     one L2-normalised row per document
    bi/<model>/faiss.index        exact inner product, or HNSW above EXACT_INDEX_MAX documents
    late/<model>/tokens.npz       late-interaction token vectors (flat) and each document's token count
    bm25/                         bm25s's saved index (checksums in the manifest)
    shards/<job>/                 the Ray jobs' shards: a rerun skips the finished ones

The models run on Ray workers (`ray_jobs.run_shards`); BM25 is built in this process
(sparse counting, seconds even for a large corpus). `manifest.json` is written last: a folder
without it is an unfinished build, which the same command resumes.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import faiss
import numpy as np

from explorer.data.corpus import Corpus
from explorer.engine.precision import Precision
from explorer.errors import ExplorerError
from explorer.indexing.ray_jobs import print_progress, ray_session, run_shards
from explorer.indexing.shards import JobSpec, ShardFolder, ShardWorker, cut
from explorer.paths import read_checked, write_checked
from explorer.rankers.bi_encoder import build_index as build_faiss_index
from explorer.rankers.bi_encoder import load_bi_encoder, search
from explorer.rankers.bm25 import BM25, SETTINGS as BM25_SETTINGS
from explorer.rankers.late_interaction import load_late_interaction

FORMAT = 1
SHARD_DOCUMENTS = 256  # passages per shard: a few seconds of encoding, so a lost worker loses little
# Exact search cost grows with the corpus; HNSW's stays about flat. Measured on this 2-core EPYC
# (384-wide vectors, one query, one FAISS thread, median of 20): 0.6 ms at 10k, 8.5 ms at 50k,
# 20 ms at 100k, 40 ms at 200k. Up to 50k exact search costs about what encoding the query does,
# so the index stays exact (recall 1) up to there, and HNSW above.
EXACT_INDEX_MAX = 50_000
RECALL_QUERIES = 200  # documents' own embeddings, sampled (seed 0), used as queries to measure HNSW's recall@10
INDEX_TYPES = ("auto", "exact", "hnsw")


def model_slug(model_id: str) -> str:
    """A folder name for a model id (a local path too): readable, and distinct for distinct ids."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", model_id.replace("/", "--")).strip("-.")[-60:]
    return f"{readable}-{hashlib.sha256(model_id.encode()).hexdigest()[:8]}"


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of the whole file at `path` (read at once); raises OSError if it cannot be read."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_array(path: Path, array: np.ndarray) -> None:
    """Save `array` in .npy format to `path`, with its SHA-256 beside it (`write_checked`)."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    write_checked(path, buffer.getvalue())


def write_documents(corpus: Corpus, path: Path) -> None:
    """The corpus as JSONL (`id`, `text`, `title` per line, UTF-8, non-ASCII kept) to `path`, with its SHA-256
    beside it."""
    lines = [json.dumps({"id": d.id, "text": d.text, "title": d.title}, ensure_ascii=False) for d in corpus.documents]
    write_checked(path, ("\n".join(lines) + "\n").encode("utf-8"))


def choose_index_type(count: int, index_type: str) -> str:
    """The FAISS index kind for `count` vectors: "auto" is "exact" up to EXACT_INDEX_MAX vectors, else "hnsw";
    other INDEX_TYPES pass through. Raises ExplorerError for an unknown kind."""
    if index_type not in INDEX_TYPES:
        raise ExplorerError(f"Unknown index type {index_type!r}: use one of {', '.join(INDEX_TYPES)}.")
    if index_type == "auto":
        return "exact" if count <= EXACT_INDEX_MAX else "hnsw"
    return index_type


def recall_at_10(index: faiss.Index, embeddings: np.ndarray, queries: int = RECALL_QUERIES) -> float:
    """Mean share of the exact top-10 that `index` also returns, over sampled documents used as queries."""
    rng = np.random.default_rng(0)
    picked = rng.choice(len(embeddings), size=min(queries, len(embeddings)), replace=False)
    sample = embeddings[np.sort(picked)]
    exact = build_faiss_index(embeddings, "exact")
    _, truth = search(exact, sample, 10)
    _, found = search(index, sample, 10)
    return float(np.mean([len(set(t) & set(f)) / len(t) for t, f in zip(truth, found)]))


def read_manifest_if_any(folder: Path) -> dict | None:
    """The manifest of a finished build in `folder`, or None if there is none yet."""
    data = read_checked(Path(folder) / "manifest.json")
    return None if data is None else json.loads(data)


class Builder:
    """Builds one index folder: each part's Ray job, then its assembly, then the manifest."""

    def __init__(self, corpus: Corpus, out: Path, precision: Precision, workers: int, shard_size: int,
                 allow_local_models: bool, progress: Callable[[str], Callable[[int, int], None]],
                 worker_class: type):
        self.corpus, self.out, self.precision, self.workers = corpus, Path(out), precision, workers
        self.shard_size, self.allow_local = shard_size, allow_local_models
        self.progress, self.worker_class = progress, worker_class
        self.shards = cut(corpus.texts, shard_size)
        self.computed: dict[str, list[int]] = {}  # job name -> shards computed in this run (the rest were on disk)

    def run_job(self, task: str, ranker) -> tuple[str, ShardFolder]:
        """Every shard of one model's job, computed on Ray or found on disk; the shards' folder."""
        name = f"{task}--{model_slug(ranker.info.model_id)}"
        spec = JobSpec(task, ranker.info.model_id, ranker.info.precision, ranker.info.engine,
                       self.corpus.fingerprint, self.shard_size, len(self.shards))
        folder = ShardFolder(self.out / "shards" / name, spec)
        worker_args = {"task": task, "model_id": ranker.info.model_id, "precision": ranker.info.precision,
                       "allow_local_path": self.allow_local}
        self.computed[name] = run_shards(folder, self.shards, worker_args, self.workers,
                                         self.progress(f"{task} {ranker.info.model_id}"), self.worker_class)
        return name, folder

    def bi_encoder(self, model_id: str, index_type: str) -> dict:
        """Embed the corpus with `model_id` shard by shard (resumable), write embeddings.npy and the FAISS
        index under bi/<model>, and return the manifest entry (model, precision, engine, dimension, count,
        index type, build seconds, ...)."""
        start = time.perf_counter()
        ranker = load_bi_encoder(model_id, self.precision, allow_local_path=self.allow_local)
        name, folder = self.run_job("bi", ranker)
        embeddings = np.concatenate([folder.read(i)["vectors"] for i in range(len(self.shards))]).astype(np.float32)
        kind = choose_index_type(len(embeddings), index_type)
        index = build_faiss_index(embeddings, kind)
        part = self.out / "bi" / model_slug(model_id)
        write_array(part / "embeddings.npy", embeddings)
        write_checked(part / "faiss.index", faiss.serialize_index(index).tobytes())
        return {
            "model_id": model_id, "name": ranker.info.name, "precision": ranker.info.precision,
            "engine": ranker.info.engine, "dimension": int(embeddings.shape[1]), "count": int(len(embeddings)),
            "embeddings": f"bi/{part.name}/embeddings.npy", "faiss": f"bi/{part.name}/faiss.index",
            "index_type": kind,
            "recall_at_10": 1.0 if kind == "exact" else recall_at_10(index, embeddings),
            "recall_queries": "exact search (recall 1 by definition)" if kind == "exact"
            else f"{min(RECALL_QUERIES, len(embeddings))} documents' own embeddings (seed 0), against exact search",
            "shards": name, "build_seconds": round(time.perf_counter() - start, 3),
        }

    def late(self) -> dict:
        """Encode every document's token vectors with the late-interaction model shard by shard, write them to
        late/<model>/tokens.npz (vectors concatenated, plus each document's token count), and return the
        manifest entry."""
        start = time.perf_counter()
        ranker = load_late_interaction(precision=self.precision)
        name, folder = self.run_job("late", ranker)
        pieces = [folder.read(i) for i in range(len(self.shards))]
        lengths = np.concatenate([p["lengths"] for p in pieces])
        vectors = np.concatenate([p["vectors"] for p in pieces if p["vectors"].size]).astype(np.float32)
        part = self.out / "late" / model_slug(ranker.info.model_id)
        buffer = io.BytesIO()
        np.savez(buffer, vectors=vectors, lengths=lengths)
        write_checked(part / "tokens.npz", buffer.getvalue())
        return {
            "model_id": ranker.info.model_id, "name": ranker.info.name, "precision": ranker.info.precision,
            "engine": ranker.info.engine, "tokens": int(len(vectors)), "count": int(len(lengths)),
            "truncated": int(sum(int(p["truncated"]) for p in pieces)),
            "file": f"late/{part.name}/tokens.npz", "shards": name,
            "build_seconds": round(time.perf_counter() - start, 3),
        }

    def bm25(self) -> dict:
        """Build the BM25 index of the corpus, save it under bm25/ and return the manifest entry: the
        settings, each file's SHA-256 and the build seconds."""
        start = time.perf_counter()
        bm25 = BM25()
        index, _ = bm25.index_corpus(self.corpus.texts, self.corpus.fingerprint)
        folder = self.out / "bm25"
        index.retriever.save(str(folder))
        files = {str(p.relative_to(self.out)): sha256_of(p) for p in sorted(folder.rglob("*")) if p.is_file()}
        return {"settings": BM25_SETTINGS, "folder": "bm25", "files": files,
                "build_seconds": round(time.perf_counter() - start, 3)}


def build(
    corpus: Corpus,
    out: str | Path,
    bi_encoders: Sequence[str],
    bm25: bool = False,
    late: bool = False,
    ray_address: str | None = None,
    workers: int = 2,
    precision: Precision = "auto",
    shard_size: int = SHARD_DOCUMENTS,
    index_type: str = "auto",
    allow_local_models: bool = False,
    progress: Callable[[str], Callable[[int, int], None]] = print_progress,
    worker_class: type = ShardWorker,
) -> tuple[dict, dict[str, list[int]]]:
    """Build (or finish) the index folder `out`; return its manifest and the shards computed in this run."""
    if not bi_encoders and not bm25 and not late:
        raise ExplorerError("Nothing to build: name a --bi-encoder, or give --bm25 or --late.")
    if workers < 1 or shard_size < 1:
        raise ExplorerError(f"--workers and --shard-size must be at least 1 (got {workers} and {shard_size}).")
    if len(set(bi_encoders)) != len(bi_encoders):
        raise ExplorerError("A --bi-encoder is named twice.")
    choose_index_type(len(corpus), index_type)  # refuses an unknown type before any work
    start = time.perf_counter()
    out = Path(out)
    previous = read_manifest_if_any(out)
    if previous is not None and previous["corpus"]["fingerprint"] != corpus.fingerprint:
        raise ExplorerError(
            f"{out} holds an index of another corpus ({previous['corpus']['name']}, fingerprint "
            f"{previous['corpus']['fingerprint'][:12]}…; this one is {corpus.fingerprint[:12]}…). "
            "Give another --out, or delete that folder."
        )
    builder = Builder(corpus, out, precision, workers, shard_size, allow_local_models, progress, worker_class)
    manifest = {
        "format": FORMAT,
        "corpus": {"name": corpus.name, "fingerprint": corpus.fingerprint, "documents": len(corpus),
                   "file": "documents.jsonl"},
        "bi_encoders": [], "bm25": None, "late": None,
        "ray": {"address": ray_address or "local (started for this build, 127.0.0.1)", "workers": workers,
                "shard_documents": shard_size},
    }
    with ray_session(ray_address, workers):
        manifest["bi_encoders"] = [builder.bi_encoder(model_id, index_type) for model_id in bi_encoders]
        if late:
            manifest["late"] = builder.late()
    if bm25:
        manifest["bm25"] = builder.bm25()
    write_documents(corpus, out / "documents.jsonl")
    manifest["build_seconds"] = round(time.perf_counter() - start, 3)
    manifest["shards_computed"] = {name: len(shards) for name, shards in builder.computed.items()}
    write_checked(out / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False).encode())
    return manifest, builder.computed
