//! Courier's own HTTP/2 engine (issue 14), built up module by module beside
//! the h2-based transport until it replaces it. Each submodule is one layer
//! of the protocol with no knowledge of the connection around it.

pub(crate) mod frame;
