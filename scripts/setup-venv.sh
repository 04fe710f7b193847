#!/usr/bin/env bash
# Creates .venv at the repository root with the real OpenStack clients the
# end-to-end tests drive (python-openstackclient, openstacksdk, ...), pinned
# in requirements.txt. Idempotent: when .venv was made from the current
# requirements.txt it returns at once.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
req="$root/requirements.txt"
stamp="$venv/.requirements.sha256"

want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ -x "$venv/bin/openstack" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

# The pins were resolved on Python 3.11; any python3 >= 3.10 installs them.
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    for p in python3.11 python3; do
        if command -v "$p" >/dev/null 2>&1; then python="$p"; break; fi
    done
fi
if [[ -z "$python" ]]; then
    echo "setup-venv: no python3 found (apt-get install python3 python3-venv)" >&2
    exit 1
fi

echo "setup-venv: creating $venv with $("$python" --version 2>&1)"
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$req"
"$venv/bin/openstack" --version >/dev/null
echo "$want" > "$stamp"
echo "setup-venv: ready ($("$venv/bin/openstack" --version 2>&1))"
