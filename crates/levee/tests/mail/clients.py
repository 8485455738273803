"""Real mail clients (Python's imaplib, poplib, smtplib, and raw sockets
where a library cannot express the case) driving levee in the mail tests.

Usage: clients.py CASE PORT. Each case prints `key=value` lines that the
Rust test asserts on; a library error is printed, not raised, so the test
sees what the client saw.
"""

import base64
import imaplib
import poplib
import smtplib
import socket
import sys
import time


def out(key, value):
    print(f"{key}={value}", flush=True)


def subject(c):
    c.select("INBOX")
    _, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    return data[0][1].decode().strip()


def raw(port, send, until, timeout=5.0):
    """Sends `send` (a list of byte strings, each written separately with a
    pause between) and reads until `until` appears or the peer closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    got = b""
    while b"\r\n" not in got:
        got += s.recv(4096)
    for chunk in send:
        s.sendall(chunk)
        time.sleep(0.05)
    deadline = time.time() + timeout
    while until not in got and time.time() < deadline:
        try:
            data = s.recv(65536)
        except socket.timeout:
            break
        if not data:
            break
        got += data
    s.close()
    return got.decode(errors="replace")


def imap_logins(port):
    c = imaplib.IMAP4("127.0.0.1", port)
    out("greeting", c.welcome.decode())
    typ, data = c.login("alice", "secret")
    out("quoted", f"{typ} {data[0].decode()}")
    caps = c.untagged_responses.get("CAPABILITY", [b""])[-1].decode()
    out("post_login_caps", caps)
    out("quoted_subject", subject(c))
    c.logout()

    c = imaplib.IMAP4("127.0.0.1", port)
    c.literal = b"hunter2"
    typ, data = c._simple_command("LOGIN", "bob")
    c.state = "AUTH"
    out("literal", typ)
    out("literal_subject", subject(c))
    c.logout()

    c = imaplib.IMAP4("127.0.0.1", port)
    typ, _ = c.authenticate("PLAIN", lambda _: b"\0alice\0secret")
    out("authenticate", typ)
    out("authenticate_subject", subject(c))
    c.logout()

    ir = base64.b64encode(b"\0bob\0hunter2")
    got = raw(port, [b"a1 AUTHENTICATE PLAIN " + ir + b"\r\na2 SELECT INBOX\r\n"], b"a2 ")
    out("sasl_ir", "a1 OK" in got and "a2 OK" in got)

    c = imaplib.IMAP4("127.0.0.1", port)
    try:
        c.login("alice", "wrong")
        out("bad_password", "accepted")
    except imaplib.IMAP4.error as e:
        out("bad_password", e)

    c = imaplib.IMAP4("127.0.0.1", port)
    try:
        c.login("alice", "backend-says-no")
        out("backend_no", "accepted")
    except imaplib.IMAP4.error as e:
        out("backend_no", e)

    c = imaplib.IMAP4("127.0.0.1", port)
    started = time.monotonic()
    try:
        c.login("ghost", "x")
        out("down", "accepted")
    except imaplib.IMAP4.error as e:
        out("down", e)
    out("down_ms", int((time.monotonic() - started) * 1000))


def imap_raw(port):
    # Pipelined: everything in one write; what follows LOGIN goes to the backend.
    got = raw(port, [b"a1 CAPABILITY\r\na2 LOGIN alice secret\r\na3 SELECT INBOX\r\na4 LOGOUT\r\n"], b"a4 OK")
    out("pipelined", "a1 OK" in got and "a2 OK" in got and "a3 OK" in got and "a4 OK" in got)
    # Split reads, with a synchronizing literal that needs a continuation.
    got = raw(port, [b"a1 LOG", b"IN al", b"ice {6}\r\n", b"sec", b"ret\r\n", b"a2 NOOP\r\n"], b"a2 OK")
    out("split", "+ " in got and "a1 OK" in got and "a2 OK" in got)
    # A refused command's literal+ holds a command; it must not run.
    got = raw(port, [b"a1 FOO {11+}\r\na2 LOGOUT\r\n\r\na3 NOOP\r\n"], b"a3 ")
    out("injection", "a1 BAD" in got and "a2 " not in got and "a3 OK" in got and "BYE" not in got)
    # Too many errors closes.
    got = raw(port, [b"x BAD1\r\n" * 6], b"BYE")
    out("errors", "BYE" in got)
    # Pre-auth timeout: say nothing.
    started = time.monotonic()
    got = raw(port, [], b"BYE", timeout=10)
    out("timeout", "BYE" in got)
    out("timeout_ms", int((time.monotonic() - started) * 1000))


class IMAP4From(imaplib.IMAP4):
    """imaplib from a chosen loopback source address (127.0.0.N)."""

    def __init__(self, port, source):
        self.source = source
        super().__init__("127.0.0.1", port)

    def _create_socket(self, timeout):
        return socket.create_connection(("127.0.0.1", self.port), timeout,
                                        source_address=(self.source, 0))


def login_from(port, source, user, password):
    """One login from `source`: "OK", or the server's refusal text."""
    try:
        c = IMAP4From(port, source)
    except OSError as e:
        return f"connect: {e}"
    try:
        typ, _ = c.login(user, password)
        c.logout()
        return typ
    except imaplib.IMAP4.error as e:
        return str(e)


