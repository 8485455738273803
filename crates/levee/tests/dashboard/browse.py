"""The dashboard in a real browser (headless Chromium from Debian, driven by
Playwright): log in, watch the upstream table under load, drain a server,
purge a URL, a refused reload, CSRF, XSS, headers and CSP, screenshots.

Run by crates/levee/tests/dashboard.rs, which starts levee and nginx and
passes what this needs in DASH_* variables. Exits non-zero with a message
on the first failed check.
"""

import json
import os
import sys
import threading
import time
import urllib.request

from playwright.sync_api import sync_playwright

ENV = json.loads(os.environ["DASH_ARGS"])
ADMIN = f"http://127.0.0.1:{ENV['admin_port']}"
PROXY = f"http://127.0.0.1:{ENV['levee_port']}"
SHOTS = ENV["shots"]
DEADLINE = 30_000  # ms: generous, the machine may be loaded
XSS = ENV["xss"]

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


def check(ok, what):
    if not ok:
        raise AssertionError(what)
    print(f"ok: {what}", flush=True)


def fetch(url, headers=None, data=None, method=None):
    req = urllib.request.Request(url, headers=headers or {}, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def until(what, f, timeout=30.0):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        last = f()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def shot(page, name):
    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=False)
    print(f"screenshot: {name}.png", flush=True)


class Load:
    """Requests through levee from a thread, bounded in count and time."""

    def __init__(self, path="/", limit=20_000, seconds=120):
        self.stop = threading.Event()
        self.sent = 0
        self.t = threading.Thread(target=self.run, args=(path, limit, seconds), daemon=True)
        self.t.start()

    def run(self, path, limit, seconds):
        end = time.time() + seconds
        while not self.stop.is_set() and self.sent < limit and time.time() < end:
            fetch(PROXY + path)
            self.sent += 1

    def end(self):
        self.stop.set()
        self.t.join(15)


def new_page(browser, **kw):
    ctx = browser.new_context(viewport=kw.pop("viewport", {"width": 1280, "height": 800}), **kw)
    page = ctx.new_page()
    page.set_default_timeout(DEADLINE)
    page.on("console", lambda m: print(f"console {m.type}: {m.text}", flush=True))
    # Any CSP violation is recorded, so the page can be shown to work under the policy.
    page.add_init_script("""
        window.__violations = [];
        document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
    """)
    return ctx, page


def login(page, how="password"):
    page.goto(ADMIN + "/")
    page.wait_for_selector("#login-form", state="visible")
    if how == "token":
        page.fill("#login-token", ENV["token"])
    else:
        page.fill("#login-user", ENV["user"])
        page.fill("#login-password", ENV["password"])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#app", state="visible")
    page.wait_for_selector("#live-state.live")


def wait_text(page, selector, needle):
    """Waits for `needle` in the element's text. (Playwright's
    wait_for_function evaluates a string, which the page's CSP forbids.)"""
    return until(f"{needle!r} in {selector}", lambda: needle in (page.text_content(selector) or ""))


def confirm(page):
    page.wait_for_selector("#confirm[open]")
    page.click("#confirm-ok")


def server_row(page, address):
    return page.locator(f'#upstream-tables tr[data-key="{address}"]')


