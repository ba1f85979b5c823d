"""The bad-input matrix (issue 16): several hundred malformed files and flags,
each run through the tool that reads it, each asserting

- a non-zero exit that is an error, not a crash: 1 or 2, never a signal
  (a stack overflow, an abort, an out-of-memory kill), never 0;
- no panic text (`panicked`, `RUST_BACKTRACE`) and no abort text;
- an end within the time limit (no hang) and within the memory limit (an
  allocation sized by a header fails the run instead of the machine);
- a message that names the file, the flag or the field the input got wrong;
- every input file byte-identical afterwards.

The inputs are made from the tiny test models (examples/tiny/gen_tiny.py) by
the generators below, one family per class of issue 16: GGUF files, Hugging
Face checkpoints (config.json, safetensors, shard index, tokenizer),
model.mlir modules, rule files, the compiled executable's payload, datastore
files (at run time and when baked in), and the command lines of dittoc and of
the executable.

Run with `python -m pytest -q lit-tests/badinput` after `cargo build --release
--workspace` (it uses target/release). About a minute.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

REPO = Path(__file__).resolve().parents[2]
DITTOC = REPO / "target" / "release" / "dittoc"
DITTO_OPT = REPO / "target" / "release" / "ditto-opt"
GEN_TINY = REPO / "examples" / "tiny" / "gen_tiny.py"
TIME_LIMIT = 120  # seconds per run
MEMORY_LIMIT = 8 << 30  # bytes of address space per run

CRASH_TEXT = ("panicked", "RUST_BACKTRACE", "Aborted", "core dumped", "stack overflow",
              "memory allocation of", "Segmentation fault")


# --------------------------------------------------------------------------
# The tiny models every case starts from, made once.
# --------------------------------------------------------------------------

@dataclass
class Models:
    root: Path
    hf: Path          # a qwen2 HF checkpoint directory
    gguf: Path        # a llama f32 GGUF file
    mixed: Path       # a qwen2 GGUF with quantized tensors
    module: Path      # the HF checkpoint imported: model.mlir (+ sidecars)
    exe: Path         # the module compiled
    datastore: Path   # a datastore built with the module's tokenizer


def run_gen(args: list[str]) -> None:
    subprocess.run([sys.executable, str(GEN_TINY), *args], check=True,
                   stdout=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def models() -> Models:
    if not DITTOC.exists():
        pytest.fail(f"{DITTOC} is missing: run `cargo build --release --workspace` first")
    root = Path(tempfile.mkdtemp(prefix="ditto-bad-"))
    hf, gguf_path, mixed = root / "hf", root / "llama.gguf", root / "mixed.gguf"
    run_gen(["--arch", "qwen2", "--format", "hf", "--out", str(hf)])
    run_gen(["--arch", "llama", "--format", "gguf", "--out", str(gguf_path)])
    run_gen(["--arch", "qwen2", "--format", "gguf", "--gguf-type", "mixed", "--out", str(mixed)])
    module = root / "m" / "model.mlir"
    module.parent.mkdir()
    subprocess.run([str(DITTOC), "import", str(hf), "-o", str(module)], check=True,
                   capture_output=True)
    exe = root / "m" / "model"
    subprocess.run([str(DITTOC), str(module), "-O3", "-o", str(exe)], check=True,
                   capture_output=True)
    sources = root / "sources"
    sources.mkdir()
    (sources / "a.py").write_text("def add(a, b):\n    return a + b\n\nclass Point:\n    pass\n")
    (sources / "b.rs").write_text("fn add(a: u32, b: u32) -> u32 { a + b }\n")
    datastore = root / "m" / "code.ds"
    subprocess.run([str(DITTOC), "datastore", "build", str(sources), "-o", str(datastore),
                    "--tokenizer", str(module)], check=True, capture_output=True)
    yield Models(root, hf, gguf_path, mixed, module, exe, datastore)
    shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------
# One case: how to make its inputs in a fresh directory, what to run, and
# what the message must name.
# --------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    # make(models, dir) creates the inputs in dir and returns the command
    # line (argv) to run there.
    make: Callable[[Models, Path], list[str]]
    # Substrings (regular expressions) of which at least one must be in the
    # output: the file, flag or field at fault.
    names: list[str]
    stdin: bytes | None = None
    exit_codes: tuple[int, ...] = (1, 2)
    env: dict = field(default_factory=dict)


def digest_tree(paths: list[Path]) -> dict[str, str]:
    found = {}
    for top in paths:
        if not top.exists():
            continue
        files = [top] if top.is_file() else [p for p in top.rglob("*") if p.is_file()]
        for p in files:
            found[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return found


def limit_resources() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def check(case: Case, models: Models, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    argv = case.make(models, tmp_path)
    inputs = [p for p in tmp_path.iterdir() if p.name != "out"]
    before = digest_tree(inputs)
    try:
        done = subprocess.run(argv, cwd=tmp_path, capture_output=True, timeout=TIME_LIMIT,
                              input=case.stdin, preexec_fn=limit_resources,
                              env={**os.environ, **case.env})
    except subprocess.TimeoutExpired:
        pytest.fail(f"{case.name}: no end within {TIME_LIMIT} s: {argv}")
    output = (done.stdout + done.stderr).decode("utf-8", "replace")
    assert done.returncode in case.exit_codes, (
        f"{case.name}: exit code {done.returncode} (a signal is {-done.returncode} "
        f"if negative), expected {case.exit_codes}\n{output[-3000:]}")
    for text in CRASH_TEXT:
        assert text not in output, f"{case.name}: `{text}` in the output\n{output[-3000:]}"
    assert any(re.search(n, output) for n in case.names), (
        f"{case.name}: the message names none of {case.names}\n{output[-3000:]}")
    after = digest_tree(inputs)
    changed = [p for p, h in before.items() if after.get(p) != h]
    assert not changed, f"{case.name}: inputs changed: {changed}"


# --------------------------------------------------------------------------
# GGUF files.
# --------------------------------------------------------------------------

GGUF_TYPES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
STRING, ARRAY = 8, 9


@dataclass
class GgufLayout:
    """Byte offsets of a GGUF file's header fields (see the GGUF spec)."""
    n_tensors_at: int
    n_kv_at: int
    # key -> (offset of the value type field, offset of the value)
    kv: dict[str, tuple[int, int]]
    # tensor name -> offsets of n_dims, of each dim, of the type, of the offset
    tensors: dict[str, dict]


