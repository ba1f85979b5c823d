"""The llama.cpp side of the harness's quality measurements, one process per
system (run by harness.py under the llama.cpp venv).

    python llama_cpp_eval.py perplexity --model M.gguf --threads 2 --input WINDOWS.json
    python llama_cpp_eval.py complete --model M.gguf --threads 2 --ctx 2048 --input PROMPTS.json \
        -n 384 --stops '["\\ndef "]' --eos 151643,151645 [--add-bos]

`perplexity`: WINDOWS.json is {"windows": {"INDEX": [ids...], ...}}; each
window is evaluated from an empty context (`logits_all`, so every position's
logits) and scored by perplexity.window_nll — the dittoc executable's
`--perplexity` rule, in float64. One JSON line per window as it finishes:
{"index": "INDEX", "nll": total NLL, "scored": T-1, "seconds": s}.

`complete`: PROMPTS.json is {"prompts": {"KEY": "text", ...}}; each text is
tokenized with llama.cpp's tokenizer (BOS only with --add-bos, no special
tokens parsed) and continued greedily (argmax of the last logits) for at
most -n tokens, stopping at an end-of-text id or as soon as the generated
text contains a stop string; the completion is cut right before the earliest
stop (humaneval.truncate), as the dittoc executable's `--stop` does. One JSON
line per prompt: {"key", "completion", "tokens", "prompt_tokens", "stop":
"eos" | "stop string" | "length", "seconds"}.

Lines go to stdout and are flushed one by one, so the harness caches each
result as it arrives; an interrupted run loses at most the item in flight.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

import llama_cpp_run
from humaneval import greedy_text
from perplexity import WINDOW, window_nll


def emit(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


def run_perplexity(args) -> None:
    windows = json.loads(open(args.input).read())["windows"]
    llm = llama_cpp_run.load(args.model, args.threads, max([len(w) for w in windows.values()] + [WINDOW]),
                             args.kv, logits_all=True)
    for index, ids in windows.items():
        start = time.perf_counter()
        llm.reset()
        llm.eval(ids)
        nll, scored = window_nll(llm.scores[: len(ids)], ids)
        emit({"index": index, "nll": nll, "scored": scored, "seconds": time.perf_counter() - start})


def complete(llm, ids: list[int], n: int, stops: tuple[str, ...], eos: set[int]) -> dict:
    """Greedy continuation of `ids` as text, cut at the stops (humaneval.greedy_text)."""
    llm.reset()
    llm.eval(ids)
    return greedy_text(lambda: int(np.argmax(llama_cpp_run.last_logits(llm))), lambda t: llm.eval([t]),
                       lambda t: llm.detokenize([t]), n, stops, eos)


def run_complete(args) -> None:
    prompts = json.loads(open(args.input).read())["prompts"]
    stops = tuple(json.loads(args.stops))
    eos = {int(t) for t in args.eos.split(",") if t}
    llm = llama_cpp_run.load(args.model, args.threads, args.ctx, args.kv)
    for key, text in prompts.items():
        start = time.perf_counter()
        ids = llm.tokenize(text.encode("utf-8"), add_bos=args.add_bos, special=False)
        if len(ids) + args.n > args.ctx:
            raise SystemExit(f"llama_cpp_eval: prompt {key} has {len(ids)} tokens; with -n {args.n} "
                             f"that exceeds --ctx {args.ctx}")
        result = complete(llm, ids, args.n, stops, eos)
        emit({"key": key, **result, "prompt_tokens": len(ids), "seconds": time.perf_counter() - start})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["perplexity", "complete"])
    ap.add_argument("--model", required=True, help="GGUF file")
    ap.add_argument("--input", required=True, help="the windows or prompts (JSON, see above)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ctx", type=int, default=2048, help="context of `complete` (default 2048)")
    ap.add_argument("--kv", choices=sorted(llama_cpp_run.KV_TYPES), default="f32", help="K/V cache type (default f32)")
    ap.add_argument("-n", type=int, default=384, help="new tokens at most (complete)")
    ap.add_argument("--stops", default="[]", help="stop strings, a JSON list (complete)")
    ap.add_argument("--eos", default="", help="end-of-text ids, comma separated (complete)")
    ap.add_argument("--add-bos", action="store_true", help="prepend BOS when tokenizing (complete)")
    args = ap.parse_args()
    if args.mode == "perplexity":
        run_perplexity(args)
    else:
        run_complete(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
