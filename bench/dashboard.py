#!/usr/bin/env python3
"""What an open dashboard costs the data plane (issue 16: within 2 %).

    python3 bench/dashboard.py [--binary target/release/levee] [--seconds 8] [--rounds 5]

One levee (a config file: a listener proxying to the bench's nginx app
server, and an admin listener) is measured with wrk in alternating rounds:
with no browser, then with headless Chromium (Debian's, driven by
Playwright) keeping the dashboard open on its live view (the event stream,
the charts redrawn every second). CPU per proxied request is levee's own
CPU (from /proc, the whole process, so the sampler and the event stream
count) over the requests wrk completed. Chromium runs on the same machine,
so it competes for CPU with wrk and levee alike: requests/s may drop, CPU
per request should not. Quote the ratio of medians; absolute numbers drift
on a shared machine."""
import argparse, os, resource, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
import peers
from bench import wrk

ADMIN = 19189
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def levee(binary):
    config = os.path.join(peers.TMP, "dashboard.toml")
    with open(config, "w") as f:
        f.write(f"""
[log]
access = "off"

[[listener]]
address = "127.0.0.1:{peers.PORTS['levee']}"

[[route]]
proxy = "app"

[upstream.app]
servers = ["127.0.0.1:{peers.BACKEND}"]

[admin]
address = "127.0.0.1:{ADMIN}"
""")
    return peers.spawn([binary, "run", "-c", config])


def measure(proc, seconds):
    wrk(peers.PORTS["levee"], 1)
    c0 = peers.cpu_seconds(proc.pid)
    r = wrk(peers.PORTS["levee"], seconds)
    r["cpu"] = (peers.cpu_seconds(proc.pid) - c0) * 1e6 / max(r["requests"], 1)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/release/levee")
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))
    from playwright.sync_api import sync_playwright
    backend = peers.backend()
    proc = levee(os.path.abspath(a.binary))
    runs = {"closed": [], "open": []}
    try:
        for port in (peers.BACKEND, peers.PORTS["levee"], ADMIN):
            if not peers.wait_port(port):
                sys.exit(f"port {port} is not listening")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            for _ in range(a.rounds):
                runs["closed"].append(measure(proc, a.seconds))
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(f"http://127.0.0.1:{ADMIN}/#overview")
                page.wait_for_selector("#live-state.live", timeout=30_000)
                runs["open"].append(measure(proc, a.seconds))
                live = page.text_content("#live-state")
                page.close()
                if "live" not in (live or ""):
                    sys.exit("the dashboard stopped being live during the run")
            browser.close()
    finally:
        peers.stop([proc, backend])
        peers.cleanup()
    med = lambda rs, k: sorted(x[k] for x in rs)[len(rs) // 2]
    print(f"{'dashboard':9} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'cpu us/req':>10}")
    for name, rs in runs.items():
        print(f"{name:9} {med(rs, 'rps'):>9.0f} {med(rs, 'p50'):>7.2f} {med(rs, 'p99'):>7.2f} {med(rs, 'cpu'):>10.2f}")
    ratio = med(runs["open"], "cpu") / med(runs["closed"], "cpu")
    print(f"cpu per request, open/closed: {ratio:.3f} ({(ratio - 1) * 100:+.1f} %; the issue allows +2 %)")


if __name__ == "__main__":
    main()
