#!/usr/bin/env python3
"""Compare two logits arrays ([T, vocab] .npy files) row by row.

    compare_logits.py A.npy B.npy [--rtol 1e-4]

B is the reference. For every row r the relative error is
max|A[r] - B[r]| / max|B[r]| and must be <= rtol, and argmax(A[r]) must equal
argmax(B[r]). The shapes must match and neither array may hold NaN or inf.

Prints the worst row's error and the argmax agreement; exits 0 when every check
passes and 1 otherwise, naming the files, the row and the values that failed.
Unreadable input also exits 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def load(path: Path) -> np.ndarray:
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read .npy file ({e})") from e
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"{path}: expected a [T, vocab] array, got shape {a.shape}")
    return a.astype(np.float64)


def compare(a: np.ndarray, b: np.ndarray, rtol: float, name_a: str, name_b: str) -> list[str]:
    """Return the failure messages (empty when a matches the reference b)."""
    if a.shape != b.shape:
        return [f"shape mismatch: {name_a} {a.shape} vs {name_b} {b.shape}"]
    failures = []
    for name, x in ((name_a, a), (name_b, b)):
        bad = np.argwhere(~np.isfinite(x))
        if len(bad):
            r, c = bad[0]
            failures.append(f"{name}: {len(bad)} non-finite values, first at row {r} column {c} ({x[r, c]})")
    if failures:
        return failures
    scale = np.abs(b).max(axis=1)
    err = np.abs(a - b).max(axis=1) / np.where(scale > 0, scale, 1.0)
    for r in np.flatnonzero(err > rtol):
        c = int(np.argmax(np.abs(a[r] - b[r])))
        failures.append(f"row {r}: relative error {err[r]:.3e} > rtol {rtol:g} "
                        f"(column {c}: {name_a}={a[r, c]:.7g}, {name_b}={b[r, c]:.7g}, max|{name_b}[{r}]|={scale[r]:.7g})")
    am, bm = a.argmax(axis=1), b.argmax(axis=1)
    for r in np.flatnonzero(am != bm):
        failures.append(f"row {r}: argmax differs: {name_a} -> {am[r]} ({a[r, am[r]]:.7g}), "
                        f"{name_b} -> {bm[r]} ({b[r, bm[r]]:.7g}); "
                        f"{name_a}[{bm[r]}]={a[r, bm[r]]:.7g}")
    return failures


def summary(a: np.ndarray, b: np.ndarray) -> str:
    if a.shape != b.shape:
        return f"shapes {a.shape} vs {b.shape}"
    scale = np.abs(b).max(axis=1)
    err = np.abs(a - b).max(axis=1) / np.where(scale > 0, scale, 1.0)
    worst = int(np.argmax(err)) if err.size else 0
    agree = int((a.argmax(axis=1) == b.argmax(axis=1)).sum()) if a.size else 0
    return (f"{a.shape[0]} rows x {a.shape[1]}: worst row {worst} relative error {err[worst] if err.size else 0:.3e}, "
            f"argmax agrees on {agree}/{a.shape[0]} rows")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path, help="logits under test")
    ap.add_argument("b", type=Path, help="reference logits")
    ap.add_argument("--rtol", type=float, default=1e-4)
    args = ap.parse_args(argv)
    try:
        a, b = load(args.a), load(args.b)
    except ValueError as e:
        print(f"compare_logits: error: {e}", file=sys.stderr)
        return 1
    failures = compare(a, b, args.rtol, str(args.a), str(args.b))
    if not failures:
        print(f"compare_logits: PASS: {summary(a, b)} (rtol {args.rtol:g})")
        return 0
    print(f"compare_logits: FAIL: {args.a} vs {args.b} (rtol {args.rtol:g})", file=sys.stderr)
    for line in failures[:20]:
        print(f"  {line}", file=sys.stderr)
    if len(failures) > 20:
        print(f"  ... {len(failures) - 20} more", file=sys.stderr)
    if a.shape == b.shape and np.isfinite(a).all() and np.isfinite(b).all():
        print(f"  {summary(a, b)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
