//! Generates the message types, clients and servers of the example services.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    courier_build::configure().compile(&["proto/helloworld.proto", "proto/route_guide.proto"], &["proto"])?;
    Ok(())
}
