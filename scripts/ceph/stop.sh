#!/usr/bin/env bash
# Stops the Ceph daemons that scripts/ceph/start.sh started under DIR, by the
# PIDs in their pid files (never by name). Leaves DIR in place.
set -uo pipefail

D=${1:?usage: stop.sh DIR}
[ -d "$D/run" ] || exit 0

pids=()
for f in "$D"/run/*.pid; do
    [ -s "$f" ] || continue
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" && pids+=("$pid")
    fi
done
for _ in $(seq 30); do
    still=()
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && still+=("$p"); done
    [ ${#still[@]} -eq 0 ] && break
    sleep 0.5
done
for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && kill -9 "$p"; done
rm -f "$D"/run/*.pid
echo "[ceph] stopped ${#pids[@]} daemon(s) of $D" >&2
