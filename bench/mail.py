#!/usr/bin/env python3
"""IMAP front ends side by side: logins/s, memory per logged-in idle session,
and CPU per FETCH.

nginx's mail proxy (Debian libnginx-mod-mail, 2 workers) and levee (2 workers,
`cargo build --release` first) each stand in front of one minimal IMAP
backend, asking one auth_http service that accepts every login. For each
proxy: N clients connect and LOGIN (200 at a time), then all N sessions are
held idle; the figures are logins per second (bound by this client), the
proxy's CPU time per login, and the growth of the proxy's
process-tree PSS (/proc/PID/smaps_rollup) per held session. Then 32
logged-in clients FETCH a 4 KB message in a loop for --seconds; the figure
is the proxy's user+system CPU time per FETCH.

    python3 bench/mail.py -n 9000
    python3 bench/mail.py -n 9000 --tls --proxies levee   # IMAPS (implicit TLS)

Adapted from the reference benchmark in shared/bench/mail (peers_mail.py,
fake_imap.py, auth_ok.py, idle_imap.py). The backend and auth service run
here as subprocesses of this script (`mail.py backend PORT`, `mail.py auth
PORT BACKEND`); the proxies get a 20,000-descriptor limit."""
import argparse, asyncio, os, ssl, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import TMP, _write, spawn, wait_port, pss_kb, cpu_seconds, stop

AUTH, BACKEND = 19390, 19392
PORTS = {"nginx": 19391, "levee": 19394}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What every FETCH returns: a 4 KB message, the size of a typical small mail.
MESSAGE = b"x" * 4094 + b"\r\n"
# With --tls: the clients' context (the bench certificate is self-signed).
CLIENT_TLS = None


def bench_cert():
    """A self-signed P-256 certificate for --tls: (cert, key) paths."""
    d = os.path.join(TMP, "mail-tls")
    os.makedirs(d, exist_ok=True)
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=bench",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


def client_tls():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


async def backend_session(r, w):
    w.write(b"* OK [CAPABILITY IMAP4rev1 LITERAL+ IDLE] bench backend\r\n")
    try:
        while True:
            line = await r.readline()
            if not line:
                break
            # nginx logs in with literals: `{n}` wants a continuation, `{n+}` not.
            tail = line.rstrip()
            while tail.endswith(b"}") and b"{" in tail:
                spec = tail[tail.rindex(b"{") + 1:-1]
                if not spec.endswith(b"+"):
                    w.write(b"+ go\r\n")
                    await w.drain()
                await r.readexactly(int(spec.rstrip(b"+")))
                tail = (await r.readline()).rstrip()
            parts = line.split(b" ", 2)
            tag, cmd = parts[0], (parts[1].strip().upper() if len(parts) > 1 else b"")
            if cmd == b"LOGIN":
                w.write(tag + b" OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n")
            elif cmd == b"FETCH":
                w.write(b"* 1 FETCH (BODY[] {%d}\r\n" % len(MESSAGE) + MESSAGE + b")\r\n" + tag + b" OK done\r\n")
            elif cmd == b"LOGOUT":
                w.write(b"* BYE\r\n" + tag + b" OK bye\r\n")
                await w.drain()
                break
            else:
                w.write(tag + b" OK done\r\n")
            await w.drain()
    except ConnectionError:
        pass
    w.close()


async def auth_session(r, w, backend):
    # HTTP/1.0, one request per connection, as nginx asks.
    try:
        while (await r.readline()) not in (b"\r\n", b""):
            pass
        w.write(b"HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 127.0.0.1\r\n"
                b"Auth-Port: %d\r\n\r\n" % backend)
        await w.drain()
    except ConnectionError:
        pass
    w.close()


async def serve(port, handler):
    srv = await asyncio.start_server(handler, "127.0.0.1", port, backlog=4096)
    async with srv:
        await srv.serve_forever()


async def login(port, i, held, gate, errors):
    async with gate:
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port, ssl=CLIENT_TLS)
            await asyncio.wait_for(r.readline(), 10)
            w.write(b"a1 LOGIN user%d secret\r\n" % i)
            await w.drain()
            while True:
                line = await asyncio.wait_for(r.readline(), 10)
                if not line:
                    raise ConnectionError("closed")
                if line.startswith(b"a1 "):
                    if not line.startswith(b"a1 OK"):
                        raise ConnectionError(line)
                    break
            held.append((r, w))
        except Exception as e:
            errors.append(repr(e)[:80])


async def idle(pid, port, n):
    warm, errors = [], []
    await login(port, 0, warm, asyncio.Semaphore(1), errors)
    for _, w in warm:
        w.close()
    await asyncio.sleep(1.5)
    before = pss_kb(pid)
    held, gate = [], asyncio.Semaphore(200)
    t0, cpu0 = time.time(), cpu_seconds(pid)
    await asyncio.gather(*(login(port, i, held, gate, errors) for i in range(n)))
    elapsed, cpu = time.time() - t0, cpu_seconds(pid) - cpu0
    await asyncio.sleep(1.5)
    after = pss_kb(pid)
    # logins/s is bound by this one-process client for both proxies; the
    # proxy's CPU per login is what tells them apart.
    result = (f"sessions={len(held)} failed={len(errors)} logins_per_s={len(held) / elapsed:.0f} "
              f"cpu_us_per_login={cpu * 1e6 / max(len(held), 1):.1f} "
              f"pss_before_mb={before / 1024:.1f} pss_after_mb={after / 1024:.1f} "
              f"kb_per_session={(after - before) / max(len(held), 1):.2f} {errors[:2]}")
    for _, w in held:
        w.close()
    return result