def gguf_layout(data: bytes) -> GgufLayout:
    pos = 8
    n_tensors = struct.unpack_from("<Q", data, pos)[0]
    n_kv = struct.unpack_from("<Q", data, pos + 8)[0]
    layout = GgufLayout(pos, pos + 8, {}, {})
    pos += 16

    def string(at: int) -> tuple[str, int]:
        n = struct.unpack_from("<Q", data, at)[0]
        return data[at + 8:at + 8 + n].decode("utf-8", "replace"), at + 8 + n

    def value(kind: int, at: int) -> int:
        if kind == STRING:
            return string(at)[1]
        if kind == ARRAY:
            inner = struct.unpack_from("<I", data, at)[0]
            count = struct.unpack_from("<Q", data, at + 4)[0]
            at += 12
            for _ in range(count):
                at = value(inner, at)
            return at
        return at + GGUF_TYPES[kind]

    for _ in range(n_kv):
        key, pos = string(pos)
        kind = struct.unpack_from("<I", data, pos)[0]
        layout.kv[key] = (pos, pos + 4)
        pos = value(kind, pos + 4)
    for _ in range(n_tensors):
        name, pos = string(pos)
        n_dims = struct.unpack_from("<I", data, pos)[0]
        entry = {"n_dims": pos, "dims": [pos + 4 + 8 * i for i in range(n_dims)]}
        pos += 4 + 8 * n_dims
        entry["type"], entry["offset"] = pos, pos + 4
        pos += 12
        layout.tensors[name] = entry
    return layout


def patched(data: bytes, at: int, fmt: str, value) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, at, value)
    return bytes(out)


def gguf_case(name: str, mutate: Callable[[bytes, GgufLayout], bytes],
              names: list[str], source: str = "gguf") -> Case:
    def make(models: Models, d: Path) -> list[str]:
        src = getattr(models, source).read_bytes()
        (d / "bad.gguf").write_bytes(mutate(src, gguf_layout(src)))
        return [str(DITTOC), "import", "bad.gguf", "-o", "out/m.mlir"]
    return Case(f"gguf-{source}-{name}", make, ["bad.gguf", *names])


