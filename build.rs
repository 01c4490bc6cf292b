//! Compiles `proto/` into Rust with a pure-Rust protobuf compiler, so building needs no
//! system `protoc`, and keeps the encoded descriptor set for gRPC server reflection.

use prost::Message;

const PROTO_ROOT: &str = "proto";
const PROTO_FILES: &[&str] = &[
    "rescue/v1/records.proto",
    "rescue/v1/ingest.proto",
    "rescue/v1/scoring.proto",
    "rescue/v1/models.proto",
    "rescue/v1/program.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    let descriptors = protox::compile(PROTO_FILES, [PROTO_ROOT])?;

    // `compile_fds` ignores `file_descriptor_set_path`, so the set is written out here.
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("rescue_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .codec_path("crate::proto::codec::SliceCodec")
        // Attributes in name order, so a record encodes (and fingerprints) the same every time.
        .btree_map(".rescue.v1.Customer.attributes")
        .compile_fds(descriptors)?;
    Ok(())
}
