#!/usr/bin/env bash
# End to end against real servers, all on loopback: a NATS server with
# JetStream (Debian's nats-server) and a Prometheus (Debian's prometheus)
# scraping the soak's --metrics-addr every second. Runs a short soak into
# NATS with the metrics endpoint on, then checks:
#   (a) the JetStream stream holds exactly the run record's delivered count
#       (from the server's monitoring endpoint, /jsz?streams=true);
#   (b) Prometheus scraped the run, and its HTTP API (/api/v1/query) returns
#       a delivered rate within RATE_TOLERANCE_PCT (default 20%) of the run
#       record's avg_delivered_per_sec, and a delivered total that is exactly
#       one of the totals in the run's samples.jsonl.
# Both servers are stopped on exit, also on failure. Exits non-zero with a
# message on any mismatch.
#
# Usage: scripts/nats-prometheus-e2e.sh
# Env:   SOAK_BIN (default: a debug build of soak, built here), E2E_DURATION (10s),
#        RATE_TOLERANCE_PCT (20), KEEP_E2E_DIR=1 to keep the temp directory.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'nats-prometheus-e2e: %s\n' "$*"; }
fail() {
  printf 'nats-prometheus-e2e: FAIL: %s\n' "$*" >&2
  exit 1
}

# -- tools -------------------------------------------------------------------
missing=()
command -v nats-server >/dev/null || missing+=(nats-server)
command -v prometheus >/dev/null || missing+=(prometheus)
command -v curl >/dev/null || missing+=(curl)
command -v jq >/dev/null || missing+=(jq)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || fail "missing ${missing[*]}: install them (apt-get install ${missing[*]})"
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# -- a free loopback port: nothing answers on it ------------------------------
# Chosen below the kernel's ephemeral range: a port inside it can be taken as
# the source port of any outgoing connection (prometheus's scrapes, the soak's
# NATS client, curl) between this check and the listener's bind, and the bind
# then fails with "Address already in use".
ephemeral_low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_port() {
  local port span=$((ephemeral_low - 10000))
  [ "$span" -gt 1000 ] || fail "the ephemeral port range starts at $ephemeral_low: no room below it"
  for _ in $(seq 1 100); do
    port=$((10000 + RANDOM % span))
    case " ${taken_ports:-} " in *" $port "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  fail "no free loopback port found"
}

wait_for() { # URL WHAT
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null "$1" && return
    sleep 0.1
  done
  fail "$2 did not come up at $1"
}

