"""Start and measure the peers levee is compared with: an nginx app server,
nginx and HAProxy as reverse proxies, and levee itself. Read CPU time and
proportional set size (PSS) of a process tree from /proc."""
import os, re, shutil, signal, socket, subprocess, tempfile, time

TMP = tempfile.mkdtemp(prefix="levee-bench-")
BACKEND = 19180
PORTS = {"nginx": 19181, "haproxy": 19182, "levee": 19183, "baseline": 19184}


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def spawn(cmd):
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def nginx(name, http_body, workers):
    d = os.path.join(TMP, name)
    os.makedirs(d, exist_ok=True)
    conf = _write(os.path.join(d, "nginx.conf"), f"""
worker_processes {workers};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
daemon off;
worker_rlimit_nofile 19000;
events {{ worker_connections 18000; }}
http {{
  access_log off;
  keepalive_timeout 600s;
  keepalive_requests 1000000;
  {http_body}
}}
""")
    return spawn(["nginx", "-c", conf])


def backend():
    """One nginx worker answering every request with a 12-byte body."""
    return nginx("backend", f'server {{ listen 127.0.0.1:{BACKEND} backlog=4096; '
                            f'location / {{ return 200 "hello world\\n"; }} }}', 1)


def nginx_proxy():
    return nginx("nginx", f"""upstream app {{ server 127.0.0.1:{BACKEND}; keepalive 128; }}
  server {{ listen 127.0.0.1:{PORTS['nginx']} backlog=4096;
    location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }} }}""", 2)


def haproxy():
    cfg = _write(os.path.join(TMP, "haproxy.cfg"), f"""
global
  nbthread 2
  maxconn 9500
defaults
  mode http
  timeout connect 5s
  timeout client 600s
  timeout server 60s
  timeout http-keep-alive 600s
  http-reuse always
frontend fe
  bind 127.0.0.1:{PORTS['haproxy']}
  default_backend be
backend be
  server s1 127.0.0.1:{BACKEND}
""")
    return spawn(["haproxy", "-f", cfg])


def levee(binary, name="levee"):
    """levee's `proxy` mode on PORTS[name] (`baseline`: an earlier build, for A/B runs)."""
    return spawn([binary, "proxy", "--listen", f"127.0.0.1:{PORTS[name]}",
                  "--to", f"127.0.0.1:{BACKEND}"])


STARTERS = {"nginx": nginx_proxy, "haproxy": haproxy}


def wait_port(port, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def tree(root):
    pids, changed = {root}, True
    while changed:
        changed = False
        for p in os.listdir("/proc"):
            if p.isdigit() and int(p) not in pids:
                try:
                    ppid = int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if ppid in pids:
                    pids.add(int(p))
                    changed = True
    return pids


def cpu_seconds(root):
    ticks = 0
    for p in tree(root):
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            ticks += int(f[11]) + int(f[12])
        except (OSError, IndexError, ValueError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def h2load(root, url, seconds):
    """`h2load -c 16 -m 8` (16 connections, 8 streams each) against `url` for
    `seconds`: requests/s and CPU µs per request of the process tree `root`.
    Exits when a request failed or was not answered 2xx."""
    c0 = cpu_seconds(root)
    out = subprocess.run(["h2load", "-c", "16", "-m", "8", "-D", str(seconds), url],
                         capture_output=True, text=True).stdout
    m = re.search(r"(\d+) succeeded, (\d+) failed, (\d+) errored", out)
    codes = re.search(r"status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    done = int(m.group(1)) if m else 0
    if not m or not codes or done == 0 or int(m.group(2)) or int(m.group(3)) \
            or any(int(x) for x in codes.groups()):
        raise SystemExit(f"{url}: not every request succeeded:\n{out}")
    return done / seconds, (cpu_seconds(root) - c0) * 1e6 / done


def pss_kb(root):
    total = 0
    for p in tree(root):
        try:
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def stop(procs):
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except OSError:
            pass
    time.sleep(0.3)
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass


def cleanup():
    shutil.rmtree(TMP, ignore_errors=True)
