#!/usr/bin/env python3
"""Seed inputs for dittoc's fuzz targets (docs/fuzzing.md), made from real files.

    .venv/bin/python fuzz/make_seeds.py [--out fuzz/corpus-work] [--dittoc target/release/dittoc]

writes OUT/<target>/seed-* for every target of fuzz/shared (ditto-fuzz-targets).
The seeds keep the real files' structure with few entries, so that what the
fuzzer derives from them stays small enough to check in:

gguf            models from examples/tiny/gen_tiny.py shrunk to hidden 32, one
                layer and a 32-token embedding, without tokenizer metadata (this
                target does not read it), in Q8_0 and in the generator's mix of
                Q4_0..Q8_0, and with a duplicated LM head; plus one file with a
                tensor of every ggml type dittoc dequantizes (K-quants and BF16
                as random blocks, which gguf-py cannot quantize to) and a metadata
                value of every GGUF type
gguf_tokenizer  the generator's tokenizer metadata (gpt2 BPE, its special ids,
                add_bos, chat template) cut to the tokens of its first 12
                merges, once for each pre-tokenizer family `tokenizer.ggml.pre`
                names (and once without the key); no tensors
hf_config       config.json of the generator's llama and qwen2, full and small
hf_checkpoint   small checkpoints (config.json and f16 or f32 safetensors, one
                file or two shards with their index; no tokenizer files) as
                fuzz/shared's container: the files joined by its separator
                (ditto_fuzz_targets::HF_FILES order)
hf_tokenizer    the generator's tokenizer.json, tokenizer_config.json and
                generation_config.json cut to the tokens of its first 12 merges
                (ids renumbered), a config.json of that vocabulary and a
                safetensors file with no tensor, in the same container
rules           examples/rules/*.rules and compiler/eqsat/rules/*.rules
payload         from an executable dittoc compiled from the small qwen2 (hidden
                16, one layer, the shrunk tokenizer): its last 2 KB (manifest
                and trailer, sections outside the cut: an error), its manifest
                over a payload made of its tokenizer_config section alone (every
                section and index entry within those bytes), and its manifest
                with empty sections

datastore       datastore files dittoc builds from small sources with the
                payload's shrunk tokenizer: two files, one file, an empty
                file (a document of no tokens)

The outputs are a pure function of the generator and of dittoc's output: two
runs give the same files. Needs the .venv of .ci/setup; the payload seeds
need a built dittoc (skipped with a warning otherwise).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

# The separator of ditto_fuzz_targets::hf_files (fuzz/shared/src/lib.rs).
HF_SEPARATOR = b"\n#ditto-fuzz-file#\n"
HF_FILES = [
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "generation_config.json",
    "model.safetensors.index.json",
]

# A safetensors file that holds no tensor: the header's length, the header.
_HEADER = b'{"__metadata__":{"format":"pt"}}'
EMPTY_SAFETENSORS = len(_HEADER).to_bytes(8, "little") + _HEADER

PRE_TOKENIZERS = ["qwen2", "llama-bpe", "smollm", "gpt-2", "default", None]


def load_gen_tiny(vocab: int, **dims):
    """examples/tiny/gen_tiny.py as a module, its vocabulary and dimensions
    replaced (the generator reads them at call time)."""
    name = f"gen_tiny_{len(sys.modules)}"
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples/tiny/gen_tiny.py")
    gen = importlib.util.module_from_spec(spec)
    sys.modules[name] = gen
    spec.loader.exec_module(gen)
    gen.VOCAB_SIZE = vocab
    gen.ARCHS = {name: dataclasses.replace(a, **dims) for name, a in gen.ARCHS.items()}
    return gen


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {len(data)} bytes")


# ---------------------------------------------------------------------------
# Shrinking: the seeds keep the real files' structure with few entries, so
# that what the fuzzer derives from them stays small enough to check in.

# The generator's tokenizer, cut to the tokens of its first merges.
KEEP_MERGES = 12
# The vocabulary of the weight readers' seeds (their tokenizer is not read).
SMALL_VOCAB = 32


def shrink_tokenizer(tokenizer: dict, keep_merges: int = KEEP_MERGES) -> tuple[dict, dict[int, int]]:
    """The tokenizer.json `tokenizer` with only its added tokens and the
    tokens of its first `keep_merges` merges, renumbered in their order;
    also the map old id -> new id."""
    model = tokenizer["model"]
    merges = [m if isinstance(m, list) else m.split(" ", 1) for m in model["merges"][:keep_merges]]
    keep = {t["content"] for t in tokenizer["added_tokens"]}
    for a, b in merges:
        keep |= {a, b, a + b}
    vocab = model["vocab"]
    old_ids = sorted(vocab[t] for t in keep if t in vocab)
    old_ids += [t["id"] for t in tokenizer["added_tokens"] if t["content"] not in vocab]
    old_ids = sorted(set(old_ids))
    new_id = {old: new for new, old in enumerate(old_ids)}
    small = json.loads(json.dumps(tokenizer))
    small["model"]["vocab"] = {t: new_id[i] for t, i in vocab.items() if i in new_id}
    small["model"]["merges"] = merges
    for t in small["added_tokens"]:
        t["id"] = new_id[t["id"]]
    post = small.get("post_processor") or {}
    for special in (post.get("special_tokens") or {}).values():
        special["ids"] = [new_id[i] for i in special["ids"]]
    return small, new_id


def tokens_by_id(tokenizer: dict) -> list[tuple[str, bool]]:
    """(text, special) of every id of a (shrunk) tokenizer.json."""
    added = {t["id"]: t for t in tokenizer["added_tokens"]}
    by_id = {i: (t, False) for t, i in tokenizer["model"]["vocab"].items()}
    by_id.update({i: (t["content"], t["special"]) for i, t in added.items()})
    return [by_id[i] for i in range(len(by_id))]


def without_tokenizer(gen, write):
    """Calls write() with the GGUF writer's tokenizer methods made no-ops."""
    import gguf

    names = ["add_tokenizer_model", "add_tokenizer_pre", "add_token_list", "add_token_types",
             "add_token_merges", "add_bos_token_id", "add_eos_token_id", "add_pad_token_id",
             "add_add_bos_token", "add_chat_template"]
    real = {n: getattr(gguf.GGUFWriter, n) for n in names}
    for n in names:
        setattr(gguf.GGUFWriter, n, lambda self, *a, **k: None)
    try:
        write()
    finally:
        for n, f in real.items():
            setattr(gguf.GGUFWriter, n, f)


