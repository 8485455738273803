#!/usr/bin/env python3
"""Instructions per proxied request, counted by callgrind: repeatable on a
busy machine where CPU seconds are not, so it is the A/B measure for user
time (docs: bench/README.md, "Instructions per request").

    python3 bench/callgrind.py [--binary target/release/levee]
                               [--baseline path/to/earlier/levee]
                               [--requests 20000] [--connections 8]
                               [--access-log] [--keep DIR]

Each binary runs `levee proxy` under `valgrind --tool=callgrind` in front of
the benchmark's nginx app server. After a warm-up its counters are zeroed
(callgrind_control -z), h2load sends the requests over keep-alive HTTP/1.1
connections, and the counters are dumped (callgrind_control -d): the
instructions of every levee thread in that window, divided by the requests.
Startup and warm-up are left out. Kernel time is not counted (see bench.py's
syscalls per request for that side). --access-log turns levee's access log
on (stdout, to /dev/null): the line's formatting and its write are counted.
--keep DIR leaves the callgrind files there, for callgrind_annotate.
"""
import argparse, glob, os, re, subprocess, sys, time

sys.path.insert(0, os.path.dirname(__file__))
import peers  # noqa: E402


def h2load(port, n, c):
    out = subprocess.run(["h2load", "--h1", "-n", str(n), "-c", str(c), f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True, timeout=600).stdout
    ok = re.search(r"(\d+) succeeded", out)
    return int(ok.group(1)) if ok else 0


def measure(binary, name, requests, connections, access_log=False, keep=None):
    out_dir = os.path.join(keep or peers.TMP, f"cg-{name}")
    os.makedirs(out_dir, exist_ok=True)
    port = peers.PORTS[name]
    proc = peers.spawn(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_dir}/cg.%p",
                        binary, "proxy", "--listen", f"127.0.0.1:{port}",
                        "--to", f"127.0.0.1:{peers.BACKEND}"]
                       + (["--access-log"] if access_log else []))
    try:
        if not peers.wait_port(port, timeout=60):
            sys.exit(f"{name} under valgrind is not listening")
        h2load(port, 2000, connections)  # warm-up: pools, allocator, caches
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], capture_output=True, check=True)
        done = h2load(port, requests, connections)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], capture_output=True, check=True)
    finally:
        peers.stop([proc])
    total = 0
    for path in glob.glob(f"{out_dir}/cg.{proc.pid}.*"):
        with open(path) as f:
            for line in f:
                if line.startswith("totals:") or line.startswith("summary:"):
                    total += int(line.split()[1])
                    break
    return total / max(done, 1), done


def parser(doc, binary_default=None, binary_help=None):
    """The options every A/B script over `levee proxy` and h2load takes."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=binary_default, required=binary_default is None,
                    help=binary_help)
    ap.add_argument("--baseline", help="an earlier levee binary, measured the same way")
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--access-log", action="store_true", help="levee proxy --access-log (to /dev/null)")
    return ap


def each_binary(a, measure):
    """`measure(path, name)` for the binary and the baseline in turn, in
    front of the benchmark's nginx app server: [(name, result)]."""
    backend = peers.backend()
    peers.wait_port(peers.BACKEND)
    rows = []
    try:
        runs = [("levee", a.binary)] + ([("baseline", a.baseline)] if a.baseline else [])
        for name, binary in runs:
            rows.append((name, measure(os.path.abspath(binary), name)))
    finally:
        peers.stop([backend])
        peers.cleanup()
    return rows


def main():
    ap = parser(__doc__, binary_default="target/release/levee")
    ap.add_argument("--keep", metavar="DIR", help="leave the callgrind files in DIR/cg-NAME")
    a = ap.parse_args()
    keep = a.keep and os.path.abspath(a.keep)
    rows = [(name, *r) for name, r in each_binary(
        a, lambda path, name: measure(path, name, a.requests, a.connections, a.access_log, keep))]
    print(f"{'binary':9} {'requests':>9} {'instructions/req':>17}")
    for name, per, done in rows:
        print(f"{name:9} {done:>9} {per:>17.0f}")
    if len(rows) == 2:
        print(f"levee/baseline: instructions {rows[0][1] / rows[1][1]:.3f}")


if __name__ == "__main__":
    main()
