#!/usr/bin/env python3
"""Issue 14's figures for any OpenStack cloud, side by side.

Every cloud is driven the same way: over REST through openstacksdk's
connection and its keystoneauth adapters (as users' scripts do), so that
Stratus and another OpenStack (a Zed, say) are measured by one client in one
run, one column per cloud:

- token validate: GET /v3/auth/tokens with X-Subject-Token (as a service
  validates; the catalog included, keystonemiddleware's default), p50 one at
  a time and requests/s at concurrency 32;
- POST /servers -> ACTIVE one at a time, p50, polling without pause (each
  server is then deleted and waited for, so that the boots do not pile up);
- N concurrent launches (a thread per server: POST, then poll to ACTIVE),
  launches/s from the first POST to the last ACTIVE;
- GET /servers/detail with those N servers, p50;
- where the cloud is local (--pid / --pids-of-processes-matching): CPU time
  (utime + stime from /proc/PID/stat, summed over the processes) per boot +
  delete (a separate series polled every 50 ms, so that the polls add
  little), RSS (VmRSS) before and after 400 token issues 8 at a time, and the
  peak RSS seen during the run (sampled ten times a second).

What a launch needs is taken from --image/--flavor/--network or made for the
run (a tiny raw image, a 1-vCPU flavor, a network with a subnet), all named
bench-compare-<random>; quotas the run would exceed are raised for the run.
Everything made is removed and every quota put back at the end, also on
Ctrl-C or SIGTERM.

--soak instead runs the soak benchmark against each (local) cloud: launches
and deletes, token issues and image lists interleaved at some concurrency,
with the RSS every --report-every operations; the result line compares the
RSS after warm-up (the first report) with the RSS at the end (within 20%?).

    export OS_CLIENT_CONFIG_FILE=~/.local/share/stratus/clouds.yaml
    .venv/bin/python scripts/bench-compare.py \\
        --os-cloud stratus --pids-of-processes-matching 'stratus up' \\
        --os-cloud zed --pids-of-processes-matching 'nova-|keystone|glance|neutron|placement'
    .venv/bin/python scripts/bench-compare.py --soak --os-cloud stratus --pid 1234

A cloud may also be written NAME@FILE: entry NAME of clouds.yaml FILE (how
`stratus bench compare --start-stratus` passes the cloud it started).
`stratus bench compare ARGS` runs this script with the repo's .venv python.
"""

import argparse
import json
import os
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import openstack  # from .venv (scripts/setup-venv.sh)
import openstack.config
import requests.adapters

MIB = 1024.0
TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A request answered with an unexpected status, or a server failed."""


# ---------------------------------------------------------------- processes


def ancestors():
    """This process and its parents (their command lines hold the pattern)."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


class Procs:
    """The local processes of one cloud: given PIDs and/or those whose
    command line matches a pattern (looked up again at every reading, as
    services fork workers)."""

    def __init__(self, pids, patterns):
        self.fixed = list(pids)
        self.patterns = [re.compile(p) for p in patterns]
        self.mine = ancestors()

    def __bool__(self):
        return bool(self.fixed or self.patterns)

    def pids(self):
        found = set(self.fixed)
        if self.patterns:
            for entry in os.listdir("/proc"):
                if not entry.isdigit() or int(entry) in self.mine:
                    continue
                try:
                    with open(f"/proc/{entry}/cmdline", "rb") as f:
                        cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                if any(p.search(cmd) for p in self.patterns):
                    found.add(int(entry))
        return sorted(found)

    def cpu_ticks(self):
        """utime + stime of each process, clock ticks."""
        out = {}
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                out[pid] = int(fields[11]) + int(fields[12])
            except (OSError, ValueError, IndexError):
                pass
        return out

    def rss_kib(self):
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
            except (OSError, ValueError):
                pass
        return total


