"""An IMAP conformance run: scripted sessions, driven by raw sockets and by
Python's imaplib, that the Rust test (mail_conformance.rs) runs once
directly against Dovecot and once through levee, then compares.

Usage: conformance.py SCENARIO PORT DOVECOT_PORT

Prints the session's transcript, one line each: `C: …` what the client
sent, `S: …` what the server answered (literal data summarised as its size
and SHA-256 when long), `state: …` the IMAP state after each tagged
response. DOVECOT_PORT is always Dovecot itself: the second client of the
IDLE scenario, and the clean-up before a run.

Lines are normalised the same way for both runs, for what differs between
any two runs of Dovecot (timings in its OK texts, UIDVALIDITY values) and,
before login only, for what docs/config.md lists as levee's differences:
the greeting's and CAPABILITY's capability lists, the `ID` answer, and the
human-readable text of responses and continuation requests. After login
nothing is normalised away: levee relays the backend's bytes.
"""

import hashlib
import imaplib
import re
import socket
import sys

USER, PASSWORD = b"alice", b"secret"
BOX = "conf"
DATE = '"01-Jan-2024 00:00:00 +0000"'

TIMING = re.compile(r" \(\d+\.\d+ \+ \d+\.\d+(?: \+ \d+\.\d+)? secs\)")
NUMBERS = re.compile(r"\b(UIDVALIDITY|APPENDUID|COPYUID) \d+")
TAGGED = re.compile(r"^(\S+) (OK|NO|BAD)(?: (\[[^\]]*\]))?")


def normalise(line, logged_in):
    line = TIMING.sub("", line)
    line = NUMBERS.sub(r"\1 N", line)
    if logged_in:
        return line
    if line.startswith("+"):
        return "+"
    if line.startswith("* OK [CAPABILITY "):
        return "* OK [CAPABILITY ...]"
    if line.startswith("* CAPABILITY "):
        return "* CAPABILITY ..."
    if line.startswith("* ID "):
        return "* ID ..."
    if line.startswith("* BYE"):
        return "* BYE"
    m = TAGGED.match(line)
    if m:
        return " ".join(p for p in m.groups() if p)
    return line


def literal_text(data):
    if len(data) <= 120 and all(32 <= b < 127 or b in b"\r\n" for b in data):
        return "{%d}%r" % (len(data), data.decode())
    return "{%d sha256=%s}" % (len(data), hashlib.sha256(data).hexdigest()[:16])


class Session:
    """One raw IMAP connection, recording a transcript."""

    def __init__(self, port, out):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.buf = b""
        self.out = out
        self.logged_in = False
        self.state = "not-authenticated"
        self.server(self.response_line())

    def server(self, line):
        self.out.append("S: " + normalise(line, self.logged_in))

    def fill(self):
        data = self.sock.recv(1 << 16)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def raw_line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def take(self, n):
        while len(self.buf) < n:
            self.fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response_line(self):
        """One server response, with any literals it carries read in."""
        text = ""
        while True:
            line = self.raw_line().decode("utf-8", "replace")
            m = re.search(r"\{(\d+)\}$", line)
            if not m:
                return text + line
            data = self.take(int(m.group(1)))
            text += line[: m.start()] + literal_text(data)

    def send(self, data, show=None):
        self.sock.sendall(data)
        show = show or data.decode("utf-8", "replace").rstrip("\r\n")
        if len(show) > 200:
            digest = hashlib.sha256(show.encode()).hexdigest()[:16]
            show = "%s... (%d characters, sha256=%s)" % (show[:60], len(show), digest)
        self.out.append("C: " + show)

    def finish(self, tag, verb):
        """Reads responses up to `tag`'s tagged one; updates the state."""
        while True:
            line = self.response_line()
            if line.startswith(tag + " "):
                status = line.split(" ")[1].upper() if " " in line else ""
                self.after(verb, status)
                self.server(line)
                self.out.append("state: " + self.state)
                return status
            if line.startswith("* BYE"):
                self.state = "logout"
            self.server(line)

    def after(self, verb, status):
        verb = verb.upper()
        if status == "OK" and verb in ("LOGIN", "AUTHENTICATE"):
            self.logged_in = True
            self.state = "authenticated"
        elif verb in ("SELECT", "EXAMINE"):
            self.state = "selected" if status == "OK" else "authenticated"
        elif status == "OK" and verb in ("CLOSE", "UNSELECT"):
            self.state = "authenticated"
        elif verb == "LOGOUT":
            self.state = "logout"

    def command(self, tag, *parts):
        """Sends a command made of text and literals (`sync(b)`, `plus(b)`),
        waiting for a continuation before each synchronizing literal."""
        pending = tag.encode() + b" "
        shown = tag + " "
        for part in parts:
            if isinstance(part, str):
                pending += part.encode()
                shown += part
                continue
            kind, data = part
            if kind == "sync":
                pending += b"{%d}\r\n" % len(data)
                self.send(pending, shown + "{%d}" % len(data))
                line = self.response_line()
                self.server(line)
                if not line.startswith("+"):
                    return self.finish_after(tag, parts, line)
                pending, shown = data, literal_text(data)
            else:
                pending += b"{%d+}\r\n" % len(data) + data
                shown += "{%d+}" % len(data) + literal_text(data)
        self.send(pending + b"\r\n", shown)
        return self.finish(tag, verb_of(parts))

    def finish_after(self, tag, parts, line):
        """A synchronizing literal refused instead of a continuation."""
        status = line.split(" ")[1] if line.startswith(tag + " ") else ""
        self.after(verb_of(parts), status)
        self.out.append("state: " + self.state)
        return status

    def close(self):
        self.sock.close()


