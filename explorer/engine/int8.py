"""Int8 linear layers for the packed engine: int8 weights, activations quantised per token at run time.

The matrix product is oneDNN's int8 GEMM (`torch.ops.onednn.qlinear_pointwise`, the op
PyTorch's own x86 int8 lowering emits; not the deprecated quantized-tensor API): 8-bit
activations times int8 weights, summed exactly in int32, written out in fp32. Everything
around it is plain torch:

* **weights**: int8 with one fp32 scale per output channel, W = values * scale. The offline
  models use the int8 values their ONNX file ships (`onnx_rebuild.int8_linear_weights`), so
  the fp32 weights the other precisions run are exactly these values times their scale;
  any other model is quantised here at load, symmetric per output channel (`quantize_per_channel`).
* **activations**: quantised per token (row), asymmetric: x = (q - z) * s with the row's own
  scale s and integer zero point z. oneDNN takes one scale for the whole input, so the GEMM runs with
  scale 1 and zero point 0 and each row is brought back afterwards:
  x W^T = s * (q W^T - z * sum_k W[:, k]). Per-token scales cost two passes over the output
  (and GELU can no longer ride in the GEMM's epilogue), but they buy two things a per-tensor
  scale (onnxruntime's DynamicQuantizeLinear) cannot: a token's quantisation does not depend on
  the other sequences in its chunk, so **a pair's score is the same whatever it is batched
  with**, and a token with small values keeps its resolution. On the bench's pairs that took
  the largest int8-vs-fp32 logit gap from 0.61 (onnxruntime) to 0.28.
* **levels**: activations are uint8 (oneDNN's u8 x s8 product, the one every x86 int8 unit
  multiplies natively). Where the CPU lacks VNNI, oneDNN multiplies with AVX2's vpmaddubsw, which
  adds two uint8 x int8 products in int16 and saturates once activations pass 127 (checked by
  `activation_levels`, which probes the kernel itself). There activations use 128 levels (7 bits), as
  PyTorch's x86 backend does with `reduce_range`; where the sums are exact (VNNI, AMX) they use 256.
  Signed int8 activations are never used: on an AVX-512 VNNI EPYC (no AMX) oneDNN ran s8 x s8 through
  a reference kernel, 9.9 s for a 2,048 x 384 x 1,536 product that takes 2.2 ms as u8 x s8.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch


# 1.5 x 2**23: fp32 values in [2**23, 2**24) are spaced exactly 1 apart, so adding this rounds a value below
# 2**22 in magnitude to the nearest integer (ties to even), left in the float's low mantissa bits.
_ROUNDING_BIAS = 12582912.0


@dataclass(frozen=True)
class Int8Weight:
    """A linear layer's weight as int8 values and one fp32 scale per output channel.

    values: (out, in) int8; scale: (out,) float32; the weight is values * scale[:, None].
    """

    values: torch.Tensor
    scale: torch.Tensor

    def dequantized(self) -> torch.Tensor:
        """(out, in) float32: values * scale, computed in fp32 (what the other precisions run)."""
        return self.values.float() * self.scale[:, None]

    @staticmethod
    def concatenated(parts: list[Int8Weight]) -> Int8Weight:
        """Several layers' weights stacked along the output dimension (the query, key and value projections)."""
        return Int8Weight(torch.cat([p.values for p in parts]), torch.cat([p.scale for p in parts]))


