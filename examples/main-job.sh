#!/usr/bin/env bash
# The main job end to end on a fresh machine: set up, build, fetch the default
# model (sha256-verified, cached), import it, compile it with -O3, and complete
# a Python function prompt (tokens/s on stderr).
set -euo pipefail
cd "$(dirname "$0")/.."
.ci/setup
cargo build --release --workspace
export PATH="$PWD/.venv/bin:$PATH"
model=$(examples/fetch-model.sh qwen2.5-coder-0.5b)
out=build/qwen2.5-coder-0.5b
mkdir -p "$out"
target/release/dittoc import "$model" -o "$out/model.mlir"
target/release/dittoc "$out/model.mlir" -O3 -o "$out/model"
"$out/model" -p "${PROMPT:-def quicksort(xs):}" -n "${N:-128}"