def gguf_cases() -> list[Case]:
    cases = []
    # Cut short at 40 places across the header, metadata, tensor table, data.
    for source in ("gguf", "mixed"):
        for i in range(40):
            def cut(data: bytes, layout: GgufLayout, i=i) -> bytes:
                n = len(data)
                points = [0, 3, 4, 7, 8, 15, 16, 23, 24, 31] + [
                    int(n * (k / 30) ** 3) for k in range(1, 31)]
                return data[:min(points[i], n - 1)]
            cases.append(gguf_case(f"cut-{i}", cut, [r"truncat|end of file|too short|cut|shorter|beyond|past|bytes"], source))
    cases.append(gguf_case("magic", lambda d, l: b"GGUX" + d[4:], ["GGUF|magic"]))
    # Version 2 reads as version 3 does (little-endian files).
    for version in (0, 1, 4, 0xFFFFFFFF):
        cases.append(gguf_case(f"version-{version}",
                               lambda d, l, v=version: patched(d, 4, "<I", v), ["version"]))
    for count in (2**32 - 1, 2**63 - 1, 2**64 - 1):
        cases.append(gguf_case(f"tensor-count-{count}",
                               lambda d, l, c=count: patched(d, l.n_tensors_at, "<Q", c),
                               ["tensor"]))
        cases.append(gguf_case(f"kv-count-{count}",
                               lambda d, l, c=count: patched(d, l.n_kv_at, "<Q", c),
                               ["metadata|key|value|kv"]))
    # Metadata values: the architecture's dimensions set to absurd values.
    for key_suffix in ("block_count", "embedding_length", "feed_forward_length",
                       "attention.head_count", "attention.head_count_kv", "context_length"):
        key = f"llama.{key_suffix}"
        # 3 is a valid context length (and no valid other dimension).
        values = (0, 2**31 - 1, 2**32 - 1) if key_suffix == "context_length" else (0, 3, 2**31 - 1, 2**32 - 1)
        for value in values:
            def set_u32(d: bytes, l: GgufLayout, key=key, value=value) -> bytes:
                kind_at, value_at = l.kv[key]
                kind = struct.unpack_from("<I", d, kind_at)[0]
                fmt = {4: "<I", 5: "<i", 10: "<Q", 11: "<q"}[kind]
                v = value if kind in (4, 10) else min(value, 2**31 - 1)
                return patched(d, value_at, fmt, v)
            cases.append(gguf_case(f"{key_suffix}-{value}", set_u32,
                                   [re.escape(key), "tensor", "blk"]))
        # The value's type changed to a string (the bytes then misparse).
        def as_string(d: bytes, l: GgufLayout, key=key) -> bytes:
            return patched(d, l.kv[key][0], "<I", STRING)
        cases.append(gguf_case(f"{key_suffix}-type-string", as_string, [re.escape(key), "string|type|length|bytes"]))
        def as_unknown(d: bytes, l: GgufLayout, key=key) -> bytes:
            return patched(d, l.kv[key][0], "<I", 77)
        cases.append(gguf_case(f"{key_suffix}-type-77", as_unknown, [re.escape(key), "type"]))
    # The architecture renamed.
    def arch(d: bytes, l: GgufLayout) -> bytes:
        at = l.kv["general.architecture"][1]
        n = struct.unpack_from("<Q", d, at)[0]
        return d[:at + 8] + b"x" * n + d[at + 8 + n:]
    cases.append(gguf_case("unknown-architecture", arch, ["architecture|xxxxx"]))
    # The tensor table: dims, ranks, types and offsets.
    for tensor in ("token_embd.weight", "blk.0.attn_q.weight", "blk.1.ffn_down.weight", "output_norm.weight"):
        for n_dims in (0, 5, 2**32 - 1):
            cases.append(gguf_case(
                f"{tensor}-n_dims-{n_dims}",
                lambda d, l, t=tensor, n=n_dims: patched(d, l.tensors[t]["n_dims"], "<I", n),
                [re.escape(tensor), "dim|rank|tensor"]))
        for dim in (0, 3, 2**31, 2**62, 2**64 - 1):
            cases.append(gguf_case(
                f"{tensor}-dim0-{dim}",
                lambda d, l, t=tensor, v=dim: patched(d, l.tensors[t]["dims"][0], "<Q", v),
                [re.escape(tensor)]))
        for ty in (4, 99, 2**32 - 1):
            cases.append(gguf_case(
                f"{tensor}-type-{ty}",
                lambda d, l, t=tensor, v=ty: patched(d, l.tensors[t]["type"], "<I", v),
                [re.escape(tensor), "type"]))
        for offset in (1, 2**40, 2**64 - 1):
            cases.append(gguf_case(
                f"{tensor}-offset-{offset}",
                lambda d, l, t=tensor, v=offset: patched(d, l.tensors[t]["offset"], "<Q", v),
                [re.escape(tensor), "offset|align"]))
    # The tokenizer's token list emptied in length (array count 0 / huge).
    for count in (0, 2**40):
        def tokens(d: bytes, l: GgufLayout, c=count) -> bytes:
            return patched(d, l.kv["tokenizer.ggml.tokens"][1] + 4, "<Q", c)
        cases.append(gguf_case(f"token-list-count-{count}", tokens,
                               ["tokenizer.ggml.tokens|token|vocab"]))
    for key in ("tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"):
        cases.append(gguf_case(f"{key}-beyond-vocab",
                               lambda d, l, k=key: patched(d, l.kv[k][1], "<I", 10**6),
                               [re.escape(key)]))
    return cases


# --------------------------------------------------------------------------
# Hugging Face checkpoints.
# --------------------------------------------------------------------------

def hf_case(name: str, mutate: Callable[[Path], None], names: list[str]) -> Case:
    def make(models: Models, d: Path) -> list[str]:
        shutil.copytree(models.hf, d / "ckpt")
        mutate(d / "ckpt")
        return [str(DITTOC), "import", "ckpt", "-o", "out/m.mlir"]
    return Case(f"hf-{name}", make, names)


def edit_config(update: dict | None = None, remove: str | None = None, raw: bytes | None = None):
    def mutate(ckpt: Path) -> None:
        path = ckpt / "config.json"
        if raw is not None:
            path.write_bytes(raw)
            return
        cfg = json.loads(path.read_text())
        if remove:
            cfg.pop(remove)
        cfg.update(update or {})
        path.write_text(json.dumps(cfg))
    return mutate


CONFIG_INTS = ("num_hidden_layers", "hidden_size", "num_attention_heads", "num_key_value_heads",
               "intermediate_size", "vocab_size", "max_position_embeddings")


