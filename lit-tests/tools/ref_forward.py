#!/usr/bin/env python3
"""Independent numpy reference forward pass for llama / qwen2 decoder models.

This is the yardstick dittoc's numerics are checked against, so it shares no
code with dittoc: it is written from the published model definitions
(Hugging Face transformers' `modeling_llama.py` and `modeling_qwen2.py`):

    x = embed[tokens]
    for each layer:
        h = RMSNorm(x) ; q, k, v = h Wq^T (+bq), h Wk^T (+bk), h Wv^T (+bv)
        q, k = RoPE(q), RoPE(k)                  # "rotate_half" form, positions from 0
        x = x + softmax(q k^T / sqrt(hd) + causal mask) v Wo^T   # grouped-query
        h = RMSNorm(x) ; x = x + (silu(h Wg^T) * (h Wu^T)) Wd^T
    logits = RMSNorm(x) W_lm^T                   # W_lm = embed when tied

RMSNorm(x) = x / sqrt(mean(x^2) + eps) * w;  RoPE: inv_freq_i = theta^(-2i/hd),
angle = pos * inv_freq, rotate_half(x) = [-x2, x1], x' = x cos + rotate_half(x) sin.

Models
    HF checkpoint directory: config.json + model.safetensors or a sharded
        model.safetensors.index.json (F32, F16, BF16 or F64 tensors; the
        safetensors format is parsed here directly).
    GGUF file: read with gguf-py's GGUFReader, every tensor dequantized with
        gguf.quants.dequantize, hyperparameters from the GGUF metadata, llama
        q/k rows un-permuted back to the HF layout (convert_hf_to_gguf.py
        permutes them for llama.cpp's RoPE; qwen2 is stored unpermuted), tied
        embeddings when `output.weight` is absent. `--tie-to NAME` ties them
        anyway, with tensor NAME (token_embd.weight or output.weight) as
        both the embedding and the LM head: what `dittoc import` does with a
        GGUF whose output.weight is token_embd.weight quantized again.

Math is float64 by default; `--dtype float32` halves the memory and time for
big models (Qwen2.5-Coder-0.5B: about 4 GB resident in float64).

Usage
    ref_forward.py MODEL --tokens 1,2,3 [--out logits.npy] [--greedy N] [--dtype float64|float32]
                   [--tie-to token_embd.weight|output.weight]

    --out writes the logits of every input position, float32, shape [T, vocab].
    --greedy N decodes N more tokens after the prompt (argmax, first index on
    ties, with a KV cache) and prints their ids space-separated on stdout.
    Timings go to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np


class ModelError(Exception):
    """A model file is missing, malformed or uses an unsupported feature."""


@dataclass(frozen=True)
class Config:
    """Hyperparameters of a llama-family decoder."""

    arch: str
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab: int
    rms_eps: float
    rope_theta: float


@dataclass
class Layer:
    """One decoder block's weights in HF layout ([out, in] matrices)."""

    attn_norm: np.ndarray
    wq: np.ndarray
    wk: np.ndarray
    wv: np.ndarray
    wo: np.ndarray
    bq: np.ndarray | None
    bk: np.ndarray | None
    bv: np.ndarray | None
    ffn_norm: np.ndarray
    w_gate: np.ndarray
    w_up: np.ndarray
    w_down: np.ndarray


# ---------------------------------------------------------------------------
# The math


def rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    """x / sqrt(mean(x^2) + eps) * w over the last axis."""
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x: np.ndarray, positions: np.ndarray, theta: float) -> np.ndarray:
    """HF rotate-half RoPE. x: [T, heads, hd]; positions: [T] integers."""
    hd = x.shape[-1]
    inv_freq = 1.0 / (theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
    angles = positions.astype(np.float64)[:, None] * inv_freq[None, :]  # [T, hd/2]
    emb = np.concatenate([angles, angles], axis=-1)[:, None, :]          # [T, 1, hd]
    cos, sin = np.cos(emb).astype(x.dtype), np.sin(emb).astype(x.dtype)
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    rotated = np.concatenate([-x2, x1], axis=-1)
    return x * cos + rotated * sin


def silu(x: np.ndarray) -> np.ndarray:
    """x * sigmoid(x), with sigmoid written via tanh so it never overflows."""
    return x * (0.5 * (1.0 + np.tanh(0.5 * x)))


def causal_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, q_pos: np.ndarray) -> np.ndarray:
    """Grouped-query attention with a causal mask.

    q: [T, H, hd] at positions q_pos; k, v: [S, KV, hd] at positions 0..S-1.
    Query head h reads KV head h // (H / KV), as HF's repeat_kv arranges.
    Returns [T, H * hd].
    """
    t, h, hd = q.shape
    s, kv, _ = k.shape
    group = h // kv
    qg = q.reshape(t, kv, group, hd).transpose(1, 2, 0, 3)          # [KV, G, T, hd]
    kt = k.transpose(1, 2, 0)[:, None]                               # [KV, 1, hd, S]
    scores = (qg @ kt) / math.sqrt(hd)                               # [KV, G, T, S]
    allowed = np.arange(s)[None, :] <= q_pos[:, None]                # [T, S]
    scores = np.where(allowed, scores, -np.inf)
    scores -= scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=-1, keepdims=True)
    out = p @ v.transpose(1, 0, 2)[:, None]                          # [KV, G, T, hd]
    return out.transpose(2, 0, 1, 3).reshape(t, h * hd)


