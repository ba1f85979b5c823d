"""Shared plumbing for the benchmarks that put dittoc beside llama.cpp.

The scripts in this folder (`compare_llama_cpp.py`, `bench_f32.py`,
`harness.py`) run under the virtualenv made by `setup-llama-cpp.sh`, which
holds llama-cpp-python, numpy and the harness's pinned extras;
`ensure_llama_cpp_venv()` re-executes a script there when it was started
with another interpreter. Everything else here is the plumbing they share:

- the model files: the Q4_K_M GGUF (fetched by `examples/fetch-model.sh`),
  llama.cpp's own quantizations of it (F32 and the others), the dittoc
  executable compiled from it (imported and compiled with
  `target/release/dittoc` when missing);
- running a child process and reading its own peak RSS (through the small
  spawnrss.c helper, so that this process's RSS is not counted in it) and
  when its first output arrived; waiting for a quiet machine and repeating
  runs that others contended (`QuietRunner`);
- running the dittoc executable on token ids and parsing its timing lines;
- the payload manifest appended to a dittoc executable (docs/contracts.md §2),
  tensor sizes of a GGUF, bytes read per decoded token, bits per weight;
- the streaming read-bandwidth probe (`ReadBandwidth`, readbw.c);
- facts about the machine and the checkout for the reports;
- replacing one generated section of `docs/benchmarks.md`.

Nothing here imports llama_cpp, numpy or gguf at module level, so the
harness's unit tests can import it in the repository's CI virtualenv.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parents[1]
DITTOC = REPO / "target" / "release" / "dittoc"
DEFAULT_EXE = REPO / "build" / "qwen2.5-coder-0.5b" / "model"
RESULTS_DIR = BENCH_DIR / "results"
BENCHMARKS_MD = REPO / "docs" / "benchmarks.md"
READBW = BENCH_DIR / "readbw.c"


class BenchError(RuntimeError):
    """A failure that ends a benchmark with a message (no traceback)."""


def log(msg: str) -> None:
    """Progress to stderr (stdout is left to the result tables)."""
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# --- environment ------------------------------------------------------------


def cache_dir() -> Path:
    """${DITTO_CACHE:-~/.cache/dittoc}: the venv, the GGUFs, the harness's caches."""
    return Path(os.environ.get("DITTO_CACHE") or Path.home() / ".cache" / "dittoc")


def ensure_llama_cpp_venv(extra_modules: Iterable[str] = ()) -> None:
    """Re-execute the running script under the llama.cpp venv if needed.

    `import llama_cpp` (and numpy, and every module of `extra_modules`)
    working means we are already there. Otherwise `setup-llama-cpp.sh`
    builds (or finds, or completes with its pinned extra packages) the venv
    and prints its python, and the script starts again under it with the
    same arguments.
    """
    import importlib

    modules = ["llama_cpp", "numpy", *extra_modules]
    try:
        for name in modules:
            importlib.import_module(name)
        return
    except ImportError:
        pass
    if os.environ.get("DITTO_BENCH_REEXEC"):
        raise BenchError(f"{sys.executable} still cannot import {', '.join(modules)}")
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
    return ensure_llama_quant(src, "F32")


def llama_quant_path(src: Path, qtype: str) -> Path:
    """Where llama.cpp's `qtype` quantization of `src` is cached: next to it,
    as `<src stem>.llama-cpp-<qtype lower case>.gguf`."""
    return src.with_name(src.name.replace(".gguf", "") + f".llama-cpp-{qtype.lower()}.gguf")


