#!/usr/bin/env python3
"""Generate tiny random-weight code models for dittoc's tests.

The models have the exact shape of real checkpoints (same file formats, tensor
names, config keys, tokenizer files and GGUF metadata) but only a few
thousand parameters, so tests that import, compile and run them are fast and
need no download. Output is a pure function of (arch, format, gguf type,
seed): running the script twice gives byte-identical files.

Architectures
    llama   hidden 64, 4 heads / 2 KV heads (head_dim 16), ffn 160, 2 layers,
            untied `lm_head.weight`, rope_theta 1e4, rms_norm_eps 1e-5, no
            biases. Tokenizer modelled on SmolLM2's: specials first (id 0 is
            `<|endoftext|>`), digits split one by one, GPT-2 byte-level regex;
            `add_bos_token` is true (a TemplateProcessing post-processor
            prepends `<|endoftext|>` as BOS), no chat template.
    qwen2   hidden 64, 4 heads / 2 KV heads, ffn 96, 2 layers, q/k/v biases,
            tied embeddings, rope_theta 1e6, rms_norm_eps 1e-6. Tokenizer
            modelled on Qwen2's: NFC, Qwen2 split regex, specials appended
            after the BPE vocabulary (`<|endoftext|>`, `<|im_start|>`,
            `<|im_end|>`, `<|fim_prefix|>`, `<|fim_middle|>`,
            `<|fim_suffix|>`), no BOS added, eos `<|im_end|>`, a ChatML
            template.
    Both vocabularies have 400 entries: 256 byte tokens, BPE merges learnt by
    the `tokenizers` package on the small Python corpus below, and specials.

Formats
    hf          DIR/config.json, model.safetensors (float32), tokenizer.json,
                tokenizer_config.json, generation_config.json.
    hf-sharded  as hf, the weights split in two shards plus
                model.safetensors.index.json, as transformers writes them.
    gguf        one GGUF v3 file with what llama.cpp's convert_hf_to_gguf.py
                writes for the arch: hyperparameters, gpt2-style tokenizer
                metadata, GGUF tensor names, llama q/k rows permuted for
                llama.cpp's RoPE (qwen2 is not permuted).

GGUF tensor types (`--gguf-type`; 1-D tensors, i.e. norms and biases, are
always F32)
    f32    every matrix F32
    f16    every matrix F16
    q8_0   every matrix Q8_0
    mixed  matrices cycle through Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 in file order,
           so each type lands on several kinds of tensor. K-quants (Q4_K,
           Q5_K, Q6_K) are not included: gguf-py cannot quantize to them (it
           only dequantizes), so hidden stays 64 (every row length is a
           multiple of 32). The real Qwen2.5-Coder GGUF covers Q4_K and Q6_K.

Duplicate head (`--duplicate-head TYPE`, gguf format, tied archs)
    also writes `output.weight`: the embedding matrix quantized again in
    TYPE, as GGUF files of tied models often carry it (Qwen2.5-Coder-0.5B's:
    token_embd Q5_0, output Q8_0).

Usage
    python3 examples/tiny/gen_tiny.py --arch llama --format hf --out /tmp/tiny-llama
    python3 examples/tiny/gen_tiny.py --arch qwen2 --format gguf --gguf-type mixed --out /tmp/tq.gguf
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Training must not depend on thread scheduling; set before importing tokenizers.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import gguf  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models  # noqa: E402
from tokenizers import normalizers, pre_tokenizers, processors, trainers  # noqa: E402

VOCAB_SIZE = 400
TRANSFORMERS_VERSION = "4.46.0"

QWEN2_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

QWEN2_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# Training text for the tokenizer: ordinary Python, enough for ~140 merges.
CORPUS = '''\
def fibonacci(n):
    """Return the n-th Fibonacci number."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def quicksort(xs):
    if len(xs) <= 1:
        return xs
    pivot = xs[len(xs) // 2]
    left = [x for x in xs if x < pivot]
    middle = [x for x in xs if x == pivot]
    right = [x for x in xs if x > pivot]
    return quicksort(left) + middle + quicksort(right)


def binary_search(items, target):
    low, high = 0, len(items) - 1
    while low <= high:
        mid = (low + high) // 2
        if items[mid] == target:
            return mid
        elif items[mid] < target:
            low = mid + 1
        else:
            high = mid - 1
    return -1


class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)

    def pop(self):
        if not self.items:
            raise IndexError("pop from empty stack")
        return self.items.pop()

    def __len__(self):
        return len(self.items)


