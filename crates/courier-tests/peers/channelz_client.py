#!/usr/bin/env python3
"""Reads a Courier server's channelz service with grpcio's own channelz stubs
(grpc_channelz.v1, PyPI's grpcio-channelz) and prints what it found as one
JSON object. Written for Courier; run by the test
crates/courier-tests/tests/channelz.rs, with the venv that
scripts/interop/install-python.sh makes:

    target/interop/python/venv/bin/python \
        crates/courier-tests/peers/channelz_client.py --port=PORT

It pages through GetServers (one server per page, to exercise paging), finds
the server whose listening socket (GetSocket) is on PORT, lists that
server's connections (GetServerSockets, then GetSocket on each) and the
targets of the process's top channels (GetTopChannels), and prints:

    {"server": {"id", "listen_port", "calls_started", "calls_succeeded",
                "calls_failed", "sockets": [{"streams_started", ...}]},
     "channel_targets": [...]}

It exits 1, with the reason on stderr, if anything fails.
"""

import argparse
import ipaddress
import json
import sys
import traceback

import grpc
from grpc_channelz.v1 import channelz_pb2
from grpc_channelz.v1 import channelz_pb2_grpc

TIMEOUT = 20


def tcp(address):
    """(ip text, port) of an Address, or (None, None) if not TCP/IP."""
    if address.WhichOneof("address") != "tcpip_address":
        return None, None
    a = address.tcpip_address
    return str(ipaddress.ip_address(a.ip_address)), a.port


def all_servers(stub):
    servers, start = [], 0
    while True:
        page = stub.GetServers(
            channelz_pb2.GetServersRequest(start_server_id=start, max_results=1), timeout=TIMEOUT
        )
        if len(page.server) > 1:
            raise AssertionError(f"a page of {len(page.server)} servers for max_results=1")
        servers.extend(page.server)
        if page.end:
            return servers
        if not page.server:
            raise AssertionError("an empty page that is not the end")
        start = page.server[-1].ref.server_id + 1


def socket(stub, socket_id):
    return stub.GetSocket(channelz_pb2.GetSocketRequest(socket_id=socket_id), timeout=TIMEOUT).socket


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with grpc.insecure_channel(f"127.0.0.1:{args.port}") as channel:
        stub = channelz_pb2_grpc.ChannelzStub(channel)
        found = None
        for server in all_servers(stub):
            for listen in server.listen_socket:
                _, port = tcp(socket(stub, listen.socket_id).local)
                if port == args.port:
                    found = server
        if found is None:
            raise AssertionError(f"no server listens on port {args.port}")
        refs = stub.GetServerSockets(
            channelz_pb2.GetServerSocketsRequest(server_id=found.ref.server_id), timeout=TIMEOUT
        )
        if not refs.end:
            raise AssertionError("more sockets than one page")
        sockets = []
        for ref in refs.socket_ref:
            s = socket(stub, ref.socket_id)
            local_ip, local_port = tcp(s.local)
            _, remote_port = tcp(s.remote)
            sockets.append(
                {
                    "id": ref.socket_id,
                    "streams_started": s.data.streams_started,
                    "streams_succeeded": s.data.streams_succeeded,
                    "streams_failed": s.data.streams_failed,
                    "messages_sent": s.data.messages_sent,
                    "messages_received": s.data.messages_received,
                    "local_ip": local_ip,
                    "local_port": local_port,
                    "remote_port": remote_port,
                    "has_local_window": s.data.HasField("local_flow_control_window"),
                }
            )
        channels = stub.GetTopChannels(channelz_pb2.GetTopChannelsRequest(), timeout=TIMEOUT)
        print(
            json.dumps(
                {
                    "server": {
                        "id": found.ref.server_id,
                        "listen_port": args.port,
                        "calls_started": found.data.calls_started,
                        "calls_succeeded": found.data.calls_succeeded,
                        "calls_failed": found.data.calls_failed,
                        "sockets": sockets,
                    },
                    "channel_targets": [c.data.target for c in channels.channel],
                }
            )
        )


if __name__ == "__main__":
    try:
        main()
    except Exception:  # noqa: BLE001 - any failure is reported to the test
        traceback.print_exc()
        sys.exit(1)