def ensure_llama_quant(src: Path, qtype: str) -> Path:
    """llama.cpp's `qtype` quantization (F32, Q8_0, Q4_0, Q4_K_S, Q3_K_M,
    IQ4_XS, Q2_K, ...: a LLAMA_FTYPE_MOSTLY_* name) of the GGUF `src`, made
    by llama.cpp's own quantizer and cached next to the source.

    `llama_model_quantize` with `allow_requantize` (the source tensors are
    quantized already: each is dequantized with ggml's dequantizers first).
    F32 is `pure` (every tensor F32); the others keep llama.cpp's own
    per-tensor recipe of that type (e.g. a wider type for some tensors),
    which is what its users get. No importance matrix.
    """
    import llama_cpp

    dst = llama_quant_path(src, qtype)
    if dst.exists():
        return dst
    ftype = llama_cpp.LLAMA_FTYPE_ALL_F32 if qtype == "F32" else getattr(
        llama_cpp, f"LLAMA_FTYPE_MOSTLY_{qtype}", None)
    if ftype is None:
        raise BenchError(f"llama.cpp has no quantization type {qtype!r}")
    log(f"making {dst.name} with llama_model_quantize ({qtype})")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    params.pure = qtype == "F32"
    params.nthread = os.cpu_count() or 1
    tmp = dst.with_name(dst.name + ".partial")
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), params)
    if rc != 0:
        tmp.unlink(missing_ok=True)
        raise BenchError(f"llama_model_quantize {src} -> {qtype} failed with code {rc}")
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
    """A finished child process, its output, its own peak RSS, when its first
    output arrived, and the CPU time the rest of the machine used while it
    ran."""

    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    maxrss_bytes: int
    other_cpu_s: float
    first_output_s: float | None = None  # from just before the start to its first byte on stdout

    @property
    def contention(self) -> float:
        """CPUs used by other processes during the run, on average."""
        return self.other_cpu_s / self.wall_s if self.wall_s > 0 else 0.0


def spawn_helper() -> Path:
    """The spawnrss helper (spawnrss.c), compiled with cc once per source
    version into ${DITTO_CACHE}/bench-bin/."""
    source = BENCH_DIR / "spawnrss.c"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    exe = cache_dir() / "bench-bin" / f"spawnrss-{digest}"
    if not exe.exists():
        exe.parent.mkdir(parents=True, exist_ok=True)
        tmp = exe.with_name(f"{exe.name}.{os.getpid()}")
        cmd = ["cc", "-O2", str(source), "-o", str(tmp)]
        try:
            ok = subprocess.run(cmd).returncode == 0
        except FileNotFoundError:
            ok = False
        if not ok:
            raise BenchError(f"compiling {source} failed: {' '.join(cmd)} (a C compiler is needed)")
        tmp.replace(exe)
    return exe


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> Child:
    """Run `cmd` (with `env` added to the environment) and return its output,
    its own peak resident set size, the time from just before its start to
    the first byte it wrote to stdout (read from a pipe as it comes; stderr
    goes to a file, so the child never blocks on it), and the machine's busy
    CPU time during the run minus the child's own (user + system of all its
    threads).

    The command runs as the child of spawnrss (spawnrss.c), which reports its
    ru_maxrss and CPU times: started from this (large) Python process
    directly, a child's ru_maxrss would count this process's resident set too.
    """
    helper = spawn_helper()
    report_r, report_w = os.pipe()
    try:
        with tempfile.TemporaryFile() as err:
            busy = cpu_busy_seconds()
            start = time.perf_counter()
            proc = subprocess.Popen([str(helper), str(report_w), *cmd], stdout=subprocess.PIPE, stderr=err,
                                    env={**os.environ, **(env or {})}, pass_fds=(report_w,))
            os.close(report_w)
            report_w = -1
            chunks: list[bytes] = []
            first = None
            while chunk := os.read(proc.stdout.fileno(), 1 << 16):
                if first is None:
                    first = time.perf_counter() - start
                chunks.append(chunk)
            proc.stdout.close()
            proc.wait()
            wall = time.perf_counter() - start
            after = cpu_busy_seconds()
            with os.fdopen(report_r, "r") as report:
                report_r = -1
                line = report.read().split()
            err.seek(0)
            stderr = err.read().decode("utf-8", "replace")
    finally:
        for fd in (report_r, report_w):
            if fd >= 0:
                os.close(fd)
    if proc.returncode != 0 or len(line) != 4:
        raise BenchError(f"spawnrss failed (exit code {proc.returncode}) running {' '.join(cmd)[:300]}\n{stderr[-2000:]}")
    maxrss_kib, utime, stime, status = int(line[0]), float(line[1]), float(line[2]), int(line[3])
    other = after - busy - utime - stime
    return Child(os.waitstatus_to_exitcode(status), b"".join(chunks).decode("utf-8", "replace"), stderr,
                 wall, maxrss_kib * 1024, max(other, 0.0), first)


