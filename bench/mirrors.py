#!/usr/bin/env python3
"""The download redirector: redirects per second and CPU per redirect, with
nginx serving the same small file locally beside it as the ceiling, and the
state size for a generated tree of 1,000,000 files x 100 mirrors.

    python3 bench/mirrors.py [--binary target/release/levee] [--seconds 8] [--rounds 3]
                             [--files 1000000] [--mirrors 100]

levee runs a `mirrors` route over a generated tree of 1,000 files with two
nginx mirrors (autoindex, on 127.0.0.31 and .32) and, when Python's
mmdb_writer is there, a GeoIP database (so every redirect does its lookup).
wrk (1 thread, 64 keep-alive connections) asks for one 4 KiB file: levee
answers 302 with its Link and digest fields; nginx (2 workers) serves the
same file from disk. Rounds alternate; medians are reported. CPU is user +
system time of each server's process tree from /proc, per request.
The state size comes from `cargo run --release -p levee-mirror --example
state_size`. Needs nginx and wrk (scripts/test installs them)."""
import argparse, os, re, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
import peers

LEVEE, NGINX, ADMIN = 19190, 19191, 19192
MIRRORS = [("m1", "127.0.0.31", 19193), ("m2", "127.0.0.32", 19194)]
FILE = "/pub/dir07/file-0357.bin"


def wrk(port, seconds, path):
    out = subprocess.run(["wrk", "-t1", "-c64", f"-d{seconds}s", "--latency",
                          f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True).stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return dict(requests=int(re.search(r"(\d+) requests in", out).group(1)),
                rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
                bad=int(bad.group(1)) if bad else 0)


def tree(root):
    for d in range(20):
        os.makedirs(f"{root}/pub/dir{d:02}", exist_ok=True)
        for f in range(50):
            with open(f"{root}/pub/dir{d:02}/file-{d * 50 + f:04}.bin", "wb") as out:
                out.write(os.urandom(4096))


def geoip(path):
    try:
        from mmdb_writer import MMDBWriter
        from netaddr import IPSet
    except ImportError:
        return False
    w = MMDBWriter(ip_version=4, database_type="GeoIP2-City", languages=["en"], description="bench")
    w.insert_network(IPSet(["127.0.1.0/24"]), {"country": {"iso_code": "DE"}, "continent": {"code": "EU"},
                                                "location": {"latitude": 52.5, "longitude": 13.4},
                                                "autonomous_system_number": 64501})
    w.to_db_file(path)
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/levee")
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--files", type=int, default=1_000_000)
    ap.add_argument("--mirrors", type=int, default=100)
    a = ap.parse_args()
    root = os.path.join(peers.TMP, "tree")
    tree(root)
    # nginx workers run as nobody: the mirrors must be able to list the tree.
    os.chmod(peers.TMP, 0o755)
    procs = []
    try:
        for name, ip, port in MIRRORS:
            procs.append(peers.nginx(name, f"server {{ listen {ip}:{port}; root {root}; "
                                           f"location / {{ autoindex on; }} }}", 1))
        procs.append(peers.nginx("local", f"server {{ listen 127.0.0.1:{NGINX} backlog=4096; "
                                          f"root {root}; }}", 2))
        db = os.path.join(peers.TMP, "geo.mmdb")
        geo = f'geoip = "{db}"' if geoip(db) else ""
        mirrors = "".join(f'[[mirrors.dl.mirror]]\nname = "{n}"\nhttp = "http://{ip}:{p}"\n'
                          f'country = "DE"\ncontinent = "EU"\n\n' for n, ip, p in MIRRORS)
        conf = peers._write(os.path.join(peers.TMP, "levee.toml"), f"""
workers = 2
[log]
access = "off"
[[listener]]
address = "127.0.0.1:{LEVEE}"
backlog = 4096
[admin]
address = "127.0.0.1:{ADMIN}"
[[route]]
mirrors = "dl"
[mirrors.dl]
root = "{root}"
state_dir = "{peers.TMP}/state"
probe_interval = "1s"
probe_rise = 1
verify_sample = 0
{geo}
{mirrors}""")
        levee = peers.spawn([a.binary, "run", "-c", conf])
        procs.append(levee)
        for port in (LEVEE, NGINX):
            if not peers.wait_port(port):
                raise SystemExit(f"nothing listens on {port}")
        url = f"http://127.0.0.1:{LEVEE}{FILE}"
        end = time.time() + 60
        while subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url],
                             capture_output=True, text=True).stdout != "302":
            if time.time() > end:
                raise SystemExit("levee never redirected (mirrors not scanned or not up)")
            time.sleep(0.5)
        servers = {"levee": (levee, LEVEE), "nginx": (procs[-2], NGINX)}
        runs = {n: [] for n in servers}
        for _ in range(a.rounds):
            for name, (p, port) in servers.items():
                wrk(port, 1, FILE)
                c0 = peers.cpu_seconds(p.pid)
                r = wrk(port, a.seconds, FILE)
                r["cpu"] = (peers.cpu_seconds(p.pid) - c0) * 1e6 / max(r["requests"], 1)
                runs[name].append(r)
        med = lambda rs, k: sorted(x[k] for x in rs)[len(rs) // 2]
        print(f"{'server':<8} {'answers':<14} {'req/s':>10} {'CPU us/req':>11} {'bad':>5}")
        for name, rs in runs.items():
            what = "302 redirect" if name == "levee" else "200, 4 KiB"
            print(f"{name:<8} {what:<14} {med(rs, 'rps'):>10.0f} {med(rs, 'cpu'):>11.2f} "
                  f"{sum(x['bad'] for x in rs):>5}")
        print(f"levee PSS after the runs: {peers.pss_kb(levee.pid) / 1024:.1f} MiB "
              f"(GeoIP {'on' if geo else 'off'})")
    finally:
        peers.stop(procs)
        peers.cleanup()
    out = subprocess.run(["cargo", "run", "--release", "-q", "-p", "levee-mirror", "--example",
                          "state_size", "--", str(a.files), str(a.mirrors)],
                         capture_output=True, text=True)
    print(out.stdout.strip() or out.stderr.strip())


if __name__ == "__main__":
    main()
