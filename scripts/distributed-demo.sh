#!/usr/bin/env bash
# A Stratus cloud of many processes on one machine, as it would run on many
# hosts: PostgreSQL (one schema per service in a fresh database) and RabbitMQ
# (a private virtual host), with identity, image, network, compute-api,
# scheduler, conductor, metadata and two compute agents with different host
# names, each its own `stratus serve` process with its own data dir.
#
#   scripts/distributed-demo.sh [--servers N] [--keep] [--no-launch] [--freeze-check]
#
#   --servers N   servers to launch with the openstack CLI (default 4; they
#                 should land on both compute hosts)
#   --keep        keep the cloud running until Ctrl-C (prints how to use it)
#   --no-launch   start and stop the cloud only
#   --freeze-check  instead of the launches: freeze agent-a (SIGSTOP) with a
#                 short [compute] build_timeout_secs, launch two servers (one
#                 lands on node-a), and check that it goes to ERROR within the
#                 timeout plus a reconciler period, stays ERROR once agent-a
#                 is resumed, and deletes leaving no port and no claim
#
# Needs: PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth; psql),
# RabbitMQ at 127.0.0.1:5672 (guest/guest; rabbitmqctl to make the vhost),
# and for the launches the clients in .venv (scripts/setup-venv.sh).
# Everything it makes (temp dir, database, vhost, processes) is removed on
# exit; processes are stopped by their PIDs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

servers=4
keep=0
launch=1
freeze=0
while (($#)); do
    case "$1" in
        --servers) servers="$2"; shift 2 ;;
        --keep) keep=1; shift ;;
        --no-launch) launch=0; shift ;;
        --freeze-check) freeze=1; launch=0; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

pg_admin="${STRATUS_DEMO_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"
amqp_base="${STRATUS_DEMO_AMQP:-amqp://guest:guest@127.0.0.1:5672}"

echo "building stratus (debug)..."
cargo build -q -p stratus
stratus="$root/target/debug/stratus"

dir="$(mktemp -d /tmp/stratus-demo.XXXXXX)"
suffix="$(basename "$dir" | tr -dc 'a-zA-Z0-9' | tr 'A-Z' 'a-z')"
db="stratus_demo_${suffix}"
vhost="stratus_demo_${suffix}"
pids=()
names=()
made_db=0
made_vhost=0

