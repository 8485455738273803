#!/usr/bin/env python3
"""TLS side by side with nginx on the same ECDSA P-256 certificate:

    python3 bench/tls.py [--binary target/release/levee] [--idle 10000] [--seconds 5]
                         [--parts handshake,h1,h2,idle] [--http2 'initial_stream_window = "16k"']

  - CPU per full TLS 1.3 handshake (`openssl s_time -new`, one connection at a time);
  - CPU per request over HTTP/1.1 + TLS with keep-alive (`wrk`, 16 connections);
  - CPU per request over HTTP/2 (`h2load -c 16 -m 8`: 16 connections, 8 streams each);
  - PSS growth per idle TLS keep-alive connection with N held (one request each),
    over HTTP/1.1 (`idle`) and over HTTP/2 (`idle-h2`: ALPN h2, one stream each).

Both serve a 12-byte answer themselves (nginx `return 200`, a levee `respond`
route), with 2 workers and the access log off. CPU is the server's user+system
time from /proc divided by the work done. `--http2` adds lines to levee's
`[http2]` table, to measure what a setting saves. Needs nginx, openssl, wrk, h2load
(nghttp2-client)."""
import argparse, asyncio, os, re, resource, ssl, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
from bench import hold  # noqa: E402

PORTS = {"nginx": 19281, "levee": 19282}


def cert():
    c, k = os.path.join(peers.TMP, "tls.pem"), os.path.join(peers.TMP, "tls.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", k, "-out", c, "-days", "2", "-subj", "/CN=localhost"],
                   capture_output=True, check=True)
    return c, k


def start_nginx(c, k):
    return peers.nginx("tls-nginx", f"""server {{ listen 127.0.0.1:{PORTS['nginx']} ssl http2 backlog=4096;
    ssl_certificate {c}; ssl_certificate_key {k}; ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    location / {{ return 200 "hello world\\n"; }} }}""", 2)


def start_levee(binary, c, k, http2=""):
    conf = os.path.join(peers.TMP, "levee-tls.toml")
    with open(conf, "w") as f:
        f.write(f"""workers = 2
[log]
access = "off"
[timeouts]
keepalive = "600s"
[limits]
max_requests_per_connection = 0
[[listener]]
address = "127.0.0.1:{PORTS['levee']}"
[listener.tls]
alpn = ["h2", "http/1.1"]
[[listener.tls.certs]]
cert = "{c}"
key = "{k}"
[[route]]
respond = "hello world\\n"
[http2]
{http2}
""")
    return peers.spawn([binary, "run", "-c", conf])


def handshakes(proc, port, seconds):
    c0 = peers.cpu_seconds(proc.pid)
    out = subprocess.run(["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-time", str(seconds)],
                         capture_output=True, text=True).stdout
    m = re.search(r"(\d+) connections in ([\d.]+)s", out)
    n = int(m.group(1)) if m else 0
    return n / seconds, (peers.cpu_seconds(proc.pid) - c0) * 1e6 / max(n, 1)


def requests(proc, port, seconds):
    c0 = peers.cpu_seconds(proc.pid)
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", f"https://127.0.0.1:{port}/"],
                         capture_output=True, text=True).stdout
    n = int(re.search(r"(\d+) requests in", out).group(1))
    return n / seconds, (peers.cpu_seconds(proc.pid) - c0) * 1e6 / max(n, 1)


def h2(proc, port, seconds):
    return peers.h2load(proc.pid, f"https://127.0.0.1:{port}/", seconds)


async def idle(proc, port, n, h2=False):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if h2:
        ctx.set_alpn_protocols(["h2"])
    hold_n = (lambda p, k, c: hold_h2(p, k, c)) if h2 else hold
    warm, _ = await hold_n(port, 4, ctx)
    for _, w in warm:
        w.close()
    await asyncio.sleep(1.5)
    before = peers.pss_kb(proc.pid)
    held, failed = await hold_n(port, n, ctx)
    await asyncio.sleep(1.0)
    after = peers.pss_kb(proc.pid)
    await asyncio.sleep(2.0)
    alive = sum(not r.at_eof() for r, _ in held)
    for _, w in held:
        w.transport.abort()
    return dict(held=len(held), failed=failed, alive=alive, kb=(after - before) / max(len(held), 1))


# One HTTP/2 GET: the preface, empty SETTINGS, and HEADERS (END_STREAM |
# END_HEADERS) on stream 1 with :method GET, :scheme https, :path / (static
# table 2, 7, 4) and :authority "localhost" (name from static entry 1).
H2_GET = (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
          + b"\x00\x00\x0e\x01\x05\x00\x00\x00\x01" + b"\x82\x87\x84\x41\x09localhost")


async def hold_h2(port, n, ctx):
    """Like bench.hold over HTTP/2: `n` connections, one answered stream each."""
    async def one(held, gate):
        async with gate:
            r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost")
            w.write(H2_GET)
            await w.drain()
            buf = b""
            while True:  # until a frame on stream 1 with END_STREAM
                while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
                    size, flags, sid = int.from_bytes(buf[:3], "big"), buf[4], int.from_bytes(buf[5:9], "big")
                    if sid == 1 and flags & 1:
                        held.append((r, w))
                        return
                    buf = buf[9 + size:]
                chunk = await r.read(16384)
                if not chunk:
                    raise ConnectionError("closed before the response")
                buf += chunk
    held, gate = [], asyncio.Semaphore(500)
    results = await asyncio.gather(*(one(held, gate) for _ in range(n)), return_exceptions=True)
    return held, sum(isinstance(x, Exception) for x in results)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/release/levee")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--parts", default="handshake,h1,h2,idle")
    ap.add_argument("--http2", default="", help="lines for levee's [http2] table")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    c, k = cert()
    results = {}
    for name, starter in (("nginx", lambda: start_nginx(c, k)), ("levee", lambda: start_levee(a.binary, c, k, a.http2.replace(";", "\n")))):
        proc = starter()
        try:
            if not peers.wait_port(PORTS[name]):
                sys.exit(f"{name} is not listening")
            time.sleep(0.5)
            parts, none = a.parts.split(","), (float("nan"), float("nan"))
            hs = handshakes(proc, PORTS[name], a.seconds) if "handshake" in parts else none
            rq = requests(proc, PORTS[name], a.seconds) if "h1" in parts else none
            r2 = h2(proc, PORTS[name], a.seconds) if "h2" in parts else none
            idl = asyncio.run(idle(proc, PORTS[name], a.idle)) if a.idle and "idle" in parts else {}
            if a.idle and "idle-h2" in parts:
                idl = asyncio.run(idle(proc, PORTS[name], a.idle, h2=True))
            results[name] = (hs, rq, r2, idl)
        finally:
            peers.stop([proc])
    print(f"{'':6} {'handshakes/s':>12} {'us/handshake':>12} {'h1+TLS req/s':>12} {'us/req':>7}"
          f" {'h2 req/s':>9} {'us/req':>7} {'idle KB/conn':>12} {'held':>6} {'alive':>6}")
    for name, ((hps, hcpu), (rps, rcpu), (r2, c2), i) in results.items():
        print(f"{name:6} {hps:12.0f} {hcpu:12.1f} {rps:12.0f} {rcpu:7.2f} {r2:9.0f} {c2:7.2f}"
              f" {i.get('kb', float('nan')):12.2f} {i.get('held', 0):6} {i.get('alive', 0):6}")
    peers.cleanup()


main()
