#!/usr/bin/env bash
# End-to-end check of the live dashboard: runs a soak under tmux, halves the
# buffered-bytes limit with keys, quits with `q`, and checks that the run
# record holds the change. Needs tmux (apt-get install -y tmux).
#
#   scripts/tui-e2e.sh [OUT_DIR]      (default target/soak-tui-e2e)
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-target/soak-tui-e2e}
session=metronome-tui-e2e
command -v tmux >/dev/null || { echo "tui-e2e: tmux is missing (apt-get install -y tmux)" >&2; exit 2; }
cargo build --release --quiet -p soak
rm -rf "$out"
tmux kill-session -t "$session" 2>/dev/null || true
trap 'tmux kill-session -t "$session" 2>/dev/null || true' EXIT

tmux new-session -d -s "$session" -x 160 -y 48 \
  "./target/release/soak --tui --duration 60s --sample-every 250ms --producers 8 --out $out; echo soak-exit=\$?; sleep 30"

screen() { tmux capture-pane -p -t "$session"; }
wait_for() { # wait_for TEXT SECONDS
  for _ in $(seq 1 $(( $2 * 10 ))); do screen | grep -q -- "$1" && return 0; sleep 0.1; done
  echo "tui-e2e: '$1' did not appear; screen was:" >&2; screen >&2; return 1
}

wait_for "max buffered" 30
sleep 1.5
tmux send-keys -t "$session" Down Down
sleep 0.3
tmux send-keys -t "$session" -- -
wait_for "32.0 MiB" 10
sleep 1
echo "--- dashboard after halving max buffered bytes:"
screen
tmux send-keys -t "$session" q
wait_for "soak-exit=" 30
echo "--- after quitting:"
screen | grep -E "soak-exit=|PASS|WARN|FAIL" || true

results="$out/latest/results.json"
[ -f "$results" ] || { echo "tui-e2e: no $results" >&2; exit 1; }
python3 - "$results" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
changes = [e for e in r["events"] if e.get("kind") == "reconfigure" and e.get("knob") == "max_buffered_bytes"]
assert changes, f"no max_buffered_bytes reconfigure event in {r['events']}"
c = changes[0]
assert (c["from"], c["to"]) == (str(64 << 20), str(32 << 20)), c
assert r["duration_s"] < 55, f"q stopped the 60 s run early: {r['duration_s']}"
print(f"tui-e2e: OK: {c['knob']} {c['from']} -> {c['to']} at {c['at_s']:.2f} s (source {c['source']}); "
      f"run stopped by q after {r['duration_s']:.1f} s; overall {r['assessment']['overall']}")
PY
