#!/usr/bin/env python3
"""gRPC interop test server on grpcio (the gRPC C core), for testing Courier.

Implements grpc.testing.TestService as described in grpc's
doc/interop-test-descriptions.md ("Server" section). Written for Courier;
run it with the venv made by scripts/interop/install-python.sh:

    target/interop/python/venv/bin/python \
        crates/courier-interop/peers/interop_server.py --port 10000 [--use_tls ...]

It prints "listening on port N" on stdout once it serves (useful with --port 0).

Compressed requests (the CompressedRequest feature, `expect_compressed`):
grpcio's handlers never see a message's compressed flag, so the server runs
with the C core's per-message decompression turned off
("grpc.per_message_decompression" = 0). The core then hands a message that
arrived with the compressed flag set to the deserializer still compressed,
and passes a flag-0 message through as is. The deserializer below tells the
two apart (a gzip or zlib stream cannot be mistaken for one of these protobuf
messages: gzip starts with 0x1f, an invalid protobuf tag; zlib's header must
check out and the stream must inflate with a good Adler-32) and inflates.
So the check is on the real per-message flag, not on the grpc-encoding header
(which the core strips from the metadata handlers see anyway).
  - expect_compressed present and true:  an uncompressed message -> INVALID_ARGUMENT
  - expect_compressed present and false: a compressed message   -> INVALID_ARGUMENT
  - expect_compressed absent:            either is accepted

Compressed responses: response_compressed / ResponseParameters.compressed
true -> the message goes out gzip-compressed (context.set_compression(Gzip));
false -> context.disable_next_message_compression() before that message.
In FullDuplexCall/HalfDuplexCall the call's compression is fixed when the
response headers go out (with the first response, or at once when the client
asked for x-grpc-test-echo-initial): a later request asking for a compressed
response after the headers were sent without gzip gets an uncompressed one.
"""

import argparse
import gzip
import os
import signal
import sys
import threading
import time
import zlib
from concurrent import futures

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import grpc  # noqa: E402

_HERE = os.path.dirname(os.path.abspath(__file__))
_GEN = os.path.join(_HERE, "..", "..", "..", "target", "interop", "python", "gen")
sys.path.insert(0, os.environ.get("COURIER_INTEROP_PY_GEN", _GEN))

from interop_pb.grpc.testing import empty_pb2, messages_pb2  # noqa: E402

SERVICE = "grpc.testing.TestService"
ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"

_CODES = {c.value[0]: c for c in grpc.StatusCode}


def parse_bool(v):
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {v!r}")


# --- decoding with the compressed flag -----------------------------------------


def _looks_like_zlib(data):
    if len(data) < 2:
        return False
    cmf, flg = data[0], data[1]
    return (cmf & 0x0F) == 8 and (cmf >> 4) <= 7 and ((cmf << 8) | flg) % 31 == 0


def inflate_if_compressed(data):
    """Returns (plain bytes, whether the message arrived compressed)."""
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data), True
    if _looks_like_zlib(data):
        try:
            return zlib.decompress(data), True
        except zlib.error:
            pass
    return data, False


def flagged_deserializer(cls):
    def deserialize(data):
        plain, compressed = inflate_if_compressed(data)
        return cls.FromString(plain), compressed

    return deserialize


def _serialize(msg):
    return msg.SerializeToString()


# --- the service ------------------------------------------------------------------


def _payload(size):
    return messages_pb2.Payload(type=messages_pb2.COMPRESSABLE, body=b"\0" * size)


