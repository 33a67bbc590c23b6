//! Generates the `grpc.testing` code twice, from the same schemas and the
//! same prost settings:
//!
//! - for Courier (`courier-build`): BenchmarkService (this crate's
//!   `proto/grpc/testing/benchmark_service.proto`) and the interop
//!   TestService, with clients (the load generator) and servers;
//! - for tonic (`tonic-prost-build`): BenchmarkService only, with its client
//!   (the load generator's `--client tonic`) and its server.
//!
//! The interop messages are not copied: `messages.proto`, `empty.proto` and
//! `test.proto` are read from courier-interop's `proto/` through the include
//! path. Neither generator needs `protoc`: courier-build parses with protox
//! itself, and tonic gets a `FileDescriptorSet` that protox produced.
//!
//! Both use `bytes::Bytes` for `bytes` fields, so that payloads are neither
//! copied when decoded nor when a response is built, in either server.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let includes = ["proto", "../courier-interop/proto"];
    let bench = "proto/grpc/testing/benchmark_service.proto";
    let test = "../courier-interop/proto/grpc/testing/test.proto";

    let courier_out = out.join("courier");
    std::fs::create_dir_all(&courier_out)?;
    courier_build::configure()
        .out_dir(&courier_out)
        .bytes(["."])
        .compile(&[bench, test], &includes)?;

    let tonic_out = out.join("tonic");
    std::fs::create_dir_all(&tonic_out)?;
    let fds = protox::compile([bench], includes)?;
    // protox returns prost-types' FileDescriptorSet; tonic-prost-build
    // re-exports the same type.
    let fds: prost_types::FileDescriptorSet = fds;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .out_dir(&tonic_out)
        .bytes(".")
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=../courier-interop/proto");
    Ok(())
}
