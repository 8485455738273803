"""HTTP/2 clients that go away, for client_gone.rs: raw frames (hyperframe
and hpack, through tests/http2/frames.py's Conn), so a stream can be reset
or its connection dropped exactly when the Rust test says.

Usage:
  h2client.py PORT reset PATH   open a stream, print "open", wait for a line
                                on stdin, reset it (CANCEL), print "reset",
                                then hold the connection until stdin ends
  h2client.py PORT close PATH   the same, but close the connection instead
  h2client.py PORT flood PREFIX ROUNDS
                                the rapid-reset pattern of issue 12: each
                                round opens 100 streams on one connection,
                                resets them 50 ms later and waits 200 ms;
                                prints "done N" with the streams opened
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http2"))
from frames import Conn  # noqa: E402
from hyperframe.frame import RstStreamFrame  # noqa: E402

CANCEL = 8


def drain(c):
    """Reads what levee sends (answering SETTINGS and PING) so it never
    blocks on this client."""
    while c.read(3600) not in (None,):
        pass


def main():
    port, case = int(sys.argv[1]), sys.argv[2]
    c = Conn(port)
    # The reader answers SETTINGS and PING from its thread: one frame at a
    # time on the socket.
    lock, send = threading.Lock(), c.send

    def locked(*frames):
        with lock:
            send(*frames)
    c.send = locked
    if case in ("reset", "close"):
        c.send(c.get(1, sys.argv[3]))
        threading.Thread(target=drain, args=(c,), daemon=True).start()
        print("open", flush=True)
        sys.stdin.readline()
        if case == "reset":
            c.send(RstStreamFrame(1, error_code=CANCEL))
            print("reset", flush=True)
            sys.stdin.read()
        else:
            c.sock.close()
            print("closed", flush=True)
        return
    if case == "flood":
        prefix, rounds = sys.argv[3], int(sys.argv[4])
        threading.Thread(target=drain, args=(c,), daemon=True).start()
        sid = 1
        for r in range(rounds):
            ids = []
            for i in range(100):
                c.send(c.get(sid, f"{prefix}{r}-{i}"))
                ids.append(sid)
                sid += 2
            time.sleep(0.05)
            c.send(*[RstStreamFrame(s, error_code=CANCEL) for s in ids])
            time.sleep(0.2)
        print(f"done {sid // 2}", flush=True)
        return
    print("unknown case", flush=True)


if __name__ == "__main__":
    main()
