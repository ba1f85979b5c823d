"""Run untrusted generated code (HumanEval completions) in a sandbox.

A sample is a Python program written into a fresh temporary directory, which
becomes its working directory; it runs under the system's `python3` (the
standard library is all HumanEval needs) with

- no network: its own network namespace (loopback only, and down);
- rlimits: address space (memory), CPU seconds, processes of its user,
  file size, open files; no core dumps;
- a wall-clock timeout, after which its whole process group is killed
  (and with it the namespace's processes);
- an unprivileged user: when the harness runs as root, the sample runs as
  `nobody` (RLIMIT_NPROC does not bind root).

Two ways to get there, detected at run time (`detect()`), the first that
works on this machine:

- `bwrap` (bubblewrap): every namespace unshared (user, network, PID, IPC,
  UTS, cgroup), the root file system mounted read-only, a private /dev,
  the sample's directory mounted as /tmp and its working directory (the
  only writable place), a clean environment, dies with its parent;
- `unshare` (util-linux) as a fallback where bubblewrap is missing or
  cannot create its namespaces: new network, IPC, UTS and PID namespaces
  (needs root or unprivileged user namespaces), the file system as it is
  (the sample's user and RLIMIT_FSIZE are what keep it from writing much).

`Sandbox.kind` names the one in use, for the report. No sandbox at all is an
error (`SandboxUnavailable`): generated code is never run bare.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import BenchError

NOBODY = 65534
PATH = "/usr/local/bin:/usr/bin:/bin"


class SandboxUnavailable(BenchError):
    """Neither bubblewrap nor unshare can isolate a sample on this machine."""


@dataclass(frozen=True)
class Limits:
    """What one sample may use."""

    timeout_s: float = 10.0  # wall clock
    memory_bytes: int = 1 << 30  # address space
    cpu_s: int = 10  # CPU time
    processes: int = 32  # processes/threads of the sample's user
    file_bytes: int = 16 << 20  # largest file it may write
    open_files: int = 64


@dataclass
class Outcome:
    """How a sample ended: exit code (None if killed at the timeout), whether
    the timeout struck, its output (cut to its last `OUTPUT_TAIL` bytes)."""

    returncode: int | None
    timed_out: bool
    stdout: str
    stderr: str
    wall_s: float

    @property
    def ok(self) -> bool:
        """Exited 0 in time."""
        return self.returncode == 0 and not self.timed_out


OUTPUT_TAIL = 4096


def _tail(data: bytes) -> str:
    return data[-OUTPUT_TAIL:].decode("utf-8", "replace")


@dataclass
class Sandbox:
    """One way of isolating a sample (see the module docstring)."""

    kind: str  # "bwrap" or "unshare"
    python: str = field(default_factory=lambda: shutil.which("python3", path=PATH) or "/usr/bin/python3")

    def command(self, workdir: Path, argv: list[str]) -> list[str]:
        """The command line that runs `argv` inside the sandbox with
        `workdir` as its writable working directory."""
        if self.kind == "bwrap":
            return ["bwrap", "--unshare-all", "--die-with-parent", "--new-session",
                    "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                    "--bind", str(workdir), "/tmp", "--chdir", "/tmp",
                    "--clearenv", "--setenv", "PATH", PATH, "--setenv", "HOME", "/tmp",
                    "--setenv", "PYTHONDONTWRITEBYTECODE", "1", "--", *argv]
        if self.kind == "unshare":
            if os.geteuid() == 0:
                return ["unshare", "--net", "--ipc", "--uts", "--pid", "--fork", "--kill-child",
                        "--mount-proc", "--", "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                        "--clear-groups", "--", *argv]
            return ["unshare", "--map-root-user", "--net", "--ipc", "--uts", "--pid", "--fork",
                    "--kill-child", "--mount-proc", "--", *argv]
        raise ValueError(f"unknown sandbox kind {self.kind!r}")

    def _preexec(self, limits: Limits):
        """Runs in the child between fork and exec: its own session and
        process group (so the timeout kills all of it), the rlimits, and for
        bwrap as root the drop to `nobody` (bwrap then makes an unprivileged
        user namespace; `unshare` as root drops with setpriv after it has
        made its namespaces)."""
        drop = self.kind == "bwrap" and os.geteuid() == 0

        def preexec() -> None:
            os.setsid()
            for res, value in ((resource.RLIMIT_AS, limits.memory_bytes),
                               (resource.RLIMIT_CPU, limits.cpu_s),
                               (resource.RLIMIT_FSIZE, limits.file_bytes),
                               (resource.RLIMIT_NOFILE, limits.open_files),
                               (resource.RLIMIT_CORE, 0)):
                resource.setrlimit(res, (value, value))
            if drop:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            # After the drop: RLIMIT_NPROC counts the processes of the user.
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))

        return preexec

    def run_argv(self, argv: list[str], workdir: Path, limits: Limits) -> Outcome:
        """Run `argv` in the sandbox; kill its process group at the timeout."""
        cmd = self.command(workdir, argv)
        start = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, preexec_fn=self._preexec(limits),
                                env={"PATH": PATH, "HOME": str(workdir), "LC_ALL": "C.UTF-8"})
        timed_out = False
        try:
            out, err = proc.communicate(timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc.pid)
            out, err = proc.communicate()
        _kill_group(proc.pid)  # anything the sample left behind in its group
        return Outcome(None if timed_out else proc.returncode, timed_out, _tail(out), _tail(err),
                       time.monotonic() - start)

    def run_python(self, program: str, limits: Limits = Limits()) -> Outcome:
        """Write `program` to a fresh temporary directory and run it there
        with the system's python3 (isolated mode: no user site, no
        PYTHON* variables, the script's directory not on sys.path)."""
        with tempfile.TemporaryDirectory(prefix="ditto-sample-") as tmp:
            workdir = Path(tmp)
            (workdir / "sample.py").write_text(program)
            if os.geteuid() == 0:
                os.chown(workdir, NOBODY, NOBODY)
            workdir.chmod(0o777)
            return self.run_argv([self.python, "-I", "sample.py"], workdir, limits)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


KINDS = ("bwrap", "unshare")


def detect(kinds: tuple[str, ...] = KINDS) -> Sandbox:
    """The first sandbox of `kinds` that is installed and runs a trivial
    program here with no network; SandboxUnavailable (saying why each
    failed) if none does."""
    reasons = []
    for kind in kinds:
        if shutil.which(kind, path=PATH) is None:
            reasons.append(f"{kind}: not installed")
            continue
        box = Sandbox(kind)
        probe = ("import socket\n"
                 "try:\n"
                 "    socket.create_connection(('127.0.0.1', 9), timeout=1)\n"
                 "except OSError as e:\n"
                 "    print('isolated', e.errno)\n")
        try:
            out = box.run_python(probe, Limits(timeout_s=20))
        except OSError as e:
            reasons.append(f"{kind}: {e}")
            continue
        if out.ok and out.stdout.startswith("isolated"):
            return box
        reasons.append(f"{kind}: exit {out.returncode}{' (timeout)' if out.timed_out else ''}: "
                       f"{out.stderr.strip()[-300:] or out.stdout.strip()[-300:]}")
    raise SandboxUnavailable("no sandbox for generated code works here (apt-get install bubblewrap; "
                             "it needs user namespaces): " + "; ".join(reasons))