def cpu_seconds_between(before, after):
    """CPU used by the processes alive at both readings, seconds."""
    ticks = sum(after[p] - before[p] for p in after if p in before)
    return ticks / TICKS


class PeakSampler(threading.Thread):
    """The highest summed RSS seen, sampled every 0.1 s."""

    def __init__(self, procs):
        super().__init__(daemon=True)
        self.procs, self.peak, self.stopping = procs, 0, threading.Event()

    def run(self):
        while not self.stopping.is_set():
            self.peak = max(self.peak, self.procs.rss_kib())
            self.stopping.wait(0.1)

    def stop(self):
        self.stopping.set()
        self.join()
        self.peak = max(self.peak, self.procs.rss_kib())
        return self.peak


# ------------------------------------------------------------------- client


def check(resp, *ok):
    if resp.status_code not in ok:
        raise BenchError(
            f"{resp.request.method} {resp.request.url}: {resp.status_code} "
            f"{resp.text[:300]}"
        )
    return resp


def p50(values):
    return statistics.median(values) if values else None


def connect(spec):
    """A connection for NAME (clouds.yaml as openstacksdk finds it,
    OS_CLIENT_CONFIG_FILE honoured) or NAME@FILE."""
    name, _, path = spec.partition("@")
    if path:
        # OS_CLIENT_CONFIG_FILE would come before the file given.
        saved = os.environ.pop("OS_CLIENT_CONFIG_FILE", None)
        try:
            config = openstack.config.OpenStackConfig(config_files=[path])
            region = config.get_one(cloud=name)
        finally:
            if saved is not None:
                os.environ["OS_CLIENT_CONFIG_FILE"] = saved
        conn = openstack.connection.Connection(config=region)
    else:
        conn = openstack.connect(cloud=name)
    # Room for every thread's keep-alive connection (requests keeps 10).
    pool = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64)
    conn.session.session.mount("http://", pool)
    conn.session.session.mount("https://", pool)
    return name, conn


