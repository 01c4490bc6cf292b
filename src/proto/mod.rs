//! The gRPC contract generated from `proto/rescue/v1/*.proto`, the codec its services and
//! clients use, and its encoded descriptors for server reflection.

pub mod codec;

/// Package `rescue.v1`.
#[allow(clippy::all, clippy::pedantic, missing_debug_implementations)]
pub mod v1 {
    tonic::include_proto!("rescue.v1");
}

/// Every file of `rescue.v1`, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/rescue_descriptor.bin"));