def quantize_per_channel(weight: torch.Tensor) -> Int8Weight:
    """Symmetric int8 per output channel of a (out, in) float weight: scale = max |row| / 127, values =
    round(weight / scale) in [-127, 127]; an all-zero row gets scale 1 (its values are 0)."""
    weight = weight.detach().float()
    scale = weight.abs().amax(dim=1) / 127
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    values = torch.round(weight / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return Int8Weight(values, scale)


def available() -> bool:
    """Whether this torch build has oneDNN's int8 linear (x86 CPU builds since PyTorch 2.2) and it multiplies
    exactly on this CPU (`activation_levels`)."""
    ops = torch.ops.onednn
    if not (torch.backends.mkldnn.is_available() and hasattr(ops, "qlinear_pointwise") and hasattr(ops, "qlinear_prepack")):
        return False
    try:
        activation_levels()
    except RuntimeError:
        return False
    return True


def _int8_matmul(packed: torch.Tensor, q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """(rows, out) float32 = (q as integers) @ values^T * scale, by oneDNN: input scale 1, zero point 0, no bias.
    `q` is (rows, in) uint8."""
    zero_points = torch.zeros(scale.shape[0], dtype=torch.long)
    return torch.ops.onednn.qlinear_pointwise(q, 1.0, 0, packed, scale, zero_points, None, 1.0, 0, torch.float32,
                                              "none", [], "none")


def _exact(q: torch.Tensor) -> bool:
    """Whether oneDNN multiplies uint8 `q` (4 rows of worst-case activations) exactly against worst-case
    weights (runs of +127 and -127 that would overflow an int16 pair sum)."""
    weights = torch.full((16, q.shape[1]), 127, dtype=torch.int8)
    weights[::2] = -127
    got = _int8_matmul(torch.ops.onednn.qlinear_prepack(weights, None), q, torch.ones(16)).double()
    return torch.equal(got, q.double() @ weights.double().T)


@lru_cache(maxsize=1)
def activation_levels() -> int:
    """The top uint8 level activations are quantised to (0..levels): 255 where this CPU's kernel sums
    exactly (VNNI, AMX: int32 accumulation), else 127, where AVX2's vpmaddubsw would saturate its int16 pair
    sums at full range (checked here too). Probed on the kernel itself, not read off the CPU flags.
    Raises RuntimeError if neither is exact (int8 is then unavailable).
    """
    for levels in (255, 127):
        if _exact(torch.full((4, 64), levels, dtype=torch.uint8)):
            return levels
    raise RuntimeError("oneDNN's int8 product is not exact on this CPU")


class Int8Linear:
    """x W^T + b (then exact GELU if asked) with W an `Int8Weight`, for (rows, in) fp32 input; returns
    (rows, out) fp32. Each row is quantised on its own (see the module docstring), so each output row
    depends on its input row only, bit for bit."""

    def __init__(self, weight: Int8Weight, bias: torch.Tensor, gelu: bool = False):
        self.scale = weight.scale.float().contiguous()
        self.bias = bias.detach().float().contiguous()
        self.gelu = gelu
        # The row count given to the prepack is only a hint for oneDNN's layout; any count works.
        self.packed = torch.ops.onednn.qlinear_prepack(weight.values.contiguous(), None)
        # sum_k W[n, k] in fp32, for the zero-point correction; summed in float64 so it is exact to fp32.
        self.column_sums = (weight.values.double().sum(dim=1) * self.scale.double()).float()
        self.levels = activation_levels()

    def quantize(self, x: torch.Tensor, scratch: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(q, step, zero) for (rows, in) fp32 `x`: q (rows, in) uint8 in 0..levels, step and zero (rows, 1)
        fp32 with zero an integer, such that x ~ (q - zero) * step, each value within step / 2. With `scratch`
        the arithmetic runs in `x`'s own memory (the caller's `x` is overwritten).

        The row's range, widened to hold 0, is split into levels - 1 steps, and the zero point is the
        integer just above -low / step: x / step + zero then lies in (0, levels] up to fp32 rounding, so the
        nearest level is in range and no value needs clamping (one level of resolution buys that).
        Rounding to the nearest integer is one addition: adding 1.5 x 2**23 to an fp32 value below 2**22
        leaves that value rounded to an integer in the low bits of the float (the spacing of floats there is
        exactly 1), so the float's bits read as int32 hold q in their low byte, and the int32 -> uint8 cast
        (modulo 256, defined for integers) extracts it. That saves a float -> int32 pass over every
        activation; float -> uint8 directly is not vectorised at all (5x slower than float -> int8).
        """
        low = x.amin(dim=1, keepdim=True).clamp_(max=0)
        high = x.amax(dim=1, keepdim=True).clamp_(min=0)
        # An all-zero row (chunk padding) gets a tiny step: every value lands on its zero point (q - zero = 0).
        step = (high - low).clamp_(min=1e-30) / (self.levels - 1)
        zero = (-low / step).floor_().add_(1)
        # A multiply then an in-place add: 2.5x faster than one addcmul here. In place where allowed: writing
        # a fresh 25 MB tensor costs more than the multiply.
        rounded = (x.mul_(1 / step) if scratch else x * (1 / step)).add_(zero + _ROUNDING_BIAS)
        return rounded.view(torch.int32).to(torch.uint8), step, zero

    def __call__(self, x: torch.Tensor, scratch: bool = False) -> torch.Tensor:
        """(rows, out) fp32 for (rows, in) `x`; with `scratch` (the caller will not read `x` again) `x`'s
        memory is reused for the quantisation."""
        q, step, zero = self.quantize(x.float(), scratch)  # a non-fp32 x: .float() is a copy, scratch anyway
        # (q - zero) W^T * step + b, in place: a fresh (rows, out) tensor per step cost more than the step.
        out = _int8_matmul(self.packed, q, self.scale)
        out.addcmul_(zero, self.column_sums, value=-1)
        torch.addcmul(self.bias, out, step, out=out)  # one pass for the scale and the bias
        return torch.ops.aten.gelu_(out) if self.gelu else out
