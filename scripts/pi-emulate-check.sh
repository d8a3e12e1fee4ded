#!/usr/bin/env bash
# The emulated Raspberry Pi check: runs `scripts/pi-emulate.sh --duration 10s --no-tui`
# (an aarch64 kernel under qemu-system-aarch64, the cross-built soak inside) and fails
# unless the guest brings back a complete record made on aarch64, marked emulated, with
# every accepted event accounted for (soak/tests/pi_emulated.rs checks it).
#
#   scripts/pi-emulate-check.sh [PI-EMULATE ARGS...]    # e.g. --kernel 16k
#
# Skipped (exit 0, saying so) where qemu-system-aarch64 is neither installed nor
# installable. Not part of .ci/run by default (cold, it installs packages and
# cross-builds the soak; see the README): set METRONOME_CI_PI_EMULATE=1 there.
# PI_EMULATE_CHECK_TIMEOUT (default 40m) bounds the whole emulated run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
say() { printf '==> pi-emulate-check: %s\n' "$*" >&2; }

if ! command -v qemu-system-aarch64 >/dev/null &&
    ! apt-cache policy qemu-system-arm 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    say "SKIPPED: qemu-system-aarch64 is not installed and apt offers no qemu-system-arm"
    exit 0
fi

OUT=$ROOT/target/pi-emulate-check
rm -rf "$OUT"
START=$SECONDS
set +e
timeout --foreground "${PI_EMULATE_CHECK_TIMEOUT:-40m}" \
    scripts/pi-emulate.sh --out "$OUT" "$@" --duration 10s --no-tui </dev/null
RC=$?
set -e
say "scripts/pi-emulate.sh exited with $RC after $((SECONDS - START)) s"
((RC != 124)) || { say "FAILED: timed out"; exit 1; }
((RC == 0)) || { say "FAILED: the soak in the guest exited with $RC (see $OUT/.pi-emulate/console.log)"; exit 1; }

METRONOME_PI_EMULATED_RUN=$OUT/latest cargo test -q -p soak --test pi_emulated -- --ignored ||
    { say "FAILED: the record in $OUT/latest"; exit 1; }
say "PASSED in $((SECONDS - START)) s: $OUT/latest"
