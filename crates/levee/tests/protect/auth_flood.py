"""Floods levee with wrong Basic-auth passwords for one user, for
protect.rs: THREADS keep-alive connections from SOURCE, each sending
requests with a new wrong password every time, until stdin closes.
Prints "running" once the first answer came, then at the end one line
of JSON: how many answers of each status it got.

Usage: auth_flood.py PORT THREADS SOURCE USER
"""
import base64
import itertools
import json
import socket
import sys
import threading

port, threads, source, user = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
stop = threading.Event()
counts = {}
lock = threading.Lock()
first = threading.Event()
attempt = itertools.count()


def flood():
    while not stop.is_set():
        try:
            s = socket.socket()
            s.bind((source, 0))
            s.connect(("127.0.0.1", port))
            s.settimeout(60)
            while not stop.is_set():
                cred = base64.b64encode(f"{user}:wrong{next(attempt)}".encode()).decode()
                s.sendall(f"GET /redeem HTTP/1.1\r\nHost: t\r\nAuthorization: Basic {cred}\r\n\r\n".encode())
                head = b""
                while b"\r\n\r\n" not in head:
                    more = s.recv(65536)
                    if not more:
                        raise OSError("closed")
                    head += more
                status = head.split(b" ")[1].decode()
                with lock:
                    counts[status] = counts.get(status, 0) + 1
                first.set()
                if b"connection: close" in head.lower():
                    raise OSError("closing")
        except OSError:
            pass
        finally:
            s.close()


workers = [threading.Thread(target=flood, daemon=True) for _ in range(threads)]
for w in workers:
    w.start()
first.wait(60)
print("running", flush=True)
sys.stdin.read()
stop.set()
for w in workers:
    w.join(5)
print(json.dumps(counts), flush=True)
