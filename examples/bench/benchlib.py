"""Shared plumbing for the benchmarks that put dittoc beside llama.cpp.

The scripts in this folder (`compare_llama_cpp.py`, `bench_f32.py`) run under
the virtualenv made by `setup-llama-cpp.sh`, which holds llama-cpp-python and
numpy; `ensure_llama_cpp_venv()` re-executes a script there when it was
started with another interpreter. Everything else here is the plumbing both
need:

- the model files: the Q4_K_M GGUF (fetched by `examples/fetch-model.sh`),
  llama.cpp's own F32 GGUF made from it, the dittoc executable compiled from
  it (imported and compiled with `target/release/dittoc` when missing);
- running a child process and reading its own peak RSS (`os.wait4`);
- running the dittoc executable on token ids and parsing its timing lines;
- the payload manifest appended to a dittoc executable (docs/contracts.md §2);
- facts about the machine and the checkout for the reports;
- replacing one generated section of `docs/benchmarks.md`.
"""

from __future__ import annotations

import json
import os
import platform
import re
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parents[1]
DITTOC = REPO / "target" / "release" / "dittoc"
DEFAULT_EXE = REPO / "build" / "qwen2.5-coder-0.5b" / "model"
RESULTS_DIR = BENCH_DIR / "results"
BENCHMARKS_MD = REPO / "docs" / "benchmarks.md"


class BenchError(RuntimeError):
    """A failure that ends a benchmark with a message (no traceback)."""


def log(msg: str) -> None:
    """Progress to stderr (stdout is left to the result tables)."""
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# --- environment ------------------------------------------------------------


def ensure_llama_cpp_venv() -> None:
    """Re-execute the running script under the llama.cpp venv if needed.

    `import llama_cpp` working means we are already there. Otherwise
    `setup-llama-cpp.sh` builds (or finds) the venv and prints its python,
    and the script starts again under it with the same arguments.
    """
    try:
        import llama_cpp  # noqa: F401
        import numpy  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("DITTO_BENCH_REEXEC"):
        raise BenchError(f"{sys.executable} still cannot import llama_cpp and numpy")
    log("llama_cpp is not importable here; running setup-llama-cpp.sh")
    proc = subprocess.run([str(BENCH_DIR / "setup-llama-cpp.sh")], stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise BenchError("setup-llama-cpp.sh failed (see above)")
    python = proc.stdout.strip().splitlines()[-1]
    os.environ["DITTO_BENCH_REEXEC"] = "1"
    os.execv(python, [python, sys.argv[0], *sys.argv[1:]])


def fetch_gguf() -> Path:
    """The sha256-verified Q4_K_M GGUF of Qwen2.5-Coder-0.5B-Instruct."""
    proc = subprocess.run([str(REPO / "examples" / "fetch-model.sh"), "qwen2.5-coder-0.5b"],
                          stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise BenchError("examples/fetch-model.sh failed (see above)")
    return Path(proc.stdout.strip().splitlines()[-1])


def ensure_dittoc_exe(exe: Path, gguf: Path, rebuild: bool = False) -> Path:
    """The dittoc executable at `exe`; imported and compiled (-O3) with
    target/release/dittoc if missing or if `rebuild` is set."""
    if exe.exists() and not rebuild:
        return exe
    if not DITTOC.exists():
        raise BenchError(f"no {DITTOC} to build {exe} with (cargo build --release)")
    exe.parent.mkdir(parents=True, exist_ok=True)
    mlir = exe.with_suffix(".mlir")
    for cmd in ([str(DITTOC), "import", str(gguf), "-o", str(mlir)],
                [str(DITTOC), str(mlir), "-O3", "-o", str(exe)]):
        log("$ " + " ".join(cmd))
        if subprocess.run(cmd).returncode != 0:
            raise BenchError(f"command failed: {' '.join(cmd)}")
    return exe


def ensure_f32_gguf(src: Path) -> Path:
    """llama.cpp's F32 GGUF of `src`, made by llama.cpp's own quantizer.

    `llama_model_quantize` with ftype ALL_F32, `allow_requantize` (the source
    tensors are quantized) and `pure` (every tensor to F32, no per-tensor
    exceptions) dequantizes each tensor with ggml's dequantizers and writes
    it as F32. The result is cached next to the source file.
    """
    import llama_cpp

    dst = src.with_name(src.name.replace(".gguf", "") + ".llama-cpp-f32.gguf")
    if dst.exists():
        return dst
    log(f"making {dst.name} with llama_model_quantize (ALL_F32)")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_ALL_F32
    params.allow_requantize = True
    params.pure = True
    params.nthread = os.cpu_count() or 1
    tmp = dst.with_name(dst.name + ".partial")
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), params)
    if rc != 0:
        tmp.unlink(missing_ok=True)
        raise BenchError(f"llama_model_quantize {src} -> F32 failed with code {rc}")
    tmp.rename(dst)
    return dst


