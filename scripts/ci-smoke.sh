#!/usr/bin/env bash
# Short smoke checks run by .ci/run after the test suite.
# - A 10 s soak of the default scenario (`--preset quick`); its exit code is
#   the assessment's: 0 pass or warn, 1 fail.
# - A SIGTERM mid-run drains and writes a complete record (exit 143).
# - A 2 s soak whose memory cannot keep up spills to a disk tier and must say so.
# - A crash test of 3 kills: exit 0 only if no accepted event was lost.
# - The peers example: a verdict line for each group it was given, against
#   crossbeam and crossbeam-full with the batches' share, and with every run
#   in a process of its own (`--isolate`) against crossbeam and against the
#   dispatcher itself (the A/A control).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "--- 10 s soak (cargo soak --preset quick)"
cargo soak --preset quick --sample-every 2s

echo "--- SIGTERM mid-run: drains, writes the record, exits 143"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo build --release --quiet -p soak
./target/release/soak --duration 60s --no-tui -q --out "$out" &
pid=$!
# Mid-run: once the run's directory is linked as latest (a minute at most), and a
# second more.
for _ in $(seq 600); do [ -e "$out/latest" ] && break; sleep 0.1; done
[ -e "$out/latest" ] || { echo "ci-smoke: the run never linked $out/latest" >&2; exit 1; }
sleep 1
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
[ "$status" -eq 143 ] || { echo "ci-smoke: expected exit 143 after SIGTERM, got $status" >&2; exit 1; }
grep -q '"signal": "SIGTERM"' "$out"/latest/results.json \
  || { echo "ci-smoke: results.json does not record the SIGTERM" >&2; exit 1; }
echo "ci-smoke: SIGTERM ended the run with a complete record"

echo "--- a soak that overflows memory onto a disk tier (--spill-dir)"
./target/release/soak --duration 2s --producers 2 --no-tui -q --out "$out/spill-runs" \
  --max-buffered-bytes 64KiB --max-batch-bytes 4KiB --consumer-delay 5ms --rate 20k/s \
  --spill-dir "$out/spill" --max-spill-bytes 16MiB
grep -q '"spilled": [1-9]' "$out"/spill-runs/latest/results.json \
  || { echo "ci-smoke: the spilling run recorded nothing spilled" >&2; exit 1; }
echo "ci-smoke: the run spilled to disk and drained it"

echo "--- crash test: 3 SIGKILLs of a write-ahead soak, then a run that drains"
./target/release/soak crash-test --kills 3 --out "$out/crash"

echo "--- the peers example (3 rounds of two groups, then one group isolated; debug build: a check that it runs, not a measurement)"
cargo run --quiet -p dispatcher --example peers -- --rounds 3 --sizes 1024 --producers 1,4 \
  --peers crossbeam,crossbeam-full | tee "$out/peers.txt"
for pattern in ' crossbeam .*(ahead|behind|even)' ' crossbeam-full .*(ahead|behind|even)' \
  " batches' share: crossbeam-full / crossbeam [0-9.]+ \\("; do
  lines=$(grep -cE "^1 KiB x [14] .*$pattern" "$out/peers.txt" || true)
  [ "$lines" -eq 2 ] \
    || { echo "ci-smoke: the peers example printed $lines lines matching '$pattern', expected 2" >&2; exit 1; }
done
echo "ci-smoke: the peers example gave a verdict against each peer and the batches' share for each group"
cargo run --quiet -p dispatcher --example peers -- --rounds 3 --sizes 1024 --producers 1 \
  --peers crossbeam,control --isolate | tee "$out/peers-isolated.txt"
for peer in crossbeam control; do
  grep -qE "^1 KiB x 1 .* $peer .*(ahead|behind|even)" "$out/peers-isolated.txt" \
    || { echo "ci-smoke: the peers example gave no verdict against $peer with --isolate" >&2; exit 1; }
done
echo "ci-smoke: the peers example gave a verdict against crossbeam and the A/A control, every run in a process of its own"
