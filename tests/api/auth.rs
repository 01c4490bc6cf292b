//! Authentication and roles, end to end: every RPC of the contract called with no credential,
//! with a credential lacking its role, and with one holding it — API keys and JWTs — gives
//! exactly the documented code; health stays open; a key removed from the key file stops
//! working while the server runs.

use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rescue::auth::{AuthSettings, JwtAlgorithm, JwtSettings, Role, key_digest, new_key};
use rescue::proto::v1::{
    GetModelRequest, GetProgramRequest, IngestRecordsRequest, ListAuditEventsRequest,
    ListModelsRequest, PromoteModelRequest, RecommendRecoveriesRequest, RecommendRecoveryRequest,
    RecordRecoveryOutcomeRequest, RecoveryFunnelRequest, ReloadProgramRequest,
    RollbackModelRequest, ScoreCustomerRequest, ScoreCustomersRequest, TrainRequest,
    audit_client::AuditClient, ingest_client::IngestClient, models_client::ModelsClient,
    program_client::ProgramClient, scoring_client::ScoringClient,
};
use tonic::Code;
use tonic::transport::Channel;

use crate::helpers::{Scratch, TestApp, TestDatabase, spawn_app, spawn_app_with};

const JWT_SECRET: &str = "a shared secret of at least thirty-two bytes";
const ISSUER: &str = "https://id.example";
const AUDIENCE: &str = "rescue";

/// Every RPC of the contract and the role it needs.
const RPCS: [(&str, Role); 15] = [
    ("ScoreCustomer", Role::Score),
    ("ScoreCustomers", Role::Score),
    ("RecommendRecovery", Role::Score),
    ("RecommendRecoveries", Role::Score),
    ("IngestRecords", Role::Ingest),
    ("RecordRecoveryOutcome", Role::Ingest),
    ("Train", Role::Train),
    ("ListModels", Role::Read),
    ("GetModel", Role::Read),
    ("GetProgram", Role::Read),
    ("RecoveryFunnel", Role::Read),
    ("PromoteModel", Role::Admin),
    ("RollbackModel", Role::Admin),
    ("ReloadProgram", Role::Admin),
    ("ListAuditEvents", Role::Admin),
];

fn request<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header value"),
        );
    }
    request
}

fn code<T>(result: Result<T, tonic::Status>) -> Code {
    result.map_or_else(|status| status.code(), |_| Code::Ok)
}

/// Calls `method` with a minimal request and `token`, and returns the code it ends with (for
/// a stream, the code of its first answer or its end).
async fn call(channel: &Channel, method: &str, token: Option<&str>) -> Code {
    let mut scoring = ScoringClient::new(channel.clone());
    let mut ingest = IngestClient::new(channel.clone());
    let mut models = ModelsClient::new(channel.clone());
    let mut program = ProgramClient::new(channel.clone());
    match method {
        "ScoreCustomer" => code(
            scoring
                .score_customer(request(ScoreCustomerRequest::default(), token))
                .await,
        ),
        "ScoreCustomers" => match scoring
            .score_customers(request(
                tokio_stream::iter(vec![ScoreCustomersRequest::default()]),
                token,
            ))
            .await
        {
            Ok(answers) => code(answers.into_inner().message().await),
            Err(status) => status.code(),
        },
        "RecommendRecovery" => code(
            scoring
                .recommend_recovery(request(RecommendRecoveryRequest::default(), token))
                .await,
        ),
        "RecommendRecoveries" => match scoring
            .recommend_recoveries(request(
                tokio_stream::iter(vec![RecommendRecoveriesRequest::default()]),
                token,
            ))
            .await
        {
            Ok(answers) => code(answers.into_inner().message().await),
            Err(status) => status.code(),
        },
        "IngestRecords" => code(
            ingest
                .ingest_records(request(
                    tokio_stream::iter(vec![IngestRecordsRequest::default()]),
                    token,
                ))
                .await,
        ),
        "RecordRecoveryOutcome" => code(
            ingest
                .record_recovery_outcome(request(RecordRecoveryOutcomeRequest::default(), token))
                .await,
        ),
        "Train" => match models.train(request(TrainRequest::default(), token)).await {
            Ok(progress) => code(progress.into_inner().message().await),
            Err(status) => status.code(),
        },
        "ListModels" => code(
            models
                .list_models(request(ListModelsRequest::default(), token))
                .await,
        ),
        "GetModel" => code(
            models
                .get_model(request(
                    GetModelRequest {
                        version: "no-such-version".into(),
                    },
                    token,
                ))
                .await,
        ),
        "PromoteModel" => code(
            models
                .promote_model(request(
                    PromoteModelRequest {
                        version: "no-such-version".into(),
                    },
                    token,
                ))
                .await,
        ),
        "RollbackModel" => code(
            models
                .rollback_model(request(RollbackModelRequest::default(), token))
                .await,
        ),
        "GetProgram" => code(
            program
                .get_program(request(GetProgramRequest::default(), token))
                .await,
        ),
        "RecoveryFunnel" => code(
            program
                .recovery_funnel(request(RecoveryFunnelRequest::default(), token))
                .await,
        ),
        "ReloadProgram" => code(
            program
                .reload_program(request(ReloadProgramRequest::default(), token))
                .await,
        ),
        "ListAuditEvents" => code(
            AuditClient::new(channel.clone())
                .list_audit_events(request(ListAuditEventsRequest::default(), token))
                .await,
        ),
        other => panic!("no call written for {other}"),
    }
}

