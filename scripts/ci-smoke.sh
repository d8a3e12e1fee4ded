#!/usr/bin/env bash
# Short smoke checks run by .ci/run after the test suite.
# - A 10 s soak of the default scenario (`--preset quick`); its exit code is
#   the assessment's: 0 pass or warn, 1 fail.
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
sleep 3
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
[ "$status" -eq 143 ] || { echo "ci-smoke: expected exit 143 after SIGTERM, got $status" >&2; exit 1; }
grep -q '"signal": "SIGTERM"' "$out"/latest/results.json \
  || { echo "ci-smoke: results.json does not record the SIGTERM" >&2; exit 1; }
echo "ci-smoke: SIGTERM ended the run with a complete record"
