//! Courier's own HTTP/2 engine (issue 14), replacing h2 piece by piece.
//! Each protocol layer is a self-contained submodule: `hpack` is header
//! compression (RFC 7541).

pub(crate) mod hpack;
