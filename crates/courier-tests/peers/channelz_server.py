#!/usr/bin/env python3
"""A grpcio server with grpcio's own channelz service
(grpc_channelz.v1.channelz.add_channelz_servicer, PyPI's grpcio-channelz)
and its health service, for `courier channelz` to read. Written for
Courier; run by crates/courier-cli/tests/cli.rs with the venv that
scripts/interop/install-python.sh makes:

    target/interop/python/venv/bin/python \
        crates/courier-tests/peers/channelz_server.py

It listens on an ephemeral loopback port, prints "port N" once it serves,
and exits when its standard input closes.
"""

import sys
from concurrent import futures

import grpc
from grpc_channelz.v1 import channelz
from grpc_health.v1 import health
from grpc_health.v1 import health_pb2_grpc


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    channelz.add_channelz_servicer(server)
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"port {port}", flush=True)
    sys.stdin.read()
    server.stop(None)


if __name__ == "__main__":
    main()
