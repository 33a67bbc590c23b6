"""A grpcio peer for Courier's retry interop test
(crates/courier-tests/tests/retry_interop.rs), in one of two roles.

server: serves `courier.test.Echo/Unary` on 127.0.0.1:0, with the grpc
  server options given as --option NAME=INTEGER, and prints `port N`. Each attempt is recorded under its `x-call` metadata with the
  `grpc-previous-rpc-attempts` it carried (0 when absent). An attempt of a
  call fails with UNAVAILABLE while the call has had no more than
  `x-fail-times` attempts, with the `grpc-retry-pushback-ms` trailer
  `x-pushback-ms` asks for, if any; otherwise it answers an EchoResponse
  whose text lists the call's attempts, as `0,1,2`. It exits when stdin
  closes.

client: calls `courier.test.Echo/Unary` at --target with a service config
  that retries UNAVAILABLE (4 attempts, 100 s backoff, so only the
  server's pushback can make a retry happen within the 30 s deadline), with
  the given --metadata, and prints `ok` or `error CODE`.

Written for Courier's tests. Messages are encoded by hand (one string
field), so no generated code is needed.
"""

import argparse
import json
import sys
import threading
from concurrent import futures

import grpc

SERVICE = "courier.test.Echo"


def echo_response(text):
    """EchoResponse{text}: field 1, wire type 2, a one-byte length."""
    data = text.encode("utf-8")
    if len(data) >= 128:
        raise ValueError("text too long for a one-byte length")
    return b"\x0a" + bytes([len(data)]) + data


def serve(options):
    attempts = {}
    lock = threading.Lock()

    def unary(request, context):
        md = dict(context.invocation_metadata())
        call = md.get("x-call", "")
        previous = int(md.get("grpc-previous-rpc-attempts", "0"))
        with lock:
            seen = attempts.setdefault(call, [])
            seen.append(previous)
            listed = ",".join(str(p) for p in seen)
            count = len(seen)
        if count <= int(md.get("x-fail-times", "0")):
            if "x-pushback-ms" in md:
                context.set_trailing_metadata((("grpc-retry-pushback-ms", md["x-pushback-ms"]),))
            context.abort(grpc.StatusCode.UNAVAILABLE, "failing as asked")
        return echo_response(listed)

    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {"Unary": grpc.unary_unary_rpc_method_handler(unary)},
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=options)
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"port {port}", flush=True)
    sys.stdin.read()
    server.stop(0)


def call(target, metadata):
    config = {
        "methodConfig": [
            {
                "name": [{"service": SERVICE}],
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "100s",
                    "maxBackoff": "100s",
                    "backoffMultiplier": 1,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
    options = [("grpc.service_config", json.dumps(config)), ("grpc.enable_retries", 1)]
    with grpc.insecure_channel(target, options=options) as channel:
        unary = channel.unary_unary(f"/{SERVICE}/Unary")
        try:
            unary(b"", timeout=30, metadata=metadata)
            print("ok", flush=True)
        except grpc.RpcError as e:
            print(f"error {e.code().name}", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["server", "client"])
    parser.add_argument("--target")
    parser.add_argument("--metadata", action="append", default=[], help="NAME=VALUE")
    parser.add_argument(
        "--option", action="append", default=[], help="a grpc server option, NAME=INTEGER (server role)"
    )
    args = parser.parse_args()
    if args.role == "server":
        options = [(name, int(value)) for name, value in (o.split("=", 1) for o in args.option)]
        serve(options)
    else:
        metadata = [tuple(m.split("=", 1)) for m in args.metadata]
        call(args.target, metadata)


if __name__ == "__main__":
    main()
