#!/usr/bin/env python3
"""Writes the seed corpora of the byte-level fuzz targets into fuzz/corpus/.

Each seed is a real encoding: framed gRPC messages (plain and compressed),
grpc-timeout values, grpc-message values, google.rpc.Status protobufs, and
compressed messages. The structured targets (metadata, server, reflection)
take their input through `arbitrary`, so their seeds are a few inputs that
short fuzzing runs kept (see docs/FUZZING.md). Run from anywhere:
`python3 fuzz/seeds.py`. Only the standard library is needed; zstd seeds
are hand-made frames, so no zstd module is needed either.
"""

import gzip
import os
import struct
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    os.makedirs(os.path.join(ROOT, target), exist_ok=True)
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data)


def frame(message, compressed=False):
    return bytes([1 if compressed else 0]) + struct.pack(">I", len(message)) + message


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(number, wire_type, payload):
    key = varint(number << 3 | wire_type)
    if wire_type == 2:
        return key + varint(len(payload)) + payload
    return key + payload


# A zstd frame: magic, a descriptor without content size, a window
# descriptor, and one raw last block.
def zstd_raw(window_exponent, data):
    header = struct.pack("<I", (len(data) << 3) | 1)[:3]
    return b"\x28\xb5\x2f\xfd\x00" + bytes([window_exponent << 3]) + header + data


# zstd's magic with an RLE block: one byte repeated.
def zstd_rle(window_exponent, byte, count):
    header = struct.pack("<I", (count << 3) | (1 << 1) | 1)[:3]
    return b"\x28\xb5\x2f\xfd\x00" + bytes([window_exponent << 3]) + header + bytes([byte])


hello = b"\x0a\x05hello"  # a protobuf: field 1, "hello"
text = b"hello hello hello hello hello hello hello"

# framer: two control bytes (limit index, encoding index), then the stream.
# Limits: 0, 1, 5, 64, 1024, 65536; encodings: none, gzip, deflate, zstd.
put("framer", "plain-two", b"\x04\x00" + frame(hello) + frame(b""))
put("framer", "gzip", b"\x04\x01" + frame(gzip.compress(text), True) + frame(hello))
put("framer", "deflate", b"\x04\x02" + frame(zlib.compress(text), True))
put("framer", "zstd", b"\x04\x03" + frame(zstd_raw(0, text), True))
put("framer", "too-large", b"\x02\x00" + frame(b"x" * 6))
put("framer", "bad-flag", b"\x04\x00" + b"\x02\x00\x00\x00\x01x")
put("framer", "truncated", b"\x04\x00" + frame(hello)[:-2])

# timeout: header values, and durations as bytes.
for value in [b"1S", b"100m", b"99999999H", b"0n", b"12345678u", b"5M", b"123456789S", b"1x", b"S"]:
    put("timeout", value.decode(), value)

# status_message: grpc-message values as sent.
put("status_message", "plain", b"not found")
put("status_message", "escapes", b"caf%C3%A9 50%25 done%0A")
put("status_message", "bad-escapes", b"50%zz and %4")
put("status_message", "utf8", "ünïcode \U0001F600".encode())

# status_details: mode byte (bit 0: base64 the rest; bit 1: raw grpc-status),
# code byte, then a google.rpc.Status.
error_info = field(1, 2, b"EMPTY_NAME") + field(2, 2, b"example.com")
any_info = field(1, 2, b"type.googleapis.com/google.rpc.ErrorInfo") + field(2, 2, error_info)
retry = field(1, 2, field(1, 0, varint(3)))
any_retry = field(1, 2, b"type.googleapis.com/google.rpc.RetryInfo") + field(2, 2, retry)
status = field(1, 0, varint(3)) + field(2, 2, b"bad name") + field(3, 2, any_info) + field(3, 2, any_retry)
put("status_details", "error-info", b"\x01\x0b" + status)
put("status_details", "raw-base64", b"\x00\x0b" + b"CAMSCGJhZCBuYW1l")
put("status_details", "raw-status", b"\x03\x00" + b"13" + status)

# decompress: a choice byte (encoding = c % 3, limit index = c / 3 % 8,
# round trip if c / 24 is odd), then the compressed bytes.
# Limits: 0, 1, 100, 1024, 65536, 1 MiB, 4 MiB, none.
put("decompress", "gzip", bytes([0 + 3 * 3]) + gzip.compress(text))
put("decompress", "deflate", bytes([1 + 3 * 3]) + zlib.compress(text))
put("decompress", "zstd-raw", bytes([2 + 3 * 3]) + zstd_raw(0, text))
put("decompress", "zstd-rle-bomb", bytes([2 + 3 * 2]) + zstd_rle(0, 0x41, 100000))
put("decompress", "zstd-window-128m", bytes([2 + 3 * 5]) + zstd_raw(17, b"A"))
put("decompress", "gzip-bomb", bytes([0 + 3 * 2]) + gzip.compress(b"\0" * 100000))
put("decompress", "roundtrip", bytes([0 + 3 * 3 + 24]) + text)

# hpack: two bytes choosing the table size (b % 8 of 0, 1, 32, 33, 64, 100,
# 256, 4096) and the header list limit (b % 8 of 0, 32, 40, 64, 100, 256,
# 1024, 16384), then header blocks, each after its length octet: RFC 7541's
# Appendix C.4 requests and C.6 responses, and a small HPACK bomb.
def blocks(*hexes):
    out = b""
    for h in hexes:
        b = bytes.fromhex(h)
        out += bytes([len(b)]) + b
    return out


put("hpack", "c4-requests", bytes([7, 7]) + blocks(
    "828684418cf1e3c2e5f23a6ba0ab90f4ff",
    "828684be5886a8eb10649cbf",
    "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"))
