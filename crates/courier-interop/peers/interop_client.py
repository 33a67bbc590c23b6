#!/usr/bin/env python3
"""gRPC interop test client on grpcio (the gRPC C core), for testing Courier.

Runs one test case from grpc's doc/interop-test-descriptions.md against a
grpc.testing.TestService server. Written for Courier; run it with the venv
made by scripts/interop/install-python.sh:

    target/interop/python/venv/bin/python \
        crates/courier-interop/peers/interop_client.py \
        --server_host=127.0.0.1 --server_port=10000 --test_case=large_unary

Exit status 0 when the case passes. On failure it prints one line,
"FAIL <case>: <what differed>", on stderr and exits 1.

Where grpcio hides the wire, this client reaches under it:
  - Compressed flag of responses (server_compressed_unary/_streaming): those
    cases use a channel with the C core's per-message decompression off
    ("grpc.per_message_decompression" = 0), so a message that arrived with the
    compressed flag set reaches the deserializer still compressed; the
    deserializer recognises the gzip/zlib stream, inflates it and records that
    the flag was set. The flag itself is therefore checked, as the spec asks.
  - Per-message compression of requests (client_compressed_streaming): grpcio's
    `compression=` compresses every message of a call, and its stream API has
    no per-message write flag. For the message that must go uncompressed, the
    client adds the C core's GRPC_WRITE_NO_COMPRESS flag to that one
    send-message operation, through a small wrapper around the cygrpc module
    that grpc._channel uses (installed only for that case). The case fails if
    the wrapper was not reached.
"""

import argparse
import gzip
import os
import queue
import statistics
import sys
import threading
import time
import zlib

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import grpc  # noqa: E402

_HERE = os.path.dirname(os.path.abspath(__file__))
_GEN = os.path.join(_HERE, "..", "..", "..", "target", "interop", "python", "gen")
sys.path.insert(0, os.environ.get("COURIER_INTEROP_PY_GEN", _GEN))

from interop_pb.grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc  # noqa: E402

SVC = "/grpc.testing.TestService/"
ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"
INITIAL_VALUE = "test_initial_metadata_value"
TRAILING_VALUE = b"\xab\xab\xab"
# Bound for every RPC that the spec doesn't give a deadline, so a broken
# server fails the case instead of hanging it.
RPC_DEADLINE_S = 30.0


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def parse_bool(v):
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {v!r}")


def zeros(n):
    return messages_pb2.Payload(type=messages_pb2.COMPRESSABLE, body=b"\0" * n)


def rpc_error_str(e):
    return f"{e.code().name} {e.details()!r}"


def expect_code(fn, code, what):
    """Runs fn(), which must raise an RpcError with `code`; returns the error."""
    try:
        fn()
    except grpc.RpcError as e:
        check(e.code() == code, f"{what}: expected {code.name}, got {rpc_error_str(e)}")
        return e
    raise Failure(f"{what}: expected {code.name}, got OK")


def check_body(payload, size, what):
    check(
        len(payload.body) == size,
        f"{what}: response payload is {len(payload.body)} bytes, want {size}",
    )
    check(payload.body == b"\0" * size, f"{what}: response payload is not all zeros")


class RequestQueue:
    """A request iterator fed by the test, for interleaved streaming."""

    _END = object()

    def __init__(self):
        self._q = queue.Queue()

    def put(self, msg):
        self._q.put(msg)

    def close(self):
        self._q.put(self._END)

    def __iter__(self):
        return self

    def __next__(self):
        item = self._q.get()
        if item is self._END:
            raise StopIteration
        return item


# --- the response compressed flag ------------------------------------------------


def _looks_like_zlib(data):
    if len(data) < 2:
        return False
    cmf, flg = data[0], data[1]
    return (cmf & 0x0F) == 8 and (cmf >> 4) <= 7 and ((cmf << 8) | flg) % 31 == 0


