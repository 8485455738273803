#!/usr/bin/env python3
"""The io_uring prototype (bench/uring/) side by side with levee's epoll path
and nginx, for issue 21: does an io_uring data path spend at least 10% less
CPU per proxied request?

    cargo build --release --manifest-path bench/uring/Cargo.toml
    python3 bench/uring.py [--binary target/release/levee]
                           [--uring bench/uring/target/release/levee-uring-proto]
                           [--seconds 8] [--rounds 5] [--idle 15000]

All five front the same nginx app server on loopback with 2 workers each:
nginx (2 worker processes, upstream keepalive), levee (`levee proxy`), the
prototype (`uring`: 2 threads, one ring each; `fixed`: the same with every
connection in the ring's table of registered files) and the prototype's epoll twin
(`twin`: the same code and HTTP work over epoll and recv/send calls, which
tells the ring's effect from the user-space work levee does and the
prototype does not). Measured as bench/bench.py does, with the CPU split into
user and kernel time:
  - req/s, p50/p99 (wrk -t1 -c64), CPU µs per request from /proc/PID/stat
    (utime, stime) of the process tree and its threads, median of rounds that
    alternate between the proxies (ABCABC...) so that a busy machine's drift
    hits all alike;
  - syscalls per request and io_uring_enter calls per request (strace -c -f
    over a separate wrk -c32 run: strace slows the proxy, so no CPU from it);
  - CPU per request of the peers in the same window (the nginx app server and
    wrk): a path that moved work into their time (wake-ups, softirq on the
    sender's side) would show there;
  - PSS growth per idle keep-alive connection with N held, one request each,
    read after a 2 s wrk burst so that memory a burst leaves behind (buffer
    rings, pools, allocator caches) is in the baseline, not in the growth.
Checks first that io_uring is usable (kernel.io_uring_disabled, a ring set up
by the prototype at start)."""
import argparse, asyncio, os, re, resource, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
import bench, peers  # noqa: E402

peers.PORTS["uring"] = 19185
peers.PORTS["twin"] = 19186
peers.PORTS["fixed"] = 19187
PROTO_FLAGS = {"uring": [], "fixed": ["--fixed-files"], "twin": ["--io", "epoll"]}


def uring_proto(binary, name="uring"):
    return peers.spawn([binary, "--listen", f"127.0.0.1:{peers.PORTS[name]}",
                        "--to", f"127.0.0.1:{peers.BACKEND}", "--workers", "2"] + PROTO_FLAGS[name])


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cpu_split(root):
    """User and kernel CPU seconds of a process tree (all threads: /proc/PID/stat
    counts the whole thread group)."""
    user = system = 0
    for p in peers.tree(root):
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            user += int(f[11])
            system += int(f[12])
        except (OSError, IndexError, ValueError):
            pass
    hz = os.sysconf("SC_CLK_TCK")
    return user / hz, system / hz


