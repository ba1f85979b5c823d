#!/usr/bin/env bash
# Minimizes the checked-in corpus of one target (docs/fuzzing.md):
#
#   fuzz/cmin.sh TARGET
#
# Adds the working corpus fuzz/corpus-work/TARGET to fuzz/corpus/TARGET, then
# `cargo fuzz cmin` keeps the smallest set of files that covers every edge
# the union covers (-use_counters=0: edges, not hit counts, which would keep
# ten times the files). The replay test (fuzz/shared/tests/replay.rs) runs
# every file left.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: fuzz/cmin.sh TARGET}
mkdir -p "fuzz/corpus/$target"
if [ -d "fuzz/corpus-work/$target" ]; then
  find "fuzz/corpus-work/$target" -maxdepth 1 -type f -exec cp -n -t "fuzz/corpus/$target" {} +
fi
RUSTC_BOOTSTRAP=1 nice cargo fuzz cmin --target-dir fuzz/target --codegen-units 16 \
  "$target" "fuzz/corpus/$target" -- -use_counters=0
echo "fuzz/corpus/$target: $(find "fuzz/corpus/$target" -type f | wc -l) files, $(cat "fuzz/corpus/$target"/* | wc -c) bytes"
