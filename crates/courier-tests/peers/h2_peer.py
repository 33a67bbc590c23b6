"""A raw HTTP/2 peer for Courier's tests (crates/courier-tests/tests/h2_peers.rs),
written with Python's `h2` (the pure-Python HTTP/2 state machine, no gRPC
library): it frames gRPC by hand, in one of two roles.

client CASE PORT: connects to a Courier server on 127.0.0.1:PORT, reads the
  request messages (serialized protobuf, one hex line each) from stdin, runs
  CASE, and prints one JSON line: {"streams": [...], "window_updates": N
  (WINDOW_UPDATE frames received), "connection_credit" (the bytes that
  the connection's WINDOW_UPDATEs granted), "stalls": N (times sending
  waited for one, its window spent), "receive_window" (the client's initial
  window), "goaway": null or {"error_code", "last_stream_id"}}. Each stream is
  {"id", "headers", "trailers", "messages" (hex), "reset" (an error code or
  null), "data_frames", "max_data_frame"}. The cases:
    unary       one call of Unary with the first message.
    concurrent  a call of Unary per message, all sent before any answer is
                read, on the one connection.
    large       Unary with the first message (large: its sending waits for
                the server's WINDOW_UPDATEs; the answer is read with a
                65,535-byte window that the client reopens as it reads).
    reset       a Bidi call with the first message, left open; once its
                first answer arrives the client resets it (RST_STREAM CANCEL),
                then calls Unary with the second message on the same
                connection.

server: serves HTTP/2 without TLS on 127.0.0.1:0, prints `port N`, then
  answers commands on stdin, one line each: `connections` (how many it
  accepted) and `attempts CALL` (how many requests carried `x-call: CALL`).
  It exits when stdin closes. It answers:
    /courier.test.Echo/Unary          EchoResponse{text: "h2 says " + text}
    /courier.test.Echo/ServerStream   `count` EchoResponse{text, index: i}
  with response headers carrying `x-h2-peer: python-h2`, the messages cut
  into DATA frames of 1 to 7 bytes (a prefix or a message split across
  frames, two messages in one frame), every other frame padded (0 to 4
  bytes), and
  trailers with grpc-status 0 and `x-data-frames: N`. A request's metadata
  changes that:
    x-refuse-times: N, x-refuse-how: rst|goaway   the first N requests of
        its x-call are refused unprocessed, by RST_STREAM REFUSED_STREAM
        (rst) or by GOAWAY NO_ERROR with a last stream ID below the
        request's (goaway; the connection then takes no more streams).
    x-goaway-after: 1   after answering, GOAWAY NO_ERROR naming this stream
        as the last; the connection takes no more streams.
  A connection that sent GOAWAY reads and drops what else arrives until the
  client closes it, so nothing the client sent is answered by a TCP reset.

Written for Courier's tests. Messages are encoded and decoded by hand.
"""

import json
import socket
import sys
import threading

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
import h2.events

TIMEOUT = 60  # seconds: bounds a failure, never times a success


# --- protobuf, by hand ---------------------------------------------------------


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(data, i):
    shift = 0
    n = 0
    while True:
        byte = data[i]
        i += 1
        n |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return n, i


def decode_fields(data):
    """The fields of a protobuf message: {number: value}, the last of each."""
    fields = {}
    i = 0
    while i < len(data):
        key, i = read_varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields[number], i = read_varint(data, i)
        elif wire == 2:
            length, i = read_varint(data, i)
            fields[number] = bytes(data[i : i + length])
            i += length
        else:
            raise ValueError(f"unexpected wire type {wire}")
    return fields


def echo_response(text, index=0):
    """EchoResponse{text (1), index (3)}."""
    data = text.encode("utf-8")
    out = b"\x0a" + varint(len(data)) + data
    if index:
        out += b"\x18" + varint(index)
    return out


def grpc_frame(message):
    return b"\x00" + len(message).to_bytes(4, "big") + message


def grpc_messages(data):
    """Splits a stream's DATA into its gRPC messages (uncompressed)."""
    out = []
    i = 0
    while i < len(data):
        if data[i] != 0:
            raise ValueError("a compressed message")
        length = int.from_bytes(data[i + 1 : i + 5], "big")
        out.append(bytes(data[i + 5 : i + 5 + length]))
        i += 5 + length
    if i != len(data):
        raise ValueError("a partial message at the end of the stream")
    return out


# --- the client -------------------------------------------------------------------