def verb_of(parts):
    first = parts[0] if parts and isinstance(parts[0], str) else ""
    words = first.split()
    if words and words[0].upper() == "UID" and len(words) > 1:
        return words[1]
    return words[0] if words else ""


def sync(data):
    return ("sync", data)


def plus(data):
    return ("plus", data)


def message(n, size=0):
    head = ("From: conformance@example.org\r\nTo: alice@example.org\r\n"
            "Subject: message %d caf\u00e9\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" % n)
    body = "Body of message %d, \u00e9t\u00e9.\r\n" % n
    filler = "".join("line %06d of filler text for a large message\r\n" % i
                     for i in range(size // 48 + 1))[:size]
    return (head + body + filler).encode()


def logged_in(port, out, box=True):
    s = Session(port, out)
    s.command("l", "LOGIN ", USER.decode(), " ", PASSWORD.decode())
    if box:
        s.command("c", "CREATE " + BOX)
        s.command("s", "SELECT " + BOX)
    return s


# -- scenarios: each writes a transcript into `out` ------------------------

def login_literals(port, _dovecot, out):
    """Synchronizing and LITERAL+ literals before login, and the spacing
    Python's imaplib writes for an empty argument before a literal."""
    s = Session(port, out)
    s.command("a", "LOGIN ", sync(USER), " ", sync(PASSWORD))
    s.command("b", "LOGOUT")
    s = Session(port, out)
    s.command("a", "LOGIN ", plus(USER), " ", plus(PASSWORD))
    s.command("b", "LOGOUT")
    s = Session(port, out)
    s.command("a", "LOGIN alice  ", sync(PASSWORD), "  ")
    s.command("b", "NOOP")
    s.command("c", "LOGOUT")
    c = imaplib.IMAP4("127.0.0.1", port)
    c.literal = PASSWORD
    typ, _ = c._simple_command("LOGIN", "alice", "")
    out.append("imaplib LOGIN alice  {6}: %s" % typ)
    c.state = "AUTH"
    typ, _ = c.select("INBOX")
    out.append("imaplib SELECT INBOX: %s" % typ)
    c.logout()


def large_id(port, _dovecot, out):
    """The largest ID RFC 2971 allows (30 pairs, 30-byte fields, 1,024-byte
    values: 31,808 bytes), before login and after."""
    pairs = " ".join('"%s" "%s"' % ("f%029d" % i, "v" * 1024) for i in range(30))
    s = Session(port, out)
    text = "ID (%s)" % pairs
    assert len("i " + text + "\r\n") == 31808
    s.command("i", text)
    s.command("l", "LOGIN alice secret")
    s.command("j", text)
    s.command("z", "LOGOUT")


def literals_after_login(port, _dovecot, out):
    """Literals once logged in: synchronizing, LITERAL+, and LITERAL- sizes
    (non-synchronizing up to 4,096 bytes)."""
    s = logged_in(port, out, box=False)
    s.command("c", "CREATE ", sync(BOX.encode()))
    s.command("s", "SELECT ", plus(BOX.encode()))
    for tag, lit in (("a1", sync(message(1))), ("a2", plus(message(2, 4096 - 300))),
                     ("a3", plus(message(3, 4096)))):
        s.command(tag, "APPEND %s (\\Seen) %s " % (BOX, DATE), lit)
    s.command("f", "FETCH 1:* (RFC822.SIZE FLAGS INTERNALDATE)")
    s.command("z", "LOGOUT")


def append_large(port, _dovecot, out):
    """APPEND of large messages (2 MB synchronizing, 1 MB LITERAL+), read back."""
    s = logged_in(port, out)
    s.command("a1", "APPEND %s %s " % (BOX, DATE), sync(message(1, 2 << 20)))
    s.command("a2", "APPEND %s %s " % (BOX, DATE), plus(message(2, 1 << 20)))
    s.command("n", "NOOP")
    s.command("f", "FETCH 1:2 (RFC822.SIZE BODY.PEEK[])")
    s.command("z", "LOGOUT")


def fetch_partial(port, _dovecot, out):
    """FETCH of BODY[] partials, sections and BINARY."""
    s = logged_in(port, out)
    s.command("a", "APPEND %s %s " % (BOX, DATE), sync(message(1, 3000)))
    s.command("n", "NOOP")
    for i, item in enumerate([
        "BODY.PEEK[]<0.100>", "BODY.PEEK[TEXT]<10.20>", "BODY.PEEK[]<2990.1000000>",
        "BODY.PEEK[]<100000.10>", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]", "BODY.PEEK[1]<0.32>",
        "BINARY.PEEK[1]<5.10>", "RFC822.HEADER", "BODY[]<0.16>", "FLAGS",
    ]):
        s.command("f%d" % i, "FETCH 1 (%s)" % item)
    s.command("z", "LOGOUT")


def uid_commands(port, _dovecot, out):
    """UID FETCH, STORE, SEARCH, COPY, MOVE, EXPUNGE."""
    s = logged_in(port, out)
    for n in range(1, 5):
        s.command("a%d" % n, "APPEND %s %s " % (BOX, DATE), plus(message(n)))
    s.command("c", "CREATE %s.other" % BOX)
    s.command("n", "NOOP")
    for tag, text in [
        ("u1", "UID SEARCH ALL"), ("u2", "UID FETCH 1:* (UID FLAGS RFC822.SIZE)"),
        ("u3", "UID STORE 2 +FLAGS (\\Deleted)"), ("u4", "UID STORE 3 +FLAGS.SILENT (\\Flagged)"),
        ("u5", "UID SEARCH FLAGGED"), ("u6", "UID COPY 1 %s.other" % BOX),
        ("u7", "UID MOVE 4 %s.other" % BOX), ("u8", "UID EXPUNGE 2"),
        ("u9", "UID FETCH 1:* (UID FLAGS)"), ("u10", "UID SEARCH UID 1:2 NOT DELETED"),
        ("u11", "UID FETCH 99 FLAGS"), ("u12", "UID BOGUS 1"),
    ]:
        s.command(tag, text)
    s.command("x", "STATUS %s.other (MESSAGES UIDNEXT)" % BOX)
    s.command("z", "LOGOUT")


def search_charsets(port, _dovecot, out):
    """SEARCH with charsets and literal search strings."""
    s = logged_in(port, out)
    for n in range(1, 3):
        s.command("a%d" % n, "APPEND %s %s " % (BOX, DATE), plus(message(n)))
    s.command("n", "NOOP")
    s.command("s1", "SEARCH CHARSET UTF-8 SUBJECT ", sync("café".encode()))
    s.command("s2", "SEARCH CHARSET UTF-8 BODY ", plus("été".encode()))
    s.command("s3", "SEARCH CHARSET ISO-8859-1 SUBJECT ", sync("café".encode("latin-1")))
    s.command("s4", "SEARCH CHARSET US-ASCII SUBJECT \"message 2\"")
    s.command("s5", "SEARCH CHARSET X-UNKNOWN TEXT foo")
    s.command("s6", "UID SEARCH CHARSET UTF-8 TEXT ", plus("été".encode()), " NOT SUBJECT ", sync(b"2"))
    s.command("z", "LOGOUT")


def idle(port, dovecot, out):
    """IDLE: an update from another client arrives, DONE ends it."""
    s = logged_in(port, out)
    s.send(b"i IDLE\r\n")
    s.server(s.response_line())
    other = []
    o = logged_in(dovecot, other, box=False)
    o.command("a", "APPEND %s %s " % (BOX, DATE), plus(message(1)))
    o.close()
    while True:
        line = s.response_line()
        s.server(line)
        if line.endswith("EXISTS"):
            break
    s.send(b"DONE\r\n")
    s.finish("i", "IDLE")
    s.command("z", "LOGOUT")


def pipelining(port, _dovecot, out):
    """Commands pipelined in one write, across the login and after it."""
    s = Session(port, out)
    s.send(b"p1 CAPABILITY\r\np2 NOOP\r\np3 LOGIN alice secret\r\np4 CREATE conf\r\n"
           b"p5 SELECT conf\r\np6 APPEND conf {5+}\r\nhello\r\np7 NOOP\r\n")
    for tag, verb in [("p1", "CAPABILITY"), ("p2", "NOOP"), ("p3", "LOGIN"), ("p4", "CREATE"),
                      ("p5", "SELECT"), ("p6", "APPEND"), ("p7", "NOOP")]:
        s.finish(tag, verb)
    many = b"".join(b"q%d FETCH 1 (FLAGS RFC822.SIZE)\r\n" % i for i in range(20))
    s.send(many + b"q20 LOGOUT\r\n", "q0..q19 FETCH, q20 LOGOUT")
    for i in range(20):
        s.finish("q%d" % i, "FETCH")
    s.finish("q20", "LOGOUT")


def imaplib_session(port, _dovecot, out):
    """A whole session as imaplib drives it."""
    c = imaplib.IMAP4("127.0.0.1", port)
    def note(what, result):
        typ, data = result
        text = [normalise(d.decode("utf-8", "replace") if isinstance(d, bytes)
                          else repr(d), c.state != "NONAUTH") for d in data if d is not None]
        out.append("%s: %s %s (state %s)" % (what, typ, text, c.state))
    note("login", c.login("alice", "secret"))
    note("create", c.create(BOX))
    note("select", c.select(BOX))
    note("append", c.append(BOX, "(\\Seen)", imaplib.Time2Internaldate(0), message(1, 10000)))
    note("noop", c.noop())
    note("search", c.search(None, "SUBJECT", '"message 1"'))
    note("uid search", c.uid("SEARCH", "ALL"))
    note("fetch", c.fetch("1", "(UID BODY.PEEK[]<0.50>)"))
    note("uid store", c.uid("STORE", "1", "+FLAGS", "(\\Flagged)"))
    note("expunge", c.expunge())
    note("close", c.close())
    note("logout", c.logout())


SCENARIOS = {f.__name__: f for f in [
    login_literals, large_id, literals_after_login, append_large, fetch_partial,
    uid_commands, search_charsets, idle, pipelining, imaplib_session,
]}


def clean(dovecot):
    """Removes what an earlier run left, directly on Dovecot."""
    s = Session(dovecot, [])
    s.command("l", "LOGIN alice secret")
    for box in (BOX + ".other", BOX):
        s.command("d", "DELETE " + box)
    s.command("z", "LOGOUT")


if __name__ == "__main__":
    scenario, port, dovecot = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    clean(dovecot)
    transcript = []
    try:
        SCENARIOS[scenario](port, dovecot, transcript)
    except Exception as e:  # the transcript shows where it stopped
        transcript.append("error: %s: %s" % (type(e).__name__, e))
    print("\n".join(transcript))