# ---------------------------------------------------------------------------
# GGUF


def gguf_seeds(out: Path, tmp: Path) -> None:
    import gguf

    gen = load_gen_tiny(264, hidden=32, heads=2, kv_heads=1, ffn=32, layers=1, max_pos=64)
    for arch in ["llama", "qwen2"]:
        spec = gen.ARCHS[arch]
        tok = gen.build_tokenizer(spec)

        # The weight reader: the model's metadata and tensors, no tokenizer.
        gen.VOCAB_SIZE = SMALL_VOCAB
        weights = gen.make_weights(spec, 0)
        for ty in ["q8_0", "mixed"]:
            path = tmp / f"{arch}-{ty}.gguf"
            without_tokenizer(gen, lambda: gen.write_gguf(path, spec, tok, weights, ty))
            write(out / "gguf" / f"seed-{arch}-{ty}.gguf", path.read_bytes())
        if spec.tied:
            path = tmp / f"{arch}-duplicate-head.gguf"
            without_tokenizer(gen, lambda: gen.write_gguf(path, spec, tok, weights, "mixed",
                                                          duplicate_head="q8_0"))
            write(out / "gguf" / f"seed-{arch}-duplicate-head.gguf", path.read_bytes())
        gen.VOCAB_SIZE = 264

        # The tokenizer conversion: the tokenizer metadata alone, shrunk.
        cfg = gen.tokenizer_config(spec, tok)
        small, new_id = shrink_tokenizer(json.loads(tok.to_str()))
        ids = gen.special_ids(spec, tok)
        for pre in PRE_TOKENIZERS:
            path = tmp / f"{arch}-tokenizer.gguf"
            w = gguf.GGUFWriter(str(path), spec.name)
            w.add_block_count(spec.layers)
            w.add_tokenizer_model("gpt2")
            if pre is not None:
                w.add_tokenizer_pre(pre)
            tokens = tokens_by_id(small)
            w.add_token_list([t for t, _ in tokens])
            w.add_token_types([gguf.TokenType.CONTROL if special else gguf.TokenType.NORMAL
                               for _, special in tokens])
            w.add_token_merges([f"{a} {b}" for a, b in small["model"]["merges"]])
            w.add_bos_token_id(new_id[ids.bos])
            w.add_eos_token_id(new_id[ids.eos])
            if ids.pad is not None:
                w.add_pad_token_id(new_id[ids.pad])
            w.add_add_bos_token(cfg["add_bos_token"])
            if "chat_template" in cfg:
                w.add_chat_template(cfg["chat_template"])
            w.write_header_to_file()
            w.write_kv_data_to_file()
            w.write_tensors_to_file()
            w.close()
            write(out / "gguf_tokenizer" / f"seed-{arch}-{pre or 'no-pre'}.gguf", path.read_bytes())
    path = tmp / "every-type.gguf"
    write_every_type(path)
    write(out / "gguf" / "seed-every-type.gguf", path.read_bytes())


