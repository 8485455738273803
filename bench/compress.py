#!/usr/bin/env python3
"""Compression side by side: levee and nginx's gzip at the same level, in
front of one nginx origin serving a 100 KB compressible page, and the
cache's two ways to answer a compressed hit.

    python3 bench/compress.py [--levee target/release/levee] [--seconds 5] [--rounds 2] [--level 6]

1. Proxied and compressed on the fly (`wrk -t1 -c16`, `Accept-Encoding:
   gzip`): nginx (`gzip on; gzip_comp_level LEVEL; gzip_proxied any`) and
   levee (`compress = { prefer = ["gzip"], gzip_level = LEVEL }`), each
   proxy's process-tree CPU µs per response from /proc (median of rounds,
   alternating), and the ratio levee / nginx. The same for identity
   responses (no Accept-Encoding) shows what the compression itself costs.
2. The cache (docs/cache.md, "Compression"): CPU µs per levee hit of the
   100 KB page stored once as identity with levee's own gzip variant beside
   it (what levee does; before variants, this row was the page gzipped on
   the way out per hit), against a hit of the same page the origin stored
   already gzipped (levee stores and sends those bytes), and an identity
   hit.

The machine is shared: quote ratios from one run. Needs nginx, wrk, curl."""
import argparse, os, random, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers
from peers import TMP, nginx, spawn, wait_port, cpu_seconds, stop

ORIGIN, NGINX, LEVEE = 19580, 19581, 19582


def page():
    """About 100 KB of HTML-like text that compresses as real pages do
    (gzip -6: about 4:1), not as one repeated line would."""
    rng = random.Random(18)
    words = ["levee", "proxy", "cache", "stream", "header", "server", "client", "route",
             "upstream", "compress", "window", "buffer", "request", "response", "body",
             "the", "a", "of", "and", "to", "in", "is", "for", "with", "on", "as"]
    out, size = [], 0
    while size < 100_000:
        line = "<p class=\"w%d\">%s</p>\n" % (rng.randrange(40), " ".join(
            rng.choice(words) + (str(rng.randrange(1000)) if rng.random() < 0.2 else "")
            for _ in range(rng.randrange(8, 20))))
        out.append(line)
        size += len(line)
    return "".join(out)[:100_000]


