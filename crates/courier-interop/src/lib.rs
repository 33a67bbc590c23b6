//! Placeholder: the interop client and server land with the interoperability issue.
