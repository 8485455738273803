#!/usr/bin/env python3
"""Does the choice of server cost anything? levee with one upstream server
against levee with three, on the same request mix.

    python3 bench/upstreams.py [--binary target/release/levee] [--seconds 8] [--rounds 5]

Three levee processes run side by side, measured in alternating rounds:
  - `1 server`: one nginx app server (1 worker);
  - `3 servers, 1 nginx`: the same nginx listening on three ports, so the
    backend's work and scheduling are unchanged and only levee's side
    differs (three servers to balance, three pools);
  - `3 servers, 3 nginx`: three nginx processes of one worker each, as an
    operator would run them; on a 2-core machine these add processes that
    compete with levee and wrk for the cores, which shows in levee's CPU too.
Printed: requests/s, CPU microseconds per request, and syscalls per request,
with each three-server figure as a ratio of the one-server figure."""
import argparse, os, resource, sys
sys.path.insert(0, os.path.dirname(__file__))
import bench, peers

SHARED = [19190, 19191, 19192]
SEPARATE = [19193, 19194, 19195]
LEVEE = {"1 server": 19186, "3 servers, 1 nginx": 19187, "3 servers, 3 nginx": 19188}
HELLO = 'location / { return 200 "hello world\\n"; }'


def app(name, ports):
    listens = " ".join(f"listen 127.0.0.1:{p} backlog=4096;" for p in ports)
    return peers.nginx(name, f"server {{ {listens} {HELLO} }}", 1)


def levee(binary, port, backends):
    to = ",".join(f"127.0.0.1:{p}" for p in backends)
    return peers.spawn([binary, "proxy", "--listen", f"127.0.0.1:{port}", "--to", to])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/release/levee")
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))
    binary = os.path.abspath(a.binary)
    apps = [app("shared", SHARED)] + [app(f"app{i}", [p]) for i, p in enumerate(SEPARATE)]
    peers.PORTS.update(LEVEE)
    procs = {
        "1 server": levee(binary, LEVEE["1 server"], SHARED[:1]),
        "3 servers, 1 nginx": levee(binary, LEVEE["3 servers, 1 nginx"], SHARED),
        "3 servers, 3 nginx": levee(binary, LEVEE["3 servers, 3 nginx"], SEPARATE),
    }
    try:
        for port in SHARED + SEPARATE + list(LEVEE.values()):
            if not peers.wait_port(port):
                sys.exit(f"nothing listens on {port}")
        t = bench.throughput(procs, a.seconds, a.rounds)
        sc = {n: bench.syscalls(n, p) for n, p in procs.items()}
    finally:
        peers.stop(list(procs.values()) + apps)
        peers.cleanup()
    base = t["1 server"]
    print(f"{'levee with':20} {'req/s':>9} {'cpu us/req':>10} {'syscalls/req':>12} {'cpu ratio':>9}")
    for n in procs:
        r = t[n]
        print(f"{n:20} {r['rps']:>9.0f} {r['cpu']:>10.2f} {sc[n]:>12.2f} {r['cpu'] / base['cpu']:>9.3f}")


if __name__ == "__main__":
    main()
