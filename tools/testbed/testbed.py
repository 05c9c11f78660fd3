#!/usr/bin/env python3
"""Branch-office testbed: real hosts (network namespaces), real offices
(Linux bridges), real WAN links (veth pairs shaped with tc tbf, with delay
added by `wan-delay` through iptables NFQUEUE, since this kernel has no
netem), and real processes: a Branchline server, nginx as the origin, and
one Branchline client per host. The same network then runs the baselines:
HTTP (every client downloads from the origin with curl) and BitTorrent (a
real swarm: opentracker in the central office, aria2 seeding on the origin
host and on every client, each peer seeding until the run ends).

Measurements are taken outside Branchline: bytes on every WAN interface in
both directions from the kernel's counters, bytes the origin host sent, each
client's completion time from the start, and the SHA-256 of every output.
Branchline's own per-link ledger is printed beside the interface counters.

Layout (addresses from 198.18.0.0/15):
- office 0 is the central office: host h0 runs the Branchline server,
  h1 nginx (the origin), h2 a Branchline client (the central office's
  cache, so each package leaves the origin once; the baselines do not use
  it);
- offices 1..K are branches under it, each with C client hosts; with
  `child`, office K+1 is a WiFi office under branch 1 with C/2 clients;
- every office has a router namespace with a bridge (LAN 198.18.O.0/24,
  router at .1, hosts from .10) and a WAN veth pair to its parent's router
  (198.19.O.0/30); both ends are shaped to the WAN rate (tbf, 200 ms of
  queue) and each direction is delayed by `delay_ms` in the router it
  leaves (NFQUEUE on POSTROUTING -o wan+, one `wan-delay` per router).

Everything is named with the prefix `bltb-` and removed on exit, also on
failure or Ctrl-C; `testbed.py clean` removes leftovers by that prefix.

`yield` (B5) builds one branch behind a 20 Mbit / 40 ms link and measures
the background protocol (the central cache serving the branch's RVP) alone
and beside an iperf3 TCP flow, with a ping alongside, once with the
delay-based controller and once with quinn's CUBIC; bytes by protocol come
from iptables counters in the branch router, after the shaper.

Usage: tools/testbed/testbed.py run --scenario small [--systems branchline,http,bittorrent] [--runs 3]
       tools/testbed/testbed.py yield [--wan-mbit 20]
       tools/testbed/testbed.py clean
"""

import argparse
import atexit
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

PREFIX = "bltb-"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# prestage: Branchline's timed fetch only fills the caches, and each output
# is written, hashed and deleted afterwards, one at a time: 41 caches and 41
# outputs of 1 GiB at once would not fit this machine's disk.
SCENARIOS = {
    "small": dict(branches=2, clients=3, child=False, mib=32, wan_mbit=20, delay_ms=30, prestage=False),
    "standard": dict(branches=3, clients=6, child=True, mib=256, wan_mbit=20, delay_ms=40, prestage=False),
    "big": dict(branches=4, clients=10, child=False, mib=1024, wan_mbit=50, delay_ms=40, prestage=True),
}

SERVER_IP = "198.18.0.10"
ORIGIN_IP = "198.18.0.11"
HQ_CACHE_IP = "198.18.0.12"
ORIGIN_PORT = 8080
# Ethernet + IPv4 + UDP/TCP headers are not payload; the interface counts
# them. UDP: 14 + 20 + 8 bytes per packet.
UDP_FRAME_OVERHEAD = 42


def sh(*args, check=True, quiet=False, **kw):
    """Runs a command; a failure raises with its stderr."""
    out = subprocess.run(list(args), capture_output=True, text=True, **kw)
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {out.returncode}: {out.stderr.strip()}")
    return out.stdout


def ns_exec(ns, *args):
    return ["ip", "netns", "exec", ns, *args]


class Office:
    def __init__(self, index, name, parent, kind, hosts):
        self.index, self.name, self.parent, self.kind = index, name, parent, kind
        self.router = f"{PREFIX}r{index}"
        self.hosts = hosts  # list of (namespace, ip)

    def subnet(self):
        return f"198.18.{self.index}.0/24"


