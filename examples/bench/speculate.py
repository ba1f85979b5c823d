#!/usr/bin/env python3
"""Speculative decoding by retrieval, dittoc beside llama.cpp's prompt lookup.

For each prompt of examples/speculate/ (token ids from llama.cpp's tokenizer,
so that both systems see the same input), greedy, `-n` new tokens:

- dittoc's 4-bit executable (`dittoc quantize --bits 4 --block 64
  --calib-set none`, built once under build/bench/spec-k4/) with
  `--spec off` and with `--spec on` (the running context as the store,
  adaptive sizing): tokens per second of its generation loop, and the
  number of generated tokens where the two differ (the goal is 0);
- llama.cpp (llama-cpp-python) on the Q4_K_M GGUF: greedy by the
  harness's loop (`llama_cpp_run.greedy`: one `eval` per token, argmax in
  numpy; llama.cpp's own speed), and through `Llama.generate` plain and with
  llama-cpp-python's prompt lookup decoding (`LlamaPromptLookupDecoding`,
  `--lookup-tokens` drafted per step; its drafting and verification loop
  is Python over llama.cpp, and a draft model makes it keep every
  position's logits), timed around the generation after the prompt.

Runs are interleaved system by system, `--runs` of each; the table gives
medians, the ratio of each speculation against its own plain decoding
(`generate` for the prompt lookup), and dittoc's speculative rate against
llama.cpp's greedy loop, the fastest llama.cpp here.

    examples/bench/speculate.py [--runs 3] [-n 96] [--threads 1]

Results: examples/bench/results/speculate.json, and the markdown table on
stdout (docs/speculation.md keeps a copy with the command).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import benchlib
from benchlib import BenchError, log

PROMPTS = sorted((benchlib.REPO / "examples" / "speculate").glob("*.py"))
EXE = benchlib.REPO / "build" / "bench" / "spec-k4" / "k4"
# `decode: 95 tokens in 2.650 s (...)`, `speculation: 96 tokens in 36 forwards (2.67 per forward), 1.305 s (...)`
TIMING = re.compile(r"(?P<tokens>\d+) tokens in (?:\d+ forwards \((?P<per_forward>[\d.]+) per forward\), )?(?P<seconds>[\d.]+) s")


def ensure_exe(gguf: Path, rebuild: bool) -> Path:
    """The 4-bit executable: imported, quantized and compiled when missing."""
    if EXE.exists() and not rebuild:
        return EXE
    EXE.parent.mkdir(parents=True, exist_ok=True)
    m, q = EXE.with_name("m.mlir"), EXE.with_name("q.mlir")
    d = str(benchlib.DITTOC)
    for cmd in ([d, "import", str(gguf), "-o", str(m)],
                [d, "quantize", str(m), "--bits", "4", "--block", "64", "--calib-set", "none", "-o", str(q)],
                [d, str(q), "-O3", "-o", str(EXE)]):
        log("$ " + " ".join(cmd))
        if subprocess.run(cmd).returncode != 0:
            raise BenchError(f"command failed: {' '.join(cmd)}")
    return EXE


def run_dittoc(ids: list[int], n: int, threads: int, spec: str) -> dict:
    """One run: the generated ids and the generation loop's tokens per second
    (`decode:` with --spec off, `speculation:` with it on)."""
    cmd = [str(EXE), "--tokens", ",".join(map(str, ids)), "-n", str(n), "--threads", str(threads),
           "--ids", "--spec", spec]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(cmd[:1])} failed:\n{proc.stderr[-2000:]}")
    line = next((l for l in proc.stderr.splitlines()
                 if l.startswith("speculation:" if spec == "on" else "decode:")), None)
    if line is None:
        raise BenchError(f"no timing line in the stderr of {EXE}:\n{proc.stderr[-2000:]}")
    found = TIMING.search(line)
    if found is None:
        raise BenchError(f"cannot read {line!r}")
    tokens, seconds = int(found["tokens"]), float(found["seconds"])
    # Tokens after the first (which comes from the prompt's logits), as the
    # `decode:` line counts them.
    after_first = tokens - 1 if spec == "on" else tokens
    out = {"ids": [int(t) for t in proc.stdout.split()], "tok_s": after_first / seconds, "line": line}
    if spec == "on":
        out["per_forward"] = float(found["per_forward"])
    return out


def run_llama(llm, ids: list[int], n: int) -> dict:
    """llama.cpp greedy from `ids` (prompt lookup decoding if `llm` was
    made with it): generated ids and tokens per second after the first (the
    prompt's eval and the first token's sampling excluded, as dittoc's
    lines exclude them)."""
    llm.reset()
    out: list[int] = []
    start = None
    for token in llm.generate(ids, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, reset=True):
        if start is None:
            start = time.perf_counter()
        if token in (llm.token_eos(),):
            break
        out.append(int(token))
        if len(out) == n:
            break
    seconds = time.perf_counter() - (start or time.perf_counter())
    return {"ids": out, "tok_s": (len(out) - 1) / seconds if seconds > 0 and len(out) > 1 else 0.0}


def mismatches(a: list[int], b: list[int]) -> int:
    """Generated positions where two runs differ (from the first difference on)."""
    same = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return max(len(a), len(b)) - same


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("-n", type=int, default=96)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lookup-tokens", type=int, default=10, help="llama.cpp prompt lookup's drafted tokens")
    ap.add_argument("--rebuild", action="store_true")
    args = ap.parse_args()
    benchlib.ensure_llama_cpp_venv()
    import llama_cpp
    import llama_cpp_run
    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

    gguf = benchlib.fetch_gguf()
    ensure_exe(gguf, args.rebuild)
    def load(draft=None):
        # A draft model needs every position's logits: llama-cpp-python then
        # keeps them all (logits_all), so the plain context is its own.
        return llama_cpp.Llama(model_path=str(gguf), n_ctx=2048, n_batch=512, n_threads=args.threads,
                               n_threads_batch=args.threads, seed=0, verbose=False, draft_model=draft)

    llm = load()
    lookup = load(LlamaPromptLookupDecoding(num_pred_tokens=args.lookup_tokens))
    rows, raw = [], {}
    for prompt in PROMPTS:
        ids = llm.tokenize(prompt.read_bytes(), add_bos=False, special=False)
        runs: dict[str, list[dict]] = {k: [] for k in ("off", "on", "greedy", "llama", "lookup")}
        for r in range(args.runs):
            log(f"{prompt.name}: run {r + 1} of {args.runs}")
            runs["off"].append(run_dittoc(ids, args.n, args.threads, "off"))
            runs["on"].append(run_dittoc(ids, args.n, args.threads, "on"))
            g = llama_cpp_run.greedy(llm, ids, args.n, {llm.token_eos()})
            runs["greedy"].append({"ids": g["ids"], "tok_s": g["decode_tokens"] / g["decode_s"]})
            runs["llama"].append(run_llama(llm, ids, args.n))
            runs["lookup"].append(run_llama(lookup, ids, args.n))
        med = {k: statistics.median(x["tok_s"] for x in v) for k, v in runs.items()}
        wrong = sum(mismatches(runs["off"][0]["ids"], x["ids"]) for x in runs["on"] + runs["off"][1:])
        lookup_wrong = sum(mismatches(runs["llama"][0]["ids"], x["ids"]) for x in runs["lookup"])
        per_forward = statistics.median(x["per_forward"] for x in runs["on"])
        rows.append((prompt.name, len(ids), med, wrong, lookup_wrong, per_forward))
        raw[prompt.name] = {"prompt_tokens": len(ids), "runs": runs}
    print(f"| prompt | tokens | dittoc k4 `--spec off` | dittoc `--spec on` | llama.cpp Q4_K_M greedy | `generate` | `generate` + prompt lookup ({args.lookup_tokens}) | dittoc spec / llama.cpp greedy | mismatches (dittoc, lookup) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, count, med, wrong, lookup_wrong, per_forward in rows:
        print(f"| `{name}` | {count} | {med['off']:.1f} tok/s | {med['on']:.1f} ({med['on'] / med['off']:.2f}×; {per_forward:.2f} a forward) "
              f"| {med['greedy']:.1f} | {med['llama']:.1f} | {med['lookup']:.1f} ({med['lookup'] / med['llama']:.2f}×) "
              f"| {med['on'] / med['greedy']:.2f}× | {wrong}, {lookup_wrong} |")
    print(f"\n_{benchlib.machine_line(benchlib.machine_info())}; commit `{benchlib.git_head()}`; "
          f"`examples/bench/speculate.py --runs {args.runs} -n {args.n} --threads {args.threads}`; "
          f"median of {args.runs} runs each, interleaved_")
    benchlib.write_json("speculate.json", {"args": vars(args), "commit": benchlib.git_head(),
                                      "machine": benchlib.machine_info(), "prompts": raw})
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"speculate: error: {e}", file=sys.stderr)
        sys.exit(1)
