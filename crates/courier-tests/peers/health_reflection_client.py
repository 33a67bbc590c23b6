#!/usr/bin/env python3
"""Checks a Courier server's health and reflection services with grpcio's own
clients: the grpc_health.v1 stubs (grpcio-health-checking) and
grpc_reflection's ProtoReflectionDescriptorDatabase (grpcio-reflection), plus
a v1 reflection stub. Written for Courier; run by the test
crates/courier-tests/tests/health_reflection.rs, with the venv that
scripts/interop/install-python.sh makes:

    target/interop/python/venv/bin/python \
        crates/courier-tests/peers/health_reflection_client.py --port=PORT

The server must host courier.test.Echo (health: SERVING),
courier.test.reflect.Inventory (health: NOT_SERVING), health and reflection.
The script prints "watching <service>" once a Watch call has its first
status; the test then changes that service's status: courier.test.Echo to
NOT_SERVING, courier.test.Later (unknown until then) to SERVING. It prints
"ok" and exits 0 when every check passes; otherwise it reports the failed
check on stderr and exits 1.
"""

import argparse
import sys
import traceback

import grpc
from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha import reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

TIMEOUT = 20
ECHO = "courier.test.Echo"
INVENTORY = "courier.test.reflect.Inventory"
LATER = "courier.test.Later"
SERVICES = {
    ECHO,
    INVENTORY,
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
}
Status = health_pb2.HealthCheckResponse


def expect(what, got, want):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def expect_error(what, code, call):
    try:
        result = call()
    except grpc.RpcError as err:
        expect(f"{what}: status", err.code(), code)
        return
    except KeyError:
        if code == "KeyError":
            return
        raise
    raise AssertionError(f"{what}: got {result!r}, want {code}")


def announce(line):
    print(line, flush=True)


def check_health(channel):
    stub = health_pb2_grpc.HealthStub(channel)

    def check(service):
        return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT).status

    expect("Check('')", check(""), Status.SERVING)
    expect(f"Check({ECHO})", check(ECHO), Status.SERVING)
    expect(f"Check({INVENTORY})", check(INVENTORY), Status.NOT_SERVING)
    expect_error("Check(unknown)", grpc.StatusCode.NOT_FOUND, lambda: check("no.such.Service"))

    def statuses():
        reply = stub.List(health_pb2.HealthListRequest(), timeout=TIMEOUT)
        return {name: response.status for name, response in reply.statuses.items()}

    expect(
        "List",
        statuses(),
        {"": Status.SERVING, ECHO: Status.SERVING, INVENTORY: Status.NOT_SERVING},
    )

    # Watch a known service: its status at once, then the change the test makes.
    watch = stub.Watch(health_pb2.HealthCheckRequest(service=ECHO), timeout=TIMEOUT)
    expect(f"Watch({ECHO}) first", next(watch).status, Status.SERVING)
    announce(f"watching {ECHO}")
    expect(f"Watch({ECHO}) after the change", next(watch).status, Status.NOT_SERVING)
    watch.cancel()

    # Watch an unknown service: SERVICE_UNKNOWN, and the call stays open
    # until the service gets a status.
    watch = stub.Watch(health_pb2.HealthCheckRequest(service=LATER), timeout=TIMEOUT)
    expect(f"Watch({LATER}) first", next(watch).status, Status.SERVICE_UNKNOWN)
    announce(f"watching {LATER}")
    expect(f"Watch({LATER}) once known", next(watch).status, Status.SERVING)
    watch.cancel()

    expect(
        "List after the changes",
        statuses(),
        {
            "": Status.SERVING,
            ECHO: Status.NOT_SERVING,
            INVENTORY: Status.NOT_SERVING,
            LATER: Status.SERVING,
        },
    )


