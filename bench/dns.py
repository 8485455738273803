#!/usr/bin/env python3
"""The authoritative DNS server: queries per second and CPU per query of
levee answering a fleet record from live membership, beside Knot DNS
(Debian's knot) answering the same zone from a zone file.

    python3 bench/dns.py [--binary target/release/levee] [--seconds 8] [--rounds 3]
                         [--edns | --cookie]

levee runs one DNS thread as a fleet of one member (a redis-server on
loopback, no persistence) whose fleet record `www.example.test` answers the
live members; Knot runs one UDP worker with the same records. dnsperf
(Debian's dnsperf) sends `www A` (levee: the fleet record, with rotation
and the health rules) and then `mail A` (a static record on both) over UDP
for --seconds per round, rounds alternating between the servers; medians
are reported. CPU is user + system time of each server's process tree from
/proc, per query answered. Response-rate limiting is off on both (one
client sends everything); levee's cookies are on (dnsperf sends none, but
with --cookie). --edns sends an EDNS0 OPT record with each query, as
resolvers do; --cookie adds a COOKIE option with a client cookie (dnsperf
cannot return a server cookie), which levee answers with a server cookie
made for the client and Knot, without its cookies module, ignores.
Needs knot, dnsperf and redis-server (scripts/test installs them)."""
import argparse, os, re, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
import peers

LEVEE, KNOT, ADMIN, HTTP, REDIS = 19290, 19291, 19292, 19293, 19294
RECORDS = ["ns1 A 127.0.0.53", "@ MX 10 mail", "mail A 192.0.2.25", '@ TXT "v=spf1 -all"']


EDNS = []  # ["-e"] with --edns: queries carry an EDNS0 OPT record, as resolvers' do
COOKIE = ["-e", "-E", "10:6c65766565626e63"]  # --cookie: a client cookie, 8 bytes


def dnsperf(port, seconds, queries):
    out = subprocess.run(["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", queries,
                          "-l", str(seconds), "-c", "4", "-q", "200", "-T", "1"] + EDNS,
                         capture_output=True, text=True).stdout
    done = re.search(r"Queries completed:\s+(\d+)", out)
    qps = re.search(r"Queries per second:\s+([\d.]+)", out)
    lost = re.search(r"Queries lost:\s+(\d+)", out)
    if not done or not qps:
        raise SystemExit(f"dnsperf failed on port {port}:\n{out}")
    return dict(queries=int(done.group(1)), qps=float(qps.group(1)), lost=int(lost.group(1)))


def knot():
    d = os.path.join(peers.TMP, "knot")
    os.makedirs(d, exist_ok=True)
    zone = "\n".join(["$ORIGIN example.test.", "$TTL 3600",
                      "@ SOA ns1 hostmaster 1 3600 600 1209600 300", "@ NS ns1",
                      *RECORDS, "www 30 A 127.0.0.1"]) + "\n"
    peers._write(os.path.join(d, "example.test.zone"), zone)
    conf = peers._write(os.path.join(d, "knot.conf"), f"""
server:
    rundir: "{d}"
    listen: 127.0.0.1@{KNOT}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{d}"
log:
  - target: stderr
    any: error
zone:
  - domain: example.test
    storage: "{d}"
    file: "example.test.zone"
""")
    return peers.spawn(["knotd", "-c", conf])


def levee(binary):
    records = ", ".join('"' + r.replace('"', '\\"') + '"' for r in RECORDS)
    conf = peers._write(os.path.join(peers.TMP, "levee.toml"), f"""
workers = 1
[log]
access = "off"
level = "warn"
[[listener]]
address = "127.0.0.1:{HTTP}"
[[route]]
respond = "ok"
[admin]
address = "127.0.0.1:{ADMIN}"
[fleet]
name = "bench"
instance = "m0"
redis = "redis://127.0.0.1:{REDIS}"
public_addresses = ["127.0.0.1"]
[dns]
listen = "127.0.0.1:{LEVEE}"
threads = 1
rrl_rate = 0
[[dns.zone]]
name = "example.test"
ns = "ns1.example.test"
records = [{records}]
[[dns.zone.fleet]]
name = "www"
""")
    return peers.spawn([binary, "run", "-c", conf])


def answers(port, name):
    return subprocess.run(["dig", "+short", "-p", str(port), "@127.0.0.1", name, "A"],
                          capture_output=True, text=True).stdout.split()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/levee")
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--edns", action="store_true", help="send EDNS0 queries, as resolvers do")
    ap.add_argument("--cookie", action="store_true",
                    help="send EDNS0 queries with a client cookie (RFC 7873)")
    a = ap.parse_args()
    if a.cookie:
        EDNS.extend(COOKIE)
    elif a.edns:
        EDNS.append("-e")
    procs = []
    try:
        procs.append(peers.spawn(["redis-server", "--port", str(REDIS), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no"]))
        if not peers.wait_port(REDIS):
            raise SystemExit("redis-server did not start")
        procs.append(levee(a.binary))
        procs.append(knot())
        servers = {"levee": (procs[1], LEVEE), "knot": (procs[2], KNOT)}
        end = time.time() + 30
        # levee answers once the member's heartbeat and probe are in.
        while answers(LEVEE, "www.example.test") != ["127.0.0.1"] or \
                answers(KNOT, "www.example.test") != ["127.0.0.1"]:
            if time.time() > end:
                raise SystemExit("levee or knot never answered www.example.test")
            time.sleep(0.5)
        rows = []
        for qname in ("www.example.test", "mail.example.test"):
            queries = peers._write(os.path.join(peers.TMP, f"{qname}.txt"), f"{qname} A\n")
            runs = {n: [] for n in servers}
            for _ in range(a.rounds):
                for name, (p, port) in servers.items():
                    dnsperf(port, 1, queries)
                    c0 = peers.cpu_seconds(p.pid)
                    r = dnsperf(port, a.seconds, queries)
                    r["cpu"] = (peers.cpu_seconds(p.pid) - c0) * 1e6 / max(r["queries"], 1)
                    runs[name].append(r)
            rows.append((qname, runs))
        med = lambda rs, k: sorted(x[k] for x in rs)[len(rs) // 2]
        print(f"{'query':<20} {'server':<6} {'queries/s':>10} {'CPU us/query':>13} {'lost':>6}")
        for qname, runs in rows:
            for name, rs in runs.items():
                print(f"{qname + ' A':<20} {name:<6} {med(rs, 'qps'):>10.0f} {med(rs, 'cpu'):>13.2f} "
                      f"{sum(x['lost'] for x in rs):>6}")
            ratio = med(runs["levee"], "cpu") / max(med(runs["knot"], "cpu"), 1e-9)
            print(f"{'':<20} levee/knot CPU per query: {ratio:.2f}")
        print(f"levee PSS after the runs: {peers.pss_kb(procs[1].pid) / 1024:.1f} MiB")
    finally:
        peers.stop(procs)
        peers.cleanup()


if __name__ == "__main__":
    main()