class Stream:
    def __init__(self, stream_id):
        self.id = stream_id
        self.headers = None
        self.trailers = None
        self.data = bytearray()
        self.ended = False
        self.reset = None
        self.data_frames = 0
        self.max_data_frame = 0

    def done(self):
        return self.ended or self.reset is not None

    def has_message(self):
        """Whether a whole gRPC message has arrived."""
        return len(self.data) >= 5 and len(self.data) >= 5 + int.from_bytes(self.data[1:5], "big")

    def result(self):
        return {
            "id": self.id,
            "headers": self.headers,
            "trailers": self.trailers,
            "messages": [m.hex() for m in grpc_messages(self.data)],
            "reset": self.reset,
            "data_frames": self.data_frames,
            "max_data_frame": self.max_data_frame,
        }


def header_dict(headers):
    out = {}
    for name, value in headers:
        out[name] = out[name] + "," + value if name in out else value
    return out


class Client:
    def __init__(self, port):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.conn = H2Connection(H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.flush()
        self.streams = {}
        self.window_updates = 0
        self.connection_credit = 0
        self.stalls = 0
        self.goaway = None

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self):
        """Reads once from the socket and handles what came."""
        data = self.sock.recv(65536)
        if not data:
            raise RuntimeError("the server closed the connection")
        for event in self.conn.receive_data(data):
            stream = self.streams.get(getattr(event, "stream_id", None))
            if isinstance(event, h2.events.ResponseReceived):
                stream.headers = header_dict(event.headers)
            elif isinstance(event, h2.events.TrailersReceived):
                stream.trailers = header_dict(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                stream.data += event.data
                stream.data_frames += 1
                stream.max_data_frame = max(stream.max_data_frame, event.flow_controlled_length)
                # Reopens the windows as the data is consumed: h2 sends
                # WINDOW_UPDATE once enough is acknowledged.
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                stream.ended = True
            elif isinstance(event, h2.events.StreamReset):
                if stream is not None:
                    stream.reset = int(event.error_code)
            elif isinstance(event, h2.events.WindowUpdated):
                self.window_updates += 1
                if event.stream_id == 0:
                    self.connection_credit += event.delta
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.goaway = {"error_code": int(event.error_code), "last_stream_id": event.last_stream_id}
        self.flush()

    def wait(self, done):
        while not done():
            self.pump()

    def open(self, path, message, end=True):
        """Starts a call: headers and one message, respecting flow control."""
        stream_id = self.conn.get_next_available_stream_id()
        self.streams[stream_id] = Stream(stream_id)
        headers = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", f"127.0.0.1:{self.port}"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
        self.conn.send_headers(stream_id, headers)
        self.send(stream_id, grpc_frame(message), end)
        return stream_id

    def send(self, stream_id, data, end):
        view = memoryview(data)
        while view:
            size = min(self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size, len(view))
            if size == 0:
                self.flush()
                self.stalls += 1
                self.pump()  # waits for the server's WINDOW_UPDATE
                continue
            self.conn.send_data(stream_id, bytes(view[:size]))
            view = view[size:]
        if end:
            self.conn.end_stream(stream_id)
        self.flush()

    def result(self, **extra):
        out = {
            "streams": [s.result() for s in self.streams.values()],
            "window_updates": self.window_updates,
            "connection_credit": self.connection_credit,
            "stalls": self.stalls,
            "receive_window": self.conn.local_settings.initial_window_size,
            "goaway": self.goaway,
        }
        out.update(extra)
        return out


UNARY = "/courier.test.Echo/Unary"
BIDI = "/courier.test.Echo/Bidi"


def run_client(case, port, messages):
    client = Client(port)
    if case in ("unary", "large"):
        stream_id = client.open(UNARY, messages[0])
        client.wait(lambda: client.streams[stream_id].done())
    elif case == "concurrent":
        ids = [client.open(UNARY, m) for m in messages]
        client.wait(lambda: all(client.streams[i].done() for i in ids))
    elif case == "reset":
        bidi = client.open(BIDI, messages[0], end=False)
        # The call is in progress: its first answer has come.
        client.wait(lambda: client.streams[bidi].has_message() or client.streams[bidi].done())
        if client.streams[bidi].done():
            raise SystemExit("the Bidi call ended before the client could reset it")
        client.conn.reset_stream(bidi, error_code=ErrorCodes.CANCEL)
        client.flush()
        unary = client.open(UNARY, messages[1])
        client.wait(lambda: client.streams[unary].done())
    else:
        raise SystemExit(f"unknown case {case}")
    print(json.dumps(client.result()), flush=True)
    client.conn.close_connection()
    client.flush()
    client.sock.close()


# --- the server -------------------------------------------------------------------


class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.connections = 0
        self.attempts = {}

    def attempt(self, call):
        with self.lock:
            self.attempts[call] = self.attempts.get(call, 0) + 1
            return self.attempts[call]


COUNTS = Counts()


def cut(data):
    """Cuts `data` into chunks of 1 to 7 bytes."""
    chunks = []
    i = 0
    size = 1
    while i < len(data):
        chunks.append(data[i : i + size])
        i += size
        size = size % 7 + 1
    return chunks


class ServerConnection:
    def __init__(self, sock):
        self.sock = sock
        self.conn = H2Connection(H2Configuration(client_side=False, header_encoding="utf-8"))
        self.requests = {}  # stream ID -> (headers, body)
        self.closing = False

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def serve(self):
        self.conn.initiate_connection()
        self.flush()
        while True:
            data = self.sock.recv(65536)
            if not data:
                return
            if self.closing:
                continue  # after GOAWAY: read and drop until the client closes
            for event in self.conn.receive_data(data):
                self.handle(event)
                if self.closing:
                    break
            self.flush()

    def handle(self, event):
        if isinstance(event, h2.events.RequestReceived):
            headers = header_dict(event.headers)
            call = headers.get("x-call", "")
            attempt = COUNTS.attempt(call)
            if attempt <= int(headers.get("x-refuse-times", "0")):
                if headers.get("x-refuse-how") == "goaway":
                    self.conn.close_connection(error_code=ErrorCodes.NO_ERROR, last_stream_id=max(0, event.stream_id - 2))
                    self.closing = True
                else:
                    self.conn.reset_stream(event.stream_id, error_code=ErrorCodes.REFUSED_STREAM)
                return
            self.requests[event.stream_id] = (headers, bytearray())
        elif isinstance(event, h2.events.DataReceived):
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if event.stream_id in self.requests:
                self.requests[event.stream_id][1].extend(event.data)
        elif isinstance(event, h2.events.StreamEnded):
            if event.stream_id in self.requests:
                self.answer(event.stream_id, *self.requests.pop(event.stream_id))

    def answer(self, stream_id, headers, body):
        request = decode_fields(grpc_messages(body)[0])
        text = request.get(1, b"").decode("utf-8")
        path = headers[":path"]
        if path == UNARY:
            messages = [echo_response("h2 says " + text)]
        elif path == "/courier.test.Echo/ServerStream":
            messages = [echo_response(text, i) for i in range(request.get(5, 0))]
        else:
            self.conn.send_headers(
                stream_id,
                [(":status", "200"), ("content-type", "application/grpc"), ("grpc-status", "12")],
                end_stream=True,
            )
            return
        self.conn.send_headers(
            stream_id, [(":status", "200"), ("content-type", "application/grpc"), ("x-h2-peer", "python-h2")]
        )
        chunks = cut(b"".join(grpc_frame(m) for m in messages))
        for n, chunk in enumerate(chunks):
            self.conn.send_data(stream_id, chunk, pad_length=(n % 5) if n % 2 else None)
        self.conn.send_headers(
            stream_id, [("grpc-status", "0"), ("x-data-frames", str(len(chunks)))], end_stream=True
        )
        if headers.get("x-goaway-after") == "1":
            self.conn.close_connection(error_code=ErrorCodes.NO_ERROR, last_stream_id=stream_id)
            self.closing = True


def serve_connection(sock):
    with sock:
        try:
            ServerConnection(sock).serve()
        except (ConnectionError, OSError):
            pass


def run_server():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)

    def accept():
        while True:
            sock, _ = listener.accept()
            with COUNTS.lock:
                COUNTS.connections += 1
            threading.Thread(target=serve_connection, args=(sock,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    print(f"port {listener.getsockname()[1]}", flush=True)
    for line in sys.stdin:
        words = line.split()
        with COUNTS.lock:
            if words == ["connections"]:
                print(COUNTS.connections, flush=True)
            elif len(words) == 2 and words[0] == "attempts":
                print(COUNTS.attempts.get(words[1], 0), flush=True)
            else:
                print(f"unknown command {line.strip()!r}", flush=True)


def main():
    if sys.argv[1:2] == ["server"]:
        run_server()
    elif len(sys.argv) == 4 and sys.argv[1] == "client":
        messages = [bytes.fromhex(line) for line in sys.stdin.read().splitlines()]
        run_client(sys.argv[2], int(sys.argv[3]), messages)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
