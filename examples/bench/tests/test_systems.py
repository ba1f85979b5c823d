"""The dittoc side against fake executables: the build stamps (a variant is
rebuilt exactly when the compiler, the runtime, the import or its arguments
change, or its executable was replaced), and the command lines and parsing
of --perplexity and of completions with --stop."""

import json
import math
import stat
import sys
from pathlib import Path

import pytest

import benchlib
import systems
from systems import DittocSystem, Toolchain, Variant, ensure_import, ensure_variant

FAKE_DITTOC = r'''#!PYTHON
import json, sys
from pathlib import Path
log = Path(__file__).with_name("calls.log")
with open(log, "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\n")
args = sys.argv[1:]
out = Path(args[args.index("-o") + 1])
if args[0] == "import":
    if not Path(args[1]).exists():
        sys.exit(f"error: cannot read {args[1]}")
    out.write_text("module {}")
    out.with_suffix(".weights").write_bytes(b"w" * 64)
    out.with_name("model.tokenizer_config.json").write_text('{"eos_token_ids": [2], "add_bos_token": false}')
elif args[0] == "quantize":
    out.write_text("quantized " + " ".join(args))
    out.with_suffix(".weights").write_bytes(b"q" * 16)
    if "--save-calib-stats" in args:
        Path(args[args.index("--save-calib-stats") + 1]).write_bytes(b"stats")
else:
    out.write_bytes(b"exe of " + Path(args[0]).read_bytes())
'''