def check_reflection_database(channel):
    """grpcio-reflection's client (v1alpha), as tools use it: through a
    DescriptorPool. Each lookup on a fresh database is a new stream."""
    db = ProtoReflectionDescriptorDatabase(channel)
    expect("services", set(db.get_services()), SERVICES)

    pool = descriptor_pool.DescriptorPool(db)
    inventory = pool.FindServiceByName(INVENTORY)
    get = inventory.FindMethodByName("Get")
    expect("Inventory.Get input", get.input_type.full_name, "courier.test.EchoRequest")
    expect("Inventory.Get output", get.output_type.full_name, "courier.test.reflect.Item")
    expect("Inventory file", inventory.file.name, "reflect.proto")
    expect(
        "reflect.proto imports",
        sorted(dep.name for dep in inventory.file.dependencies),
        ["echo.proto", "google/protobuf/timestamp.proto"],
    )
    item = pool.FindMessageTypeByName("courier.test.reflect.Item")
    expect("Item.added type", item.fields_by_name["added"].message_type.full_name, "google.protobuf.Timestamp")
    tag = pool.FindMessageTypeByName("courier.test.reflect.Item.Tag")
    expect("Tag.Color values", [v.name for v in tag.enum_types_by_name["Color"].values], ["RED", "BLUE"])
    expect("Kind.BOOK", pool.FindEnumTypeByName("courier.test.reflect.Kind").values_by_name["BOOK"].number, 1)
    health = pool.FindServiceByName("grpc.health.v1.Health")
    expect("Health methods", sorted(m.name for m in health.methods), ["Check", "List", "Watch"])
    reflection = pool.FindServiceByName("grpc.reflection.v1.ServerReflection")
    method = reflection.FindMethodByName("ServerReflectionInfo")
    expect("ServerReflectionInfo streams", (method.client_streaming, method.server_streaming), (True, True))

    # Extensions, through the pool and the database.
    expect("extension 100", pool.FindExtensionByNumber(item, 100).full_name, "courier.test.reflect.note")
    expect("extension numbers", sorted(db.FindAllExtensionNumbers("courier.test.reflect.Item")), [100, 101, 150])
    # This protobuf's DescriptorDatabase answers FindFileContainingExtension
    # with None before the reflection database would ask the server, so ask
    # through grpcio-reflection's v1alpha stub.
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    ask = reflection_pb2.ServerReflectionRequest(
        file_containing_extension=reflection_pb2.ExtensionRequest(
            containing_type="courier.test.reflect.Item", extension_number=150
        )
    )
    answer = next(stub.ServerReflectionInfo(iter([ask]), timeout=TIMEOUT))
    first = descriptor_pb2.FileDescriptorProto()
    first.ParseFromString(answer.file_descriptor_response.file_descriptor_proto[0])
    expect("file containing extension 150", first.name, "reflect.proto")
    ask.file_containing_extension.extension_number = 199
    answer = next(stub.ServerReflectionInfo(iter([ask]), timeout=TIMEOUT))
    expect("unknown extension", answer.WhichOneof("message_response"), "error_response")
    expect("unknown extension code", answer.error_response.error_code, grpc.StatusCode.NOT_FOUND.value[0])

    # Every kind of symbol, each asked of the server on a new stream.
    for symbol in [
        INVENTORY,
        "courier.test.reflect.Inventory.Get",
        "courier.test.reflect.Item",
        "courier.test.reflect.Item.name",
        "courier.test.reflect.Item.price",
        "courier.test.reflect.Item.Tag.Color",
        "courier.test.reflect.BOOK",
        "courier.test.reflect.note",
        "courier.test.reflect.Extras.featured",
    ]:
        fresh = ProtoReflectionDescriptorDatabase(channel)
        expect(f"file containing {symbol}", fresh.FindFileContainingSymbol(symbol).name, "reflect.proto")
    fresh = ProtoReflectionDescriptorDatabase(channel)
    expect(
        "file by name",
        fresh.FindFileByName("google/protobuf/timestamp.proto").package,
        "google.protobuf",
    )
    # The database asserts that errors are NOT_FOUND, then raises KeyError.
    expect_error(
        "unknown symbol",
        "KeyError",
        lambda: ProtoReflectionDescriptorDatabase(channel).FindFileContainingSymbol("courier.test.Nope"),
    )
    expect_error(
        "unknown file",
        "KeyError",
        lambda: ProtoReflectionDescriptorDatabase(channel).FindFileByName("nope.proto"),
    )

    # The descriptors are enough to call the server, as grpcurl does.
    request_class = message_factory.GetMessageClass(pool.FindMessageTypeByName("courier.test.EchoRequest"))
    response_class = message_factory.GetMessageClass(pool.FindMessageTypeByName("courier.test.EchoResponse"))
    unary = channel.unary_unary(
        "/courier.test.Echo/Unary",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    reply = unary(request_class(text="hello through reflection"), timeout=TIMEOUT)
    expect("Echo.Unary through reflected types", reply.text, "hello through reflection")


def check_reflection_v1(channel):
    """The v1 service, on one stream: a stub on the v1 path with the v1alpha
    messages, which are the same on the wire."""
    info = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    Request = reflection_pb2.ServerReflectionRequest
    requests = [
        Request(host="example", list_services=""),
        Request(file_containing_symbol=INVENTORY),
        Request(file_by_filename="echo.proto"),
        Request(file_containing_symbol="no.such.Symbol"),
        Request(all_extension_numbers_of_type="courier.test.reflect.Item"),
        Request(
            file_containing_extension=reflection_pb2.ExtensionRequest(
                containing_type="courier.test.reflect.Item", extension_number=101
            )
        ),
    ]
    responses = list(info(iter(requests), timeout=TIMEOUT))
    expect("v1 answer count", len(responses), len(requests))
    for request, response in zip(requests, responses):
        expect("v1 original_request", response.original_request, request)
    expect("v1 valid_host", responses[0].valid_host, "example")

    expect("v1 services", {s.name for s in responses[0].list_services_response.service}, SERVICES)

    def names(response):
        expect("v1 answer kind", response.WhichOneof("message_response"), "file_descriptor_response")
        files = []
        for raw in response.file_descriptor_response.file_descriptor_proto:
            proto = descriptor_pb2.FileDescriptorProto()
            proto.ParseFromString(raw)
            files.append(proto)
        return [f.name for f in files], files

    first, files = names(responses[1])
    expect("v1 symbol: the file asked for first", first[0], "reflect.proto")
    expect("v1 symbol: with its imports", sorted(first), ["echo.proto", "google/protobuf/timestamp.proto", "reflect.proto"])
    # Imports already sent on the stream are not sent again; the file asked
    # for always is.
    again, more = names(responses[2])
    expect("v1 file by name, already sent", again, ["echo.proto"])
    error = responses[3]
    expect("v1 unknown symbol", error.WhichOneof("message_response"), "error_response")
    expect("v1 unknown symbol code", error.error_response.error_code, grpc.StatusCode.NOT_FOUND.value[0])
    numbers = responses[4].all_extension_numbers_response
    expect("v1 extension numbers", (numbers.base_type_name, sorted(numbers.extension_number)),
           ("courier.test.reflect.Item", [100, 101, 150]))
    expect("v1 extension 101", names(responses[5])[0], ["reflect.proto"])

    # The files of the stream build a pool on their own.
    pool = descriptor_pool.DescriptorPool()
    added = set()
    pending = {f.name: f for f in files + more}
    while pending:
        ready = [f for f in pending.values() if all(d in added for d in f.dependency)]
        if not ready:
            raise AssertionError(f"v1 files with unresolved imports: {sorted(pending)}")
        for f in ready:
            pool.Add(f)
            added.add(f.name)
            del pending[f.name]
    expect(
        "v1 pool",
        pool.FindMessageTypeByName("courier.test.reflect.Item").fields_by_name["kind"].enum_type.full_name,
        "courier.test.reflect.Kind",
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with grpc.insecure_channel(f"{args.host}:{args.port}") as channel:
        try:
            check_health(channel)
            check_reflection_database(channel)
            check_reflection_v1(channel)
        except Exception:  # noqa: BLE001 - report any failure the same way
            traceback.print_exc()
            return 1
    announce("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
