#!/usr/bin/env bash
# Takes a PNG screenshot of the live dashboard: runs a short soak under tmux (160x48),
# halves the buffered-bytes limit, pauses and resumes the producers (so the charts show
# their markers), captures the pane with its colours (`capture-pane -e`), turns that into
# HTML (xterm's palette) and screenshots it with headless Chromium.
#
#   scripts/dashboard-screenshot.sh OUT.png [SOAK_BINARY]
#
# SOAK_BINARY defaults to target/debug/soak (built first). Needs tmux, python3 and
# chromium (apt-get install -y tmux chromium). NO_COLOR=1 in the environment captures the
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
for tool in tmux python3; do
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

tmux capture-pane -e -p -t "$session" >"$html.ansi"
# ANSI (SGR) to HTML, with xterm's palette: each cell's colours as the terminal shows them.
# Braille is not in the monospace font: its fallback glyphs are wider and would shift the
# rest of the line, so each sits in a box one cell wide.
python3 - "$html.ansi" >"$html" <<'PY'
import html, re, sys

BASE = ["#000000", "#cd0000", "#00cd00", "#cdcd00", "#0000ee", "#cd00cd", "#00cdcd", "#e5e5e5",
        "#7f7f7f", "#ff0000", "#00ff00", "#ffff00", "#5c5cff", "#ff00ff", "#00ffff", "#ffffff"]

def indexed(n):
    if n < 16:
        return BASE[n]
    if n < 232:
        n -= 16
        level = lambda v: 0 if v == 0 else 55 + 40 * v
        return "#%02x%02x%02x" % (level(n // 36), level(n // 6 % 6), level(n % 6))
    return "#%02x%02x%02x" % ((8 + 10 * (n - 232),) * 3)

def apply(codes, st):
    codes = [int(c) if c else 0 for c in codes.split(";")] if codes else [0]
    i = 0
    while i < len(codes):
        c = codes[i]
        if c == 0:
            st.clear()
        elif c in (1, 2, 3, 4, 7):
            st[c] = True
        elif c == 22:
            st.pop(1, None); st.pop(2, None)
        elif c in (23, 24, 27):
            st.pop(c - 20, None)
        elif 30 <= c <= 37 or 90 <= c <= 97:
            st["fg"] = BASE[c - 30 if c < 90 else c - 82]
        elif 40 <= c <= 47 or 100 <= c <= 107:
            st["bg"] = BASE[c - 40 if c < 100 else c - 92]
        elif c in (39, 49):
            st.pop("fg" if c == 39 else "bg", None)
        elif c in (38, 48) and i + 1 < len(codes):
            key = "fg" if c == 38 else "bg"
            if codes[i + 1] == 5 and i + 2 < len(codes):
                st[key] = indexed(codes[i + 2]); i += 2
            elif codes[i + 1] == 2 and i + 4 < len(codes):
                st[key] = "#%02x%02x%02x" % tuple(codes[i + 2:i + 5]); i += 4
        i += 1

def css(st):
    fg, bg = st.get("fg", "#e5e5e5"), st.get("bg", "#000000")
    if st.get(7):
        fg, bg = bg, fg
    out = "color:%s;background:%s" % (fg, bg)
    if st.get(1):
        out += ";font-weight:bold"
    if st.get(2):
        out += ";opacity:.6"
    if st.get(4):
        out += ";text-decoration:underline"
    return out

def cell(ch):
    text = html.escape(ch)
    return '<span class=c>%s</span>' % text if "\u2800" <= ch <= "\u28ff" else text

st, rows = {}, []
for line in open(sys.argv[1], encoding="utf-8").read().rstrip("\n").split("\n"):
    out = []
    for part in re.split(r"(\x1b\[[0-9;]*m)", line):
        if part.startswith("\x1b["):
            apply(part[2:-1], st)
        elif part:
            out.append('<span style="%s">%s</span>' % (css(st), "".join(map(cell, part))))
    rows.append("".join(out))
print('<!DOCTYPE html><html><head><meta charset="utf-8"><title>Metronome dashboard</title><style>'
      'body{background:#000;margin:0}'
      'pre{font-family:"DejaVu Sans Mono",monospace;font-size:13px;line-height:1.2;margin:8px}'
      '.c{display:inline-block;width:1ch;overflow:hidden;vertical-align:bottom}'
      '</style></head><body><pre>' + "\n".join(rows) + "</pre></body></html>")
PY
rm -f "$html.ansi"
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --window-size=1400,900 \
    --screenshot="$out" "file://$html" 2>/dev/null
echo "$out"