async def fetch_loop(port, i, seconds, counts):
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=CLIENT_TLS)
    await r.readline()
    w.write(b"a1 LOGIN user%d secret\r\n" % i)
    await w.drain()
    while not (await r.readline()).startswith(b"a1 "):
        pass
    end = time.time() + seconds
    while time.time() < end:
        w.write(b"f FETCH 1 BODY[]\r\n")
        await w.drain()
        while not (await r.readline()).startswith(b"f OK"):
            pass
        counts[0] += 1
    w.close()


async def fetches(pid, port, sessions, seconds):
    """`sessions` logged-in clients FETCH a 4 KB message in a loop; the
    proxy's CPU time over the run per FETCH."""
    counts = [0]
    cpu0 = cpu_seconds(pid)
    t0 = time.time()
    await asyncio.gather(*(fetch_loop(port, i, seconds, counts) for i in range(sessions)))
    elapsed = time.time() - t0
    cpu = cpu_seconds(pid) - cpu0
    return (f"fetches={counts[0]} fetches_per_s={counts[0] / elapsed:.0f} "
            f"cpu_us_per_fetch={cpu * 1e6 / max(counts[0], 1):.1f}")


def nginx_mail(tls):
    d = os.path.join(TMP, "nginx-mail")
    os.makedirs(d, exist_ok=True)
    conf = _write(os.path.join(d, "nginx.conf"), f"""
load_module /usr/lib/nginx/modules/ngx_mail_module.so;
worker_processes 2; pid {d}/nginx.pid; error_log {d}/error.log warn; daemon off; worker_rlimit_nofile 20000;
events {{ worker_connections 19000; }}
mail {{ auth_http 127.0.0.1:{AUTH}/auth; imap_auth login plain;
  server {{ listen 127.0.0.1:{PORTS['nginx']}{' ssl' if tls else ''}; protocol imap;
{f'ssl_certificate {tls[0]}; ssl_certificate_key {tls[1]};' if tls else ''} }} }}
""")
    return spawn(["nginx", "-c", conf])


def levee_mail(binary, tls):
    d = os.path.join(TMP, "levee-mail")
    os.makedirs(d, exist_ok=True)
    conf = _write(os.path.join(d, "levee.toml"), f"""
workers = 2
[log]
access = "off"
level = "warn"
[[listener]]
address = "127.0.0.1:{PORTS['levee']}"
protocol = "imap"
{f'[[listener.tls.certs]]{chr(10)}cert = "{tls[0]}"{chr(10)}key = "{tls[1]}"' if tls else ''}
[listener.mail]
auth_http = "http://127.0.0.1:{AUTH}/auth"
""")
    return spawn(["sh", "-c", f"ulimit -n 20000 && exec {binary} run -c {conf}"])


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "backend":
        asyncio.run(serve(int(sys.argv[2]), backend_session))
        return
    if len(sys.argv) > 3 and sys.argv[1] == "auth":
        b = int(sys.argv[3])
        asyncio.run(serve(int(sys.argv[2]), lambda r, w: auth_session(r, w, b)))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=9000)
    ap.add_argument("--levee", default=os.path.join(ROOT, "target/release/levee"))
    ap.add_argument("--seconds", type=int, default=10, help="length of the FETCH phase")
    ap.add_argument("--tls", action="store_true", help="clients speak implicit TLS (IMAPS) to the proxies")
    ap.add_argument("--proxies", default="nginx,levee", help="which proxies to run, comma-separated")
    a = ap.parse_args()
    global CLIENT_TLS
    tls = bench_cert() if a.tls else None
    CLIENT_TLS = client_tls() if a.tls else None
    me = os.path.abspath(__file__)
    helpers = [spawn(["sh", "-c", f"ulimit -n 20000 && exec {sys.executable} {me} backend {BACKEND}"]),
               spawn([sys.executable, me, "auth", str(AUTH), str(BACKEND)])]
    try:
        wait_port(BACKEND)
        wait_port(AUTH)
        starters = (("nginx", lambda: nginx_mail(tls)), ("levee", lambda: levee_mail(a.levee, tls)))
        for name, starter in starters:
            if name not in a.proxies.split(","):
                continue
            p = starter()
            if not wait_port(PORTS[name]):
                print(f"{name:6} not listening on {PORTS[name]}")
                stop([p])
                continue
            print(f"{name:6} {asyncio.run(idle(p.pid, PORTS[name], a.n))}", flush=True)
            time.sleep(1)
            print(f"{name:6} {asyncio.run(fetches(p.pid, PORTS[name], 32, a.seconds))}", flush=True)
            stop([p])
            time.sleep(1)
    finally:
        stop(helpers)


if __name__ == "__main__":
    main()
