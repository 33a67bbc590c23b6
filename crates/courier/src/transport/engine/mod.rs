//! Courier's own HTTP/2 engine (issue 14), replacing h2 piece by piece.
//! Each protocol layer is a self-contained submodule: `hpack` is header
//! compression (RFC 7541), `flow` the flow-control windows and
//! `stream_state` a stream's life (RFC 9113 §5).

pub(crate) mod flow;
pub(crate) mod hpack;
pub(crate) mod stream_state;
