"""f32 speed and memory: the dittoc executable beside llama.cpp F32, one run.

Both systems run the same f32 numbers: dittoc the f32 dequantization of the
Qwen2.5-Coder-0.5B-Instruct Q4_K_M GGUF it imported, llama.cpp an F32 GGUF
made from the same file by its own quantizer (ALL_F32; cached next to the
source GGUF), with an F32 K/V cache like dittoc's. Measured here:

- decode tok/s: the same short prompt's token ids (llama.cpp's tokenizer),
  N (64) tokens generated greedily, so N-1 decode steps, at each thread count;
- prefill tok/s: the first P (128) token ids of examples/bench/prefill-prompt.txt;
- peak RSS of every run (each run is its own process; `os.wait4` gives that
  child's ru_maxrss), and for llama.cpp the interpreter's own RSS beside it;
- file sizes;
- streaming read bandwidth (readbw.c, compiled here with cc) at each thread
  count over a buffer the size of the f32 weights read per token, and the
  ceiling bandwidth / bytes per token. Bytes per token = every layer tensor,
  the final norm and the LM head (the embedding table is only gathered),
  summed from the safetensors header of the model.weights sidecar beside
  the executable;
- which BLIS sub-configuration (kernel set) the executable's BLIS picks on
  this CPU (its BLIS_ARCH_DEBUG message);
- optionally (`--dittoc-env NAME=VALUE`) the same executable with an extra
  environment, e.g. BLIS_ARCH_TYPE to force a BLIS kernel set: a diagnostic
  column measured in the same interleaved runs.

Timing, the same span for both: each system's own clock around its greedy
loop, load and prefill excluded — the executable's `decode:` stderr line
(its loop: argmax, `ditto_decode`) and, for llama.cpp, `time.perf_counter`
around the identical loop in llama_cpp_run.py (argmax, `Llama.eval` of one
token). llama.cpp's internal perf counters (time inside llama_decode) are
recorded too, as a check that the Python around it costs little. Prefill
likewise: the `prefill:` line vs. the timed prompt `Llama.eval`.

The machine may be shared (other people's builds and tests): every timed
run starts only when the rest of the machine is quiet (under 0.1 CPUs busy
over a second, from /proc/stat), and a run during which other processes
used more than that (the machine's busy time minus the child's own CPU
time) is repeated; the report says how many were.

Runs are interleaved — each round, per thread count: the bandwidth probe,
then decode and prefill of dittoc, llama.cpp (and the variant) in turn — so
machine drift hits all alike; one untimed warm-up run of each system first
(page cache, and a check that no run stops early at end of text).
Reported: median and min–max over the runs, ratios dittoc / llama.cpp of the
medians. Unless --no-record, writes examples/bench/results/bench-f32.json
and its section of docs/benchmarks.md. Also checks that dittoc's peak
RSS stays within its weight section + K/V cache + a small constant (the
weights are mmapped from the executable, not copied).

    examples/bench/bench_f32.py [--quick] [--runs 5] [--exe build/qwen2.5-coder-0.5b/model]
                                [--dittoc-env BLIS_ARCH_TYPE=6]
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

import benchlib
from benchlib import BenchError, ReadBandwidth, log, spread

SHORT_PROMPT = benchlib.BENCH_DIR / "prompts" / "1-function-header.txt"
PREFILL_PROMPT = benchlib.BENCH_DIR / "prefill-prompt.txt"
LLAMA_RUNNER = benchlib.BENCH_DIR / "llama_cpp_run.py"
MIB = 2**20
# Allowance over weights + K/V for dittoc's own heap (tokenizer, buffers,
# BLIS packing) and the mapped code of the executable.
RSS_SLACK = 128 * MIB
# Timed passes of the bandwidth probe per round and thread count.
BW_PASSES = 3
# The machine may be shared: before each timed run wait until other
# processes use less than CONTENTION CPUs, and repeat a run during which
# they used more (at most MAX_ATTEMPTS times; QUIET_TIMEOUT_S of waiting).
CONTENTION = 0.1
MAX_ATTEMPTS = 5
QUIET_TIMEOUT_S = 1800


def bytes_per_token(weights: Path) -> tuple[int, int]:
    """(bytes of f32 weights read per decoded token, bytes of the embedding
    table) from the sidecar's safetensors header."""
    if not weights.exists():
        raise BenchError(f"{weights} (the model.weights sidecar beside the executable) is missing; "
                         "it gives the tensor sizes for the bandwidth ceiling")
    sizes = benchlib.safetensors_sizes(weights)
    embd = sizes["token_embd.weight"]
    head = sizes.get("output.weight", embd)
    body = sum(v for k, v in sizes.items() if k.startswith("blk.")) + sizes["output_norm.weight"]
    return body + head, embd


