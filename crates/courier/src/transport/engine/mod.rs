//! Courier's own HTTP/2 engine (issue 14), built up module by module beside
//! the h2-based transport until it replaces it. Each submodule is one layer
//! of the protocol with no knowledge of the connection around it: `frame`
//! the frames (RFC 9113 §4, §6), `hpack` header compression (RFC 7541),
//! `flow` the flow-control windows, `bdp` the receive windows sized by the
//! bandwidth-delay product, `stream_state` a stream's life (RFC 9113 §5),
//! and `ping_policy` a server's limit on its clients' PINGs (gRFC A8).

pub(crate) mod bdp;
pub(crate) mod conn;
pub(crate) mod flow;
pub(crate) mod frame;
pub(crate) mod hpack;
pub(crate) mod ping_policy;
pub(crate) mod stream_state;
