#!/usr/bin/env bash
# Renders a run's report.html and takes a 1280 px wide screenshot of it with headless
# Chromium, to look at the report without a desktop.
#
#   scripts/report-screenshot.sh RUN_DIR [OUT.png]
#
# RUN_DIR is a run directory (e.g. target/soak/latest); OUT.png defaults to
# RUN_DIR/report.png. Needs Debian's chromium (apt-get install -y chromium).
# HEIGHT (default 4000) sets the window height, i.e. how much of the page is captured.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 RUN_DIR [OUT.png]" >&2
    exit 2
fi
run_dir=$(cd "$1" && pwd)
out=${2:-$run_dir/report.png}
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

cargo soak report "$run_dir" >/dev/null

browser=$(command -v chromium || command -v chromium-browser || true)
if [[ -z "$browser" ]]; then
    echo "chromium not found: apt-get install -y chromium" >&2
    exit 1
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --window-size="1280,${HEIGHT:-4000}" \
    --screenshot="$out" "file://$run_dir/report.html" 2>/dev/null
echo "$out"