class Systems:
    """The systems measured, behind one interface: `run(name, ids, n,
    threads)` → generated ids, (tokens, seconds) of prefill and decode, peak
    RSS. "dittoc" and "llama.cpp F32" always; with `variant_env`, also the
    same dittoc executable with that environment (a diagnostic)."""

    DITTOC, LLAMA = "dittoc", "llama.cpp F32"

    def __init__(self, exe: Path, f32: Path, ctx: int, eos: list[int], variant_env: dict[str, str]):
        self.exe, self.f32, self.ctx, self.eos = exe, f32, ctx, eos
        self.variant_env = variant_env
        self.variant = ("dittoc, " + " ".join(f"{k}={v}" for k, v in variant_env.items())) if variant_env else None
        self.names = [self.DITTOC, self.LLAMA] + ([self.variant] if self.variant else [])

    def run(self, name: str, ids: list[int], n: int, threads: int) -> dict:
        if name == self.LLAMA:
            return self._llama(ids, n, threads)
        env = self.variant_env if name == self.variant else None
        r = benchlib.run_dittoc(self.exe, ids, n, threads, self.ctx, env=env)
        return {"ids": r.ids, "prefill": (r.prefill_tokens, r.prefill_s),
                "decode": (r.decode_tokens, r.decode_s), "rss": r.maxrss_bytes,
                "contention": r.contention}

    def _llama(self, ids: list[int], n: int, threads: int) -> dict:
        cmd = [sys.executable, str(LLAMA_RUNNER), "--model", str(self.f32),
               "--tokens", ",".join(map(str, ids)), "-n", str(n), "--threads", str(threads),
               "--ctx", str(self.ctx), "--kv", "f32", "--eos", ",".join(map(str, self.eos))]
        child = benchlib.check_child(benchlib.run_child(cmd), cmd)
        r = json.loads(child.stdout)
        p = r["perf"]
        return {"ids": r["ids"], "prefill": (r["prefill_tokens"], r["prefill_s"]),
                "decode": (r["decode_tokens"], r["decode_s"]), "rss": child.maxrss_bytes,
                "contention": child.contention,
                "perf_prefill": (p["n_p_eval"], p["t_p_eval_ms"] / 1e3),
                "perf_decode": (p["n_eval"], p["t_eval_ms"] / 1e3),
                "model_size_bytes": r["model_size_bytes"], "n_params": r["n_params"]}


