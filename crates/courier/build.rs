//! Generates the messages, clients and servers of the services the library
//! ships (`grpc.health.v1`, `grpc.reflection.v1`/`v1alpha` and
//! `grpc.channelz.v1`) from the `.proto` files in `proto/`, for the ones whose
//! cargo feature (`health`, `reflection`, `channelz`) is on. The generated code names the runtime as
//! `::courier`, which `lib.rs` makes resolve to this crate.

use std::env;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Cargo tells a build script its package's features this way.
    let health = env::var_os("CARGO_FEATURE_HEALTH").is_some();
    let reflection = env::var_os("CARGO_FEATURE_REFLECTION").is_some();
    let channelz = env::var_os("CARGO_FEATURE_CHANNELZ").is_some();

    let mut protos = Vec::new();
    if health {
        protos.push("proto/grpc/health/v1/health.proto");
    }
    if reflection {
        protos.extend([
            "proto/grpc/reflection/v1/reflection.proto",
            "proto/grpc/reflection/v1alpha/reflection.proto",
        ]);
    }
    if channelz {
        protos.push("proto/grpc/channelz/v1/channelz.proto");
    }
    if protos.is_empty() {
        // Nothing to generate; without this line Cargo would rerun the
        // script whenever any file of the package changes.
        println!("cargo:rerun-if-changed=build.rs");
        return Ok(());
    }

    // The v1alpha reflection messages are the v1 ones under another package:
    // the v1alpha service is generated over the v1 Rust types, so one
    // implementation serves both and one client type speaks both.
    let mut prost = prost_build::Config::new();
    prost.extern_path(".grpc.reflection.v1alpha", "crate::reflection::pb::v1");
    courier_build::configure()
        .prost_config(prost)
        // Descriptors are sent as they are stored, without copies.
        .bytes([".grpc.reflection.v1.FileDescriptorResponse"])
        .compile(&protos, &["proto"])?;
    Ok(())
}
