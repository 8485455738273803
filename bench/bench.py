#!/usr/bin/env python3
"""levee side by side with nginx and HAProxy, one command, one table.

    python3 bench/bench.py [--binary target/release/levee] [--seconds 8] [--rounds 3] [--idle 15000]
                           [--baseline path/to/earlier/levee]

All three proxies front the same nginx app server on loopback. Measured:
  - requests/s, p50/p99 latency (wrk, 1 thread, 64 keep-alive connections)
    and CPU microseconds per request read from /proc (median of rounds,
    proxies alternating so that drift hits all alike);
  - syscalls per proxied request (strace -c -f over a fixed wrk run);
  - PSS growth per idle keep-alive connection with N held (one request each),
    and how many survive: the 15,000-connection test.
With --baseline, an earlier levee build runs beside the others in the same
alternating rounds (row `baseline`), so a change is measured A/B in one run.
Needs nginx, haproxy, wrk and strace (scripts/test installs them). Quote
ratios from one run: absolute numbers drift on a shared machine."""
import argparse, asyncio, os, re, resource, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
import peers


def wrk(port, seconds, conns=64):
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency",
                          f"http://127.0.0.1:{port}/"], capture_output=True, text=True).stdout

    def latency(pct):
        v, unit = re.search(rf"{pct}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(v) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return dict(requests=int(re.search(r"(\d+) requests in", out).group(1)),
                rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
                p50=latency(50), p99=latency(99),
                bad=int(bad.group(1)) if bad else 0, errors=errors.group(1) if errors else "")


def throughput(procs, seconds, rounds):
    runs = {n: [] for n in procs}
    for _ in range(rounds):
        for name, p in procs.items():
            wrk(peers.PORTS[name], 1)
            c0 = peers.cpu_seconds(p.pid)
            r = wrk(peers.PORTS[name], seconds)
            r["cpu"] = (peers.cpu_seconds(p.pid) - c0) * 1e6 / max(r["requests"], 1)
            runs[name].append(r)
    med = lambda rs, k: sorted(x[k] for x in rs)[len(rs) // 2]
    return {n: {k: med(rs, k) for k in ("rps", "p50", "p99", "cpu")} | {"bad": sum(x["bad"] for x in rs)}
            for n, rs in runs.items()}


def syscalls(name, proc, seconds=3):
    out = os.path.join(peers.TMP, f"strace-{name}")
    tracer = subprocess.Popen(["strace", "-c", "-f", "-o", out, "-p", str(proc.pid)]
                              + [f"-p{p}" for p in peers.tree(proc.pid) if p != proc.pid],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    r = wrk(peers.PORTS[name], seconds, 32)
    time.sleep(0.3)
    tracer.send_signal(2)
    tracer.wait(timeout=20)
    text = open(out).read()
    total = re.search(r"100\.00\s+[\d.]+\s+\d*\s*(\d+)", text)
    return int(total.group(1)) / max(r["requests"], 1) if total else float("nan")


async def hold(port, n, tls=None):
    """Opens `n` connections (over TLS with the `ssl.SSLContext` `tls`), one
    request on each, and returns them held open with the failure count."""
    async def one(held, gate):
        async with gate:
            r, w = await asyncio.open_connection("127.0.0.1", port, ssl=tls,
                                                 server_hostname="localhost" if tls else None)
            w.write(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
            await w.drain()
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = await r.read(4096)
                if not chunk:
                    raise ConnectionError("closed before the response")
                head += chunk
            held.append((r, w))
    held, gate = [], asyncio.Semaphore(500)
    results = await asyncio.gather(*(one(held, gate) for _ in range(n)), return_exceptions=True)
    return held, sum(isinstance(x, Exception) for x in results)


async def idle(proc, port, n):
    warm, _ = await hold(port, 1)
    warm[0][1].close()
    await asyncio.sleep(1.5)
    before = peers.pss_kb(proc.pid)
    held, failed = await hold(port, n)
    await asyncio.sleep(1.0)
    after = peers.pss_kb(proc.pid)
    await asyncio.sleep(2.0)
    alive = sum(not r.at_eof() for r, _ in held)
    for _, w in held:
        w.close()
    return dict(held=len(held), failed=failed, alive=alive, total_mb=after / 1024,
                kb=(after - before) / max(len(held), 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/release/levee")
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--idle", type=int, default=15000, help="idle connections to hold (0: skip)")
    ap.add_argument("--baseline", help="an earlier levee binary to measure beside this one (A/B)")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))
    binary = os.path.abspath(a.binary)
    backend = peers.backend()
    procs = {"nginx": peers.nginx_proxy(), "haproxy": peers.haproxy(), "levee": peers.levee(binary)}
    baseline = os.path.abspath(a.baseline) if a.baseline else None
    if baseline:
        procs["baseline"] = peers.levee(baseline, "baseline")
    try:
        for name in procs:
            if not peers.wait_port(peers.PORTS[name]) or not peers.wait_port(peers.BACKEND):
                sys.exit(f"{name} is not listening")
        t = throughput(procs, a.seconds, a.rounds)
        sc = {n: syscalls(n, p) for n, p in procs.items()}
        peers.stop(list(procs.values()))
        idles = {}
        if a.idle:
            starters = [("nginx", peers.nginx_proxy), ("haproxy", peers.haproxy),
                        ("levee", lambda: peers.levee(binary))]
            if baseline:
                starters.append(("baseline", lambda: peers.levee(baseline, "baseline")))
            for name, start in starters:
                p = start()
                peers.wait_port(peers.PORTS[name])
                # HAProxy reserves two descriptors per connection: it holds at most 9,500.
                n = min(a.idle, 9000) if name == "haproxy" else a.idle
                idles[name] = asyncio.run(idle(p, peers.PORTS[name], n))
                peers.stop([p])
    finally:
        peers.stop(list(procs.values()) + [backend])
        peers.cleanup()

    print(f"{'proxy':8} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'cpu us/req':>10} {'syscalls/req':>12}"
          f" {'idle KB/conn':>12} {'held':>6} {'alive':>6} {'PSS MB':>7}")
    for n in procs:
        r, i = t[n], idles.get(n, {})
        print(f"{n:8} {r['rps']:>9.0f} {r['p50']:>7.2f} {r['p99']:>7.2f} {r['cpu']:>10.2f} {sc[n]:>12.2f}"
              f" {i.get('kb', float('nan')):>12.2f} {i.get('held', 0):>6} {i.get('alive', 0):>6}"
              f" {i.get('total_mb', float('nan')):>7.1f}")
    for peer in ("nginx", "haproxy") + (("baseline",) if baseline else ()):
        ratio = lambda k: t["levee"][k] / t[peer][k]
        mem = (f", idle memory {idles['levee']['kb'] / idles[peer]['kb']:.2f}"
               if idles.get(peer, {}).get("kb") else "")
        print(f"levee/{peer}: cpu {ratio('cpu'):.2f}, req/s {ratio('rps'):.2f}, "
              f"syscalls {sc['levee'] / sc[peer]:.2f}{mem}")


if __name__ == "__main__":
    main()
