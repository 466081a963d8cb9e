"""Whole-corpus scoring on Ray: a `PairScorer` whose `score` runs every pair as a Ray Data job.

It wraps a bound cross-encoder and takes its model, precision and engine, so each worker
scores exactly as the wrapped one would (same code, `CrossEncoder.score`); only the batches
differ, which moves logits in the last float digits. The pairs are cut into shards that land
on disk as they finish (under the cache folder, one folder per job, named by the pairs'
fingerprint), so rerunning the same evaluation after a crash computes only what is missing.
`eval --ray` puts it in place of the cross-encoder; the pipeline runs unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from explorer.errors import ExplorerError
from explorer.indexing.ray_jobs import print_progress, ray_session, run_shards
from explorer.indexing.shards import JobSpec, ShardFolder, ShardWorker, cut
from explorer.paths import cache_dir
from explorer.rankers.base import PairScorer, PairScores, ProgressCallback
from explorer.rankers.cross_encoder import CrossEncoder

SHARD_PAIRS = 512  # about 30 s of fp32 scoring on one core: a lost worker loses little


def pairs_fingerprint(queries: Sequence[str], documents: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for query, document in zip(queries, documents):
        digest.update(query.encode() + b"\x00" + document.encode() + b"\x01")
    return digest.hexdigest()


class RayPairScorer(PairScorer):
    """The wrapped cross-encoder's scores, computed by Ray workers shard by shard."""

    def __init__(self, inner: CrossEncoder, address: str | None = None, workers: int = 2,
                 work_dir: Path | None = None, shard_pairs: int = SHARD_PAIRS, allow_local_path: bool = False,
                 shard_progress: Callable[[str], Callable[[int, int], None]] = print_progress,
                 worker_class: type = ShardWorker):
        if not isinstance(inner, CrossEncoder):
            raise ExplorerError("Scoring on Ray runs the PyTorch cross-encoder only (not the int8 ONNX file).")
        if workers < 1 or shard_pairs < 1:
            raise ExplorerError(f"Ray workers and pairs per shard must be at least 1 (got {workers} and {shard_pairs}).")
        self.inner, self.address, self.workers, self.shard_pairs = inner, address, workers, shard_pairs
        self.work_dir = Path(work_dir) if work_dir else cache_dir() / "ray_jobs"
        self.allow_local_path, self.shard_progress, self.worker_class = allow_local_path, shard_progress, worker_class
        self.info = inner.info
        self.computed: list[int] = []  # shards computed by the last `score` (the rest were on disk)

    @property
    def tokenizer(self):
        return self.inner.tokenizer

    @property
    def max_length(self) -> int:
        return self.inner.max_length

    def score(self, queries: Sequence[str], documents: Sequence[str],
              progress: ProgressCallback | None = None) -> PairScores:
        """The wrapped scorer's logits (and probabilities) for each pair, computed in Ray shards that a rerun
        finds on disk; the same numbers the scorer gives in process."""
        if (empty := self.no_pairs(queries, documents)) is not None:
            return empty
        info = self.info
        fingerprint = pairs_fingerprint(queries, documents)
        shards = cut(list(zip(queries, documents)), self.shard_pairs)
        spec = JobSpec("cross", info.model_id, info.precision, info.engine, fingerprint, self.shard_pairs, len(shards))
        # A pair classifier's scores differ per label: so do its shards' folder and its workers' label.
        label = self.inner.label_name if self.inner.model.num_labels > 1 else ""
        digest = hashlib.sha256((repr(spec) + label).encode()).hexdigest()[:8]
        folder = ShardFolder(self.work_dir / f"cross-{fingerprint[:16]}-{digest}", spec)
        printed = self.shard_progress(f"cross-encoder {info.model_id} over {len(documents):,} pairs")

        def report(done: int, total: int) -> None:
            printed(done, total)
            if progress:
                progress(min(done * self.shard_pairs, len(documents)), len(documents))

        worker_args = {"task": "cross", "model_id": info.model_id, "precision": info.precision, "label": label or None,
                       "allow_local_path": self.allow_local_path}
        with ray_session(self.address, self.workers):
            self.computed = run_shards(folder, shards, worker_args, self.workers, report, self.worker_class)
        pieces = [folder.read(i) for i in range(len(shards))]
        logits = np.concatenate([p["scores"] for p in pieces]).astype(np.float32)
        truncated = int(sum(int(p["truncated"]) for p in pieces))
        return PairScores(logits, self.inner.probabilities(logits).astype(np.float32), truncated)
