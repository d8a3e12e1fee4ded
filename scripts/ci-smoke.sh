#!/usr/bin/env bash
# Short smoke checks run by .ci/run after the test suite.
# - A 10 s soak of the default scenario (`--preset quick`); its exit code is
#   the assessment's: 0 pass or warn, 1 fail.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "--- 10 s soak (cargo soak --preset quick)"
cargo soak --preset quick --sample-every 2s
