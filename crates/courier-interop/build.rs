//! Generates the `grpc.testing` messages, client and server from the
//! interop schemas in `proto/`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    courier_build::configure().compile(&["proto/grpc/testing/test.proto"], &["proto"])?;
    Ok(())
}
