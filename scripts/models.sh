#!/usr/bin/env bash
# Model-checks the dispatcher's real code under the shuttle scheduler
# (dispatcher/tests/models.rs). The `--cfg shuttle` build swaps the crate's
# locks, atomics and threads for shuttle's (dispatcher/src/sync.rs), so it
# has a target directory of its own. MODEL_ITERATIONS (default 10000) sets
# the schedules explored per model and per scheduler.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="${RUSTFLAGS:-} --cfg shuttle"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/shuttle"
exec cargo test -p dispatcher --features async --release --test models -- "$@"
