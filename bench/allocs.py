#!/usr/bin/env python3
"""Allocations per proxied request, counted by levee's own allocator in a
benchmark build (docs: bench/README.md, "Allocations per request").

    cargo build --profile profiling -p levee --features alloc-count
    cp target/profiling/levee /tmp/levee-allocs
    python3 bench/allocs.py --binary /tmp/levee-allocs [--baseline OTHER]
                            [--requests 20000] [--connections 8] [--access-log]

The `alloc-count` build (crates/levee/src/alloc_count.rs) prints its running
totals to stderr whenever the request count moves. `levee proxy` runs in
front of the benchmark's nginx app server; after a warm-up the totals are
read, h2load sends the requests over keep-alive HTTP/1.1 connections, and
the totals are read again: the differences divided by the requests. The
counts include every thread, so a background task's allocations in that
window count too (a few, against tens of thousands).
"""
import os, re, subprocess, sys, time

sys.path.insert(0, os.path.dirname(__file__))
import peers  # noqa: E402
from callgrind import each_binary, h2load, parser  # noqa: E402

LINE = re.compile(r"alloc-count: requests (\d+) allocs (\d+) reallocs (\d+) frees (\d+)")


def last_totals(log):
    with open(log) as f:
        found = LINE.findall(f.read())
    if not found:
        sys.exit(f"no alloc-count line in {log}: is the binary built with --features alloc-count?")
    return [int(x) for x in found[-1]]


def measure(binary, name, requests, connections, access_log):
    log = os.path.join(peers.TMP, f"allocs-{name}.log")
    port = peers.PORTS[name]
    cmd = [binary, "proxy", "--listen", f"127.0.0.1:{port}", "--to", f"127.0.0.1:{peers.BACKEND}"]
    if access_log:
        cmd.append("--access-log")
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    try:
        if not peers.wait_port(port, timeout=30):
            sys.exit(f"{name} is not listening")
        h2load(port, 2000, connections)  # warm-up: pools, allocator, caches
        time.sleep(0.5)
        before = last_totals(log)
        done = h2load(port, requests, connections)
        time.sleep(0.5)
        after = last_totals(log)
    finally:
        peers.stop([proc])
    served = after[0] - before[0]
    per = [(a - b) / max(served, 1) for a, b in zip(after[1:], before[1:])]
    return served, done, per


def main():
    ap = parser(__doc__, binary_help="a levee built with --features alloc-count")
    a = ap.parse_args()
    rows = [(name, *r) for name, r in each_binary(
        a, lambda path, name: measure(path, name, a.requests, a.connections, a.access_log))]
    print(f"{'binary':9} {'requests':>9} {'allocs/req':>11} {'reallocs/req':>13} {'frees/req':>10}")
    for name, served, done, (allocs, reallocs, frees) in rows:
        note = "" if served == done else f"  (h2load counted {done})"
        print(f"{name:9} {served:>9} {allocs:>11.2f} {reallocs:>13.2f} {frees:>10.2f}{note}")


if __name__ == "__main__":
    main()