def inflate_if_compressed(data):
    """Returns (plain bytes, whether the message arrived compressed).

    Only meaningful on a channel with grpc.per_message_decompression = 0.
    """
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


# --- per-message GRPC_WRITE_NO_COMPRESS on the client ------------------------------


class _NoCompressHook:
    """Wraps grpc._channel's cygrpc to flag chosen messages GRPC_WRITE_NO_COMPRESS.

    The request serializer marks a serialized message (by identity); when
    grpc._channel builds the send-message operation for exactly that bytes
    object, the no-compress write flag is added.
    """

    def __init__(self):
        import grpc._channel as channel_mod

        self._channel_mod = channel_mod
        self._real = channel_mod.cygrpc
        self._marked = {}
        self._lock = threading.Lock()
        self.flagged = 0
        hook = self

        class _Proxy:
            def __getattr__(self, name):
                return getattr(hook._real, name)

            def SendMessageOperation(self, data, flags):
                with hook._lock:
                    if hook._marked.get(id(data)) is data:
                        del hook._marked[id(data)]
                        flags |= hook._real.WriteFlag.no_compress
                        hook.flagged += 1
                return hook._real.SendMessageOperation(data, flags)

        channel_mod.cygrpc = _Proxy()

    def mark(self, data):
        with self._lock:
            self._marked[id(data)] = data
        return data

    def remove(self):
        self._channel_mod.cygrpc = self._real


# --- the client ----------------------------------------------------------------------