class _Call:
    """Per-call helper: echoed metadata, response headers, compression."""

    def __init__(self, context):
        self.ctx = context
        md = context.invocation_metadata() or ()
        self.echo_initial = [(k, v) for k, v in md if k == ECHO_INITIAL]
        echo_trailing = [(k, v) for k, v in md if k == ECHO_TRAILING]
        if echo_trailing:
            context.set_trailing_metadata(echo_trailing)
        self.headers_sent = False
        self.gzip_on = False

    def send_headers(self, want_gzip=False):
        """Sends the response headers now (if not yet), with gzip on if asked."""
        if self.headers_sent:
            return
        if want_gzip:
            self.ctx.set_compression(grpc.Compression.Gzip)
            self.gzip_on = True
        self.ctx.send_initial_metadata(self.echo_initial)
        self.headers_sent = True

    def unary_headers(self, want_gzip):
        """For unary responses: headers go out with the response."""
        if want_gzip:
            self.ctx.set_compression(grpc.Compression.Gzip)
            self.gzip_on = True
        if self.echo_initial:
            self.send_headers()

    def before_message(self, compressed_field):
        """Called right before a response message is yielded/returned.

        compressed_field: the BoolValue asking for (un)compression, or None.
        """
        want = compressed_field is not None and compressed_field.value
        if not want and self.gzip_on:
            self.ctx.disable_next_message_compression()
        elif not want and compressed_field is not None:
            # Explicitly uncompressed: guard against any channel default.
            self.ctx.disable_next_message_compression()

    def check_expect_compressed(self, req, compressed):
        if not req.HasField("expect_compressed"):
            return
        if req.expect_compressed.value and not compressed:
            self.ctx.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "expected a compressed request but it was not compressed",
            )
        if not req.expect_compressed.value and compressed:
            self.ctx.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "expected an uncompressed request but it was compressed",
            )

    def echo_status(self, req):
        if not req.HasField("response_status") or req.response_status.code == 0:
            return
        code = _CODES.get(req.response_status.code, grpc.StatusCode.UNKNOWN)
        self.ctx.abort(code, req.response_status.message)

    def check_response_type(self, req):
        if req.response_type != messages_pb2.COMPRESSABLE:
            self.ctx.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"unsupported response_type {req.response_type}",
            )


class TestService:
    def EmptyCall(self, req, context):
        _req, _compressed = req
        call = _Call(context)
        call.unary_headers(False)
        return empty_pb2.Empty()

    def UnaryCall(self, req, context):
        req, compressed = req
        call = _Call(context)
        rc = req.response_compressed if req.HasField("response_compressed") else None
        call.unary_headers(rc is not None and rc.value)
        call.check_expect_compressed(req, compressed)
        call.check_response_type(req)
        call.echo_status(req)
        call.before_message(rc)
        return messages_pb2.SimpleResponse(payload=_payload(req.response_size))

    def CacheableUnaryCall(self, req, context):
        _req, _compressed = req
        call = _Call(context)
        call.echo_initial = call.echo_initial + [("cache-control", "max-age=60, public")]
        call.send_headers()
        body = str(time.time_ns()).encode()
        return messages_pb2.SimpleResponse(
            payload=messages_pb2.Payload(type=messages_pb2.COMPRESSABLE, body=body)
        )

    def StreamingOutputCall(self, req, context):
        req, _compressed = req
        call = _Call(context)
        params = list(req.response_parameters)
        call.send_headers(any(p.HasField("compressed") and p.compressed.value for p in params))
        call.check_response_type(req)
        call.echo_status(req)
        for p in params:
            if p.interval_us > 0:
                time.sleep(p.interval_us / 1e6)
            call.before_message(p.compressed if p.HasField("compressed") else None)
            yield messages_pb2.StreamingOutputCallResponse(payload=_payload(p.size))

    def StreamingInputCall(self, request_iterator, context):
        call = _Call(context)
        if call.echo_initial:
            call.send_headers()
        total = 0
        for req, compressed in request_iterator:
            call.check_expect_compressed(req, compressed)
            total += len(req.payload.body)
        return messages_pb2.StreamingInputCallResponse(aggregated_payload_size=total)

    def _respond(self, call, req):
        params = list(req.response_parameters)
        call.send_headers(any(p.HasField("compressed") and p.compressed.value for p in params))
        call.check_response_type(req)
        call.echo_status(req)
        for p in params:
            if p.interval_us > 0:
                time.sleep(p.interval_us / 1e6)
            call.before_message(p.compressed if p.HasField("compressed") else None)
            yield messages_pb2.StreamingOutputCallResponse(payload=_payload(p.size))

    def FullDuplexCall(self, request_iterator, context):
        call = _Call(context)
        if call.echo_initial:
            call.send_headers()
        for req, _compressed in request_iterator:
            yield from self._respond(call, req)

    def HalfDuplexCall(self, request_iterator, context):
        call = _Call(context)
        if call.echo_initial:
            call.send_headers()
        reqs = [req for req, _compressed in request_iterator]
        for req in reqs:
            yield from self._respond(call, req)

    def UnimplementedCall(self, req, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "UnimplementedCall is not implemented")