class KVCache:
    """Keys and values of every position seen so far, per layer ([S, KV, hd])."""

    def __init__(self, n_layers: int):
        self.k: list[np.ndarray | None] = [None] * n_layers
        self.v: list[np.ndarray | None] = [None] * n_layers

    @property
    def length(self) -> int:
        return 0 if self.k[0] is None else self.k[0].shape[0]

    def append(self, layer: int, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.k[layer] is not None:
            k = np.concatenate([self.k[layer], k])
            v = np.concatenate([self.v[layer], v])
        self.k[layer], self.v[layer] = k, v
        return k, v


@dataclass
class Model:
    """A loaded model: configuration and weights in the compute dtype (an
    untied embedding table, only gathered from, stays float32)."""

    config: Config
    embed: np.ndarray          # [vocab, d]
    layers: list[Layer]
    norm: np.ndarray           # [d]
    lm_head: np.ndarray        # [vocab, d] (the embedding itself when tied)

    def forward(self, tokens: list[int] | np.ndarray, cache: KVCache) -> np.ndarray:
        """Run tokens at positions cache.length.., return logits [T, vocab]."""
        return self.hidden(tokens, cache) @ self.lm_head.T

    def hidden(self, tokens: list[int] | np.ndarray, cache: KVCache) -> np.ndarray:
        """Final-normed hidden states [T, d] of tokens, extending cache."""
        c = self.config
        tokens = np.asarray(tokens, dtype=np.int64)
        dtype = self.norm.dtype
        pos = np.arange(cache.length, cache.length + len(tokens))
        x = self.embed[tokens].astype(dtype)
        for i, layer in enumerate(self.layers):
            h = rms_norm(x, layer.attn_norm, c.rms_eps)
            q, k, v = h @ layer.wq.T, h @ layer.wk.T, h @ layer.wv.T
            if layer.bq is not None:
                q, k, v = q + layer.bq, k + layer.bk, v + layer.bv
            q = rope(q.reshape(len(tokens), c.n_heads, c.head_dim), pos, c.rope_theta)
            k = rope(k.reshape(len(tokens), c.n_kv_heads, c.head_dim), pos, c.rope_theta)
            v = v.reshape(len(tokens), c.n_kv_heads, c.head_dim)
            k_all, v_all = cache.append(i, k, v)
            x = x + causal_attention(q, k_all, v_all, pos) @ layer.wo.T
            h = rms_norm(x, layer.ffn_norm, c.rms_eps)
            x = x + (silu(h @ layer.w_gate.T) * (h @ layer.w_up.T)) @ layer.w_down.T
        return rms_norm(x, self.norm, c.rms_eps)


def greedy(model: Model, prompt: list[int], n: int) -> tuple[np.ndarray, list[int]]:
    """Logits of the prompt positions and n greedily decoded token ids."""
    cache = KVCache(model.config.n_layers)
    logits = model.forward(prompt, cache)
    out: list[int] = []
    last = logits[-1]
    for step in range(n):
        out.append(int(np.argmax(last)))
        if step + 1 < n:
            last = model.forward([out[-1]], cache)[0]
    return logits, out


# ---------------------------------------------------------------------------
# Hugging Face checkpoints

SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "BF16": np.uint16}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Memory-map every tensor of one .safetensors file as float32 (or f64)."""
    try:
        with open(path, "rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(header_len))
    except (OSError, struct.error, ValueError) as e:
        raise ModelError(f"{path}: not a readable safetensors file ({e})") from e
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_len)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in SAFETENSORS_DTYPES:
            raise ModelError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        raw = data[begin:end].view(SAFETENSORS_DTYPES[info["dtype"]]).reshape(info["shape"])
        if info["dtype"] == "BF16":
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        out[name] = raw
    return out


def hf_config(cfg: dict, path: Path) -> Config:
    arch = cfg.get("model_type")
    if arch not in ("llama", "qwen2"):
        raise ModelError(f"{path}: model_type {arch!r} is not supported (llama, qwen2)")
    if cfg.get("rope_scaling"):
        raise ModelError(f"{path}: rope_scaling {cfg['rope_scaling']} is not supported")
    if cfg.get("use_sliding_window"):
        raise ModelError(f"{path}: sliding-window attention is not supported")
    if cfg.get("hidden_act", "silu") != "silu":
        raise ModelError(f"{path}: hidden_act {cfg['hidden_act']!r} is not supported")
    try:
        d, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
        return Config(
            arch=arch,
            n_layers=int(cfg["num_hidden_layers"]),
            d_model=d,
            n_heads=heads,
            n_kv_heads=int(cfg.get("num_key_value_heads") or heads),
            head_dim=int(cfg.get("head_dim") or d // heads),
            vocab=int(cfg["vocab_size"]),
            rms_eps=float(cfg["rms_norm_eps"]),
            rope_theta=float(cfg.get("rope_theta", 10000.0)),
        )
    except KeyError as e:
        raise ModelError(f"{path}: missing key {e}") from e


def load_hf(directory: Path, dtype: np.dtype) -> Model:
    cfg_path = directory / "config.json"
    try:
        cfg_json = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelError(f"{cfg_path}: cannot read config ({e})") from e
    config = hf_config(cfg_json, cfg_path)
    index = directory / "model.safetensors.index.json"
    if index.exists():
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        files = sorted(set(weight_map.values()))
    else:
        files = ["model.safetensors"]
    tensors: dict[str, np.ndarray] = {}
    for fname in files:
        if not (directory / fname).exists():
            raise ModelError(f"{directory / fname}: weight file not found")
        tensors.update(read_safetensors(directory / fname))
    tensors = {n: t for n, t in tensors.items() if not n.endswith("rotary_emb.inv_freq")}

    take = _Taker({n: (lambda t=t: t) for n, t in tensors.items()}, dtype, str(directory))
    layers = []
    for i in range(config.n_layers):
        p = f"model.layers.{i}."
        layers.append(Layer(
            attn_norm=take(p + "input_layernorm.weight"),
            wq=take(p + "self_attn.q_proj.weight"),
            wk=take(p + "self_attn.k_proj.weight"),
            wv=take(p + "self_attn.v_proj.weight"),
            wo=take(p + "self_attn.o_proj.weight"),
            bq=take.optional(p + "self_attn.q_proj.bias"),
            bk=take.optional(p + "self_attn.k_proj.bias"),
            bv=take.optional(p + "self_attn.v_proj.bias"),
            ffn_norm=take(p + "post_attention_layernorm.weight"),
            w_gate=take(p + "mlp.gate_proj.weight"),
            w_up=take(p + "mlp.up_proj.weight"),
            w_down=take(p + "mlp.down_proj.weight"),
        ))
    norm = take("model.norm.weight")
    lm_head = take.optional("lm_head.weight")
    if lm_head is None and not cfg_json.get("tie_word_embeddings", False):
        raise ModelError(f"{directory}: no lm_head.weight and tie_word_embeddings is false")
    return _finish(take, config, layers, "model.embed_tokens.weight", norm, lm_head, str(directory))


class _Taker:
    """Hands out named tensors in the compute dtype and tracks which are used.

    `sources` maps each tensor name to a function that produces it (float32 or
    wider), so a tensor is only materialised when it is taken.
    """

    def __init__(self, sources: dict[str, Callable[[], np.ndarray]], dtype: np.dtype, origin: str):
        self.sources, self.dtype, self.origin = sources, dtype, origin
        self.used: set[str] = set()

    def optional(self, name: str, dtype: np.dtype | None = None) -> np.ndarray | None:
        if name not in self.sources:
            return None
        self.used.add(name)
        return np.ascontiguousarray(self.sources[name](), dtype=dtype or self.dtype)

    def __call__(self, name: str, dtype: np.dtype | None = None) -> np.ndarray:
        t = self.optional(name, dtype)
        if t is None:
            raise ModelError(f"{self.origin}: tensor {name} not found")
        return t

    def check_all_used(self) -> None:
        unused = sorted(set(self.sources) - self.used)
        if unused:
            raise ModelError(f"{self.origin}: unsupported tensors {unused[:5]}"
                             f"{' ...' if len(unused) > 5 else ''} (the reference would ignore them)")


# ---------------------------------------------------------------------------
# GGUF files


def unpermute_llama(w: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of convert_hf_to_gguf.py's LlamaModel.permute (rows, per head)."""
    return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2)
            .reshape(w.shape))


