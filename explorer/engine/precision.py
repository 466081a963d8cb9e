"""Which number format a model runs in: decided once, when a ranker is made.

"fp32" is the reference: sentence-transformers' own forward. "bf16" and "int8" are the packed
engine (`packed_bert`), int8 through oneDNN's int8 GEMM (`int8.py`). "auto" picks per CPU kind
from measurements (`AUTO`): int8 only where `bench` measured it faster than the alternatives
on that kind of CPU **and** its ranking closer to fp32's than onnxruntime's int8 file's.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from explorer.errors import ExplorerError

Precision = Literal["auto", "bf16", "fp32", "int8"]
Resolved = Literal["bf16", "fp32", "int8"]
PRECISIONS: tuple[str, ...] = ("auto", "bf16", "fp32", "int8")

# What "auto" runs on each CPU kind (where the model packs; else the non-int8 choice), and why.
# Each int8 row rests on `python -m explorer bench --json` on 2 cores of that kind of CPU: int8 faster
# than bf16 / fp32 there, and its Spearman and top-10 overlap with fp32 on the bench's 100 pairs at
# least onnxruntime int8's. Kinds without such a measurement keep bf16 (native) or fp32.
AUTO: dict[str, tuple[Resolved, str]] = {
    "AMX": ("bf16", "AMX bf16"),
    "AVX-512 BF16": ("int8", "fastest on AVX-512 BF16/VNNI CPUs, closer to fp32 than onnxruntime int8"),
    "AVX-512 VNNI": ("fp32", "no native bf16; int8 not measured on this CPU kind"),
    "AVX2": ("int8", "fastest on AVX2 CPUs, closer to fp32 than onnxruntime int8"),
    "other": ("fp32", "no native bf16 or int8 measured"),
}


@lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    match = re.search(r"^flags\s*:(.*)$", text, re.MULTILINE)
    return frozenset(match.group(1).split()) if match else frozenset()


def bf16_supported() -> bool:
    """True where the CPU multiplies bf16 natively (AVX-512 BF16 or AMX); else bf16 is slower."""
    return bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})


def cpu_kind() -> str:
    """This CPU's kind as `AUTO` names it: "AMX", "AVX-512 BF16", "AVX-512 VNNI", "AVX2" or "other"
    (from /proc/cpuinfo's flags)."""
    flags = _cpu_flags()
    if "amx_bf16" in flags:
        return "AMX"
    if "avx512_bf16" in flags:
        return "AVX-512 BF16"
    if "avx512_vnni" in flags:
        return "AVX-512 VNNI"
    if "avx2" in flags:
        return "AVX2"
    return "other"


def resolve_precision(precision: Precision, int8_possible: bool = True) -> Resolved:
    """"auto" becomes this CPU kind's choice in `AUTO` (int8 only where `int8_possible`, i.e. the model
    runs on the packed engine; otherwise bf16 where native, else fp32); the others pass through.
    Raises ExplorerError for an unknown value, and for "int8" where it is not possible."""
    if precision == "auto":
        choice = AUTO[cpu_kind()][0]
        if choice == "int8" and not int8_possible:
            return "bf16" if bf16_supported() else "fp32"
        return choice
    if precision not in PRECISIONS:
        raise ExplorerError(f"Unknown precision {precision!r}: use {', '.join(PRECISIONS)}.")
    if precision == "int8" and not int8_possible:
        raise ExplorerError("int8 runs on the packed engine only, which takes plain BERT encoders "
                            "(BertModel, BertForSequenceClassification); run this model at fp32 or bf16.")
    return precision


def auto_note(precision: Precision, resolved: Resolved) -> str:
    """Why "auto" chose `resolved` on this CPU, for the stage's "runs on" ("" unless `precision` is auto)."""
    if precision != "auto":
        return ""
    kind = cpu_kind()
    choice, reason = AUTO[kind]
    if resolved != choice:  # int8 where the model does not pack
        return f"auto on {kind}: this model does not run on the packed int8 engine"
    return f"auto on {kind}: {reason}"
