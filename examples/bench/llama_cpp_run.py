"""The llama.cpp side of the benchmarks: load a GGUF, feed token ids, decode
greedily, time it.

Used two ways:

- as a module (`compare_llama_cpp.py`): `load()` and `greedy()` in-process;
- as a command (`bench_f32.py`), one process per measurement so that its peak
  RSS is its own; it prints one JSON object on stdout:

      python llama_cpp_run.py --model M.gguf --tokens 1,2,3 -n 64 --threads 2 --ctx 1024 --kv f32

The greedy loop is the dittoc executable's: take the argmax of the last
logits, stop before any id in `eos`, else feed the token back — n tokens cost
one prompt `Llama.eval` and n-1 single-token evals. Timing: `time.perf_counter`
around the prompt eval (prefill) and around the loop after the first token
(decode), the same spans the dittoc executable's `prefill:` and `decode:`
lines cover (load excluded in both). llama.cpp's own perf counters
(`llama_perf_context`: t_p_eval_ms, t_eval_ms) are reported next to them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import llama_cpp
import numpy as np

KV_TYPES = {"f16": llama_cpp.GGML_TYPE_F16, "f32": llama_cpp.GGML_TYPE_F32}


def load(model: str, threads: int, ctx: int, kv: str = "f16", logits_all: bool = False) -> llama_cpp.Llama:
    """A llama.cpp context on `model` (mmapped, CPU only, `kv` K/V cache type)."""
    return llama_cpp.Llama(
        model_path=model,
        n_ctx=ctx,
        n_batch=min(ctx, 512),
        n_threads=threads,
        n_threads_batch=threads,
        logits_all=logits_all,
        type_k=KV_TYPES[kv],
        type_v=KV_TYPES[kv],
        seed=0,
        verbose=False,
    )


def last_logits(llm: llama_cpp.Llama) -> np.ndarray:
    """The logits of the last evaluated position (a view into llama.cpp)."""
    ptr = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),))


def greedy(llm: llama_cpp.Llama, ids: list[int], n: int, eos: set[int], track_margins: bool = False) -> dict:
    """Feed `ids` from position 0, then generate up to `n` tokens greedily.

    Returns the generated ids, with `track_margins` the gap between the two
    largest logits at each greedy step (`margins`: how close a step came to a
    tie; off when timing, as it costs a partial sort per step), the timings
    (see the module docstring), llama.cpp's perf counters and, when the
    context keeps all logits, the logits of every prompt position as
    `prompt_logits` [T, vocab].
    """
    llm.reset()
    llama_cpp.llama_perf_context_reset(llm.ctx)
    start = time.perf_counter()
    llm.eval(ids)
    prefill_s = time.perf_counter() - start
    prompt_logits = llm.scores[: len(ids)].copy() if llm._logits_all else None

    out: list[int] = []
    margins: list[float] = []
    decoded = 0
    start = time.perf_counter()
    logits = last_logits(llm)
    while len(out) < n:
        token = int(np.argmax(logits))
        if track_margins:
            top2 = np.partition(logits, -2)[-2:]
            margins.append(float(top2[1] - top2[0]))
        if token in eos:
            break
        out.append(token)
        if len(out) == n:
            break
        llm.eval([token])
        decoded += 1
        logits = last_logits(llm)
    decode_s = time.perf_counter() - start

    perf = llama_cpp.llama_perf_context(llm.ctx)
    return {
        "ids": out,
        "margins": margins,
        "prefill_tokens": len(ids),
        "prefill_s": prefill_s,
        "decode_tokens": decoded,
        "decode_s": decode_s,
        "perf": {"t_p_eval_ms": perf.t_p_eval_ms, "n_p_eval": perf.n_p_eval,
                 "t_eval_ms": perf.t_eval_ms, "n_eval": perf.n_eval},
        "prompt_logits": prompt_logits,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="GGUF file")
    ap.add_argument("--tokens", help="prompt ids, comma separated")
    ap.add_argument("-n", type=int, default=64, help="tokens to generate (default 64)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--kv", choices=sorted(KV_TYPES), default="f16", help="K/V cache type")
    ap.add_argument("--eos", default="", help="end-of-text ids, comma separated")
    ap.add_argument("--baseline", action="store_true",
                    help="only import llama_cpp and exit (the interpreter's own RSS)")
    args = ap.parse_args()
    if args.baseline:
        print(json.dumps({"baseline": True}))
        return 0
    if not args.model or not args.tokens:
        ap.error("--model and --tokens are required")

    start = time.perf_counter()
    llm = load(args.model, args.threads, args.ctx, args.kv)
    load_s = time.perf_counter() - start
    eos = {int(t) for t in args.eos.split(",") if t}
    result = greedy(llm, [int(t) for t in args.tokens.split(",")], args.n, eos)
    del result["prompt_logits"]
    result["load_s"] = load_s
    result["model_size_bytes"] = llama_cpp.llama_model_size(llm.model)
    result["n_params"] = llama_cpp.llama_model_n_params(llm.model)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