def make_fake(path: Path, text: str) -> Path:
    path.write_text(text.replace("PYTHON", sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def tools(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    dittoc = make_fake(bindir / "dittoc", FAKE_DITTOC)
    (bindir / "libditto_rt.a").write_bytes(b"runtime 1")
    return Toolchain(dittoc, tmp_path / "memo.json")


def calls(tools):
    log = tools.dittoc.with_name("calls.log")
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return [json.loads(line)[0] for line in lines]


def test_builds_are_stamped_and_redone_only_when_their_inputs_change(tools, tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"gguf")
    imp, out = tmp_path / "import", tmp_path / "k4"
    k4 = Variant("k4", ["--bits", "4", "--block", "512"])

    imported = ensure_import(tools, gguf, "g1", imp)
    exe, ident = ensure_variant(tools, imported, imp, k4, out)
    argv = json.loads(tools.dittoc.with_name("calls.log").read_text().splitlines()[1])
    assert calls(tools) == ["import", "quantize", str(out / "q.mlir")]
    assert exe == out / "model" and exe.read_text().startswith("exe of quantized quantize")
    assert argv[argv.index("--save-calib-stats") + 1] == str(tmp_path / "calibration.safetensors")
    assert (tmp_path / "calibration.safetensors").read_bytes() == b"stats"  # shared

    # the same inputs: nothing to do, the same identity
    assert ensure_import(tools, gguf, "g1", imp) == imported
    assert ensure_variant(tools, imported, imp, k4, out) == (exe, ident)
    assert calls(tools) == []

    # other quantize arguments: a new build, a new identity, on the shared statistics
    log = tools.dittoc.with_name("calls.log")
    _, ident2 = ensure_variant(tools, imported, imp, Variant("k4", ["--bits", "4", "--block", "256"]), out)
    argv = json.loads(log.read_text().splitlines()[0])
    assert argv[argv.index("--calib-stats") + 1] == str(tmp_path / "calibration.safetensors")
    assert calls(tools)[0] == "quantize" and ident2 != ident

    # a variant with its own calibration set does not use them
    ensure_variant(tools, imported, imp, Variant("k3-text", ["--bits", "3", "--calib-set", "text"]), tmp_path / "t")
    argv = json.loads(log.read_text().splitlines()[0])
    assert "--calib-stats" not in argv and argv[0] == "quantize"
    calls(tools)

    # a new runtime library: compiled again, not imported or quantized again
    _, ident_back = ensure_variant(tools, imported, imp, k4, out)
    assert calls(tools) == ["quantize", str(out / "q.mlir")] and ident_back == ident
    (tools.dittoc.parent / "libditto_rt.a").write_bytes(b"runtime 2")
    assert ensure_import(tools, gguf, "g1", imp) == imported
    _, ident_rt = ensure_variant(tools, imported, imp, k4, out)
    assert calls(tools) == [str(out / "q.mlir")] and ident_rt not in (ident, ident2)

    # a new dittoc: everything again
    make_fake(tools.dittoc, FAKE_DITTOC + "# another build\n")
    imported2 = ensure_import(tools, gguf, "g1", imp)
    _, ident3 = ensure_variant(tools, imported2, imp, k4, out)
    assert calls(tools) == ["import", "quantize", str(out / "q.mlir")]
    assert ident3 not in (ident, ident2, ident_rt)

    # the executable replaced by someone else: compiled again (the quantized
    # module is still the quantize step's)
    exe.write_bytes(b"something else entirely")
    ensure_variant(tools, imported2, imp, k4, out)
    assert calls(tools) == [str(out / "q.mlir")]

    # both replaced: quantized and compiled again
    exe.write_bytes(b"something else entirely")
    (out / "q.weights").write_bytes(b"other weights")
    ensure_variant(tools, imported2, imp, k4, out)
    assert calls(tools) == ["quantize", str(out / "q.mlir")]

    # f32: the imported module compiled as is, no quantize
    f32_exe, _ = ensure_variant(tools, imported2, imp, Variant("f32", None), imp)
    assert calls(tools) == [str(imp / "model.mlir")] and f32_exe == imp / "model"


def test_a_missing_runtime_or_a_failing_step_is_a_clear_error(tools, tmp_path):
    (tools.dittoc.parent / "libditto_rt.a").unlink()
    with pytest.raises(benchlib.BenchError, match="libditto_rt.a"):
        ensure_import(tools, tmp_path / "m.gguf", "g", tmp_path / "imp")
    (tools.dittoc.parent / "libditto_rt.a").write_bytes(b"rt")
    with pytest.raises(benchlib.BenchError, match="import failed"):
        ensure_import(tools, tmp_path / "missing.gguf", "g", tmp_path / "imp")
    assert not (tmp_path / "imp" / systems.STAMP).exists()


FAKE_EXE = r'''#!PYTHON
import json, sys
from pathlib import Path
args = sys.argv[1:]
with open(Path(__file__).with_name("exe-calls.log"), "a") as f:
    f.write(json.dumps(args) + "\n")
if args == ["--help"]:
    print("FLAGS")
    sys.exit(0)
if "--perplexity" in args:
    ids = Path(args[args.index("--tokens-file") + 1]).read_text().split()
    print(f"{1.5 + len(ids) / 1000:.6f}")
    print(f"perplexity: x over {len(ids) - 1} scored tokens", file=sys.stderr)
    sys.exit(0)
prompt = Path(args[args.index("-f") + 1]).read_text()
print("prefill: 7 tokens in 0.010 s (700.0 tok/s)", file=sys.stderr)
print("decode: 11 tokens in 0.100 s (110.0 tok/s)", file=sys.stderr)
sys.stdout.write("    return 1\n" + ("" if "--stop" in args else "\ndef other():\n    pass\n"))
'''


def fake_exe(tmp_path, flags: str) -> DittocSystem:
    exe = make_fake(tmp_path / "model", FAKE_EXE.replace("FLAGS", flags))
    return DittocSystem("dittoc k4", "dittoc", "k4", {}, exe=exe)


def exe_calls(tmp_path):
    return [json.loads(line) for line in (tmp_path / "exe-calls.log").read_text().splitlines()]


def test_perplexity_per_window_through_a_tokens_file(tmp_path):
    box = fake_exe(tmp_path, "--tokens-file FILE --stop TEXT")
    windows = {"0": list(range(512)), "1": list(range(100, 612))}
    out = dict(box.perplexity(windows, threads=2))
    assert set(out) == {"0", "1"}
    assert out["0"]["ppl"] == 2.012 and out["0"]["scored"] == 511
    assert out["0"]["nll"] == pytest.approx(511 * math.log(2.012))
    cmd = exe_calls(tmp_path)[1]
    assert cmd[:6] == ["--perplexity", "--ctx", "512", "--threads", "2", "--tokens-file"]


def test_completions_pass_escaped_stops_and_are_cut(tmp_path):
    box = fake_exe(tmp_path, "--tokens-file FILE --stop TEXT")
    out = dict(box.complete({"T/0": "def f():\n"}, threads=2, n=384, stops=("\ndef ", "\n#")))
    assert out["T/0"]["completion"] == "    return 1\n"
    assert (out["T/0"]["prompt_tokens"], out["T/0"]["decode_tokens"], out["T/0"]["stop_flag"]) == (7, 11, True)
    cmd = exe_calls(tmp_path)[1]
    assert cmd[cmd.index("-n") + 1] == "384"
    assert [cmd[i + 1] for i, a in enumerate(cmd) if a == "--stop"] == ["\\ndef ", "\\n#"]


def test_completions_of_an_executable_without_stop_are_cut_here(tmp_path):
    box = fake_exe(tmp_path, "--tokens-file FILE")
    out = dict(box.complete({"T/0": "def f():\n"}, threads=1, n=384, stops=("\ndef ",)))
    assert out["T/0"]["completion"] == "    return 1\n" and out["T/0"]["stop_flag"] is False
    assert "--stop" not in exe_calls(tmp_path)[1]
