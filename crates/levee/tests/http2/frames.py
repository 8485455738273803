"""A raw HTTP/2 client for http2_frames.rs: it writes frames the `h2`
package's state machine would refuse to write (hyperframe + hpack), and
prints what levee answered, one line, for the Rust test to check.

Usage: frames.py PORT CASE
"""
import socket
import sys
import time

from hpack import Decoder, Encoder
from hyperframe.frame import (
    ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame, PingFrame,
    RstStreamFrame, SettingsFrame, WindowUpdateFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
CODES = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
         5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM", 8: "CANCEL",
         9: "COMPRESSION_ERROR", 11: "ENHANCE_YOUR_CALM"}


class Conn:
    def __init__(self, port, settings=None):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.settimeout(5)
        self.enc = Encoder()
        self.dec = Decoder()
        self.buf = b""
        s = SettingsFrame(0)
        s.settings = settings or {}
        self.sock.sendall(PREFACE + s.serialize())

    def send(self, *frames):
        self.sock.sendall(b"".join(f.serialize() for f in frames))

    def headers(self, sid, fields, end=True, end_headers=True):
        f = HeadersFrame(sid)
        f.data = self.enc.encode(fields)
        if end_headers:
            f.flags.add("END_HEADERS")
        if end:
            f.flags.add("END_STREAM")
        return f

    def get(self, sid, path="/", extra=()):
        return self.headers(sid, [(":method", "GET"), (":scheme", "http"),
                                  (":authority", "h2.test"), (":path", path), *extra])

    def read(self, timeout):
        """The next frame; None at the end of the connection; 'idle' when nothing came."""
        self.sock.settimeout(timeout)
        while True:
            if len(self.buf) >= 9:
                f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
                if len(self.buf) >= 9 + length:
                    f.parse_body(memoryview(self.buf[9:9 + length]))
                    self.buf = self.buf[9 + length:]
                    if isinstance(f, HeadersFrame):
                        # Every block, in order: HPACK state is per connection.
                        f.fields = dict(self.dec.decode(f.data))
                    ack = None
                    if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
                        ack = SettingsFrame(0)
                        ack.flags.add("ACK")
                    if isinstance(f, PingFrame) and "ACK" not in f.flags:
                        ack = PingFrame(0, opaque_data=f.opaque_data)
                        ack.flags.add("ACK")
                    if ack is not None:
                        try:
                            self.send(ack)
                        except OSError:
                            pass
                    return f
            try:
                more = self.sock.recv(65536)
            except socket.timeout:
                return "idle"
            except OSError:
                return None
            if not more:
                return None
            self.buf += more

    def outcome(self, timeout=3, stream=None):
        """Reads until an error frame, the end or quiet; says which."""
        end = time.time() + timeout
        while time.time() < end:
            f = self.read(max(0.05, end - time.time()))
            if f is None:
                return "CLOSED"
            if f == "idle":
                break
            if isinstance(f, GoAwayFrame):
                return "GOAWAY " + CODES.get(f.error_code, str(f.error_code))
            if isinstance(f, RstStreamFrame) and (stream is None or f.stream_id == stream):
                return f"RST {f.stream_id} " + CODES.get(f.error_code, str(f.error_code))
        return "QUIET"

    def response(self, sid, timeout=5):
        """Status and body length of stream `sid`'s response."""
        status, size, end = None, 0, time.time() + timeout
        while time.time() < end:
            f = self.read(end - time.time())
            if f in (None, "idle"):
                break
            if f.stream_id != sid:
                continue
            if isinstance(f, HeadersFrame):
                status = f.fields.get(":status")
            if isinstance(f, DataFrame):
                size += len(f.data)
            if isinstance(f, RstStreamFrame):
                return f"RST {CODES.get(f.error_code)}"
            if "END_STREAM" in f.flags:
                return f"{status} {size}"
        return f"{status} {size} incomplete"


