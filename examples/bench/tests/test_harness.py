"""The harness's speed phase on fake systems: runs are interleaved system
by system, an interrupted run resumes from the per-item cache measuring
only what is missing, and resumed numbers are marked cached."""

import pytest

import benchlib
import harness
from itemcache import ItemCache
from systems import Sizes, System


class Recorder(System):
    """A system whose runs return fixed timings and are logged in `calls`."""

    def __init__(self, name, calls, rate, fail_after=None):
        family, setting = name.split(" ", 1)
        super().__init__(name, family, setting, {"fake": name})
        self.calls, self.rate, self.fail_after = calls, rate, fail_after

    def speed(self, ids, n, threads, ctx):
        if self.fail_after is not None and sum(1 for c in self.calls if c[0] == self.name) >= self.fail_after:
            raise KeyboardInterrupt
        self.calls.append((self.name, len(ids), n, threads))
        return {"ids": [1] * n, "prefill": [len(ids), len(ids) / (10 * self.rate)],
                "decode": [n - 1, (n - 1) / self.rate], "rss": 100 << 20, "first_output_s": 0.25,
                "contention": 0.0}

    def sizes(self):
        return Sizes(1000, 1000, 500, 100)

    def artifact(self):
        return benchlib.REPO / "fake"


class NoBar:
    def __init__(self, total, what):
        pass

    def step(self, note):
        pass

    def close(self):
        pass


@pytest.fixture(autouse=True)
def no_tqdm(monkeypatch):
    monkeypatch.setattr(harness, "Progress", NoBar)


ST = harness.Settings(runs=2, n=4, prefill_lengths=(8,), threads=(1, 2), ctx=64, bw_passes=1)
SHORT, PREFILL = [1, 2, 3], {8: list(range(8))}


def run(systems, cache):
    return harness.measure_speed(systems, ST, cache, benchlib.QuietRunner(None), SHORT, PREFILL, 1 << 20)


def test_runs_are_interleaved_system_by_system(tmp_path):
    calls = []
    a, b = Recorder("dittoc k4", calls, 40.0), Recorder("llama.cpp Q4_0", calls, 50.0)
    out = run([a, b], ItemCache(tmp_path))
    timed = calls[2:]  # after one warm-up run of each
    assert calls[:2] == [("dittoc k4", 3, 4, 2), ("llama.cpp Q4_0", 3, 4, 2)]
    expected = [(name, len(ids), n, t) for _ in range(2) for t in (1, 2)
                for ids, n in ((SHORT, 4), (PREFILL[8], 1)) for name in ("dittoc k4", "llama.cpp Q4_0")]
    assert timed == expected
    assert [v for v, _ in out["samples"][("dittoc k4", "decode@2")]] == [40.0, 40.0]
    assert [v for v, _ in out["samples"][("llama.cpp Q4_0", "prefill-8@1")]] == [500.0, 500.0]
    assert len(out["bandwidth"][1]) == 2 and all(g > 0 for g, _ in out["bandwidth"][1])
    assert out["ttft"]["dittoc k4"] == [(0.25, False), (0.25, False)]


def test_an_interrupted_run_resumes_and_marks_what_it_reused(tmp_path):
    calls = []
    a = Recorder("dittoc k4", calls, 40.0)
    b = Recorder("llama.cpp Q4_0", calls, 50.0, fail_after=4)  # warm-up + 3 timed runs, then ^C
    with pytest.raises(KeyboardInterrupt):
        run([a, b], ItemCache(tmp_path))
    done_before = calls[2:]
    # round 0: A, B decode and A, B prefill at 1 thread, A, B decode and A prefill at 2 threads;
    # B's prefill at 2 threads was interrupted
    assert len(done_before) == 7

    calls.clear()
    cache = ItemCache(tmp_path)
    out = run([Recorder("dittoc k4", calls, 40.0), Recorder("llama.cpp Q4_0", calls, 50.0)], cache)
    timed = calls[2:]
    assert len(timed) == 16 - 7  # only what was missing
    assert cache.hits == 7 + 2  # and round 0's bandwidth probes at 1 and 2 threads
    samples = out["samples"]
    assert [c for _, c in samples[("dittoc k4", "decode@1")]] == [True, False]
    assert [c for _, c in samples[("llama.cpp Q4_0", "prefill-8@1")]] == [True, False]
    assert [c for _, c in samples[("dittoc k4", "prefill-8@2")]] == [True, False]
    assert [c for _, c in samples[("llama.cpp Q4_0", "prefill-8@2")]] == [False, False]
    rows, _ = harness.assemble([Recorder("dittoc k4", [], 40.0), Recorder("llama.cpp Q4_0", [], 50.0)], ST, out,
                               None, None, 1000, 100, 500)
    k4 = {r["name"]: r for r in rows}["dittoc k4"]
    q40 = {r["name"]: r for r in rows}["llama.cpp Q4_0"]
    assert k4["speed"]["decode@1"]["cached"] == 1 and q40["speed"]["prefill-8@2"]["cached"] == 0


def test_timings_measured_without_the_quiet_check_are_not_reused_with_it(tmp_path, monkeypatch):
    calls = []
    run([Recorder("dittoc k4", calls, 40.0)], ItemCache(tmp_path))  # QuietRunner(None): check off
    monkeypatch.setattr(benchlib, "wait_for_quiet", lambda threshold, timeout: 0.0)
    # The bandwidth probe is a real child process: on a busy machine its
    # contention would trip the quiet check this test turns on.
    monkeypatch.setattr(benchlib.ReadBandwidth, "measure",
                        lambda self, threads: {"gbps": [10.0], "contention": 0.0})
    calls.clear()
    cache = ItemCache(tmp_path)
    harness.measure_speed([Recorder("dittoc k4", calls, 40.0)], ST, cache, benchlib.QuietRunner(0.1),
                          SHORT, PREFILL, 1 << 20)
    assert len(calls) == 1 + 8 and cache.hits == 0
