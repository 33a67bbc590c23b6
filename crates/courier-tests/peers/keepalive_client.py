"""A grpcio client that PINGs more often than a server's default keepalive
policy allows, for Courier's keepalive interop test
(crates/courier-tests/tests/keepalive_interop.rs).

keepalive_client.py TARGET: opens a channel to TARGET with keepalive PINGs
every second, with or without calls (grpc.keepalive_time_ms=1000,
grpc.keepalive_permit_without_calls=1, grpc.http2.max_pings_without_data=0,
grpc.http2.min_time_between_pings_ms=1000), calls
`courier.test.Echo/Unary` once, then waits with no call in progress (at most
60 s) for the channel to leave READY, as it does when the server ends the
connection, and calls Unary again. It prints one JSON line: {"first": "ok"
or the error code, "left_ready": true or false, "states": the connectivity
states seen, in order, "second": "ok" or the error code}. The C core logs
the GOAWAY `too_many_pings` it gets on its standard error.

Written for Courier's tests. Messages are raw bytes (an empty EchoRequest),
so no generated code is needed.
"""

import json
import sys
import threading

import grpc

TIMEOUT = 60  # seconds: bounds a failure, never times a success

OPTIONS = [
    ("grpc.keepalive_time_ms", 1000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.http2.min_time_between_pings_ms", 1000),
]


def call(unary):
    try:
        unary(b"", timeout=TIMEOUT)
        return "ok"
    except grpc.RpcError as e:
        return e.code().name


def main():
    target = sys.argv[1]
    with grpc.insecure_channel(target, options=OPTIONS) as channel:
        unary = channel.unary_unary("/courier.test.Echo/Unary")
        result = {"first": call(unary)}
        states = []
        left = threading.Event()

        def watch(state):
            states.append(state.name)
            if "READY" in states and state != grpc.ChannelConnectivity.READY:
                left.set()

        channel.subscribe(watch, try_to_connect=False)
        result["left_ready"] = left.wait(TIMEOUT)
        channel.unsubscribe(watch)
        result["states"] = list(states)
        result["second"] = call(unary)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
