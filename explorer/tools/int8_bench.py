"""Our cross-encoder engines against the CPU runtimes a user could pick instead, in one run.

The same 100 (query, passage) pairs through: our fp32 (sentence-transformers' forward), bf16
(packed; only where the CPU has native bf16), int8 (packed, oneDNN), and the peers on the original
int8 ONNX file: onnxruntime, and OpenVINO where it is installed (requirements-dev.txt). Each peer
scores one unpadded pair per run, because dynamic int8 scores move with padding (a batch would
change what they mean). Timings are interleaved (each round runs every engine once) so a noisy
machine slows all of them alike; each figure is the median round. onnxruntime's own speed is not
steady on every machine (on the AVX-512 EPYC it ran at about 95 or about 140 pairs/s, switching
between processes and sometimes within one), so each ratio is also given fastest round against
fastest round: the peer at its best. Agreement is each engine's scores against fp32's on the same
pairs: Spearman, the top-10 overlap, the largest logit gap.

`precision.AUTO` may pick int8 on a CPU kind only where this measures it faster than the other
precisions auto chooses among there (our fp32 and bf16) and at least as close to fp32 as
onnxruntime's int8 on both counts; `auto_rule` reports whether that held in this run.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from explorer.tools.bench_common import agreement_with, bench_pairs, benchmark_queries, realistic_passages


class OpenVinoPeer:
    """OpenVINO on the original int8 ONNX file (its default CPU precision for the rest), one unpadded pair
    per run, with the file's own tokenizer (the same as onnxruntime's)."""

    def __init__(self, threads: int):
        import openvino

        from explorer.rankers.onnx_cross_encoder import load_onnx_cross_encoder, onnx_path

        core = openvino.Core()
        self.compiled = core.compile_model(core.read_model(str(onnx_path())), "CPU",
                                           {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"})
        self.request = self.compiled.create_infer_request()
        self.inputs = [port.get_any_name() for port in self.compiled.inputs]
        self.tokenizer = load_onnx_cross_encoder().tokenizer
        self.version = openvino.__version__.split("-")[0]
        hint = core.get_property("CPU", "INFERENCE_PRECISION_HINT")  # an openvino Type: "f32", "bf16"
        self.precision = hint.to_string() if hasattr(hint, "to_string") else str(hint)

    def logits(self, queries: list[str], documents: list[str]) -> np.ndarray:
        """(pairs,) float32 logits, one inference request per pair."""
        encoded = self.tokenizer(queries, documents, truncation=True, max_length=512)
        out = np.empty(len(documents), dtype=np.float32)
        for i in range(len(documents)):
            feeds = {name: np.asarray([encoded[name][i]], dtype=np.int64) for name in self.inputs}
            out[i] = self.request.infer(feeds)[self.compiled.outputs[0]].reshape(-1)[0]
        return out


def _engines(cross, threads: int) -> tuple[dict, list[str]]:
    """name -> (what it is, scoring function (queries, documents) -> logits); and notes on what was left out."""
    from explorer.engine.precision import bf16_supported
    from explorer.rankers.cross_encoder import CrossEncoder
    from explorer.rankers.onnx_cross_encoder import load_onnx_cross_encoder, onnxruntime_version

    engines, notes = {}, []
    for precision in ("fp32", "bf16", "int8"):
        if precision == "bf16" and not bf16_supported():
            notes.append("bf16 left out: this CPU has no native bf16 (it would run emulated, several times slower)")
            continue
        ranker = CrossEncoder(cross, precision)
        engines[precision] = (f"ours, {ranker.info.engine}", lambda q, d, r=ranker: r.score(q, d).logits)
    ort = load_onnx_cross_encoder()
    engines["onnxruntime int8"] = (f"onnxruntime {onnxruntime_version()} on the int8 ONNX original, one unpadded pair "
                                   "per run", lambda q, d: ort.score(q, d).logits)
    try:
        peer = OpenVinoPeer(threads)
    except ImportError:
        notes.append("OpenVINO left out: not installed (pip install -r requirements-dev.txt)")
    else:
        engines["openvino int8"] = (f"OpenVINO {peer.version} on the int8 ONNX original ({peer.precision} elsewhere), "
                                    "one unpadded pair per run", peer.logits)
    return engines, notes


def bench_engines(cross, passages: list[str], queries: list[str], repeats: int, count: int = 100) -> dict:
    """Every engine on the same `count` pairs (see the module docstring): pairs/s (median of `repeats`
    interleaved rounds after a warm-up), agreement with fp32, and whether int8 meets auto's rule here."""
    import torch

    from explorer.engine.precision import auto_note, cpu_kind, resolve_precision

    qs, docs = bench_pairs(passages, queries, count)
    engines, notes = _engines(cross, torch.get_num_threads())
    logits = {name: score(qs, docs) for name, (_, score) in engines.items()}  # the warm-up run
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(repeats):
        for name, (_, score) in engines.items():
            started = time.perf_counter()
            score(qs, docs)
            times[name].append(time.perf_counter() - started)
    rows = {}
    for name, (what, _) in engines.items():
        rows[name] = {"engine": what, "pairs_per_s": round(len(docs) / statistics.median(times[name]), 1),
                      "fastest_round_pairs_per_s": round(len(docs) / min(times[name]), 1),
                      "agreement_with_fp32": agreement_with(logits["fp32"], logits[name])}
    auto = resolve_precision("auto")
    ort = rows["onnxruntime int8"]
    int8, int8_agrees = rows["int8"], rows["int8"]["agreement_with_fp32"]

    def speedup(name: str) -> float:
        """The median over rounds of onnxruntime's time / `name`'s time in the same round: each ratio pairs runs
        seconds apart, so a machine that slows for a while slows both sides of it (steadier than a ratio of
        medians on a shared machine)."""
        return round(statistics.median(o / t for o, t in zip(times["onnxruntime int8"], times[name])), 2)

    def speedup_at_best(name: str) -> float:
        """onnxruntime's fastest round / `name`'s fastest round: the ratio against the peer at its best."""
        return round(min(times["onnxruntime int8"]) / min(times[name]), 2)

    return {
        "pairs": len(docs),
        "cpu_kind": cpu_kind(),
        "auto": {"precision": auto, "why": auto_note("auto", auto)},
        "engines": rows,
        "int8_vs_onnxruntime": speedup("int8"),
        "auto_vs_onnxruntime": speedup(auto),
        "int8_vs_onnxruntime_fastest_rounds": speedup_at_best("int8"),
        "auto_vs_onnxruntime_fastest_rounds": speedup_at_best(auto),
        "auto_rule": {
            # auto chooses among our own precisions; the peers are reported beside it.
            "int8_faster_than_our_fp32_and_bf16": all(int8["pairs_per_s"] > rows[name]["pairs_per_s"]
                                                      for name in ("fp32", "bf16") if name in rows),
            "int8_agrees_with_fp32_at_least_as_onnxruntime_int8":
                int8_agrees["spearman"] >= ort["agreement_with_fp32"]["spearman"]
                and int8_agrees["top10_overlap"] >= ort["agreement_with_fp32"]["top10_overlap"],
        },
        "notes": notes,
    }


