//! Generates the messages, clients and servers of the services the library
//! ships (`grpc.health.v1` and `grpc.reflection.v1`/`v1alpha`) from the
//! `.proto` files in `proto/`. The generated code names the runtime as
//! `::courier`, which `lib.rs` makes resolve to this crate.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The v1alpha reflection messages are the v1 ones under another package:
    // the v1alpha service is generated over the v1 Rust types, so one
    // implementation serves both and one client type speaks both.
    let mut prost = prost_build::Config::new();
    prost.extern_path(".grpc.reflection.v1alpha", "crate::reflection::pb::v1");
    courier_build::configure()
        .prost_config(prost)
        // Descriptors are sent as they are stored, without copies.
        .bytes([".grpc.reflection.v1.FileDescriptorResponse"])
        .compile(
            &[
                "proto/grpc/health/v1/health.proto",
                "proto/grpc/reflection/v1/reflection.proto",
                "proto/grpc/reflection/v1alpha/reflection.proto",
            ],
            &["proto"],
        )?;
    Ok(())
}
