"""benchlib's pure pieces: timing lines, tensor sizes, bytes per token,
bits per weight, ratios, digests, a child's first-output time."""

import sys
import time

import pytest

import benchlib
import systems

STDERR = """kernel selection: 3 gemv
prefill: 128 tokens in 0.850 s (150.6 tok/s)
decode: 63 tokens in 2.100 s (30.0 tok/s)
"""


def test_parse_timings():
    assert benchlib.parse_timings(STDERR) == {"prefill": (128, 0.85), "decode": (63, 2.1)}
    assert benchlib.parse_timings("prefill: 5 tokens in 0.010 s (500.0 tok/s)\n") == {"prefill": (5, 0.01)}
    assert benchlib.parse_timings("nothing here") == {}


def test_parse_perplexity():
    assert systems.parse_perplexity("4.123456\n") == 4.123456
    for bad in ("", "nan\n", "0.5\n", "perplexity?"):
        with pytest.raises(benchlib.BenchError):
            systems.parse_perplexity(bad)


def test_manifest_sizes_add_up_the_parts_of_quantized_tensors():
    manifest = {"weights_index": {
        "token_embd.weight": {"bytes": 1000, "offset": 0},
        "blk.0.attn_q.weight#indices": {"bytes": 40, "offset": 0},
        "blk.0.attn_q.weight#codebooks": {"bytes": 8, "offset": 0},
        "blk.0.attn_norm.weight": {"bytes": 4, "offset": 0},
        "output.weight#indices": {"bytes": 100, "offset": 0},
        "output.weight#codebooks": {"bytes": 10, "offset": 0},
    }}
    sizes = benchlib.manifest_tensor_sizes(manifest)
    assert sizes == {"token_embd.weight": 1000, "blk.0.attn_q.weight": 48, "blk.0.attn_norm.weight": 4,
                     "output.weight": 110}
    # untied: the embedding table is gathered one row per token, not read in full
    assert benchlib.bytes_per_token(sizes) == 48 + 4 + 110


def test_bytes_per_token_of_a_tied_model_reads_the_embedding_table():
    sizes = {"token_embd.weight": 1000, "blk.0.ffn_up.weight": 50, "output_norm.weight": 4}
    assert benchlib.bytes_per_token(sizes) == 1054


def test_lookup_only_bytes_are_the_embedding_table_of_an_untied_model_only():
    untied = {"token_embd.weight": 1000, "output.weight": 900, "blk.0.ffn_up.weight": 50}
    assert benchlib.lookup_only_bytes(untied) == 1000
    tied = {"token_embd.weight": 1000, "blk.0.ffn_up.weight": 50}
    assert benchlib.lookup_only_bytes(tied) == 0
    assert benchlib.lookup_only_bytes({"output.weight": 900}) == 0


def test_bits_per_weight_and_ratio():
    assert benchlib.bits_per_weight(450, 800) == 4.5
    assert benchlib.bits_per_weight(491_400_064, 630_167_424) == pytest.approx(6.2383, abs=1e-4)
    with pytest.raises(ValueError):
        benchlib.bits_per_weight(1, 0)
    assert benchlib.ratio(30.0, 40.0) == 0.75
    assert benchlib.ratio(None, 40.0) is None
    assert benchlib.ratio(30.0, None) is None
    assert benchlib.ratio(30.0, 0.0) is None


def test_spread():
    assert benchlib.spread([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "values": [3.0, 1.0, 2.0]}


def test_file_digest_memo_follows_changes(tmp_path):
    f, memo = tmp_path / "f.bin", tmp_path / "memo.json"
    f.write_bytes(b"abc")
    d1 = benchlib.file_digest(f, memo)
    assert d1 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert benchlib.file_digest(f, memo) == d1 and memo.exists()
    time.sleep(0.01)
    f.write_bytes(b"abd")
    assert benchlib.file_digest(f, memo) != d1


def test_run_child_times_the_first_output():
    code = "import sys, time\ntime.sleep(0.3)\nprint('first', flush=True)\ntime.sleep(0.4)\nprint('second')\n"
    child = benchlib.run_child([sys.executable, "-c", code])
    assert child.returncode == 0 and child.stdout.split() == ["first", "second"]
    assert 0.3 <= child.first_output_s < child.wall_s
    assert child.wall_s >= 0.7
    assert child.maxrss_bytes > 0
    silent = benchlib.run_child([sys.executable, "-c", "pass"])
    assert silent.first_output_s is None


def test_check_child_quotes_the_error():
    child = benchlib.run_child([sys.executable, "-c", "import sys; sys.exit('boom')"])
    with pytest.raises(benchlib.BenchError, match="boom"):
        benchlib.check_child(child, ["x"])


def test_check_child_names_a_killing_signal():
    child = benchlib.run_child([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"])
    with pytest.raises(benchlib.BenchError, match="killed by SIGSEGV"):
        benchlib.check_child(child, ["x"])


def test_run_child_reports_the_childs_own_peak_rss_not_ours():
    ballast = bytearray(600 << 20)  # written, so resident in this process
    small = benchlib.run_child([sys.executable, "-c", "pass"])
    big = benchlib.run_child([sys.executable, "-c", "x = bytearray(200 << 20)"])
    del ballast
    assert small.maxrss_bytes < 100 << 20
    assert 200 << 20 <= big.maxrss_bytes < 400 << 20


def test_run_child_of_a_missing_command_fails_clearly():
    child = benchlib.run_child(["/nonexistent/command"])
    assert child.returncode == 127
    with pytest.raises(benchlib.BenchError, match="cannot execute"):
        benchlib.check_child(child, ["/nonexistent/command"])
