//! Compiles `proto/vswitch/v1/vswitch.proto` with protox (pure Rust, no system `protoc`)
//! into prost messages plus tonic client and server, and writes the encoded file
//! descriptor set next to the generated code for gRPC reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/vswitch/v1/vswitch.proto";
    println!("cargo:rerun-if-changed={proto}");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_source_info(true).include_imports(true);
    compiler.open_file(proto)?;
    std::fs::write(
        out_dir.join("vswitch_v1_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
