"""A grpcio backend for Courier's client-side health-checking test
(crates/courier-tests/tests/health_checking.rs).

Serves `courier.test.Echo/Unary`, answering every call with an EchoResponse
whose `text` is this backend's --name, and grpcio-health-checking's
`grpc.health.v1.Health`, with courier.test.Echo SERVING at first. It binds
127.0.0.1:0 and prints `port N` once serving.

Commands, one a line on stdin, each answered on stdout:
  serving       set courier.test.Echo SERVING; answers `ok`
  not_serving   set courier.test.Echo NOT_SERVING; answers `ok`
  count         answers `count N`: the Echo calls served so far
The backend exits when stdin closes.

Written for Courier's tests. The Echo messages are encoded by hand (one
string field), so that no generated code is needed.
"""

import argparse
import sys
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc

SERVICE = "courier.test.Echo"


def echo_response(text):
    """EchoResponse{text}: field 1, wire type 2."""
    data = text.encode("utf-8")
    if len(data) >= 128:
        raise ValueError("name too long for a one-byte length")
    return b"\x0a" + bytes([len(data)]) + data


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    args = parser.parse_args()

    calls = 0
    lock = threading.Lock()
    reply = echo_response(args.name)

    def unary(request, context):
        nonlocal calls
        with lock:
            calls += 1
        return reply

    echo = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(
                unary, request_deserializer=None, response_serializer=None
            )
        },
    )
    # Each Watch holds a worker thread while it is open.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((echo,))
    servicer = health.HealthServicer()
    servicer.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"port {port}", flush=True)

    for line in sys.stdin:
        command = line.strip()
        if command == "serving":
            servicer.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
            print("ok", flush=True)
        elif command == "not_serving":
            servicer.set(SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)
            print("ok", flush=True)
        elif command == "count":
            with lock:
                n = calls
            print(f"count {n}", flush=True)
        elif command:
            print(f"unknown command {command!r}", flush=True)
    server.stop(None)


if __name__ == "__main__":
    main()