def events(c, sid, quiet=1.5):
    """What stream `sid` got, in order, until `quiet` seconds of silence."""
    got = []
    while True:
        f = c.read(quiet)
        if f in (None, "idle"):
            return " ".join(got) or "nothing"
        if isinstance(f, GoAwayFrame):
            got.append("GOAWAY " + CODES.get(f.error_code, str(f.error_code)))
        elif f.stream_id != sid:
            continue
        elif isinstance(f, HeadersFrame):
            got.append("HEADERS " + f.fields.get(":status", "trailers"))
        elif isinstance(f, RstStreamFrame):
            got.append("RST " + CODES.get(f.error_code, str(f.error_code)))


def data_bytes(c, seconds):
    """DATA bytes received until `seconds` of quiet."""
    got = 0
    while True:
        f = c.read(seconds)
        if f in (None, "idle"):
            return got
        if isinstance(f, DataFrame):
            got += len(f.data)


def case(port, name):
    settings = {"window_exhaustion": {0x4: 1000}, "shut_window": {0x4: 0}}.get(name)
    c = Conn(port, settings)
    if name == "closed_stream_data":
        c.send(c.get(1))
        first = c.response(1)
        c.send(DataFrame(1, b"x", flags=["END_STREAM"]))
        return f"{first}; {c.outcome()}"
    if name == "static_body_overrun":
        # A body longer than its content-length, sent after a pause: a
        # static route must not have answered before it came.
        c.send(c.headers(1, [(":method", "GET"), (":scheme", "http"),
                             (":authority", "h2.test"), (":path", "/static/a.txt"),
                             ("content-length", "5")], end=False))
        time.sleep(0.5)
        c.send(DataFrame(1, b"0123456789", flags=["END_STREAM"]))
        return events(c, 1)
    if name == "pseudo_trailers":
        # RFC 9113 §8.1: trailers with pseudo-header fields are malformed.
        c.send(c.headers(1, [(":method", "PUT"), (":scheme", "http"),
                             (":authority", "h2.test"), (":path", "/dav/t.txt")], end=False))
        c.send(DataFrame(1, b"abc"))
        c.send(c.headers(1, [(":path", "/evil"), ("x-t", "1")], end=True))
        return events(c, 1)
    if name == "static_with_body":
        c.send(c.headers(1, [(":method", "GET"), (":scheme", "http"),
                             (":authority", "h2.test"), (":path", "/static/a.txt")], end=False))
        time.sleep(0.3)
        c.send(DataFrame(1, b"0123456789", flags=["END_STREAM"]))
        return c.response(1)
    if name == "window_exhaustion":
        c.send(c.get(1, "/files/big.bin"))
        before = data_bytes(c, 1.0)
        c.send(WindowUpdateFrame(1, window_increment=5000))
        after = data_bytes(c, 1.0)
        return f"{before} then {after}"
    if name == "shut_window":
        # A stream window of 0 that is never opened: the response waits for
        # it. Then a second stream, given a window, on the same connection.
        start = time.time()
        c.send(c.get(1, "/files/big.bin"))
        got = c.outcome(15, stream=1)
        took = round(time.time() - start)
        c.send(c.get(3, "/alive"), WindowUpdateFrame(3, window_increment=65_535))
        return f"{got} after {took}s; then {c.response(3)}"
    if name == "connect":
        # §8.5: a well-formed CONNECT carries only :method and :authority.
        c.send(c.headers(1, [(":method", "CONNECT"), (":authority", "example.com:443")], end=False))
        first = c.response(1)
        c.send(c.get(3, "/alive"))
        return f"{first}; then {c.response(3)}"
    if name == "window_overflow":
        c.send(WindowUpdateFrame(0, window_increment=2**31 - 1))
        return c.outcome()
    if name == "hpack_bad_index":
        f = HeadersFrame(1)
        f.data = b"\xfe"  # indexed field 126: in neither table
        f.flags.add("END_HEADERS")
        f.flags.add("END_STREAM")
        c.send(f)
        return c.outcome()
    if name in ("missing_path", "uppercase_name", "connection_field"):
        fields = {
            "missing_path": [(":method", "GET"), (":scheme", "http"), (":authority", "h2.test")],
            "uppercase_name": [(":method", "GET"), (":scheme", "http"), (":authority", "h2.test"),
                               (":path", "/bad"), ("X-Upper", "1")],
            "connection_field": [(":method", "GET"), (":scheme", "http"), (":authority", "h2.test"),
                                 (":path", "/bad"), ("connection", "keep-alive")],
        }[name]
        c.send(c.headers(1, fields))
        bad = c.outcome(stream=1)
        if bad.startswith("GOAWAY") or bad == "CLOSED":
            return bad
        # A stream error: the connection still serves the next stream.
        c.send(c.get(3))
        return f"{bad}; then {c.response(3)}"
    if name == "upload_without_length":
        # 200 KB in DATA frames with no content-length: more than the
        # stream's 64 KiB window, so levee must pass it on to open the window.
        c.send(c.headers(1, [(":method", "PUT"), (":scheme", "http"), (":authority", "h2.test"),
                             (":path", "/dav/nolength.bin")], end=False))
        # Within the windows levee grants (RFC 9113 §6.9: 65,535 for the
        # connection and, per its SETTINGS, for the stream), waiting for its
        # WINDOW_UPDATEs; sending past them would be our flow-control error.
        sent, chunk = 0, b"u" * 10_000
        conn_window, stream_window, initial = 65_535, 65_535, 65_535
        while sent < 200_000:
            while min(conn_window, stream_window) < len(chunk):
                f = c.read(5)
                if f in (None, "idle"):
                    return f"no window after {sent} bytes"
                if isinstance(f, WindowUpdateFrame):
                    if f.stream_id == 0:
                        conn_window += f.window_increment
                    elif f.stream_id == 1:
                        stream_window += f.window_increment
                if isinstance(f, SettingsFrame) and 0x4 in f.settings:
                    stream_window += f.settings[0x4] - initial
                    initial = f.settings[0x4]
            last = sent + len(chunk) >= 200_000
            c.send(DataFrame(1, chunk, flags=["END_STREAM"] if last else []))
            sent += len(chunk)
            conn_window -= len(chunk)
            stream_window -= len(chunk)
        return c.response(1)
    if name == "idle_goaway":
        c.send(c.get(1))
        first = c.response(1)
        start = time.time()
        got = c.outcome(6)
        return f"{first}; {got} after {round(time.time() - start)}s"
    if name == "goaway_on_stop":
        # One request, then wait for levee to say it is going.
        c.send(c.get(1))
        first = c.response(1)
        print("served", flush=True)
        return f"{first}; {c.outcome(8)}"
    if name == "too_many_streams":
        # Five requests whose bodies never come: the fifth is over the limit of 4.
        for sid in (1, 3, 5, 7, 9):
            c.send(c.headers(sid, [(":method", "POST"), (":scheme", "http"),
                                   (":authority", "h2.test"), (":path", "/"),
                                   ("content-length", "10")], end=False))
        return c.outcome(stream=9)
    if name == "header_list_too_large":
        c.send(c.get(1, extra=[("x-big", "z" * 8000)]))
        return c.response(1)
    if name == "rapid_reset":
        frames = []
        for i in range(1000):
            sid = 2 * i + 1
            frames += [c.get(sid), RstStreamFrame(sid, error_code=8)]
        try:
            c.send(*frames)
        except OSError:
            return "CLOSED"
        return c.outcome(5)
    if name == "continuation_flood":
        first = c.headers(1, [(":method", "GET"), (":scheme", "http"),
                              (":authority", "h2.test"), (":path", "/")],
                          end=True, end_headers=False)
        cont = ContinuationFrame(1)
        cont.data = c.enc.encode([("x-flood", "y" * 1000)])
        try:
            c.send(first)
            for _ in range(2000):
                c.send(cont)
        except OSError:
            pass
        return c.outcome(5)
    if name in ("settings_flood", "ping_flood"):
        if name == "ping_flood":
            one = PingFrame(0, opaque_data=b"12345678").serialize()
        else:
            one = SettingsFrame(0, settings={0x3: 100}).serialize()
        chunk = one * 50_000
        sent = 0
        c.sock.settimeout(3)
        try:
            for _ in range(200):
                c.sock.sendall(chunk)
                sent += len(chunk)
        except socket.timeout:
            return f"BLOCKED after {sent} bytes"
        except OSError:
            return f"CLOSED after {sent} bytes"
        return f"ACCEPTED {sent} bytes"
    return "unknown case"


if __name__ == "__main__":
    print(case(int(sys.argv[1]), sys.argv[2]), flush=True)