put("hpack", "c6-responses", bytes([6, 7]) + blocks(
    "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff"
    "6e919d29ad171863c78f0b97c8e9ae82ae43d3",
    "4883640effc1c0bf",
    "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6"
    "c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007"))
put("hpack", "bomb", bytes([7, 6]) + blocks("4001787f17" + "61" * 150, "be" * 200))
# frame: a byte choosing the maximum frame size (a % 3 of 16384, 16390,
# 2^24 - 1) and the write step (a / 4 + 1), a byte choosing the header
# block caps (size b & 15 % 6 of 0, 1, 16, 100, 1000, 65536; frames
# b >> 4 % 5 of 1, 2, 3, 8, 64), then HTTP/2 frames as a peer sends them.
def h2(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


settings = h2(4, 0, 0, struct.pack(">HI", 4, 1 << 20) + struct.pack(">HI", 0x99, 7))
headers_block = b"\x82\x86\x84\x41\x0flocalhost:50051"
conversation = (
    settings
    + h2(4, 1, 0, b"")
    + h2(8, 0, 0, struct.pack(">I", 1 << 16))
    + h2(1, 0x20, 1, struct.pack(">IB", 0x80000000, 15) + headers_block[:5])
    + h2(9, 0, 1, headers_block[5:9])
    + h2(9, 4, 1, headers_block[9:])
    + h2(0, 0x8, 1, b"\x03" + frame(hello) + b"\0\0\0")
    + h2(0, 1, 1, b"")
    + h2(6, 0, 0, b"12345678")
    + h2(2, 0, 3, struct.pack(">IB", 1, 0))
    + h2(0xfa, 0xff, 3, b"extension")
    + h2(3, 0, 3, struct.pack(">I", 8))
    + h2(7, 0, 0, struct.pack(">II", 1, 0) + b"bye")
)
put("frame", "conversation", b"\x04\x45" + conversation)
put("frame", "push-promise", b"\x00\x45" + h2(5, 0x8, 1, b"\x01" + struct.pack(">I", 2) + b"\x82\0") + h2(9, 4, 1, b"\x84"))
put("frame", "continuation-flood", b"\x00\x13" + h2(1, 0, 1, b"\x82") + h2(9, 0, 1, b"") * 8)
put("frame", "interrupted-block", b"\x00\x45" + h2(1, 0, 1, b"\x82") + h2(6, 0, 0, b"12345678"))
put("frame", "stream-errors", b"\x00\x45" + h2(8, 0, 5, b"\0\0\0\0") + h2(2, 0, 5, b"\0") + h2(6, 1, 0, b"abcdefgh"))


# connection: four configuration octets, then ops, each an octet
# `vv p ooooo` (op, p: no pump after, vv: variant) and its own octets; see
# crates/courier/src/__fuzz/connection.rs. Stream selectors: 9 the next new
# stream, 13 the last opened, 0 stream 0.
NEXT, LAST = 9, 13


def op(code, *args, variant=0, pump=True):
    return bytes([code | (0 if pump else 0x20) | (variant << 6)] + list(args))


HEADERS = lambda block=0, flags=0, stream=NEXT, **kw: op(2, stream, block, flags, **kw)
DATA = lambda length, end=0, stream=LAST, **kw: op(5, stream, end, length, **kw)
PUMP, READ = op(16), op(17, 0)
RESPOND = lambda k=0, choice=0, **kw: op(21, k, choice, **kw)
SEND = lambda length, k=0, **kw: op(23, k, length, **kw)
TRAILERS = lambda k=0, code=0: op(25, k, code)
DROP_ALL = lambda k=0: op(27, k, variant=3)

# A unary call: request head and body, the response, trailers.
put("connection", "unary",
    b"\x02\x00\x00\x00" + HEADERS() + DATA(3, end=1) + READ + RESPOND() + SEND(3) + TRAILERS() + DROP_ALL())
# Small windows both ways (server: stream 1000, connection 65535; client:
# initial window 10): the response waits for WINDOW_UPDATEs, then the
# client overruns the server's stream window.
put("connection", "flow-control",
    b"\x02\x06\x02\x00" + HEADERS() + RESPOND() + SEND(7, variant=1) + PUMP
    + op(31, variant=1) + op(31, variant=3) + PUMP + READ + DATA(5, variant=3))
# SETTINGS changes, a header block over CONTINUATIONs, PING, PRIORITY, an
# unknown frame and GOAWAY.
put("connection", "frames",
    b"\x02\x00\x00\x00" + op(0, 3, 1, 1, 4, 8, 5, 10) + HEADERS(flags=0x42) + op(9, *b"12345678")
    + op(11, LAST, 1, 16) + op(12, 0x10, 0, LAST, 3, 1, 2, 3) + DATA(2, end=1) + READ + RESPOND(choice=0x1c)
    + SEND(5) + op(10, LAST, 0, 2, ord("o"), ord("k")))
# A graceful shutdown with keepalive PINGs: two streams, shutdown, the
# client acknowledges the PINGs, answers come after the first GOAWAY.
put("connection", "shutdown",
    b"\x04\x00\x00\x02" + HEADERS(flags=1) + HEADERS(flags=1) + op(29) + op(30) + RESPOND(1, variant=1)
    + op(30) + RESPOND(0) + SEND(2, variant=1) + PUMP + HEADERS(flags=1))
# Rapid reset: streams opened and reset in one read, under a limit of 3.
put("connection", "resets",
    b"\x01\x20\x00\x00" + (HEADERS(pump=False) + op(8, LAST, 8, pump=False)) * 6 + PUMP + READ + DROP_ALL())
