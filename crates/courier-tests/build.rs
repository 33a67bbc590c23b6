fn main() -> Result<(), Box<dyn std::error::Error>> {
    courier_build::configure().compile(
        &["proto/echo.proto", "proto/reflect.proto", "proto/partial.proto"],
        &["proto"],
    )?;
    Ok(())
}