def read_lines(path):
    with open(path, "r", encoding="utf-8") as handle:
        return [line.rstrip("\\n") for line in handle]


def word_count(text):
    counts = {}
    for word in text.split():
        counts[word] = counts.get(word, 0) + 1
    return counts


def is_prime(n):
    if n < 2:
        return False
    for i in range(2, int(n ** 0.5) + 1):
        if n % i == 0:
            return False
    return True


def main():
    numbers = [5, 3, 8, 1, 9, 2]
    print(quicksort(numbers))
    print(fibonacci(10))
    print(binary_search(sorted(numbers), 8))
    print([n for n in range(20) if is_prime(n)])


if __name__ == "__main__":
    main()
'''


@dataclass(frozen=True)
class ArchSpec:
    """Hyperparameters and conventions of one tiny architecture."""

    name: str
    hf_class: str
    hidden: int
    heads: int
    kv_heads: int
    ffn: int
    layers: int
    rope_theta: float
    rms_eps: float
    qkv_bias: bool
    tied: bool
    max_pos: int
    specials: tuple[str, ...]
    gguf_pre: str

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


ARCHS = {
    "llama": ArchSpec(
        name="llama", hf_class="LlamaForCausalLM", hidden=64, heads=4, kv_heads=2,
        ffn=160, layers=2, rope_theta=10000.0, rms_eps=1e-5, qkv_bias=False,
        tied=False, max_pos=256, specials=("<|endoftext|>",), gguf_pre="smollm",
    ),
    "qwen2": ArchSpec(
        name="qwen2", hf_class="Qwen2ForCausalLM", hidden=64, heads=4, kv_heads=2,
        ffn=96, layers=2, rope_theta=1000000.0, rms_eps=1e-6, qkv_bias=True,
        tied=True, max_pos=256,
        specials=("<|endoftext|>", "<|im_start|>", "<|im_end|>",
                  "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>"),
        gguf_pre="qwen2",
    ),
}


# ---------------------------------------------------------------------------
# Tokenizer


def build_tokenizer(spec: ArchSpec) -> Tokenizer:
    """Train a byte-level BPE of VOCAB_SIZE entries (specials included)."""
    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    if spec.name == "qwen2":
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ])
        trainer_specials: list[str] = []
        bpe_size = VOCAB_SIZE - len(spec.specials)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            byte_level,
        ])
        trainer_specials = list(spec.specials)
        bpe_size = VOCAB_SIZE
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=bpe_size,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=trainer_specials,
    )
    tok.train_from_iterator([CORPUS], trainer=trainer)
    if spec.name == "qwen2":
        tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in spec.specials])
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    else:
        bos = spec.specials[0]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B:1",
            special_tokens=[(bos, tok.token_to_id(bos))],
        )
    if tok.get_vocab_size() != VOCAB_SIZE:
        raise RuntimeError(f"tokenizer has {tok.get_vocab_size()} entries, expected {VOCAB_SIZE}: "
                           "the corpus is too small for the requested number of merges")
    return tok


@dataclass(frozen=True)
class SpecialIds:
    """Token ids of the roles the config files name."""

    bos: int
    eos: int
    pad: int | None


def special_ids(spec: ArchSpec, tok: Tokenizer) -> SpecialIds:
    eot = tok.token_to_id("<|endoftext|>")
    if spec.name == "qwen2":
        return SpecialIds(bos=eot, eos=tok.token_to_id("<|im_end|>"), pad=eot)
    return SpecialIds(bos=eot, eos=eot, pad=None)


def tokenizer_config(spec: ArchSpec, tok: Tokenizer) -> dict:
    """tokenizer_config.json content in the shape transformers saves."""
    decoder = {
        str(tok.token_to_id(s)): {
            "content": s, "lstrip": False, "normalized": False, "rstrip": False,
            "single_word": False, "special": True,
        }
        for s in spec.specials
    }
    cfg: dict = {"add_prefix_space": False, "added_tokens_decoder": decoder,
                 "clean_up_tokenization_spaces": False, "model_max_length": spec.max_pos}
    if spec.name == "qwen2":
        cfg.update({
            "add_bos_token": False,
            "additional_special_tokens": list(spec.specials[1:]),
            "bos_token": None,
            "chat_template": QWEN2_CHAT_TEMPLATE,
            "eos_token": "<|im_end|>",
            "errors": "replace",
            "pad_token": "<|endoftext|>",
            "split_special_tokens": False,
            "tokenizer_class": "Qwen2Tokenizer",
            "unk_token": None,
        })
    else:
        cfg.update({
            "add_bos_token": True,
            "bos_token": "<|endoftext|>",
            "eos_token": "<|endoftext|>",
            "tokenizer_class": "GPT2Tokenizer",
            "unk_token": "<|endoftext|>",
        })
    return cfg


# ---------------------------------------------------------------------------
# Weights


def hf_tensor_names(spec: ArchSpec) -> list[tuple[str, tuple[int, ...], str]]:
    """(HF name, shape, kind) in module order; kind picks the initialisation."""
    d, hd, f = spec.hidden, spec.head_dim, spec.ffn
    q_out, kv_out = spec.heads * hd, spec.kv_heads * hd
    out: list[tuple[str, tuple[int, ...], str]] = [("model.embed_tokens.weight", (VOCAB_SIZE, d), "embed")]
    for i in range(spec.layers):
        p = f"model.layers.{i}."
        out += [
            (p + "self_attn.q_proj.weight", (q_out, d), "linear"),
            (p + "self_attn.k_proj.weight", (kv_out, d), "linear"),
            (p + "self_attn.v_proj.weight", (kv_out, d), "linear"),
        ]
        if spec.qkv_bias:
            out += [
                (p + "self_attn.q_proj.bias", (q_out,), "bias"),
                (p + "self_attn.k_proj.bias", (kv_out,), "bias"),
                (p + "self_attn.v_proj.bias", (kv_out,), "bias"),
            ]
        out += [
            (p + "self_attn.o_proj.weight", (d, q_out), "linear"),
            (p + "mlp.gate_proj.weight", (f, d), "linear"),
            (p + "mlp.up_proj.weight", (f, d), "linear"),
            (p + "mlp.down_proj.weight", (d, f), "linear"),
            (p + "input_layernorm.weight", (d,), "norm"),
            (p + "post_attention_layernorm.weight", (d,), "norm"),
        ]
    out.append(("model.norm.weight", (d,), "norm"))
    if not spec.tied:
        out.append(("lm_head.weight", (VOCAB_SIZE, d), "linear"))
    return out


def make_weights(spec: ArchSpec, seed: int) -> dict[str, np.ndarray]:
    """Random float32 weights, HF names, in module order."""
    rng = np.random.default_rng(seed)
    weights: dict[str, np.ndarray] = {}
    for name, shape, kind in hf_tensor_names(spec):
        z = rng.standard_normal(shape)
        if kind == "linear":
            w = z / np.sqrt(shape[1])
        elif kind == "embed":
            w = z
        elif kind == "norm":
            w = 1.0 + 0.1 * z
        else:  # bias
            w = 0.1 * z
        weights[name] = w.astype(np.float32)
    return weights


# ---------------------------------------------------------------------------
# Hugging Face layout


def dump_json(path: Path, obj: dict) -> None:
    """Write JSON the way transformers' save_pretrained does."""
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def model_config(spec: ArchSpec, ids: SpecialIds) -> dict:
    cfg = {
        "architectures": [spec.hf_class],
        "attention_dropout": 0.0,
        "bos_token_id": ids.bos,
        "eos_token_id": ids.eos,
        "hidden_act": "silu",
        "hidden_size": spec.hidden,
        "initializer_range": 0.02,
        "intermediate_size": spec.ffn,
        "max_position_embeddings": spec.max_pos,
        "model_type": spec.name,
        "num_attention_heads": spec.heads,
        "num_hidden_layers": spec.layers,
        "num_key_value_heads": spec.kv_heads,
        "rms_norm_eps": spec.rms_eps,
        "rope_scaling": None,
        "rope_theta": spec.rope_theta,
        "tie_word_embeddings": spec.tied,
        "torch_dtype": "float32",
        "transformers_version": TRANSFORMERS_VERSION,
        "use_cache": True,
        "vocab_size": VOCAB_SIZE,
    }
    if spec.name == "llama":
        cfg.update({"attention_bias": False, "head_dim": spec.head_dim, "mlp_bias": False,
                    "pretraining_tp": 1})
    else:
        cfg.update({"max_window_layers": spec.layers, "sliding_window": None,
                    "use_sliding_window": False})
    return cfg


def generation_config(spec: ArchSpec, ids: SpecialIds) -> dict:
    cfg: dict = {"bos_token_id": ids.bos, "transformers_version": TRANSFORMERS_VERSION}
    if spec.name == "qwen2":
        cfg.update({"do_sample": False, "eos_token_id": [ids.eos, ids.bos], "pad_token_id": ids.pad})
    else:
        cfg["eos_token_id"] = ids.eos
    return cfg


def write_hf(out: Path, spec: ArchSpec, tok: Tokenizer, weights: dict[str, np.ndarray],
             sharded: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob("model*.safetensors"), out / "model.safetensors.index.json"]:
        stale.unlink(missing_ok=True)  # a previous run in the other layout
    ids = special_ids(spec, tok)
    dump_json(out / "config.json", model_config(spec, ids))
    dump_json(out / "generation_config.json", generation_config(spec, ids))
    dump_json(out / "tokenizer_config.json", tokenizer_config(spec, tok))
    tok.save(str(out / "tokenizer.json"))
    meta = {"format": "pt"}
    if not sharded:
        save_file(weights, str(out / "model.safetensors"), metadata=meta)
        return
    # transformers fills shards in module order up to a size limit; a limit of
    # half the total gives two shards.
    total = sum(w.nbytes for w in weights.values())
    shards: list[dict[str, np.ndarray]] = [{}, {}]
    filled = 0
    for name, w in weights.items():
        shards[0 if filled + w.nbytes <= total // 2 else 1][name] = w
        filled += w.nbytes
    weight_map = {}
    for i, shard in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(out / fname), metadata=meta)
        weight_map.update({name: fname for name in shard})
    dump_json(out / "model.safetensors.index.json",
              {"metadata": {"total_size": total}, "weight_map": weight_map})


# ---------------------------------------------------------------------------
# GGUF layout

HF_TO_GGUF_LAYER = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
HF_TO_GGUF_TOP = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}

Q = gguf.GGMLQuantizationType
MIXED_CYCLE = (Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0)
FILE_TYPES = {
    "f32": gguf.LlamaFileType.ALL_F32,
    "f16": gguf.LlamaFileType.MOSTLY_F16,
    "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    # No llama.cpp file type names this mix; Q4_0 is its lowest-precision member.
    "mixed": gguf.LlamaFileType.MOSTLY_Q4_0,
}


def gguf_name(hf_name: str) -> str:
    if hf_name in HF_TO_GGUF_TOP:
        return HF_TO_GGUF_TOP[hf_name]
    _, _, layer, rest = hf_name.split(".", 3)
    return f"blk.{layer}.{HF_TO_GGUF_LAYER[rest]}"


def llama_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf.py's LlamaModel.permute: HF rotate-half rows to
    llama.cpp's interleaved-pair rows, per head."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2)
            .reshape(w.shape))


# `--duplicate-head` types.
DUPLICATE_TYPES = {"f16": Q.F16, "q8_0": Q.Q8_0, "q5_0": Q.Q5_0}


def tensor_types(weights: dict[str, np.ndarray], gguf_type: str) -> dict[str, gguf.GGMLQuantizationType]:
    """GGUF type of every tensor (HF name -> type), in the order they are written."""
    types = {}
    index_2d = 0
    for name in sorted(weights):
        if weights[name].ndim == 1 or gguf_type == "f32":
            types[name] = Q.F32
        elif gguf_type == "f16":
            types[name] = Q.F16
        elif gguf_type == "q8_0":
            types[name] = Q.Q8_0
        else:
            types[name] = MIXED_CYCLE[index_2d % len(MIXED_CYCLE)]
        index_2d += weights[name].ndim == 2
    return types


def write_gguf(out: Path, spec: ArchSpec, tok: Tokenizer, weights: dict[str, np.ndarray],
               gguf_type: str, duplicate_head: str | None = None) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(out), spec.name)
    w.add_type("model")
    w.add_name(f"Tiny {spec.name} (dittoc test model)")
    w.add_block_count(spec.layers)
    w.add_context_length(spec.max_pos)
    w.add_embedding_length(spec.hidden)
    w.add_feed_forward_length(spec.ffn)
    w.add_head_count(spec.heads)
    w.add_head_count_kv(spec.kv_heads)
    w.add_rope_freq_base(spec.rope_theta)
    w.add_layer_norm_rms_eps(spec.rms_eps)
    w.add_file_type(FILE_TYPES[gguf_type])
    if spec.name == "llama":
        w.add_vocab_size(VOCAB_SIZE)
        w.add_rope_dimension_count(spec.head_dim)

    special = set(spec.specials)
    tokens = [tok.id_to_token(i) for i in range(VOCAB_SIZE)]
    merges = [" ".join(m) if isinstance(m, list) else m
              for m in json.loads(tok.to_str())["model"]["merges"]]
    ids = special_ids(spec, tok)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(spec.gguf_pre)
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens])
    w.add_token_merges(merges)
    w.add_bos_token_id(ids.bos)
    w.add_eos_token_id(ids.eos)
    if ids.pad is not None:
        w.add_pad_token_id(ids.pad)
    cfg = tokenizer_config(spec, tok)
    w.add_add_bos_token(cfg["add_bos_token"])
    if "chat_template" in cfg:
        w.add_chat_template(cfg["chat_template"])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)

    # convert_hf_to_gguf.py walks the safetensors keys, which are sorted.
    for hf_name, qtype in tensor_types(weights, gguf_type).items():
        data = weights[hf_name]
        if spec.name == "llama" and hf_name.endswith("q_proj.weight"):
            data = llama_permute(data, spec.heads)
        elif spec.name == "llama" and hf_name.endswith("k_proj.weight"):
            data = llama_permute(data, spec.kv_heads)
        raw_dtype = None if qtype in (Q.F32, Q.F16) else qtype
        w.add_tensor(gguf_name(hf_name), gguf.quants.quantize(data, qtype), raw_dtype=raw_dtype)
    if duplicate_head is not None:
        qtype = DUPLICATE_TYPES[duplicate_head]
        data = weights["model.embed_tokens.weight"]
        raw_dtype = None if qtype in (Q.F32, Q.F16) else qtype
        w.add_tensor("output.weight", gguf.quants.quantize(data, qtype), raw_dtype=raw_dtype)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", choices=sorted(ARCHS), required=True)
    ap.add_argument("--format", choices=["hf", "hf-sharded", "gguf"], required=True)
    ap.add_argument("--gguf-type", choices=list(FILE_TYPES), default="f32",
                    help="tensor types of the GGUF form (default f32)")
    ap.add_argument("--out", type=Path, required=True,
                    help="output directory (hf, hf-sharded) or .gguf file (gguf)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--duplicate-head", choices=list(DUPLICATE_TYPES),
                    help="gguf, tied archs: also store the embedding as output.weight in this type")
    args = ap.parse_args(argv)

    spec = ARCHS[args.arch]
    if args.duplicate_head is not None and (args.format != "gguf" or not spec.tied):
        print("gen_tiny: error: --duplicate-head needs --format gguf and a tied arch (qwen2)",
              file=sys.stderr)
        return 2
    tok = build_tokenizer(spec)
    weights = make_weights(spec, args.seed)
    try:
        if args.format == "gguf":
            if args.out.is_dir():
                raise OSError(f"{args.out} is a directory; --format gguf writes a file")
            write_gguf(args.out, spec, tok, weights, args.gguf_type, args.duplicate_head)
        else:
            if args.out.exists() and not args.out.is_dir():
                raise OSError(f"{args.out} exists and is not a directory")
            write_hf(args.out, spec, tok, weights, sharded=args.format == "hf-sharded")
    except OSError as e:
        print(f"gen_tiny: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