def check_child(child: Child, cmd: list[str]) -> Child:
    """`child`, or a BenchError quoting its stderr when it failed."""
    if child.returncode != 0:
        tail = "\n".join(child.stderr.strip().splitlines()[-15:])
        how = f"exit code {child.returncode}"
        if child.returncode < 0:
            import signal

            how = f"killed by {signal.Signals(-child.returncode).name}"
        raise BenchError(f"{how}: {' '.join(cmd)[:300]}\n{tail}")
    return child


@dataclass
class QuietRunner:
    """Runs timed measurements on a machine that may be shared: each starts
    only when the rest of the machine uses less than `threshold` CPUs, and
    one during which other processes used more (the measurement's result
    has a "contention" entry: CPUs others used meanwhile) is repeated, at
    most `max_attempts` times. `threshold` None turns both off (the results
    then say so). `repeated`, `waited_s` and `max_accepted` are for the
    report."""

    threshold: float | None = 0.1
    max_attempts: int = 5
    timeout_s: float = 1800
    repeated: int = 0
    waited_s: float = 0.0
    max_accepted: float = 0.0

    def run(self, what: str, fn: Callable[..., dict], *args) -> dict:
        """`fn(*args)` (a dict with "contention"), uncontended."""
        if self.threshold is None:
            res = fn(*args)
            self.max_accepted = max(self.max_accepted, res["contention"])
            return res
        for _ in range(self.max_attempts):
            self.waited_s += wait_for_quiet(self.threshold, self.timeout_s)
            res = fn(*args)
            if res["contention"] <= self.threshold:
                self.max_accepted = max(self.max_accepted, res["contention"])
                return res
            self.repeated += 1
            log(f"{what}: other processes used {res['contention']:.2f} CPUs meanwhile; repeating it")
        raise BenchError(f"{what}: contended {self.max_attempts} times in a row; "
                         "run the benchmark on an idle machine")

    def summary(self) -> dict:
        """What the report says about contention."""
        return {"repeated": self.repeated, "waited_s": self.waited_s,
                "max_accepted": self.max_accepted, "threshold_cpus": self.threshold}


def spread(xs: list[float]) -> dict:
    """Median, min, max and all values."""
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "values": xs}


class ReadBandwidth:
    """The read-bandwidth probe (readbw.c, compiled with cc on entry): one
    `measure(threads)` per interleaved round, so that it sees the same
    machine drift as the model runs."""

    def __init__(self, nbytes: int, passes: int):
        self.nbytes, self.passes = nbytes, passes

    def __enter__(self) -> "ReadBandwidth":
        self._tmp = tempfile.TemporaryDirectory()
        self.exe = Path(self._tmp.name) / "readbw"
        cmd = ["cc", "-O3", "-march=native", "-pthread", str(READBW), "-o", str(self.exe)]
        if subprocess.run(cmd).returncode != 0:
            raise BenchError(f"compiling {READBW} failed: {' '.join(cmd)}")
        return self

    def __exit__(self, *exc) -> None:
        self._tmp.cleanup()

    def measure(self, threads: int) -> dict:
        """GB/s of each pass but the first (which also faults the TLB in)."""
        cmd = [str(self.exe), str(self.nbytes), str(threads), str(self.passes + 1)]
        child = check_child(run_child(cmd), cmd)
        return {"gbps": json.loads(child.stdout)["gbps"][1:], "contention": child.contention}


# --- the dittoc executable ----------------------------------------------------

_STATS = re.compile(r"^(prefill|decode): (\d+) tokens in ([0-9.]+) s", re.M)


def parse_timings(stderr: str) -> dict[str, tuple[int, float]]:
    """The executable's `prefill: N tokens in X s ...` and `decode: ...`
    stderr lines as {"prefill": (N, X), "decode": (N, X)} (the last of
    each kind; missing kinds are absent)."""
    return {kind: (int(tok), float(sec)) for kind, tok, sec in _STATS.findall(stderr)}


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
    first_output_s: float | None = None  # process start to the first generated id on stdout


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
    stats = parse_timings(child.stderr)
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
        first_output_s=child.first_output_s,
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


