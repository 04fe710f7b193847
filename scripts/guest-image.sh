#!/usr/bin/env bash
# Builds a small test guest for real boots (libvirt/QEMU under TCG) from
# Debian packages alone: nothing is downloaded but Debian's kernel and
# busybox-static packages, through apt. As /work/shared/notes/real-vms.md
# describes.
#
#   scripts/guest-image.sh DIR
#
# writes
#   DIR/vmlinuz       the Debian kernel (bzImage) that linux-image-amd64 depends on
#   DIR/vmlinux       the same kernel as an uncompressed ELF, when it can be
#                     extracted: qemu boots it through PVH, which halves the
#                     boot's CPU cost under TCG (optional)
#   DIR/initrd.img    busybox-static, the virtio modules and the /init below
#   DIR/guest.qcow2   a bootable disk: a FAT filesystem with syslinux, the same
#                     kernel and initramfs and `console=ttyS0`, made with mtools
#                     (no root, no loop device), converted to qcow2
#   DIR/guest-image.stamp  the hash of this script, the kernel version, ...
# When DIR already holds them all and the stamp matches this script's
# content, it exits at once. It works in a scratch folder under DIR, removed
# on exit; concurrent runs on one DIR wait for each other (flock).
#
# The guest's /init prints these lines on the serial console (ttyS0, and
# /dev/console when that is another device):
#   stratus-guest: booted kernel=<version>
#   stratus-guest: ip=<address>            (DHCP on the first NIC; option 121 applied)
#   stratus-guest: uuid=<uuid>             (from http://169.254.169.254/openstack/latest/meta_data.json)
#   stratus-guest: disk=<vdX> size=<512-byte sectors>   (one per virtio disk)
#   stratus-guest: ping <address> ok|failed (one per address of a user data line `#stratus: ping A B ...`)
#   stratus-guest: powering off            (user data holds a line `poweroff` or `#stratus: poweroff`)
#   stratus-guest: ready                   (otherwise; it then idles)
# and `stratus-guest: dhcp failed` / `stratus-guest: metadata unavailable`
# when those steps fail. scripts/guest-image-check.sh boots it to check.
#
# Host tools it installs when missing (root): syslinux mtools dosfstools
# qemu-utils xz-utils.
set -euo pipefail

# Kernel modules the guest loads, in this order after their own dependencies
# (each .ko's `depends=` is followed, so the list need not be complete; a
# module built into the kernel is skipped).
WANT_MODULES="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
failover net_failover virtio_net virtio_blk"
HOST_PACKAGES="syslinux mtools dosfstools qemu-utils xz-utils"

log() { echo "guest-image: $*" >&2; }
die() { log "error: $*"; exit 1; }

DIR=${1:?usage: guest-image.sh DIR}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
self=$(readlink -f "${BASH_SOURCE[0]}")
hash=$(sha256sum "$self" | cut -d' ' -f1)
stamp=$DIR/guest-image.stamp

cached() {
    local f
    for f in vmlinuz initrd.img guest.qcow2; do [[ -s $DIR/$f ]] || return 1; done
    [[ -s $stamp ]] && grep -qx "hash=$hash" "$stamp" || return 1
    if grep -qx "vmlinux=yes" "$stamp"; then [[ -s $DIR/vmlinux ]] || return 1; fi
}

if cached; then
    log "up to date in $DIR ($(grep '^kernel=' "$stamp"))"
    exit 0
fi
exec 9>"$DIR/.guest-image.lock"
flock 9
if cached; then
    log "built meanwhile by another run in $DIR"
    exit 0
fi

started=$SECONDS
is_root() { [[ $(id -u) -eq 0 ]]; }

# --- host tools ----------------------------------------------------------------
missing=()
for p in $HOST_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    is_root || die "missing Debian packages: ${missing[*]} (install them as root)"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
        >/dev/null 2> >(grep -v '^debconf: delaying package configuration' >&2) \
        || die "apt-get failed to install ${missing[*]}"
fi

