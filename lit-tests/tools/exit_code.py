#!/usr/bin/env python3
"""Runs a command and checks how it ended: exit_code.py CODE COMMAND [ARG...]

`not` accepts any non-zero exit, a crash included (a signal: 128 + its
number in a shell, a negative code here). This passes the command's stdout
and stderr through (stdout first) and fails unless the command exited with
exactly CODE and printed no panic or abort text.
"""
import subprocess
import sys

CRASH_TEXT = ("panicked", "Aborted", "stack overflow", "Segmentation fault", "core dumped")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    want = int(sys.argv[1])
    run = subprocess.run(sys.argv[2:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sys.stdout.buffer.write(run.stdout)
    sys.stdout.flush()
    sys.stderr.buffer.write(run.stderr)
    sys.stderr.flush()
    problems = []
    if run.returncode < 0:
        problems.append(f"killed by signal {-run.returncode}")
    elif run.returncode != want:
        problems.append(f"exit code {run.returncode}, expected {want}")
    text = (run.stdout + run.stderr).decode("utf-8", "replace")
    problems += [f"printed {t!r}" for t in CRASH_TEXT if t in text]
    if problems:
        sys.stderr.write(f"exit_code.py: {' '.join(sys.argv[2:])}: {'; '.join(problems)}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