def measure(sysm: Systems, probe: ReadBandwidth, args, short_ids: list[int], long_ids: list[int]) -> dict:
    """The interleaved rounds: per round and thread count, the bandwidth
    probe, then decode and prefill of every system in turn."""
    m: dict = {"samples": {}, "rss": {}, "perf": {}, "gbps": {}, "llama_info": {}}
    # samples / rss: (system, threads, kind) -> tok/s / peak RSS of each run;
    # perf: (threads, kind) -> llama.cpp tok/s by its own counters.
    quiet = benchlib.QuietRunner(CONTENTION, MAX_ATTEMPTS, QUIET_TIMEOUT_S)
    uncontended = quiet.run

    for r in range(args.runs):
        for t in args.threads:
            bw = uncontended(f"read bandwidth, {t} thread(s)", probe.measure, t)
            m["gbps"].setdefault(t, []).extend(bw["gbps"])
            log(f"run {r + 1}/{args.runs}, {t} thread(s), read bandwidth {statistics.median(bw['gbps']):.1f} GB/s")
            for kind, ids, n in (("decode", short_ids, args.n), ("prefill", long_ids, 1)):
                for name in sysm.names:
                    res = uncontended(f"{name} {kind}, {t} thread(s)", sysm.run, name, ids, n, t)
                    tokens, secs = res[kind]
                    expect = args.n - 1 if kind == "decode" else len(ids)
                    if tokens != expect:
                        raise BenchError(f"{name} {kind} ran {tokens} tokens, expected {expect}")
                    m["samples"].setdefault((name, t, kind), []).append(tokens / secs)
                    m["rss"].setdefault((name, t, kind), []).append(res["rss"])
                    if name == sysm.LLAMA:
                        n_tok, s = res[f"perf_{kind}"]
                        m["perf"].setdefault((t, kind), []).append(n_tok / s)
                        m["llama_info"] = {"model_size_bytes": res["model_size_bytes"], "n_params": res["n_params"]}
                    log(f"run {r + 1}/{args.runs}, {t} thread(s), {kind}, {name}: {tokens / secs:.2f} tok/s, "
                        f"peak RSS {res['rss'] / MIB:.0f} MiB")
    m["contention"] = {k: v for k, v in quiet.summary().items() if k != "threshold_cpus"}
    return m