# --- scratch -------------------------------------------------------------------
work=$(mktemp -d "$DIR/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

# --- Debian packages: the kernel linux-image-amd64 points at, busybox-static ----
kernel_pkg() {
    apt-cache depends linux-image-amd64 2>/dev/null \
        | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -1
}
kpkg=$(kernel_pkg)
if [[ -z $kpkg ]] && is_root; then
    apt-get update -qq >/dev/null
    kpkg=$(kernel_pkg)
fi
[[ -n $kpkg ]] || die "apt-cache does not know linux-image-amd64 (run apt-get update)"
sandbox=()
is_root && sandbox=(-o APT::Sandbox::User=root) # the scratch folder is private
log "downloading $kpkg and busybox-static from the Debian archive"
apt-get download -qq "${sandbox[@]}" "$kpkg" busybox-static >/dev/null \
    || die "apt-get download $kpkg busybox-static failed"
dpkg -x "$kpkg"_*.deb k
dpkg -x busybox-static_*.deb bb
kver=$(ls k/lib/modules)
[[ $(wc -w <<<"$kver") -eq 1 ]] || die "expected one kernel version in $kpkg, got: $kver"
kdeb_version=$(dpkg-deb -f "$kpkg"_*.deb Version)
bb_version=$(dpkg-deb -f busybox-static_*.deb Version)
busybox=$work/bb/bin/busybox
[[ -x $busybox ]] || die "busybox-static has no bin/busybox"
cp "k/boot/vmlinuz-$kver" vmlinuz

# --- the uncompressed ELF kernel, for PVH boots (optional) -----------------------
vmlinux=no
xz_at=$(LC_ALL=C grep -obUaP '\xFD7zXZ\x00' vmlinuz | head -1 | cut -d: -f1 || true)
# (tail may die of SIGPIPE once xz has its stream: only xz's status counts.)
if [[ -n $xz_at ]] && { tail -c +$((xz_at + 1)) vmlinuz || :; } | xz -dc --single-stream >vmlinux 2>/dev/null \
    && [[ "$(head -c 4 vmlinux | od -An -tx1 | tr -d ' ')" == 7f454c46 ]]; then
    vmlinux=yes
else
    log "could not extract an ELF vmlinux from vmlinuz (not XZ?): only vmlinuz is written"
    rm -f vmlinux
fi

# --- modules, in dependency order ------------------------------------------------
mdir=k/lib/modules/$kver
declare -A ko=() builtin=() done_mod=()
while IFS= read -r f; do
    n=${f##*/}
    n=${n%%.ko*}
    ko[${n//-/_}]=$f
done < <(find "$mdir" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst')
if [[ -f $mdir/modules.builtin ]]; then
    while IFS= read -r f; do
        n=${f##*/}
        n=${n%%.ko*}
        builtin[${n//-/_}]=1
    done <"$mdir/modules.builtin"
fi
mkdir -p r/lib/modules
order=()
ko_file() { # the plain .ko of module $1 in r/lib/modules
    local src=${ko[$1]} dst=r/lib/modules/$1.ko
    case "$src" in
        *.ko.xz) xz -dc "$src" >"$dst" ;;
        *.ko.zst) zstd -qdc "$src" >"$dst" ;;
        *) cp "$src" "$dst" ;;
    esac
}
add_module() {
    local m=${1//-/_} deps d
    [[ -n ${done_mod[$m]:-} ]] && return 0
    done_mod[$m]=1
    if [[ -n ${builtin[$m]:-} ]]; then
        log "module $m is built into the kernel"
        return 0
    fi
    [[ -n ${ko[$m]:-} ]] || die "module $m is neither in $kpkg nor built in"
    ko_file "$m"
    deps=$(tr '\0' '\n' <"r/lib/modules/$m.ko" | sed -n 's/^depends=//p')
    for d in ${deps//,/ }; do add_module "$d"; done
    order+=("$m")
}
for m in $WANT_MODULES; do add_module "$m"; done

# --- initramfs --------------------------------------------------------------------
mkdir -p r/bin r/dev r/etc r/proc r/sys r/tmp r/run r/mnt
ln -s bin r/sbin
cp "$busybox" r/bin/busybox
for a in $("$busybox" --list); do
    [[ $a == busybox || -e r/bin/$a ]] || ln -s busybox "r/bin/$a"
done
printf '%s\n' "${order[@]}" >r/etc/modules

cat >r/etc/udhcpc.script <<'EOF'
#!/bin/sh
# udhcpc's script: the address, option 121 routes ($staticroutes, from
# `-O staticroutes`), and the router as default route unless option 121 holds
# a default route itself.
case "$1" in
deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" broadcast "${broadcast:-+}" dev "$interface"
    have_default=
    if [ -n "$staticroutes" ]; then
        set -- $staticroutes
        while [ $# -ge 2 ]; do
            case "$1" in 0.0.0.0/0) have_default=1 ;; esac
            if [ "$2" = 0.0.0.0 ]; then
                ip route replace "$1" dev "$interface"
            else
                ip route replace "$1" via "$2" dev "$interface"
            fi
            shift 2
        done
    fi
    if [ -z "$have_default" ] && [ -n "$router" ]; then
        set -- $router
        ip route replace default via "$1" dev "$interface"
    fi
    echo "$ip" >"${STRATUS_IP_FILE:-/run/ip}"
    ;;
esac
exit 0
EOF
chmod 755 r/etc/udhcpc.script

cat >r/init <<'EOF'
#!/bin/sh
# Stratus test guest (scripts/guest-image.sh): modules, DHCP, metadata, disks,
# then power off when the user data asks for it, else idle.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || mdev -s
exec </dev/console >/dev/console 2>&1

# Each marker goes to the console and, when ttyS0 is not one of its devices,
# to ttyS0 too.
say() {
    echo "stratus-guest: $*"
    if [ -c /dev/ttyS0 ] && ! grep -qw ttyS0 /sys/class/tty/console/active 2>/dev/null; then
        echo "stratus-guest: $*" >/dev/ttyS0 2>/dev/null
    fi
}
say "booted kernel=$(uname -r)"

while read -r m; do
    [ -n "$m" ] || continue
    insmod "/lib/modules/$m.ko" 2>/dev/null || grep -q "^$m " /proc/modules \
        || say "insmod $m failed"
done </etc/modules

ip link set lo up
iface=
for _ in $(seq 1 50); do
    if [ -e /sys/class/net/eth0 ]; then iface=eth0; break; fi
    for n in /sys/class/net/*; do
        n=${n##*/}
        [ "$n" = lo ] || [ ! -e "/sys/class/net/$n" ] || { iface=$n; break; }
    done
    [ -n "$iface" ] && break
    sleep 0.1
done
ip=
if [ -n "$iface" ]; then
    for _ in 1 2 3; do
        udhcpc -i "$iface" -O staticroutes -s /etc/udhcpc.script -f -q -n -t 5 -T 2 -A 1 >/dev/null 2>&1
        [ -s /run/ip ] && break
    done
    [ -s /run/ip ] && ip=$(cat /run/ip)
fi
if [ -n "$ip" ]; then say "ip=$ip"; else say "dhcp failed${iface:+ on $iface}"; fi

# Debian 12's static busybox crashes with `wget -T`: `timeout` bounds it.
# Retried while the server does not answer; an HTTP error (404: no user
# data) is an answer.
fetch() { # URL FILE
    for _ in 1 2 3 4 5; do
        rm -f "$2"
        err=$(timeout 10 wget -q -O "$2" "$1" 2>&1) && return 0
        rm -f "$2"
        case "$err" in *"server returned error"*) return 1 ;; esac
        sleep 1
    done
    return 1
}
md=http://169.254.169.254/openstack/latest
uuid=
if [ -n "$ip" ] && fetch "$md/meta_data.json" /run/meta_data.json; then
    uuid=$(tr -d '\n' </run/meta_data.json \
        | sed -n 's/.*"uuid"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
fi
if [ -n "$uuid" ]; then say "uuid=$uuid"; else say "metadata unavailable"; fi
# No user data is a 404: an empty file then.
[ -n "$ip" ] && fetch "$md/user_data" /run/user_data >/dev/null 2>&1 || : >/run/user_data

for d in /sys/block/vd*; do
    [ -e "$d" ] || continue
    say "disk=${d##*/} size=$(cat "$d/size")"
done

# `#stratus: ping A B ...`: reach each address (peers may still be booting).
for peer in $(tr -d '\r' </run/user_data | sed -n 's/^#stratus: ping //p'); do
    ok=failed
    for _ in $(seq 1 60); do
        if ping -c 1 -W 1 "$peer" >/dev/null 2>&1; then ok=ok; break; fi
        sleep 1
    done
    say "ping $peer $ok"
done

if tr -d '\r' </run/user_data | grep -qxE 'poweroff|#stratus: poweroff'; then
    say "powering off"
    sync
    poweroff -f
fi
say "ready"
while :; do sleep 3600; done
EOF
chmod 755 r/init

(cd r && find . | LC_ALL=C sort | "$busybox" cpio -o -H newc 2>/dev/null) | gzip -9n >initrd.img

# --- the bootable disk: FAT + syslinux, built with mtools, then qcow2 -------------
cat >syslinux.cfg <<'EOF'
SERIAL 0 115200
DEFAULT stratus
PROMPT 0
TIMEOUT 0
LABEL stratus
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND console=ttyS0
EOF
bytes=$(($(stat -c %s vmlinuz) + $(stat -c %s initrd.img)))
kib=$(((bytes / 1048576 + 5) * 1024)) # whole MiB, 4+ MiB for syslinux and FAT
export MTOOLS_SKIP_CHECK=1
mkfs.fat -C -n STRATUS disk.raw "$kib" >/dev/null
syslinux --install disk.raw
mcopy -i disk.raw vmlinuz ::/vmlinuz
mcopy -i disk.raw initrd.img ::/initrd.img
mcopy -i disk.raw syslinux.cfg ::/syslinux.cfg
qemu-img convert -f raw -O qcow2 disk.raw guest.qcow2

# --- publish -------------------------------------------------------------------------
rm -f "$stamp"
outs=(vmlinuz initrd.img guest.qcow2)
if [[ $vmlinux == yes ]]; then outs+=(vmlinux); else rm -f "$DIR/vmlinux"; fi
for f in "${outs[@]}"; do mv -f "$f" "$DIR/$f"; done
cat >"$stamp.new" <<EOF
hash=$hash
kernel=$kver
kernel_package=$kpkg $kdeb_version
busybox_static=$bb_version
modules=${order[*]}
vmlinux=$vmlinux
EOF
mv -f "$stamp.new" "$stamp"
log "built in $((SECONDS - started))s in $DIR: kernel $kver ($kpkg $kdeb_version), modules: ${order[*]}"
