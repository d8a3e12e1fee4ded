#!/usr/bin/env bash
# Rehearses the Raspberry Pi 4 run without a Pi: boots Debian's arm64 kernel under
# full-system emulation (qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 4 -m 4G: a
# Pi 4's four Cortex-A72 cores), runs the cross-built soak (scripts/pi-build.sh) inside
# with the given arguments, brings the run directory back to HOST_DIR and exits with
# the soak's exit code.
#
#   scripts/pi-emulate.sh [--out HOST_DIR] [--kernel 4k|16k] [--no-install] [--] [SOAK ARGS...]
#
#   --out HOST_DIR   where run directories come back (default target/pi-emulate/):
#                    HOST_DIR/<run-id>/ and HOST_DIR/latest, as `soak --out` makes them
#   --kernel 4k      Debian's arm64 kernel, 4 KiB pages (Raspberry Pi OS's page size)
#   --kernel 16k     Debian's arm64-16k kernel (bookworm-backports, 16 KiB pages); the
#                    Cortex-A72 has no 16 KiB granule, so this one runs on `-cpu max`
#   --no-install     fail instead of installing packages
#   SOAK ARGS        passed to the soak (`--no-tui` is added unless --tui/--no-tui is given)
#
# Everything comes from Debian's registry: qemu-system-arm and cpio are installed on the
# host; the arm64 kernel and busybox-static are downloaded and unpacked (never installed)
# into target/pi-emulate-cache/. The guest is a busybox initramfs with no network; the
# soak binary and the run directory cross a virtio-9p share (HOST_DIR/.pi-emulate/ holds
# the arguments, the console log and the exit code). The record's environment.emulation
# says how the machine was emulated; its figures are the emulator's, not a Pi's.
#
# Exit code: the soak's; 2 for a bad argument; 125 when the guest never reported one
# (setup, boot or emulator failure: see the console log). Ctrl-C reaches the soak, which
# stops and writes its record; Ctrl-A X quits the emulator at once.
# PI_EMULATE_MEMORY (default 4G) and PI_EMULATE_SMP (default 4) size the guest;
# PI_EMULATE_CPU overrides the CPU model (e.g. `max`, to compare with the Cortex-A72).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/target/pi-emulate
CACHE=$ROOT/target/pi-emulate-cache
KERNEL=4k
INSTALL=1
SOAK_ARGS=()
while (($#)); do
    case $1 in
        --out) [[ $# -ge 2 ]] || { echo "pi-emulate: --out needs a directory" >&2; exit 2; }
            OUT=$2; shift ;;
        --out=*) OUT=${1#--out=} ;;
        --kernel) [[ $# -ge 2 ]] || { echo "pi-emulate: --kernel needs 4k or 16k" >&2; exit 2; }
            KERNEL=$2; shift ;;
        --kernel=*) KERNEL=${1#--kernel=} ;;
        --no-install) INSTALL=0 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        --) shift; SOAK_ARGS+=("$@"); break ;;
        *) SOAK_ARGS+=("$1") ;;
    esac
    shift
done
case $KERNEL in
    4k) META=linux-image-arm64 CPU=cortex-a72 ;;
    16k) META=linux-image-arm64-16k CPU=max ;;
    *) echo "pi-emulate: --kernel $KERNEL: expected 4k or 16k" >&2; exit 2 ;;
esac
[[ " ${SOAK_ARGS[*]-} " == *" --tui "* || " ${SOAK_ARGS[*]-} " == *" --no-tui "* ]] ||
    SOAK_ARGS+=(--no-tui)
OUT=$(realpath -m "$OUT")
XFER=$OUT/.pi-emulate
CPU=${PI_EMULATE_CPU:-$CPU}
MEMORY=${PI_EMULATE_MEMORY:-4G}
SMP=${PI_EMULATE_SMP:-4}
APT_LOG=$CACHE/apt-install.log
T0=$SECONDS

say() { printf '==> [%4ds] %s\n' $((SECONDS - T0)) "$*" >&2; }
die() { printf 'pi-emulate: %s\n' "$*" >&2; exit 125; }
SUDO=()
[[ $(id -u) -eq 0 ]] || SUDO=(sudo)
NO_INSTALL=()
((INSTALL)) || NO_INSTALL=(--no-install)
mkdir -p "$CACHE" "$XFER"

installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]; }
APT_UPDATED=0
apt_update() {
    ((APT_UPDATED)) && return
    ((INSTALL)) || die "the package lists need an update (run without --no-install)"
    "${SUDO[@]}" apt-get update -qq || die "apt-get update failed"
    APT_UPDATED=1
}
APT_FROM=() # -t SUITE, when the host's QEMU comes from a backport
apt_install() { # PKG...: installs on the host only those that are missing
    local missing=() p
    for p in "$@"; do installed "$p" || missing+=("$p"); done
    ((${#missing[@]})) || { say "already installed: $*"; return; }
    ((INSTALL)) || die "missing packages (run without --no-install): ${missing[*]}"
    apt_update
    say "installing ${missing[*]} ${APT_FROM[*]} (log: $APT_LOG)"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${APT_FROM[@]}" \
        --no-install-recommends "${missing[@]}" >>"$APT_LOG" 2>&1 ||
        { tail -n 20 "$APT_LOG" >&2; die "apt-get install failed (see $APT_LOG)"; }
}
unpack() { # PKG:arm64 DIR: downloads the package (not installing it) and unpacks it in DIR
    local tmp
    tmp=$(mktemp -d "$CACHE/download.XXXXXX")
    (cd "$tmp" && apt-get download -q "$1" >>"$APT_LOG" 2>&1) ||
        { rm -rf "$tmp"; die "apt-get download $1 failed (see $APT_LOG)"; }
    mkdir -p "$2"
    dpkg-deb -x "$tmp"/*.deb "$2"
    rm -rf "$tmp"
}
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }'; }
BACKPORTS=bookworm-backports
need_backports() { # WHY: makes apt know bookworm-backports (installing nothing from it)
    apt-cache policy | grep -q " $BACKPORTS/main" && return
    ((INSTALL)) || die "$1 needs $BACKPORTS, which apt does not know (run without --no-install)"
    say "adding $BACKPORTS to apt's sources ($1)"
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$BACKPORTS" |
        "${SUDO[@]}" tee "/etc/apt/sources.list.d/debian-$BACKPORTS.sources" >/dev/null
    APT_UPDATED=0
    apt_update
}

# --- 1. the soak for aarch64 ---------------------------------------------------
say "[1/5] the soak for aarch64 (scripts/pi-build.sh)"
BIN=$("$ROOT/scripts/pi-build.sh" "${NO_INSTALL[@]}" 2> >(sed 's/^/    /' >&2) | tail -n 1) ||
    die "scripts/pi-build.sh failed"
[[ -x $BIN ]] || die "scripts/pi-build.sh did not produce a binary"

# --- 2. host tools and the guest's packages -----------------------------------
say "[2/5] emulator and guest packages"
apt_install cpio kmod xz-utils zstd binutils-aarch64-linux-gnu libc6-arm64-cross libgcc-s1-arm64-cross
if ! installed qemu-system-arm && installed qemu-utils &&
    [[ $(dpkg-query -W -f='${Version}' qemu-utils) == *bpo* ]]; then
    # A backported QEMU is already here: qemu-system-arm must come from the same suite.
    need_backports "the host's qemu-utils is a backport"
    APT_FROM=(-t "$BACKPORTS")
fi
apt_install qemu-system-arm
APT_FROM=()
dpkg --print-foreign-architectures | grep -qx arm64 || die "arm64 is not a dpkg architecture (scripts/pi-build.sh adds it)"
[[ -n $(candidate "$META:arm64") ]] || apt_update
[[ $KERNEL == 4k || -n $(candidate "$META:arm64") ]] || need_backports "$META is a backport"
PKG=$(apt-cache depends "$META:arm64" | awk '/Depends: linux-image-/ { sub(/:arm64$/, "", $2); print $2; exit }')
[[ -n $PKG ]] || die "apt knows no $META:arm64"
KVER=$(candidate "$PKG:arm64")
BUSYBOX_VER=$(candidate busybox-static:arm64)
[[ -n $KVER && -n $BUSYBOX_VER ]] || die "apt has no candidate for $PKG:arm64 or busybox-static:arm64"
BUSYBOX=$CACHE/busybox-static_$BUSYBOX_VER
KDIR=$CACHE/${PKG}_$KVER
if [[ -x $BUSYBOX/bin/busybox ]]; then say "busybox-static:arm64 $BUSYBOX_VER (cached)"; else
    say "downloading busybox-static:arm64 $BUSYBOX_VER"
    unpack busybox-static:arm64 "$BUSYBOX"
fi

# --- 3. the kernel and the modules the share needs -----------------------------
if [[ -f $KDIR/Image && -f $KDIR/modules/order ]]; then say "[3/5] kernel $PKG $KVER (cached)"; else
    say "[3/5] downloading and unpacking kernel $PKG $KVER (about 60 MB)"
    rm -rf "$KDIR" "$KDIR.tmp"
    unpack "$PKG:arm64" "$KDIR.tmp"
    mkdir -p "$KDIR/modules"
    cp "$KDIR.tmp"/boot/vmlinuz-* "$KDIR/Image"
    MODS=$(echo "$KDIR.tmp"/lib/modules/*)
    ORDER=() SEEN=" "
    need() { # MODULE: queues it after what it depends on (modinfo reads arm64 modules too)
        local m=${1//-/_} f dep
        [[ $SEEN == *" $m "* ]] && return
        SEEN+="$m "
        f=$(find "$MODS/kernel" \( -name "$m.ko*" -o -name "${m//_/-}.ko*" \) -print -quit)
        if [[ -z $f ]]; then
            grep -q "/${m}.ko\$\|/${m//_/-}.ko\$" "$MODS/modules.builtin" || die "module $m is not in $PKG"
            return
        fi
        for dep in $(modinfo -F depends "$f" | tr , ' '); do need "$dep"; done
        ORDER+=("$f")
    }
    for m in virtio_mmio 9pnet_virtio 9p; do need "$m"; done
    for f in "${ORDER[@]}"; do
        name=$(basename "${f%.xz}")
        name=${name%.zst}
        case $f in
            *.xz) xz -dc "$f" ;; *.zst) zstd -qdc "$f" ;; *) cat "$f" ;;
        esac >"$KDIR/modules/$name"
        echo "$name" >>"$KDIR/modules/order"
    done
    rm -rf "$KDIR.tmp"
fi
say "    modules for the share: $(tr '\n' ' ' <"$KDIR/modules/order")"

# --- 4. the initramfs: busybox, the modules, the soak's glibc, /init -----------
say "[4/5] initramfs"
INITRD=$CACHE/initramfs-${KERNEL}.cpio
STAGE=$(mktemp -d "$CACHE/initramfs.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE"/{bin,dev,etc,host,lib/modules,lib/aarch64-linux-gnu,proc,runs,sys,tmp}
cp "$BUSYBOX/bin/busybox" "$STAGE/bin/busybox"
cp "$KDIR"/modules/* "$STAGE/lib/modules/"
cp "$ROOT/scripts/pi-emulate-init.sh" "$STAGE/init"
chmod 755 "$STAGE/init"
"${SUDO[@]}" mknod -m 600 "$STAGE/dev/console" c 5 1
SYSROOT=/usr/aarch64-linux-gnu/lib
needed() { aarch64-linux-gnu-readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
LIBS=" " queue=("$BIN")
while ((${#queue[@]})); do
    for lib in $(needed "${queue[0]}"); do
        [[ $LIBS == *" $lib "* ]] && continue
        [[ -e $SYSROOT/$lib ]] || die "the soak needs $lib, not found in $SYSROOT"
        LIBS+="$lib "
        cp -L "$SYSROOT/$lib" "$STAGE/lib/aarch64-linux-gnu/$lib"
        queue+=("$SYSROOT/$lib")
    done
    queue=("${queue[@]:1}")
done
INTERP=$(aarch64-linux-gnu-readelf -l "$BIN" | sed -n 's/.*interpreter: \(.*\)\]/\1/p')
mkdir -p "$STAGE$(dirname "$INTERP")"
cp -L "$SYSROOT/$(basename "$INTERP")" "$STAGE$INTERP"
(cd "$STAGE" && find . | cpio -o -H newc --quiet) >"$INITRD"
say "    $(du -h "$INITRD" | cut -f1): busybox, the modules, $INTERP and$LIBS"

# --- 5. boot, run, copy back ---------------------------------------------------
QEMU_VERSION=$(qemu-system-aarch64 --version | sed -n '1s/.*version \([^ ]*\).*/\1/p')
rm -f "$XFER"/{exit-code,run-id,soak,args,env}
cp "$BIN" "$XFER/soak"
printf '%s\n' "${SOAK_ARGS[@]}" >"$XFER/args"
EMULATION="qemu-system-aarch64 $QEMU_VERSION (TCG on $(uname -m)), -M virt -cpu $CPU -smp $SMP -m $MEMORY, Debian kernel $PKG $KVER"
printf 'export METRONOME_EMULATION=%q\n' "$EMULATION" >"$XFER/env"
say "[5/5] booting: $EMULATION"
say "    console log: $XFER/console.log; the run comes back to $OUT"
BOOT=$SECONDS
set +e
qemu-system-aarch64 -M virt -accel tcg,thread=multi -cpu "$CPU" -smp "$SMP" -m "$MEMORY" \
    -kernel "$KDIR/Image" -initrd "$INITRD" \
    -append "console=ttyAMA0 panic=-1 quiet loglevel=3" \
    -display none -no-reboot -nic none \
    -chardev "stdio,id=con,mux=on,signal=off,logfile=$XFER/console.log" \
    -serial chardev:con -mon chardev=con,mode=readline \
    -fsdev "local,id=host,path=$OUT,security_model=none" \
    -device virtio-9p-device,fsdev=host,mount_tag=host
QEMU_RC=$?
set -e
[[ ! -t 0 ]] || stty sane
rm -f "$XFER/soak"
say "the guest stopped after $((SECONDS - BOOT)) s (qemu exit code $QEMU_RC)"
[[ -f $XFER/exit-code ]] ||
    die "the guest did not report the soak's exit code (boot or emulator failure?): see $XFER/console.log"
RC=$(<"$XFER/exit-code")
if [[ -f $XFER/run-id ]]; then
    say "run directory: $OUT/$(<"$XFER/run-id") (report.html inside)"
fi
say "soak exit code $RC"
exit "$RC"
