"""Error bounds for tests that compare two engines on the same weights, in one place.

Each bound says how far one engine may move one score from the fp32 reference, how it was
measured and why it holds on AVX2-only, AVX-512 (BF16, VNNI) and AMX CPUs. Orders are compared
only where it cannot be rounding: two items whose reference scores differ by more than twice the
bound must keep their order; nearer ones are near-ties and may swap.
"""

from __future__ import annotations

import numpy as np

# How far onnxruntime's dynamic int8 run may move one logit from the fp32 rebuild of the same
# weights. It quantises every Linear's input to uint8 per tensor (scale from that tensor's min and
# max) on every CPU; the integer products are then summed exactly in int32 (AVX2, AVX-512 VNNI and
# AMX kernels alike; AVX2's u8 x s8 pairs may saturate at int16, which the quantiser's reduced
# range is there to avoid), so the error is the activation rounding, nearly the same number
# everywhere; it grows with the activations' range, so with the passage's length. Measured on an
# AVX2-only EPYC (2026-11-30): at most 0.59 logit over the 8 x 19 negation pairs
# (tests/test_side_by_side.py) and 0.75 over the 54 longer pairs of tests/pair_sets.py
# (tests/test_models.py). 1.0 leaves a third on top for other CPUs' kernels.
INT8_LOGIT_ERROR = 1.0

# How far bf16 may move a cross-encoder logit from fp32, on the same weights. bf16 keeps 8 bits of
# significand: every stored activation is rounded by up to 2^-9 (0.2%) of itself, and the
# logit's error grows with its size (these passages' logits run from -11 to +9). Measured on these
# 200 pairs (tests/test_fast_path.py): at most 0.023 on an AVX2-only EPYC (bf16 emulated: operands
# rounded to bf16, products summed in fp32; 2026-11-30); issue 21 reports 0.009 on an AVX-512 BF16
# EPYC (native bf16 dot products, also summed in fp32; AMX tiles do the same). All round the same
# operands and differ only in summation order, far below the rounding itself. 0.05 is twice the
# larger measurement; a broken bf16 path (a wrong scale, a layer left out) moves logits by whole
# units, and the old bound of 0.15 would have hidden a path three times worse than today's.
BF16_LOGIT_ERROR = 0.05
# The bi-encoder's unit vectors in bf16: 1 - cosine(bf16, fp32) at most 3.2e-5 (AVX2 EPYC, the
# same 101 texts; issue 21: cosine 0.99997); a query-passage cosine moved by at most 0.0016. Bounds: 1e-4 and 0.004 (2.5 to 3x).
BF16_VECTOR_ONE_MINUS_COSINE = 1e-4
BF16_COSINE_SCORE_ERROR = 0.004

# fp32 against fp32 on the same weights (our forward, sentence-transformers', packed or padded):
# the same sums in another order. Cross-encoder logits against sentence-transformers' CrossEncoder:
# within 2.9e-6 (logits from -11 to +10); bi-encoder cosines within 1.8e-7.
# Packed against padded: Measured (AVX2 EPYC, 2026-11-30): logits
# within 2.9e-6 of the module's own, token states (values up to 5.9) within 6e-6. 5e-5 leaves room
# for other kernels' blocking (oneDNN's AVX-512 and AMX paths sum in other orders) and still fails
# at once on a wrong position, token type, mask or layer, which move values by 1e-2 and more.
FP32_ATOL = 5e-5


def assert_same_order_beyond(exact: np.ndarray, fast: np.ndarray, error: float, at_least: int) -> None:
    """Any two items whose `exact` scores differ by more than 2 x `error` keep their order in `fast`
    (closer ones may swap: near-ties). At least `at_least` such pairs must exist, so the check
    cannot pass on nothing."""
    order = np.argsort(-exact, kind="stable")
    checked = 0
    for place, i in enumerate(order):
        for j in order[place + 1:]:
            if exact[i] - exact[j] > 2 * error:
                checked += 1
                assert fast[i] > fast[j], (int(i), int(j), exact[i], exact[j], fast[i], fast[j])
    assert checked >= at_least, checked

# How far our packed int8 engine (engine/int8.py) may move a cross-encoder logit from fp32 on the same
# weights (the offline model: the ONNX file's own int8 values, so only the activations are rounded).
# Activations are quantised per token, asymmetric: 128 levels where the CPU lacks VNNI (AVX2's int16
# pair sums would saturate at 256), 256 levels with VNNI or AMX, whose int32 sums are exact (a test
# checks the product is exact integer arithmetic on the CPU that runs it). Measured on an AVX2-only
# EPYC (128 levels, 2026-11-30) over the 1,400 pairs of tests/int8_pairs.py: at most 0.41 logit
# (negation), 0.36 on python_docs; 256 levels halve the step. Since 2026-12-01 a row's range is split into
# levels - 1 steps with an integer zero point; on the AVX-512 BF16 + VNNI EPYC (254 steps) the 1,455 pairs
# moved at most 0.27 (lexical_overlap), and with oneDNN capped at AVX2 there (its saturating kernel, 126 steps;
# tests/test_int8.py runs so on every machine) at most 0.42 (numbers_entities). 0.6 is about 1.45x the AVX2
# measurements; a broken int8 path (a wrong scale, a zero point left out, a saturating kernel, a level
# wrapped past 255) moves logits by whole units.
PACKED_INT8_LOGIT_ERROR = 0.6
# The bi-encoder on the int8 engine: all-MiniLM-L6-v2 ships fp32 weights, so they are quantised per output
# channel at load (weights rounded too, not only activations). Measured on the AVX2 EPYC (128 levels,
# 2026-11-30) over the 101 texts of tests/test_fast_path.py: 1 - cosine(int8, fp32) at most 0.0037, a
# query-passage cosine moved by at most 0.019. Bounds: about twice those.
PACKED_INT8_VECTOR_ONE_MINUS_COSINE = 0.008
PACKED_INT8_COSINE_SCORE_ERROR = 0.04
