"""The sandbox that runs generated code: both ways of isolating (bubblewrap
and the unshare fallback) kill a hanging sample with its children, stop a
memory-hungry one by its rlimit, keep it off the network and bound its
processes. Each limit is checked against a control run that shows the same
program does get through without it, so none of these can pass vacuously."""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

import benchlib
import sandbox
from sandbox import Limits


@pytest.fixture(scope="module", params=sandbox.KINDS)
def box(request):
    return sandbox.detect((request.param,))


def test_detect_prefers_bubblewrap():
    assert sandbox.detect().kind == "bwrap"


def test_no_sandbox_is_a_clear_error():
    with pytest.raises(sandbox.SandboxUnavailable, match="no-such-sandbox: not installed"):
        sandbox.detect(("no-such-sandbox",))
    assert issubclass(sandbox.SandboxUnavailable, benchlib.BenchError)


def test_a_plain_sample_runs_unprivileged_in_a_fresh_directory(box):
    out = box.run_python("import os\nprint(os.getuid(), sorted(os.listdir('.')))\nopen('x', 'w').write('ok')\n")
    assert out.ok, out.stderr
    uid, files = out.stdout.split(" ", 1)
    assert files.strip() == "['sample.py']"
    if os.geteuid() == 0:
        assert int(uid) == sandbox.NOBODY


def test_a_hanging_sample_and_its_children_are_killed(box):
    marker = f"{time.time_ns() % 10**9}.25"  # a unique sleep duration, to find the child in /proc
    program = (f"import subprocess\nsubprocess.Popen(['sleep', '{marker}'])\n"
               "while True:\n    pass\n")
    start = time.monotonic()
    out = box.run_python(program, Limits(timeout_s=2))
    assert out.timed_out and out.returncode is None and not out.ok
    assert 1.9 < time.monotonic() - start < 10
    time.sleep(0.5)
    survivors = []
    for proc in Path("/proc").iterdir():
        try:
            if marker.encode() in (proc / "cmdline").read_bytes():
                survivors.append(proc.name)
        except OSError:
            pass
    assert survivors == []


def test_the_memory_limit_stops_a_memory_hungry_sample(box):
    program = "x = bytes(3 << 30)\nprint('allocated')\n"
    limited = box.run_python(program, Limits(memory_bytes=512 << 20))
    assert not limited.ok and "MemoryError" in limited.stderr
    # control: the same program gets its (lazily zeroed) 3 GiB under a higher limit
    generous = box.run_python(program, Limits(memory_bytes=16 << 30))
    assert generous.ok and generous.stdout.strip() == "allocated"


def test_the_cpu_limit_stops_a_busy_sample(box):
    out = box.run_python("while True:\n    pass\n", Limits(timeout_s=20, cpu_s=1))
    assert not out.timed_out and out.returncode not in (0, None)


def test_a_sample_cannot_reach_the_network(box):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    program = (f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
               "print('connected')\n")
    # control: outside the sandbox the program does connect to the test's server
    plain = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=30)
    assert plain.stdout.strip() == "connected"
    out = box.run_python(program)
    server.close()
    assert not out.ok and "connected" not in out.stdout
    assert "Error" in out.stderr
    assert len(accepted) == 1  # only the control run got through


def test_the_process_limit_stops_a_fork_bomb(box):
    program = "import os, time\nfor _ in range(200):\n    if os.fork() == 0:\n        time.sleep(3)\n        os._exit(0)\n"
    out = box.run_python(program, Limits(timeout_s=20, processes=16))
    assert not out.ok and "BlockingIOError" in out.stderr


def test_bubblewrap_keeps_the_file_system_read_only():
    box = sandbox.detect(("bwrap",))
    outside = Path(tempfile.mkdtemp(dir="/var/tmp"))
    try:
        outside.chmod(0o777)
        program = f"open('{outside}/x', 'w').write('escaped')\n"
        out = box.run_python(program)
        assert not out.ok and "Read-only file system" in out.stderr
        assert not (outside / "x").exists()
    finally:
        for p in outside.iterdir():
            p.unlink()
        outside.rmdir()
