#!/usr/bin/env python3
"""Re-measure the errors a `dittoc quantize` report claims, independently.

Reads the f32 weight file, the quantized weight file (``NAME#indices`` /
``NAME#codebooks``, decoded here from docs/codebook-format.md with numpy, not
with dittoc's code) and the calibration statistics (sampled activation rows
``NAME.samples``), recomputes each tensor's relative output error
``‖X·Wᵀ − X·Ŵᵀ‖_F / ‖X·Wᵀ‖_F`` in float64 — or, for a tensor the report
measured by weight error (no activations: an embedding table only gathered),
``sqrt(Σ s_k (W − Ŵ)² / Σ s_k W²)`` with s the mean square of each input
channel where the statistics have it, else 1 — and checks it against the
report (and the report's bound, if any).

    check_quant_report.py F32.weights Q.weights Q.calibration.safetensors Q.report.json
"""

import argparse
import json
import sys

import numpy as np
from safetensors.numpy import load_file


def unpack(indices: np.ndarray, count: int, bits: int) -> np.ndarray:
    """The `count` indices of a little-endian bit stream of `bits`-bit fields."""
    stream = np.unpackbits(indices.astype(np.uint8), bitorder="little")
    fields = stream[: count * bits].reshape(count, bits).astype(np.int64)
    return (fields << np.arange(bits)).sum(axis=1)


def dequantize(indices, codebooks, n, k, bits, block):
    q = unpack(indices, n * k, bits)
    blocks = np.arange(n * k) // block
    return codebooks.astype(np.float64)[blocks, q].reshape(n, k)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("f32_weights")
    parser.add_argument("quantized_weights")
    parser.add_argument("statistics")
    parser.add_argument("report")
    parser.add_argument("--rtol", type=float, default=1e-3,
                        help="allowed relative difference between reported and re-measured errors")
    args = parser.parse_args()

    dense = load_file(args.f32_weights)
    quant = load_file(args.quantized_weights)
    stats = load_file(args.statistics)
    report = json.load(open(args.report))
    bound = report["constraints"].get("max_error")
    failures = 0
    for t in report["tensors"]:
        name, (n, k), bits, block = t["name"], t["shape"], t["bits"], t["block"]
        w = dense[name].astype(np.float64)
        w_hat = dequantize(quant[f"{name}#indices"], quant[f"{name}#codebooks"], n, k, bits, block)
        if t["error_kind"] == "weighted_weight":
            if f"{name}.sumsq" in stats:
                s = stats[f"{name}.sumsq"].astype(np.float64) / float(stats[f"{name}.rows"][0])
            else:
                s = np.ones(k)
            error = np.sqrt(((w - w_hat) ** 2 * s).sum() / (w ** 2 * s).sum())
        else:
            x = stats[f"{name}.samples"].astype(np.float64)
            exact = x @ w.T
            error = np.linalg.norm(exact - x @ w_hat.T) / np.linalg.norm(exact)
        ok = abs(error - t["error"]) <= args.rtol * max(error, 1e-12)
        if bound is not None and error > bound * (1 + args.rtol):
            ok = False
        print(f"{name}: {bits} bits, reported {t['error']:.6e}, re-measured {error:.6e}"
              f"{'' if ok else '  <-- MISMATCH'}")
        failures += not ok
    print(f"check_quant_report: {len(report['tensors']) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
