#!/usr/bin/env python3
"""The cache's disk and shared tiers, side by side with nginx, in one run.

1. CPU per hit from disk: 10 KB, 1 MB and 100 MB objects, levee's disk tier
   (memory takes none: [cache] max_object_size = "1k") against nginx
   proxy_cache, both with their files on disk (in the page cache). For
   each size, `wrk -t1 -c8` for --seconds; CPU time of the proxy's process
   tree over the run divided by the requests.
2. Origin requests for a cold object asked of 3 members at once (nginx
   sends it at 200 KB/s, so the three overlap): with the shared tier (one
   fleet, one Redis) and without it, over --rounds distinct objects.
3. Restart with 100,000 objects on disk: time from starting the process
   until a request for a stored object is a hit, levee (journal replay)
   against nginx (whose cache loader runs in the background; nginx opens a
   file it has not loaded yet on request). levee's replay time is also read
   from /cache. And `examples/disk_start.rs` with --start-objects (default
   1,000,000) objects: the tier's own ready time.

Figures are indicative: the machine is shared. Every directory is under /tmp
and removed at the end.

Usage: python3 bench/cache_tiers.py [--levee target/release/levee] [--seconds 5]
Needs nginx, redis-server, wrk, curl; cargo for the start example."""
import argparse, json, os, re, shutil, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import TMP, nginx, spawn, wait_port, cpu_seconds, stop

ORIGIN, NGINX, LEVEE, ADMIN, REDIS = 19580, 19581, 19582, 19583, 19584
MEMBERS = [19590, 19591, 19592]
SIZES = [("10k", 10 * 1024), ("1m", 1 << 20), ("100m", 100 << 20)]


def origin():
    # mkdtemp's directory is the owner's alone: nginx's workers must read it.
    os.chmod(TMP, 0o755)
    root = os.path.join(TMP, "www")
    os.makedirs(os.path.join(root, "o"), exist_ok=True)
    for name, size in SIZES:
        with open(os.path.join(root, "o", name), "wb") as f:
            f.write(os.urandom(size))
    os.makedirs(os.path.join(root, "cold"), exist_ok=True)
    os.makedirs(os.path.join(root, "n"), exist_ok=True)
    with open(os.path.join(root, "n", "x"), "wb") as f:
        f.write(b"n" * 200)
    log = os.path.join(TMP, "origin.log")
    return nginx("origin", f"""log_format u '$uri';
      server {{ listen 127.0.0.1:{ORIGIN} backlog=4096; root {root}; access_log {log} u;
      location /o/ {{ add_header Cache-Control "max-age=3600"; }}
      location /cold/ {{ limit_rate 200k; add_header Cache-Control "max-age=3600"; }}
      location /n/ {{ add_header Cache-Control "max-age=3600"; try_files /n/x =404; }} }}""", 2), log


def nginx_cache(cdir):
    os.makedirs(cdir, exist_ok=True)
    os.chmod(cdir, 0o777)
    return nginx("nginxcache", f"""proxy_cache_path {cdir} levels=1:2 keys_zone=c:64m max_size=20g inactive=1d;
      upstream o {{ server 127.0.0.1:{ORIGIN}; keepalive 32; }}
      server {{ listen 127.0.0.1:{NGINX} backlog=4096; sendfile on;
        location / {{ proxy_cache c; proxy_cache_valid 200 1h; proxy_max_temp_file_size 0;
          add_header X-Cache $upstream_cache_status;
          proxy_pass http://o; proxy_http_version 1.1; proxy_set_header Connection ""; }} }}""", 2)


def levee_conf(path, port, admin, extra):
    with open(path, "w") as f:
        f.write(f"""workers = 2
[log]
access = "off"
[admin]
address = "127.0.0.1:{admin}"
[[listener]]
address = "127.0.0.1:{port}"
[[route]]
proxy = "o"
cache = true
[upstream.o]
servers = ["127.0.0.1:{ORIGIN}"]
[cache]
max_size = "1g"
{extra}
""")
    return path


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as r:
        return r.read(), dict(r.headers)


