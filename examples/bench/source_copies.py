"""Which weights llama.cpp's quantizations copy bit-exactly from the source GGUF.

The source (Qwen2.5-Coder-0.5B-Instruct, Q4_K_M) is itself quantized: Q5_0,
Q8_0, Q6_K and Q4_K tensors. llama.cpp's quantizer (`--allow-requantize`)
dequantizes each tensor and quantizes it again; where the target type of a
tensor is the source's own type, the values already lie on that type's grid
and come back unchanged. Those tensors lose nothing against the f32
reference (the source dequantized), whatever their bits cost.

For each type this prints the share of the quantized weights (F32 tensors
left out) that come back identical, and the type changes of the rest,
from the two files' tensors dequantized with gguf-py's dequantizers.

usage: VENV_PYTHON examples/bench/source_copies.py [TYPE ...]   (default: harness.LLAMA_TYPES)
"""

from __future__ import annotations

import collections
import sys
from typing import Callable

import numpy as np

import benchlib


def tensors(path) -> dict:
    import gguf

    return {t.name: t for t in gguf.GGUFReader(path).tensors}


def copies(source: dict, target: dict, dequantize: Callable) -> tuple[float, collections.Counter]:
    """(share of the quantized weights identical, share per `SRC=` (kept) or
    `SRC->DST` (changed)); tensors are gguf-py's (`tensor_type` with a
    `name`, `n_elements`, `data`), `dequantize(data, type)` gives the values."""
    kinds: collections.Counter = collections.Counter()
    total = same = 0
    for name, src in source.items():
        if src.tensor_type.name == "F32":
            continue
        dst = target[name]
        n = int(src.n_elements)
        total += n
        identical = src.tensor_type == dst.tensor_type and np.array_equal(
            dequantize(src.data, src.tensor_type), dequantize(dst.data, dst.tensor_type))
        if identical:
            same += n
            kinds[f"{src.tensor_type.name}="] += n
        else:
            kinds[f"{src.tensor_type.name}->{dst.tensor_type.name}"] += n
    return same / total, collections.Counter({k: v / total for k, v in kinds.items()})


def main(argv: list[str]) -> int:
    benchlib.ensure_llama_cpp_venv(["gguf"])
    from gguf.quants import dequantize

    from harness import LLAMA_TYPES

    types = argv or LLAMA_TYPES
    src_path = benchlib.fetch_gguf()
    source = tensors(src_path)
    print("| type | weights copied bit-exactly | tensors by source → target type (share of weights) |")
    print("|---|---:|---|")
    for qtype in types:
        share, kinds = copies(source, tensors(benchlib.ensure_llama_quant(src_path, qtype)), dequantize)
        changes = ", ".join(f"{k.replace('->', ' → ').replace('=', ' kept')} {v:.1%}"
                            for k, v in kinds.most_common() if v >= 0.001)
        print(f"| {qtype} | {share:.1%} | {changes} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
