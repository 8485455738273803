"""Real mail clients over TLS (Python's imaplib, poplib and smtplib with
ssl) driving levee's implicit-TLS and STARTTLS mail listeners, plus raw
sockets for what a library will not do (pipelining behind STARTTLS).

Usage: tls_clients.py CASE CA_PEM PORT... Each case prints `key=value`
lines for the Rust test (mail_tls.rs); library errors are printed, not raised.
"""

import imaplib
import poplib
import smtplib
import socket
import ssl
import sys


def out(key, value):
    print(f"{key}={value}", flush=True)


class Sni(ssl.SSLContext):
    """A context that verifies against the test CA and sends `sni` as the
    server name whatever host the library connects to (127.0.0.1)."""

    sni = None

    def wrap_socket(self, sock, server_hostname=None, **kw):
        return super().wrap_socket(sock, server_hostname=self.sni, **kw)


def context(ca, sni="a.test"):
    c = Sni(ssl.PROTOCOL_TLS_CLIENT)
    c.load_verify_locations(ca)
    c.sni = sni
    # Without a name there is none to check; the chain still is.
    c.check_hostname = sni is not None
    return c


def cn(sock):
    """The subject CN of the certificate the server sent."""
    subject = dict(x[0] for x in sock.getpeercert()["subject"])
    return subject["commonName"]


def subject(c):
    c.select("INBOX")
    _, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    return data[0][1].decode().strip()


def imaps(ca, port):
    c = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=context(ca, "a.test"))
    out("cn_a", cn(c.sock))
    out("greeting", c.welcome.decode())
    typ, _ = c.login("alice", "secret")
    out("login", typ)
    out("subject", subject(c))
    c.logout()
    c = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=context(ca, "x.b.test"))
    out("cn_b", cn(c.sock))
    c.login("bob", "hunter2")
    out("subject_bob", subject(c))
    c.logout()
    # No SNI at all: the first certificate.
    c = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=context(ca, None))
    out("cn_none", cn(c.sock))
    c.logout()


def imap_starttls(ca, port_on, port_required):
    c = imaplib.IMAP4("127.0.0.1", port_on)
    out("on_before", " ".join(c.capabilities))
    # Plaintext login where STARTTLS is only offered: levee lets it through,
    # the auth service (which wants Auth-SSL: on) refuses it.
    try:
        c.login("alice", "secret")
        out("on_plain", "accepted")
    except imaplib.IMAP4.error as e:
        out("on_plain", e)
    c.starttls(ssl_context=context(ca, "x.b.test"))
    out("on_cn", cn(c.sock))
    out("on_after", " ".join(c.capabilities))
    typ, _ = c.login("alice", "secret")
    out("on_login", typ)
    out("on_subject", subject(c))
    c.logout()

    c = imaplib.IMAP4("127.0.0.1", port_required)
    out("req_greeting", c.welcome.decode())
    typ, data = c._simple_command("LOGIN", "alice", "secret")
    out("req_login", f"{typ} {data[0].decode()}")
    try:
        c.authenticate("PLAIN", lambda _: b"\0alice\0secret")
        out("req_authenticate", "accepted")
    except imaplib.IMAP4.error as e:
        out("req_authenticate", e)
    c.starttls(ssl_context=context(ca))
    out("req_after", " ".join(c.capabilities))
    typ, _ = c.authenticate("PLAIN", lambda _: b"\0bob\0hunter2")
    out("req_auth_tls", typ)
    out("req_subject", subject(c))
    c.logout()


