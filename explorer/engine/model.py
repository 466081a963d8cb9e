"""A loaded model: what it means, read off sentence-transformers' own objects, and the engine it runs on.

`loading.py` finds and loads the weights; this module holds the result. For bi-encoders and
cross-encoders, what a model means (pooling, Dense layers, normalisation, prompts, activation,
labels) is read from the library's modules and nowhere else; how it runs at a precision (the packed
bf16 / int8 engine where it reproduces the model exactly, else the library's own forward) is decided
once per precision by `LoadedModel.bind`.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from explorer.engine import int8, onnx_rebuild, packed_bert
from explorer.engine.catalog import Kind
from explorer.engine.precision import Precision, Resolved, auto_note, resolve_precision


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
        spec = onnx_rebuild.REBUILT.get(self.id)
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