def hf_cases() -> list[Case]:
    cases = []
    # A key that transformers gives a default (num_key_value_heads: the
    # attention heads; max_position_embeddings, rope_theta, rms_norm_eps) may
    # be missing or null: the default then stands, and a tensor that does not
    # fit it is named with config.json.
    defaulted = ("num_key_value_heads", "max_position_embeddings")
    for key in CONFIG_INTS:
        values = [0, -1, -2**40, 10**12, 2**63, 3.5, "12", [4], True]
        if key not in defaulted:
            values.append(None)
        for value in values:
            cases.append(hf_case(f"config-{key}-{value!r}", edit_config({key: value}),
                                 [re.escape(key)]))
        if key not in defaulted:
            cases.append(hf_case(f"config-{key}-missing", edit_config(remove=key), [re.escape(key)]))
    cases.append(hf_case("config-num_key_value_heads-missing", edit_config(remove="num_key_value_heads"),
                         ["num_key_value_heads", "config.json"]))
    for key in ("rope_theta", "rms_norm_eps"):
        for value in (0, -1.0, "10000", float("inf")):
            # (inf is written as `Infinity`, which is not JSON.)
            names = [re.escape(key), "config.json"] if value == float("inf") else [re.escape(key)]
            cases.append(hf_case(f"config-{key}-{value!r}", edit_config({key: value}), names))
    cases.append(hf_case("config-hidden_act-gelu", edit_config({"hidden_act": "gelu"}),
                         ["hidden_act", "gelu"]))
    cases.append(hf_case("config-rope_scaling", edit_config(
        {"rope_scaling": {"type": "yarn", "factor": 4.0}}), ["rope_scaling"]))
    cases.append(hf_case("config-architecture", edit_config(
        {"architectures": ["MambaForCausalLM"], "model_type": "mamba"}),
        ["architectures|model_type|Mamba|mamba"]))
    cases.append(hf_case("config-tie-string", edit_config({"tie_word_embeddings": "yes"}),
                         ["tie_word_embeddings"]))
    cases.append(hf_case("config-kv-not-dividing", edit_config({"num_key_value_heads": 3}),
                         ["num_key_value_heads|num_attention_heads"]))
    for label, raw in (("empty", b""), ("not-json", b"{hello"), ("array", b"[1, 2]"),
                       ("nested", b"[" * 100000 + b"]" * 100000),
                       ("nul", b"\x00" * 64), ("huge-number", b'{"num_hidden_layers": 1' + b"0" * 5000 + b"}")):
        cases.append(hf_case(f"config-{label}", edit_config(raw=raw), ["config.json"]))
    cases.append(hf_case("config-missing", lambda c: (c / "config.json").unlink(), ["config.json"]))

    # The safetensors file: cut, header length, header JSON, dtypes, offsets.
    def st_cut(frac: float):
        def mutate(ckpt: Path) -> None:
            p = ckpt / "model.safetensors"
            data = p.read_bytes()
            p.write_bytes(data[:int(len(data) * frac)])
        return mutate
    for i, frac in enumerate([0.0, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 0.5, 0.9, 0.999]):
        cases.append(hf_case(f"safetensors-cut-{i}", st_cut(frac), ["model.safetensors"]))

    def st_header(edit: Callable[[dict], None] | None = None, length: int | None = None):
        def mutate(ckpt: Path) -> None:
            p = ckpt / "model.safetensors"
            data = p.read_bytes()
            n = struct.unpack_from("<Q", data, 0)[0]
            header = json.loads(data[8:8 + n])
            body = data[8 + n:]
            if edit:
                edit(header)
            text = json.dumps(header).encode()
            text += b" " * ((8 - len(text) % 8) % 8)
            p.write_bytes(struct.pack("<Q", length if length is not None else len(text)) + text + body)
        return mutate
    for length in (0, 7, 2**40, 2**64 - 1):
        cases.append(hf_case(f"safetensors-header-length-{length}", st_header(length=length),
                             ["model.safetensors"]))
    tensor = "model.layers.0.self_attn.q_proj.weight"

    def set_field(name: str, key: str, value):
        def edit(header: dict) -> None:
            header[name][key] = value
        return edit
    for key, value in (("dtype", "I8"), ("dtype", "F64"), ("dtype", "Q9"), ("shape", [0, 64]),
                       ("shape", [64]), ("shape", [2**40, 2**40]), ("shape", [-1, 64]),
                       ("data_offsets", [0, 1]), ("data_offsets", [0, 2**50]),
                       ("data_offsets", [100, 50]), ("shape", "x")):
        cases.append(hf_case(f"safetensors-{key}-{value!r}",
                             st_header(set_field(tensor, key, value)),
                             ["model.safetensors", re.escape(tensor)]))
    # (The other tensors' offsets then leave a hole, which the reader names.)
    cases.append(hf_case("safetensors-tensor-missing",
                         st_header(lambda h: h.pop(tensor)), [re.escape(tensor), "model.safetensors"]))
    cases.append(hf_case("safetensors-missing", lambda c: (c / "model.safetensors").unlink(),
                         ["model.safetensors|safetensors"]))

    # The tokenizer.
    for label, raw in (("empty", b""), ("not-json", b"{"), ("not-a-tokenizer", b'{"hello": 1}'),
                       ("nested", b"[" * 100000)):
        cases.append(hf_case(f"tokenizer-{label}",
                             lambda c, raw=raw: (c / "tokenizer.json").write_bytes(raw),
                             ["tokenizer.json"]))
    cases.append(hf_case("tokenizer-missing", lambda c: (c / "tokenizer.json").unlink(),
                         ["tokenizer.json"]))

    def added_token_beyond(ckpt: Path) -> None:
        p = ckpt / "tokenizer.json"
        tok = json.loads(p.read_text())
        tok["added_tokens"].append({"id": 10**6, "content": "<|far|>", "single_word": False,
                                    "lstrip": False, "rstrip": False, "normalized": False,
                                    "special": True})
        p.write_text(json.dumps(tok))
    cases.append(hf_case("tokenizer-added-token-beyond-vocab", added_token_beyond,
                         ["tokenizer.json|added|1000000|vocab"]))
    for label, raw in (("empty", b""), ("not-json", b"{"), ("bos-unknown", b'{"bos_token": "<|nope|>"}'),
                       ("eos-number", b'{"eos_token": 5}')):
        cases.append(hf_case(f"tokenizer-config-{label}",
                             lambda c, raw=raw: (c / "tokenizer_config.json").write_bytes(raw),
                             ["tokenizer_config.json"]))
    return cases


