#!/usr/bin/env bash
# Takes a PNG screenshot of the live dashboard: runs a short soak under tmux (160x48),
# halves the buffered-bytes limit, pauses and resumes the producers (so the charts show
# their markers), captures the pane with its colours, turns it into HTML with `aha` and
# screenshots that with headless Chromium.
#
#   scripts/dashboard-screenshot.sh OUT.png [SOAK_BINARY]
#
# SOAK_BINARY defaults to target/debug/soak (built first). Needs tmux, aha and chromium
# (apt-get install -y tmux aha chromium). NO_COLOR=1 in the environment captures the
# monochrome dashboard. Leaves OUT.html (the ANSI capture as HTML) beside OUT.png.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 OUT.png [SOAK_BINARY]" >&2
    exit 2
fi
out=$1
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
html=${out%.png}.html
soak=${2:-}
if [[ -z "$soak" ]]; then
    cargo build --quiet -p soak
    soak=target/debug/soak
fi
case "$soak" in /*) ;; *) soak="$PWD/$soak" ;; esac
for tool in tmux aha; do
    command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y $tool" >&2; exit 2; }
done
browser=$(command -v chromium || command -v chromium-browser || true)
[[ -n "$browser" ]] || { echo "chromium is missing: apt-get install -y chromium" >&2; exit 2; }

session=metronome-dash-shot-$$
runs=$(mktemp -d)
profile=$(mktemp -d)
trap 'tmux kill-session -t "$session" 2>/dev/null || true; rm -rf "$runs" "$profile"' EXIT

tmux new-session -d -s "$session" -x 160 -y 48 \
    "env ${NO_COLOR:+NO_COLOR=$NO_COLOR} TERM=xterm-256color $soak --tui -d 30s --sample-every 250ms --out $runs; sleep 60"
screen() { tmux capture-pane -p -t "$session"; }
wait_for() { # wait_for TEXT SECONDS
    for _ in $(seq 1 $(($2 * 10))); do screen | grep -q -- "$1" && return 0; sleep 0.1; done
    echo "dashboard-screenshot: '$1' did not appear; the screen was:" >&2
    screen >&2
    return 1
}

wait_for "max buffered" 60
sleep 4
tmux send-keys -t "$session" Down Down
sleep 0.3
tmux send-keys -t "$session" -- -
sleep 3
tmux send-keys -t "$session" p
sleep 2.5
tmux send-keys -t "$session" p
sleep 4

tmux capture-pane -e -p -t "$session" |
    aha --black --title "Metronome dashboard" |
    python3 -c '
import re, sys
# Braille is not in the monospace font: its fallback glyphs are wider and would shift the
# rest of the line, so each sits in a box one cell wide.
css = "<style>pre{font-family:\"DejaVu Sans Mono\",monospace;font-size:13px;line-height:1.2;margin:8px}" \
      ".c{display:inline-block;width:1ch;overflow:hidden;vertical-align:bottom}</style></head>"
html = sys.stdin.read().replace("</head>", css, 1)
sys.stdout.write(re.sub("([\u2800-\u28ff])", r"<span class=c>\1</span>", html))
' >"$html"
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --window-size=1400,900 \
    --screenshot="$out" "file://$html" 2>/dev/null
echo "$out"
