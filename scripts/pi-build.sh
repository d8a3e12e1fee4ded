#!/usr/bin/env bash
# Cross-builds the release `soak` binary for a 64-bit Raspberry Pi OS / Debian
# arm64 (aarch64-unknown-linux-gnu) on a Debian bookworm x86_64 machine, and
# prints where it put it.
#
#   scripts/pi-build.sh            # install what is missing, build, check
#   scripts/pi-build.sh --no-install   # fail instead of installing packages
#
# Toolchain, in order of preference:
#   1. rustup's toolchain, if it already has the aarch64-unknown-linux-gnu target
#      (nothing is downloaded: rustup targets cannot be fetched here);
#   2. Debian's own Rust (`rustc-web` + `cargo-web`, bookworm-security, >= 1.85)
#      with the arm64 standard library `libstd-rust-web-dev:arm64` (multiarch).
# Either way the linker and jemalloc's C compiler are Debian's
# `aarch64-linux-gnu-gcc`, linking against bookworm's glibc 2.36, so the binary
# needs at most GLIBC_2.36 (Raspberry Pi OS bookworm has 2.36).
#
# The host build is left alone: the build goes to its own target directory
# (target/pi-build/, override with CARGO_TARGET_DIR) and the host's default
# toolchain is never changed. Note that Debian's rustc-web/cargo-web install
# /usr/bin/rustc and /usr/bin/cargo: rustup's ~/.cargo/bin stays first on PATH,
# so plain `cargo`/`rustc` are still rustup's; this script calls Debian's by
# their full path.
set -euo pipefail

TARGET=aarch64-unknown-linux-gnu
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target/pi-build}")
APT_LOG=$CARGO_TARGET_DIR/apt-install.log
INSTALL=1
case ${1:-} in
    --no-install) INSTALL=0 ;;
    "") ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--no-install]" >&2; exit 2 ;;
esac

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'pi-build: %s\n' "$*" >&2; exit 1; }
run() { printf '    $ %s\n' "$*" >&2; "$@"; }

SUDO=()
[[ $(id -u) -eq 0 ]] || SUDO=(sudo)

installed() { # PKG[:ARCH] -> 0 when dpkg has it installed
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

APT_UPDATED=0
apt_install() { # PKG... : installs only the ones that are missing
    local missing=() p
    for p in "$@"; do installed "$p" || missing+=("$p"); done
    if ((${#missing[@]} == 0)); then
        say "already installed: $*"
        return
    fi
    ((INSTALL)) || die "missing packages (run without --no-install): ${missing[*]}"
    if ((!APT_UPDATED)); then
        run "${SUDO[@]}" apt-get update -qq
        APT_UPDATED=1
    fi
    say "installing: ${missing[*]} (log: $APT_LOG)"
    mkdir -p "$(dirname "$APT_LOG")"
    if ! run "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$APT_LOG" 2>&1; then
        tail -n 20 "$APT_LOG" >&2
        die "apt-get install failed (see $APT_LOG)"
    fi
}

command -v dpkg >/dev/null || die "needs a Debian (dpkg/apt) machine"

# --- 1. the C cross toolchain (linker + jemalloc's C build) -------------------
say "C cross toolchain for $TARGET"
apt_install gcc-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu file

# --- 2. a Rust toolchain that has the aarch64 standard library ----------------
CARGO_BIN=
RUSTC_BIN=
if command -v rustup >/dev/null &&
    rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
    say "using rustup's toolchain (it has the $TARGET target)"
    CARGO_BIN=$(rustup which cargo)
    RUSTC_BIN=$(rustup which rustc)
else
    say "rustup has no $TARGET target (and cannot download one here): using Debian's rustc-web"
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        ((INSTALL)) || die "arm64 is not a dpkg architecture (run without --no-install)"
        run "${SUDO[@]}" dpkg --add-architecture arm64
        APT_UPDATED=0 # the arm64 package lists are not there yet
    else
        say "dpkg already has the arm64 architecture"
    fi
    apt_install rustc-web cargo-web libstd-rust-web-dev:arm64
    # Look the binaries up in the packages rather than guessing their names.
    RUSTC_BIN=$(dpkg -L rustc-web | grep -E '^/usr/bin/rustc[^/]*$' | head -1)
    CARGO_BIN=$(dpkg -L cargo-web | grep -E '^/usr/bin/cargo[^/]*$' | head -1)
    [[ -x $RUSTC_BIN && -x $CARGO_BIN ]] || die "cannot find the rustc-web/cargo-web binaries"
fi

RUST_VERSION=$("$RUSTC_BIN" --version)
say "rustc: $RUSTC_BIN ($RUST_VERSION)"
say "cargo: $CARGO_BIN ($("$CARGO_BIN" --version))"
# The workspace needs edition 2024 / rust-version 1.85.
read -r major minor _ < <("$RUSTC_BIN" --version | sed -E 's/^rustc ([0-9]+)\.([0-9]+).*/\1 \2/')
((major > 1 || minor >= 85)) || die "$RUST_VERSION is older than the workspace's rust-version 1.85"

# --- 3. build ----------------------------------------------------------------
export RUSTC=$RUSTC_BIN
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
# jemalloc bakes the page size in at build time and refuses to start on a
# kernel whose pages are LARGER than that ("Unsupported system page size").
# A larger page size works on a smaller-page kernel (it only rounds some
# allocations up), not the reverse. 2^16 = 64 KiB covers 4 KiB (Pi 3/4,
# Pi OS default), 16 KiB (Pi 5's kernel_2712) and 64 KiB arm64 kernels.
# soak's build.rs records the value (METRONOME_JEMALLOC_LG_PAGE).
export JEMALLOC_SYS_WITH_LG_PAGE=${JEMALLOC_SYS_WITH_LG_PAGE:-16}
say "JEMALLOC_SYS_WITH_LG_PAGE=$JEMALLOC_SYS_WITH_LG_PAGE (jemalloc page size 2^$JEMALLOC_SYS_WITH_LG_PAGE bytes)"
say "building soak (release, $TARGET) into $CARGO_TARGET_DIR"
cd "$ROOT"
run "$CARGO_BIN" build --release --locked -p soak --bin soak --target "$TARGET"

BIN=$CARGO_TARGET_DIR/$TARGET/release/soak
[[ -x $BIN ]] || die "the build did not produce $BIN"

# --- 4. check what was built -------------------------------------------------
say "file: $(file -b "$BIN")"
GLIBC_MAX=$(aarch64-linux-gnu-objdump -T "$BIN" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
say "newest glibc symbol version needed: $GLIBC_MAX (must be <= GLIBC_2.36)"
if [[ $(printf '%s\n' "$GLIBC_MAX" GLIBC_2.36 | sort -V | tail -1) != GLIBC_2.36 ]]; then
    die "$BIN needs $GLIBC_MAX, newer than glibc 2.36"
fi

if command -v qemu-aarch64-static >/dev/null; then
    say "smoke test under qemu-aarch64-static: $(qemu-aarch64-static -L /usr/aarch64-linux-gnu "$BIN" --version)"
else
    say "(qemu-aarch64-static not installed: apt-get install qemu-user-static to smoke-test it here)"
fi

say "built: $BIN"
echo "$BIN"
