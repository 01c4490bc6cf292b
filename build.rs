//! Compiles `proto/` into Rust with a pure-Rust protobuf compiler, so building needs no
//! system `protoc`, and keeps the encoded descriptor set for gRPC server reflection; lists
//! the schema migrations of `migrations/<backend>/` for embedding, so no list is kept by hand.

use prost::Message;

const PROTO_ROOT: &str = "proto";
const PROTO_FILES: &[&str] = &[
    "rescue/v1/records.proto",
    "rescue/v1/ingest.proto",
    "rescue/v1/scoring.proto",
    "rescue/v1/models.proto",
    "rescue/v1/program.proto",
    "rescue/v1/audit.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    write_migration_lists()?;
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

const MIGRATION_BACKENDS: [(&str, &str); 2] = [("sqlite", "SQLITE"), ("postgres", "POSTGRES")];

/// Writes `migrations.rs` into `OUT_DIR`: per backend, `(version, description, SQL)` of every
/// `NNNN_description.sql`, in version order. Both backends must hold the same migrations (the
/// same versions and names): one schema, two dialects.
fn write_migration_lists() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=migrations");
    let root = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("migrations");
    let mut generated = String::new();
    let mut lists = Vec::new();
    for (backend, constant) in MIGRATION_BACKENDS {
        let mut files: Vec<(i64, String, std::path::PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(root.join(backend))? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some(stem) = name.strip_suffix(".sql") else {
                continue;
            };
            let (version, description) = stem
                .split_once('_')
                .ok_or_else(|| format!("migration {name} is not NNNN_description.sql"))?;
            files.push((version.parse()?, description.replace('_', " "), path));
        }
        files.sort();
        generated.push_str(&format!("const {constant}: &[(i64, &str, &str)] = &[\n"));
        for (version, description, path) in &files {
            generated.push_str(&format!(
                "    ({version}, {description:?}, include_str!({:?})),\n",
                path.display().to_string()
            ));
        }
        generated.push_str("];\n");
        lists.push((
            backend,
            files
                .into_iter()
                .map(|(version, description, _)| (version, description))
                .collect::<Vec<_>>(),
        ));
    }
    if lists[0].1 != lists[1].1 {
        return Err(format!(
            "the migrations of {} and {} differ: {:?} vs {:?}",
            lists[0].0, lists[1].0, lists[0].1, lists[1].1
        )
        .into());
    }
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("migrations.rs"), generated)?;
    Ok(())
}