# --- sizes: tensors, bytes read per token, bits per weight ----------------------

EMBEDDING = "token_embd.weight"
LM_HEAD = "output.weight"


def manifest_tensor_sizes(manifest: dict) -> dict[str, int]:
    """Bytes of every tensor of a dittoc executable's weight section, from
    its manifest's `weights_index`; the parts of a quantized tensor
    (`NAME#indices`, `NAME#codebooks`, ...) are added up under NAME."""
    sizes: dict[str, int] = {}
    for name, entry in manifest["weights_index"].items():
        base = name.split("#", 1)[0]
        sizes[base] = sizes.get(base, 0) + int(entry["bytes"])
    return sizes


def gguf_tensor_sizes(path: Path) -> tuple[dict[str, int], int]:
    """({tensor name: bytes of its data}, parameter count) of a GGUF file,
    read with gguf-py."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    sizes = {t.name: int(t.n_bytes) for t in reader.tensors}
    return sizes, sum(int(t.n_elements) for t in reader.tensors)


def bytes_per_token(sizes: Mapping[str, int]) -> int:
    """Bytes of weights one decode step reads in full: every tensor but the
    token-embedding table, which is read one row per token, unless the model
    has no separate LM head (`output.weight`): then the embedding table is
    the LM head and is read in full too."""
    if EMBEDDING in sizes and LM_HEAD not in sizes:
        return sum(sizes.values())
    return sum(v for k, v in sizes.items() if k != EMBEDDING)


def lookup_only_bytes(sizes: Mapping[str, int]) -> int:
    """Bytes of the token-embedding table when it is only gathered from (the
    model has its own LM head, `output.weight`); 0 when the embedding is tied
    to the LM head, whose products read it in full."""
    if LM_HEAD not in sizes:
        return 0
    return sizes.get(EMBEDDING, 0)


def bits_per_weight(nbytes: int, params: int) -> float:
    """nbytes·8 / params."""
    if params <= 0:
        raise ValueError(f"parameter count must be positive, not {params}")
    return nbytes * 8 / params


def ratio(value: float | None, reference: float | None) -> float | None:
    """value / reference, or None when either is missing or the reference is 0."""
    if value is None or not reference:
        return None
    return value / reference


def file_digest(path: Path, memo: Path | None = None) -> str:
    """sha256 (hex) of a file's bytes. With `memo` (a JSON file), digests are
    remembered by (path, size, mtime_ns) so a large unchanged file is read
    once."""
    st = path.stat()
    key = f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    known: dict[str, str] = {}
    if memo is not None and memo.exists():
        try:
            known = json.loads(memo.read_text())
        except (OSError, ValueError):
            known = {}
    if key in known:
        return known[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    digest = h.hexdigest()
    if memo is not None:
        known[key] = digest
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_name(memo.name + f".{os.getpid()}")
        tmp.write_text(json.dumps(known, indent=0))
        tmp.replace(memo)
    return digest


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


def write_json(name: str, data: dict, directory: Path = RESULTS_DIR) -> Path:
    """Write `data` as <directory>/<name>, by default
    examples/bench/results/<name> (indented, but lists of numbers on one
    line each); returns the path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    text = json.dumps(data, indent=2)
    text = re.sub(r"\[\s+([-+0-9.eE,\s]+?)\s+\]", lambda m: "[" + ", ".join(m.group(1).split()).replace(",,", ",") + "]", text)
    path.write_text(text + "\n")
    return path


def update_benchmarks_md(key: str, section: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace (or append) the section between the `key` markers in `path`
    (docs/benchmarks.md by default); other sections stay as they are."""
    begin, end = f"<!-- BEGIN {key} (generated) -->", f"<!-- END {key} -->"
    block = f"{begin}\n{section.rstrip()}\n{end}\n"
    text = path.read_text() if path.exists() else (
        "# Benchmarks\n\nEvery section below is written by the script it names, "
        "from numbers measured in that run.\n\n")
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    path.write_text(text)


def relpath(p: Path) -> str:
    """`p` relative to the repository when inside it, else with ~ for $HOME."""
    try:
        return str(p.resolve().relative_to(REPO))
    except ValueError:
        return str(p).replace(str(Path.home()), "~", 1)