class Cloud:
    """One cloud under measurement and what the run made in it."""

    def __init__(self, spec, procs, args):
        self.name, self.conn = connect(spec)
        self.procs, self.args = procs, args
        self.tag = f"bench-compare-{uuid.uuid4().hex[:8]}"
        self.servers = set()  # ids of servers made and not yet gone
        self.lock = threading.Lock()
        self.made = []  # (kind, id) to remove, in order
        self.quotas = []  # (kind, old values) to put back
        self.auth = self.conn.config.config["auth"]
        self.retried_503 = 0  # token issues answered 503 + Retry-After

    # ---- identity

    def auth_url(self):
        url = self.auth["auth_url"].rstrip("/")
        return url if url.endswith("/v3") else url + "/v3"

    def password_body(self):
        a = self.auth
        user = {"name": a["username"], "password": a["password"]}
        if a.get("user_domain_id"):
            user["domain"] = {"id": a["user_domain_id"]}
        else:
            user["domain"] = {"name": a.get("user_domain_name", "Default")}
        if a.get("project_id"):
            project = {"id": a["project_id"]}
        else:
            project = {"name": a["project_name"]}
            if a.get("project_domain_id"):
                project["domain"] = {"id": a["project_domain_id"]}
            else:
                project["domain"] = {"name": a.get("project_domain_name", "Default")}
        return {
            "auth": {
                "identity": {"methods": ["password"], "password": {"user": user}},
                "scope": {"project": project},
            }
        }

    def issue_token(self):
        # A cloud that bounds its password hashing answers 503 with
        # Retry-After when its queue is full (Keystone under overload):
        # wait as told and ask again, as a well-behaved client does.
        for _ in range(100):
            resp = self.conn.session.post(
                self.auth_url() + "/auth/tokens",
                json=self.password_body(),
                authenticated=False,
                raise_exc=False,
            )
            if resp.status_code != 503 or "Retry-After" not in resp.headers:
                break
            with self.lock:
                self.retried_503 += 1
            try:
                wait = float(resp.headers["Retry-After"])
            except ValueError:
                wait = 1.0
            time.sleep(min(max(wait, 0.05), 5.0))
        return check(resp, 201).headers["X-Subject-Token"]

    def validate(self, token):
        check(self.conn.identity.get("/auth/tokens", headers={"X-Subject-Token": token}), 200)

    # ---- what a launch needs

    def prepare(self, servers_at_once):
        a, c = self.args, self.conn
        if a.image:
            self.image = c.image.find_image(a.image, ignore_missing=False).id
        else:
            with tempfile.NamedTemporaryFile(suffix=".raw") as f:
                f.write(b"\0" * 65536)
                f.flush()
                img = c.image.create_image(
                    name=self.tag,
                    filename=f.name,
                    disk_format="raw",
                    container_format="bare",
                    allow_duplicates=True,
                    wait=True,
                )
            self.image = img.id
            self.made.append(("image", img.id))
        if a.flavor:
            fl = c.compute.find_flavor(a.flavor, ignore_missing=False)
        else:
            fl = c.compute.create_flavor(name=self.tag, ram=64, vcpus=1, disk=1)
            self.made.append(("flavor", fl.id))
        self.flavor, self.flavor_ram, self.flavor_vcpus = fl.id, fl.ram, fl.vcpus
        if a.network == "none":
            self.network = None
        elif a.network:
            self.network = c.network.find_network(a.network, ignore_missing=False).id
        else:
            net = c.network.create_network(name=self.tag)
            self.made.append(("network", net.id))
            c.network.create_subnet(
                name=self.tag, network_id=net.id, ip_version=4, cidr=a.cidr
            )
            self.network = net.id
        self.raise_quotas(servers_at_once + 2)

    def raise_quotas(self, servers):
        """Raises the project's quotas that the run would exceed (not lower
        ones, not unlimited ones); the old values go back at the end."""
        c, pid = self.conn, self.conn.current_project_id
        try:
            q = c.compute.get_quota_set(pid)
            want = {
                "instances": servers,
                "cores": servers * self.flavor_vcpus,
                "ram": servers * self.flavor_ram,
            }
            old = {k: getattr(q, k) for k in want}
            new = {k: v for k, v in want.items() if 0 <= old[k] < v}
            if new:
                c.compute.update_quota_set(pid, **new)
                self.quotas.append(("compute", {k: old[k] for k in new}))
        except Exception as e:  # not admin: the run may still fit
            note(f"{self.name}: compute quotas left as they are ({e})")
        if self.network:
            try:
                q = c.network.get_quota(pid)
                if 0 <= q.ports < servers + 5:
                    c.network.update_quota(pid, ports=servers + 5)
                    self.quotas.append(("network", {"ports": q.ports}))
            except Exception as e:
                note(f"{self.name}: network quotas left as they are ({e})")

    # ---- servers

    def post_server(self, name):
        server = {
            "name": name,
            "imageRef": self.image,
            "flavorRef": self.flavor,
            "networks": [{"uuid": self.network}] if self.network else "none",
        }
        headers = {}
        if not self.network:  # "none" needs 2.37
            headers = {
                "OpenStack-API-Version": "compute 2.37",
                "X-OpenStack-Nova-API-Version": "2.37",
            }
        resp = check(
            self.conn.compute.post("/servers", json={"server": server}, headers=headers),
            202,
        )
        sid = resp.json()["server"]["id"]
        with self.lock:
            self.servers.add(sid)
        return sid

    def wait_active(self, sid, interval):
        deadline = time.monotonic() + self.args.server_timeout
        while True:
            s = check(self.conn.compute.get(f"/servers/{sid}"), 200).json()["server"]
            if s["status"] == "ACTIVE":
                return
            if s["status"] == "ERROR":
                raise BenchError(f"server {sid} went to ERROR: {s.get('fault')}")
            if time.monotonic() > deadline:
                raise BenchError(f"server {sid} not ACTIVE after {self.args.server_timeout} s")
            if interval:
                time.sleep(interval)

    def delete_server(self, sid, interval):
        check(self.conn.compute.delete(f"/servers/{sid}"), 204, 404)
        deadline = time.monotonic() + self.args.server_timeout
        while check(self.conn.compute.get(f"/servers/{sid}"), 200, 404).status_code != 404:
            if time.monotonic() > deadline:
                raise BenchError(f"server {sid} not gone after {self.args.server_timeout} s")
            if interval:
                time.sleep(interval)
        with self.lock:
            self.servers.discard(sid)

    def launch_and_wait(self, name, interval):
        sid = self.post_server(name)
        self.wait_active(sid, interval)
        return sid

    # ---- cleanup

    def cleanup(self):
        c = self.conn
        for sid in list(self.servers):
            try:
                self.delete_server(sid, 0.05)
            except Exception as e:
                note(f"{self.name}: server {sid} not removed: {e}")
        for kind, rid in reversed(self.made):
            for attempt in range(20):
                try:
                    if kind == "image":
                        c.image.delete_image(rid, ignore_missing=True)
                    elif kind == "flavor":
                        c.compute.delete_flavor(rid, ignore_missing=True)
                    elif kind == "network":
                        # Ports of deleted servers may take a moment to go.
                        c.network.delete_network(rid, ignore_missing=True)
                    break
                except Exception as e:
                    if attempt == 19:
                        note(f"{self.name}: {kind} {rid} not removed: {e}")
                    time.sleep(0.25)
        pid = c.current_project_id
        for kind, old in self.quotas:
            try:
                if kind == "compute":
                    c.compute.update_quota_set(pid, **old)
                else:
                    c.network.update_quota(pid, **old)
            except Exception as e:
                note(f"{self.name}: {kind} quotas not put back to {old}: {e}")


