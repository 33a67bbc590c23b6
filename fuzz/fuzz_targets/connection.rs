//! The connection state machine of Courier's own HTTP/2 engine, as a
//! server: frame sequences made from the input (SETTINGS, HEADERS with
//! valid and invalid header blocks and CONTINUATION, DATA, WINDOW_UPDATE,
//! RST_STREAM, PING, GOAWAY, PRIORITY, PUSH_PROMISE, unknown and raw
//! frames) over an in-memory socket, with ops in between that act as the
//! application (accept, read, release window, respond, reset, drop
//! handles, shut down). Every frame the server writes is read back and
//! checked: well-formed, within the windows and frame size the client
//! granted, on streams it accepted and in a valid order, nothing accepted
//! after its GOAWAY; and the connection ends once the client closes. The
//! input format and the checks are documented in
//! `crates/courier/src/__fuzz/connection.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    courier::__fuzz::drive_server_connection(input);
});