def build_handler(svc):
    SReq = messages_pb2.SimpleRequest
    SOReq = messages_pb2.StreamingOutputCallRequest
    SIReq = messages_pb2.StreamingInputCallRequest
    Empty = empty_pb2.Empty
    f = flagged_deserializer
    methods = {
        "EmptyCall": grpc.unary_unary_rpc_method_handler(svc.EmptyCall, f(Empty), _serialize),
        "UnaryCall": grpc.unary_unary_rpc_method_handler(svc.UnaryCall, f(SReq), _serialize),
        "CacheableUnaryCall": grpc.unary_unary_rpc_method_handler(
            svc.CacheableUnaryCall, f(SReq), _serialize
        ),
        "StreamingOutputCall": grpc.unary_stream_rpc_method_handler(
            svc.StreamingOutputCall, f(SOReq), _serialize
        ),
        "StreamingInputCall": grpc.stream_unary_rpc_method_handler(
            svc.StreamingInputCall, f(SIReq), _serialize
        ),
        "FullDuplexCall": grpc.stream_stream_rpc_method_handler(
            svc.FullDuplexCall, f(SOReq), _serialize
        ),
        "HalfDuplexCall": grpc.stream_stream_rpc_method_handler(
            svc.HalfDuplexCall, f(SOReq), _serialize
        ),
        "UnimplementedCall": grpc.unary_unary_rpc_method_handler(
            svc.UnimplementedCall, f(Empty), _serialize
        ),
    }
    return grpc.method_handlers_generic_handler(SERVICE, methods)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True, help="port to listen on (0: any)")
    ap.add_argument(
        "--host",
        default="localhost",
        help="address to bind (default localhost: both 127.0.0.1 and ::1)",
    )
    ap.add_argument("--use_tls", type=parse_bool, nargs="?", const=True, default=False)
    ap.add_argument("--tls_cert_file", help="PEM certificate chain (with --use_tls)")
    ap.add_argument("--tls_key_file", help="PEM private key (with --use_tls)")
    ap.add_argument("--max_workers", type=int, default=64)
    args = ap.parse_args(argv)

    options = [
        # See the module docstring: lets the service see the compressed flag.
        ("grpc.per_message_decompression", 0),
        ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=args.max_workers),
        handlers=[build_handler(TestService())],
        options=options,
    )
    host = args.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    address = f"{host}:{args.port}"
    if args.use_tls:
        if not (args.tls_cert_file and args.tls_key_file):
            ap.error("--use_tls needs --tls_cert_file and --tls_key_file")
        with open(args.tls_key_file, "rb") as f:
            key = f.read()
        with open(args.tls_cert_file, "rb") as f:
            cert = f.read()
        port = server.add_secure_port(address, grpc.ssl_server_credentials([(key, cert)]))
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        print(f"could not bind {address}", file=sys.stderr)
        return 1
    server.start()
    print(f"listening on port {port}", flush=True)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(3600):
        pass
    server.stop(grace=1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
