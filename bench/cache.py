#!/usr/bin/env python3
"""Cache-hit cost side by side: levee, Varnish and nginx proxy_cache, each in
front of one nginx origin whose 1 KiB response is cacheable for an hour.

For each: one request warms the cache, a 1 s wrk run warms the connections,
then `wrk -t1 -c64` for --seconds measures req/s, and the proxy's process-tree
CPU time over the run divided by the requests gives CPU µs per hit. Memory per
cached object: PSS growth after storing --objects distinct URLs (10 KiB each),
divided by their number. The origin's request count proves the hits.

Usage: python3 bench/cache.py [--levee target/release/levee] [--seconds 6]
Needs nginx, varnish, wrk, curl (apt-get install)."""
import argparse, os, re, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers
from peers import TMP, nginx, spawn, wait_port, cpu_seconds, pss_kb, stop

ORIGIN, NGINX, VARNISH, LEVEE = 19480, 19481, 19482, 19483


def origin():
    small = "x" * 1024
    root = os.path.join(TMP, "www")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "ten.bin"), "wb") as f:
        f.write(b"y" * 10240)
    return nginx("origin", f"""server {{ listen 127.0.0.1:{ORIGIN} backlog=4096; root {root};
      location /obj {{ add_header Cache-Control "max-age=3600"; return 200 "{small}"; }}
      location /m/ {{ add_header Cache-Control "max-age=3600"; try_files /ten.bin =404; }} }}""", 1)


def nginx_cache():
    cdir = os.path.join(TMP, "ncache")
    os.makedirs(cdir, exist_ok=True)
    os.chmod(cdir, 0o777)
    return nginx("nginxcache", f"""proxy_cache_path {cdir} levels=1:2 keys_zone=c:32m max_size=1g;
      upstream o {{ server 127.0.0.1:{ORIGIN}; keepalive 32; }}
      server {{ listen 127.0.0.1:{NGINX} backlog=4096; location / {{ proxy_cache c;
        proxy_pass http://o; proxy_http_version 1.1; proxy_set_header Connection ""; }} }}""", 2)


def varnish():
    os.chmod(TMP, 0o755)
    vcl = os.path.join(TMP, "v.vcl")
    with open(vcl, "w") as f:
        f.write(f'vcl 4.1;\nbackend default {{ .host = "127.0.0.1"; .port = "{ORIGIN}"; }}\n')
    vdir = os.path.join(TMP, "varnish")
    os.makedirs(vdir, exist_ok=True)
    return spawn(["varnishd", "-F", "-j", "unix,user=varnish", "-n", vdir, "-a", f"127.0.0.1:{VARNISH}",
                  "-T", "127.0.0.1:19489", "-f", vcl, "-s", "malloc,1G", "-p", "thread_pools=2"])


def levee(binary):
    conf = os.path.join(TMP, "levee.toml")
    with open(conf, "w") as f:
        f.write(f"""workers = 2
[log]
access = "off"
[[listener]]
address = "127.0.0.1:{LEVEE}"
[[route]]
proxy = "o"
cache = true
[upstream.o]
servers = ["127.0.0.1:{ORIGIN}"]
[cache]
max_size = "1g"
""")
    return spawn([binary, "run", "-c", conf])


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.read(), dict(r.headers)


def wrk(port, seconds):
    out = subprocess.run(["wrk", "-t1", "-c64", f"-d{seconds}s", f"http://127.0.0.1:{port}/obj"],
                         capture_output=True, text=True).stdout
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return reqs, rps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--levee", default="target/release/levee")
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--objects", type=int, default=3000)
    a = ap.parse_args()
    procs = [origin()]
    try:
        proxies = {"levee": (levee(a.levee), LEVEE), "varnish": (varnish(), VARNISH),
                   "nginx": (nginx_cache(), NGINX)}
        procs += [p for p, _ in proxies.values()]
        for name, (_, port) in list(proxies.items()) + [("origin", (None, ORIGIN))]:
            if not wait_port(port):
                sys.exit(f"{name} is not listening on {port}")
        time.sleep(1)
        print(f"{'':8} {'req/s':>9} {'CPU µs/hit':>11} {'KB/object':>10}  hit signal")
        for name, (p, port) in proxies.items():
            get(port, "/obj")
            wrk(port, 1)
            c0 = cpu_seconds(p.pid)
            reqs, rps = wrk(port, a.seconds)
            cpu = (cpu_seconds(p.pid) - c0) * 1e6 / reqs
            _, headers = get(port, "/obj")
            signal = {k: v for k, v in headers.items() if k.lower() in ("age", "cache-status", "x-varnish")}
            m0 = pss_kb(p.pid)
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda i: get(port, f"/m/{name}/{i}"), range(a.objects)))
            per_object = (pss_kb(p.pid) - m0) / a.objects
            print(f"{name:8} {rps:9.0f} {cpu:11.2f} {per_object:10.2f}  {signal}")
    finally:
        stop(procs)


if __name__ == "__main__":
    main()
