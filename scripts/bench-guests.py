#!/usr/bin/env python3
"""Real guests, measured: POST /servers to ACTIVE and to the guest's first
console line of its own (the test image's init prints `stratus-guest:
booted` before anything else it does; the firmware's lines come earlier), for 1 and for N servers at once, with the image already in
the host's cache and not; the cloud's RSS; the accelerator libvirt used.
The reference is a bare boot of the same image with qemu-system-x86_64 by
hand (same machine type, memory, accelerator and overlay disk), timed to
that same line.

It starts its own `stratus up` (libvirt + linuxbridge, as root, libvirtd
running: scripts/libvirt-host.sh start) in a temporary data dir on free
loopback ports, and removes everything it made on exit.

    sudo .venv/bin/python scripts/bench-guests.py --stratus target/release/stratus
"""

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import openstack  # from .venv (scripts/setup-venv.sh)
from openstack.compute.v2.server import Server

BOOTED = "stratus-guest: booted"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def start_cloud(stratus, data, virt_type, probe_kernel):
    env = dict(os.environ)
    for key in ("IDENTITY", "COMPUTE", "METADATA", "IMAGE", "NETWORK", "VOLUME"):
        env[f"STRATUS_ENDPOINTS__{key}_PORT"] = str(free_port())
    env.update(
        {
            "STRATUS_NETWORK__DRIVER": "linuxbridge",
            "STRATUS_COMPUTE__VIRT_DRIVER": "libvirt",
            "STRATUS_LIBVIRT__VIRT_TYPE": virt_type,
            "STRATUS_LIBVIRT__PROBE_KERNEL": probe_kernel,
            "STRATUS_LIBVIRT__SHUTDOWN_TIMEOUT_SECS": "0",
            "RUST_LOG": "info",
        }
    )
    log = open(os.path.join(data, "stratus.log"), "w")
    p = subprocess.Popen(
        [stratus, "up", "--data-dir", data],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    for line in p.stdout:
        if "stratus ready" in line:
            return p
    raise SystemExit(f"stratus up did not start; see {data}/stratus.log")


def accelerator(data):
    with open(os.path.join(data, "stratus.log")) as f:
        m = re.findall(r'virt_type="?(\w+)"?', f.read())
    return m[-1] if m else "?"


def console(conn, server_id):
    r = conn.compute.post(
        f"/servers/{server_id}/action",
        json={"os-getConsoleOutput": {"length": 50}},
    )
    return r.json().get("output", "") if r.status_code == 200 else ""


def launch(conn, n, image, flavor, net):
    """POST n servers at once; per server (to ACTIVE, to first line) in s."""
    t0 = {}
    ids = []
    for i in range(n):
        start = time.monotonic()
        s = conn.compute.create_server(
            name=f"bench-{i}",
            image_id=image,
            flavor_id=flavor,
            networks=[{"uuid": net}],
        )
        t0[s.id] = start
        ids.append(s.id)
    active, first = {}, {}
    deadline = time.monotonic() + 600
    while len(first) < n or len(active) < n:
        if time.monotonic() > deadline:
            raise SystemExit("servers did not boot within 600 s")
        for sid in ids:
            now = time.monotonic()
            if sid not in active:
                s = conn.compute.get_server(sid)
                if s.status == "ACTIVE":
                    active[sid] = now - t0[sid]
                elif s.status == "ERROR":
                    raise SystemExit(f"server {sid} went to ERROR: {s.fault}")
            if sid in active and sid not in first and BOOTED in console(conn, sid):
                first[sid] = now - t0[sid]
        time.sleep(0.05)
    for sid in ids:
        conn.compute.delete_server(sid)
    for sid in ids:
        conn.compute.wait_for_delete(Server(id=sid), wait=300)
    return [(active[s], first[s]) for s in ids]


def bare_boot(disk, accel, tmp, n=1):
    """n qemu guests at once, each on its own overlay of `disk`, by hand:
    seconds from the start to each one's init's first line."""
    guests = []
    start = time.monotonic()
    for i in range(n):
        overlay = os.path.join(tmp, f"bare-{i}.qcow2")
        serial = os.path.join(tmp, f"bare-{i}.console")
        for f in (overlay, serial):
            if os.path.exists(f):
                os.remove(f)
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", disk, overlay],
            check=True,
        )
        q = subprocess.Popen(
            [
                "qemu-system-x86_64", "-accel", "kvm" if accel == "kvm" else "tcg",
                "-machine", "q35", "-m", "256", "-nodefaults", "-display", "none",
                "-drive", f"file={overlay},if=virtio,format=qcow2",
                "-serial", f"file:{serial}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        guests.append((q, serial, overlay))
    took = {}
    try:
        while len(took) < n:
            if time.monotonic() - start > 300:
                raise SystemExit("a bare guest printed nothing in 300 s")
            for i, (_, serial, _) in enumerate(guests):
                if i not in took and os.path.exists(serial):
                    with open(serial, errors="replace") as f:
                        if BOOTED in f.read():
                            took[i] = time.monotonic() - start
            time.sleep(0.02)
    finally:
        for q, serial, overlay in guests:
            q.kill()
            q.wait()
            os.remove(overlay)
            os.remove(serial)
    return sorted(took.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stratus", default=os.path.join(ROOT, "target/release/stratus"))
    ap.add_argument("--servers", type=int, default=5, help="servers launched at once")
    ap.add_argument("--virt-type", default="auto")
    args = ap.parse_args()

    image_dir = os.path.join(ROOT, "target", "stratus-guest")
    subprocess.run([os.path.join(ROOT, "scripts/guest-image.sh"), image_dir], check=True)
    disk = os.path.join(image_dir, "guest.qcow2")
    tmp = tempfile.mkdtemp(prefix="stratus-bench-guests-")
    cloud = start_cloud(args.stratus, tmp, args.virt_type, os.path.join(image_dir, "vmlinuz"))
    net_id = None
    try:
        os.environ["OS_CLIENT_CONFIG_FILE"] = os.path.join(tmp, "clouds.yaml")
        conn = openstack.connect(cloud="stratus")
        accel = accelerator(tmp)
        flavor = conn.compute.create_flavor(name="bench", ram=256, vcpus=1, disk=1)
        net = conn.network.create_network(name="bench")
        net_id = net.id
        conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.96.0.0/24")

        def new_image(name):
            img = conn.image.create_image(
                name=name, filename=disk, disk_format="qcow2", container_format="bare"
            )
            return img.id

        rows = []
        for n in (1, args.servers):
            cold = new_image(f"cold-{n}")  # never fetched by this host yet
            rows.append((n, "not cached", launch(conn, n, cold, flavor.id, net.id)))
            rows.append((n, "cached", launch(conn, n, cold, flavor.id, net.id)))
        rss = rss_mib(cloud.pid)
        bare1 = sorted(bare_boot(disk, accel, tmp)[0] for _ in range(3))
        bare_n = bare_boot(disk, accel, tmp, args.servers)

        print(f"accelerator: {accel}; stratus up RSS after the runs: {rss:.0f} MiB")
        print(f"bare qemu boot to the init's first line: 1 guest median {bare1[1]:.2f} s "
              f"({', '.join(f'{b:.2f}' for b in bare1)}); {args.servers} at once "
              f"p50 {bare_n[len(bare_n) // 2]:.2f} s, max {bare_n[-1]:.2f} s")
        print("| servers at once | image | POST->ACTIVE p50 / max (s) | POST->init's first line p50 / max (s) |")
        print("|---:|---|---:|---:|")
        for n, cache, res in rows:
            act = sorted(r[0] for r in res)
            fst = sorted(r[1] for r in res)
            print(f"| {n} | {cache} | {act[len(act) // 2]:.2f} / {act[-1]:.2f} "
                  f"| {fst[len(fst) // 2]:.2f} / {fst[-1]:.2f} |")
        conn.network.delete_network(net.id, ignore_missing=True)
        # The DHCP agent removes the network's namespace after the delete
        # answers: wait for it before stopping the cloud.
        for _ in range(120):
            if not os.path.exists(f"/run/netns/qdhcp-{net.id}"):
                net_id = None
                break
            time.sleep(0.25)
    finally:
        cloud.send_signal(signal.SIGTERM)
        cloud.wait(timeout=60)
        if net_id:
            # A failed run: what the agents made for the network goes too
            # (removing the namespace removes the DHCP port's veth pair).
            subprocess.run(["ip", "netns", "del", f"qdhcp-{net_id}"], check=False)
            subprocess.run(["ip", "link", "del", f"brq{net_id[:11]}"], check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