/// A key file with one key per role, and the keys by role.
fn key_file(scratch: &Scratch) -> (PathBuf, Vec<(Role, String)>) {
    let keys: Vec<(Role, String)> = Role::ALL.iter().map(|&role| (role, new_key())).collect();
    (scratch.file("keys.toml", &key_entries(&keys)), keys)
}

/// The key file's entries for `keys`, each named after its role.
fn key_entries<'k>(keys: impl IntoIterator<Item = &'k (Role, String)>) -> String {
    keys.into_iter()
        .map(|(role, key)| {
            format!(
                "[[keys]]\nname = \"{role}-caller\"\nsha256 = \"{}\"\nroles = [\"{role}\"]\n\n",
                key_digest(key)
            )
        })
        .collect()
}

fn jwt(subject: &str, roles: &[Role]) -> String {
    let expires = jsonwebtoken::get_current_timestamp() + 3_600;
    let roles: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &serde_json::json!({
            "sub": subject, "iss": ISSUER, "aud": AUDIENCE, "exp": expires, "roles": roles
        }),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()).expect("a signing key"),
    )
    .expect("sign a token")
}

async fn spawn_authenticated(
    database: &TestDatabase,
    scratch: &Scratch,
) -> (TestApp, Vec<(Role, String)>) {
    let (keys_path, keys) = key_file(scratch);
    let secret = scratch.file("jwt-secret", JWT_SECRET);
    let app = spawn_app_with(database, |settings| {
        settings.auth = Some(AuthSettings {
            api_keys: Some(keys_path),
            jwt: Some(JwtSettings {
                issuer: ISSUER.into(),
                audience: AUDIENCE.into(),
                key: secret,
                algorithm: JwtAlgorithm::Hs256,
            }),
            reload: Duration::from_secs(1),
        });
    })
    .await;
    (app, keys)
}

/// A role other than `role`.
fn another(role: Role) -> Role {
    let at = Role::ALL.iter().position(|&r| r == role).expect("a role");
    Role::ALL[(at + 1) % Role::ALL.len()]
}

#[tokio::test]
async fn every_rpc_gives_the_documented_code_for_each_kind_of_caller() {
    let reference_database = TestDatabase::sqlite();
    let reference = spawn_app(&reference_database).await;
    let reference_channel = reference.channel().await;
    let database = TestDatabase::sqlite();
    let scratch = Scratch::new();
    let (app, keys) = spawn_authenticated(&database, &scratch).await;
    let channel = app.channel().await;
    let key_of = |role: Role| {
        keys.iter()
            .find(|(r, _)| *r == role)
            .map(|(_, key)| key.clone())
            .expect("a key per role")
    };

    for (method, role) in RPCS {
        // With the right role the call is answered as a server without authentication
        // answers it (the minimal requests are mostly refused as invalid: that is the point,
        // the refusal comes from the service, not the guard).
        let expected = call(&reference_channel, method, None).await;
        assert!(
            !matches!(expected, Code::Unauthenticated | Code::PermissionDenied),
            "{method}"
        );
        assert_eq!(
            call(&channel, method, None).await,
            Code::Unauthenticated,
            "{method}, none"
        );
        assert_eq!(
            call(&channel, method, Some("rsk_not-a-key")).await,
            Code::Unauthenticated,
            "{method}, unknown key"
        );
        assert_eq!(
            call(&channel, method, Some("a.b.c")).await,
            Code::Unauthenticated,
            "{method}, bad token"
        );
        for (wrong, right) in [
            (key_of(another(role)), key_of(role)),
            (jwt("alice", &[another(role)]), jwt("alice", &[role])),
        ] {
            assert_eq!(
                call(&channel, method, Some(&wrong)).await,
                Code::PermissionDenied,
                "{method}, wrong role"
            );
            assert_eq!(
                call(&channel, method, Some(&right)).await,
                expected,
                "{method}, right role"
            );
        }
    }

    // Health stays open to load balancers.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health answers without a credential");
    assert_eq!(
        status.into_inner().status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
    // A forged token (another secret) is refused as unauthenticated.
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &serde_json::json!({"sub": "mallory", "iss": ISSUER, "aud": AUDIENCE,
            "exp": jsonwebtoken::get_current_timestamp() + 3_600, "roles": ["admin"]}),
        &EncodingKey::from_secret(b"not the server's secret, though long enough")
            .expect("a signing key"),
    )
    .expect("sign");
    assert_eq!(
        call(&channel, "ReloadProgram", Some(&forged)).await,
        Code::Unauthenticated
    );
    app.stop().await;
    reference.stop().await;
}

