"""The systems the harness compares, behind one interface, and how they are
built.

- `DittocSystem`: a dittoc executable. Built from the source GGUF with
  `dittoc import GGUF -o IMPORT/model.mlir`, then (quantized variants)
  `dittoc quantize IMPORT/model.mlir ARGS -o DIR/q.mlir` and
  `dittoc DIR/q.mlir -O3 -o DIR/model` (f32: the imported module compiled as
  is; the default-calibrated variants share one calibration run's statistics,
  `calibration.safetensors`). Each step leaves a stamp file (`bench-stamp.json`) naming what it was
  made from — the digests of the dittoc binary and of the runtime library
  beside it, of the source GGUF, the quantize arguments — and is redone only
  when that changes or the output was replaced by someone else (its size or
  mtime differs from the stamp's).
- `LlamaSystem`: llama.cpp (llama-cpp-python) on a GGUF: the source Q4_K_M
  file itself, or a quantization of it made by llama.cpp's own quantizer
  (benchlib.ensure_llama_quant, cached next to the source).

Both give the same measurements: `speed` (one process per run, its own peak
RSS, the time to its first generated token), `perplexity` (windows scored by
the same rule) and `complete` (greedy text with stop strings), and their
`sizes` (file bytes, bytes read per decoded token).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import benchlib
from benchlib import BenchError, log
from humaneval import truncate
from itemcache import item_key

LLAMA_RUNNER = benchlib.BENCH_DIR / "llama_cpp_run.py"
LLAMA_EVAL = benchlib.BENCH_DIR / "llama_cpp_eval.py"
STAMP = "bench-stamp.json"
QUANTIZE_STAMP_DIR = "quantize-step"  # holds the quantize step's own STAMP
IMPORT_STAMP_DIR = "import-step"  # holds the import step's own STAMP
COMPILE_ARGS = ["-O3"]
# K/V cache type of llama.cpp in every run: f32 like dittoc's, so that the
# two differ in their weights only.
LLAMA_KV = "f32"


# --- builds ---------------------------------------------------------------------


@dataclass
class Toolchain:
    """The dittoc binary to build with, and the digests that identify it
    (the compiler and the runtime library linked into every executable)."""

    dittoc: Path
    memo: Path  # file_digest's memo

    def identity(self) -> dict:
        runtime = self.dittoc.parent / "libditto_rt.a"
        if not self.dittoc.exists():
            raise BenchError(f"no dittoc at {self.dittoc} (cargo build --release, or --dittoc PATH)")
        if not runtime.exists():
            raise BenchError(f"no {runtime} beside {self.dittoc} (dittoc links it into every executable)")
        return {"dittoc": benchlib.file_digest(self.dittoc, self.memo)[:16],
                "runtime": benchlib.file_digest(runtime, self.memo)[:16]}

    def run(self, cmd_args: list[str], what: str) -> None:
        """Run dittoc with its output passed on to stderr (its progress)."""
        cmd = [str(self.dittoc), *cmd_args]
        log(f"{what}: $ {' '.join(cmd)}")
        proc = subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr)
        if proc.returncode != 0:
            raise BenchError(f"{what} failed (exit code {proc.returncode}; its messages are above): {' '.join(cmd)}")


# The default code set's statistics, shared by the variants beside each other.
SHARED_CALIBRATION = "calibration.safetensors"
SHARED_CALIBRATION_STAMP_DIR = "calibration-step"


def _stamp_ok(directory: Path, want: dict, output: Path) -> bool:
    """Whether `directory`'s stamp records `want` and `output` is the file
    that step wrote (same size and mtime)."""
    try:
        stamp = json.loads((directory / STAMP).read_text())
    except (OSError, ValueError):
        return False
    if stamp.get("made_from") != want or not output.exists():
        return False
    st = output.stat()
    return stamp.get("output") == {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def _write_stamp(directory: Path, want: dict, output: Path) -> None:
    st = output.stat()
    (directory / STAMP).write_text(json.dumps(
        {"made_from": want, "output": {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns}}, indent=2) + "\n")


def ensure_import(tools: Toolchain, gguf: Path, gguf_digest: str, import_dir: Path) -> dict:
    """`dittoc import` of the GGUF into import_dir/model.mlir (+ model.weights,
    tokenizer files), unless the stamp says it is there already. Returns what
    it was made from (part of every variant's identity): the dittoc binary
    and the GGUF, not the runtime library, which importing does not use. The
    stamp lives in its own folder, since the f32 executable is built in
    import_dir too and has its own."""
    want = {"step": "import", "dittoc": tools.identity()["dittoc"], "gguf": gguf_digest}
    mlir = import_dir / "model.mlir"
    stamps = import_dir / IMPORT_STAMP_DIR
    if _stamp_ok(stamps, want, import_dir / "model.weights") and mlir.exists():
        return want
    stamps.mkdir(parents=True, exist_ok=True)
    (stamps / STAMP).unlink(missing_ok=True)
    tools.run(["import", str(gguf), "-o", str(mlir)], "import")
    _write_stamp(stamps, want, import_dir / "model.weights")
    return want


@dataclass
class Variant:
    """One dittoc build: a name, and `dittoc quantize` arguments (None: f32)."""

    name: str
    quantize: list[str] | None


def _quantized_ok(out_dir: Path, want: dict) -> bool:
    """Whether out_dir's q.mlir/q.weights are `dittoc quantize`'s output for `want`."""
    return (_stamp_ok(out_dir / QUANTIZE_STAMP_DIR, want, out_dir / "q.weights")
            and (out_dir / "q.mlir").exists())


def ensure_variant(tools: Toolchain, imported: dict, import_dir: Path, variant: Variant, out_dir: Path) -> tuple[Path, str]:
    """(executable, build identity) of a variant, built unless its stamp
    matches. The two steps have their own stamps: quantizing depends on the
    dittoc binary only, compiling also on the runtime library it links, so a
    runtime change recompiles without quantizing again. The executable is
    written under a temporary name and renamed into place, so a process still
    running the old one keeps its file."""
    identity = tools.identity()
    want = {"step": "variant", "import": imported, **identity, "quantize": variant.quantize,
            "compile": COMPILE_ARGS}
    exe = out_dir / "model"
    ident = item_key(want)
    if _stamp_ok(out_dir, want, exe):
        return exe, ident
    out_dir.mkdir(parents=True, exist_ok=True)
    source = import_dir / "model.mlir"
    if variant.quantize is not None:
        quantized = out_dir / "q.mlir"
        want_q = {"step": "quantize", "import": imported, "dittoc": identity["dittoc"],
                  "quantize": variant.quantize}
        if not _quantized_ok(out_dir, want_q):
            (out_dir / STAMP).unlink(missing_ok=True)
            # Variants calibrated on the default code set share one run of it.
            shared = out_dir.parent / SHARED_CALIBRATION
            want_c = {"step": "calibration", "import": imported, "dittoc": identity["dittoc"]}
            default_set = not any(a in variant.quantize for a in ("--calib", "--calib-set", "--calib-stats"))
            reuse = default_set and _stamp_ok(shared.parent / SHARED_CALIBRATION_STAMP_DIR, want_c, shared)
            # quantize's activation statistics (about 3 GB with XᵀX) are kept
            # once, for the other default-calibrated variants
            if reuse:
                extra = ["--calib-stats", str(shared)]
            elif default_set:
                extra = ["--save-calib-stats", str(shared)]
            else:
                extra = []
            tools.run(["quantize", str(source), *variant.quantize, *extra, "-o", str(quantized)],
                      f"dittoc {variant.name}: quantize")
            if default_set and not reuse and shared.exists():
                (shared.parent / SHARED_CALIBRATION_STAMP_DIR).mkdir(exist_ok=True)
                _write_stamp(shared.parent / SHARED_CALIBRATION_STAMP_DIR, want_c, shared)
        (out_dir / QUANTIZE_STAMP_DIR).mkdir(exist_ok=True)
        _write_stamp(out_dir / QUANTIZE_STAMP_DIR, want_q, out_dir / "q.weights")
        source = quantized
    (out_dir / STAMP).unlink(missing_ok=True)
    partial = out_dir / "model.partial"
    tools.run([str(source), *COMPILE_ARGS, "-o", str(partial)], f"dittoc {variant.name}: compile")
    partial.replace(exe)
    _write_stamp(out_dir, want, exe)
    return exe, ident


# --- the systems ------------------------------------------------------------------


@dataclass
class Sizes:
    """What a system's model takes: on disk and per decoded token."""

    file_bytes: int  # the GGUF, or the whole executable
    weight_bytes: int  # the GGUF file, or the executable's weight section
    bytes_per_token: int  # weights a decode step reads in full
    embedding_bytes: int  # the token-embedding table when only gathered (0 when tied)

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class System:
    """What every system offers (see the module docstring)."""

    name: str
    family: str  # "dittoc" or "llama.cpp"
    setting: str  # quantize arguments or llama.cpp type
    identity: dict = field(default_factory=dict)  # what its results depend on, for the cache

    def speed(self, ids: list[int], n: int, threads: int, ctx: int) -> dict:
        raise NotImplementedError

    def perplexity(self, windows: dict[str, list[int]], threads: int) -> Iterator[tuple[str, dict]]:
        raise NotImplementedError

    def complete(self, prompts: dict[str, str], threads: int, n: int, stops: tuple[str, ...]) -> Iterator[tuple[str, dict]]:
        raise NotImplementedError

    def sizes(self) -> Sizes:
        raise NotImplementedError

    def artifact(self) -> Path:
        """The file that is measured: the executable or the GGUF."""
        raise NotImplementedError


@dataclass
class DittocSystem(System):
    exe: Path = Path()
    ctx_complete: int = 2048
    _help: str | None = None

    def flags(self) -> str:
        """The executable's --help (which flags it has: --stop, --tokens-file)."""
        if self._help is None:
            proc = subprocess.run([str(self.exe), "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            self._help = proc.stdout
        return self._help

    def speed(self, ids: list[int], n: int, threads: int, ctx: int) -> dict:
        r = benchlib.run_dittoc(self.exe, ids, n, threads, ctx)
        return {"ids": r.ids, "prefill": [r.prefill_tokens, r.prefill_s], "decode": [r.decode_tokens, r.decode_s],
                "rss": r.maxrss_bytes, "first_output_s": r.first_output_s, "contention": r.contention}

    def perplexity(self, windows: dict[str, list[int]], threads: int) -> Iterator[tuple[str, dict]]:
        """One `--perplexity` run per window (its own context of the window's
        length); the executable prints exp(mean NLL), so the window's NLL is
        scored·ln(ppl)."""
        with tempfile.TemporaryDirectory(prefix="ditto-ppl-") as tmp:
            for index, ids in windows.items():
                cmd = [str(self.exe), "--perplexity", "--ctx", str(len(ids)), "--threads", str(threads)]
                if "--tokens-file" in self.flags():
                    path = Path(tmp) / f"{index}.txt"
                    path.write_text(" ".join(map(str, ids)) + "\n")
                    cmd += ["--tokens-file", str(path)]
                else:
                    cmd += ["--tokens", ",".join(map(str, ids))]
                child = benchlib.check_child(benchlib.run_child(cmd), cmd)
                ppl = parse_perplexity(child.stdout)
                scored = len(ids) - 1
                yield index, {"nll": scored * math.log(ppl), "scored": scored, "ppl": ppl, "seconds": child.wall_s}

    def complete(self, prompts: dict[str, str], threads: int, n: int, stops: tuple[str, ...]) -> Iterator[tuple[str, dict]]:
        """`EXE -f PROMPT -n N --stop ...`: the completion text on stdout
        (cut at the stops by the executable when it has --stop, and here
        again in any case)."""
        has_stop = "--stop" in self.flags()
        with tempfile.TemporaryDirectory(prefix="ditto-he-") as tmp:
            for key, text in prompts.items():
                path = Path(tmp) / "prompt.txt"
                path.write_text(text)
                cmd = [str(self.exe), "-f", str(path), "-n", str(n), "--temp", "0", "--threads", str(threads),
                       "--ctx", str(self.ctx_complete)]
                if has_stop:
                    for s in stops:
                        cmd += ["--stop", s.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")]
                child = benchlib.check_child(benchlib.run_child(cmd), cmd)
                timings = benchlib.parse_timings(child.stderr)
                yield key, {"completion": truncate(child.stdout, stops),
                            "prompt_tokens": timings.get("prefill", (None, 0.0))[0],
                            "decode_tokens": timings.get("decode", (None, 0.0))[0],
                            "stop_flag": has_stop, "seconds": child.wall_s}

    def artifact(self) -> Path:
        return self.exe

    def sizes(self) -> Sizes:
        manifest, _ = benchlib.read_payload(self.exe)
        tensors = benchlib.manifest_tensor_sizes(manifest)
        return Sizes(self.exe.stat().st_size, manifest["sections"]["weights"]["len"],
                     benchlib.bytes_per_token(tensors), benchlib.lookup_only_bytes(tensors))


def parse_perplexity(stdout: str) -> float:
    """The one number `--perplexity` prints on stdout."""
    try:
        value = float(stdout.strip().split()[-1])
    except (ValueError, IndexError):
        raise BenchError(f"--perplexity printed no number: {stdout[:200]!r}") from None
    if not (value >= 1.0 and math.isfinite(value)):
        raise BenchError(f"--perplexity printed {value}, not a perplexity")
    return value


@dataclass
class LlamaSystem(System):
    gguf: Path = Path()
    eos: list[int] = field(default_factory=list)
    add_bos: bool = False
    ctx_complete: int = 2048

    def speed(self, ids: list[int], n: int, threads: int, ctx: int) -> dict:
        cmd = [sys.executable, str(LLAMA_RUNNER), "--model", str(self.gguf), "--tokens", ",".join(map(str, ids)),
               "-n", str(n), "--threads", str(threads), "--ctx", str(ctx), "--kv", LLAMA_KV,
               "--eos", ",".join(map(str, self.eos))]
        child = benchlib.check_child(benchlib.run_child(cmd), cmd)
        r = json.loads(child.stdout)
        return {"ids": r["ids"], "prefill": [r["prefill_tokens"], r["prefill_s"]],
                "decode": [r["decode_tokens"], r["decode_s"]], "rss": child.maxrss_bytes,
                "first_output_s": child.first_output_s, "contention": child.contention, "load_s": r["load_s"]}

    def _worker(self, mode: str, payload: dict, extra: list[str], threads: int) -> Iterator[dict]:
        """Run llama_cpp_eval.py and yield its JSON lines as they come."""
        with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="ditto-llama-") as f:
            json.dump(payload, f)
            f.flush()
            cmd = [sys.executable, str(LLAMA_EVAL), mode, "--model", str(self.gguf), "--input", f.name,
                   "--threads", str(threads), "--kv", LLAMA_KV, *extra]
            with tempfile.TemporaryFile() as err:
                proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
                try:
                    for line in proc.stdout:
                        yield json.loads(line)
                finally:
                    proc.stdout.close()
                    if proc.poll() is None:
                        proc.kill()
                    rc = proc.wait()
                if rc != 0:
                    err.seek(0)
                    tail = "\n".join(err.read().decode("utf-8", "replace").strip().splitlines()[-15:])
                    raise BenchError(f"{self.name}: llama_cpp_eval.py {mode} failed (exit code {rc})\n{tail}")

    def perplexity(self, windows: dict[str, list[int]], threads: int) -> Iterator[tuple[str, dict]]:
        for r in self._worker("perplexity", {"windows": windows}, [], threads):
            yield r.pop("index"), r

    def complete(self, prompts: dict[str, str], threads: int, n: int, stops: tuple[str, ...]) -> Iterator[tuple[str, dict]]:
        extra = ["--ctx", str(self.ctx_complete), "-n", str(n), "--stops", json.dumps(list(stops)),
                 "--eos", ",".join(map(str, self.eos))] + (["--add-bos"] if self.add_bos else [])
        for r in self._worker("complete", {"prompts": prompts}, extra, threads):
            yield r.pop("key"), r

    def artifact(self) -> Path:
        return self.gguf

    def sizes(self) -> Sizes:
        tensors, _ = benchlib.gguf_tensor_sizes(self.gguf)
        size = self.gguf.stat().st_size
        return Sizes(size, size, benchlib.bytes_per_token(tensors), benchlib.lookup_only_bytes(tensors))