def wrk(port, path, seconds):
    out = subprocess.run(["wrk", "-t1", "-c8", f"-d{seconds}s", f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True).stdout
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    return reqs


def origin_count(log, prefix):
    try:
        return sum(1 for line in open(log) if line.startswith(prefix))
    except OSError:
        return 0


def disk_hits(a, levee_bin):
    print("== CPU per hit from disk (wrk -t1 -c8)")
    ddir = os.path.join(TMP, "levee-disk")
    conf = levee_conf(os.path.join(TMP, "disk.toml"), LEVEE, ADMIN,
                      f'max_object_size = "1k"\n[cache.disk]\npath = "{ddir}"\nmax_size = "2g"\n')
    procs = [spawn([levee_bin, "run", "-c", conf]), nginx_cache(os.path.join(TMP, "ncache"))]
    try:
        for port in (LEVEE, NGINX):
            if not wait_port(port):
                sys.exit(f"nothing listens on {port}")
        time.sleep(1)
        print(f"{'size':6} {'levee µs/hit':>13} {'req/s':>8}   {'nginx µs/hit':>13} {'req/s':>8}")
        for name, _ in SIZES:
            path = f"/o/{name}"
            row = []
            for p, port, signal in ((procs[0], LEVEE, "cache-status"), (procs[1], NGINX, "x-cache")):
                get(port, path)
                _, h = get(port, path)
                said = {k.lower(): v for k, v in h.items()}.get(signal, "")
                if "tier=disk" not in said and said != "HIT":
                    sys.exit(f"{port}{path}: not a hit from disk ({said})")
                c0 = cpu_seconds(p.pid)
                reqs = wrk(port, path, a.seconds)
                row.append(((cpu_seconds(p.pid) - c0) * 1e6 / max(reqs, 1), reqs / a.seconds))
            print(f"{name:6} {row[0][0]:13.1f} {row[0][1]:8.0f}   {row[1][0]:13.1f} {row[1][1]:8.0f}")
    finally:
        stop(procs)


def fleet(a, levee_bin, log):
    print("== origin requests for a cold object asked of 3 members at once")
    redis = spawn(["redis-server", "--port", str(REDIS), "--save", "", "--appendonly", "no"])
    try:
        wait_port(REDIS)
        for shared in (True, False):
            procs = []
            for i, port in enumerate(MEMBERS):
                extra = '[cache.shared]\ntimeout = "500ms"\nlock_wait = "10s"\n' if shared else ""
                extra += f'[fleet]\nname = "bench"\ninstance = "m{i}"\nredis = "redis://127.0.0.1:{REDIS}"\ntimeout = "500ms"\n'
                conf = levee_conf(os.path.join(TMP, f"m{i}.toml"), port, 19600 + i, extra)
                procs.append(spawn([levee_bin, "run", "-c", conf]))
            try:
                for port in MEMBERS:
                    wait_port(port)
                time.sleep(2)
                tag = "s" if shared else "l"
                for r in range(a.rounds):
                    with open(os.path.join(TMP, "www", "cold", f"{tag}{r}"), "wb") as f:
                        f.write(os.urandom(100 * 1024))
                before = origin_count(log, "/cold/")
                for r in range(a.rounds):
                    with ThreadPoolExecutor(3) as pool:
                        list(pool.map(lambda port: get(port, f"/cold/{tag}{r}"), MEMBERS))
                time.sleep(0.5)
                n = origin_count(log, "/cold/") - before
                label = "with the shared tier" if shared else "without it"
                print(f"{label:22} {n / a.rounds:.2f} origin requests per object ({n} for {a.rounds})")
            finally:
                stop(procs)
    finally:
        stop([redis])


def restart(a, levee_bin):
    print(f"== restart with {a.objects:,} objects on disk: time until a stored object is a hit")
    ddir = os.path.join(TMP, "restart-disk")
    conf = levee_conf(os.path.join(TMP, "restart.toml"), LEVEE, ADMIN,
                      f'max_object_size = "1"\n[cache.disk]\npath = "{ddir}"\nmax_size = "8g"\n')
    cdir = os.path.join(TMP, "restart-ncache")
    p = spawn([levee_bin, "run", "-c", conf])
    n = nginx_cache(cdir)
    try:
        wait_port(LEVEE)
        wait_port(NGINX)
        time.sleep(1)
        for port in (LEVEE, NGINX):
            with ThreadPoolExecutor(32) as pool:
                list(pool.map(lambda i: get(port, f"/n/{i}"), range(a.objects)))
    finally:
        stop([p, n])
    time.sleep(1)
    for name, start, port, signal, ok in (
            ("levee", lambda: spawn([levee_bin, "run", "-c", conf]), LEVEE, "cache-status", "tier=disk"),
            ("nginx", lambda: nginx_cache(cdir), NGINX, "x-cache", "HIT")):
        t0 = time.time()
        proc = start()
        try:
            while True:
                try:
                    _, h = get(port, f"/n/{a.objects // 2}")
                    if ok in {k.lower(): v for k, v in h.items()}.get(signal, ""):
                        break
                except OSError:
                    pass
                time.sleep(0.005)
            took = time.time() - t0
            extra = ""
            if name == "levee":
                status = json.loads(get(ADMIN, "/cache")[0])
                extra = f" (journal replay {status['disk']['load_ms']} ms, {status['disk']['loaded']} entries)"
            print(f"{name:6} first hit {took:.3f} s after start{extra}")
        finally:
            stop([proc])


def start_example(a):
    print(f"== the disk tier's start with {a.start_objects:,} objects (examples/disk_start.rs)")
    out = subprocess.run(["cargo", "run", "--release", "-q", "-p", "levee-cache", "--example",
                          "disk_start", "--", str(a.start_objects)], capture_output=True, text=True)
    print(out.stdout.strip() or out.stderr.strip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--levee", default="target/release/levee")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--start-objects", type=int, default=1_000_000)
    a = ap.parse_args()
    o, log = origin()
    try:
        if not wait_port(ORIGIN):
            sys.exit("the origin is not listening")
        disk_hits(a, a.levee)
        fleet(a, a.levee, log)
        restart(a, a.levee)
    finally:
        stop([o])
        shutil.rmtree(TMP, ignore_errors=True)
    start_example(a)


if __name__ == "__main__":
    main()
