#!/usr/bin/env python3
"""HTTP/2 end to end, side by side with nginx's grpc_pass:

    python3 bench/grpc.py [--binary target/release/levee] [--seconds 5] [--rounds 3]

One nginx worker serves HTTP/2 in cleartext (prior knowledge) and answers
every request with a 12-byte body: the upstream. In front of it, nginx
(2 workers, `grpc_pass` to an upstream with `keepalive 32`) and levee (2
workers, an upstream with `protocol = "h2c"`), each on an h2c listener.
`h2load -c 16 -m 8` (16 connections, 8 streams each) drives each proxy
in alternating rounds; CPU is the proxy's user+system time from /proc
divided by requests, the median over rounds. This is the path gRPC calls
take through levee (docs/architecture.md, "An HTTP/2 upstream stream"),
without a gRPC library's own cost on either end.
"""
import argparse, os, statistics, sys

import peers

UPSTREAM = 19190
PORTS = {"nginx": 19191, "levee": 19192}


def upstream():
    return peers.nginx("h2-upstream", f'server {{ listen 127.0.0.1:{UPSTREAM} http2 backlog=4096; '
                                      f'location / {{ return 200 "hello world\\n"; }} }}', 1)


def nginx_grpc():
    return peers.nginx("nginx-grpc", f"""upstream g {{ server 127.0.0.1:{UPSTREAM}; keepalive 32; }}
  server {{ listen 127.0.0.1:{PORTS['nginx']} http2 backlog=4096;
    location / {{ grpc_pass grpc://g; }} }}""", 2)


def levee(binary):
    cfg = peers._write(os.path.join(peers.TMP, "levee-grpc.toml"), f"""workers = 2
[log]
access = "off"
[[listener]]
address = "127.0.0.1:{PORTS['levee']}"
http2 = "prior-knowledge"
[[route]]
proxy = "g"
[upstream.g]
servers = ["127.0.0.1:{UPSTREAM}"]
protocol = "h2c"
""")
    return peers.spawn([binary, "run", "-c", cfg])


def load(proc, port, seconds):
    return peers.h2load(proc.pid, f"http://127.0.0.1:{port}/", seconds)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/release/levee")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    up = upstream()
    procs = {"nginx": nginx_grpc(), "levee": levee(os.path.abspath(a.binary))}
    try:
        for name, port in [("upstream", UPSTREAM)] + list(PORTS.items()):
            if not peers.wait_port(port):
                sys.exit(f"{name} is not listening")
        for name, p in procs.items():
            load(p, PORTS[name], 1)  # warm: connections to the upstream
        runs = {name: [] for name in procs}
        for _ in range(a.rounds):
            for name, p in procs.items():
                runs[name].append(load(p, PORTS[name], a.seconds))
    finally:
        peers.stop(list(procs.values()) + [up])
        peers.cleanup()
    print(f"{'proxy':8} {'req/s':>9} {'cpu us/req':>10}   (median of {a.rounds} rounds)")
    med = {}
    for name, r in runs.items():
        med[name] = (statistics.median(x[0] for x in r), statistics.median(x[1] for x in r))
        print(f"{name:8} {med[name][0]:>9.0f} {med[name][1]:>10.2f}")
    print(f"levee/nginx: cpu {med['levee'][1] / med['nginx'][1]:.2f}, req/s {med['levee'][0] / med['nginx'][0]:.2f}")


if __name__ == "__main__":
    main()