# --- child processes ----------------------------------------------------------


def cpu_busy_seconds() -> float:
    """CPU time the whole machine has spent busy since boot (all CPUs; user,
    nice, system, irq, softirq from /proc/stat; idle, iowait, steal not)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(threshold: float, timeout_s: float) -> float:
    """Wait until the rest of the machine uses less than `threshold` CPUs
    (sampled over one second; this process sleeps meanwhile). Returns the
    seconds waited; raises BenchError after `timeout_s`."""
    start = time.monotonic()
    last_log = start
    while True:
        before = cpu_busy_seconds()
        time.sleep(1.0)
        busy = cpu_busy_seconds() - before
        waited = time.monotonic() - start
        if busy < threshold:
            return waited
        if waited > timeout_s:
            raise BenchError(f"the machine stayed busy (other processes use {busy:.2f} CPUs) "
                             f"for {waited:.0f} s; run the benchmark when it is idle")
        if time.monotonic() - last_log > 60 or waited < 1.5:
            log(f"other processes use {busy:.2f} CPUs; waiting for the machine to be quiet")
            last_log = time.monotonic()
        time.sleep(4.0)


@dataclass
class Child:
    """A finished child process, its output, its own peak RSS, and the CPU
    time the rest of the machine used while it ran."""

    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    maxrss_bytes: int
    other_cpu_s: float

    @property
    def contention(self) -> float:
        """CPUs used by other processes during the run, on average."""
        return self.other_cpu_s / self.wall_s if self.wall_s > 0 else 0.0


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> Child:
    """Run `cmd` (with `env` added to the environment), wait for exactly that
    child with `os.wait4` and return its output, peak resident set size
    (ru_maxrss, KiB on Linux) and the machine's busy CPU time during the run
    minus the child's own (user + system of all its threads)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        busy = cpu_busy_seconds()
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        other = cpu_busy_seconds() - busy - usage.ru_utime - usage.ru_stime
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Child(proc.returncode, out.read().decode("utf-8", "replace"),
                     err.read().decode("utf-8", "replace"), wall, usage.ru_maxrss * 1024, max(other, 0.0))


def check_child(child: Child, cmd: list[str]) -> Child:
    """`child`, or a BenchError quoting its stderr when it failed."""
    if child.returncode != 0:
        tail = "\n".join(child.stderr.strip().splitlines()[-15:])
        raise BenchError(f"exit code {child.returncode}: {' '.join(cmd)[:300]}\n{tail}")
    return child


# --- the dittoc executable ----------------------------------------------------

_STATS = re.compile(r"^(prefill|decode): (\d+) tokens in ([0-9.]+) s", re.M)


@dataclass
class DittocRun:
    """One run of a dittoc executable on token ids."""

    ids: list[int]  # generated ids (empty unless n > 0)
    prefill_tokens: int
    prefill_s: float
    decode_tokens: int
    decode_s: float
    maxrss_bytes: int
    contention: float  # CPUs used by other processes during the run


def run_dittoc(exe: Path, ids: list[int], n: int, threads: int, ctx: int,
               dump_logits: Path | None = None, env: dict[str, str] | None = None) -> DittocRun:
    """Feed `ids` (`--tokens`) to the executable, generate `n` tokens greedily.

    The timings are the executable's own stderr lines: `prefill` is the
    prompt (and the LM head of its last row), `decode` is its generation loop
    (sample, `ditto_decode`) over the n-1 tokens after the first.
    """
    cmd = [str(exe), "--tokens", ",".join(map(str, ids)), "-n", str(n), "--temp", "0",
           "--threads", str(threads), "--ctx", str(ctx), "--ids"]
    if dump_logits is not None:
        cmd += ["--dump-logits", str(dump_logits)]
    child = check_child(run_child(cmd, env), cmd)
    stats = {kind: (int(tok), float(sec)) for kind, tok, sec in _STATS.findall(child.stderr)}
    if "prefill" not in stats:
        raise BenchError(f"no 'prefill:' line in the stderr of {exe}:\n{child.stderr[-2000:]}")
    out = child.stdout.split()
    return DittocRun(
        ids=[int(t) for t in out],
        prefill_tokens=stats["prefill"][0],
        prefill_s=stats["prefill"][1],
        decode_tokens=stats.get("decode", (0, 0.0))[0],
        decode_s=stats.get("decode", (0, 0.0))[1],
        maxrss_bytes=child.maxrss_bytes,
        contention=child.contention,
    )


