"""Which number format a model runs in: decided once, when a ranker is made."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from explorer.errors import ExplorerError

Precision = Literal["auto", "bf16", "fp32"]


@lru_cache(maxsize=1)  # asked on every encode and re-rank; the CPU does not change
def bf16_supported() -> bool:
    """True where the CPU multiplies bf16 natively (AVX-512 BF16 or AMX); else bf16 is slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def resolve_precision(precision: Precision) -> Literal["bf16", "fp32"]:
    """"auto" becomes "bf16" where this machine supports bf16, else "fp32"; "bf16" and "fp32" pass through.
    Raises ExplorerError for any other value."""
    if precision == "auto":
        return "bf16" if bf16_supported() else "fp32"
    if precision not in ("bf16", "fp32"):
        raise ExplorerError(f"Unknown precision {precision!r}: use auto, bf16 or fp32.")
    return precision
