#!/usr/bin/env bash
# Runs libvirt (virtlogd + libvirtd with the QEMU driver) on a machine without
# systemd, so the compute agent can launch real guests through
# qemu:///system. As /work/shared/notes/real-vms.md describes:
#
#   scripts/libvirt-host.sh start    # install what is missing, start, wait
#   scripts/libvirt-host.sh stop     # stop the daemons that `start` started
#   scripts/libvirt-host.sh status   # say whether they run (exit 0 when both do)
#
# `start` (root only) installs the missing Debian packages of $PACKAGES, makes
# the `libvirt-qemu` user and groups the way Debian's libvirt-daemon-system
# postinst does (libvirtd's QEMU driver resolves that user before reading
# qemu.conf), makes qemu run as root (so it can read images wherever the
# agent keeps them), starts virtlogd then libvirtd with their PID files in
# $STRATUS_LIBVIRT_RUN (default /run/stratus-libvirt), waits until
# `virsh -c qemu:///system version` answers, and makes sure libvirt has no
# `default` network (the NAT network 192.168.122.0/24 must not exist here).
# It is idempotent: daemons already running from its PID files are kept.
# `stop` kills only the processes named in those PID files; guests (qemu
# processes) that libvirtd started keep running.
#
# Never installs libvirt-daemon-system: it brings systemd units and an
# autostarted NAT network.
set -euo pipefail

# Debian 12 packages of a libvirt compute host, installed with
# --no-install-recommends when missing:
#   qemu-system-x86             the emulator (TCG; KVM here only runs special kernels)
#   qemu-utils                  qemu-img, for images and per-instance overlays
#   qemu-block-extra            QEMU's RBD driver: guests' Ceph volumes (seed steps 49-51)
#   busybox-static              the guest's userland (scripts/guest-image.sh)
#   dnsmasq-base                the DHCP server of the DHCP agent (no service)
#   dnsmasq-utils               dhcp_release: the DHCP agent frees a deleted port's lease
#   libvirt-daemon              libvirtd, virtlogd and the network driver
#   libvirt-daemon-driver-qemu  libvirtd's QEMU driver
#   libvirt-clients             virsh
#   libvirt-dev, pkg-config     to build the Rust `virt` crate (virt-sys links libvirt)
PACKAGES="qemu-system-x86 qemu-utils qemu-block-extra busybox-static dnsmasq-base dnsmasq-utils
libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev pkg-config"

RUN_DIR=${STRATUS_LIBVIRT_RUN:-/run/stratus-libvirt}
URI=qemu:///system
START_TIMEOUT=${STRATUS_LIBVIRT_TIMEOUT:-30}

log() { echo "libvirt-host: $*" >&2; }
die() { log "error: $*"; exit 1; }

# The PID in pid file $1 when that process is alive and is program $2.
running_pid() {
    local f=$1 name=$2 pid
    [[ -s $f ]] || return 1
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Guard against a reused PID: the process must be the daemon itself.
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$name" ]] || return 1
    echo "$pid"
}

virsh_answers() { timeout 5 virsh -c "$URI" version >/dev/null 2>&1; }

missing_packages() {
    local p
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
    done
}

