#!/usr/bin/env bash
# Checks the test guest of scripts/guest-image.sh for real: boots it under
# QEMU TCG (KVM hangs on these machines) and reads its serial console, so a
# broken kernel, initramfs, /init or disk image shows up here rather than as
# a compute test that times out.
#
#   scripts/guest-image-check.sh DIR    # builds DIR with guest-image.sh first (cached)
#
#   a) direct kernel boot (-kernel vmlinux through PVH when DIR has it, else
#      vmlinuz) with an extra 8 MiB raw virtio disk: booted, ip=, uuid=,
#      disk=vda size=16384, ready
#   b) boot from a qcow2 overlay on DIR/guest.qcow2 (SeaBIOS, syslinux) as a
#      virtio disk, plus the extra disk: the same, with disk=vda and disk=vdb
#   c) direct boot of vmlinuz with user data `poweroff`: the guest powers off
#      and qemu exits by itself
#   d) the guest's udhcpc script, run in a throwaway network namespace (root
#      only): address, option 121 routes, default route
# Exit 0 when every marker was seen; on a failure the serial log is printed.
#
# Networking never leaves the machine: the guest's only NIC is qemu user
# networking with restrict=on (no traffic out of qemu at all) on
# 169.254.169.0/24, with a guestfwd of 169.254.169.254:80 to a small
# python3 script that serves a fake meta_data.json and user_data per
# connection from a temp folder (qemu runs it for each guest connection on a
# socket, inetd style: no listening port; a guestfwd to a TCP chardev would
# carry one connection only). No tap, bridge or route on the host.
# Every qemu is ended by its PID in a trap.
#
# STRATUS_GUEST_BOOT_TIMEOUT (default 90) bounds each boot, in seconds.
set -euo pipefail

DIR=${1:?usage: guest-image-check.sh DIR}
BOOT_TIMEOUT=${STRATUS_GUEST_BOOT_TIMEOUT:-90}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { echo "guest-image-check: $*" >&2; }
die() { log "error: $*"; exit 1; }

