fn main() -> Result<(), Box<dyn std::error::Error>> {
    courier_build::compile_protos("proto/helloworld.proto")?;
    Ok(())
}