def lockout(*ports):
    """40 parallel wrong passwords for alice from one address, each to the
    next of `ports` in turn (the members of a fleet, or one levee); then
    alice with her password from that address at every port, and from
    another."""
    import threading
    results = []
    def attempt(n):
        port = ports[n % len(ports)]
        results.append(login_from(port, "127.0.0.1", "alice", f"wrong{n}"))
    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out("refused", sum("AUTHENTICATIONFAILED" in r for r in results))
    out("others", [r for r in results if "AUTHENTICATIONFAILED" not in r])
    out("same_address", ",".join(login_from(p, "127.0.0.1", "alice", "secret")
                                 for p in ports))
    out("other_address", login_from(ports[-1], "127.0.0.2", "alice", "secret"))


def slowed(port):
    """Wrong passwords for alice from four addresses reach her ceiling; then
    two logins with her password from two fresh addresses at once."""
    import threading
    for n in range(4):
        out(f"wrong_{n}", login_from(port, f"127.0.0.{10 + n}", "alice", "nope"))
    results = []
    def attempt(n):
        results.append(login_from(port, f"127.0.0.{20 + n}", "alice", "secret"))
    started = time.monotonic()
    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out("right", ",".join(sorted(results)))
    out("right_ms", int((time.monotonic() - started) * 1000))


def pop3(port):
    c = poplib.POP3("127.0.0.1", port)
    out("capa", " ".join(sorted(c.capa().keys())))
    c.user("alice")
    out("pass", c.pass_("secret").decode())
    _, lines, _ = c.retr(1)
    out("retr", b"|".join(lines).decode())
    c.quit()
    c = poplib.POP3("127.0.0.1", port)
    try:
        c.user("bob")
        c.pass_("nope")
        out("bad_password", "accepted")
    except poplib.error_proto as e:
        out("bad_password", e)
    c = poplib.POP3("127.0.0.1", port)
    try:
        c.user("ghost")
        c.pass_("x")
        out("down", "accepted")
    except poplib.error_proto as e:
        out("down", e)
    token = "A" * 300
    got = raw(port, [f"USER {token}\r\nQUIT\r\n".encode()], b"Bye")
    out("long_line", got.count("+OK") >= 3)


def submission(port):
    c = smtplib.SMTP("127.0.0.1", port)
    code, _ = c.ehlo("client.example")
    out("ehlo", f"{code} {' '.join(sorted(c.esmtp_features))}")
    code, msg = c.mail("a@example.org")
    out("mail", f"{code} {msg.decode()}")
    try:
        c.login("alice", "wrong")
        out("bad_password", "accepted")
    except smtplib.SMTPAuthenticationError as e:
        out("bad_password", e.smtp_code)
    c.close()
    c = smtplib.SMTP("127.0.0.1", port)
    c.ehlo("client.example")
    try:
        c.login("ghost", "x")
        out("down", "accepted")
    except smtplib.SMTPException as e:
        out("down", getattr(e, "smtp_code", e))
    c.close()


def submission_send(port):
    c = smtplib.SMTP("127.0.0.1", port)
    out("client_port", c.sock.getsockname()[1])
    c.ehlo("client.example")
    c.login("alice", "secret")
    refused = c.sendmail("alice@example.org", ["bob@example.org"],
                         "From: alice@example.org\r\nTo: bob@example.org\r\n"
                         "Subject: relayed through levee\r\n\r\nHello Bob.\r\n")
    out("refused", len(refused))
    c.quit()


def ehlo_after_auth(port):
    """EHLO, AUTH, EHLO again: the second reply is the backend's, relayed."""
    c = smtplib.SMTP("127.0.0.1", port)
    code, text = c.ehlo("client.example")
    out("before", text.decode().replace("\n", "|"))
    c.login("alice", "secret")
    c.ehlo_resp = None
    code, text = c.ehlo("client.example")
    out("after_code", code)
    out("after", text.decode().replace("\n", "|"))
    c.quit()


def no_tls_yet(port_imap, port_pop3, port_smtp):
    """STARTTLS/STLS is neither offered nor accepted until levee has TLS."""
    got = raw(port_imap, [b"a CAPABILITY\r\nb STARTTLS\r\n"], b"b ")
    out("imap", "STARTTLS" not in got.split("a OK")[0] and "b BAD" in got)
    got = raw(port_pop3, [b"CAPA\r\nSTLS\r\n"], b"-ERR")
    out("pop3", "STLS\r\n" not in got.split(".\r\n")[0] and "-ERR" in got)
    got = raw(port_smtp, [b"EHLO x\r\nSTARTTLS\r\n"], b"502")
    out("smtp", "STARTTLS" not in got.split("250 AUTH")[0] and "502 5.5.1" in got)


if __name__ == "__main__":
    if sys.argv[1] == "lockout":
        lockout(*map(int, sys.argv[2:]))
        sys.exit(0)
    if sys.argv[1] == "no_tls_yet":
        no_tls_yet(*map(int, sys.argv[2:5]))
        sys.exit(0)
    cases = {"imap_logins": imap_logins, "imap_raw": imap_raw, "pop3": pop3,
             "slowed": slowed, "ehlo_after_auth": ehlo_after_auth,
             "submission": submission, "submission_send": submission_send}
    cases[sys.argv[1]](int(sys.argv[2]))
