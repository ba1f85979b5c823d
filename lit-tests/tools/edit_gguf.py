#!/usr/bin/env python3
"""Copy a GGUF file with edits, for the bad-input tests (lit-tests/errors).

Metadata and tensors are read with gguf-py's GGUFReader and written again
with its GGUFWriter, so the result is a well-formed GGUF file whose content
is wrong in exactly the ways asked for:

    --set KEY=TYPE:VALUE   set (or add) a metadata key; TYPE is one of u32,
                           i32, u64, i64, f32, f64, bool, str
    --del KEY              remove a metadata key
    --drop-tensor NAME     leave a tensor out
    --scalar-tensor NAME   replace a tensor by a 0-dimensional F32 one
    --add-tensor NAME=N    add an F32 tensor of N zeros (one dimension)
    --append-tokens N      append N tokens to tokenizer.ggml.tokens (and
                           tokenizer.ggml.token_type, as normal tokens)

Usage: edit_gguf.py IN OUT [edits...]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import gguf

T = gguf.GGUFValueType
TYPES = {
    "u32": (T.UINT32, int),
    "i32": (T.INT32, int),
    "u64": (T.UINT64, int),
    "i64": (T.INT64, int),
    "f32": (T.FLOAT32, float),
    "f64": (T.FLOAT64, float),
    "bool": (T.BOOL, lambda v: v == "true"),
    "str": (T.STRING, str),
}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--del", dest="delete", action="append", default=[])
    p.add_argument("--drop-tensor", action="append", default=[])
    p.add_argument("--scalar-tensor", action="append", default=[])
    p.add_argument("--add-tensor", action="append", default=[])
    p.add_argument("--append-tokens", type=int, default=0)
    args = p.parse_args(argv)

    sets = {}
    for item in args.set:
        key, _, typed = item.partition("=")
        ty, _, value = typed.partition(":")
        vtype, conv = TYPES[ty]
        sets[key] = (vtype, conv(value))

    reader = gguf.GGUFReader(args.input)
    arch = reader.get_field("general.architecture").contents()
    writer = gguf.GGUFWriter(args.output, arch)
    for field in reader.fields.values():
        name = field.name
        if name.startswith("GGUF.") or name == "general.architecture" or name in args.delete:
            continue
        if name in sets:
            vtype, value = sets.pop(name)
            writer.add_key_value(name, value, vtype)
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == T.ARRAY else None
        value = field.contents()
        if args.append_tokens and name == "tokenizer.ggml.tokens":
            value = value + [f"<extra_{i}>" for i in range(args.append_tokens)]
        if args.append_tokens and name == "tokenizer.ggml.token_type":
            value = value + [int(gguf.TokenType.NORMAL)] * args.append_tokens
        writer.add_key_value(name, value, vtype, sub_type=sub)
    for key, (vtype, value) in sets.items():
        writer.add_key_value(key, value, vtype)

    tensors = []
    for t in reader.tensors:
        if t.name in args.drop_tensor:
            continue
        if t.name in args.scalar_tensor:
            tensors.append((t.name, np.array(1.0, dtype=np.float32), None))
            continue
        tensors.append((t.name, t.data, t.tensor_type))
    for item in args.add_tensor:
        name, _, n = item.partition("=")
        tensors.append((name, np.zeros(int(n), dtype=np.float32), None))
    for name, data, ttype in tensors:
        if ttype is None:
            writer.add_tensor_info(name, data.shape, data.dtype, data.nbytes)
        else:
            writer.add_tensor_info(name, data.shape, data.dtype, data.nbytes, ttype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for _, data, _ in tensors:
        writer.write_tensor_data(data)
    writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
