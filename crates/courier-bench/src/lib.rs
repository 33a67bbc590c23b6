//! Placeholder: the load generator and benchmark servers land with the benchmark issue.
