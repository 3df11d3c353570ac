//! Compiles the vendored Dapr component protocol (`contracts/proto`) with the
//! pure-Rust `protox`, so no system `protoc` is needed, and keeps the encoded
//! descriptor set for the gRPC reflection service daprd's discovery calls.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let include = manifest.join("../../contracts/proto");
    let proto = include.join("dapr/proto/components/v1/bindings.proto");
    println!("cargo:rerun-if-changed={}", include.display());

    let descriptors = protox::compile([&proto], [&include])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("components_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .build_transport(false)
        .compile_fds(descriptors)?;
    Ok(())
}