def run(args) -> dict:
    import llama_cpp

    commit = benchlib.git_head()
    gguf = benchlib.fetch_gguf()
    exe = benchlib.ensure_dittoc_exe(args.exe, gguf, args.rebuild)
    f32 = benchlib.ensure_f32_gguf(gguf)
    manifest, tok_config = benchlib.read_payload(exe)
    model = manifest["model"]
    eos = list(tok_config["eos_token_ids"])
    per_token, embd_bytes = bytes_per_token(exe.with_suffix(".weights"))
    weights_len = manifest["sections"]["weights"]["len"]
    kv_bytes = 2 * model["n_layers"] * args.ctx * model["n_kv_heads"] * model["head_dim"] * 4

    vocab = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    add_bos = bool(tok_config.get("add_bos_token"))
    short_ids = vocab.tokenize(SHORT_PROMPT.read_bytes(), add_bos=add_bos, special=False)
    long_ids = vocab.tokenize(PREFILL_PROMPT.read_bytes(), add_bos=add_bos, special=False)
    if len(long_ids) < args.prefill_tokens:
        raise BenchError(f"{PREFILL_PROMPT} has only {len(long_ids)} tokens, need {args.prefill_tokens}")
    long_ids = long_ids[: args.prefill_tokens]
    if len(long_ids) + args.n > args.ctx or len(short_ids) + args.n > args.ctx:
        raise BenchError(f"--ctx {args.ctx} is too small for the prompts and -n {args.n}")

    sysm = Systems(exe, f32, args.ctx, eos, args.variant_env)
    blis = {name: benchlib.blis_subconfig(exe, sysm.variant_env if name == sysm.variant else None)
            for name in sysm.names if name != sysm.LLAMA}
    log(f"BLIS sub-configuration selected at run time: {blis}")
    threads = args.threads
    log("warm-up: one untimed run of each system (page cache, greedy lengths)")
    warm = {name: sysm.run(name, short_ids, args.n, max(threads)) for name in sysm.names}
    for name, w in warm.items():
        if w["decode"][0] != args.n - 1:
            raise BenchError(f"{name} decoded {w['decode'][0]} tokens, not {args.n - 1} "
                             f"(end of text reached early?): choose another prompt or -n")
    same_ids = warm[sysm.DITTOC]["ids"] == warm[sysm.LLAMA]["ids"]

    baseline_cmd = [sys.executable, str(LLAMA_RUNNER), "--baseline"]
    baseline_rss = benchlib.check_child(benchlib.run_child(baseline_cmd), baseline_cmd).maxrss_bytes

    with ReadBandwidth(per_token, BW_PASSES) as probe:
        m = measure(sysm, probe, args, short_ids, long_ids)
    samples, rss, perf = m["samples"], m["rss"], m["perf"]
    bandwidth = {t: spread(v) for t, v in m["gbps"].items()}

    rows = []
    for t in threads:
        for kind in ("decode", "prefill"):
            d, l = spread(samples[(sysm.DITTOC, t, kind)]), spread(samples[(sysm.LLAMA, t, kind)])
            row = {"threads": t, "kind": kind, "dittoc": d, "llama_cpp_f32": l,
                   "llama_cpp_f32_internal": spread(perf[(t, kind)]),
                   "ratio": d["median"] / l["median"],
                   "dittoc_peak_rss": max(rss[(sysm.DITTOC, t, kind)]),
                   "llama_cpp_peak_rss": max(rss[(sysm.LLAMA, t, kind)])}
            if sysm.variant:
                v = spread(samples[(sysm.variant, t, kind)])
                row["variant"] = v
                row["variant_ratio"] = v["median"] / l["median"]
            if kind == "decode":
                ceiling = bandwidth[t]["median"] * 1e9 / per_token
                row["ceiling_tok_s"] = ceiling
                row["ceiling_range"] = [bandwidth[t]["min"] * 1e9 / per_token, bandwidth[t]["max"] * 1e9 / per_token]
                row["dittoc_of_ceiling"] = d["median"] / ceiling
                row["llama_cpp_of_ceiling"] = l["median"] / ceiling
            rows.append(row)

    dittoc_rss = max(v for (name, _, _), vs in rss.items() if name != sysm.LLAMA for v in vs)
    rss_bound = weights_len + kv_bytes + RSS_SLACK
    return {
        "commit": commit,
        "exe_built": benchlib.mtime(exe),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": benchlib.machine_info(),
        "command": " ".join(shlex.quote(a) for a in sys.argv),
        "settings": {"runs": args.runs, "n": args.n, "decode_steps": args.n - 1,
                     "prefill_tokens": len(long_ids), "short_prompt_tokens": len(short_ids),
                     "ctx": args.ctx, "threads": threads, "bw_passes": BW_PASSES,
                     "kv_cache": "f32 in both", "llama_cpp_python": llama_cpp.__version__,
                     "variant": sysm.variant},
        "blis_subconfig": blis,
        "files": {
            "dittoc_exe": {"path": benchlib.relpath(exe), "bytes": exe.stat().st_size},
            "dittoc_weights_section": {"bytes": weights_len},
            "gguf_f32": {"path": benchlib.relpath(f32), "bytes": f32.stat().st_size},
            "gguf_q4_k_m": {"path": benchlib.relpath(gguf), "bytes": gguf.stat().st_size},
        },
        "weights": {"bytes_per_token_f32": per_token, "embedding_bytes": embd_bytes, "n_layers": model["n_layers"],
                    "llama_cpp_f32_model_size": m["llama_info"]["model_size_bytes"],
                    "llama_cpp_f32_n_params": m["llama_info"]["n_params"]},
        "bandwidth_gbps": {str(t): v for t, v in bandwidth.items()},
        "bandwidth_bytes": per_token,
        "greedy_ids_identical_in_warmup": same_ids,
        "contention": {**m["contention"], "threshold_cpus": CONTENTION},
        "rows": rows,
        "memory": {"dittoc_peak_rss": dittoc_rss, "kv_cache_bytes": kv_bytes,
                   "bound": rss_bound, "slack": RSS_SLACK, "within_bound": dittoc_rss <= rss_bound,
                   "llama_cpp_python_baseline_rss": baseline_rss},
    }


def fmt_spread(s: dict) -> str:
    return f"{s['median']:.2f} ({s['min']:.2f}–{s['max']:.2f})"