cleanup() {
    local rc=$?
    # Last started first, as `stratus up` stops its services.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[i]}" 2>/dev/null || true
    done
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        for _ in $(seq 1 50); do
            kill -0 "${pids[i]}" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "${pids[i]}" 2>/dev/null; then
            echo "${names[i]} (pid ${pids[i]}) did not stop; killing it" >&2
            kill -KILL "${pids[i]}" 2>/dev/null || true
        fi
    done
    if ((made_db)); then
        psql -q "$pg_admin" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 \
            || echo "could not drop database $db" >&2
    fi
    if ((made_vhost)); then
        rabbitmqctl -q delete_vhost "$vhost" >/dev/null 2>&1 \
            || echo "could not delete vhost $vhost" >&2
    fi
    if ((rc != 0)); then
        echo "failed; logs:" >&2
        for f in "$dir"/*.log; do
            [[ -f $f ]] || continue
            echo "--- $f (last lines)" >&2
            tail -n 15 "$f" >&2
        done
    fi
    rm -rf "$dir"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

psql -q "$pg_admin" -c "CREATE DATABASE \"$db\"" >/dev/null
made_db=1
rabbitmqctl -q add_vhost "$vhost" >/dev/null
made_vhost=1
rabbitmqctl -q set_permissions -p "$vhost" guest '.*' '.*' '.*' >/dev/null

# Free loopback ports for every API, held by one process while choosing.
read -r p_identity p_compute p_metadata p_image p_network p_volume < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)

export STRATUS_DATABASE__URL="${pg_admin%/*}/$db"
export STRATUS_BUS__TRANSPORT=amqp
export STRATUS_BUS__URL="$amqp_base/$vhost"
export STRATUS_ENDPOINTS__IDENTITY_PORT=$p_identity
export STRATUS_ENDPOINTS__COMPUTE_PORT=$p_compute
export STRATUS_ENDPOINTS__METADATA_PORT=$p_metadata
export STRATUS_ENDPOINTS__IMAGE_PORT=$p_image
export STRATUS_ENDPOINTS__NETWORK_PORT=$p_network
export STRATUS_ENDPOINTS__VOLUME_PORT=$p_volume
export RUST_LOG="${RUST_LOG:-info}"
build_timeout=20
reconcile_every=5
if ((freeze)); then
    export STRATUS_COMPUTE__BUILD_TIMEOUT_SECS=$build_timeout
    export STRATUS_COMPUTE__RECONCILE_INTERVAL_SECS=$reconcile_every
fi

# 1. Identity bootstrap: admin, service user, catalog of every service.
"$stratus" --data-dir "$dir/identity" identity bootstrap > "$dir/bootstrap.out"
admin_password="$(cat "$dir/identity/admin-password")"
# Every host is told the service user's password and the metadata proxy's
# secret, as an operator would write them into each host's stratus.toml.
export STRATUS_SERVICE_USER__PASSWORD="$(cat "$dir/identity/service-user-password")"
metadata_secret="$(python3 -c 'import secrets; print(secrets.token_hex(24))')"
export STRATUS_NETWORK__METADATA_SECRET="$metadata_secret"
export STRATUS_COMPUTE__METADATA_SECRET="$metadata_secret"

# start NAME ARGS...: `stratus serve ARGS` with its own data dir; waits for
# its ready line.
start() {
    local name="$1"
    shift
    "$stratus" --data-dir "$dir/$name" serve "$@" > "$dir/$name.out" 2> "$dir/$name.log" &
    pids+=($!)
    names+=("$name")
    local pid=$!
    for _ in $(seq 1 600); do
        if grep -q '^stratus ready in ' "$dir/$name.out" 2>/dev/null; then
            printf '  %-16s pid %-7s %s\n' "$name" "$pid" "$(grep '^stratus ready in ' "$dir/$name.out")"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$name exited before it was ready" >&2
            return 1
        fi
        sleep 0.2
    done
    echo "$name was not ready in 120 s" >&2
    return 1
}

echo "database $db, vhost $vhost, data dirs under $dir"
start identity identity
start image image
start network network
start compute-api compute-api
start conductor conductor
start scheduler scheduler
start metadata metadata
# Agents last: each reports its node to the conductor before it consumes.
start agent-a compute-agent --host node-a
start agent-b compute-agent --host node-b

cat > "$dir/clouds.yaml" <<EOF
clouds:
  stratus-demo:
    auth:
      auth_url: "http://127.0.0.1:$p_identity/v3"
      username: "admin"
      password: "$admin_password"
      project_name: "admin"
      user_domain_name: "Default"
      project_domain_name: "Default"
    region_name: "RegionOne"
    interface: "public"
    identity_api_version: 3
EOF
export OS_CLIENT_CONFIG_FILE="$dir/clouds.yaml"
os() { "$root/.venv/bin/openstack" --os-cloud stratus-demo "$@"; }
# What a launch needs: an image, a network with a subnet, a flavor.
demo_resources() {
    head -c 1048576 /dev/urandom > "$dir/disk.raw"
    os image create --file "$dir/disk.raw" --disk-format raw --container-format bare \
        --public demo-image -f value -c id > /dev/null
    os network create demo-net -f value -c id > /dev/null
    os subnet create --network demo-net --subnet-range 10.77.0.0/24 demo-subnet \
        -f value -c id > /dev/null
    os flavor create --vcpus 1 --ram 512 --disk 1 demo-flavor -f value -c id > /dev/null
}

if ((launch)); then
    if [[ ! -x $root/.venv/bin/openstack ]]; then
        echo "no .venv/bin/openstack (scripts/setup-venv.sh); skipping the launches" >&2
    else
        echo "launching $servers servers..."
        demo_resources
        for i in $(seq 1 "$servers"); do
            os server create --flavor demo-flavor --image demo-image --network demo-net \
                "demo-$i" -f value -c id > /dev/null
        done
        for i in $(seq 1 "$servers"); do
            for _ in $(seq 1 300); do
                status="$(os server show "demo-$i" -f value -c status)"
                [[ $status == BUILD ]] || break
                sleep 1
            done
            [[ $status == ACTIVE ]] || { echo "demo-$i is $status" >&2; exit 1; }
        done
        os server list --long -c Name -c Status -c Networks -c Host
        hosts="$(os server list --long -f value -c Host | sort -u | tr '\n' ' ')"
        echo "hosts used: $hosts"
        if ((servers >= 2)) && [[ $hosts != *node-a* || $hosts != *node-b* ]]; then
            echo "expected servers on both node-a and node-b" >&2
            exit 1
        fi
        for i in $(seq 1 "$servers"); do
            os server delete --wait "demo-$i" > /dev/null
        done
        echo "deleted the servers"
    fi
fi

if ((freeze)); then
    [[ -x $root/.venv/bin/openstack ]] || { echo "no .venv/bin/openstack (scripts/setup-venv.sh)" >&2; exit 1; }
    demo_resources
    agent_a="${pids[${#pids[@]} - 2]}"
    echo "freezing agent-a (pid $agent_a); build_timeout_secs=$build_timeout, reconciler every ${reconcile_every}s"
    kill -STOP "$agent_a"
    start_s=$SECONDS
    for i in 1 2; do
        os server create --flavor demo-flavor --image demo-image --network demo-net \
            "frozen-$i" -f value -c id > /dev/null
    done
    stuck=""
    for _ in $(seq 1 120); do
        for i in 1 2; do
            host="$(os server show "frozen-$i" -f value -c OS-EXT-SRV-ATTR:host)"
            [[ $host == node-a ]] && stuck="frozen-$i"
        done
        [[ -n $stuck ]] && break
        sleep 1
    done
    [[ -n $stuck ]] || { kill -CONT "$agent_a"; echo "no server landed on node-a" >&2; exit 1; }
    echo "$stuck landed on the frozen node-a"
    limit=$((build_timeout + reconcile_every + 10))
    status=BUILD
    while ((SECONDS - start_s <= limit)); do
        status="$(os server show "$stuck" -f value -c status)"
        [[ $status == BUILD ]] || break
        sleep 1
    done
    echo "$stuck is $status after $((SECONDS - start_s)) s (limit ${limit} s)"
    [[ $status == ERROR ]] || { kill -CONT "$agent_a"; exit 1; }
    os server show "$stuck" -f value -c fault
    echo "resuming agent-a"
    kill -CONT "$agent_a"
    sleep $((reconcile_every * 2))
    status="$(os server show "$stuck" -f value -c status)"
    echo "$stuck is $status after agent-a resumed"
    [[ $status == ERROR ]] || exit 1
    for i in 1 2; do os server delete --wait "frozen-$i" > /dev/null; done
    ports="$(os port list --device-owner compute:nova -f value -c ID | wc -l)"
    # Before 2.88 the hypervisor view still carries the usage (the claims).
    os --os-compute-api-version 2.87 hypervisor list --long -c 'Hypervisor Hostname' -c 'Memory MB Used' -c 'vCPUs Used'
    used="$(os --os-compute-api-version 2.87 hypervisor list --long -f value -c 'Memory MB Used' | awk '{s += $1} END {print s + 0}')"
    echo "after delete: $ports compute ports, memory used on the hypervisors: $used MB"
    [[ $ports == 0 && $used == 0 ]] || exit 1
    echo "freeze check passed"
fi

if ((keep)); then
    echo
    echo "the cloud runs; in another shell:"
    echo "  export OS_CLIENT_CONFIG_FILE=$dir/clouds.yaml"
    echo "  .venv/bin/openstack --os-cloud stratus-demo server list"
    echo "Ctrl-C stops it and removes everything"
    while true; do sleep 3600; done
fi
echo "stopping"