def origin(level):
    # nginx's workers (nobody, under root) must read the files.
    os.chmod(TMP, 0o755)
    root = os.path.join(TMP, "www")
    for d in ("c", "pre", "p"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
        with open(os.path.join(root, d, "page.html"), "w") as f:
            f.write(page())
    return nginx("origin", f"""types {{ text/html html; }}
      server {{ listen 127.0.0.1:{ORIGIN} backlog=4096; root {root};
        location /c/ {{ add_header Cache-Control "max-age=3600"; }}
        location /pre/ {{ add_header Cache-Control "max-age=3600";
          gzip on; gzip_comp_level {level}; gzip_proxied any; gzip_types text/html; }} }}""", 1)


def nginx_gzip(level):
    return nginx("nginxgzip", f"""upstream o {{ server 127.0.0.1:{ORIGIN}; keepalive 32; }}
      server {{ listen 127.0.0.1:{NGINX} backlog=4096;
        gzip on; gzip_comp_level {level}; gzip_proxied any; gzip_types text/html;
        gzip_min_length 256;
        location / {{ proxy_pass http://o; proxy_http_version 1.1;
          proxy_set_header Connection ""; proxy_set_header Accept-Encoding ""; }} }}""", 2)


def levee(binary, level):
    cfg = os.path.join(TMP, "levee.toml")
    with open(cfg, "w") as f:
        f.write(f"""workers = 2
[log]
access = "off"
[[listener]]
address = "127.0.0.1:{LEVEE}"
[[route]]
path = "/c/"
proxy = "o"
cache = true
cache_status = true
[[route]]
path = "/pre/"
proxy = "o"
cache = true
cache_status = true
[[route]]
proxy = "o"
[upstream.o]
servers = ["127.0.0.1:{ORIGIN}"]
[compress]
enabled = true
prefer = ["gzip"]
gzip_level = {level}
""")
    return spawn([binary, "run", "-c", cfg])


def wrk(port, path, seconds, accept):
    args = ["wrk", "-t1", "-c16", f"-d{seconds}s"]
    if accept:
        args += ["-H", f"Accept-Encoding: {accept}"]
    out = subprocess.run(args + [f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True).stdout
    import re
    done = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise SystemExit(f"{path}: {bad.group(1)} failed responses:\n{out}")
    return done


def cpu_per_response(proc, port, path, seconds, accept):
    wrk(port, path, 1, accept)
    c0 = cpu_seconds(proc.pid)
    n = wrk(port, path, seconds, accept)
    return (cpu_seconds(proc.pid) - c0) * 1e6 / max(n, 1), n / seconds


def check(port, path, accept, coding):
    head = subprocess.run(["curl", "-s", "-D", "-", "-o", "/dev/null", "-H",
                           f"Accept-Encoding: {accept}", f"http://127.0.0.1:{port}{path}"],
                          capture_output=True, text=True).stdout.lower()
    got = "content-encoding: gzip" in head
    if got != (coding == "gzip"):
        raise SystemExit(f"{port}{path} with {accept!r}: unexpected head\n{head}")
    return head


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--levee", default="target/release/levee")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--level", type=int, default=6)
    a = ap.parse_args()
    procs = [origin(a.level), nginx_gzip(a.level), levee(a.levee, a.level)]
    try:
        for port in (ORIGIN, NGINX, LEVEE):
            if not wait_port(port):
                raise SystemExit(f"port {port} did not open")
        named = {"nginx": (procs[1], NGINX), "levee": (procs[2], LEVEE)}
        for port in (NGINX, LEVEE):
            check(port, "/p/page.html", "gzip", "gzip")
            check(port, "/p/page.html", "identity", None)
        rows = {}
        for accept, label in (("gzip", "gzip"), (None, "identity")):
            runs = {n: [] for n in named}
            for _ in range(a.rounds):
                for name, (proc, port) in named.items():
                    runs[name].append(cpu_per_response(proc, port, "/p/page.html", a.seconds, accept))
            rows[label] = {n: sorted(r)[len(r) // 2] for n, r in runs.items()}
        print(f"100 KB page proxied, gzip level {a.level}, CPU µs per response (req/s)")
        for label, r in rows.items():
            l, n = r["levee"], r["nginx"]
            print(f"  {label:9} levee {l[0]:8.1f} ({l[1]:7.0f})  nginx {n[0]:8.1f} ({n[1]:7.0f})"
                  f"  levee/nginx {l[0] / n[0]:.2f}")
        gz = rows["gzip"]
        ident = rows["identity"]
        print(f"  compression alone: levee {gz['levee'][0] - ident['levee'][0]:.1f}, "
              f"nginx {gz['nginx'][0] - ident['nginx'][0]:.1f} µs; ratio "
              f"{(gz['levee'][0] - ident['levee'][0]) / (gz['nginx'][0] - ident['nginx'][0]):.2f}")

        # The cache: warm both keys, then hits only.
        check(LEVEE, "/c/page.html", "gzip", "gzip")
        check(LEVEE, "/pre/page.html", "gzip", "gzip")
        hits = {}
        for label, path, accept in (("identity stored, levee gzip variant", "/c/page.html", "gzip"),
                                    ("gzip stored (a variant)", "/pre/page.html", "gzip"),
                                    ("identity stored, identity hit", "/c/page.html", None)):
            head = check(LEVEE, path, accept or "identity", "gzip" if accept else None)
            if "levee; hit" not in head:
                raise SystemExit(f"{path}: not a hit\n{head}")
            hits[label] = cpu_per_response(procs[2], LEVEE, path, a.seconds, accept)
        print("levee cache hits of the 100 KB page, CPU µs per hit (req/s)")
        for label, (cpu, rps) in hits.items():
            print(f"  {label:34} {cpu:8.1f} ({rps:7.0f})")
        per_hit = hits["identity stored, levee gzip variant"][0]
        variant = hits["gzip stored (a variant)"][0]
        print(f"  levee variant / origin-gzipped entry: {per_hit / variant:.1f}x")
    finally:
        stop(procs)
        peers.cleanup()


if __name__ == "__main__":
    main()
