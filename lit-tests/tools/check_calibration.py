#!/usr/bin/env python3
"""Check an executable's `--calibrate` statistics against numpy.

For a run short enough that every activation row was kept (``NAME.rows`` equal
to the number of ``NAME.samples`` rows), recomputes from the samples and the
f32 weights, in float64, what the statistics claim (runtime/src/calibrate.rs):
``NAME.sumsq`` = Σ x² per input channel and ``NAME.xtx`` = XᵀX, and that
every statistic belongs to a weight of the model with K inputs.

    check_calibration.py F32.weights STATS.safetensors
"""

import argparse
import sys

import numpy as np
from safetensors.numpy import load_file


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("f32_weights")
    parser.add_argument("statistics")
    parser.add_argument("--rtol", type=float, default=1e-4)
    args = parser.parse_args()

    dense = load_file(args.f32_weights)
    stats = load_file(args.statistics)
    names = sorted(n[: -len(".samples")] for n in stats if n.endswith(".samples"))
    failures = 0
    for name in names:
        x = stats[f"{name}.samples"].astype(np.float64)
        rows = int(stats[f"{name}.rows"][0])
        if rows != x.shape[0]:
            print(f"{name}: {rows} rows seen but {x.shape[0]} kept: run a shorter text")
            failures += 1
            continue
        if name not in dense or dense[name].shape[1] != x.shape[1]:
            print(f"{name}: no weight with {x.shape[1]} inputs in {args.f32_weights}  <-- MISMATCH")
            failures += 1
            continue
        checks = {
            "sumsq": (stats[f"{name}.sumsq"], (x**2).sum(axis=0)),
            "xtx": (stats[f"{name}.xtx"], x.T @ x),
        }
        for what, (got, want) in checks.items():
            err = np.abs(got - want).max() / max(np.abs(want).max(), 1e-30)
            ok = err <= args.rtol
            print(f"{name}.{what}: {rows} rows, max difference {err:.2e} of the largest entry"
                  f"{'' if ok else '  <-- MISMATCH'}")
            failures += not ok
    if not names:
        print("check_calibration: no statistics in the file")
        return 1
    print(f"check_calibration: {len(names)} weights, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