def note(text):
    print(text, file=sys.stderr, flush=True)


def timed(fn, *a):
    t0 = time.perf_counter()
    fn(*a)
    return (time.perf_counter() - t0) * 1000.0


def run_all(fn, items, workers):
    """fn over items on `workers` threads; the first error is raised."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


# ------------------------------------------------------------------ figures

# (key, label, unit): the rows of issue 14's table.
def rows(a):
    return [
        ("validate_p50_ms", "token validate (GET /v3/auth/tokens), p50", "ms"),
        ("validate_rate", f"token validate at concurrency {a.validate_concurrency}", "/s"),
        ("boot_p50_ms", "POST /servers → ACTIVE, one at a time, p50", "ms"),
        ("launch_rate", f"{a.concurrent} concurrent launches, launches per second", "/s"),
        ("detail_p50_ms", f"GET /servers/detail with {a.concurrent} servers, p50", "ms"),
        ("cpu_per_boot_delete_ms", "CPU per boot + delete, all services", "ms"),
        (
            "rss_after_tokens_mib",
            f"RSS after {a.token_issues} token issues, {a.token_concurrency} at a time",
            "MiB",
        ),
        ("rss_peak_mib", "RSS peak during this run", "MiB"),
    ]


def measure(cloud, a, out):
    """Issue 14's figures for one cloud, into `out` as they come (a failure
    keeps the ones measured before it)."""
    procs = cloud.procs
    sampler = PeakSampler(procs) if procs else None
    if sampler:
        out["rss_start_mib"] = procs.rss_kib() / MIB
        sampler.start()
    try:
        cloud.prepare(a.concurrent)
        token = cloud.conn.session.get_token()
        for _ in range(5):  # warm-up: connections, version discovery
            cloud.validate(token)

        lat = [timed(cloud.validate, token) for _ in range(a.validations)]
        out["validate_p50_ms"] = p50(lat)
        t0 = time.perf_counter()
        run_all(lambda _: cloud.validate(token), range(a.validations_concurrent),
                a.validate_concurrency)
        out["validate_rate"] = a.validations_concurrent / (time.perf_counter() - t0)

        # One at a time, polled without pause so that the figure is the
        # cloud's and not the poll interval's.
        boots = []
        for i in range(a.boots):
            t0 = time.perf_counter()
            sid = cloud.launch_and_wait(f"{cloud.tag}-one-{i}", 0)
            boots.append((time.perf_counter() - t0) * 1000.0)
            cloud.delete_server(sid, 0)
        out["boot_p50_ms"] = p50(boots)

        # CPU apart, polled at a.cpu_poll_interval, so that the figure is
        # the boot's and delete's and not mostly the polls'.
        if procs:
            before = procs.cpu_ticks()
            for i in range(a.cpu_boots):
                sid = cloud.launch_and_wait(f"{cloud.tag}-cpu-{i}", a.cpu_poll_interval)
                cloud.delete_server(sid, a.cpu_poll_interval)
            cpu = cpu_seconds_between(before, procs.cpu_ticks())
            out["cpu_per_boot_delete_ms"] = cpu * 1000.0 / a.cpu_boots

        t0 = time.perf_counter()
        ids = run_all(
            lambda i: cloud.launch_and_wait(f"{cloud.tag}-many-{i}", a.poll_interval),
            range(a.concurrent),
            a.concurrent,
        )
        out["launch_rate"] = a.concurrent / (time.perf_counter() - t0)
        seen = len(check(cloud.conn.compute.get("/servers/detail"), 200).json()["servers"])
        out["detail_servers"] = seen
        lat = [
            timed(lambda: check(cloud.conn.compute.get("/servers/detail"), 200))
            for _ in range(a.lists)
        ]
        out["detail_p50_ms"] = p50(lat)
        run_all(lambda sid: cloud.delete_server(sid, a.poll_interval), ids, a.concurrent)

        if procs:
            out["rss_before_tokens_mib"] = procs.rss_kib() / MIB
            run_all(lambda _: cloud.issue_token(), range(a.token_issues), a.token_concurrency)
            out["rss_after_tokens_mib"] = procs.rss_kib() / MIB
            out["token_issues_retried_503"] = cloud.retried_503
    finally:
        cloud.cleanup()
        if sampler:
            out["rss_peak_mib"] = sampler.stop() / MIB
    return out


def cell(fig, key):
    v = fig.get(key)
    if "error" in fig and v is None:
        return "failed"
    if v is None:
        return "—" if not fig.get("local") and key in LOCAL_ONLY else "n/a"
    if key == "rss_after_tokens_mib":
        return (
            f"{v:,.1f} MiB ({fig['rss_before_tokens_mib']:,.1f} before, "
            f"{fig['rss_start_mib']:,.1f} at the start of the run; "
            f"{fig.get('token_issues_retried_503', 0)} answered 503, retried after Retry-After)"
        )
    if key == "detail_p50_ms" and fig.get("detail_servers") is not None:
        return f"{v:,.2f} ms ({fig['detail_servers']} listed)"
    unit = {"ms": " ms", "/s": "/s", "MiB": " MiB"}
    for k, _, u in ROWS:
        if k == key:
            return f"{v:,.2f}{unit[u]}" if u == "ms" else f"{v:,.1f}{unit[u]}"
    return str(v)


LOCAL_ONLY = {"cpu_per_boot_delete_ms", "rss_after_tokens_mib", "rss_peak_mib"}
ROWS = []


def print_table(figures):
    head = ["figure"] + [f["cloud"] for f in figures]
    print("| " + " | ".join(head) + " |")
    print("|---" + "|---:" * len(figures) + "|")
    for key, label, _ in ROWS:
        print("| " + " | ".join([label] + [cell(f, key) for f in figures]) + " |")
    for f in figures:
        if "error" in f:
            print(f"{f['cloud']}: failed: {f['error']}")


# --------------------------------------------------------------------- soak


def soak(cloud, a, out):
    """Launch+delete, token issue and image list operations interleaved on
    a.soak_concurrency threads; RSS every a.report_every operations."""
    procs = cloud.procs
    total = a.soak_launches + a.soak_tokens + a.soak_image_lists
    # Spread the kinds evenly: operation i's kind from its position.
    kinds = []
    counts = {"launch": a.soak_launches, "token": a.soak_tokens, "images": a.soak_image_lists}
    done_of = {k: 0 for k in counts}
    for i in range(total):
        k = max(counts, key=lambda k: counts[k] * (i + 1) / total - done_of[k])
        done_of[k] += 1
        kinds.append(k)
    done, reports, lock = [0], [], threading.Lock()
    out["operations"] = total

    def op(i):
        k = kinds[i]
        if k == "launch":
            sid = cloud.launch_and_wait(f"{cloud.tag}-soak-{i}", a.poll_interval)
            cloud.delete_server(sid, a.poll_interval)
        elif k == "token":
            cloud.issue_token()
        else:
            check(cloud.conn.image.get("/images"), 200)
        with lock:
            done[0] += 1
            n = done[0]
        if n % a.report_every == 0 or n == total:
            rss = procs.rss_kib() / MIB
            reports.append((n, rss))
            print(f"{cloud.name}: {n:,} operations: RSS {rss:,.1f} MiB", flush=True)

    t0 = time.perf_counter()
    try:
        cloud.prepare(a.soak_concurrency)
        out["rss_start_mib"] = procs.rss_kib() / MIB
        print(f"{cloud.name}: soak start: RSS {out['rss_start_mib']:,.1f} MiB", flush=True)
        run_all(op, range(total), a.soak_concurrency)
    finally:
        cloud.cleanup()
    out["seconds"] = time.perf_counter() - t0
    reports.sort()
    out["reports"] = [{"operations": n, "rss_mib": r} for n, r in reports]
    warm, end = reports[0], reports[-1]
    out["rss_after_warmup_mib"], out["rss_end_mib"] = warm[1], end[1]
    change = (end[1] - warm[1]) / warm[1] if warm[1] else 0.0
    out["change"] = change
    out["within_20_percent"] = abs(change) <= 0.20
    return out


def soak_line(s):
    return (
        f"soak {s['cloud']}: {s['operations']:,} operations in {s['seconds']:,.1f} s; "
        f"RSS {s['rss_after_warmup_mib']:,.1f} MiB after warm-up "
        f"({s['reports'][0]['operations']:,} operations), {s['rss_end_mib']:,.1f} MiB "
        f"at the end: {s['change'] * 100:+.1f}%, within 20%: "
        f"{'yes' if s['within_20_percent'] else 'NO'}"
    )


# --------------------------------------------------------------------- main


class ForCloud(argparse.Action):
    """--pid / --pids-of-processes-matching belong to the --os-cloud given
    last before them (or to the first cloud when none came before)."""

    def __call__(self, parser, ns, value, option=None):
        index = max(len(getattr(ns, "os_cloud") or []) - 1, 0)
        getattr(ns, self.dest).append((index, value))


def parse(argv):
    p = argparse.ArgumentParser(
        prog="bench-compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--os-cloud", action="append", required=True, metavar="NAME[@FILE]",
                   help="a clouds.yaml entry to measure (repeat for more clouds)")
    p.add_argument("--pid", dest="pids", action=ForCloud, default=[], type=int,
                   help="a local process of the cloud given before it")
    p.add_argument("--pids-of-processes-matching", dest="patterns", action=ForCloud,
                   default=[], metavar="REGEX",
                   help="local processes of the cloud given before it, by command line")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--image", help="image to boot (default: a tiny raw one made for the run)")
    p.add_argument("--flavor", help="flavor (default: 1 vCPU, 64 MiB, 1 GiB made for the run)")
    p.add_argument("--network",
                   help="network (default: one made for the run; `none`: no network)")
    p.add_argument("--cidr", default="10.213.0.0/22", help="subnet of the network made")
    p.add_argument("--validations", type=int, default=500,
                   help="token validations one at a time (p50)")
    p.add_argument("--validations-concurrent", type=int, default=3000,
                   help="token validations for the rate")
    p.add_argument("--validate-concurrency", type=int, default=32)
    p.add_argument("--boots", type=int, default=20, help="boots one at a time")
    p.add_argument("--cpu-boots", type=int, default=20,
                   help="boots + deletes one at a time for the CPU figure")
    p.add_argument("--cpu-poll-interval", type=float, default=0.05,
                   help="seconds between polls of a server in the CPU figure's boots")
    p.add_argument("--concurrent", type=int, default=50, help="servers launched at once")
    p.add_argument("--lists", type=int, default=50, help="GET /servers/detail calls")
    p.add_argument("--token-issues", type=int, default=400)
    p.add_argument("--token-concurrency", type=int, default=8)
    p.add_argument("--poll-interval", type=float, default=0.01,
                   help="seconds between polls of a server (launches at once, soak)")
    p.add_argument("--server-timeout", type=float, default=300.0)
    p.add_argument("--soak", action="store_true", help="run the soak benchmark instead")
    p.add_argument("--soak-launches", type=int, default=10_000)
    p.add_argument("--soak-tokens", type=int, default=1_000)
    p.add_argument("--soak-image-lists", type=int, default=1_000)
    p.add_argument("--soak-concurrency", type=int, default=16)
    p.add_argument("--report-every", type=int, default=1_000)
    a = p.parse_args(argv)
    for dest in ("pids", "patterns"):
        for index, _ in getattr(a, dest):
            if index >= len(a.os_cloud):
                p.error("--pid/--pids-of-processes-matching after a cloud that is not given")
    counts = [a.validations, a.validations_concurrent, a.validate_concurrency, a.boots,
              a.cpu_boots, a.concurrent, a.lists, a.token_issues, a.token_concurrency,
              a.soak_concurrency, a.report_every]
    if min(counts) < 1:
        p.error("counts and concurrencies must be at least 1")
    return a


def main(argv):
    a = parse(argv)
    ROWS.extend(rows(a))
    # SIGTERM cleans up as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    load = os.getloadavg()
    results, failed = [], False
    for i, spec in enumerate(a.os_cloud):
        procs = Procs(
            [v for j, v in a.pids if j == i], [v for j, v in a.patterns if j == i]
        )
        if procs and not procs.pids():
            note(f"{spec}: no local process found for --pid/--pids-of-processes-matching")
            return 2
        if a.soak and not procs:
            note(f"{spec}: --soak needs --pid or --pids-of-processes-matching (it reads RSS)")
            return 2
        cloud = Cloud(spec, procs, a)
        note(f"{cloud.name}: measuring ({len(procs.pids()) if procs else 0} local processes)")
        out = {"cloud": cloud.name, "local": bool(procs)}
        results.append(out)
        try:
            (soak if a.soak else measure)(cloud, a, out)
        except KeyboardInterrupt:
            note("interrupted; what the run made was removed")
            return 130
        except Exception as e:
            failed = True
            out["error"] = str(e)
    load_after = os.getloadavg()
    if a.json:
        print(json.dumps({"load_before": load, "load_after": load_after,
                          "soak" if a.soak else "figures": results}, indent=2))
    elif a.soak:
        for s in results:
            print(soak_line(s) if "error" not in s else f"soak {s['cloud']}: failed: {s['error']}")
    else:
        print_table(results)
    if not a.json:
        print(f"load average before {load[0]:.2f}, after {load_after[0]:.2f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
