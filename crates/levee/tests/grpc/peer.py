"""A real gRPC peer for tests/grpc.rs (Debian's python3-grpcio), on raw
bytes: no protoc, identity (de)serializers.

  peer.py server [CERT KEY]        serve test.Svc on a free port; prints "READY port"
                                   (GRPC_MAX_STREAMS: its concurrent stream limit;
                                    GRPC_PORT: the port, instead of a free one)
  peer.py client TARGET SCENARIO [ARG...]   one call through levee; prints a JSON line

Over TLS the client reads GRPC_CA (CA file) and GRPC_NAME (the name to verify).
The server prints what only it can know ("SENT <sha>", "CANCELLED <id>",
"HEADERS <json>") on stdout, flushed, for the test to read.
"""

import hashlib
import json
import os
import sys
import threading
import time
from concurrent import futures

import grpc


def say(line):
    print(line, flush=True)


def pattern(n):
    """n bytes the server streams: not compressible into a repeat of one frame."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(str(i).encode()).digest()
        i += 1
    return bytes(out[:n])


# ---------------------------------------------------------------- server

def unary(request, context):
    md = dict(context.invocation_metadata())
    say("HEADERS " + json.dumps({k: v for k, v in md.items() if isinstance(v, str)}))
    context.send_initial_metadata((("x-echo", md.get("x-req", "")),))
    context.set_trailing_metadata((("x-trail", "done"),))
    return request


def fail(request, context):
    # No message before the status: a trailers-only response.
    context.set_trailing_metadata((("x-why", "asked"),))
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.decode())


def download(request, context):
    body = pattern(int(request.decode()))
    say("SENT " + hashlib.sha256(body).hexdigest())
    for at in range(0, len(body), 64 * 1024):
        yield body[at:at + 64 * 1024]


def upload(request_iterator, context):
    h = hashlib.sha256()
    count = total = 0
    for m in request_iterator:
        h.update(m)
        count += 1
        total += len(m)
    return f"{count}:{total}:{h.hexdigest()}".encode()


def chat(request_iterator, context):
    for m in request_iterator:
        yield m[::-1]


def hang(request, context):
    # Waits for the call to end; a reset from levee ends it.
    say("STARTED " + request.decode())
    while context.is_active():
        time.sleep(0.02)
    say("CANCELLED " + request.decode())
    return b""


def serve(cert=None, key=None):
    # GRPC_MAX_STREAMS: the server's SETTINGS_MAX_CONCURRENT_STREAMS.
    limit = os.environ.get("GRPC_MAX_STREAMS")
    options = (("grpc.max_concurrent_streams", int(limit)),) if limit else ()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32), options=options)
    # GRPC_PORT: a port of a server that went away, to come back on.
    want = int(os.environ.get("GRPC_PORT", "0"))
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
        "Download": grpc.unary_stream_rpc_method_handler(download),
        "Upload": grpc.stream_unary_rpc_method_handler(upload),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
        "Hang": grpc.unary_unary_rpc_method_handler(hang),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Svc", handlers),))
    if cert:
        creds = grpc.ssl_server_credentials(((open(key, "rb").read(), open(cert, "rb").read()),))
        port = server.add_secure_port(f"127.0.0.1:{want}", creds)
    else:
        port = server.add_insecure_port(f"127.0.0.1:{want}")
    server.start()
    say(f"READY {port}")
    server.wait_for_termination()


# ---------------------------------------------------------------- client

def channel(target):
    ca = os.environ.get("GRPC_CA")
    if not ca:
        return grpc.insecure_channel(target)
    creds = grpc.ssl_channel_credentials(open(ca, "rb").read())
    name = os.environ.get("GRPC_NAME", "a.test")
    return grpc.secure_channel(target, creds, options=(("grpc.ssl_target_name_override", name),))


def md(pairs):
    return {k: v for k, v in pairs or ()}


def client(target, scenario, args):
    ch = channel(target)
    call = lambda kind, m: getattr(ch, kind)(f"/test.Svc/{m}")
    out = {}
    started = time.monotonic()
    try:
        if scenario == "unary":
            reply, c = call("unary_unary", "Unary").with_call(
                args[0].encode(), metadata=(("x-req", args[0]),), timeout=10)
            out.update(reply=reply.decode(), initial=md(c.initial_metadata()),
                       trailing=md(c.trailing_metadata()), code=c.code().name)
        elif scenario == "fail":
            try:
                call("unary_unary", "Fail")(args[0].encode(), timeout=10)
                out["code"] = "OK"
            except grpc.RpcError as e:
                out.update(code=e.code().name, details=e.details(), trailing=md(e.trailing_metadata()))
        elif scenario == "download":
            h = hashlib.sha256()
            count = total = 0
            for m in call("unary_stream", "Download")(args[0].encode(), timeout=30):
                h.update(m)
                count += 1
                total += len(m)
            out.update(code="OK", count=count, total=total, sha=h.hexdigest())
        elif scenario == "upload":
            size, n = int(args[0]), int(args[1])
            msgs = [os.urandom(size) for _ in range(n)]
            reply = call("stream_unary", "Upload")(iter(msgs), timeout=30)
            h = hashlib.sha256(b"".join(msgs)).hexdigest()
            out.update(code="OK", reply=reply.decode(), expected=f"{n}:{size * n}:{h}")
        elif scenario == "chat":
            sent = [a.encode() for a in args]
            # Each message goes after the previous answer came back: a real
            # conversation, not a batch.
            q = [threading.Event() for _ in sent]
            def gen():
                for i, m in enumerate(sent):
                    if i:
                        q[i - 1].wait(10)
                    yield m
            got = []
            for i, r in enumerate(call("stream_stream", "Chat")(gen(), timeout=10)):
                got.append(r.decode())
                q[i].set()
            out.update(code="OK", replies=got)
        elif scenario == "cancel":
            f = call("unary_unary", "Hang").future(args[0].encode())
            time.sleep(0.5)
            f.cancel()
            try:
                f.result(timeout=5)
                out["code"] = "OK"
            except grpc.FutureCancelledError:
                out["code"] = "CANCELLED"
        elif scenario == "hang":
            try:
                call("unary_unary", "Hang")(args[0].encode(), timeout=float(args[1]))
                out["code"] = "OK"
            except grpc.RpcError as e:
                out.update(code=e.code().name, details=e.details())
        elif scenario == "deadline":
            try:
                call("unary_unary", "Hang")(args[0].encode(), timeout=0.5)
                out["code"] = "OK"
            except grpc.RpcError as e:
                out["code"] = e.code().name
        else:
            raise SystemExit(f"unknown scenario {scenario}")
    except grpc.RpcError as e:
        out.update(code=e.code().name, details=e.details())
    out["elapsed"] = time.monotonic() - started
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(*sys.argv[2:4])
    else:
        client(sys.argv[2], sys.argv[3], sys.argv[4:])
