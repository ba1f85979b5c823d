"""dittoc's f32 Qwen2.5-Coder-0.5B beside llama.cpp on the same token ids.

For every prompt in examples/bench/prompts/ (the exact bytes of each file):

1. tokenize it with llama.cpp's tokenizer (the same Q4_K_M GGUF dittoc
   imported; BOS as the model's tokenizer config says: none for Qwen2.5);
2. run the dittoc executable on those ids (`--tokens`, greedy, `-n N`,
   `--dump-logits`), one process per prompt;
3. run llama.cpp (llama-cpp-python, in this process, `logits_all=True`) on
   the same ids with the same context size, greedy, stopping at the same
   end-of-text ids, twice:
   - on the Q4_K_M file itself (llama.cpp's default F16 K/V cache): what
     llama.cpp normally runs. dittoc runs the f32 dequantization of those
     weights, so small differences are expected here;
   - on an F32 GGUF made from the same file by llama.cpp's own quantizer
     (ALL_F32), with an F32 K/V cache: the same numbers dittoc starts from,
     the apples-to-apples comparison.

Reported per prompt and reference: identical leading generated tokens,
whether the whole continuation is identical, and over the logits of every
prompt position the maximum relative error (max |dittoc - ref| / max |ref|,
per position, the worst position) and the top-1 agreement. llama.cpp F32
against llama.cpp Q4_K_M is shown as well: the gap the quantization alone
makes, the yardstick for the dittoc-vs-Q4_K_M column. Where a continuation
diverges, the gap between the reference's two best logits at that step says
how close to a tie it was.

Prints a table; unless --no-record, writes
examples/bench/results/compare-llama-cpp.json and its section of
docs/benchmarks.md. Exits non-zero only on
errors (a failed build, a crash), never because the outputs differ.

    examples/bench/compare_llama_cpp.py [--exe build/qwen2.5-coder-0.5b/model] [-n 64]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

import benchlib
from benchlib import BenchError, log

PROMPTS_DIR = benchlib.BENCH_DIR / "prompts"


def logits_metrics(ours, ref) -> dict:
    """Max relative error (per position: max abs difference over max abs
    reference logit; the worst position) and top-1 agreement of [T, vocab]."""
    import numpy as np

    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    rel = np.abs(ours - ref).max(axis=1) / np.abs(ref).max(axis=1)
    top1 = ours.argmax(axis=1) == ref.argmax(axis=1)
    return {"max_rel_err": float(rel.max()), "mean_rel_err": float(rel.mean()),
            "top1_agree": int(top1.sum()), "positions": int(len(top1))}


def generation_metrics(ours: list[int], ref: list[int], ref_margins: list[float]) -> dict:
    """Identical leading tokens, whether all are identical, and where they
    differ the reference's top-2 logit gap at the first differing step."""
    same = 0
    for a, b in zip(ours, ref):
        if a != b:
            break
        same += 1
    identical = ours == ref
    gap = None
    if not identical and same < len(ref_margins):
        gap = ref_margins[same]
    return {"leading_identical": same, "identical": identical,
            "ours_len": len(ours), "ref_len": len(ref), "ref_top2_gap_at_divergence": gap}


def run(args) -> dict:
    import numpy as np
    import llama_cpp_run

    commit = benchlib.git_head()
    gguf = benchlib.fetch_gguf()
    exe = benchlib.ensure_dittoc_exe(args.exe, gguf, args.rebuild)
    f32 = benchlib.ensure_f32_gguf(gguf)
    _, tok_config = benchlib.read_payload(exe)
    eos = set(tok_config["eos_token_ids"])
    add_bos = bool(tok_config.get("add_bos_token"))

    prompts = sorted(PROMPTS_DIR.glob("*.txt"))
    if not prompts:
        raise BenchError(f"no prompts in {PROMPTS_DIR}")
    vocab = llama_cpp_run.llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    cases = [{"name": p.stem, "text": p.read_text(),
              "ids": vocab.tokenize(p.read_bytes(), add_bos=add_bos, special=False)} for p in prompts]

    def text(ids: list[int]) -> str:
        return vocab.detokenize(ids).decode("utf-8", "replace")

    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            log(f"dittoc: {case['name']} ({len(case['ids'])} prompt tokens)")
            npy = Path(tmp) / f"{case['name']}.npy"
            r = benchlib.run_dittoc(exe, case["ids"], args.n, args.threads, args.ctx, dump_logits=npy)
            case["dittoc"] = {"ids": r.ids, "text": text(r.ids)}
            case["dittoc_logits"] = np.load(npy)

    refs = {"llama.cpp Q4_K_M": (gguf, "f16"), "llama.cpp F32": (f32, "f32")}
    for ref, (path, kv) in refs.items():
        log(f"{ref}: loading {path.name} (K/V {kv})")
        llm = llama_cpp_run.load(str(path), args.threads, args.ctx, kv, logits_all=True)
        for case in cases:
            g = llama_cpp_run.greedy(llm, case["ids"], args.n, eos, track_margins=True)
            case[ref] = {"ids": g["ids"], "text": text(g["ids"]), "margins": g["margins"],
                         "logits": g["prompt_logits"]}
        del llm

    pairs = [("dittoc", "llama.cpp F32"), ("dittoc", "llama.cpp Q4_K_M"),
             ("llama.cpp F32", "llama.cpp Q4_K_M")]
    results = []
    for case in cases:
        logits = {"dittoc": case["dittoc_logits"], **{ref: case[ref]["logits"] for ref in refs}}
        entry = {"prompt": case["name"], "text": case["text"], "ids": case["ids"],
                 "outputs": {k: {"ids": case[k]["ids"], "text": case[k]["text"]} for k in ("dittoc", *refs)},
                 "comparisons": {}}
        for ours, ref in pairs:
            entry["comparisons"][f"{ours} vs {ref}"] = {
                **generation_metrics(case[ours]["ids"], case[ref]["ids"], case[ref]["margins"]),
                **logits_metrics(logits[ours], logits[ref]),
            }
        results.append(entry)

    return {
        "commit": commit,
        "exe_built": benchlib.mtime(exe),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": benchlib.machine_info(),
        "command": " ".join(shlex.quote(a) for a in sys.argv),
        "settings": {"n": args.n, "ctx": args.ctx, "threads": args.threads,
                     "eos_ids": sorted(eos), "add_bos": add_bos,
                     "kv_cache": {"dittoc": "f32", "llama.cpp Q4_K_M": "f16", "llama.cpp F32": "f32"}},
        "files": {"dittoc_exe": benchlib.relpath(exe), "gguf_q4_k_m": benchlib.relpath(gguf),
                  "gguf_f32": benchlib.relpath(f32)},
        "pairs": [f"{a} vs {b}" for a, b in pairs],
        "prompts": results,
    }


