#!/usr/bin/env python3
"""Write the f32 weight file a quantized model stands for, decoded with numpy.

Every tensor of a `dittoc quantize` report is decoded from the quantized
weight file (``NAME#indices`` / ``NAME#codebooks``, docs/codebook-format.md,
by `check_quant_report.dequantize`, not by dittoc's code) and written in place
of the original in a copy of the f32 weight file; the other tensors are
copied as they are. The f32 module compiled on this file is then the
reference the quantized executable must match.

    dequantize_weights.py F32.weights Q.weights Q.report.json OUT.weights
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_quant_report import dequantize  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("f32_weights")
    parser.add_argument("quantized_weights")
    parser.add_argument("report")
    parser.add_argument("out")
    args = parser.parse_args()

    dense = load_file(args.f32_weights)
    quant = load_file(args.quantized_weights)
    report = json.load(open(args.report))
    for t in report["tensors"]:
        name, (n, k) = t["name"], t["shape"]
        if dense[name].shape != (n, k):
            print(f"{name}: shape {dense[name].shape} in {args.f32_weights}, {(n, k)} in the report",
                  file=sys.stderr)
            return 1
        w_hat = dequantize(quant[f"{name}#indices"], quant[f"{name}#codebooks"],
                           n, k, t["bits"], t["block"])
        dense[name] = w_hat.astype(np.float32)
    save_file(dense, args.out)
    print(f"dequantize_weights: {len(report['tensors'])} tensors decoded → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
