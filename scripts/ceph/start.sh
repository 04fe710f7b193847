#!/usr/bin/env bash
# Starts a single-node Ceph cluster (mon, mgr, one memstore OSD, radosgw with
# an S3 user) with everything under DIR and every socket on 127.0.0.1, as
# /work/shared/notes/ceph.md describes. Used by the image service's S3 tests
# and the volume service's RBD tests.
#
#   scripts/ceph/start.sh DIR      # prints the S3 settings, also in DIR/s3.env;
#                                  # the RBD settings are in DIR/rbd.env
#   scripts/ceph/stop.sh DIR
#
# Idempotent: when the daemons of DIR are alive and radosgw answers, the
# running cluster is reused. Otherwise whatever is left in DIR is stopped and
# a fresh cluster is made (memstore keeps objects in RAM, so a half-dead
# cluster has nothing worth keeping).
# RGW_PORT (default 7480) changes the radosgw port.
set -euo pipefail

D=${1:?usage: start.sh DIR}
mkdir -p "$D"
D=$(cd "$D" && pwd)
RGW_PORT=${RGW_PORT:-7480}
export CEPH_CONF="$D/ceph.conf"
HERE=$(cd "$(dirname "$0")" && pwd)

log() { echo "[ceph] $*" >&2; }

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

rgw_answers() {
    curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$RGW_PORT/"
}

if alive "$D/run/mon.a.pid" && alive "$D/run/mgr.x.pid" && alive "$D/run/osd.0.pid" \
    && alive "$D/run/client.rgw.a.pid" && [ -s "$D/s3.env" ] && [ -s "$D/rbd.env" ] \
    && rgw_answers; then
    log "reusing the cluster running in $D"
    cat "$D/s3.env"
    exit 0
fi

# Another cluster (not ours) already on the port would make the tests talk to it.
if rgw_answers; then
    log "something already answers on 127.0.0.1:$RGW_PORT and it is not the cluster of $D"
    exit 1
fi

# --- packages (only when missing) -------------------------------------------
missing=()
for p in ceph-mon ceph-mgr ceph-osd radosgw ceph-common uuid-runtime curl; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" >&2 \
        || { apt-get update >&2 && apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
fi

# --- fresh state --------------------------------------------------------------
"$HERE/stop.sh" "$D" >/dev/null 2>&1 || true
rm -rf "$D/mon" "$D/mgr" "$D/osd" "$D/rgw" "$D/run" "$D/log" \
    "$D/keyring" "$D/monmap" "$D/ceph.conf" "$D/s3.env" "$D/rbd.env"
mkdir -p "$D/mon" "$D/mgr" "$D/osd" "$D/rgw" "$D/run" "$D/log"

FSID=$(uuidgen)
cat >"$CEPH_CONF" <<CONF
[global]
fsid = $FSID
mon initial members = a
mon host = [v2:127.0.0.1:3300,v1:127.0.0.1:6789]
public network = 127.0.0.0/8
cluster network = 127.0.0.0/8
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $D/keyring
run dir = $D/run
admin socket = $D/run/\$name.asok
pid file = $D/run/\$name.pid
log file = $D/log/\$name.log
mon data = $D/mon/\$name
mgr data = $D/mgr/\$name
osd data = $D/osd/\$name
rgw data = $D/rgw/\$name
osd pool default size = 1
osd pool default min size = 1
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
mon data avail warn = 5

[mon]
# Read by the mon: keeps the default 'restful' module (which would listen on
# every address) off.
mgr initial modules = iostat

[osd]
osd objectstore = memstore
memstore device bytes = 4294967296

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
# Deleted objects are freed after a minute, not RGW's default two hours:
# the in-memory OSD would otherwise fill up during a test run.
rgw gc obj min wait = 60
rgw gc processor period = 60
CONF

# --- monitor --------------------------------------------------------------------
ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$D/keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
monmaptool --create --fsid "$FSID" --addv a '[v2:127.0.0.1:3300,v1:127.0.0.1:6789]' "$D/monmap" >/dev/null
mkdir -p "$D/mon/mon.a"
ceph-mon --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring"
ceph-mon -i a
log "mon up"
timeout 60 ceph -s >/dev/null

# --- manager ----------------------------------------------------------------------
mkdir -p "$D/mgr/mgr.x"
ceph auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' >>"$D/keyring"
ceph-mgr -i x
log "mgr up"

# --- OSD (memstore) -----------------------------------------------------------
OSD_UUID=$(uuidgen)
OSD_SECRET=$(ceph-authtool --gen-print-key)
OSD_ID=$(echo "{\"cephx_secret\": \"$OSD_SECRET\"}" | ceph osd new "$OSD_UUID" -i - -n client.admin)
[ "$OSD_ID" = 0 ] || { log "unexpected OSD id $OSD_ID"; exit 1; }
ceph-authtool "$D/keyring" -n osd.0 --add-key "$OSD_SECRET" >/dev/null
mkdir -p "$D/osd/osd.0"
ceph-osd -i 0 --mkfs --osd-uuid "$OSD_UUID" >/dev/null 2>&1
ceph-osd -i 0
for _ in $(seq 60); do
    ceph osd stat 2>/dev/null | grep -q "1 up" && break
    sleep 1
done
ceph osd stat | grep -q "1 up" || { log "OSD did not come up"; exit 1; }
log "osd up"
ceph osd pool create rbd 8 8 >/dev/null 2>&1
ceph osd pool set rbd size 1 --yes-i-really-mean-it >/dev/null 2>&1
rbd pool init rbd
# The volume service's pool (Cinder's usual name).
ceph osd pool create volumes 8 8 >/dev/null 2>&1
ceph osd pool set volumes size 1 --yes-i-really-mean-it >/dev/null 2>&1
rbd pool init volumes

# --- radosgw and its S3 user --------------------------------------------------
mkdir -p "$D/rgw/client.rgw.a"
ceph auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' >>"$D/keyring"
radosgw -n client.rgw.a
for _ in $(seq 120); do
    rgw_answers && break
    sleep 1
done
rgw_answers || { log "radosgw did not answer on 127.0.0.1:$RGW_PORT"; exit 1; }
log "radosgw up"

ACCESS_KEY=$(head -c 4096 /dev/urandom | tr -dc 'A-Z0-9' | head -c 20)
SECRET_KEY=$(head -c 4096 /dev/urandom | tr -dc 'A-Za-z0-9' | head -c 40)
radosgw-admin user create --uid=stratus --display-name="Stratus tests" \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >/dev/null

cat >"$D/s3.env" <<ENV
S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
S3_ACCESS_KEY=$ACCESS_KEY
S3_SECRET_KEY=$SECRET_KEY
S3_REGION=us-east-1
S3_BUCKET=stratus-images
ENV

# The volume service's rbd backend (`[volume] backend = "rbd"`).
cat >"$D/rbd.env" <<ENV
RBD_CEPH_CONF=$D/ceph.conf
RBD_KEYRING=$D/keyring
RBD_USER=admin
RBD_POOL=volumes
ENV

# Everything must be on loopback: fail loudly otherwise.
if ss -ltnpH | grep -E 'ceph-|radosgw' | awk '{print $4}' | grep -v -E '^127\.0\.0\.1:' ; then
    log "a Ceph daemon listens beyond 127.0.0.1 (above); stopping"
    "$HERE/stop.sh" "$D"
    exit 1
fi
cat "$D/s3.env"
