"""A job cut into shards that land on disk one by one, and the worker that computes a shard.

A job is a list of shards (each a list of texts, or of (query, document) pairs); each finished
shard is one `.npz` file with its SHA-256 beside it (`paths.write_checked`). The folder also
holds `job.json`, what the shards were computed for (task, model, precision, engine, the
inputs' fingerprint, the shard size): a rerun with the same job skips every shard whose file
checks out, and a folder holding another job is refused rather than mixed in.

`ShardWorker` is what runs on a Ray worker: it loads its model once (in `__init__`) through the
project's rankers and engine, then computes shards. It also runs in-process (no Ray), which is
how the tests get an independent reference.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from explorer.errors import ExplorerError
from explorer.paths import read_checked, write_checked

Task = str  # "bi" (sentence embeddings), "late" (token vectors), "cross" (pair logits)


@dataclass(frozen=True)
class JobSpec:
    """What a shard folder was computed for; shards are reused only for an identical spec."""

    task: Task
    model_id: str
    precision: str  # resolved: "bf16" or "fp32"
    engine: str  # "packed bf16" or "padded batches": they round differently in bf16
    inputs_fingerprint: str  # the corpus's (or the pairs') sha256
    shard_size: int
    shards: int

    def describe_difference(self, other: JobSpec) -> str:
        return "; ".join(f"{name} {getattr(other, name)!r} there, {value!r} now"
                         for name, value in asdict(self).items() if getattr(other, name) != value)


class ShardFolder:
    """One job's shard files: which are done, writing one, reading them all back."""

    def __init__(self, folder: Path, spec: JobSpec):
        self.folder, self.spec = Path(folder), spec
        spec_path = self.folder / "job.json"
        if spec_path.is_file():
            try:
                existing = JobSpec(**json.loads(spec_path.read_text()))
            except (ValueError, TypeError):
                existing = None
            if existing != spec:
                difference = spec.describe_difference(existing) if existing else "job.json is unreadable"
                raise ExplorerError(
                    f"{self.folder} holds shards of another job ({difference}); they are never mixed in. "
                    "Give another output folder, or delete that one."
                )
        else:
            self.folder.mkdir(parents=True, exist_ok=True)
            spec_path.write_text(json.dumps(asdict(spec), indent=2))

    def path(self, shard: int) -> Path:
        return self.folder / f"{shard:06d}.npz"

    def done(self) -> set[int]:
        """Shards whose file is there and matches its checksum (a damaged one is computed again)."""
        return {i for i in range(self.spec.shards) if self.path(i).is_file() and read_checked(self.path(i)) is not None}

    def write(self, shard: int, payload: bytes) -> None:
        write_checked(self.path(shard), payload)

    def read(self, shard: int) -> dict[str, np.ndarray]:
        data = read_checked(self.path(shard))
        if data is None:
            raise ExplorerError(f"Shard {self.path(shard)} is missing or damaged; run the command again to recompute it.")
        with np.load(io.BytesIO(data)) as arrays:
            return {name: arrays[name] for name in arrays.files}


def cut(items: Sequence, size: int) -> list[list]:
    """Consecutive pieces of `size` items (the last may be shorter)."""
    return [list(items[start:start + size]) for start in range(0, len(items), size)]


def pack(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


class ShardWorker:
    """Computes shards for one task with one model, loaded once when the worker starts.

    `__call__` takes a batch of rows {"shard": [i, ...], "items": [[...], ...]} and returns
    {"shard": [...], "payload": [npz bytes, ...], "precision": [...], "engine": [...]}: the shape
    Ray Data's `map_batches` passes and expects (plain lists and numpy arrays, nothing Ray-specific).
    """

    def __init__(self, task: Task, model_id: str, precision: str, allow_local_path: bool = False,
                 label: str | None = None):
        from explorer.rankers.bi_encoder import load_bi_encoder
        from explorer.rankers.cross_encoder import load_cross_encoder
        from explorer.rankers.late_interaction import load_late_interaction

        loaders = {"bi": load_bi_encoder, "cross": load_cross_encoder, "late": load_late_interaction}
        self.task = task
        # A pair classifier's workers rank by the same label as the process that started them.
        extra = {"label": label} if task == "cross" else {}
        self.ranker = loaders[task](model_id, precision, allow_local_path=allow_local_path, **extra)

    def compute(self, items: Sequence) -> bytes:
        """One shard's result as npz bytes."""
        if self.task == "bi":
            return pack(vectors=self.ranker.encode([str(text) for text in items]))
        if self.task == "late":
            vectors, truncated = self.ranker.token_vectors([str(text) for text in items])
            lengths = np.array([len(v) for v in vectors], dtype=np.int64)
            flat = np.concatenate(vectors) if vectors else np.zeros((0, 0), dtype=np.float32)
            return pack(vectors=flat.astype(np.float32), lengths=lengths, truncated=np.array(truncated))
        queries, documents = [str(pair[0]) for pair in items], [str(pair[1]) for pair in items]
        scored = self.ranker.score(queries, documents)
        return pack(scores=scored.scores, truncated=np.array(scored.truncated))

    def __call__(self, batch: dict) -> dict:
        payloads = [self.compute(items) for items in batch["items"]]
        count = len(payloads)
        return {
            "shard": np.asarray(batch["shard"], dtype=np.int64),
            "payload": np.array(payloads, dtype=object),
            "precision": np.array([self.ranker.info.precision] * count, dtype=object),
            "engine": np.array([self.ranker.info.engine] * count, dtype=object),
        }