# --------------------------------------------------------------------------
# Modules (model.mlir edited by hand) and rule files.
# --------------------------------------------------------------------------

def module_case(name: str, edit: Callable[[str], str], names: list[str],
                command: str = "compile", weights: Callable[[bytes], bytes] | None = None) -> Case:
    def make(models: Models, d: Path) -> list[str]:
        src = models.module.parent
        for f in src.iterdir():
            if f.name.startswith("model.") and f.suffix != "" and f.name != "model":
                shutil.copy(f, d / f.name)
        text = (d / "model.mlir").read_text()
        (d / "model.mlir").write_text(edit(text))
        if weights:
            p = d / "model.weights"
            p.write_bytes(weights(p.read_bytes()))
        if command == "compile":
            return [str(DITTOC), "model.mlir", "-O3", "-o", "out/model"]
        if command == "quantize":
            return [str(DITTOC), "quantize", "model.mlir", "--bits", "4", "--block", "64",
                    "--calib-set", "random", "-o", "out/q.mlir"]
        return [str(DITTO_OPT), "model.mlir", "--pass-pipeline=builtin.module(ditto-verify)"]
    return Case(f"module-{command}-{name}", make, names)


def set_attr(key: str, value: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        new, n = re.subn(rf"{re.escape(key)} = [^,}}]+", f"{key} = {value}", text, count=1)
        assert n == 1, key
        return new
    return edit


MODULE_INTS = ("ditto.n_layers", "ditto.d_model", "ditto.n_heads", "ditto.n_kv_heads",
               "ditto.head_dim", "ditto.ffn", "ditto.vocab", "ditto.max_ctx")


def module_cases() -> list[Case]:
    cases = []
    for key in MODULE_INTS:
        # A smaller ditto.max_ctx is a valid module (a shorter context).
        small = () if key == "ditto.max_ctx" else ("1 : i64", "3 : i64")
        for value in ("0 : i64", "-1 : i64", *small, "9223372036854775807 : i64", '"12"'):
            for command in ("compile", "verify"):
                cases.append(module_case(f"{key}-{value}", set_attr(key, value),
                                         [re.escape(key), "ditto_decode|ditto_prefill|ditto_lm_head|weight"],
                                         command))
        cases.append(module_case(f"{key}-{value}-quantize", set_attr(key, "0 : i64"),
                                 [re.escape(key)], "quantize"))
    for key in ("ditto.weights", "ditto.tokenizer", "ditto.tokenizer_config"):
        for value in ('"/etc/passwd"', '"../../outside"', '"missing.file"', '""', "3 : i64"):
            cases.append(module_case(f"{key}-{value}", set_attr(key, value),
                                     [re.escape(key), re.escape(value.strip('"')) or key]))
    cases.append(module_case("arch-missing", lambda t: re.sub(r'ditto.arch = "[^"]*", ', "", t, 1),
                             ["ditto.arch"]))

    def duplicate_weight(text: str) -> str:
        return text.replace('{name = "output_norm.weight"} : () -> memref<64xf32>',
                            '{name = "output_norm.weight"} : () -> memref<32xf32>', 1)
    # The uses then disagree with the type: MLIR's own parse error, at its line.
    at_line = r"model\.mlir:\d+:\d+"
    cases.append(module_case("weight-two-types", duplicate_weight, ["output_norm.weight", at_line]))
    cases.append(module_case("weight-two-types-verify", duplicate_weight,
                             ["output_norm.weight", at_line], "verify"))

    def weight_shape(text: str) -> str:
        return re.sub(r'(\{name = "blk.0.attn_q.weight"\} : \(\) -> memref<)64x64', r"\g<1>32x128", text)
    cases.append(module_case("weight-shape", weight_shape, ["blk.0.attn_q.weight", at_line]))

    def second_declaration(text: str) -> str:
        # A second, unused declaration of a weight with another type.
        return text.replace('    %0 = "ditto.weight"() {name = "token_embd.weight"}',
                            '    %dup = "ditto.weight"() {name = "token_embd.weight"} : () -> memref<8x8xf32>\n'
                            '    %0 = "ditto.weight"() {name = "token_embd.weight"}', 1)
    for command in ("compile", "verify"):
        cases.append(module_case("weight-declared-twice", second_declaration,
                                 ["token_embd.weight"], command))
    cases.append(module_case("weight-unknown", lambda t: t.replace('"blk.1.ffn_up.weight"', '"no.such"', 1),
                             ["no.such"]))
    # Cut short, and syntax errors at places across the file.
    for i in range(20):
        def cut(text: str, i=i) -> str:
            return text[:int(len(text) * (i + 0.5) / 20)]
        cases.append(module_case(f"cut-{i}", cut, [r"model\.mlir:\d+:\d+"]))
    for i in range(10):
        def garble(text: str, i=i) -> str:
            at = int(len(text) * (i + 0.5) / 10)
            return text[:at] + "}}%%\u00e9(" + text[at:]
        cases.append(module_case(f"garbled-{i}", garble, [r"model\.mlir:\d+:\d+"]))
    cases.append(module_case("empty", lambda t: "", ["model.mlir|ditto.arch|ditto_decode|ditto.weights"]))
    cases.append(module_case("binary", lambda t: "\x00\x01\x02" * 100, [r"model\.mlir"]))
    for depth in (10_000, 200_000):
        cases.append(module_case(f"nested-regions-{depth}",
                                 lambda t, n=depth: t.rstrip()[:-1] + "  func.func @deep() {\n" +
                                 '"test.op"() ({\n' * n + "}) : () -> ()\n" * n + "return\n}\n}\n",
                                 [r"model\.mlir", "nest|deep|depth"]))
        cases.append(module_case(f"nested-attribute-{depth}",
                                 lambda t, n=depth: t.replace("module attributes {",
                                                              "module attributes {ditto.deep = " + "[" * n + "]" * n + ", ", 1),
                                 [r"model\.mlir", "nest|deep|depth"]))
    # The weight file: cut, emptied, not safetensors.
    for label, w in (("cut", lambda b: b[:len(b) // 2]), ("empty", lambda b: b""),
                     ("garbage", lambda b: b"\xff" * 4096), ("header-huge", lambda b: struct.pack("<Q", 2**60) + b[8:])):
        cases.append(module_case(f"weights-{label}", lambda t: t, ["model.weights"], weights=w))
    return cases


def rules_cases() -> list[Case]:
    cases = []
    samples = {
        "garbage": "hello world",
        "unbalanced": "(rule a (matmul ?a ?b) => (gemm ?a ?b)",
        "unknown-op": "(rule a (frobnicate ?a) => (gemm ?a ?a))",
        "nested": "(" * 100000 + ")" * 100000,
        "binary": "\x00\xff" * 100,
        "empty-rule": "(rule)",
    }
    for label, text in samples.items():
        def make(models: Models, d: Path, text=text) -> list[str]:
            for f in models.module.parent.iterdir():
                if f.name.startswith("model.") and f.name != "model":
                    shutil.copy(f, d / f.name)
            (d / "bad.rules").write_text(text)
            return [str(DITTOC), "model.mlir", "-O3", "--rules", "bad.rules", "-o", "out/model"]
        cases.append(Case(f"rules-{label}", make, ["bad.rules"]))

    def missing(models: Models, d: Path) -> list[str]:
        for f in models.module.parent.iterdir():
            if f.name.startswith("model.") and f.name != "model":
                shutil.copy(f, d / f.name)
        return [str(DITTOC), "model.mlir", "--rules", "none.rules", "-o", "out/model"]
    cases.append(Case("rules-missing", missing, ["none.rules"]))
    return cases


# --------------------------------------------------------------------------
# The executable: its payload and its command line; dittoc's command line.
# --------------------------------------------------------------------------

def exe_case(name: str, args: list[str], names: list[str],
             mutate: Callable[[bytes], bytes] | None = None) -> Case:
    def make(models: Models, d: Path) -> list[str]:
        data = models.exe.read_bytes()
        exe = d / "model"
        exe.write_bytes(mutate(data) if mutate else data)
        exe.chmod(0o755)
        return [str(exe), *args]
    return Case(f"exe-{name}", make, names)


def manifest_edit(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    def mutate(data: bytes) -> bytes:
        assert data.count(old) == 1, old
        return data.replace(old, new)
    return mutate


def exe_cases() -> list[Case]:
    cases = []
    ok = ["--tokens", "1,2,3", "--ids"]
    for flag, values in (("-n", ["-1", "x", "99999999999999999999"]),
                         ("--ctx", ["0", "-5", "x", "99999999999"]),
                         ("--threads", ["0", "-1", "x", "100000"]),
                         ("--temp", ["nan", "-1", "x", "inf"]),
                         ("--top-k", ["-1", "x"]),
                         ("--seed", ["-1", "x"])):
        for value in values:
            cases.append(exe_case(f"flag{flag}-{value}", [*ok, flag, value],
                                  [re.escape(flag.lstrip("-")), re.escape(value)]))
    cases.append(exe_case("tokens-beyond-vocab", ["--tokens", "1,2,999999", "--ids"], ["999999|vocab"]))
    cases.append(exe_case("tokens-garbage", ["--tokens", "1,,x", "--ids"], ["tokens"]))
    cases.append(exe_case("tokens-file-missing", ["--tokens-file", "nope.txt"], ["nope.txt"]))
    cases.append(exe_case("prompt-file-missing", ["-f", "nope.txt"], ["nope.txt"]))
    cases.append(exe_case("unknown-flag", ["--frobnicate"], ["frobnicate"]))
    n = len(b"DITTOPAY")
    cases.append(exe_case("payload-magic", ok, ["payload|DITTOPAY|manifest"],
                          lambda d: d[:-n] + b"DITTOPAX"))
    cases.append(exe_case("payload-length-huge", ok, ["payload|manifest"],
                          lambda d: d[:-n - 8] + struct.pack("<Q", 2**62) + d[-n:]))
    cases.append(exe_case("payload-length-zero", ok, ["payload|manifest"],
                          lambda d: d[:-n - 8] + struct.pack("<Q", 0) + d[-n:]))
    cases.append(exe_case("payload-cut", ok, ["payload|manifest|DITTOPAY"],
                          lambda d: d[:len(d) - 5000]))
    for old, new, field_name in ((b'"n_kv_heads":2,', b'"n_kv_heads":1,', "n_kv_heads"),
                                 (b'"vocab":400,', b'"vocab":401,', "vocab"),
                                 (b'"max_ctx":256', b'"max_ctx":999', "max_ctx"),
                                 (b'"n_layers":2,', b'"n_layers":0,', "n_layers"),
                                 (b'"model":{', b'"modex":{', "model")):
        cases.append(exe_case(f"manifest-{field_name}", ok, [field_name],
                              manifest_edit(old, new)))
    return cases


# --------------------------------------------------------------------------
# Datastore files (ditto_datastore::file), given to the executable
# (--datastore) and to dittoc to bake in.
# --------------------------------------------------------------------------

DS_HEADER = 128
# Header fields: (offset, struct format).
DS_FIELDS = {"magic": (0, "<8s"), "version": (8, "<I"), "header_bytes": (12, "<I"),
             "fingerprint": (16, "<32s"), "files": (48, "<Q"), "source_bytes": (56, "<Q"),
             "entries": (64, "<Q"), "tokens_offset": (72, "<Q"), "suffixes_offset": (80, "<Q"),
             "file_bytes": (88, "<Q"), "body_crc32": (96, "<I"), "header_crc32": (100, "<I"),
             "reserved": (104, "<24s")}


def ds_seal(data: bytes) -> bytes:
    """The file with both checksums made right again after an edit."""
    data = bytearray(data)
    struct.pack_into("<I", data, 96, zlib.crc32(bytes(data[DS_HEADER:])))
    struct.pack_into("<I", data, 100, 0)
    struct.pack_into("<I", data, 100, zlib.crc32(bytes(data[:DS_HEADER])))
    return bytes(data)


def ds_set(name: str, value, seal: bool = True) -> Callable[[bytes], bytes]:
    at, fmt = DS_FIELDS[name]

    def mutate(data: bytes) -> bytes:
        data = bytearray(data)
        struct.pack_into(fmt, data, at, value)
        return ds_seal(bytes(data)) if seal else bytes(data)
    return mutate


def ds_word(index: int, value: int) -> Callable[[bytes], bytes]:
    """Word `index` of the body (tokens, then suffixes) set to `value`, sealed."""
    def mutate(data: bytes) -> bytes:
        data = bytearray(data)
        struct.pack_into("<I", data, DS_HEADER + 4 * index, value)
        return ds_seal(bytes(data))
    return mutate


def ds_case(name: str, mutate: Callable[[bytes], bytes], names: list[str]) -> list[Case]:
    """The mutated file given to the executable and to dittoc."""
    def at_run_time(models: Models, d: Path) -> list[str]:
        (d / "code.ds").write_bytes(mutate(models.datastore.read_bytes()))
        return [str(models.exe), "--tokens", "1,2,3", "--ids", "--datastore", "code.ds"]

    def baked(models: Models, d: Path) -> list[str]:
        (d / "code.ds").write_bytes(mutate(models.datastore.read_bytes()))
        for f in models.module.parent.iterdir():
            if f.name.startswith("model."):
                shutil.copy(f, d / f.name)
        return [str(DITTOC), "model.mlir", "--datastore", "code.ds", "-o", "out/model"]
    names = [*names, "code.ds"]
    return [Case(f"datastore-run-{name}", at_run_time, names),
            Case(f"datastore-bake-{name}", baked, names)]


def datastore_cases() -> list[Case]:
    cases = []
    for cut in (0, 4, 7, 8, 64, 127, 128, 129, 200, -4, -1):
        cases += ds_case(f"cut-{cut}", lambda d, cut=cut: d[:cut], ["truncated"])
    cases += ds_case("garbage", lambda d: b"GGUF" + bytes(300), ["not a datastore"])
    cases += ds_case("text", lambda d: b"def add(a, b):\n" * 20, ["not a datastore"])
    cases += ds_case("trailing", lambda d: ds_seal(d + b"\0\0\0\0"), ["file_bytes"])
    # A byte flipped in every header field and in the body: a checksum says so.
    for name, (at, _) in DS_FIELDS.items():
        cases += ds_case(f"flip-{name}", lambda d, at=at: d[:at] + bytes([d[at] ^ 0x10]) + d[at + 1:],
                         ["checksum|not a datastore|version"])
    cases += ds_case("flip-body", lambda d: d[:140] + bytes([d[140] ^ 1]) + d[141:], ["checksum"])
    # Sealed lies: checksums right, a field wrong.
    for name, value in (("version", 2), ("version", 0), ("header_bytes", 64),
                        ("entries", 2**64 - 1), ("entries", 2**31), ("entries", 0),
                        ("tokens_offset", 0), ("tokens_offset", 2**63),
                        ("suffixes_offset", 2**64 - 1), ("file_bytes", 2**62),
                        ("files", 2**40), ("files", 0), ("reserved", b"\1" * 24)):
        cases += ds_case(f"sealed-{name}-{value if isinstance(value, int) else 'x'}",
                         ds_set(name, value), [name, "version", "truncated"])
    cases += ds_case("fingerprint", ds_set("fingerprint", b"\x42" * 32), ["another tokenizer"])
    # The body: a token beyond the vocabulary, a separator lost, suffixes out
    # of range, repeated, swapped.
    entries = lambda d: struct.unpack_from("<Q", d, 64)[0]
    cases += ds_case("token-beyond-vocab", lambda d: ds_word(0, 400)(d), ["vocabulary"])
    cases += ds_case("token-huge", lambda d: ds_word(1, 2**32 - 2)(d), ["vocabulary"])
    cases += ds_case("separator-lost", lambda d: ds_word(entries(d) - 1, 5)(d), ["files|terminated"])
    cases += ds_case("suffix-past-end", lambda d: ds_word(entries(d), entries(d))(d), ["past the end"])
    cases += ds_case("suffix-twice", lambda d: ds_word(entries(d) + 1, struct.unpack_from(
        "<I", d, DS_HEADER + 4 * entries(d))[0])(d), ["twice"])

    def swapped(d: bytes) -> bytes:
        at = DS_HEADER + 4 * entries(d)
        return ds_seal(d[:at] + d[at + 4:at + 8] + d[at:at + 4] + d[at + 8:])
    cases += ds_case("suffixes-swapped", swapped, ["not sorted"])
    return cases


def dittoc_flag_case(name: str, args: list[str], names: list[str]) -> Case:
    def make(models: Models, d: Path) -> list[str]:
        for f in models.module.parent.iterdir():
            if f.name.startswith("model.") and f.name != "model":
                shutil.copy(f, d / f.name)
        return [str(DITTOC), *args]
    return Case(f"dittoc-{name}", make, names)


def dittoc_cases() -> list[Case]:
    q = ["quantize", "model.mlir", "-o", "out/q.mlir"]
    cases = []
    for flag, values in (("--bits", ["0", "7", "255", "-1", "x"]),
                         ("--block", ["0", "7", "-64", "9223372036854775807", "18446744073709551616"]),
                         ("--calib-tokens", ["0", "-1", "4611686018427387904"]),
                         ("--bits-avg", ["0", "-3", "nan", "99"])):
        for value in values:
            cases.append(dittoc_flag_case(f"quantize{flag}-{value}",
                                          [*q, "--calib-set", "random", flag, value],
                                          [re.escape(flag.lstrip("-"))]))
    cases.append(dittoc_flag_case("quantize-compensated-no-calib",
                                  [*q, "--bits", "4", "--rounding", "compensated", "--calib-set", "none"],
                                  ["rounding|calib"]))
    cases.append(dittoc_flag_case("quantize-calib-missing",
                                  [*q, "--bits", "4", "--calib", "nowhere"], ["nowhere"]))
    cases.append(dittoc_flag_case("compile-O9", ["model.mlir", "-O9", "-o", "out/model"], ["O"]))
    cases.append(dittoc_flag_case("compile-target-cpu", ["model.mlir", "--target-cpu", "z80", "-o", "out/model"],
                                  ["z80|target-cpu"]))
    cases.append(dittoc_flag_case("compile-missing-module", ["nope.mlir", "-o", "out/model"], ["nope.mlir"]))
    cases.append(dittoc_flag_case("import-missing", ["import", "nope", "-o", "out/m.mlir"], ["nope"]))
    cases.append(dittoc_flag_case("compile-emit", ["model.mlir", "--emit", "wasm", "-o", "out/model"], ["emit|wasm"]))
    for option in ("ditto-quantize{bits=255}", "ditto-quantize{block=0}",
                   "ditto-select-kernels{codebook-kernels=fast}", "ditto-no-such-pass"):
        def make(models: Models, d: Path, option=option) -> list[str]:
            shutil.copy(models.module, d / "model.mlir")
            return [str(DITTO_OPT), "model.mlir", f"--pass-pipeline=builtin.module({option})"]
        cases.append(Case(f"ditto-opt-{option}", make, [re.escape(option.split("{")[0])]))
    return cases


ALL = (gguf_cases() + hf_cases() + module_cases() + rules_cases() + exe_cases() + dittoc_cases()
       + datastore_cases())


def test_the_matrix_is_several_hundred_cases() -> None:
    assert len(ALL) >= 300, len(ALL)
    names = [c.name for c in ALL]
    assert len(names) == len(set(names)), "duplicate case names"


@pytest.mark.parametrize("case", ALL, ids=[c.name for c in ALL])
def test_bad_input(case: Case, models: Models, tmp_path: Path) -> None:
    check(case, models, tmp_path)