class Client:
    def __init__(self, args):
        self.args = args
        self.channel = self.new_channel()
        self.stub = test_pb2_grpc.TestServiceStub(self.channel)

    def new_channel(self, options=()):
        a = self.args
        host = a.server_host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        target = f"{host}:{a.server_port}"
        opts = [("grpc.max_receive_message_length", 16 * 1024 * 1024)]
        opts += list(options)
        if a.use_tls:
            root = None
            if a.ca_file:
                with open(a.ca_file, "rb") as f:
                    root = f.read()
            creds = grpc.ssl_channel_credentials(root_certificates=root)
            if a.server_host_override:
                opts.append(("grpc.ssl_target_name_override", a.server_host_override))
            return grpc.secure_channel(target, creds, opts)
        if a.server_host_override:
            opts.append(("grpc.default_authority", a.server_host_override))
        return grpc.insecure_channel(target, opts)

    def close(self):
        self.channel.close()

    # -- basic cases --

    def empty_unary(self):
        resp = self.stub.EmptyCall(empty_pb2.Empty(), timeout=RPC_DEADLINE_S)
        check(resp is not None, "no response")
        check(isinstance(resp, empty_pb2.Empty), f"response is {type(resp).__name__}")
        check(resp.ByteSize() == 0, "response Empty is not empty")

    def _large_unary(self, stub):
        req = messages_pb2.SimpleRequest(response_size=314159, payload=zeros(271828))
        resp = stub.UnaryCall(req, timeout=RPC_DEADLINE_S)
        check_body(resp.payload, 314159, "UnaryCall")

    def large_unary(self):
        self._large_unary(self.stub)

    def client_streaming(self):
        sizes = [27182, 8, 1828, 45904]
        reqs = (messages_pb2.StreamingInputCallRequest(payload=zeros(n)) for n in sizes)
        resp = self.stub.StreamingInputCall(reqs, timeout=RPC_DEADLINE_S)
        check(
            resp.aggregated_payload_size == 74922,
            f"aggregated_payload_size is {resp.aggregated_payload_size}, want 74922",
        )

    def server_streaming(self):
        sizes = [31415, 9, 2653, 58979]
        req = messages_pb2.StreamingOutputCallRequest(
            response_parameters=[messages_pb2.ResponseParameters(size=n) for n in sizes]
        )
        resps = list(self.stub.StreamingOutputCall(req, timeout=RPC_DEADLINE_S))
        check(len(resps) == 4, f"got {len(resps)} responses, want 4")
        for i, (r, n) in enumerate(zip(resps, sizes)):
            check_body(r.payload, n, f"response {i}")

    def ping_pong(self):
        sizes = [(31415, 27182), (9, 8), (2653, 1828), (58979, 45904)]
        reqs = RequestQueue()
        call = self.stub.FullDuplexCall(reqs, timeout=RPC_DEADLINE_S)
        try:
            for i, (out, inp) in enumerate(sizes):
                reqs.put(
                    messages_pb2.StreamingOutputCallRequest(
                        response_parameters=[messages_pb2.ResponseParameters(size=out)],
                        payload=zeros(inp),
                    )
                )
                try:
                    resp = next(call)
                except StopIteration:
                    raise Failure(f"stream ended after {i} responses, want 4") from None
                check_body(resp.payload, out, f"response {i}")
            reqs.close()
            extra = list(call)
            check(not extra, f"got {4 + len(extra)} responses, want 4")
            check(call.code() == grpc.StatusCode.OK, f"status {call.code().name}")
        finally:
            reqs.close()

    def empty_stream(self):
        call = self.stub.FullDuplexCall(iter(()), timeout=RPC_DEADLINE_S)
        resps = list(call)
        check(not resps, f"got {len(resps)} responses, want 0")
        check(call.code() == grpc.StatusCode.OK, f"status {call.code().name}")

    def timeout_on_sleeping_server(self):
        reqs = RequestQueue()
        reqs.put(messages_pb2.StreamingOutputCallRequest(payload=zeros(27182)))
        call = self.stub.FullDuplexCall(reqs, timeout=0.001)
        try:
            expect_code(lambda: list(call), grpc.StatusCode.DEADLINE_EXCEEDED, "FullDuplexCall")
        finally:
            reqs.close()

    def cancel_after_begin(self):
        reqs = RequestQueue()
        fut = self.stub.StreamingInputCall.future(reqs, timeout=RPC_DEADLINE_S)
        try:
            fut.cancel()
            check(fut.cancelled(), "call was not cancelled")
            check(
                fut.code() == grpc.StatusCode.CANCELLED,
                f"status {fut.code().name}, want CANCELLED",
            )
        finally:
            reqs.close()

    def cancel_after_first_response(self):
        reqs = RequestQueue()
        call = self.stub.FullDuplexCall(reqs, timeout=RPC_DEADLINE_S)
        try:
            reqs.put(
                messages_pb2.StreamingOutputCallRequest(
                    response_parameters=[messages_pb2.ResponseParameters(size=31415)],
                    payload=zeros(27182),
                )
            )
            try:
                resp = next(call)
            except StopIteration:
                raise Failure("stream ended before the first response") from None
            check_body(resp.payload, 31415, "first response")
            call.cancel()
            expect_code(lambda: next(call), grpc.StatusCode.CANCELLED, "after cancel")
            check(
                call.code() == grpc.StatusCode.CANCELLED,
                f"status {call.code().name}, want CANCELLED",
            )
        finally:
            reqs.close()

    def _status_echo(self, message, duplex):
        status = messages_pb2.EchoStatus(code=2, message=message)
        req = messages_pb2.SimpleRequest(response_status=status)
        e = expect_code(
            lambda: self.stub.UnaryCall(req, timeout=RPC_DEADLINE_S),
            grpc.StatusCode.UNKNOWN,
            "UnaryCall",
        )
        check(e.details() == message, f"UnaryCall: status message {e.details()!r}, want {message!r}")
        if not duplex:
            return
        sreq = messages_pb2.StreamingOutputCallRequest(response_status=status)
        call = self.stub.FullDuplexCall(iter([sreq]), timeout=RPC_DEADLINE_S)
        e = expect_code(lambda: list(call), grpc.StatusCode.UNKNOWN, "FullDuplexCall")
        check(
            e.details() == message,
            f"FullDuplexCall: status message {e.details()!r}, want {message!r}",
        )

    def status_code_and_message(self):
        self._status_echo("test status message", duplex=True)

    def special_status_message(self):
        self._status_echo(
            "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n",
            duplex=False,
        )

    def custom_metadata(self):
        md = ((ECHO_INITIAL, INITIAL_VALUE), (ECHO_TRAILING, TRAILING_VALUE))

        def check_md(what, initial, trailing):
            got_i = [v for k, v in (initial or ()) if k == ECHO_INITIAL]
            got_t = [v for k, v in (trailing or ()) if k == ECHO_TRAILING]
            check(
                got_i == [INITIAL_VALUE],
                f"{what}: initial metadata {ECHO_INITIAL} is {got_i}, want [{INITIAL_VALUE!r}]",
            )
            check(
                got_t == [TRAILING_VALUE],
                f"{what}: trailing metadata {ECHO_TRAILING} is {got_t}, want [{TRAILING_VALUE!r}]",
            )

        req = messages_pb2.SimpleRequest(response_size=314159, payload=zeros(271828))
        resp, call = self.stub.UnaryCall.with_call(req, metadata=md, timeout=RPC_DEADLINE_S)
        check_body(resp.payload, 314159, "UnaryCall")
        check_md("UnaryCall", call.initial_metadata(), call.trailing_metadata())

        sreq = messages_pb2.StreamingOutputCallRequest(
            response_parameters=[messages_pb2.ResponseParameters(size=314159)],
            payload=zeros(271828),
        )
        call = self.stub.FullDuplexCall(iter([sreq]), metadata=md, timeout=RPC_DEADLINE_S)
        resps = list(call)
        check(len(resps) == 1, f"FullDuplexCall: got {len(resps)} responses, want 1")
        check_body(resps[0].payload, 314159, "FullDuplexCall")
        check_md("FullDuplexCall", call.initial_metadata(), call.trailing_metadata())

    def _unimplemented(self, method):
        fn = self.channel.unary_unary(
            method,
            request_serializer=empty_pb2.Empty.SerializeToString,
            response_deserializer=empty_pb2.Empty.FromString,
        )
        expect_code(
            lambda: fn(empty_pb2.Empty(), timeout=RPC_DEADLINE_S),
            grpc.StatusCode.UNIMPLEMENTED,
            method,
        )

    def unimplemented_method(self):
        self._unimplemented("/grpc.testing.TestService/UnimplementedCall")

    def unimplemented_service(self):
        self._unimplemented("/grpc.testing.UnimplementedService/UnimplementedCall")

    # -- compression --

    def client_compressed_unary(self):
        def req(expect):
            return messages_pb2.SimpleRequest(
                expect_compressed=messages_pb2.BoolValue(value=expect),
                response_size=314159,
                payload=zeros(271828),
            )

        expect_code(
            lambda: self.stub.UnaryCall(req(True), timeout=RPC_DEADLINE_S),
            grpc.StatusCode.INVALID_ARGUMENT,
            "feature probe (uncompressed message, expect_compressed=true)",
        )
        for expect, comp in ((True, grpc.Compression.Gzip), (False, grpc.Compression.NoCompression)):
            what = "compressed call" if expect else "uncompressed call"
            try:
                resp = self.stub.UnaryCall(req(expect), compression=comp, timeout=RPC_DEADLINE_S)
            except grpc.RpcError as e:
                raise Failure(f"{what}: {rpc_error_str(e)}") from None
            check_body(resp.payload, 314159, what)

    def client_compressed_streaming(self):
        def req(expect, n):
            return messages_pb2.StreamingInputCallRequest(
                expect_compressed=messages_pb2.BoolValue(value=expect), payload=zeros(n)
            )

        expect_code(
            lambda: self.stub.StreamingInputCall(iter([req(True, 27182)]), timeout=RPC_DEADLINE_S),
            grpc.StatusCode.INVALID_ARGUMENT,
            "feature probe (uncompressed message, expect_compressed=true)",
        )

        hook = _NoCompressHook()
        try:

            def serialize(msg):
                data = msg.SerializeToString()
                if not msg.expect_compressed.value:
                    hook.mark(data)
                return data

            fn = self.channel.stream_unary(
                SVC + "StreamingInputCall",
                request_serializer=serialize,
                response_deserializer=messages_pb2.StreamingInputCallResponse.FromString,
            )
            try:
                resp = fn(
                    iter([req(True, 27182), req(False, 45904)]),
                    compression=grpc.Compression.Gzip,
                    timeout=RPC_DEADLINE_S,
                )
            except grpc.RpcError as e:
                raise Failure(f"compressed+uncompressed call: {rpc_error_str(e)}") from None
            check(hook.flagged == 1, "could not mark the second message GRPC_WRITE_NO_COMPRESS")
        finally:
            hook.remove()
        check(
            resp.aggregated_payload_size == 73086,
            f"aggregated_payload_size is {resp.aggregated_payload_size}, want 73086",
        )

    def _flag_channel(self):
        return self.new_channel(options=[("grpc.per_message_decompression", 0)])

    def server_compressed_unary(self):
        ch = self._flag_channel()
        try:
            fn = ch.unary_unary(
                SVC + "UnaryCall",
                request_serializer=messages_pb2.SimpleRequest.SerializeToString,
                response_deserializer=flagged_deserializer(messages_pb2.SimpleResponse),
            )
            for want in (True, False):
                req = messages_pb2.SimpleRequest(
                    response_compressed=messages_pb2.BoolValue(value=want),
                    response_size=314159,
                    payload=zeros(271828),
                )
                what = f"response_compressed={str(want).lower()}"
                try:
                    resp, compressed = fn(req, timeout=RPC_DEADLINE_S)
                except grpc.RpcError as e:
                    raise Failure(f"{what}: {rpc_error_str(e)}") from None
                check(
                    compressed == want,
                    f"{what}: response compressed flag is {int(compressed)}, want {int(want)}",
                )
                check_body(resp.payload, 314159, what)
        finally:
            ch.close()

    def server_compressed_streaming(self):
        ch = self._flag_channel()
        try:
            fn = ch.unary_stream(
                SVC + "StreamingOutputCall",
                request_serializer=messages_pb2.StreamingOutputCallRequest.SerializeToString,
                response_deserializer=flagged_deserializer(messages_pb2.StreamingOutputCallResponse),
            )
            plan = [(True, 31415), (False, 92653)]
            req = messages_pb2.StreamingOutputCallRequest(
                response_parameters=[
                    messages_pb2.ResponseParameters(
                        compressed=messages_pb2.BoolValue(value=c), size=n
                    )
                    for c, n in plan
                ]
            )
            try:
                resps = list(fn(req, timeout=RPC_DEADLINE_S))
            except grpc.RpcError as e:
                raise Failure(f"StreamingOutputCall: {rpc_error_str(e)}") from None
            check(len(resps) == 2, f"got {len(resps)} responses, want 2")
            for i, ((resp, compressed), (want, n)) in enumerate(zip(resps, plan)):
                check(
                    compressed == want,
                    f"response {i}: compressed flag is {int(compressed)}, want {int(want)}",
                )
                check_body(resp.payload, n, f"response {i}")
        finally:
            ch.close()

    # -- soak --

    def _soak(self, new_channel_each_time):
        a = self.args
        max_latency = a.soak_per_iteration_max_acceptable_latency_ms / 1000.0
        overall = a.soak_overall_timeout_seconds
        start = time.monotonic()
        latencies = []
        failures = []
        done = 0
        for i in range(a.soak_iterations):
            if overall > 0 and time.monotonic() - start > overall:
                break
            began = time.monotonic()
            ch = self.new_channel() if new_channel_each_time else self.channel
            try:
                stub = test_pb2_grpc.TestServiceStub(ch)
                self._large_unary(stub)
                err = None
            except grpc.RpcError as e:
                err = rpc_error_str(e)
            except Failure as e:
                err = str(e)
            finally:
                if new_channel_each_time:
                    ch.close()
            took = time.monotonic() - began
            latencies.append(took)
            done += 1
            if err is None and took > max_latency:
                err = f"took {took * 1000:.0f} ms > {a.soak_per_iteration_max_acceptable_latency_ms} ms"
            if err is not None:
                failures.append(f"iteration {i}: {err}")
            wait = a.soak_min_time_ms_between_rpcs / 1000.0 - took
            if wait > 0:
                time.sleep(wait)
        check(
            done == a.soak_iterations,
            f"ran {done} of {a.soak_iterations} iterations within {overall} s "
            f"({len(failures)} failed)",
        )
        check(
            len(failures) <= a.soak_max_failures,
            f"{len(failures)} of {done} iterations failed (max {a.soak_max_failures}); "
            f"first: {failures[0] if failures else ''}",
        )
        ms = sorted(x * 1000 for x in latencies)
        if ms:
            print(
                f"soak: {done} iterations, {len(failures)} failed, latency ms "
                f"p50={statistics.median(ms):.1f} max={ms[-1]:.1f}"
            )

    def rpc_soak(self):
        self._soak(new_channel_each_time=False)

    def channel_soak(self):
        self._soak(new_channel_each_time=True)


