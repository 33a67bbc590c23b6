//! Courier's own HTTP/2 engine, which carries every connection. `conn` is
//! a connection, client or server: its driver owns the connection's state,
//! and handles reach it through commands. The other submodules are each one
//! layer of the protocol with no knowledge of the connection around it:
//! `frame` the frames (RFC 9113 §4, §6), `hpack` header compression
//! (RFC 7541), `flow` the flow-control windows, `bdp` the receive windows
//! sized by the bandwidth-delay product, `stream_state` a stream's life
//! (RFC 9113 §5), `ping_policy` a server's limit on its clients' PINGs
//! (gRFC A8), and `buffer_pool` the large I/O buffers, shared per thread.

pub(crate) mod bdp;
pub(crate) mod buffer_pool;
pub(crate) mod conn;
pub(crate) mod flow;
pub(crate) mod frame;
pub(crate) mod hpack;
pub(crate) mod ping_policy;
pub(crate) mod stream_state;