def table(data: dict) -> str:
    """Speed and memory as a Markdown table (with the diagnostic variant's
    columns when there is one)."""
    variant = data["settings"]["variant"]
    extra = f" {variant} | {variant} / llama.cpp |" if variant else ""
    lines = ["| threads | measure | dittoc f32 | llama.cpp F32 | dittoc / llama.cpp |" + extra +
             " llama.cpp (its own counters) | ceiling (bandwidth / bytes per token) |"
             " peak RSS dittoc | peak RSS llama.cpp |",
             "|" + "---|" * (9 + (2 if variant else 0))]
    for r in data["rows"]:
        ceiling = (f"{r['ceiling_tok_s']:.1f} ({r['ceiling_range'][0]:.1f}–{r['ceiling_range'][1]:.1f}) tok/s "
                   f"(dittoc {100 * r['dittoc_of_ceiling']:.0f} %, "
                   f"llama.cpp {100 * r['llama_cpp_of_ceiling']:.0f} %)") if "ceiling_tok_s" in r else "—"
        extra = f" {fmt_spread(r['variant'])} | {r['variant_ratio']:.2f}× |" if variant else ""
        lines.append(
            f"| {r['threads']} | {r['kind']} tok/s | {fmt_spread(r['dittoc'])} | {fmt_spread(r['llama_cpp_f32'])} | "
            f"**{r['ratio']:.2f}×** |{extra} {fmt_spread(r['llama_cpp_f32_internal'])} | {ceiling} | "
            f"{r['dittoc_peak_rss'] / MIB:,.0f} MiB | {r['llama_cpp_peak_rss'] / MIB:,.0f} MiB |")
    return "\n".join(lines)


def facts(data: dict) -> str:
    """Bandwidth, bytes per token, files and the memory check as a list."""
    f, w, m, s, c = data["files"], data["weights"], data["memory"], data["settings"], data["contention"]
    bw = ", ".join(f"{t} thread(s) {fmt_spread(v)} GB/s" for t, v in data["bandwidth_gbps"].items())
    blis = "; ".join(f"{name}: `{cfg}`" for name, cfg in data["blis_subconfig"].items())
    return "\n".join([
        f"- BLIS sub-configuration (kernel set) the executable's BLIS selects on this CPU: {blis}",
        f"- Streaming read bandwidth over {data['bandwidth_bytes'] / 1e9:.2f} GB (readbw.c; median, min–max of "
        f"{s['bw_passes']} passes in each of the {s['runs']} rounds): {bw}",
        f"- f32 bytes read per token: {w['bytes_per_token_f32']:,} ({w['n_layers']} layers + final norm + LM head; "
        f"the {w['embedding_bytes']:,}-byte embedding table is only gathered); llama.cpp's F32 model holds "
        f"{w['llama_cpp_f32_model_size']:,} bytes of tensors ({w['llama_cpp_f32_n_params']:,} parameters)",
        f"- Files: dittoc executable {f['dittoc_exe']['bytes']:,} bytes (weight section "
        f"{f['dittoc_weights_section']['bytes']:,}); llama.cpp F32 GGUF {f['gguf_f32']['bytes']:,}; "
        f"the source Q4_K_M GGUF {f['gguf_q4_k_m']['bytes']:,}",
        f"- dittoc peak RSS {m['dittoc_peak_rss'] / MIB:,.0f} MiB over all runs; bound weight section + "
        f"K/V cache ({m['kv_cache_bytes'] / MIB:.0f} MiB at ctx {s['ctx']}) + {m['slack'] // MIB} MiB = "
        f"{m['bound'] / MIB:,.0f} MiB: **{'holds' if m['within_bound'] else 'EXCEEDED'}**. "
        f"The embedding rows never gathered are never paged in, so RSS stays below the weight section: "
        "the weights are mapped from the executable, not copied",
        f"- llama.cpp's RSS includes the Python interpreter with llama_cpp and numpy imported: "
        f"{m['llama_cpp_python_baseline_rss'] / MIB:.0f} MiB on its own",
        f"- The machine is shared: each timed run started when other processes used under "
        f"{c['threshold_cpus']} CPUs, and a run during which they used more was repeated "
        f"({c['repeated']} repeated, {c['waited_s']:.0f} s waited; at most {c['max_accepted']:.3f} CPUs "
        "of others in any kept run)",
        f"- Greedy ids of dittoc and llama.cpp F32 identical in the warm-up run: "
        f"{'yes' if data['greedy_ids_identical_in_warmup'] else 'no'}",
    ])