# --- tools ---------------------------------------------------------------------
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v qemu-img >/dev/null || missing+=(qemu-utils)
command -v python3 >/dev/null || missing+=(python3)
if ((${#missing[@]})); then
    [[ $(id -u) -eq 0 ]] || die "missing Debian packages: ${missing[*]} (install them as root)"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
        >/dev/null 2> >(grep -v '^debconf: delaying package configuration' >&2) \
        || die "apt-get failed to install ${missing[*]}"
fi

"$here/guest-image.sh" "$DIR"
DIR=$(cd "$DIR" && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/stratus-guest-check.XXXXXX")
[[ $tmp != *[,\'\"[:space:]]* ]] || die "temp folder $tmp has a character qemu options cannot carry"
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do
        if kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        fi
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the fake metadata service -----------------------------------------------------
cat >"$tmp/md.py" <<'EOF'
# One HTTP request on stdin/stdout (qemu's guestfwd cmd:), answered from the
# folder argv[1]; requests are logged to argv[1]/../requests.log.
import os
import sys

root = os.path.realpath(sys.argv[1])
sys.stderr = open(os.path.join(os.path.dirname(root), "requests.log"), "a")
inp, out = sys.stdin.buffer, sys.stdout.buffer
req = inp.readline().decode("latin-1").split()
while True:
    h = inp.readline()
    if not h or h in (b"\r\n", b"\n"):
        break
path = req[1].split("?")[0] if len(req) > 1 else "/"
f = os.path.realpath(os.path.join(root, path.lstrip("/")))
if req[:1] == ["GET"] and f.startswith(root + os.sep) and os.path.isfile(f):
    status, body = "200 OK", open(f, "rb").read()
else:
    status, body = "404 Not Found", b"not found\n"
print(" ".join(req[:2]), status, file=sys.stderr, flush=True)
head = "HTTP/1.0 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
out.write((head % (status, len(body))).encode() + body)
out.flush()
EOF

# metadata NAME UUID [USER_DATA]: a metadata folder for one boot.
metadata() {
    local d=$tmp/$1/md/openstack/latest
    mkdir -p "$d"
    printf '{"uuid": "%s", "name": "check-%s", "hostname": "check-%s"}\n' "$2" "$1" "$1" \
        >"$d/meta_data.json"
    if (($# > 2)); then printf '%s\n' "$3" >"$d/user_data"; fi
}

qemu-img create -q -f raw "$tmp/extra.raw" 8M
# shellcheck disable=SC2054 # commas inside qemu's option values
extra=(-drive "file=$tmp/extra.raw,format=raw,if=none,id=extra"
    -device virtio-blk-pci,drive=extra)

failed=0
results=()

# boot NAME UUID ENDING DISKS QEMU_ARGS...: boots, waits for ENDING (ready or
# poweroff), checks the markers. DISKS: expected "vdX=SECTORS" words.
boot() {
    local name=$1 uuid=$2 ending=$3 disks=$4
    shift 4
    local serial=$tmp/$name/serial.log qlog=$tmp/$name/qemu.log
    mkdir -p "$tmp/$name"
    : >"$serial"
    local t0=$EPOCHREALTIME
    qemu-system-x86_64 -accel tcg -machine q35 -m 256 -smp 1 \
        -nodefaults -no-user-config -display none -no-reboot \
        -serial "file:$serial" \
        -netdev "user,id=net0,restrict=on,net=169.254.169.0/24,guestfwd=tcp:169.254.169.254:80-cmd:python3 $tmp/md.py $tmp/$name/md" \
        -device virtio-net-pci,netdev=net0,romfile= \
        "$@" >"$qlog" 2>&1 &
    local pid=$!
    pids+=("$pid")

    local want_end elapsed="" exited=0
    if [[ $ending == poweroff ]]; then want_end="stratus-guest: powering off"; else want_end="stratus-guest: ready"; fi
    local deadline=$((SECONDS + BOOT_TIMEOUT))
    while ((SECONDS < deadline)); do
        if [[ -z $elapsed ]] && grep -aq "^$want_end" "$serial"; then
            elapsed=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
            [[ $ending == poweroff ]] || break
        fi
        if ! kill -0 "$pid" 2>/dev/null; then exited=1; break; fi
        sleep 0.1
    done
    if [[ -z $elapsed ]] && grep -aq "^$want_end" "$serial"; then
        elapsed=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    fi
    local qrc=0
    if ((exited)); then
        wait "$pid" || qrc=$?
    else
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi

    # The serial line discipline ends lines with CR LF.
    tr -d '\r' <"$serial" >"$serial.txt"
    serial=$serial.txt
    local problems=() m
    for m in "stratus-guest: booted" "stratus-guest: ip=169.254.169." "stratus-guest: uuid=$uuid"; do
        grep -aq "^$m" "$serial" || problems+=("no '$m'")
    done
    for m in $disks; do
        grep -aqx "stratus-guest: disk=${m%%=*} size=${m#*=}" "$serial" \
            || problems+=("no 'stratus-guest: disk=${m%%=*} size=${m#*=}'")
    done
    [[ -n $elapsed ]] || problems+=("no '$want_end' within ${BOOT_TIMEOUT}s")
    if [[ $ending == poweroff ]]; then
        ((exited)) || problems+=("qemu still ran ${BOOT_TIMEOUT}s after its start")
        ((qrc == 0)) || problems+=("qemu exited with status $qrc")
        grep -aq "^stratus-guest: ready" "$serial" && problems+=("the guest said ready")
    else
        ((exited == 0)) || problems+=("qemu exited (status $qrc) before the guest was ready")
    fi

    if ((${#problems[@]})); then
        failed=1
        results+=("$name: FAILED: $(printf '%s; ' "${problems[@]}" | sed 's/; $//')")
        {
            echo "----- $name: serial log ($serial) -----"
            cat -v "$serial"
            echo "----- $name: qemu's output -----"
            cat "$qlog"
            echo "----- $name: metadata requests -----"
            cat "$tmp/$name/requests.log" 2>/dev/null || echo "(none)"
            echo "-----"
        } >&2
    else
        local how="$want_end in ${elapsed}s"
        [[ $ending == poweroff ]] && how="$how, then qemu exited by itself"
        results+=("$name: ok ($how)")
    fi
    echo "guest-image-check: ${results[-1]}"
}

uuid() { cat /proc/sys/kernel/random/uuid; }

# a) direct kernel boot
kernel=$DIR/vmlinuz
[[ -s $DIR/vmlinux ]] && kernel=$DIR/vmlinux
u=$(uuid)
metadata a-direct "$u" "#cloud-config"
boot a-direct "$u" ready "vda=16384" \
    -kernel "$kernel" -initrd "$DIR/initrd.img" -append "console=ttyS0 panic=-1" \
    "${extra[@]}"

# b) the qcow2 disk, through an overlay
qemu-img create -q -f qcow2 -F qcow2 -b "$DIR/guest.qcow2" "$tmp/overlay.qcow2"
vsize=$(qemu-img info --output=json "$tmp/overlay.qcow2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"] // 512)')
u=$(uuid)
metadata b-disk "$u"
boot b-disk "$u" ready "vda=$vsize vdb=16384" \
    -drive "file=$tmp/overlay.qcow2,format=qcow2,if=none,id=root" \
    -device virtio-blk-pci,drive=root,bootindex=0 \
    "${extra[@]}"

# c) user data `poweroff`
u=$(uuid)
metadata c-poweroff "$u" "poweroff"
boot c-poweroff "$u" poweroff "" \
    -kernel "$DIR/vmlinuz" -initrd "$DIR/initrd.img" -append "console=ttyS0 panic=-1"

# d) the udhcpc script's routes, in a throwaway network namespace
python3 - "$DIR/initrd.img" "$tmp/udhcpc.script" <<'EOF'
# Extracts etc/udhcpc.script from the gzip'd newc cpio archive argv[1].
import gzip
import sys

data = gzip.open(sys.argv[1]).read()
i = 0
while data[i:i + 6] == b"070701":
    namesize = int(data[i + 94:i + 102], 16)
    filesize = int(data[i + 54:i + 62], 16)
    name = data[i + 110:i + 110 + namesize - 1].decode()
    start = (i + 110 + namesize + 3) & ~3
    if name in ("etc/udhcpc.script", "./etc/udhcpc.script"):
        open(sys.argv[2], "wb").write(data[start:start + filesize])
        sys.exit(0)
    i = (start + filesize + 3) & ~3
sys.exit("etc/udhcpc.script is not in the initramfs")
EOF
if [[ $(id -u) -ne 0 ]] || ! command -v unshare >/dev/null || ! command -v ip >/dev/null; then
    results+=("d-udhcpc: skipped (needs root, unshare and ip)")
else
    # In a new network namespace with one link of its own (nothing of the
    # host's is seen or changed): case 1, option 121 with the metadata route
    # and a router; case 2, option 121 with its own default route, which wins.
    # shellcheck disable=SC2016 # the inner shell expands its own variables
    out=$(unshare --net sh -c '
        set -e
        for t in dummy bridge veth; do
            if [ $t = veth ]; then ip link add x0 type veth peer name x1 2>/dev/null && break
            else ip link add x0 type $t 2>/dev/null && break; fi
        done
        ip link show x0 >/dev/null
        export interface=x0 ip=10.9.0.5 mask=24 broadcast=10.9.0.255 STRATUS_IP_FILE=$1/ip
        sh "$1/udhcpc.script" deconfig
        router=10.9.0.1 staticroutes="169.254.169.254/32 10.9.0.2" sh "$1/udhcpc.script" bound
        echo "case1 ip=$(cat $1/ip)"; ip -4 route show | sed "s/^/case1 /"
        router=10.9.0.1 staticroutes="169.254.169.254/32 10.9.0.2 0.0.0.0/0 10.9.0.3" sh "$1/udhcpc.script" renew
        ip -4 route show | sed "s/^/case2 /"
        ip -4 addr show dev x0 | sed -n "s/^ *inet \([^ ]*\).*/case2 addr \1/p"
    ' sh "$tmp" 2>&1) || true
    problems=()
    for want in "case1 ip=10.9.0.5" "case1 default via 10.9.0.1 dev x0" \
        "case1 169.254.169.254 via 10.9.0.2 dev x0" "case2 default via 10.9.0.3 dev x0" \
        "case2 169.254.169.254 via 10.9.0.2 dev x0" "case2 addr 10.9.0.5/24"; do
        grep -q "^$want" <<<"$out" || problems+=("no '$want'")
    done
    if ((${#problems[@]})); then
        failed=1
        results+=("d-udhcpc: FAILED: $(printf '%s; ' "${problems[@]}" | sed 's/; $//')")
        printf -- '----- d-udhcpc: output -----\n%s\n-----\n' "$out" >&2
    else
        results+=("d-udhcpc: ok (address, option 121 routes, default route)")
    fi
    echo "guest-image-check: ${results[-1]}"
fi

if ((failed)); then
    log "FAILED"
    exit 1
fi
log "all checks passed"