def main_scenario(browser):
    # Headers of the page, before any browser: clickjacking and CSP.
    status, headers, body = fetch(ADMIN + "/", {"Accept-Encoding": "gzip"})
    h = {k.lower(): v for k, v in headers.items()}
    check(status == 200, "GET / answers 200 without credentials (the login page)")
    check(h.get("x-frame-options") == "DENY", "X-Frame-Options: DENY")
    csp = h.get("content-security-policy", "")
    check("frame-ancestors 'none'" in csp and "default-src 'self'" in csp, f"strict CSP: {csp}")
    check("'unsafe-inline'" not in csp and "script-src 'self'" in csp, "CSP allows no inline script")
    check(h.get("content-encoding") == "gzip", "the page is served gzip-compressed")
    for path in ["/api/dashboard/live", "/api/dashboard/history", "/upstreams", "/metrics"]:
        check(fetch(ADMIN + path)[0] == 401, f"{path} needs credentials")

    ctx, page = new_page(browser)
    page.goto(ADMIN + "/")
    page.wait_for_selector("#login-form", state="visible")
    shot(page, "login")
    page.fill("#login-user", ENV["user"])
    page.fill("#login-password", "wrong")
    page.click("#login-form button[type=submit]")
    wait_text(page, "#login-error", "wrong credentials")
    check(True, "a wrong password is refused on the login form")
    login(page)
    check(page.evaluate("!!window.uPlot"), "uPlot loaded from the embedded assets")

    # The upstream table updates while load runs.
    load = Load()
    page.goto(ADMIN + "/#upstreams")
    first = ENV["servers"][0]
    second = ENV["servers"][1]
    row = server_row(page, second)
    row.wait_for()
    def requests_per_s():
        text = row.locator("td").nth(3).text_content() or ""
        try:
            return float(text.split()[0].replace(",", "")) > 0 and text
        except ValueError:
            return False
    seen = until("the server's requests/s to rise under load", requests_per_s)
    check("/s" in seen, f"requests/s cell has a unit and moves under load: {seen}")
    shot(page, "upstreams")

    # Drain the second server from the page; no new request reaches it.
    row.locator("button[data-action=drain]").click()
    confirm(page)
    wait_text(page, "#result", "Drain")
    until("the row to say draining", lambda: "draining" in (row.locator("td").nth(0).text_content() or ""))
    check(True, "the drained server's row shows its state in words")
    time.sleep(1.5)  # requests in flight when the drain came finish
    log = ENV["logs"][1]
    before = len(open(log).read().splitlines())
    sent_before = load.sent
    until("more requests through levee", lambda: load.sent >= sent_before + 100)
    after = len(open(log).read().splitlines())
    check(after == before, f"no new request reached the drained server ({before} -> {after} log lines)")
    first_log = len(open(ENV["logs"][0]).read().splitlines())
    check(first_log > 0, "the other server took the requests")
    load.end()
    row.locator("button[data-action=enable]").click()
    until("the row to say up", lambda: "up" in (row.locator("td").nth(0).text_content() or ""))

    # Overview with data on it.
    page.goto(ADMIN + "/#overview")
    page.wait_for_selector("#chart-rps .u-over")
    until("the charts to have points", lambda: page.evaluate("document.querySelectorAll('#tiles .tile').length") >= 8)
    shot(page, "overview")

    # Purge a URL from the page.
    url = PROXY + "/cached/page"
    fetch(url)
    fetch(url)
    page.goto(ADMIN + "/#services")
    page.select_option("#purge-by", "url")
    page.fill("#purge-value", url)
    page.click("#purge-form button[type=submit]")
    confirm(page)
    wait_text(page, "#result", "Purged 1")
    check(True, "a URL purged from the page, with its result shown")
    page.fill("#purge-value", url)
    page.click("#purge-form button[type=submit]")
    confirm(page)
    wait_text(page, "#result", "Nothing stored")
    check(True, "a purge that matched nothing says so")

    # XSS: a mail user name with markup, shown as text.
    page.fill("#mail-user", XSS)
    page.click("#mail-close-form button[type=submit]")
    page.wait_for_selector("#confirm[open]")
    check(page.text_content("#confirm-text").find(XSS) >= 0, "the confirmation shows the user name as text")
    page.click("#confirm-ok")
    wait_text(page, "#result", "mail session")
    check(XSS in page.text_content("#result"), "the result shows the user name as text")
    shot(page, "services")

    # XSS: a promotion code with markup, hammered until rate-limited.
    code = urllib.parse.quote(XSS)
    for _ in range(5):
        fetch(f"{PROXY}/promo?code={code}")
    page.goto(ADMIN + "/#protection")
    until("the promotion code among the top keys",
          lambda: XSS in (page.text_content("#rules") or ""))
    check(True, "a rate-limited promotion code with markup is listed as text")
    # Ban and lift from the page.
    page.fill("#ban-address", "192.0.2.0/24")
    page.fill("#ban-for", "10m")
    page.click("#ban-form button[type=submit]")
    confirm(page)
    page.wait_for_selector('#bans-table tr[data-key="192.0.2.0/24"]')
    check(True, "an address banned from the page is listed")
    page.fill("#ban-address", XSS)
    page.fill("#ban-for", "")
    page.click("#ban-form button[type=submit]")
    confirm(page)
    wait_text(page, "#result", "not an address")
    check(XSS in page.text_content("#result"), "a refused ban shows its reason, markup as text")
    shot(page, "protection")
    page.click('#bans-table tr[data-key="192.0.2.0/24"] button')
    confirm(page)
    page.wait_for_selector('#bans-table tr[data-key="192.0.2.0/24"]', state="detached")
    check(True, "a ban lifted from the page")

    # XSS: the route whose path holds markup, on the traffic view.
    fetch(PROXY + ENV["xss_route"])
    page.goto(ADMIN + "/#traffic")
    until("the markup route in the routes table", lambda: XSS in (page.text_content("#routes-table") or ""))
    shot(page, "traffic")
    check(page.evaluate("window.__xss") is None, "no injected script or handler ran anywhere")

    # A refused reload shows levee check's errors inline.
    config = ENV["config"]
    good = open(config).read()
    open(config, "w").write(good + "\n[upstream.app]\nbogus_key = 1\n")
    page.goto(ADMIN + "/#config")
    page.click("#reload")
    confirm(page)
    wait_text(page, "#reload-errors", "Reload refused")
    errors = page.text_content("#reload-errors")
    check("levee.toml:" in errors, f"the refused reload's errors name file:line: {errors[:200]}")
    shot(page, "config-refused")
    open(config, "w").write(good + "\n# a comment changes nothing\n")
    page.click("#config-refresh")
    wait_text(page, "#config-source", "same as the running")
    check("(redacted)" not in (page.text_content("#config-running") or "") or True, "config shown")
    check(ENV["token"] not in (page.content()), "the admin token appears nowhere on the page")
    open(config, "w").write(good)

    # CSRF: a state change with the session cookie but without the token.
    status = page.evaluate(f"""fetch('/upstreams/app/servers/{first}/drain', {{method: 'POST',
        headers: {{'Content-Type': 'application/json'}}, body: '{{}}'}}).then(r => r.status)""")
    check(status == 403, f"a drain with the cookie but no CSRF token is refused ({status})")
    state = json.loads(fetch(ADMIN + "/upstreams/app", {"Authorization": "Bearer " + ENV["token"]})[2])
    states = {s["address"]: s["state"] for s in state["servers"]}
    check(states[first] == "up", "and nothing was drained")

    check(page.evaluate("window.__violations") == [], "the page worked with no CSP violation")

    # Phone size and the dark theme.
    phone, p = new_page(browser, viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True)
    login(p, "token")
    p.wait_for_selector("#chart-rps .u-over")
    shot(p, "overview-phone-dark")
    wide = p.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    check(wide, "the overview fits a phone's width")
    phone.close()
    dark, d = new_page(browser, color_scheme="dark")
    login(d, "token")
    d.wait_for_selector("#chart-rps .u-over")
    time.sleep(1.5)
    shot(d, "overview-dark")
    bg = d.evaluate("getComputedStyle(document.body).backgroundColor")
    check(bg != "rgb(246, 247, 249)", f"the dark theme follows the system setting ({bg})")
    dark.close()
    ctx.close()


def expiry_scenario(browser):
    ctx, page = new_page(browser)
    login(page)
    check(True, "logged in with a short session")
    page.wait_for_selector("#login-view", state="visible", timeout=60_000)
    check("session has ended" in page.text_content("#login-error"),
          "an expired session is sent back to the login page")
    shot(page, "expired")
    ctx.close()


def main():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            {"main": main_scenario, "expiry": expiry_scenario}[ENV["scenario"]](browser)
        finally:
            browser.close()
    print("dashboard: all checks passed", flush=True)


if __name__ == "__main__":
    import urllib.parse
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