TEST_CASES = [
    "empty_unary",
    "large_unary",
    "client_streaming",
    "server_streaming",
    "ping_pong",
    "empty_stream",
    "timeout_on_sleeping_server",
    "cancel_after_begin",
    "cancel_after_first_response",
    "status_code_and_message",
    "special_status_message",
    "custom_metadata",
    "unimplemented_method",
    "unimplemented_service",
    "client_compressed_unary",
    "server_compressed_unary",
    "client_compressed_streaming",
    "server_compressed_streaming",
    "rpc_soak",
    "channel_soak",
]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server_host", default="localhost")
    ap.add_argument("--server_port", type=int, required=True)
    ap.add_argument("--test_case", required=True, choices=TEST_CASES)
    ap.add_argument("--use_tls", type=parse_bool, nargs="?", const=True, default=False)
    ap.add_argument("--ca_file", help="PEM root CA(s) to trust (default: system roots)")
    ap.add_argument(
        "--use_test_ca",
        type=parse_bool,
        nargs="?",
        const=True,
        default=False,
        help="accepted for compatibility; give the test CA with --ca_file",
    )
    ap.add_argument("--server_host_override", help="TLS name to verify and :authority")
    ap.add_argument("--soak_iterations", type=int, default=10)
    ap.add_argument("--soak_max_failures", type=int, default=0)
    ap.add_argument("--soak_per_iteration_max_acceptable_latency_ms", type=int, default=1000)
    ap.add_argument("--soak_overall_timeout_seconds", type=float, default=60)
    ap.add_argument("--soak_min_time_ms_between_rpcs", type=int, default=0)
    args = ap.parse_args(argv)

    client = Client(args)
    case = args.test_case
    try:
        getattr(client, case)()
    except Failure as e:
        print(f"FAIL {case}: {e}", file=sys.stderr, flush=True)
        return 1
    except grpc.RpcError as e:
        print(f"FAIL {case}: unexpected status {rpc_error_str(e)}", file=sys.stderr, flush=True)
        return 1
    except Exception as e:  # noqa: BLE001 - one line, whatever went wrong
        msg = " ".join(f"{type(e).__name__}: {e}".split())
        print(f"FAIL {case}: {msg}", file=sys.stderr, flush=True)
        return 1
    finally:
        client.close()
    print(f"PASS {case}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
