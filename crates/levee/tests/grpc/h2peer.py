"""A bare HTTP/2 peer on both sides of levee (Python's h2), for what a gRPC
library never shows: request trailers, and a server's stream reset.

  h2peer.py server                 prints "READY port"; serves /trailers and /reset
  h2peer.py client PORT PATH       one request with trailers; prints a JSON line

/trailers answers with the request trailers it got (x-got, JSON), a body
and its own trailers; /reset resets the stream with ENHANCE_YOUR_CALM.
"""

import json
import socket
import sys
import threading

import h2.config
import h2.connection
import h2.events


def text(pairs):
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in pairs}


def serve_conn(sock):
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    paths, trailers = {}, {}
    while True:
        data = sock.recv(65536)
        if not data:
            return
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.RequestReceived):
                paths[ev.stream_id] = text(ev.headers).get(":path")
                if paths[ev.stream_id] == "/reset":
                    conn.reset_stream(ev.stream_id, error_code=h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
            elif isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.TrailersReceived):
                trailers[ev.stream_id] = text(ev.headers)
            elif isinstance(ev, h2.events.StreamEnded) and paths.get(ev.stream_id) == "/trailers":
                got = json.dumps(trailers.get(ev.stream_id, {}))
                conn.send_headers(ev.stream_id, [(":status", "200"), ("x-got", got)])
                conn.send_data(ev.stream_id, b"body")
                conn.send_headers(ev.stream_id, [("x-resp-trailer", "yes")], end_stream=True)
        sock.sendall(conn.data_to_send())


def server():
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    print(f"READY {lsock.getsockname()[1]}", flush=True)
    while True:
        sock, _ = lsock.accept()
        threading.Thread(target=serve_conn, args=(sock,), daemon=True).start()


def client(port, path):
    sock = socket.create_connection(("127.0.0.1", int(port)))
    sock.settimeout(5)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "POST"), (":path", path), (":scheme", "http"),
                            (":authority", "h2.test"), ("te", "trailers")])
    conn.send_data(sid, b"request body")
    conn.send_headers(sid, [("x-req-trailer", "present")], end_stream=True)
    sock.sendall(conn.data_to_send())
    out = {"body": ""}
    done = False
    while not done:
        data = sock.recv(65536)
        if not data:
            out["closed"] = True
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                out["headers"] = text(ev.headers)
            elif isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                out["body"] += ev.data.decode()
            elif isinstance(ev, h2.events.TrailersReceived):
                out["trailers"] = text(ev.headers)
            elif isinstance(ev, h2.events.StreamEnded):
                done = True
            elif isinstance(ev, h2.events.StreamReset):
                out["reset"] = int(ev.error_code)
                done = True
        sock.sendall(conn.data_to_send())
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server()
    else:
        client(sys.argv[2], sys.argv[3])
