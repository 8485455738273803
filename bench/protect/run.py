#!/usr/bin/env python3
"""Load records for levee's protections (docs/protection.md), loopback only,
every phase bounded in time.

    bench/protect/run.py cpu      # CPU per request, with and without one rate-limit rule (wrk)
    bench/protect/run.py slow     # slowhttptest -H, -B, -X: 1,000 connections, 30 s each,
                                  # with a normal client alongside
    bench/protect/run.py surge    # 15,000 connections in a few seconds, listener limit 5,000
    bench/protect/run.py silent   # 19,950 connections that never send a byte, reopened as levee
                                  # closes them, for 30 s; a fresh normal client every 100 ms
    bench/protect/run.py fleet [ROUNDS]  # a fleet-scoped limit (Redis) against a local one, side by side
    bench/protect/run.py all

Needs target/release/levee, nginx, wrk, slowhttptest, redis-server (Debian packages).
`silent` needs a descriptor limit of at least 20,000 (`ulimit -Hn`).
Prints one JSON object per phase; README.md in this folder records them."""
import asyncio, json, os, re, resource, select, shutil, socket, subprocess, sys, tempfile, threading, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LEVEE = os.path.join(ROOT, "target", "release", "levee")
BACKEND, PORT, ADMIN, REDIS = 18280, 18283, 18284, 18285
TMP = tempfile.mkdtemp(prefix="levee-protect-bench-")


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def backend():
    """nginx: `/` answers 12 bytes, `/big.bin` is a 1 MiB file."""
    d = os.path.join(TMP, "backend")
    os.makedirs(os.path.join(d, "html"), exist_ok=True)
    with open(os.path.join(d, "html", "big.bin"), "wb") as f:
        f.write(b"b" * (1 << 20))
    conf = write(os.path.join(d, "nginx.conf"), f"""
worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log warn; daemon off;
worker_rlimit_nofile 20000; events {{ worker_connections 18000; }}
http {{ access_log off; keepalive_timeout 600s; keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{BACKEND} backlog=4096; root {d}/html;
    location = / {{ return 200 "hello world\\n"; }} location / {{ }} }} }}""")
    return subprocess.Popen(["nginx", "-p", d, "-c", conf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def levee(name, listener_keys="", route_keys="", tables="", nofile=20000):
    conf = write(os.path.join(TMP, f"{name}.toml"), f"""
[log]
access = "off"
level = "warn"
[[listener]]
address = "127.0.0.1:{PORT}"
{listener_keys}
[[route]]
proxy = "app"
{route_keys}
[upstream.app]
servers = ["127.0.0.1:{BACKEND}"]
{tables}
""")
    nofile = min(nofile, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    cmd = f"ulimit -n {nofile} && exec {LEVEE} run -c {conf}"
    return subprocess.Popen(["sh", "-c", cmd], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(TMP, f"{name}.err"), "w"),
                            start_new_session=True)


def wait_port(port, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def stop(p):
    try:
        os.killpg(p.pid, 15)
        p.wait(10)
    except Exception:
        pass


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


class Peaks(threading.Thread):
    """Reads levee's RSS and descriptor count every `every` seconds until
    stopped, keeping the highest of each."""

    def __init__(self, pid, every):
        super().__init__(daemon=True)
        self.pid, self.every, self.running = pid, every, True
        self.rss_kb = self.fds = 0

    def run(self):
        while self.running:
            self.rss_kb = max(self.rss_kb, rss_kb(self.pid))
            self.fds = max(self.fds, fds(self.pid))
            time.sleep(self.every)


class NormalClient(threading.Thread):
    """A well-behaved client from 127.0.0.2: one keep-alive connection, a
    request every `every` seconds, reconnecting when closed. Records every
    outcome and latency."""

    def __init__(self, path="/", every=0.05, fresh=False):
        super().__init__(daemon=True)
        self.path, self.every, self.fresh = path, every, fresh
        self.stop_at = None
        self.ok, self.failed, self.latencies, self.statuses = 0, 0, [], {}
        self.running = True

    def connect(self):
        s = socket.socket()
        s.bind(("127.0.0.2", 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", PORT))
        return s

    def run(self):
        conn, buf = None, b""
        while self.running:
            t0 = time.time()
            try:
                if conn is None or self.fresh:
                    if conn:
                        conn.close()
                    conn, buf = self.connect(), b""
                conn.sendall(f"GET {self.path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        raise OSError("closed")
                    buf += chunk
                head, buf = buf.split(b"\r\n\r\n", 1)
                status = int(head.split()[1])
                length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1)) if re.search(rb"(?i)content-length", head) else 0
                while len(buf) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        raise OSError("closed mid-body")
                    buf += chunk
                buf = buf[length:]
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 200:
                    self.ok += 1
                    self.latencies.append((time.time() - t0) * 1000)
                else:
                    self.failed += 1
                if b"close" in head.lower():
                    conn.close()
                    conn = None
            except (OSError, ValueError, AttributeError):
                self.failed += 1
                self.statuses["error"] = self.statuses.get("error", 0) + 1
                if conn:
                    conn.close()
                conn = None
            time.sleep(max(0, self.every - (time.time() - t0)))
        if conn:
            conn.close()

    def report(self):
        lat = sorted(self.latencies) or [0]
        pct = lambda p: round(lat[min(len(lat) - 1, int(len(lat) * p))], 2)
        total = self.ok + self.failed
        return dict(requests=total, ok=self.ok, success_pct=round(100 * self.ok / max(total, 1), 2),
                    p50_ms=pct(0.5), p99_ms=pct(0.99), max_ms=round(lat[-1], 2), statuses=self.statuses)


def wrk(seconds, conns=64):
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{PORT}/"],
                         capture_output=True, text=True).stdout
    return int(re.search(r"(\d+) requests in", out).group(1)), out


def wrk_p99_ms(out):
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    if not m:
        return None
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def admin_metric(name):
    """The sum of a metric's samples from levee's /metrics (0 when absent)."""
    try:
        with socket.create_connection(("127.0.0.1", ADMIN), 2) as c:
            c.sendall(b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := c.recv(65536):
                data += chunk
    except OSError:
        return 0.0
    total = 0.0
    for line in data.decode(errors="replace").splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def phase_fleet(rounds=3, seconds=8):
    """CPU µs per request, req/s and p99 of levee with one rate-limit rule
    on the route, local against fleet-scoped (Redis on loopback), in
    alternating rounds of wrk; Redis commands per 1,000 requests. Three
    rules: local; fleet with a limit high enough that the one busy key
    leases slices of tokens (the usual hot-key case); fleet with a burst of
    100, so no lease: every request asks Redis, batched (the worst case)."""
    redis = subprocess.Popen(["redis-server", "--port", str(REDIS), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL, start_new_session=True)
    assert wait_port(REDIS)
    fleet = (f'[admin]\naddress = "127.0.0.1:{ADMIN}"\n'
             f'[fleet]\nname = "bench"\ninstance = "b"\nredis = "redis://127.0.0.1:{REDIS}"\n')
    rules = {
        "local": 'key = "client_ip"\nrate = "1000000/s"\nburst = 1000000\n',
        "fleet_leased": 'key = "client_ip"\nrate = "1000000/s"\nburst = 1000000\nscope = "fleet"\n',
        "fleet_every_request": 'key = "client_ip"\nrate = "200000/s"\nburst = 100\nscope = "fleet"\n',
    }
    res = {k: dict(cpu=[], rps=[], p99=[], redis_per_1000=[], redis_cpu=[], refused=[]) for k in rules}
    try:
        for _ in range(rounds):
            for name, rule in rules.items():
                p = levee(name, "", 'rate_limit = "api"', f"[rate_limit.api]\n{rule}{fleet}")
                assert wait_port(PORT) and wait_port(ADMIN), name
                time.sleep(1)
                wrk(1)
                c0, r0 = cpu_seconds(p.pid), cpu_seconds(redis.pid)
                m0 = admin_metric("levee_fleet_redis_commands_total")
                n, out = wrk(seconds)
                r = res[name]
                r["cpu"].append((cpu_seconds(p.pid) - c0) * 1e6 / max(n, 1))
                r["redis_cpu"].append((cpu_seconds(redis.pid) - r0) * 1e6 / max(n, 1))
                r["rps"].append(n / seconds)
                r["p99"].append(wrk_p99_ms(out))
                r["redis_per_1000"].append((admin_metric("levee_fleet_redis_commands_total") - m0) * 1000 / max(n, 1))
                r["refused"].append(admin_metric('levee_rate_limit_requests_total{rule="api",outcome="refused"}'))
                stop(p)
    finally:
        stop(redis)
    med = lambda v: round(sorted(x for x in v if x is not None)[len(v) // 2], 3) if v else None
    summary = {k: {m: med(v) for m, v in r.items()} for k, r in res.items()}
    base = summary["local"]
    for k in ("fleet_leased", "fleet_every_request"):
        summary[k]["cpu_vs_local_pct"] = round(100 * (summary[k]["cpu"] - base["cpu"]) / base["cpu"], 1)
        summary[k]["p99_added_ms"] = round(summary[k]["p99"] - base["p99"], 3)
    return dict(phase="fleet", rounds={k: {m: [round(x, 3) if x is not None else None for x in v]
                                            for m, v in r.items()} for k, r in res.items()},
                median=summary)


def phase_cpu(rounds=5, seconds=8):
    """CPU µs per request of levee without and with one rate-limit rule
    (client_ip, never refusing), in alternating rounds of wrk."""
    rule = '[rate_limit.api]\nkey = "client_ip"\nrate = "1000000/s"\nburst = 1000000\n'
    configs = {"no_rule": ("", ""), "one_rule": ('rate_limit = "api"', rule)}
    res = {k: [] for k in configs}
    for _ in range(rounds):
        for name, (route, tables) in configs.items():
            p = levee(name, "", route, tables)
            assert wait_port(PORT), name
            wrk(1)
            c0 = cpu_seconds(p.pid)
            n, _ = wrk(seconds)
            res[name].append((cpu_seconds(p.pid) - c0) * 1e6 / max(n, 1))
            stop(p)
    med = {k: round(sorted(v)[len(v) // 2], 2) for k, v in res.items()}
    return dict(phase="cpu", rounds={k: [round(x, 2) for x in v] for k, v in res.items()},
                median_cpu_us_per_req=med,
                overhead_pct=round(100 * (med["one_rule"] - med["no_rule"]) / med["no_rule"], 2))


def slowhttptest(mode_args, seconds):
    cmd = ["slowhttptest", "-c", "1000", "-r", "200", "-l", str(seconds), "-p", "3"] + mode_args
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    last = [l for l in out.splitlines() if "service available" in l]
    closed = re.findall(r"closed:\s+(\d+)", out)
    connected = re.findall(r"connected:\s+(\d+)", out)
    return " ".join(cmd), (last[-1].strip() if last else ""), out


def phase_slow(seconds=30):
    out = []
    modes = {
        "H (slowloris)": ["-H", "-i", "10", "-u", f"http://127.0.0.1:{PORT}/"],
        "B (slow body)": ["-B", "-i", "10", "-s", "8192", "-u", f"http://127.0.0.1:{PORT}/"],
        "X (slow read)": ["-X", "-k", "3", "-n", "1", "-w", "512", "-y", "1024", "-z", "32",
                          "-u", f"http://127.0.0.1:{PORT}/big.bin"],
    }
    for mode, args in modes.items():
        p = levee("slow")
        assert wait_port(PORT)
        client = NormalClient()
        client.start()
        peak = [0, 0]
        sampling = [True]
        fd_trace = []

        def sample():
            while sampling[0]:
                peak[0] = max(peak[0], rss_kb(p.pid))
                n = fds(p.pid)
                peak[1] = max(peak[1], n)
                fd_trace.append(n)
                time.sleep(0.5)
        threading.Thread(target=sample, daemon=True).start()
        t0 = time.time()
        cmd, status, text = slowhttptest(args, seconds)
        ran = round(time.time() - t0, 1)
        fds_at_end = fds(p.pid)
        client.running = False
        client.join()
        sampling[0] = False
        summary = [l.strip() for l in text.splitlines() if re.search(r"(closed|pending|connected|service available):", l)][-4:]
        summary = [re.sub(r"\x1b\[[0-9;]*m", "", l).replace("  ", " ") for l in summary]
        out.append(dict(phase="slow", mode=mode, command=cmd, slowhttptest_ran_s=ran,
                        slowhttptest_final=summary, normal_client=client.report(),
                        levee_peak_rss_mb=round(peak[0] / 1024, 1), levee_peak_fds=peak[1],
                        levee_fds_at_end=fds_at_end, levee_fds_every_5s=fd_trace[::10],
                        levee_alive=p.poll() is None))
        stop(p)
    return out


async def surge_open(n, seconds_to_open, hold):
    """Opens `n` connections within about `seconds_to_open`, sends a request
    on each, holds them `hold` seconds; counts what each got."""
    got = {"200": 0, "503": 0, "closed": 0, "connect_error": 0, "no_answer": 0}
    sem = asyncio.Semaphore(2000)

    async def one(i):
        await asyncio.sleep(seconds_to_open * i / n)
        try:
            async with sem:
                r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", PORT), 5)
        except Exception:
            got["connect_error"] += 1
            return
        try:
            w.write(b"GET / HTTP/1.1\r\nHost: surge\r\n\r\n")
            await w.drain()
            line = await asyncio.wait_for(r.readline(), 10)
            if not line:
                got["closed"] += 1
            elif b" 200 " in line:
                got["200"] += 1
                await asyncio.sleep(hold)
            elif b" 503 " in line:
                got["503"] += 1
            else:
                got["no_answer"] += 1
        except Exception:
            got["closed"] += 1
        finally:
            w.close()

    await asyncio.gather(*(one(i) for i in range(n)))
    return got


def phase_surge(n=15000, limit=5000):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    p = levee("surge", f"max_connections = {limit}")
    assert wait_port(PORT)
    client = NormalClient(every=0.05)
    client.start()
    time.sleep(1)
    rss_before = rss_kb(p.pid)
    peak = Peaks(p.pid, 0.2)
    peak.start()
    t0 = time.time()
    got = asyncio.run(surge_open(n, 3.0, hold=5))
    took = round(time.time() - t0, 1)
    time.sleep(2)
    peak.running = False
    client.running = False
    client.join()
    # After the surge: fresh connections are all served.
    after = NormalClient(every=0.01, fresh=True)
    after.start()
    time.sleep(3)
    after.running = False
    after.join()
    res = dict(phase="surge", connections=n, listener_limit=limit, opened_over_s=3.0, surge_took_s=took,
               surge_outcomes=got, steady_client_during=client.report(), fresh_clients_after=after.report(),
               levee_rss_mb=dict(before=round(rss_before / 1024, 1), peak=round(peak.rss_kb / 1024, 1),
                                 after=round(rss_kb(p.pid) / 1024, 1)),
               levee_peak_fds=peak.fds, levee_fds_after=fds(p.pid), levee_alive=p.poll() is None)
    stop(p)
    return res


class Prober(threading.Thread):
    """A normal client from 127.0.0.2, as curl would be: a fresh connection
    every `every` seconds, `GET /`, read to the close. Records each probe's
    start (s since `t0`), outcome and latency."""

    def __init__(self, t0, every=0.1, timeout=5):
        super().__init__(daemon=True)
        self.t0, self.every, self.timeout = t0, every, timeout
        self.running, self.probes = True, []

    def probe(self):
        s = socket.socket()
        s.bind(("127.0.0.2", 0))
        s.settimeout(self.timeout)
        try:
            s.connect(("127.0.0.1", PORT))
            s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data.startswith(b"HTTP/1.1 200") and data.endswith(b"hello world\n")
        except OSError:
            return False
        finally:
            s.close()

    def run(self):
        while self.running:
            start = time.time()
            ok = self.probe()
            self.probes.append((start - self.t0, ok, (time.time() - start) * 1000))
            time.sleep(max(0, self.every - (time.time() - start)))

    def report(self, seconds):
        lat = sorted(ms for _, ok, ms in self.probes if ok) or [0]
        pct = lambda p: round(lat[min(len(lat) - 1, int(len(lat) * p))], 2)
        served = {int(t) for t, ok, _ in self.probes if ok and t < seconds}
        failed = [round(t, 1) for t, ok, _ in self.probes if not ok]
        return dict(probes=len(self.probes), ok=sum(ok for _, ok, _ in self.probes), failed_at_s=failed,
                    seconds_with_a_success=f"{len(served)}/{seconds}", p50_ms=pct(0.5), p99_ms=pct(0.99),
                    max_ms=round(lat[-1], 2))


def silent_flood(n, stop, opened, closed, held):
    """One flooding process: keeps `n` connections from 127.0.0.1 open that
    never send a byte, and opens another at once for each that levee
    closes. Non-blocking connects and one epoll, so that the flood is not
    limited by the client's speed."""
    ep = select.epoll()
    socks = {}
    while not stop.is_set():
        while len(socks) < n:
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", PORT))
            except BlockingIOError:
                pass
            except OSError:
                s.close()
                break
            ep.register(s.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
            socks[s.fileno()] = s
            with opened.get_lock():
                opened.value += 1
        held[0] = len(socks)
        for fd, _ in ep.poll(0.05):
            ep.unregister(fd)
            socks.pop(fd).close()
            with closed.get_lock():
                closed.value += 1


class SilentFlood:
    """`n` silent connections, from `procs` processes (each has its own
    descriptor limit), until stopped."""

    def __init__(self, n, procs=2):
        import multiprocessing as mp
        self.stop_event = mp.Event()
        self.opened, self.closed = mp.Value("q", 0), mp.Value("q", 0)
        self.held = [mp.Array("q", 1) for _ in range(procs)]
        share = [n // procs + (i < n % procs) for i in range(procs)]
        self.procs = [mp.Process(target=silent_flood, daemon=True,
                                 args=(k, self.stop_event, self.opened, self.closed, h))
                      for k, h in zip(share, self.held)]

    def start(self):
        for p in self.procs:
            p.start()

    def stop(self):
        self.stop_event.set()
        for p in self.procs:
            p.join(20)

    def holding(self):
        return sum(h[0] for h in self.held)


def metrics(names):
    import urllib.request
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{ADMIN}/metrics", timeout=5).read().decode()
    except OSError:
        return {}
    return {n: int(float(m.group(1))) for n in names
            for m in [re.search(rf"^{n} (\S+)$", text, re.M)] if m}


def phase_silent(n=19950, seconds=30, nofile=20000):
    """Connections that never send a byte, `n` of them held open and reopened
    as levee closes them, against a descriptor limit of `nofile`; a normal
    client (a fresh connection every 100 ms, as curl) must be served in
    every second of `seconds`."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    n = min(n, hard - 40)
    p = levee("silent", tables=f"[admin]\naddress = \"127.0.0.1:{ADMIN}\"\n", nofile=nofile)
    assert wait_port(PORT)
    peak = Peaks(p.pid, 0.5)
    peak.start()
    flood = SilentFlood(n)
    t_flood = time.time()
    flood.start()
    # Until the flood holds what it wants (connections waiting in the listen
    # queue count), or 30 s.
    while time.time() - t_flood < 30 and flood.holding() < 0.99 * n:
        time.sleep(0.2)
    ramp = round(time.time() - t_flood, 1)
    names = ["levee_silent_shed_total", "levee_idle_shed_total", "levee_accept_exhausted_total"]
    m0 = metrics(names)
    opened0, closed0 = flood.opened.value, flood.closed.value
    prober = Prober(time.time())
    prober.start()
    time.sleep(seconds)
    prober.running = False
    prober.join()
    flood_run = dict(held_at_end=flood.holding(), opened=flood.opened.value - opened0,
                     closed_by_levee=flood.closed.value - closed0)
    flood_run["reopened_per_s"] = round(flood_run["closed_by_levee"] / seconds)
    m1 = metrics(names)
    flood.stop()
    peak.running = False
    res = dict(phase="silent", silent_connections=n, levee_nofile=nofile, ramp_s=ramp, seconds=seconds,
               normal_client=prober.report(seconds),
               flood_during_run=flood_run,
               levee_counters_during_run={k: m1.get(k, 0) - m0.get(k, 0) for k in m1},
               levee_peak_rss_mb=round(peak.rss_kb / 1024, 1), levee_peak_fds=peak.fds,
               levee_alive=p.poll() is None)
    stop(p)
    return res


def main():
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    if not os.path.exists(LEVEE):
        sys.exit("build first: cargo build --release -p levee")
    b = backend()
    try:
        assert wait_port(BACKEND)
        if which in ("cpu", "all"):
            print(json.dumps(phase_cpu()), flush=True)
        if which in ("slow", "all"):
            for r in phase_slow():
                print(json.dumps(r), flush=True)
        if which in ("surge", "all"):
            print(json.dumps(phase_surge()), flush=True)
        if which in ("silent", "all"):
            print(json.dumps(phase_silent()), flush=True)
        if which in ("fleet", "all"):
            rounds = int(sys.argv[2]) if which == "fleet" and len(sys.argv) > 2 else 3
            print(json.dumps(phase_fleet(rounds)), flush=True)
    finally:
        stop(b)
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
