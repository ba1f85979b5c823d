"""Tests of the Python test tools: gen_tiny, ref_forward and compare_logits.

Run with `python3 -m pytest lit-tests/tools` or, from lit-tests/tools,
`python3 -m unittest test_tools`. The tiny models are generated once into a
temporary directory (a few seconds in all).

Set DITTO_REAL_MODEL_TESTS=1 to also run the reference on the cached
Qwen2.5-Coder-0.5B GGUF (examples/fetch-model.sh; about 20 s).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent.parent
GEN_TINY = REPO / "examples" / "tiny" / "gen_tiny.py"
sys.path[:0] = [str(TOOLS), str(GEN_TINY.parent)]

import compare_logits  # noqa: E402
import gen_tiny  # noqa: E402
import gguf  # noqa: E402
import ref_forward as rf  # noqa: E402

ARCHS = ("llama", "qwen2")
GGUF_TYPES = ("f32", "f16", "q8_0", "mixed")
PROMPT = [5, 17, 200, 3, 42, 99, 250, 7, 64, 128, 300, 11, 1, 150, 77, 333]

# Relative logits error (max|a-b| / max|b| per row) of a GGUF form against
# the float32 HF form of the same model. Worst values measured over 20 random
# 64-token prompts: f16 1.2e-3 (llama) / 7.5e-4 (qwen2); q8_0 3.1e-2 / 1.9e-2.
# F16 rounds each weight with relative error <= 2^-11 ~ 4.9e-4; Q8_0 rounds to
# a step of max|block|/127, i.e. up to ~1% of a weight's scale for Gaussian
# blocks of 32. Both errors accumulate over ~15 products per token, so a few
# 1e-4 (f16) and a few 1e-2 (q8_0) of the largest logit is what correct
# loading gives; a wrongly decoded tensor gives O(1). The bounds are ~2.5x the
# worst measurement. (Argmax agreement is not required: near-ties flip.)
QUANT_RTOL = {"f16": 3e-3, "q8_0": 8e-2}

_tmp: tempfile.TemporaryDirectory | None = None
MODELS = Path()  # the generated models' directory, set by setUpModule


def setUpModule() -> None:
    global _tmp, MODELS
    _tmp = tempfile.TemporaryDirectory(prefix="ditto-tools-")
    MODELS = Path(_tmp.name)
    for arch in ARCHS:
        for fmt in ("hf", "hf-sharded"):
            assert gen_tiny.main(["--arch", arch, "--format", fmt, "--out", str(MODELS / f"{arch}-{fmt}")]) == 0
        for gt in GGUF_TYPES:
            assert gen_tiny.main(["--arch", arch, "--format", "gguf", "--gguf-type", gt,
                                  "--out", str(MODELS / f"{arch}-{gt}.gguf")]) == 0


def tearDownModule() -> None:
    if _tmp is not None:
        _tmp.cleanup()


def prompt_logits(model_path: Path, tokens: list[int] = PROMPT) -> np.ndarray:
    model = rf.load_model(model_path)
    return model.forward(tokens, rf.KVCache(model.config.n_layers))


def max_row_rel_error(a: np.ndarray, b: np.ndarray) -> float:
    return float((np.abs(a - b).max(axis=1) / np.abs(b).max(axis=1)).max())


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)


def tree_bytes(root: Path) -> dict[str, bytes]:
    if root.is_file():
        return {root.name: root.read_bytes()}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


class GenTinyTest(unittest.TestCase):
    def test_deterministic_across_processes(self):
        """Two fresh processes (different hash seeds) write identical bytes."""
        for arch, fmt, gt, name in (("llama", "hf-sharded", "f32", "llama-hf-sharded"),
                                    ("qwen2", "hf", "f32", "qwen2-hf"),
                                    ("qwen2", "gguf", "mixed", "qwen2-mixed.gguf"),
                                    ("llama", "gguf", "q8_0", "llama-q8_0.gguf")):
            with tempfile.TemporaryDirectory() as d:
                out = Path(d) / name
                r = run(str(GEN_TINY), "--arch", arch, "--format", fmt, "--gguf-type", gt, "--out", str(out))
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(tree_bytes(out), tree_bytes(MODELS / name), f"{name} differs between runs")

    def test_seed_changes_weights(self):
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "m.gguf"
            self.assertEqual(gen_tiny.main(["--arch", "llama", "--format", "gguf", "--seed", "1",
                                            "--out", str(out)]), 0)
            self.assertNotEqual(out.read_bytes(), (MODELS / "llama-f32.gguf").read_bytes())

    def test_hf_files(self):
        import json
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer
        for arch in ARCHS:
            d = MODELS / f"{arch}-hf"
            cfg = json.loads((d / "config.json").read_text())
            tok = Tokenizer.from_file(str(d / "tokenizer.json"))
            self.assertEqual(cfg["vocab_size"], tok.get_vocab_size())
            self.assertEqual(cfg["vocab_size"], 400)
            weights = load_file(str(d / "model.safetensors"))
            self.assertTrue(all(w.dtype == np.float32 for w in weights.values()))
            self.assertEqual(cfg["tie_word_embeddings"], "lm_head.weight" not in weights)
            self.assertEqual(arch == "qwen2", "model.layers.1.self_attn.k_proj.bias" in weights)
            self.assertEqual(tok.decode(tok.encode("def f(x):\n    return x + 1").ids, skip_special_tokens=True),
                             "def f(x):\n    return x + 1")
            for s in gen_tiny.ARCHS[arch].specials:
                self.assertEqual(tok.encode(s, add_special_tokens=False).tokens, [s])
            sharded = MODELS / f"{arch}-hf-sharded"
            index = json.loads((sharded / "model.safetensors.index.json").read_text())
            shards = sorted(set(index["weight_map"].values()))
            self.assertEqual(shards, ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"])
            merged = {}
            for s in shards:
                part = load_file(str(sharded / s))
                self.assertTrue(all(index["weight_map"][n] == s for n in part))
                merged.update(part)
            self.assertEqual(sorted(merged), sorted(weights))
            self.assertEqual(index["metadata"]["total_size"], sum(w.nbytes for w in weights.values()))

    def test_gguf_metadata_and_layout(self):
        from safetensors.numpy import load_file
        for arch in ARCHS:
            spec = gen_tiny.ARCHS[arch]
            r = gguf.GGUFReader(str(MODELS / f"{arch}-f32.gguf"))
            meta = {k: f.contents() for k, f in r.fields.items()}
            self.assertEqual(meta["general.architecture"], arch)
            for key, value in ((".block_count", 2), (".embedding_length", 64), (".feed_forward_length", spec.ffn),
                               (".attention.head_count", 4), (".attention.head_count_kv", 2),
                               (".context_length", 256)):
                self.assertEqual(meta[arch + key], value, key)
            self.assertAlmostEqual(meta[arch + ".rope.freq_base"], spec.rope_theta)
            self.assertAlmostEqual(meta[arch + ".attention.layer_norm_rms_epsilon"], spec.rms_eps, places=12)
            self.assertEqual(meta["tokenizer.ggml.model"], "gpt2")
            self.assertEqual(meta["tokenizer.ggml.pre"], spec.gguf_pre)
            self.assertEqual(len(meta["tokenizer.ggml.tokens"]), 400)
            types = meta["tokenizer.ggml.token_type"]
            for s in spec.specials:
                self.assertEqual(types[meta["tokenizer.ggml.tokens"].index(s)], gguf.TokenType.CONTROL)
            self.assertEqual(sum(t == gguf.TokenType.CONTROL for t in types), len(spec.specials))

            tensors = {t.name: t for t in r.tensors}
            self.assertEqual("output.weight" in tensors, not spec.tied)
            hf = load_file(str(MODELS / f"{arch}-hf" / "model.safetensors"))
            q_gguf = np.asarray(tensors["blk.0.attn_q.weight"].data)
            q_hf = hf["model.layers.0.self_attn.q_proj.weight"]
            if arch == "llama":  # permuted for llama.cpp's RoPE, and the permutation is not a no-op
                self.assertFalse(np.array_equal(q_gguf, q_hf))
                np.testing.assert_array_equal(q_gguf, gen_tiny.llama_permute(q_hf, spec.heads))
                np.testing.assert_array_equal(rf.unpermute_llama(q_gguf, spec.heads), q_hf)
            else:
                np.testing.assert_array_equal(q_gguf, q_hf)

    def test_gguf_tensor_types(self):
        Q = gguf.GGMLQuantizationType
        for arch in ARCHS:
            for gt, want in (("f32", {Q.F32}), ("f16", {Q.F32, Q.F16}), ("q8_0", {Q.F32, Q.Q8_0}),
                             ("mixed", {Q.F32, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0})):
                r = gguf.GGUFReader(str(MODELS / f"{arch}-{gt}.gguf"))
                self.assertEqual({t.tensor_type for t in r.tensors}, want, f"{arch} {gt}")
                for t in r.tensors:
                    if len(t.shape) == 1:
                        self.assertEqual(t.tensor_type, Q.F32, t.name)


class RefForwardTest(unittest.TestCase):
    def test_hf_sharded_and_gguf_f32_agree(self):
        for arch in ARCHS:
            ref = prompt_logits(MODELS / f"{arch}-hf")
            self.assertGreater(ref.std(axis=1).min(), 0.5, "logits should be well spread")
            for other in (f"{arch}-hf-sharded", f"{arch}-f32.gguf"):
                got = prompt_logits(MODELS / other)
                self.assertEqual(got.shape, (len(PROMPT), 400))
                self.assertLessEqual(max_row_rel_error(got, ref), 1e-5, other)

    def test_quantized_gguf_within_measured_tolerance(self):
        for arch in ARCHS:
            ref = prompt_logits(MODELS / f"{arch}-hf")
            for gt, rtol in QUANT_RTOL.items():
                err = max_row_rel_error(prompt_logits(MODELS / f"{arch}-{gt}.gguf"), ref)
                self.assertLessEqual(err, rtol, f"{arch} {gt}")
                self.assertGreater(err, 0.0, f"{arch} {gt} should not be lossless")

    def test_quantized_gguf_matches_hf_with_same_rounding(self):
        """A GGUF of any type equals the HF model whose weights went through the
        same quantize/dequantize round trip: checks type dispatch, shapes and
        un-permutation on every tensor type, exactly."""
        for arch in ARCHS:
            spec = gen_tiny.ARCHS[arch]
            weights = gen_tiny.make_weights(spec, 0)
            tok = gen_tiny.build_tokenizer(spec)
            for gt in ("f16", "q8_0", "mixed"):
                rounded = {name: gguf.quants.dequantize(gguf.quants.quantize(w, qt), qt).reshape(w.shape)
                           for name, w in weights.items()
                           for qt in [gen_tiny.tensor_types(weights, gt)[name]]}
                with tempfile.TemporaryDirectory() as d:
                    gen_tiny.write_hf(Path(d), spec, tok, rounded, sharded=False)
                    ref = prompt_logits(Path(d))
                got = prompt_logits(MODELS / f"{arch}-{gt}.gguf")
                self.assertLessEqual(max_row_rel_error(got, ref), 1e-5, f"{arch} {gt}")

    def test_attention_is_causal(self):
        for arch in ARCHS:
            model = rf.load_model(MODELS / f"{arch}-hf")
            changed = list(PROMPT)
            changed[9] = (changed[9] + 1) % 400
            a = model.forward(PROMPT, rf.KVCache(model.config.n_layers))
            b = model.forward(changed, rf.KVCache(model.config.n_layers))
            np.testing.assert_array_equal(a[:9], b[:9])
            self.assertTrue(np.all(np.abs(a[9:] - b[9:]).max(axis=1) > 1e-6), "later rows must see the change")

    def test_kv_cache_decode_equals_full_recompute(self):
        for arch in ARCHS:
            model = rf.load_model(MODELS / f"{arch}-hf")
            cache = rf.KVCache(model.config.n_layers)
            steps = [model.forward(PROMPT[:4], cache)]
            steps += [model.forward([t], cache) for t in PROMPT[4:]]
            full = model.forward(PROMPT, rf.KVCache(model.config.n_layers))
            self.assertLessEqual(max_row_rel_error(np.concatenate(steps), full), 1e-12)

    def test_rms_norm_by_hand(self):
        x = np.array([[1.0, 2.0, 3.0, 4.0]])
        w = np.array([1.0, 0.5, 2.0, 1.0])
        eps = 1e-5
        inv = 1.0 / math.sqrt((1 + 4 + 9 + 16) / 4 + eps)  # mean of squares is 7.5
        np.testing.assert_allclose(rf.rms_norm(x, w, eps), [[1 * inv, 1.0 * inv, 6 * inv, 4 * inv]], rtol=1e-15)

    def test_rope_by_hand(self):
        # head_dim 4: rotate-half pairs element i with element i + 2;
        # frequencies theta^0 = 1 and theta^(-2/4) = 0.01 for theta = 1e4.
        x = np.array([[[1.0, 2.0, 3.0, 4.0]]])
        p = 3
        a0, a1 = p * 1.0, p * 0.01
        want = [1 * math.cos(a0) - 3 * math.sin(a0),
                2 * math.cos(a1) - 4 * math.sin(a1),
                3 * math.cos(a0) + 1 * math.sin(a0),
                4 * math.cos(a1) + 2 * math.sin(a1)]
        np.testing.assert_allclose(rf.rope(x, np.array([p]), 10000.0)[0, 0], want, rtol=1e-14)
        np.testing.assert_array_equal(rf.rope(x, np.array([0]), 10000.0), x)

    def test_grouped_query_attention_by_hand(self):
        # head_dim 1, 4 query heads, 2 KV heads: query head h must read KV head
        # h // 2. Keys are +10 at position 0 and -10 at position 1, so a query of
        # +10 picks position 0 and -10 picks position 1 (softmax weight of the
        # other is e^-200). Values: KV head 0 holds 1, 2; KV head 1 holds 3, 4.
        k = np.array([[[10.0], [10.0]], [[-10.0], [-10.0]]])     # [S=2, KV=2, 1]
        v = np.array([[[1.0], [3.0]], [[2.0], [4.0]]])
        q = np.array([[[10.0], [-10.0], [10.0], [-10.0]]] * 2)   # [T=2, H=4, 1]
        out = rf.causal_attention(q, k, v, np.array([0, 1]))
        # Position 0 only sees key 0; position 1 sees both and picks by sign.
        np.testing.assert_allclose(out, [[1, 1, 3, 3], [1, 2, 3, 4]], rtol=1e-12)

    def test_cli(self):
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "logits.npy"
            r = run(str(TOOLS / "ref_forward.py"), str(MODELS / "llama-q8_0.gguf"),
                    "--tokens", "1,2,3", "--out", str(out), "--greedy", "5")
            self.assertEqual(r.returncode, 0, r.stderr)
            logits = np.load(out)
            self.assertEqual((logits.shape, logits.dtype), ((3, 400), np.float32))
            ids = [int(s) for s in r.stdout.split()]
            self.assertEqual(len(ids), 5)
            model = rf.load_model(MODELS / "llama-q8_0.gguf")
            _, want = rf.greedy(model, [1, 2, 3], 5)
            self.assertEqual(ids, want)
            self.assertEqual(ids[0], int(np.argmax(logits[-1])))

            r = run(str(TOOLS / "ref_forward.py"), str(MODELS / "llama-hf"), "--tokens", "1,400")
            self.assertEqual(r.returncode, 1)
            self.assertIn("outside the vocabulary", r.stderr)
            r = run(str(TOOLS / "ref_forward.py"), str(Path(d) / "missing"), "--tokens", "1")
            self.assertEqual(r.returncode, 1)
            self.assertIn("no such model", r.stderr)
            broken = Path(d) / "broken.gguf"
            broken.write_bytes(b"not a gguf file at all")
            r = run(str(TOOLS / "ref_forward.py"), str(broken), "--tokens", "1")
            self.assertEqual(r.returncode, 1)
            self.assertIn("broken.gguf", r.stderr)

    @unittest.skipUnless(os.environ.get("DITTO_REAL_MODEL_TESTS") == "1", "set DITTO_REAL_MODEL_TESTS=1")
    def test_real_qwen_model(self):
        path = Path(os.environ.get("DITTO_CACHE", Path.home() / ".cache" / "dittoc")) \
            / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
        if not path.exists():
            self.skipTest(f"{path} not fetched (examples/fetch-model.sh)")
        # "def fibonacci(n):" continues with "\n    if n <= 0:\n        return" (greedy).
        r = run(str(TOOLS / "ref_forward.py"), str(path), "--tokens", "750,75698,1445,1648",
                "--greedy", "6", "--dtype", "float32")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), ["198", "262", "421", "308", "2651", "220"])


class CompareLogitsTest(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp())
        self.ref = np.random.default_rng(0).standard_normal((4, 50)).astype(np.float32)

    def tearDown(self):
        shutil.rmtree(self.dir)

    def check(self, a: np.ndarray, *extra: str) -> subprocess.CompletedProcess:
        np.save(self.dir / "a.npy", a)
        np.save(self.dir / "b.npy", self.ref)
        return run(str(TOOLS / "compare_logits.py"), str(self.dir / "a.npy"), str(self.dir / "b.npy"), *extra)

    def test_equal_passes(self):
        r = self.check(self.ref.copy())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("argmax agrees on 4/4", r.stdout)

    def test_perturbed_fails(self):
        a = self.ref.copy()
        a[2, 7] += 0.01
        r = self.check(a)
        self.assertEqual(r.returncode, 1)
        self.assertIn("row 2", r.stderr)
        self.assertIn("a.npy", r.stderr)
        self.assertEqual(self.check(a, "--rtol", "1e-2").returncode, 0)

    def test_argmax_flip_fails_within_rtol(self):
        a = self.ref.copy()
        row = a[1]
        top, second = np.argsort(row)[-1], np.argsort(row)[-2]
        row[second] = row[top] + 1e-6
        failures = compare_logits.compare(a.astype(np.float64), self.ref.astype(np.float64), 1.0, "a", "b")
        self.assertEqual(len(failures), 1)
        self.assertIn("argmax differs", failures[0])

    def test_shape_and_nan_fail(self):
        self.assertEqual(self.check(self.ref[:3]).returncode, 1)
        a = self.ref.copy()
        a[0, 0] = np.nan
        r = self.check(a)
        self.assertEqual(r.returncode, 1)
        self.assertIn("non-finite", r.stderr)


if __name__ == "__main__":
    unittest.main()