def blis_subconfig(exe: Path, env: dict[str, str] | None = None) -> str:
    """The BLIS sub-configuration (kernel set) the executable's bundled BLIS
    selects on this CPU at run time, from its BLIS_ARCH_DEBUG message."""
    cmd = [str(exe), "--tokens", "0", "-n", "1", "--threads", "1", "--ctx", "16", "--ids"]
    child = check_child(run_child(cmd, {"BLIS_ARCH_DEBUG": "1", **(env or {})}), cmd)
    found = re.search(r"selecting sub-configuration '([^']+)'", child.stderr)
    return found.group(1) if found else "unknown (no BLIS_ARCH_DEBUG message)"


def read_payload(exe: Path) -> tuple[dict, dict]:
    """(manifest, tokenizer_config) of a dittoc executable's appended payload."""
    with open(exe, "rb") as f:
        f.seek(-16, os.SEEK_END)
        trailer = f.read(16)
        if trailer[8:] != b"DITTOPAY":
            raise BenchError(f"{exe} has no dittoc payload trailer")
        (length,) = struct.unpack("<Q", trailer[:8])
        f.seek(-16 - length, os.SEEK_END)
        manifest = json.loads(f.read(length))
        section = manifest["sections"]["tokenizer_config"]
        f.seek(section["offset"])
        tok_config = json.loads(f.read(section["len"]))
    return manifest, tok_config


def safetensors_sizes(path: Path) -> dict[str, int]:
    """Byte size of every tensor in a safetensors file (read from its header)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    return {name: t["data_offsets"][1] - t["data_offsets"][0]
            for name, t in header.items() if name != "__metadata__"}


# --- reports ------------------------------------------------------------------


def machine_info() -> dict:
    """CPU model, core count, memory and kernel of this machine."""
    lscpu = subprocess.run(["lscpu"], stdout=subprocess.PIPE, text=True).stdout
    fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    flags = fields.get("Flags", "").split()
    return {
        "cpu": fields.get("Model name", platform.processor()),
        "cpus": int(fields.get("CPU(s)", os.cpu_count() or 0)),
        "threads_per_core": fields.get("Thread(s) per core"),
        "l2": fields.get("L2 cache"),
        "l3": fields.get("L3 cache"),
        "simd": [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni") if f in flags],
        "hypervisor": fields.get("Hypervisor vendor"),
        "mem_total_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
    }


def machine_line(m: dict) -> str:
    """One Markdown line describing the machine."""
    return (f"{m['cpu']}, {m['cpus']} CPUs ({m['threads_per_core']} thread/core), "
            f"L2 {m['l2']}, L3 {m['l3']}, {m['mem_total_gib']} GiB RAM, "
            f"SIMD {' '.join(m['simd'])}, hypervisor {m['hypervisor'] or 'none'}, Linux {m['kernel']}")


def git_head() -> str:
    """Short hash of the checked-out commit."""
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                          stdout=subprocess.PIPE, text=True).stdout.strip()
    return head or "unknown"


def mtime(path: Path) -> str:
    """Modification time of `path`, UTC, to the second."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(path.stat().st_mtime))


def write_json(name: str, data: dict) -> Path:
    """Write `data` as examples/bench/results/<name> (indented, but lists of
    numbers on one line each); returns the path."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / name
    text = json.dumps(data, indent=2)
    text = re.sub(r"\[\s+([-+0-9.eE,\s]+?)\s+\]", lambda m: "[" + ", ".join(m.group(1).split()).replace(",,", ",") + "]", text)
    path.write_text(text + "\n")
    return path


def update_benchmarks_md(key: str, section: str) -> None:
    """Replace (or append) the section between the `key` markers in
    docs/benchmarks.md; other sections stay as they are."""
    begin, end = f"<!-- BEGIN {key} (generated) -->", f"<!-- END {key} -->"
    block = f"{begin}\n{section.rstrip()}\n{end}\n"
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else (
        "# Benchmarks\n\nEvery section below is written by the script it names, "
        "from numbers measured in that run.\n\n")
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    BENCHMARKS_MD.write_text(text)


def relpath(p: Path) -> str:
    """`p` relative to the repository when inside it, else with ~ for $HOME."""
    try:
        return str(p.resolve().relative_to(REPO))
    except ValueError:
        return str(p).replace(str(Path.home()), "~", 1)
