"""TLS clients for the ACME tests (crates/levee/tests/acme.rs).

serial HOST PORT CAFILE          one verified handshake; prints the leaf's serial
hold HOST PORT CAFILE SECONDS    one connection, a request a second over it for
                                 SECONDS; prints the serial, then "ok N TIME"
                                 per response (Unix seconds); exits 1 at the
                                 first failure
flood PORT COUNT                 COUNT handshakes, each for a new random name
                                 (unverified); prints how many got a certificate
"""
import os
import socket
import ssl
import sys
import time


def connect(ctx, host, port):
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=20)
    return ctx.wrap_socket(s, server_hostname=host)


def read_response(f):
    status = f.readline()
    length = 0
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    f.read(length)
    return status


def main():
    mode = sys.argv[1]
    if mode == "flood":
        port, count = sys.argv[2], int(sys.argv[3])
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        served = 0
        for i in range(count):
            name = "h%s-%d.flood.test" % (os.urandom(4).hex(), i)
            try:
                connect(ctx, name, port).close()
                served += 1
            except (ssl.SSLError, OSError):
                pass
        print(served)
        return
    host, port, cafile = sys.argv[2], sys.argv[3], sys.argv[4]
    ctx = ssl.create_default_context(cafile=cafile)
    t = connect(ctx, host, port)
    print("serial", t.getpeercert()["serialNumber"], flush=True)
    if mode == "serial":
        return
    end = time.time() + float(sys.argv[5])
    f = t.makefile("rb")
    n = 0
    while time.time() < end:
        t.sendall(b"GET / HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n")
        status = read_response(f)
        if b" 200 " not in status:
            print("failed", status, flush=True)
            sys.exit(1)
        n += 1
        print("ok", n, "%.3f" % time.time(), flush=True)
        time.sleep(1)


main()