def load_gguf(path: Path, dtype: np.dtype, tie_to: str | None = None) -> Model:
    try:
        import gguf
    except ImportError as e:
        raise ModelError("reading GGUF needs gguf-py (pip install gguf)") from e
    try:
        reader = gguf.GGUFReader(str(path))
    except (OSError, ValueError) as e:
        raise ModelError(f"{path}: not a readable GGUF file ({e})") from e

    def meta(key: str, default=None):
        field = reader.fields.get(key)
        if field is None:
            if default is None:
                raise ModelError(f"{path}: metadata key {key} not found")
            return default
        return field.contents()

    arch = meta("general.architecture")
    if arch not in ("llama", "qwen2"):
        raise ModelError(f"{path}: architecture {arch!r} is not supported (llama, qwen2)")
    scaling = meta(f"{arch}.rope.scaling.type", "none")
    if scaling != "none":
        raise ModelError(f"{path}: rope scaling {scaling!r} is not supported")

    by_name = {t.name: t for t in reader.tensors}

    def dequantized(name: str) -> np.ndarray:
        t = by_name[name]
        shape = tuple(int(n) for n in reversed(t.shape))  # GGUF lists ne innermost-first
        try:
            values = gguf.quants.dequantize(t.data, t.tensor_type)
        except NotImplementedError as e:
            raise ModelError(f"{path}: tensor {name} has type {t.tensor_type.name}, "
                             f"which gguf-py cannot dequantize") from e
        return np.asarray(values, dtype=np.float32).reshape(shape)

    d = int(meta(f"{arch}.embedding_length"))
    heads = int(meta(f"{arch}.attention.head_count"))
    head_dim = int(meta(f"{arch}.attention.key_length", d // heads))
    if int(meta(f"{arch}.rope.dimension_count", head_dim)) != head_dim:
        raise ModelError(f"{path}: partial rotary embeddings are not supported")
    if "token_embd.weight" not in by_name:
        raise ModelError(f"{path}: tensor token_embd.weight not found")
    config = Config(
        arch=arch,
        n_layers=int(meta(f"{arch}.block_count")),
        d_model=d,
        n_heads=heads,
        n_kv_heads=int(meta(f"{arch}.attention.head_count_kv", heads)),
        head_dim=head_dim,
        vocab=int(by_name["token_embd.weight"].shape[-1]),
        rms_eps=float(meta(f"{arch}.attention.layer_norm_rms_epsilon")),
        rope_theta=float(meta(f"{arch}.rope.freq_base", 10000.0)),
    )
    sources = {name: (lambda name=name: dequantized(name)) for name in by_name}
    if arch == "llama":
        for i in range(config.n_layers):
            for name, n in ((f"blk.{i}.attn_q", config.n_heads), (f"blk.{i}.attn_k", config.n_kv_heads)):
                for suffix in (".weight", ".bias"):
                    if name + suffix in sources:
                        sources[name + suffix] = lambda name=name + suffix, n=n: unpermute_llama(dequantized(name), n)
    take = _Taker(sources, dtype, str(path))
    layers = []
    for i in range(config.n_layers):
        p = f"blk.{i}."
        layers.append(Layer(
            attn_norm=take(p + "attn_norm.weight"),
            wq=take(p + "attn_q.weight"),
            wk=take(p + "attn_k.weight"),
            wv=take(p + "attn_v.weight"),
            wo=take(p + "attn_output.weight"),
            bq=take.optional(p + "attn_q.bias"),
            bk=take.optional(p + "attn_k.bias"),
            bv=take.optional(p + "attn_v.bias"),
            ffn_norm=take(p + "ffn_norm.weight"),
            w_gate=take(p + "ffn_gate.weight"),
            w_up=take(p + "ffn_up.weight"),
            w_down=take(p + "ffn_down.weight"),
        ))
    norm = take("output_norm.weight")
    if tie_to is None:
        lm_head = take.optional("output.weight")
        return _finish(take, config, layers, "token_embd.weight", norm, lm_head, str(path))
    if tie_to not in ("token_embd.weight", "output.weight") or tie_to not in by_name:
        raise ModelError(f"{path}: --tie-to {tie_to}: no such tensor to tie to")
    take.used.update({"token_embd.weight", "output.weight"} & set(by_name))
    return _finish(take, config, layers, tie_to, norm, None, str(path))


def _finish(take: _Taker, config: Config, layers: list[Layer], embed_name: str, norm: np.ndarray,
            lm_head: np.ndarray | None, origin: str) -> Model:
    """Assemble and check a model; lm_head None means tied embeddings.

    An untied embedding table is only gathered from, so it stays float32
    (every supported source format is exactly representable there); a tied
    one is also the LM head and takes the compute dtype.
    """
    embed = take(embed_name, None if lm_head is None else np.dtype(np.float32))
    take.check_all_used()
    return _checked(Model(config, embed, layers, norm, embed if lm_head is None else lm_head), origin)


def _checked(model: Model, origin: str) -> Model:
    """Verify every weight has the shape the configuration implies."""
    c = model.config
    q, kv = c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim
    if c.n_heads % c.n_kv_heads:
        raise ModelError(f"{origin}: {c.n_heads} heads is not a multiple of {c.n_kv_heads} KV heads")
    ffn = model.layers[0].w_gate.shape[0] if model.layers else 0
    want = {"embed": (c.vocab, c.d_model), "norm": (c.d_model,), "lm_head": (c.vocab, c.d_model)}
    got = {"embed": model.embed.shape, "norm": model.norm.shape, "lm_head": model.lm_head.shape}
    for i, l in enumerate(model.layers):
        for field, shape in (("attn_norm", (c.d_model,)), ("wq", (q, c.d_model)), ("wk", (kv, c.d_model)),
                             ("wv", (kv, c.d_model)), ("wo", (c.d_model, q)), ("bq", (q,)), ("bk", (kv,)),
                             ("bv", (kv,)), ("ffn_norm", (c.d_model,)), ("w_gate", (ffn, c.d_model)),
                             ("w_up", (ffn, c.d_model)), ("w_down", (c.d_model, ffn))):
            t = getattr(l, field)
            if t is not None:
                want[f"layer {i} {field}"], got[f"layer {i} {field}"] = shape, t.shape
    for key, shape in want.items():
        if tuple(got[key]) != shape:
            raise ModelError(f"{origin}: {key} has shape {tuple(got[key])}, expected {shape}")
    return model


def load_model(path: Path | str, dtype: np.dtype | str = np.float64, tie_to: str | None = None) -> Model:
    """Load an HF checkpoint directory or a .gguf file (`tie_to`: GGUF only)."""
    path, dtype = Path(path), np.dtype(dtype)
    if path.is_dir():
        if tie_to is not None:
            raise ModelError(f"{path}: --tie-to applies to GGUF files only")
        return load_hf(path, dtype)
    if path.is_file():
        return load_gguf(path, dtype, tie_to)
    raise ModelError(f"{path}: no such model directory or GGUF file")


# ---------------------------------------------------------------------------


def parse_tokens(text: str) -> list[int]:
    try:
        ids = [int(s) for s in text.replace(",", " ").split()]
    except ValueError as e:
        raise ModelError(f"--tokens: {e}") from e
    if not ids:
        raise ModelError("--tokens: no token ids given")
    return ids


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path, help="HF checkpoint directory or .gguf file")
    ap.add_argument("--tokens", required=True, help="prompt token ids, e.g. 1,2,3")
    ap.add_argument("--out", type=Path, help="write prompt logits [T, vocab] as float32 .npy")
    ap.add_argument("--greedy", type=int, default=0, metavar="N", help="greedy-decode N tokens")
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    ap.add_argument("--tie-to", metavar="NAME",
                    help="GGUF: use tensor NAME as both the embedding and the LM head")
    args = ap.parse_args(argv)
    try:
        tokens = parse_tokens(args.tokens)
        t0 = time.perf_counter()
        model = load_model(args.model, args.dtype, args.tie_to)
        bad = [t for t in tokens if not 0 <= t < model.config.vocab]
        if bad:
            raise ModelError(f"--tokens: ids {bad} outside the vocabulary [0, {model.config.vocab})")
        t1 = time.perf_counter()
        logits, generated = greedy(model, tokens, max(args.greedy, 0))
        t2 = time.perf_counter()
        if args.out is not None:
            np.save(args.out, logits.astype(np.float32))
    except (ModelError, OSError) as e:
        print(f"ref_forward: error: {e}", file=sys.stderr)
        return 1
    print(f"ref_forward: load {t1 - t0:.2f}s, {len(tokens)} prompt tokens + {len(generated)} generated "
          f"in {t2 - t1:.2f}s ({args.dtype})", file=sys.stderr)
    if args.greedy > 0:
        print(" ".join(map(str, generated)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