install_packages() {
    local missing round out
    export DEBIAN_FRONTEND=noninteractive
    # Two rounds: installing qemu-system-x86 (Debian 12's 7.2) removes a newer
    # qemu-utils from backports, which the second round puts back at 7.2.
    for round in 1 2; do
        missing=$(missing_packages | tr '\n' ' ')
        [[ -n ${missing// /} ]] || break
        log "installing $missing"
        out=$(mktemp)
        # -qq keeps apt quiet; dpkg's progress goes to a file shown only on failure.
        # shellcheck disable=SC2086
        if ! { { [[ $round -gt 1 ]] || apt-get update -qq; } \
            && apt-get install -y -qq --no-install-recommends $missing; } >"$out" \
            2> >(grep -v '^debconf: delaying package configuration' >&2); then
            cat "$out" >&2
            rm -f "$out"
            die "apt-get failed to install $missing"
        fi
        rm -f "$out"
    done
    missing=$(missing_packages | tr '\n' ' ')
    [[ -z ${missing// /} ]] || die "still not installed after apt-get: $missing"
    if dpkg-query -W -f='${Status}' libvirt-daemon-system 2>/dev/null | grep -q "install ok installed"; then
        log "warning: libvirt-daemon-system is installed (not by this script); its default network is removed below"
    fi
}

# What libvirt-daemon-system's postinst does, without its package.
make_users() {
    getent group libvirt >/dev/null || groupadd --system libvirt
    getent group kvm >/dev/null || groupadd --system kvm
    if ! getent passwd libvirt-qemu >/dev/null; then
        local uid=()
        getent passwd 64055 >/dev/null || uid=(--uid 64055 -K SYS_UID_MAX=64055)
        useradd --system "${uid[@]}" --gid kvm --home-dir /var/lib/libvirt --no-create-home \
            --shell /usr/sbin/nologin --comment "Libvirt Qemu" libvirt-qemu
        log "made user libvirt-qemu"
    fi
    if ! getent group libvirt-qemu >/dev/null; then
        local gid=()
        getent group 64055 >/dev/null || gid=(--gid 64055)
        groupadd --system "${gid[@]}" libvirt-qemu
    fi
    id -nG libvirt-qemu | tr ' ' '\n' | grep -qx libvirt-qemu \
        || usermod -a -G libvirt-qemu libvirt-qemu
}

write_qemu_conf() {
    local conf=/etc/libvirt/qemu.conf
    if [[ -f $conf ]] && grep -Eq '^[[:space:]]*user[[:space:]]*=[[:space:]]*"root"' "$conf" \
        && grep -Eq '^[[:space:]]*group[[:space:]]*=[[:space:]]*"root"' "$conf"; then
        return 0
    fi
    mkdir -p /etc/libvirt
    [[ -f $conf && ! -e $conf.stratus-orig ]] && cp -p "$conf" "$conf.stratus-orig"
    cat >"$conf" <<'EOF'
# Written by Stratus scripts/libvirt-host.sh (the packaged file, all comments,
# is kept as qemu.conf.stratus-orig). qemu runs as root so it can read the
# images wherever the compute agent keeps them.
user = "root"
group = "root"
EOF
    log "wrote $conf (qemu runs as root)"
    # A libvirtd already running read the old file.
    if pid=$(running_pid "$RUN_DIR/libvirtd.pid" libvirtd); then
        log "restarting libvirtd (pid $pid) for the new qemu.conf"
        stop_one libvirtd
    fi
}

# Starts daemon $1 unless the one of its PID file runs.
start_one() {
    local name=$1 pid
    if pid=$(running_pid "$RUN_DIR/$name.pid" "$name"); then
        log "$name already running (pid $pid)"
        return 0
    fi
    rm -f "$RUN_DIR/$name.pid"
    "$name" --daemon --pid-file "$RUN_DIR/$name.pid" \
        || die "$name failed to start (see /var/log/libvirt/ or run '$name -v' by hand)"
    for _ in $(seq 1 50); do
        pid=$(running_pid "$RUN_DIR/$name.pid" "$name") && { log "started $name (pid $pid)"; return 0; }
        sleep 0.1
    done
    die "$name did not write a live PID to $RUN_DIR/$name.pid"
}

# Stops daemon $1 by the PID in its PID file: TERM, then KILL after 10 s.
stop_one() {
    local name=$1 pid
    if ! pid=$(running_pid "$RUN_DIR/$name.pid" "$name"); then
        rm -f "$RUN_DIR/$name.pid"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$RUN_DIR/$name.pid"
    log "stopped $name (pid $pid)"
}

remove_default_network() {
    local nets
    nets=$(timeout 10 virsh -c "$URI" net-list --all --name 2>/dev/null) || return 0
    grep -qx default <<<"$nets" || return 0
    log "libvirt has a 'default' network: destroying and undefining it"
    timeout 10 virsh -c "$URI" net-destroy default >/dev/null 2>&1 || true
    timeout 10 virsh -c "$URI" net-undefine default >/dev/null \
        || die "could not undefine libvirt's default network"
}

cmd_start() {
    [[ $(id -u) -eq 0 ]] || die "start needs root"
    install_packages
    make_users
    mkdir -p "$RUN_DIR" /var/log/libvirt/qemu /var/lib/libvirt/qemu \
        /var/lib/libvirt/images /var/cache/libvirt/qemu /run/libvirt
    write_qemu_conf

    if ! running_pid "$RUN_DIR/libvirtd.pid" libvirtd >/dev/null && virsh_answers; then
        die "a libvirtd not started by this script already answers on $URI; stop it first"
    fi
    start_one virtlogd
    start_one libvirtd

    local deadline=$((SECONDS + START_TIMEOUT))
    until virsh_answers; do
        running_pid "$RUN_DIR/libvirtd.pid" libvirtd >/dev/null \
            || die "libvirtd exited before answering on $URI"
        ((SECONDS < deadline)) \
            || die "virsh -c $URI version did not answer within ${START_TIMEOUT}s"
        sleep 0.2
    done
    remove_default_network
    log "ready: $(virsh -c "$URI" version 2>/dev/null | grep -E 'Running hypervisor|libvirt' | tr '\n' ';' | sed 's/;$//')"
}

cmd_stop() {
    [[ $(id -u) -eq 0 ]] || die "stop needs root"
    stop_one libvirtd
    stop_one virtlogd
}

cmd_status() {
    local rc=0 name pid
    for name in virtlogd libvirtd; do
        if pid=$(running_pid "$RUN_DIR/$name.pid" "$name"); then
            echo "$name: running (pid $pid)"
        else
            echo "$name: not running"
            rc=3
        fi
    done
    if command -v virsh >/dev/null && virsh_answers; then
        echo "$URI: answers"
    else
        echo "$URI: does not answer"
        rc=3
    fi
    return "$rc"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