def plan(scn):
    offices = [Office(0, "hq", None, "Default",
                      [(f"{PREFIX}o0h{i}", f"198.18.0.{10 + i}") for i in range(3)])]
    for b in range(1, scn["branches"] + 1):
        offices.append(Office(b, f"branch-{b}", 0, "Default",
                              [(f"{PREFIX}o{b}h{i}", f"198.18.{b}.{10 + i}") for i in range(scn["clients"])]))
    if scn["child"]:
        c = scn["branches"] + 1
        offices.append(Office(c, "branch-1-wifi", 1, "WiFi",
                              [(f"{PREFIX}o{c}h{i}", f"198.18.{c}.{10 + i}")
                               for i in range(max(1, scn["clients"] // 2))]))
    return offices


class Net:
    """The namespaces, bridges, veths, shaping and delay programs."""

    def __init__(self, offices, scn, wan_delay):
        self.offices, self.scn, self.wan_delay = offices, scn, wan_delay
        self.delays = []

    def namespaces(self):
        out = []
        for o in self.offices:
            out.append(o.router)
            out.extend(ns for ns, _ in o.hosts)
        return out

    def build(self):
        rate = self.scn["wan_mbit"]
        burst = max(32 * 1024, rate * 1_000_000 // 8 // 1000)
        for ns in self.namespaces():
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        for o in self.offices:
            r = o.router
            sh(*ns_exec(r, "sysctl", "-qw", "net.ipv4.ip_forward=1"))
            # Bridged LAN frames must not meet the WAN rules.
            sh(*ns_exec(r, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0"), check=False)
            sh("ip", "-n", r, "link", "add", "br0", "type", "bridge")
            sh("ip", "-n", r, "addr", "add", f"198.18.{o.index}.1/24", "dev", "br0")
            sh("ip", "-n", r, "link", "set", "br0", "up")
            for i, (host, ip) in enumerate(o.hosts):
                sh("ip", "link", "add", f"p{i}", "netns", r, "type", "veth", "peer", "name", "eth0", "netns", host)
                sh("ip", "-n", r, "link", "set", f"p{i}", "master", "br0", "up")
                sh("ip", "-n", host, "addr", "add", f"{ip}/24", "dev", "eth0")
                sh("ip", "-n", host, "link", "set", "eth0", "up")
                sh("ip", "-n", host, "route", "add", "default", "via", f"198.18.{o.index}.1")
                if ip == ORIGIN_IP:
                    sh("ip", "-n", host, "link", "set", "eth0", "gso_max_segs", "1")
            if o.parent is not None:
                p = self.offices[o.parent].router
                down = f"wan-d{o.index}"
                sh("ip", "link", "add", "wan-up", "netns", r, "type", "veth", "peer", "name", down, "netns", p)
                sh("ip", "-n", r, "addr", "add", f"198.19.{o.index}.2/30", "dev", "wan-up")
                sh("ip", "-n", p, "addr", "add", f"198.19.{o.index}.1/30", "dev", down)
                for ns, dev in ((r, "wan-up"), (p, down)):
                    sh("ip", "-n", ns, "link", "set", dev, "gso_max_segs", "1")
                    sh("ip", "-n", ns, "link", "set", dev, "up")
                    sh("tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", f"{rate}mbit",
                       "burst", str(burst), "latency", "200ms")
                sh("ip", "-n", r, "route", "add", "default", "via", f"198.19.{o.index}.1")
        # Each router reaches every office below it through the child on
        # that branch.
        for o in self.offices:
            anc = o
            while anc.parent is not None:
                parent = self.offices[anc.parent]
                sh("ip", "-n", parent.router, "route", "add", o.subnet(), "via", f"198.19.{anc.index}.2")
                anc = parent
        for o in self.offices:
            if o.parent is None and not any(c.parent == o.index for c in self.offices):
                continue
            sh(*ns_exec(o.router, "iptables", "-t", "mangle", "-A", "POSTROUTING", "-o", "wan+",
                        "-j", "NFQUEUE", "--queue-num", "0"))
            log = open(os.devnull, "w")
            proc = subprocess.Popen(ns_exec(o.router, self.wan_delay, "--queue", "0",
                                            "--delay-ms", str(self.scn["delay_ms"])),
                                    stdout=log, stderr=log)
            self.delays.append((o.router, proc))
        time.sleep(0.3)
        self.check_delays()

    def check_delays(self):
        for router, proc in self.delays:
            if proc.poll() is not None:
                raise RuntimeError(f"the WAN delay program of {router} died (exit {proc.returncode}); "
                                   "WAN traffic stops without it")

    def wan_counters(self):
        """Per branch office: bytes (payload estimate aside) down and up."""
        out = {}
        for o in self.offices:
            if o.parent is None:
                continue
            p = self.offices[o.parent].router
            down = link_stats(p, f"wan-d{o.index}")["tx"]
            up = link_stats(o.router, "wan-up")["tx"]
            out[o.name] = dict(down_bytes=down["bytes"], down_packets=down["packets"],
                               up_bytes=up["bytes"], up_packets=up["packets"])
        return out

    def destroy(self):
        for _, proc in self.delays:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.delays = []
        clean()


def link_stats(ns, dev):
    data = json.loads(sh("ip", "-n", ns, "-s", "-j", "link", "show", dev))
    return data[0]["stats64"]


def clean():
    """Removes every namespace this tool made, by its prefix."""
    for line in sh("ip", "netns", "list", check=False).splitlines():
        name = line.split()[0] if line.strip() else ""
        if name.startswith(PREFIX):
            for pid in sh("ip", "netns", "pids", name, check=False).split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            sh("ip", "netns", "del", name, check=False)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def wait_for(what, cond, timeout=60):
    end = time.time() + timeout
    while not cond():
        if time.time() > end:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def status(bl, data_dir):
    out = subprocess.run([bl, "status", "--json", "--data-dir", data_dir], capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else None


class Origin:
    """nginx on the origin host, serving the package with Range."""

    def __init__(self, work, host):
        self.dir = os.path.join(work, "origin")
        os.makedirs(self.dir, exist_ok=True)
        conf = os.path.join(work, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""daemon off; user root; worker_processes 1; pid {work}/nginx.pid;
error_log {work}/nginx.err;
events {{ worker_connections 1024; }}
http {{ access_log off; sendfile on;
  server {{ listen {ORIGIN_IP}:{ORIGIN_PORT}; root {self.dir}; }} }}
""")
        self.proc = subprocess.Popen(ns_exec(host, "nginx", "-c", conf),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.host = host

    def url(self, name):
        return f"http://{ORIGIN_IP}:{ORIGIN_PORT}/{name}"

    def sent(self):
        return link_stats(self.host, "eth0")["tx"]["bytes"]

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def run_fetches(commands):
    """Starts every (name, argv, out) at once; returns name -> seconds."""
    start = time.time()
    procs = {name: (subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), out)
             for name, argv, out in commands}
    done = {}
    while len(done) < len(procs):
        for name, (p, _) in procs.items():
            if name not in done and p.poll() is not None:
                if p.returncode != 0:
                    raise RuntimeError(f"{name}: exit {p.returncode}: {p.stderr.read().decode()[-500:]}")
                done[name] = time.time() - start
        time.sleep(0.05)
    return done


class Branchline:
    """A Branchline server and one client per host (plus the central
    office's cache), with the topology imported; stopped with SIGTERM."""

    def __init__(self, bl, offices, work, client_config=None, rvps_per_office=None):
        self.bl, self.work = bl, work
        self.server_dir = os.path.join(work, "bl-server")
        self.procs = [subprocess.Popen(
            ns_exec(offices[0].hosts[0][0], bl, "server", "--data-dir", self.server_dir,
                    "--listen", f"{SERVER_IP}:34323"),
            stdout=open(os.path.join(work, "bl-server.log"), "w"), stderr=subprocess.STDOUT)]
        self.cache = offices[0].hosts[2][0]
        self.clients = [(self.cache, HQ_CACHE_IP, "hq")]
        for o in offices[1:]:
            self.clients.extend((ns, ip, o.name) for ns, ip in o.hosts)
        self.dirs = {ns: os.path.join(work, f"bl-{ns}") for ns, _, _ in self.clients}
        try:
            wait_for("the server", lambda: status(bl, self.server_dir) is not None)
            csv = os.path.join(work, "topology.csv")
            with open(csv, "w") as f:
                f.write("office,parent,type,subnets,rvp_count\n")
                for o in offices:
                    parent = offices[o.parent].name if o.parent is not None else ""
                    f.write(f"{o.name},{parent},{o.kind},{o.subnet()},{rvps_per_office or ''}\n")
            sh(bl, "topology", "import", "--data-dir", self.server_dir, csv)
            # Every client joins the cluster with a token, as a device does.
            token = sh(bl, "token", "create", "--data-dir", self.server_dir).strip().splitlines()[-1]
            extra = ["--join", token]
            if client_config is not None:
                path = os.path.join(work, "client.toml")
                with open(path, "w") as f:
                    f.write(client_config)
                extra += ["--config", path]
            for ns, ip, _ in self.clients:
                d = self.dirs[ns]
                self.procs.append(subprocess.Popen(
                    ns_exec(ns, bl, "client", *extra, "--data-dir", d, "--listen", f"{ip}:34760",
                            "--server", f"{SERVER_IP}:34323", "--name", ns),
                    stdout=open(d + ".log", "w"), stderr=subprocess.STDOUT))
            for ns, _, _ in self.clients:
                wait_for(f"{ns} registers", lambda d=self.dirs[ns]: (status(bl, d) or {}).get("registered") is True)
        except BaseException:
            self.stop()
            raise

    def publish(self, package, origin):
        out = sh(self.bl, "publish", "--data-dir", self.server_dir, package,
                 "--origin", origin.url(os.path.basename(package)))
        return out.strip().splitlines()[-1]

    def fetch(self, ns, content, out=True):
        """The command that fetches `content` on the client of host `ns`,
        writing the output file (or, without `out`, only caching it); a
        later phase's output replaces the last one's."""
        return [self.bl, "fetch", "--quiet", "--data-dir", self.dirs[ns], content] + (
            ["--out", self.out(ns), "--force"] if out else [])

    def out(self, ns):
        return os.path.join(self.work, f"out-{ns}")

    def stop(self):
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()


def run_branchline(net, offices, origin, bl, work, package, prestage):
    nodes = Branchline(bl, offices, work)
    try:
        content = nodes.publish(package, origin)
        before_wan, before_origin = net.wan_counters(), origin.sent()
        times = run_fetches([(ns, nodes.fetch(ns, content, out=not prestage), None)
                             for ns, _, _ in nodes.clients])
        net.check_delays()
        wan = diff_counters(before_wan, net.wan_counters())
        origin_bytes = origin.sent() - before_origin
        sha = {}
        for ns, _, _ in nodes.clients:
            if prestage:
                sh(*nodes.fetch(ns, content))
            sha[ns] = sha256(nodes.out(ns))
            if prestage:
                os.remove(nodes.out(ns))
        ledger, ledger_wire = settled_ledger(bl, nodes.server_dir, nodes.dirs, nodes.clients, list(wan))
        quic = background_wire(bl, nodes.dirs.values())
        devices = {ns: t for ns, t in times.items() if ns != nodes.cache}
        return dict(times=devices, hq_cache_seconds=times[nodes.cache], wan=wan,
                    origin_bytes=origin_bytes, sha=sha, ledger=ledger, ledger_wire=ledger_wire, quic=quic)
    finally:
        nodes.stop()


def background_wire(bl, dirs):
    """QUIC's own numbers for every background connection, summed over the
    sending side of each (the nodes that served over it): UDP bytes sent,
    packets and bytes declared lost, congestion events."""
    total = dict(sent_bytes=0, sent_packets=0, lost_packets=0, lost_bytes=0, congestion_events=0)
    for d in dirs:
        peers = json.loads(sh(bl, "shell", "--data-dir", d, "-c", "peers", "--json"))
        for p in peers:
            if p["background"] and p["served"] > 0:
                for k in total:
                    total[k] += p["wire"][k]
    return total


def settled_ledger(bl, server_dir, dirs, clients, offices):
    """The server's per-link ledger once the clients' last heartbeats have
    brought it level with their own counters: per office, bytes its clients
    took from the office above and from the origin, and the same in QUIC's
    UDP bytes (with its overhead). The clients add up their connections'
    UDP bytes every second, so this first waits two seconds."""
    time.sleep(2)
    own = {name: [0, 0] for name in offices}
    for ns, _, office in clients:
        if office in own:
            c = status(bl, dirs[ns])["counters"]
            own[office][0] += c["from_parent"] + c["from_origin"]
            own[office][1] += c["wire_from_parent"] + c["from_origin"]

    def ledger():
        links = {l["office"]: l for l in status(bl, server_dir)["registry"]["links"]}
        return {name: [links[name]["from_parent"] + links[name]["from_origin"],
                       links[name]["wire_from_parent"] + links[name]["from_origin"]] for name in offices}

    # Keep-alives still add a few bytes to the wire figure: it must reach
    # the clients' own, not equal it.
    wait_for("the ledger to catch up with the clients' heartbeats",
             lambda: all(l[0] == own[k][0] and l[1] >= own[k][1] for k, l in ledger().items()), timeout=60)
    settled = ledger()
    return {k: v[0] for k, v in settled.items()}, {k: v[1] for k, v in settled.items()}


def run_http(net, offices, origin, work):
    clients = [ns for o in offices[1:] for ns, _ in o.hosts]
    before_wan, before_origin = net.wan_counters(), origin.sent()
    times = run_fetches([(ns, ns_exec(ns, "curl", "-sSf", "-o", os.path.join(work, f"http-{ns}"),
                                      origin.url("package.bin")), None) for ns in clients])
    net.check_delays()
    wan = diff_counters(before_wan, net.wan_counters())
    sha = {ns: sha256(os.path.join(work, f"http-{ns}")) for ns in clients}
    return dict(times=times, wan=wan, origin_bytes=origin.sent() - before_origin, sha=sha)


TRACKER_PORT = 6969


def info_hash(torrent):
    """SHA-1 of the bencoded `info` dictionary of a .torrent file."""
    data = open(torrent, "rb").read()

    def skip(i):
        c = data[i:i + 1]
        if c == b"i":
            return data.index(b"e", i) + 1
        if c in (b"l", b"d"):
            i += 1
            while data[i:i + 1] != b"e":
                i = skip(i)
            return i + 1
        colon = data.index(b":", i)
        return colon + 1 + int(data[i:colon])

    i = 1  # inside the top-level dictionary
    while data[i:i + 1] != b"e":
        key_end = skip(i)
        key = data[data.index(b":", i) + 1:key_end]
        value_end = skip(key_end)
        if key == b"info":
            return hashlib.sha1(data[key_end:value_end]).hexdigest()
        i = value_end
    raise RuntimeError(f"{torrent}: no info dictionary")


def run_bittorrent(net, offices, origin, work, package):
    """A real swarm: opentracker on the server host, the origin host seeding
    with aria2, every branch client an aria2 peer that keeps seeding until
    all are done. Completion times come from aria2's completion hook."""
    bt = os.path.join(work, "bt")
    tracker_root = os.path.join(bt, "tracker")
    os.makedirs(tracker_root)
    os.chmod(bt, 0o755)
    os.chmod(tracker_root, 0o755)
    torrent = os.path.join(bt, "package.torrent")
    announce = f"http://{SERVER_IP}:{TRACKER_PORT}/announce"
    sh("mktorrent", "-a", announce, "-l", "20", "-o", torrent, package)
    with open(os.path.join(tracker_root, "whitelist.txt"), "w") as f:
        f.write(info_hash(torrent) + "\n")
    os.chmod(os.path.join(tracker_root, "whitelist.txt"), 0o644)
    conf = os.path.join(bt, "opentracker.conf")
    with open(conf, "w") as f:
        f.write(f"listen.tcp_udp {SERVER_IP}:{TRACKER_PORT}\naccess.whitelist /whitelist.txt\n"
                f"tracker.rootdir {tracker_root}\ntracker.user nobody\n")
    hook = os.path.join(bt, "done.sh")
    with open(hook, "w") as f:
        f.write('#!/bin/sh\ndate +%s.%N > "$3.done"\n')
    os.chmod(hook, 0o755)
    common = ["aria2c", "--enable-dht=false", "--bt-enable-lpd=false", "--seed-ratio=0.0",
              "--file-allocation=none", "--summary-interval=0", "--console-log-level=warn",
              "--bt-tracker-interval=5", "--check-integrity=false"]
    procs = [subprocess.Popen(ns_exec(offices[0].hosts[0][0], "opentracker", "-f", conf),
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(bt, "tracker.log"), "w"))]
    try:
        time.sleep(0.5)
        procs.append(subprocess.Popen(
            ns_exec(origin.host, *common, "--bt-seed-unverified=true", "--dir", origin.dir, torrent),
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(bt, "seed.log"), "w")))
        time.sleep(1)
        clients = [ns for o in offices[1:] for ns, _ in o.hosts]
        before_wan, before_origin = net.wan_counters(), origin.sent()
        start = time.time()
        outs = {}
        for ns in clients:
            d = os.path.join(bt, ns)
            os.makedirs(d)
            outs[ns] = os.path.join(d, os.path.basename(package))
            procs.append(subprocess.Popen(
                ns_exec(ns, *common, f"--on-bt-download-complete={hook}", "--dir", d, torrent),
                stdout=subprocess.DEVNULL, stderr=open(d + ".log", "w")))
        wait_for("every BitTorrent peer to finish",
                 lambda: all(os.path.exists(outs[ns] + ".done") for ns in clients), timeout=3600)
        times = {ns: float(open(outs[ns] + ".done").read()) - start for ns in clients}
        net.check_delays()
        wan = diff_counters(before_wan, net.wan_counters())
        origin_bytes = origin.sent() - before_origin
        sha = {ns: sha256(outs[ns]) for ns in clients}
        return dict(times=times, wan=wan, origin_bytes=origin_bytes, sha=sha)
    finally:
        for p in procs:
            p.kill()
            p.wait()


def diff_counters(before, after):
    return {k: {f: after[k][f] - before[k][f] for f in after[k]} for k in after}


def summarize(name, r, size, expected_sha, bound):
    times = sorted(r["times"].values())
    wan_down = {k: v["down_bytes"] / size for k, v in r["wan"].items()}
    wan_up = {k: v["up_bytes"] / size for k, v in r["wan"].items()}
    return dict(system=name, all_done_s=times[-1], median_s=statistics.median(times),
                ratio_to_bound=times[-1] / bound, wan_down_x=wan_down, wan_up_x=wan_up,
                origin_x=r["origin_bytes"] / size,
                sha_ok=sum(1 for s in r["sha"].values() if s == expected_sha), outputs=len(r["sha"]))


def summarize_runs(name, runs, size, expected_sha, bound):
    """The run with the median all-done time stands for the system; every
    run's all-done time is listed beside it."""
    each = sorted((summarize(name, r, size, expected_sha, bound) for r in runs), key=lambda s: s["all_done_s"])
    median = dict(each[(len(each) - 1) // 2])
    median["all_done_runs_s"] = [round(s["all_done_s"], 1) for s in each]
    median["sha_ok"] = sum(s["sha_ok"] for s in each)
    median["outputs"] = sum(s["outputs"] for s in each)
    return median


def print_ledger(r):
    """Branchline's ledger beside the interface bytes of each WAN link: the
    pieces it counted, and the UDP bytes QUIC counted for them."""
    print("  Branchline's ledger beside the WAN interfaces (downstream, MiB):")
    print("  | link | ledger: pieces | ledger: QUIC UDP bytes | interface less Ethernet/IP/UDP headers "
          "| interface vs pieces | interface vs UDP bytes |")
    print("  |---|---|---|---|---|---|")
    for name, w in r["wan"].items():
        wire = w["down_bytes"] - w["down_packets"] * UDP_FRAME_OVERHEAD
        led, led_wire = r["ledger"][name], r["ledger_wire"][name]
        diff = (wire - led) / led if led else float("inf")
        diff_wire = (wire - led_wire) / led_wire if led_wire else float("inf")
        r.setdefault("ledger_payload_diff", {})[name] = diff
        r.setdefault("ledger_diff", {})[name] = diff_wire
        print(f"  | {name} | {led / 2**20:.2f} | {led_wire / 2**20:.2f} | {wire / 2**20:.2f} | "
              f"{diff * 100:+.1f}% | {diff_wire * 100:+.1f}% |")
    q = r.get("quic")
    if q:
        print(f"  QUIC on the background connections (all links, sending side): {q['sent_bytes'] / 2**20:.2f} MiB "
              f"in {q['sent_packets']} packets; declared lost {q['lost_packets']} packets "
              f"({q['lost_bytes'] / 2**20:.2f} MiB), {q['congestion_events']} congestion events")


def table(summaries, bound):
    lines = [f"physical lower bound (package over the slowest WAN path): {bound:.1f} s", "",
             "| system | all done s | median s | x bound | WAN down per link (x package) | WAN up per link | origin x | SHA-256 OK |",
             "|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        down = ", ".join(f"{k} {v:.3f}" for k, v in s["wan_down_x"].items())
        up = ", ".join(f"{k} {v:.3f}" for k, v in s["wan_up_x"].items())
        runs = ", ".join(str(t) for t in s["all_done_runs_s"])
        lines.append(f"| {s['system']} | {s['all_done_s']:.1f} (runs: {runs}) | {s['median_s']:.1f} | {s['ratio_to_bound']:.2f} | "
                     f"{down} | {up} | {s['origin_x']:.3f} | {s['sha_ok']}/{s['outputs']} |")
    return "\n".join(lines)


def chart(results, path, title):
    """Completion time per client, one line per system, with gnuplot."""
    if shutil.which("gnuplot") is None:
        print("gnuplot not found; no chart")
        return
    data = path + ".dat"
    names = list(results)
    with open(data, "w") as f:
        for name in names:
            runs = sorted(results[name], key=lambda r: max(r["times"].values()))
            for i, t in enumerate(sorted(runs[(len(runs) - 1) // 2]["times"].values()), 1):
                f.write(f"{i} {t:.2f}\n")
            f.write("\n\n")
    plots = ", ".join(f"'{data}' index {i} with linespoints title '{n}'" for i, n in enumerate(names))
    script = (f"set terminal pngcairo size 900,500; set output '{path}'; set title '{title}';"
              "set xlabel 'clients done'; set ylabel 'seconds from start'; set key left top; set grid;"
              f"plot {plots}")
    sh("gnuplot", "-e", script)
    os.remove(data)


YIELD = dict(branches=1, clients=2, child=False, mib=256, wan_mbit=20, delay_ms=40, prestage=False)


class ForwardedBytes:
    """Bytes that came in over a WAN link, by protocol (and UDP bytes by
    receiving host), from iptables counters in the receiving router (after
    the shaper: delivered bytes)."""

    def __init__(self, router, dev, hosts=()):
        self.router, self.dev, self.hosts = router, dev, list(hosts)
        for ip in self.hosts:
            sh(*ns_exec(router, "iptables", "-A", "FORWARD", "-i", dev, "-d", ip, "-p", "udp",
                        "-j", "RETURN"))
        for proto in ("udp", "tcp"):
            sh(*ns_exec(router, "iptables", "-A", "FORWARD", "-i", dev, "-p", proto, "-j", "ACCEPT"))

    def read(self):
        out = {"udp": 0, "tcp": 0}
        host_rules = {ip: 0 for ip in self.hosts}
        for line in sh(*ns_exec(self.router, "iptables-save", "-c", "-t", "filter")).splitlines():
            if f"-i {self.dev}" in line and line.startswith("["):
                counts, rule = line[1:].split("]", 1)
                count = int(counts.split(":")[1])
                dest = next((ip for ip in self.hosts if f"-d {ip}/32" in rule), None)
                if dest is not None:
                    host_rules[dest] = count
                    continue
                proto = "udp" if "-p udp" in rule else "tcp" if "-p tcp" in rule else None
                if proto:
                    out[proto] = int(counts.split(":")[1])
        # Per-host rules RETURN before the protocol rules see the packet.
        out["udp"] += sum(host_rules.values())
        out.update({f"udp:{ip}": n for ip, n in host_rules.items()})
        return out

    def rates(self, seconds):
        """Mbit/s by protocol over the next `seconds`."""
        before = self.read()
        time.sleep(seconds)
        after = self.read()
        return {k: (after[k] - before[k]) * 8 / seconds / 1e6 for k in after}


def start_ping(ns, ip, seconds):
    """Pings `ip` from host `ns` every 0.2 s for `seconds`, in the
    background; `ping_average` reads the result."""
    return subprocess.Popen(ns_exec(ns, "ping", "-q", "-i", "0.2", "-w", str(seconds), ip),
                            stdout=subprocess.PIPE, text=True)


def ping_average(pinger):
    """The average RTT in ms of a `start_ping` once it ends."""
    out = pinger.communicate()[0]
    for line in out.splitlines():
        if "min/avg/max" in line:
            return float(line.split("=")[1].split("/")[1])
    raise RuntimeError(f"{' '.join(pinger.args)} got no answer: {out}")


def iperf_down(ns, server_ip, seconds):
    """A bulk TCP flow from `server_ip` to host `ns` (iperf3 -R); Mbit/s."""
    out = sh(*ns_exec(ns, "iperf3", "-c", server_ip, "-R", "-t", str(seconds), "-J"))
    return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e6


class PauseWatch:
    """Polls a client's busy pause (`status --json`) every half second:
    a timeline of (seconds since start, paused, queuing delay ms, reason)."""

    def __init__(self, bl, data_dir):
        self.timeline, self.start, self.stopped = [], time.time(), threading.Event()
        self.thread = threading.Thread(target=self._run, args=(bl, data_dir), daemon=True)
        self.thread.start()

    def _run(self, bl, data_dir):
        while not self.stopped.wait(0.5):
            answer = status(bl, data_dir)
            if answer is None:
                continue  # no answer is no evidence either way
            link = answer["background_link"]
            paused = link.get("paused")
            self.timeline.append((round(time.time() - self.start, 2), paused is not None,
                                  link.get("queuing_delay_ms"), (paused or {}).get("reason")))

    def now(self):
        return time.time() - self.start

    def paused_secs(self, start, end):
        """Seconds paused between `start` and `end` (seconds since start):
        each sample that read paused stands for the time to the next."""
        marks = [(t, paused) for t, paused, _, _ in self.timeline]
        total = 0.0
        for (t, paused), (t_next, _) in zip(marks, marks[1:] + [(end, False)]):
            lo, hi = max(t, start), min(t_next, end)
            if paused and hi > lo:
                total += hi - lo
        return total

    def stop(self):
        self.stopped.set()
        self.thread.join()


def yield_phases(offices, origin, bl, work, package, meter, yielding, pause=True):
    """Branchline's background pull into the branch alone, then beside a
    bulk TCP flow, with a ping alongside; `yielding` picks the controller.
    With it, also two background flows into the office at once (two RVPs
    pulling two packages) and the busy pause's timeline."""
    config = f"[background]\nyielding = {str(yielding).lower()}\npause = {str(pause).lower()}\n"
    hosts = offices[1].hosts
    nodes = Branchline(bl, offices, work, config, rvps_per_office=len(hosts))
    rvp = hosts[0][0]
    watch = PauseWatch(bl, nodes.dirs[rvp])
    try:
        content = nodes.publish(package, origin)
        run_fetches([(nodes.cache, nodes.fetch(nodes.cache, content), None)])
        fetch = subprocess.Popen(nodes.fetch(rvp, content), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(8)  # past slow start
        result = {}
        pinger = start_ping(rvp, SERVER_IP, 10)
        result["alone_mbit"] = meter.rates(10)["udp"]
        result["ping_alone_ms"] = ping_average(pinger)
        tcp = {}
        flow = threading.Thread(target=lambda: tcp.update(mbit=iperf_down(rvp, SERVER_IP, 20)))
        tcp_start = watch.now()
        flow.start()
        time.sleep(4)
        both = meter.rates(14)
        flow.join()
        tcp_end = watch.now()
        result["beside_tcp_udp_mbit"] = both["udp"]
        result["beside_tcp_tcp_mbit"] = both["tcp"]
        result["tcp_iperf_mbit"] = tcp["mbit"]
        # The pause lets go after the link stays clear for 5 s.
        wait_for("the busy pause to end", lambda: not (watch.timeline and watch.timeline[-1][1]), timeout=30)
        result["resumed_after_tcp_s"] = watch.now() - tcp_end
        time.sleep(3)
        result["after_mbit"] = meter.rates(6)["udp"]
        result["paused_beside_tcp_s"] = watch.paused_secs(tcp_start, tcp_end)
        result["paused_at_end"] = bool(watch.timeline and watch.timeline[-1][1])
        result["pause_reasons"] = sorted({r for _, _, _, r in watch.timeline if r})
        if yielding and pause and len(hosts) > 1:
            result["two_flows_mbit"] = two_flows(nodes, origin, hosts, meter)
        fetch.kill()
        fetch.wait()
        result["pause_timeline"] = watch.timeline
        return result
    finally:
        watch.stop()
        nodes.stop()


def two_flows(nodes, origin, hosts, meter):
    """A second RVP of the branch pulls a second package while the first
    still pulls its own: each one's rate, Mbit/s, over 15 s after 5 s to
    settle (both are background flows through the same link)."""
    second = os.path.join(origin.dir, "package2.bin")
    with open(second, "wb") as f:
        f.write(os.urandom(128 << 20))
    content = nodes.publish(second, origin)
    run_fetches([(nodes.cache, nodes.fetch(nodes.cache, content), None)])
    other = hosts[1][0]
    fetch = subprocess.Popen(nodes.fetch(other, content), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(5)
        rates = meter.rates(15)
        return {ns: rates[f"udp:{ip}"] for ns, ip in hosts[:2]}
    finally:
        fetch.kill()
        fetch.wait()


def run_yield(args):
    """B5's measurements on one 20 Mbit / 40 ms WAN link with a 200 ms
    bottleneck queue: the background protocol with the delay-based
    controller and with quinn's CUBIC, each alone and beside iperf3."""
    scn = dict(YIELD, wan_mbit=args.wan_mbit)
    offices, net, work, origin, package, _ = prepare(args, scn, ["iperf3", "ping", "iptables-save"])
    server_host = offices[0].hosts[0][0]
    iperf = subprocess.Popen(ns_exec(server_host, "iperf3", "-s", "-B", SERVER_IP),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        meter = ForwardedBytes(offices[1].router, "wan-up", [ip for _, ip in offices[1].hosts])
        rvp = offices[1].hosts[0][0]
        base_ms = ping_average(start_ping(rvp, SERVER_IP, 3))
        tcp_alone = iperf_down(rvp, SERVER_IP, 15)
        print(f"idle ping {base_ms:.1f} ms; TCP alone {tcp_alone:.2f} Mbit/s", flush=True)
        rows = {}
        controllers = [("delay-based (yielding)", "yielding", True, True),
                       ("delay-based, busy pause off", "no-pause", True, False),
                       ("quinn CUBIC", "cubic", False, False)]
        for name, dirname, yielding, pause in controllers[:1] if args.only_yielding else controllers:
            here = os.path.join(work, dirname)
            os.makedirs(here)
            print(f"{name} ...", flush=True)
            rows[name] = yield_phases(offices, origin, args.bin, here, package, meter, yielding, pause)
            net.check_delays()
    finally:
        iperf.kill()
        iperf.wait()
        origin.stop()
    link = scn["wan_mbit"]
    print(f"\nlink {link} Mbit/s, {scn['delay_ms']} ms each way, tbf queue 200 ms; idle ping {base_ms:.1f} ms; "
          f"TCP alone {tcp_alone:.2f} Mbit/s\n")
    print("| background controller | alone, share of link | beside TCP: background share | beside TCP: TCP keeps | ping added while alone |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['alone_mbit'] / link:.0%} ({r['alone_mbit']:.1f} Mbit/s) | "
              f"{r['beside_tcp_udp_mbit'] / link:.0%} ({r['beside_tcp_udp_mbit']:.1f}) | "
              f"{r['tcp_iperf_mbit'] / tcp_alone:.0%} ({r['tcp_iperf_mbit']:.1f}) | "
              f"{r['ping_alone_ms'] - base_ms:.1f} ms |")
    print()
    for name, r in rows.items():
        print(f"{name}: busy pause {r['paused_beside_tcp_s']:.1f} s of the TCP phase, "
              f"resumed {r['resumed_after_tcp_s']:.1f} s after it ended; paused at the end: {r['paused_at_end']}; "
              f"reasons: {r['pause_reasons'] or 'none'}")
        flows = r.get("two_flows_mbit")
        if flows:
            a, b = flows.values()
            print(f"{name}: two background flows into the office: "
                  + ", ".join(f"{ns} {v:.1f} Mbit/s" for ns, v in flows.items())
                  + f"; the smaller is {min(a, b) / max(a, b):.0%} of the larger")
    os.makedirs(args.results, exist_ok=True)
    out = os.path.join(args.results, f"yield-{time.strftime('%Y%m%d-%H%M%S')}.json")
    with open(out, "w") as f:
        json.dump(dict(command=" ".join(sys.argv), params=scn, idle_ping_ms=base_ms, tcp_alone_mbit=tcp_alone,
                       rows=rows), f, indent=1)
    print(f"results: {out}")


def prepare(args, scn, needed):
    """Checks the tools, builds the network, starts the origin with a fresh
    random package; everything goes away at exit."""
    if os.geteuid() != 0:
        sys.exit("testbed: needs root (network namespaces, tc, iptables)")
    for tool in ["ip", "tc", "iptables", "nginx", "curl", *needed]:
        if shutil.which(tool) is None:
            sys.exit(f"testbed: `{tool}` not found; install iproute2 iptables nginx-light curl "
                     "(aria2 opentracker mktorrent for bittorrent, iperf3 iputils-ping for yield)")
    for path in (args.bin, args.wan_delay):
        if not os.path.exists(path):
            sys.exit(f"testbed: {path} not found; run `cargo build --release --workspace` first")
    print(f"command: {' '.join(sys.argv)}")
    print(f"scenario: {scn}")
    offices = plan(scn)
    clean()
    net = Net(offices, scn, args.wan_delay)
    atexit.register(net.destroy)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    work = tempfile.mkdtemp(prefix="bltb-")
    os.chmod(work, 0o755)
    if args.keep:
        print(f"work directory (kept): {work}")
    else:
        atexit.register(shutil.rmtree, work, True)
    net.build()
    origin = Origin(work, offices[0].hosts[1][0])
    size = scn["mib"] * 1024 * 1024
    package = os.path.join(origin.dir, "package.bin")
    with open(package, "wb") as f:
        f.write(os.urandom(size))
    wait_for("nginx", lambda: subprocess.run(
        ns_exec(offices[0].hosts[0][0], "curl", "-sf", "-r", "0-0", "-o", "/dev/null", origin.url("package.bin"))
    ).returncode == 0)
    return offices, net, work, origin, package, size


def positive(text):
    """An argparse type: a whole number above 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"`{text}` is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run")
    run.add_argument("--scenario", choices=SCENARIOS, default="small")
    run.add_argument("--systems", default="branchline,http,bittorrent")
    run.add_argument("--runs", type=positive, default=1, help="repeat each system; the median run is reported")
    yld = sub.add_parser("yield", help="B5: the background protocol beside a bulk TCP flow")
    yld.add_argument("--wan-mbit", type=positive, default=20)
    yld.add_argument("--only-yielding", action="store_true", help="skip the CUBIC comparison (CI)")
    for p in (run, yld):
        p.add_argument("--bin", default=os.path.join(ROOT, "target/release/branchline"))
        p.add_argument("--wan-delay", default=os.path.join(ROOT, "target/release/wan-delay"))
        p.add_argument("--results", default=os.path.join(ROOT, "tools/testbed/results"))
        p.add_argument("--keep", action="store_true", help="keep the work directory (logs, data)")
    sub.add_parser("clean")
    args = ap.parse_args()
    if args.cmd == "clean":
        clean()
        return
    if args.cmd == "yield":
        run_yield(args)
        return
    scn = SCENARIOS[args.scenario]
    systems = args.systems.split(",")
    needed = ["aria2c", "opentracker", "mktorrent"] if "bittorrent" in systems else []
    offices, net, work, origin, package, size = prepare(args, scn, needed)
    expected = sha256(package)
    bound = size * 8 / (scn["wan_mbit"] * 1e6)
    results = {system: [] for system in systems}
    try:
        for run_no in range(1, args.runs + 1):
            for system in systems:
                print(f"run {run_no}: {system} ...", flush=True)
                # Every run starts from empty caches and directories.
                here = os.path.join(work, f"{system}-{run_no}")
                os.makedirs(here)
                os.chmod(here, 0o755)
                if system == "branchline":
                    r = run_branchline(net, offices, origin, args.bin, here, package, scn["prestage"])
                    print_ledger(r)
                elif system == "http":
                    r = run_http(net, offices, origin, here)
                elif system == "bittorrent":
                    r = run_bittorrent(net, offices, origin, here, package)
                else:
                    sys.exit(f"testbed: unknown system {system}")
                results[system].append(r)
                print(f"  all done in {max(r['times'].values()):.1f} s", flush=True)
                if not args.keep:
                    shutil.rmtree(here)  # the next system needs the disk space
    finally:
        origin.stop()
    summaries = [summarize_runs(n, runs, size, expected, bound) for n, runs in results.items()]
    print(table(summaries, bound))
    os.makedirs(args.results, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = os.path.join(args.results, f"{args.scenario}-{stamp}.json")
    with open(out, "w") as f:
        json.dump(dict(command=" ".join(sys.argv), scenario=args.scenario, params=scn, bound_s=bound,
                       summaries=summaries, raw=results), f, indent=1)
    print(f"results: {out}")
    png = os.path.join(args.results, f"{args.scenario}-{stamp}.png")
    chart(results, png, f"{args.scenario}: completion time per client")
    print(f"chart: {png}")


if __name__ == "__main__":
    main()