def write_every_type(path: Path) -> None:
    """One tensor of every type ditto-gguf dequantizes, and one metadata value
    of every GGUF value type."""
    import gguf

    Q = gguf.GGMLQuantizationType
    rng = np.random.default_rng(0)
    w = gguf.GGUFWriter(str(path), "llama")
    V = gguf.GGUFValueType
    w.add_key_value("fuzz.u8", 7, V.UINT8)
    w.add_key_value("fuzz.i8", -7, V.INT8)
    w.add_key_value("fuzz.u16", 700, V.UINT16)
    w.add_key_value("fuzz.i16", -700, V.INT16)
    w.add_key_value("fuzz.u32", 70000, V.UINT32)
    w.add_key_value("fuzz.i32", -70000, V.INT32)
    w.add_key_value("fuzz.f32", 0.5, V.FLOAT32)
    w.add_key_value("fuzz.bool", True, V.BOOL)
    w.add_key_value("fuzz.string", "text", V.STRING)
    w.add_key_value("fuzz.u64", 1 << 40, V.UINT64)
    w.add_key_value("fuzz.i64", -(1 << 40), V.INT64)
    w.add_key_value("fuzz.f64", 0.25, V.FLOAT64)
    w.add_key_value("fuzz.array", [1, 2, 3], V.ARRAY, sub_type=V.INT32)
    w.add_key_value("fuzz.strings", ["a", "bc"], V.ARRAY, sub_type=V.STRING)
    w.add_key_value("fuzz.nested", [[1, 2], [3]], V.ARRAY)
    values = rng.standard_normal((1, 256)).astype(np.float32)
    w.add_tensor("f32", values)
    w.add_tensor("f16", values.astype(np.float16))
    for qtype in [Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1]:
        w.add_tensor(qtype.name.lower(), gguf.quants.quantize(values, qtype), raw_dtype=qtype)
    for qtype in [Q.BF16, Q.Q4_K, Q.Q5_K, Q.Q6_K]:
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        raw = rng.integers(0, 256, (1, 256 // block * size), dtype=np.uint8)
        if qtype != Q.BF16:
            # Keep the f16 scales (d, dmin: the blocks' first 4 bytes; Q6_K's last 2) finite.
            for row in raw:
                for b in range(0, len(row), size):
                    scale = np.float16(0.01 * (1 + b % 7)).tobytes()
                    at = b + size - 2 if qtype == Q.Q6_K else b
                    row[at:at + 2] = np.frombuffer(scale, dtype=np.uint8)
                    if qtype != Q.Q6_K:
                        row[at + 2:at + 4] = np.frombuffer(scale, dtype=np.uint8)
        w.add_tensor(qtype.name.lower(), raw, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---------------------------------------------------------------------------
# Hugging Face


def hf_seeds(out: Path, tmp: Path) -> Path:
    """Returns a small qwen2 checkpoint that imports (the payload's source)."""
    full = load_gen_tiny(400)
    for arch in ["llama", "qwen2"]:
        spec = full.ARCHS[arch]
        cfg = full.model_config(spec, full.special_ids(spec, full.build_tokenizer(spec)))
        write(out / "hf_config" / f"seed-{arch}.json", dump(cfg))
    gen = load_gen_tiny(264, hidden=16, heads=2, kv_heads=1, ffn=16, layers=1, max_pos=64)
    source = None
    for arch in ["llama", "qwen2"]:
        spec = gen.ARCHS[arch]
        tok = gen.build_tokenizer(spec)
        ids = gen.special_ids(spec, tok)

        # The weight reader: config and safetensors of a SMALL_VOCAB model,
        # no tokenizer files.
        gen.VOCAB_SIZE = SMALL_VOCAB
        weights = gen.make_weights(spec, 0)
        for dtype, sharded in [("f16", False), ("f32", False), ("f16", True)]:
            d = tmp / f"{arch}-{dtype}-{'sharded' if sharded else 'single'}"
            typed = {k: v.astype(np.float16 if dtype == "f16" else np.float32) for k, v in weights.items()}
            gen.write_hf(d, spec, tok, typed, sharded=sharded)
            files = [(d / name).read_bytes() if name in ("config.json", "model.safetensors",
                     "model.safetensors.index.json") and (d / name).exists() else b""
                     for name in HF_FILES]
            if sharded:
                files += [p.read_bytes() for p in sorted(d.glob("model-*-of-*.safetensors"))]
            name = f"seed-{arch}-{dtype}{'-sharded' if sharded else ''}"
            write(out / "hf_checkpoint" / name, HF_SEPARATOR.join(files))
        write(out / "hf_config" / f"seed-{arch}-small.json", (d / "config.json").read_bytes())
        gen.VOCAB_SIZE = 264

        # The tokenizer reader: the tokenizer files, shrunk, a config of
        # their vocabulary and a safetensors file with no tensor.
        small, new_id = shrink_tokenizer(json.loads(tok.to_str()))
        tok_cfg = gen.tokenizer_config(spec, tok)
        tok_cfg["added_tokens_decoder"] = {str(new_id[int(i)]): t
                                           for i, t in tok_cfg["added_tokens_decoder"].items()}
        gen_cfg = gen.generation_config(spec, ids)
        for key in ["bos_token_id", "pad_token_id"]:
            if gen_cfg.get(key) is not None:
                gen_cfg[key] = new_id[gen_cfg[key]]
        eos = gen_cfg["eos_token_id"]
        gen_cfg["eos_token_id"] = [new_id[i] for i in eos] if isinstance(eos, list) else new_id[eos]
        gen.VOCAB_SIZE = len(new_id)
        model_cfg = gen.model_config(spec, ids)
        gen.VOCAB_SIZE = 264
        files = {
            "config.json": dump(model_cfg),
            "model.safetensors": EMPTY_SAFETENSORS,
            "tokenizer.json": json.dumps(small, ensure_ascii=False).encode(),
            "tokenizer_config.json": dump(tok_cfg),
            "generation_config.json": dump(gen_cfg),
        }
        write(out / "hf_tokenizer" / f"seed-{arch}",
              HF_SEPARATOR.join(files.get(name, b"") for name in HF_FILES))

        if arch == "qwen2":
            # The payload's source: the small model with the shrunk tokenizer.
            source = tmp / "payload-source"
            gen.VOCAB_SIZE = len(new_id)
            gen.write_hf(source, spec, tok, gen.make_weights(spec, 0), sharded=False)
            gen.VOCAB_SIZE = 264
            for name in ["config.json", "tokenizer.json", "tokenizer_config.json",
                         "generation_config.json"]:
                (source / name).write_bytes(files[name])
    return source


def dump(obj) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


# ---------------------------------------------------------------------------
# Rule files


def rules_seeds(out: Path) -> None:
    for path in sorted([*ROOT.glob("examples/rules/*.rules"), *ROOT.glob("compiler/eqsat/rules/*.rules")]):
        write(out / "rules" / f"seed-{path.parent.parent.name}-{path.name}", path.read_bytes())


# ---------------------------------------------------------------------------
# Payload

MAGIC = b"DITTOPAY"


def payload_seeds(out: Path, tmp: Path, checkpoint: Path, dittoc: Path) -> None:
    if not dittoc.is_file():
        print(f"make_seeds: WARNING: no {dittoc}: no payload seeds (cargo build --release first)",
              file=sys.stderr)
        return
    module = tmp / "payload.mlir"
    exe = tmp / "payload-model"
    subprocess.run([dittoc, "import", checkpoint, "-o", module], check=True, capture_output=True)
    subprocess.run([dittoc, module, "-O3", "-o", exe], check=True, capture_output=True)
    data = exe.read_bytes()
    assert data[-8:] == MAGIC, "the executable carries no payload"
    manifest_len = int.from_bytes(data[-16:-8], "little")
    manifest_start = len(data) - 16 - manifest_len
    manifest = json.loads(data[manifest_start:-16])
    sections = manifest["sections"]
    write(out / "payload" / "seed-executable-tail", data[-2048:])

    # A payload as the runtime reads it, with the executable's manifest: the
    # tokenizer_config section at offset 0 (sections start on 4096-byte
    # boundaries: they share it), the other sections and every weights_index
    # entry within its bytes.
    config = data[sections["tokenizer_config"]["offset"]:][:sections["tokenizer_config"]["len"]]
    small = json.loads(json.dumps(manifest))
    for s in small["sections"].values():
        s["offset"], s["len"] = 0, min(s["len"], len(config))
    for entry in small["weights_index"].values():
        entry["offset"] = entry["offset"] % len(config)
        entry["bytes"] = min(entry["bytes"], len(config) - entry["offset"])
    write(out / "payload" / "seed-payload", config + trailer(small))

    empty = json.loads(json.dumps(manifest))
    empty["sections"] = {name: {"offset": 0, "len": 0} for name in sections}
    empty["weights_index"] = {}
    write(out / "payload" / "seed-empty-sections", trailer(empty))


def datastore_seeds(out: Path, tmp: Path, checkpoint: Path, dittoc: Path) -> None:
    if not dittoc.exists():
        print(f"make_seeds: WARNING: no {dittoc}: no datastore seeds (cargo build --release first)",
              file=sys.stderr)
        return
    sources = {
        "two-files": {"a.py": "def add(a, b):\n    return a + b\n", "b.rs": "fn add(a: u32) -> u32 { a + 1 }\n"},
        "one-file": {"a.py": "class Point:\n    def __init__(self):\n        self.x = 0\n"},
        "empty-file": {"a.py": ""},
    }
    for name, files in sources.items():
        src = tmp / f"datastore-{name}"
        src.mkdir()
        for file, text in files.items():
            (src / file).write_text(text)
        ds = tmp / f"{name}.ds"
        subprocess.run([str(dittoc), "datastore", "build", str(src), "-o", str(ds),
                        "--tokenizer", str(checkpoint / "tokenizer.json")], check=True)
        write(out / "datastore" / f"seed-{name}", ds.read_bytes())


def trailer(manifest: dict) -> bytes:
    """Manifest::trailer: the JSON (serde_json's compact form), its length, MAGIC."""
    text = json.dumps(manifest, separators=(",", ":")).encode()
    return text + len(text).to_bytes(8, "little") + MAGIC


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "fuzz/corpus-work")
    ap.add_argument("--dittoc", type=Path, default=ROOT / "target/release/dittoc")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ditto-seeds-") as tmp:
        tmp = Path(tmp)
        gguf_seeds(args.out, tmp)
        checkpoint = hf_seeds(args.out, tmp)
        rules_seeds(args.out)
        payload_seeds(args.out, tmp, checkpoint, args.dittoc)
        datastore_seeds(args.out, tmp, checkpoint, args.dittoc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
