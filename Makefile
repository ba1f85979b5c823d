# The two commands of the README, and their parts.
.PHONY: setup build test demo

setup:
	.ci/setup

build: setup
	cargo build --release --workspace

# Every test (what CI runs).
test:
	.ci/test

# The main job end to end: fetch Qwen2.5-Coder-0.5B-Instruct, import it,
# compile it with -O3, and complete a Python function.
demo:
	examples/main-job.sh
