"""pass@k, stop-string truncation, the greedy text loop, task loading and
judging completions in the sandbox."""

import gzip
import json
import math

import pytest

import humaneval
import sandbox
from humaneval import Task, greedy_text, pass_at_1, pass_at_k, truncate


def test_pass_at_k_hand_computed():
    # 1 - C(n-c, k) / C(n, k)
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)  # 1 - 3/5
    assert pass_at_k(10, 3, 2) == pytest.approx(1 - 21 / 45)  # C(7,2)=21, C(10,2)=45
    assert pass_at_k(10, 1, 5) == pytest.approx(0.5)  # 1 - C(9,5)/C(10,5) = 1 - 126/252
    assert pass_at_k(20, 4, 10) == pytest.approx(1 - math.comb(16, 10) / math.comb(20, 10))


def test_pass_at_k_edges():
    assert pass_at_k(5, 0, 1) == 0.0
    assert pass_at_k(5, 5, 3) == 1.0
    assert pass_at_k(4, 3, 2) == 1.0  # n - c < k: every draw of k holds a pass
    assert pass_at_k(1, 1, 1) == 1.0
    assert pass_at_k(1, 0, 1) == 0.0
    for n, c, k in ((3, 4, 1), (3, -1, 1), (3, 1, 0), (3, 1, 4)):
        with pytest.raises(ValueError):
            pass_at_k(n, c, k)


def test_pass_at_k_matches_combinations_everywhere():
    for n in range(1, 13):
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = 1 - math.comb(n - c, k) / math.comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12), (n, c, k)


def test_pass_at_1_is_the_mean_of_greedy_verdicts():
    assert pass_at_1([True, False, False, True]) == 0.5
    assert pass_at_1([False]) == 0.0
    with pytest.raises(ValueError):
        pass_at_1([])


def test_truncate_at_the_earliest_stop():
    body = "    return a + b\n"
    assert truncate(body) == body
    assert truncate(body + "\ndef other():\n    pass\n") == body
    assert truncate(body + "\n# a comment\nclass X:\n") == body
    assert truncate(body + "\nclass X:\n    pass\n# late") == body
    assert truncate(body + "\nif __name__ == '__main__':\n") == body
    assert truncate(body + "\nprint(add(1, 2))\n") == body
    assert truncate("\ndef f(): pass") == ""
    # only whole stop strings: an indented def or a '#' inside a line stays
    inner = "    def helper(x):\n        return x  # fine\n"
    assert truncate(inner) == inner
    assert truncate("x", ("y",)) == "x"


def fake_model(tokens: list[int], vocab: dict[int, bytes]):
    """next_token/feed/detokenize over a fixed greedy sequence."""
    state = {"i": 0, "fed": []}

    def next_token():
        return tokens[state["i"]]

    def feed(t):
        state["fed"].append(t)
        state["i"] += 1

    return next_token, feed, lambda t: vocab[t], state


def test_greedy_text_stops_at_a_stop_string_across_tokens():
    vocab = {1: b"    return 1\n", 2: b"\nde", 3: b"f g():\n", 4: b"    pass\n"}
    nxt, feed, detok, state = fake_model([1, 2, 3, 4], vocab)
    out = greedy_text(nxt, feed, detok, 10)
    assert out == {"completion": "    return 1\n", "tokens": 3, "stop": "stop string"}
    assert state["fed"] == [1, 2]  # the token that completed the stop is not fed back


def test_greedy_text_eos_and_length():
    vocab = {1: b"a", 2: b"b", 9: b"<eos>"}
    nxt, feed, detok, _ = fake_model([1, 2, 9, 1], vocab)
    assert greedy_text(nxt, feed, detok, 10, eos={9}) == {"completion": "ab", "tokens": 2, "stop": "eos"}
    nxt, feed, detok, state = fake_model([1, 2, 1, 2], vocab)
    assert greedy_text(nxt, feed, detok, 3) == {"completion": "aba", "tokens": 3, "stop": "length"}
    assert state["fed"] == [1, 2]  # n tokens cost n-1 feeds, like the executable


def test_greedy_text_keeps_multibyte_characters_split_over_tokens():
    e_acute = "é".encode()
    vocab = {1: e_acute[:1], 2: e_acute[1:] + b"!"}
    nxt, feed, detok, _ = fake_model([1, 2], vocab)
    assert greedy_text(nxt, feed, detok, 2)["completion"] == "é!"


def test_load_tasks_and_program(tmp_path):
    rows = [{"task_id": f"T/{i}", "prompt": f"def f{i}():\n", "entry_point": f"f{i}",
             "canonical_solution": "", "test": "def check(c):\n    assert c() == 1\n"} for i in range(4)]
    path = tmp_path / "tasks.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(json.dumps(r) for r in rows) + "\n")
    tasks = humaneval.load_tasks(path)
    assert [t.task_id for t in tasks] == ["T/0", "T/1", "T/2", "T/3"]
    assert [t.task_id for t in humaneval.load_tasks(path, limit=2)] == ["T/0", "T/1"]
    prog = humaneval.program(tasks[1], "    return 1\n")
    assert prog.startswith("def f1():\n    return 1\n")
    assert prog.rstrip().endswith("check(f1)")


ADD = Task("T/add", "def add(a, b):\n    \"\"\"Sum.\"\"\"\n", "add",
           "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n")


@pytest.fixture(scope="module")
def box():
    return sandbox.detect()


def test_a_right_completion_passes(box):
    v = humaneval.judge(ADD, "    return a + b\n", box)
    assert (v.passed, v.result) == (True, "passed")


def test_a_wrong_completion_fails(box):
    v = humaneval.judge(ADD, "    return a - b\n", box)
    assert (v.passed, v.result) == (False, "failed")
    assert "AssertionError" in v.detail


def test_a_completion_that_does_not_parse_fails(box):
    v = humaneval.judge(ADD, "    return a +\n", box)
    assert (v.passed, v.result) == (False, "failed")
    assert "SyntaxError" in v.detail


def test_a_hanging_completion_times_out(box):
    v = humaneval.judge(ADD, "    while True:\n        pass\n", box, sandbox.Limits(timeout_s=1.5))
    assert (v.passed, v.result) == (False, "timed out")
