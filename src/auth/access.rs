//! Which role each RPC needs: the one table the authentication layer consults. Health and
//! reflection are open (load balancers and tools probe them without credentials); every
//! method of the `rescue.v1` contract names exactly one role.

use super::Role;

/// What a call to a gRPC path requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credential needed.
    Open,
    /// A credential holding this role.
    Requires(Role),
}

/// The access a request to `path` (`/package.Service/Method`) needs. A path outside the
/// contract still needs a credential (with any role), so probing it for methods reveals
/// nothing to strangers; the router then answers UNIMPLEMENTED.
pub fn access(path: &str) -> Option<Access> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    if service == "grpc.health.v1.Health" || service.starts_with("grpc.reflection.") {
        return Some(Access::Open);
    }
    let role = match (service, method) {
        (
            "rescue.v1.Scoring",
            "ScoreCustomer" | "ScoreCustomers" | "RecommendRecovery" | "RecommendRecoveries",
        ) => Role::Score,
        ("rescue.v1.Ingest", "IngestRecords" | "RecordRecoveryOutcome") => Role::Ingest,
        ("rescue.v1.Models", "Train") => Role::Train,
        ("rescue.v1.Models", "ListModels" | "GetModel")
        | ("rescue.v1.Program", "RecoveryFunnel" | "GetProgram") => Role::Read,
        ("rescue.v1.Models", "PromoteModel" | "RollbackModel")
        | ("rescue.v1.Program", "ReloadProgram")
        | ("rescue.v1.Audit", "ListAuditEvents") => Role::Admin,
        _ => return None,
    };
    Some(Access::Requires(role))
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    /// Every method the contract declares, as `/package.Service/Method`.
    fn contract_methods() -> Vec<String> {
        let descriptors = prost_types::FileDescriptorSet::decode(crate::proto::FILE_DESCRIPTOR_SET)
            .expect("the contract's descriptors decode");
        descriptors
            .file
            .iter()
            .flat_map(|file| {
                let package = file.package().to_owned();
                file.service.iter().flat_map(move |service| {
                    let service_name = format!("{package}.{}", service.name());
                    service
                        .method
                        .iter()
                        .map(move |method| format!("/{service_name}/{}", method.name()))
                })
            })
            .collect()
    }

    #[test]
    fn every_method_of_the_contract_names_its_role() {
        let methods = contract_methods();
        assert!(methods.len() >= 15, "{methods:?}");
        for method in methods {
            assert!(
                matches!(access(&method), Some(Access::Requires(_))),
                "{method} has no role"
            );
        }
    }

    #[test]
    fn health_and_reflection_are_open_and_strangers_are_not() {
        assert_eq!(access("/grpc.health.v1.Health/Check"), Some(Access::Open));
        assert_eq!(
            access("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            Some(Access::Open)
        );
        assert_eq!(access("/rescue.v1.Models/DropEverything"), None);
        assert_eq!(access("no-slash"), None);
        assert_eq!(
            access("/rescue.v1.Models/PromoteModel"),
            Some(Access::Requires(Role::Admin))
        );
    }
}
