//! Examples: see the `examples/` binaries.
