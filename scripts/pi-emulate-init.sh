#!/bin/busybox sh
# /init of the guest that scripts/pi-emulate.sh boots: busybox, no network, no disk.
# Mounts the host's share (virtio-9p, tag `host`), runs the soak with the arguments the
# host left in /host/.pi-emulate/args (one per line), copies the run directory back to
# the share, writes the soak's exit code there and powers off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mkdir -p /runs

say() { echo "pi-emulate guest: $*"; }
bye() {
    sync
    umount /host 2>/dev/null
    poweroff -f
}

say "up $(cut -d' ' -f1 /proc/uptime) s after the kernel started: Linux $(uname -r) $(uname -m), $(nproc) CPUs"
while read -r m; do
    insmod "/lib/modules/$m" || { say "insmod $m failed"; bye; }
done </lib/modules/order
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 host /host ||
    { say "cannot mount the host's share"; bye; }

X=/host/.pi-emulate
. "$X/env" # exports METRONOME_EMULATION: how the host emulates this machine
hostname pi-emulate
cp "$X/soak" /bin/soak || { say "cannot copy the soak binary from the host"; bye; }
set --
while IFS= read -r a; do set -- "$@" "$a"; done <"$X/args"

say "up $(cut -d' ' -f1 /proc/uptime) s, running: soak $* --out /runs"
# A session of its own on the serial line: Ctrl-C there reaches the soak as SIGINT
# (it stops, drains and writes its record, as on a Pi). In the background so that
# setsid does not fork away from the exit code.
setsid -c soak "$@" --out /runs </dev/ttyAMA0 >/dev/ttyAMA0 2>&1 &
wait $!
rc=$?
say "soak exited with code $rc (up $(cut -d' ' -f1 /proc/uptime) s)"

if [ -L /runs/latest ]; then
    id=$(readlink /runs/latest)
    say "copying the run directory $id back to the host"
    if cp -a "/runs/$id" /host/ && rm -f /host/latest && ln -s "$id" /host/latest; then
        echo "$id" >"$X/run-id"
    else
        say "copying $id back failed"
    fi
fi
echo "$rc" >"$X/exit-code"
bye
