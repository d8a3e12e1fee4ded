#!/usr/bin/env bash
# Benchmark regression gate: counts instructions (valgrind's callgrind) and
# allocations per event of fixed single-threaded workloads on the dispatcher's
# enqueue-to-batch hot path and loadgen's telemetry generation, and compares
# them with scripts/bench-baseline.json. Counts, not wall-clock time: they do
# not move with a noisy machine. The logic lives in the `gate` crate.
#
#   scripts/bench-gate.sh                   compare with the committed baseline
#   scripts/bench-gate.sh --baseline FILE   compare with another baseline
#   scripts/bench-gate.sh --update          rewrite the baseline from this machine
#   scripts/bench-gate.sh --help            every option
#
# Prints one verdict line per metric. Exit: 0 pass, 1 a metric regressed past
# its threshold, 2 the gate could not measure (e.g. no valgrind, bad baseline).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bench-gate: valgrind not found; installing it with apt-get" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
  fi
  if ! command -v valgrind >/dev/null 2>&1; then
    echo "bench-gate: error: valgrind is required (callgrind counts the instructions);" \
      "install it (e.g. 'sudo apt-get install valgrind') and run again" >&2
    exit 2
  fi
fi

target="${CARGO_TARGET_DIR:-target}"
cargo build --release --quiet -p gate
"$target/release/gate" "$@"
case " $* " in
  *" --update "* | *" --help "* | *" -h "*) exit 0 ;;
esac
# The same workloads with the dispatcher's disk tier compiled in and unused:
# the memory-only hot path must not count more with the feature on.
echo "bench-gate: again with the dispatcher's spill feature compiled in (unused)" >&2
# The same target directory: only the crates the feature changes are built again.
cargo build --release --quiet -p gate --features spill
exec "$target/release/gate" "$@"
