#!/usr/bin/env bash
# Fuzzes one target of fuzz/shared (docs/fuzzing.md):
#
#   fuzz/run.sh TARGET [libFuzzer flags...]      e.g. fuzz/run.sh rules -runs=1000000
#
# Builds the target (cargo fuzz, libFuzzer + AddressSanitizer, on the pinned
# stable toolchain through RUSTC_BOOTSTRAP=1, in fuzz/target), then runs it
# niced on fuzz/corpus-work/TARGET (the working corpus: make_seeds.py's seeds
# and what the fuzzer adds; not checked in) and the checked-in
# fuzz/corpus/TARGET (read only). Crashes go to fuzz/artifacts/TARGET/.
# NO_BUILD=1 skips the build.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: fuzz/run.sh TARGET [libFuzzer flags...]}
shift
if [ -z "${NO_BUILD:-}" ]; then
  RUSTC_BOOTSTRAP=1 nice cargo fuzz build --target-dir fuzz/target --codegen-units 16 "$target"
fi
mkdir -p "fuzz/corpus-work/$target" "fuzz/corpus/$target" "fuzz/artifacts/$target"
dict=()
[ -f "fuzz/dicts/$target.dict" ] && dict=("-dict=fuzz/dicts/$target.dict")
exec nice "fuzz/target/x86_64-unknown-linux-gnu/release/$target" \
  "fuzz/corpus-work/$target" "fuzz/corpus/$target" \
  "${dict[@]}" -artifact_prefix="fuzz/artifacts/$target/" \
  -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$@"