def table(data: dict) -> str:
    """The per-prompt agreement as a Markdown table."""
    head = ("| prompt | tokens | compared | identical leading tokens | whole continuation | "
            "ref top-2 gap at divergence | logits max rel err | top-1 agreement |")
    lines = [head, "|" + "---|" * 8]
    for p in data["prompts"]:
        for pair in data["pairs"]:
            c = p["comparisons"][pair]
            gap = c["ref_top2_gap_at_divergence"]
            lines.append(
                f"| {p['prompt']} | {len(p['ids'])} | {pair} | "
                f"{c['leading_identical']} of {c['ref_len']} | {'identical' if c['identical'] else 'differs'} | "
                f"{'—' if gap is None else f'{gap:.3f}'} | {c['max_rel_err']:.2e} | "
                f"{c['top1_agree']}/{c['positions']} |")
    return "\n".join(lines)


def summary(data: dict) -> str:
    """One line per compared pair, over all prompts."""
    lines = []
    for pair in data["pairs"]:
        cs = [p["comparisons"][pair] for p in data["prompts"]]
        lines.append(
            f"- **{pair}**: {sum(c['identical'] for c in cs)} of {len(cs)} continuations identical; "
            f"{sum(c['leading_identical'] for c in cs)} of {sum(c['ref_len'] for c in cs)} generated tokens "
            f"in identical prefixes; prompt logits max rel err {max(c['max_rel_err'] for c in cs):.2e}, "
            f"top-1 {sum(c['top1_agree'] for c in cs)}/{sum(c['positions'] for c in cs)}")
    return "\n".join(lines)


def texts(data: dict) -> str:
    """The prompts and the three continuations, in collapsible blocks."""
    out = []
    for p in data["prompts"]:
        out.append(f"<details><summary>{p['prompt']}</summary>\n")
        out.append("Prompt:\n\n```\n" + p["text"].rstrip("\n") + "\n```\n")
        for name, o in p["outputs"].items():
            out.append(f"{name}:\n\n```\n" + o["text"].rstrip("\n") + "\n```\n")
        out.append("</details>\n")
    return "\n".join(out)


def markdown(data: dict) -> str:
    s = data["settings"]
    return f"""## dittoc f32 vs llama.cpp: greedy outputs and logits

Qwen2.5-Coder-0.5B-Instruct from the Q4_K_M GGUF: dittoc runs its f32
dequantization; llama.cpp runs the Q4_K_M file as is and an F32 GGUF made from
it by llama.cpp's own quantizer (the apples-to-apples reference). Same token
ids (llama.cpp's tokenizer), greedy, {s['n']} new tokens at most, stop at ids
{s['eos_ids']}, context {s['ctx']}, {s['threads']} threads. K/V caches: dittoc f32,
llama.cpp F32 f32, llama.cpp Q4_K_M f16 (its default). "logits max rel err" is,
per prompt position, max |a − b| / max |b| over the vocabulary, worst position;
"top-1 agreement" counts prompt positions whose argmax matches.

- Commit: `{data['commit']}` (HEAD when the run started; executable built {data['exe_built']}), {data['date']}
- Machine: {benchlib.machine_line(data['machine'])}
- Command: `{data['command']}`
- Raw results: `examples/bench/results/compare-llama-cpp.json`

{summary(data)}

{table(data)}

{texts(data)}"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exe", type=Path, default=benchlib.DEFAULT_EXE,
                    help="dittoc executable of the model (built from the GGUF if missing; "
                         f"default {benchlib.relpath(benchlib.DEFAULT_EXE)})")
    ap.add_argument("--rebuild", action="store_true",
                    help="import and compile --exe again with target/release/dittoc first")
    ap.add_argument("-n", type=int, default=64, help="tokens to generate per prompt (default 64)")
    ap.add_argument("--ctx", type=int, default=512, help="context size of both systems (default 512)")
    ap.add_argument("--threads", type=int, default=2, help="threads of both systems (default 2)")
    ap.add_argument("--no-record", action="store_true",
                    help="only print: write neither examples/bench/results/*.json nor docs/benchmarks.md")
    args = ap.parse_args()
    try:
        benchlib.ensure_llama_cpp_venv()
        data = run(args)
    except BenchError as e:
        print(f"compare_llama_cpp: error: {e}", file=sys.stderr)
        return 1
    print(summary(data))
    print()
    print(table(data))
    if not args.no_record:
        path = benchlib.write_json("compare-llama-cpp.json", data)
        benchlib.update_benchmarks_md("compare_llama_cpp", markdown(data))
        log(f"wrote {benchlib.relpath(path)} and its section of {benchlib.relpath(benchlib.BENCHMARKS_MD)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