def injection(ca, port, protocol):
    """Pipelines a command behind STARTTLS in the same packet, then speaks
    over TLS: the injected command must not have run."""
    first, injected, probe, until = {
        "imap": (b"a STARTTLS\r\n", b"b LOGIN alice secret\r\n", b"c NOOP\r\n", b"c "),
        "pop3": (b"STLS\r\n", b"USER alice\r\nPASS secret\r\n", b"CAPA\r\n", b".\r\n"),
        "smtp": (b"EHLO x\r\nSTARTTLS\r\n", b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n",
                 b"NOOP\r\n", b"\r\n"),
    }[protocol]
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    got = b""
    while b"\r\n" not in got:
        got += s.recv(4096)
    s.sendall(first + injected)
    ready = {"imap": b"a OK", "pop3": b"+OK Begin", "smtp": b"220 2.0.0"}[protocol]
    plain = b""
    while ready not in plain:
        data = s.recv(4096)
        if not data:
            break
        plain += data
    t = context(ca).wrap_socket(s)
    t.sendall(probe)
    after = b""
    while until not in after:
        data = t.recv(4096)
        if not data:
            break
        after += data
    out("plain", plain.decode(errors="replace").replace("\r\n", "|"))
    out("after", after.decode(errors="replace").replace("\r\n", "|"))
    t.close()


def pop3(ca, port_tls, port_required):
    c = poplib.POP3_SSL("127.0.0.1", port_tls, context=context(ca, "x.b.test"))
    out("tls_cn", cn(c.sock))
    out("tls_capa", " ".join(sorted(c.capa().keys())))
    c.user("alice")
    out("tls_pass", c.pass_("secret").decode())
    _, lines, _ = c.retr(1)
    out("tls_retr", b"|".join(lines).decode())
    c.quit()

    c = poplib.POP3("127.0.0.1", port_required)
    out("req_capa", " ".join(sorted(c.capa().keys())))
    try:
        c.user("alice")
        out("req_user", "accepted")
    except poplib.error_proto as e:
        out("req_user", e)
    c.stls(context=context(ca))
    out("req_after", " ".join(sorted(c.capa().keys())))
    c.user("bob")
    out("req_pass", c.pass_("hunter2").decode())
    _, lines, _ = c.retr(1)
    out("req_retr", b"|".join(lines).decode())
    c.quit()


MESSAGE = ("From: alice@example.org\r\nTo: bob@example.org\r\n"
           "Subject: {subject}\r\n\r\nHello Bob.\r\n")


def submission(ca, port_tls, port_required):
    c = smtplib.SMTP_SSL("127.0.0.1", port_tls, context=context(ca, "x.b.test"))
    out("tls_cn", cn(c.sock))
    c.ehlo("client.example")
    out("tls_ehlo", " ".join(sorted(c.esmtp_features)))
    c.login("alice", "secret")
    refused = c.sendmail("alice@example.org", ["bob@example.org"],
                         MESSAGE.format(subject="over implicit TLS"))
    out("tls_refused", len(refused))
    c.quit()

    c = smtplib.SMTP("127.0.0.1", port_required)
    c.ehlo("client.example")
    out("req_ehlo", " ".join(sorted(c.esmtp_features)))
    code, msg = c.docmd("AUTH", "PLAIN AGFsaWNlAHNlY3JldA==")
    out("req_auth", f"{code} {msg.decode()}")
    c.starttls(context=context(ca))
    c.ehlo("client.example")
    out("req_after", " ".join(sorted(c.esmtp_features)))
    c.login("alice", "secret")
    refused = c.sendmail("alice@example.org", ["bob@example.org"],
                         MESSAGE.format(subject="after STARTTLS"))
    out("req_refused", len(refused))
    c.quit()


def client_cert(ca, port, cert, key):
    ctx = context(ca)
    ctx.load_cert_chain(cert, key)
    c = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx)
    try:
        typ, _ = c.login("alice", "secret")
        out("login", typ)
        out("subject", subject(c))
    except imaplib.IMAP4.error as e:
        out("login", e)
    c.logout()


def peer_cn(ca, port, sni):
    c = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=context(ca, sni))
    out("cn", cn(c.sock))
    c.logout()


if __name__ == "__main__":
    case, ca, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
    if case == "injection":
        injection(ca, int(rest[0]), rest[1])
    elif case == "client_cert":
        client_cert(ca, int(rest[0]), rest[1], rest[2])
    elif case == "peer_cn":
        peer_cn(ca, int(rest[0]), rest[1])
    else:
        cases = {"imaps": imaps, "imap_starttls": imap_starttls, "pop3": pop3,
                 "submission": submission}
        cases[case](ca, *map(int, rest))