tmp=$(mktemp -d)
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ $status -ne 0 ]; then
    for log in "$tmp"/*.log; do
      [ -s "$log" ] && { echo "--- $log (last lines)"; tail -n 20 "$log"; }
    done
  fi
  if [ "${KEEP_E2E_DIR:-0}" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# -- the soak binary ----------------------------------------------------------
if [ -z "${SOAK_BIN:-}" ]; then
  cargo build -q -p soak
  SOAK_BIN="${CARGO_TARGET_DIR:-target}/debug/soak"
fi
[ -x "$SOAK_BIN" ] || fail "no soak binary at $SOAK_BIN"

nats_port=$(free_port) && taken_ports="$nats_port"
nats_mon=$(free_port) && taken_ports="$taken_ports $nats_mon"
prom_port=$(free_port) && taken_ports="$taken_ports $prom_port"
metrics_port=$(free_port)
subject=metronome.e2e
stream=METRONOME_E2E

# -- servers ------------------------------------------------------------------
nats-server -js -a 127.0.0.1 -p "$nats_port" -m "$nats_mon" -sd "$tmp/jetstream" >"$tmp/nats.log" 2>&1 &
pids+=($!)
cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: soak
    static_configs:
      - targets: ['127.0.0.1:$metrics_port']
EOF
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prometheus" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$tmp/prometheus.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$nats_mon/healthz" "nats-server"
wait_for "http://127.0.0.1:$prom_port/-/ready" "prometheus"
# Prometheus applies new targets every 5 s: wait for its first (failing)
# scrape, so it scrapes the run from its first second.
for _ in $(seq 1 150); do
  last=$(curl -sf "http://127.0.0.1:$prom_port/api/v1/targets" |
    jq -r '.data.activeTargets[0].lastScrape // "0001"')
  [[ "$last" == 0001* ]] || break
  sleep 0.1
done
[[ "$last" != 0001* ]] || fail "prometheus never tried to scrape 127.0.0.1:$metrics_port"
say "nats-server on 127.0.0.1:$nats_port (monitor $nats_mon), prometheus on 127.0.0.1:$prom_port"

# -- the run --------------------------------------------------------------------
# A small buffer keeps the drain short however slow the broker is.
# 1 KiB events: the heap check's budget (1.25x the limit + 8 MiB) then leaves
# room for the broker client's buffers.
"$SOAK_BIN" --duration "${E2E_DURATION:-10s}" --max-buffered-bytes 16MiB --payload fixed:1KiB \
  --drain-timeout 30s \
  --no-tui -q --out "$tmp/runs" --metrics-addr "127.0.0.1:$metrics_port" \
  --sink "nats://127.0.0.1:$nats_port" --subject "$subject" --stream "$stream" \
  >"$tmp/soak.log" 2>&1 || fail "the soak run failed (exit $?)"
results="$tmp/runs/latest/results.json"
[ -f "$results" ] || fail "no run record at $results"
run_id=$(jq -r .run_id "$results")
delivered=$(jq -r .totals.delivered "$results")
avg_rate=$(jq -r .throughput.avg_delivered_per_sec "$results")
sink=$(jq -r .sink "$results")
[ "$sink" = "nats://127.0.0.1:$nats_port $subject" ] || fail "the record's sink is '$sink'"
[ "$delivered" -gt 0 ] || fail "the run delivered nothing"
say "run $run_id delivered $delivered events ($(printf '%.0f' "$avg_rate")/s) into $sink"

# -- (a) the stream holds exactly what was delivered ----------------------------
stored=$(curl -sf "http://127.0.0.1:$nats_mon/jsz?streams=true" |
  jq -r --arg s "$stream" '[.account_details[]?.stream_detail[]? | select(.name == $s) | .state.messages] | first // "none"')
[ "$stored" = "$delivered" ] ||
  fail "stream $stream holds $stored messages, the run record says $delivered delivered"
say "(a) stream $stream holds $stored messages = delivered"

# -- (b) Prometheus scraped the run and agrees with its record -------------------
query() { # PROMQL [EVAL_TIME] -> the first result's value, or "none"
  curl -sf -G "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" \
    ${2:+--data-urlencode "time=$2"} | jq -r '.data.result[0].value[1] // "none"'
}
sel="{run_id=\"$run_id\",job=\"soak\"}"
scrapes=$(query "count_over_time(metronome_delivered_total$sel[10m])")
[ "$scrapes" != none ] && [ "$scrapes" -ge 3 ] || fail "Prometheus has $scrapes scrapes of the run"
seen=$(query "max_over_time(metronome_delivered_total$sel[10m])")
sampled=$(jq -s --argjson v "$seen" 'any(.[]; .totals?.delivered == $v)' "$tmp/runs/latest/samples.jsonl")
[ "$sampled" = true ] ||
  fail "Prometheus's delivered total $seen is not one of the run's sampled totals"
# rate() divides by its window: make the window the span Prometheus scraped,
# evaluated at the last scrape.
span=$(curl -sf -G "http://127.0.0.1:$prom_port/api/v1/query" \
  --data-urlencode "query=metronome_delivered_total$sel[10m]" |
  jq -r '.data.result[0].values | "\(.[0][0]) \(.[-1][0])"')
read -r first_at last_at <<<"$span"
window=$(awk -v a="$first_at" -v b="$last_at" 'BEGIN { printf "%d", b - a + 0.5 }')
[ "$window" -ge 2 ] || fail "Prometheus scraped the run over only ${window}s"
rate=$(query "rate(metronome_delivered_total$sel[${window}s])" "$last_at")
[ "$rate" != none ] || fail "Prometheus returned no delivered rate"
tolerance=${RATE_TOLERANCE_PCT:-20}
awk -v r="$rate" -v a="$avg_rate" -v t="$tolerance" 'BEGIN { d = (r - a) / a * 100; if (d < 0) d = -d; exit !(d <= t) }' ||
  fail "Prometheus's delivered rate $rate/s is not within $tolerance% of the record's $avg_rate/s"
dispatcher=$(query "max_over_time(dispatcher_delivered_total$sel[10m])")
[ "$dispatcher" != none ] && [ "$dispatcher" -le "$delivered" ] ||
  fail "the dispatcher's own dispatcher_delivered_total ($dispatcher) is missing or above $delivered"
say "(b) Prometheus: $scrapes scrapes over ${window}s, delivered rate $(printf '%.0f' "$rate")/s vs record $(printf '%.0f' "$avg_rate")/s (within $tolerance%), total $seen sampled"
say "PASS"