def format_engines(result: dict) -> str:
    """`bench_engines` as a plain-text table."""
    lines = [f"Cross-encoder engines on the same {result['pairs']} pairs ({result['cpu_kind']} CPU; auto runs "
             f"{result['auto']['precision']}: {result['auto']['why']}):",
             f"{'engine':<18} {'pairs/s':>8} {'fastest':>8} {'Spearman':>9} {'top-10':>7} {'max |diff|':>10}  what"]
    for name, row in result["engines"].items():
        a = row["agreement_with_fp32"]
        lines.append(f"{name:<18} {row['pairs_per_s']:>8} {row['fastest_round_pairs_per_s']:>8} {a['spearman']:>9} "
                     f"{a['top10_overlap']:>7} {a['max_abs_logit_diff']:>10}  {row['engine']}")
    rule = result["auto_rule"]
    lines += [f"int8 / onnxruntime int8: {result['int8_vs_onnxruntime']}x; auto / onnxruntime int8: "
              f"{result['auto_vs_onnxruntime']}x (median of the rounds' own ratios); fastest round against fastest "
              f"round: int8 {result['int8_vs_onnxruntime_fastest_rounds']}x, auto "
              f"{result['auto_vs_onnxruntime_fastest_rounds']}x",
              f"auto's rule for int8 here: faster than our fp32 and bf16 {rule['int8_faster_than_our_fp32_and_bf16']}, "
              f"at least as close to fp32 as onnxruntime int8 {rule['int8_agrees_with_fp32_at_least_as_onnxruntime_int8']}",
              *result["notes"]]
    return "\n".join(lines)


def run_engines_benchmark(quick: bool = False) -> dict:
    """`bench --engines`: the machine and `bench_engines` on the python_docs passages."""
    from explorer.engine.catalog import DEFAULT_CROSS_ENCODER
    from explorer.engine.loading import load_model
    from explorer.tools.bench_common import machine_info

    result = bench_engines(load_model(DEFAULT_CROSS_ENCODER, "cross"), realistic_passages(), benchmark_queries(),
                           repeats=2 if quick else 7)
    return {"machine": machine_info(),
            "statistic": "pairs/s: median of interleaved rounds after one warm-up (fastest: the fastest round); "
                         "ratios: median of the rounds' own, and fastest round against fastest round",
            **result}