#[tokio::test]
async fn a_key_removed_from_the_file_stops_working_without_a_restart() {
    let database = TestDatabase::sqlite();
    let scratch = Scratch::new();
    let (app, keys) = spawn_authenticated(&database, &scratch).await;
    let channel = app.channel().await;
    let read_key = keys
        .iter()
        .find(|(role, _)| *role == Role::Read)
        .map(|(_, key)| key.clone())
        .expect("a read key");
    assert_eq!(
        call(&channel, "GetProgram", Some(&read_key)).await,
        Code::Ok
    );

    // Revoke it: rewrite the file with every other key.
    let remaining = key_entries(keys.iter().filter(|(role, _)| *role != Role::Read));
    scratch.file("keys.toml", &remaining);
    let revoked = async {
        loop {
            if call(&channel, "GetProgram", Some(&read_key)).await == Code::Unauthenticated {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), revoked)
        .await
        .expect("the revoked key is refused within seconds");

    // A broken file is refused and the keys served so far stay.
    scratch.file("keys.toml", "[[keys]]\nname = \"half");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let admin_key = &keys
        .iter()
        .find(|(role, _)| *role == Role::Admin)
        .expect("an admin key")
        .1;
    assert_eq!(
        call(&channel, "RollbackModel", Some(admin_key)).await,
        call(&channel, "RollbackModel", Some(&jwt("ops", &[Role::Admin]))).await,
    );
    assert_ne!(
        call(&channel, "RollbackModel", Some(admin_key)).await,
        Code::Unauthenticated
    );
    app.stop().await;
}

// The client runs as a blocking child process: the server needs threads of its own meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_made_by_rescue_keys_new_works_from_rescue_client() {
    let scratch = Scratch::new();
    let keys_path = scratch.0.join("keys.toml");
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_rescue"))
        .args([
            "keys", "new", "--name", "ops", "--role", "read", "--role", "admin",
        ])
        .arg("--file")
        .arg(&keys_path)
        .output()
        .expect("run rescue keys new");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let key = String::from_utf8(made.stdout)
        .expect("utf-8")
        .trim()
        .to_owned();
    let stored = std::fs::read_to_string(&keys_path).expect("the key file");
    assert!(!stored.contains(&key), "the key itself is never stored");
    assert!(stored.contains(&key_digest(&key)));
    // The same name again is refused and the file is left as it was.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_rescue"))
        .args(["keys", "new", "--name", "ops", "--role", "read"])
        .arg("--file")
        .arg(&keys_path)
        .output()
        .expect("run rescue keys new");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("two keys are named"));
    assert_eq!(std::fs::read_to_string(&keys_path).expect("file"), stored);

    let database = TestDatabase::sqlite();
    let app = spawn_app_with(&database, |settings| {
        settings.auth = Some(AuthSettings {
            api_keys: Some(keys_path.clone()),
            jwt: None,
            reload: Duration::from_secs(1),
        });
    })
    .await;
    let server = app.endpoint();
    let refused = crate::helpers::client(&server, &["models", "list"]);
    assert!(!refused.status.success());
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(error.contains("needs a credential"), "{error}");
    let listed = std::process::Command::new(crate::helpers::CLIENT)
        .env("RESCUE_SERVER", &server)
        .env("RESCUE_TOKEN", &key)
        .args(["models", "list"])
        .output()
        .expect("run rescue-client");
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let flagged = crate::helpers::client(&server, &["--token", &key, "models", "list"]);
    assert!(
        flagged.status.success(),
        "{}",
        String::from_utf8_lossy(&flagged.stderr)
    );
    app.stop().await;
}