def variant_note(data: dict) -> str:
    """What the diagnostic variant column is, and what BLIS picked."""
    s, blis = data["settings"], data["blis_subconfig"]
    note = ""
    if blis.get(Systems.DITTOC) == "generic":
        note += ("The BLIS bundled in the executable does not recognize this CPU and falls back to "
                 "its `generic` sub-configuration: reference kernels, not its x86 ones. ")
    if s["variant"]:
        note += (f"The column \"{s['variant']}\" is the same executable with that environment "
                 f"(BLIS sub-configuration `{blis.get(s['variant'])}`), measured in the same interleaved "
                 "runs: a diagnostic of how much of the gap is the kernel set, not a dittoc setting.")
    return note


def markdown(data: dict) -> str:
    s = data["settings"]
    return f"""## f32 speed and memory: dittoc vs llama.cpp F32

Qwen2.5-Coder-0.5B-Instruct at f32: dittoc's executable (the f32 dequantization
of the Q4_K_M GGUF) and llama.cpp (llama-cpp-python {s['llama_cpp_python']}, built
from source for this CPU) on an F32 GGUF made from the same file by its own
quantizer; F32 K/V caches in both, context {s['ctx']}. Decode: {s['short_prompt_tokens']}
prompt tokens, {s['n']} greedy tokens ({s['decode_steps']} decode steps) per run; prefill:
{s['prefill_tokens']} prompt tokens. Each system timed by its own clock around the same
loop, load and prefill excluded from decode (see `bench_f32.py`); median (min–max)
of {s['runs']} interleaved runs, each run its own process.

- Commit: `{data['commit']}` (HEAD when the run started; executable built {data['exe_built']}), {data['date']}
- Machine: {benchlib.machine_line(data['machine'])}
- Command: `{data['command']}`
- Raw results: `examples/bench/results/bench-f32.json`

{table(data)}

{variant_note(data) or "The BLIS kernel set in use is named below."}

{facts(data)}
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exe", type=Path, default=benchlib.DEFAULT_EXE,
                    help="dittoc executable of the model (built from the GGUF if missing; "
                         f"default {benchlib.relpath(benchlib.DEFAULT_EXE)})")
    ap.add_argument("--rebuild", action="store_true",
                    help="import and compile --exe again with target/release/dittoc first")
    ap.add_argument("--runs", type=int, help="timed runs per system and setting (default 5; 2 with --quick)")
    ap.add_argument("--quick", action="store_true", help="fewer runs and bandwidth passes, to try it out")
    ap.add_argument("-n", type=int, default=64, help="tokens generated per decode run (default 64)")
    ap.add_argument("--prefill-tokens", type=int, default=128, help="prompt tokens of the prefill runs")
    ap.add_argument("--threads", type=lambda s: [int(t) for t in s.split(",")], default=[1, 2],
                    help="thread counts, comma separated (default 1,2)")
    ap.add_argument("--ctx", type=int, default=1024, help="context size of both systems (default 1024)")
    ap.add_argument("--dittoc-env", action="append", default=[], metavar="NAME=VALUE",
                    help="also measure the dittoc executable with this environment variable set, "
                         "interleaved with the others, as a diagnostic column (repeatable: one variant "
                         "with all of them), e.g. BLIS_ARCH_TYPE=6 to force BLIS's zen3 kernels")
    ap.add_argument("--no-record", action="store_true",
                    help="only print: write neither examples/bench/results/*.json nor docs/benchmarks.md")
    args = ap.parse_args()
    if any("=" not in e for e in args.dittoc_env):
        ap.error("--dittoc-env takes NAME=VALUE")
    args.variant_env = dict(e.split("=", 1) for e in args.dittoc_env)
    args.runs = args.runs or (2 if args.quick else 5)
    if args.runs < 1 or args.n < 2:
        ap.error("--runs must be >= 1 and -n >= 2")
    try:
        benchlib.ensure_llama_cpp_venv()
        data = run(args)
    except BenchError as e:
        print(f"bench_f32: error: {e}", file=sys.stderr)
        return 1
    print(table(data))
    print()
    print(facts(data))
    if not args.no_record:
        path = benchlib.write_json("bench-f32.json", data)
        benchlib.update_benchmarks_md("bench_f32", markdown(data))
        log(f"wrote {benchlib.relpath(path)} and its section of {benchlib.relpath(benchlib.BENCHMARKS_MD)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