def throughput(procs, backend, seconds, rounds):
    runs = {n: [] for n in procs}
    for _ in range(rounds):
        for name, p in procs.items():
            bench.wrk(peers.PORTS[name], 1)
            u0, s0 = cpu_split(p.pid)
            b0, w0 = sum(cpu_split(backend.pid)), children_cpu()
            r = bench.wrk(peers.PORTS[name], seconds)
            u1, s1 = cpu_split(p.pid)
            b1, w1 = sum(cpu_split(backend.pid)), children_cpu()
            n = max(r["requests"], 1)
            r["user"], r["sys"] = (u1 - u0) * 1e6 / n, (s1 - s0) * 1e6 / n
            r["cpu"] = r["user"] + r["sys"]
            r["app"], r["wrk"] = (b1 - b0) * 1e6 / n, (w1 - w0) * 1e6 / n
            runs[name].append(r)
    med = lambda rs, k: sorted(x[k] for x in rs)[len(rs) // 2]
    return ({n: {k: med(rs, k) for k in ("rps", "p50", "p99", "cpu", "user", "sys", "app", "wrk")}
             | {"bad": sum(x["bad"] for x in rs), "errors": [x["errors"] for x in rs if x["errors"]]}
             for n, rs in runs.items()}, runs)


def syscalls(name, proc, seconds=3):
    """All syscalls per request, and each one's count per request."""
    text, requests = bench.strace(name, proc, seconds)
    n = max(requests, 1)
    total = re.search(r"100\.00\s+[\d.]+\s+\d*\s*(\d+)", text)
    calls = {m.group(2): int(m.group(1)) / n
             for m in re.finditer(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", text, re.M)}
    return (int(total.group(1)) / n if total else float("nan")), calls


def io_uring_status():
    try:
        disabled = open("/proc/sys/kernel/io_uring_disabled").read().strip()
    except OSError:
        disabled = "absent"
    return disabled


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/release/levee")
    ap.add_argument("--uring", default="bench/uring/target/release/levee-uring-proto")
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--idle", type=int, default=15000, help="idle connections to hold (0: skip)")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))
    disabled = io_uring_status()
    print(f"kernel.io_uring_disabled = {disabled}; kernel {os.uname().release}")
    if disabled not in ("0", "absent"):
        sys.exit("io_uring is disabled on this kernel: nothing to compare")
    binary, uring = os.path.abspath(a.binary), os.path.abspath(a.uring)
    starters = {"nginx": peers.nginx_proxy, "levee": lambda: peers.levee(binary),
                "uring": lambda: uring_proto(uring), "fixed": lambda: uring_proto(uring, "fixed"),
                "twin": lambda: uring_proto(uring, "twin")}
    backend = peers.backend()
    procs = {n: s() for n, s in starters.items()}
    try:
        for name, p in procs.items():
            if not peers.wait_port(peers.PORTS[name]) or not peers.wait_port(peers.BACKEND):
                # The prototype exits at start when io_uring_setup fails.
                sys.exit(f"{name} is not listening (exit status {p.poll()})")
        t, runs = throughput(procs, backend, a.seconds, a.rounds)
        sc = {n: syscalls(n, p) for n, p in procs.items()}
        peers.stop(list(procs.values()))
        idles = {}
        if a.idle:
            for name, start in starters.items():
                p = start()
                peers.wait_port(peers.PORTS[name])
                idles[name] = asyncio.run(bench.idle(p, peers.PORTS[name], a.idle, burst=True))
                peers.stop([p])
    finally:
        peers.stop(list(procs.values()) + [backend])
        peers.cleanup()

    print(f"{a.rounds} rounds of {a.seconds} s, wrk -t1 -c64, medians; load average {os.getloadavg()[0]:.1f}")
    print(f"{'proxy':6} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'cpu us':>7} {'user':>6} {'kernel':>6}"
          f" {'sysc/req':>8} {'enter/req':>9} {'idle KB':>8} {'held':>6} {'alive':>6} {'app us':>6} {'wrk us':>6}")
    for n in procs:
        r, i = t[n], idles.get(n, {})
        print(f"{n:6} {r['rps']:>8.0f} {r['p50']:>7.2f} {r['p99']:>7.2f} {r['cpu']:>7.2f} {r['user']:>6.2f}"
              f" {r['sys']:>6.2f} {sc[n][0]:>8.2f} {sc[n][1].get('io_uring_enter', 0):>9.2f}"
              f" {i.get('kb', float('nan')):>8.2f} {i.get('held', 0):>6} {i.get('alive', 0):>6}"
              f" {r['app']:>6.2f} {r['wrk']:>6.2f}")
        if r["bad"] or r["errors"]:
            print(f"       {n}: {r['bad']} non-2xx responses, socket errors: {r['errors']}")
    print("per round, cpu us/req (user+kernel):")
    for n, rs in runs.items():
        print(f"  {n:6} " + " ".join(f"{x['cpu']:.2f}({x['user']:.1f}+{x['sys']:.1f})" for x in rs))
    print("syscalls per request, by name (>= 0.05):")
    for n in procs:
        print(f"  {n:6} " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(sc[n][1].items(), key=lambda kv: -kv[1])
                                       if v >= 0.05 and k != "total"))
    for ours, peer in (("uring", "twin"), ("fixed", "twin"), ("uring", "levee"), ("fixed", "levee"),
                       ("uring", "nginx")):
        ratio = lambda k: t[ours][k] / t[peer][k]
        mem = (f", idle memory {idles[ours]['kb'] / idles[peer]['kb']:.2f}"
               if idles.get(peer, {}).get("kb") and ours in idles else "")
        print(f"{ours}/{peer}: cpu {ratio('cpu'):.2f} (user {ratio('user'):.2f}, kernel {ratio('sys'):.2f}),"
              f" req/s {ratio('rps'):.2f}, p99 {ratio('p99'):.2f}, syscalls {sc[ours][0] / sc[peer][0]:.2f}{mem}")


if __name__ == "__main__":
    main()
