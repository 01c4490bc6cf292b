//! The audit trail: a promotion, a rollback, a training, a program reload and an ingest, each
//! made by a different credential, are read back by an admin with the caller and what changed;
//! failed calls are recorded with their code; pages follow one another.

use std::time::Duration;

use rescue::auth::{AuthSettings, Role, key_digest, new_key};
use rescue::proto::v1::{
    AuditEvent, IngestRecordsRequest, ListAuditEventsRequest, ModelKind, PromoteModelRequest,
    ReloadProgramRequest, RollbackModelRequest, TrainRequest, audit_client::AuditClient,
    ingest_client::IngestClient, models_client::ModelsClient, program_client::ProgramClient,
};
use tonic::transport::Channel;

use crate::fixtures;
use crate::helpers::{Scratch, TestDatabase, spawn_app_with};
use crate::recommend::ProgramFile;

fn with_token<T>(message: T, key: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("header"),
    );
    request
}

async fn events(
    channel: &Channel,
    key: &str,
    request: ListAuditEventsRequest,
) -> (Vec<AuditEvent>, String) {
    let answer = AuditClient::new(channel.clone())
        .list_audit_events(with_token(request, key))
        .await
        .expect("the audit trail")
        .into_inner();
    (answer.events, answer.next_page_token)
}

/// Trains a health model as `key`; the version registered, or the code it failed with.
async fn train(
    channel: &Channel,
    key: &str,
    as_of: Vec<prost_types::Timestamp>,
) -> Result<String, tonic::Code> {
    let mut progress = ModelsClient::new(channel.clone())
        .train(with_token(
            TrainRequest {
                kind: ModelKind::Health.into(),
                as_of,
                ..TrainRequest::default()
            },
            key,
        ))
        .await
        .map_err(|status| status.code())?
        .into_inner();
    let mut version = None;
    while let Some(event) = progress.message().await.map_err(|status| status.code())? {
        if let Some(rescue::proto::v1::train_progress::Event::Result(result)) = event.event {
            version = result.model.map(|model| model.version);
        }
    }
    version.ok_or(tonic::Code::Unknown)
}

// rescue-client runs as a blocking child process at the end: the server needs threads of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_recorded_with_its_caller_and_what_it_changed() {
    let scratch = Scratch::new();
    let keys: Vec<(Role, String)> = [Role::Admin, Role::Train, Role::Ingest]
        .into_iter()
        .map(|role| (role, new_key()))
        .collect();
    let key_file: String = keys
        .iter()
        .map(|(role, key)| {
            format!(
                "[[keys]]\nname = \"{role}-desk\"\nsha256 = \"{}\"\nroles = [\"{role}\"]\n\n",
                key_digest(key)
            )
        })
        .collect();
    let key_path = scratch.file("keys.toml", &key_file);
    let key = |role: Role| {
        keys.iter()
            .find(|(r, _)| *r == role)
            .expect("a key")
            .1
            .clone()
    };
    let program = ProgramFile::new(|p| p);
    let database = TestDatabase::sqlite();
    let app = spawn_app_with(&database, |settings| {
        settings.auth = Some(AuthSettings {
            api_keys: Some(key_path),
            jwt: None,
            reload: Duration::from_secs(5),
        });
        settings.program = Some(program.path.clone());
        // Only the RPC reloads it in this test.
        settings.program_reload = Duration::from_secs(3_600);
    })
    .await;
    let channel = app.channel().await;
    let (admin, trainer, ingester) = (key(Role::Admin), key(Role::Train), key(Role::Ingest));

    // An ingest of two customers, one of them malformed.
    let mut bad = fixtures::customer("a-2");
    if let Some(rescue::proto::v1::record::Kind::Customer(customer)) = bad.kind.as_mut() {
        customer.annual_value = -5.0;
    }
    IngestClient::new(channel.clone())
        .ingest_records(with_token(
            tokio_stream::iter(vec![IngestRecordsRequest {
                records: vec![fixtures::customer("a-1"), bad],
            }]),
            &ingester,
        ))
        .await
        .expect("ingest answers");

    // Promotions and a rollback.
    app.register_model("health-a", -2.0).await;
    app.register_model("health-b", -1.5).await;
    let mut models = ModelsClient::new(channel.clone());
    for version in ["health-a", "health-b"] {
        models
            .promote_model(with_token(
                PromoteModelRequest {
                    version: version.into(),
                },
                &admin,
            ))
            .await
            .expect("promoted");
    }
    let missing = models
        .promote_model(with_token(
            PromoteModelRequest {
                version: "health-zz".into(),
            },
            &admin,
        ))
        .await;
    assert_eq!(
        missing.expect_err("no such version").code(),
        tonic::Code::NotFound
    );
    models
        .rollback_model(with_token(
            RollbackModelRequest {
                kind: ModelKind::Health.into(),
            },
            &admin,
        ))
        .await
        .expect("rolled back");

    // A training that cannot run (no churn outcomes): recorded with its code. Then one on a
    // simulated world, which registers a model.
    let training_failed = train(&channel, &trainer, Vec::new())
        .await
        .expect_err("training refused without outcomes");
    for customer in rescue::simulate::simulate(rescue::simulate::SimulationParams {
        customers: 600,
        seed: 5,
    }) {
        app.store
            .write_batch(&customer.records)
            .await
            .expect("store simulated records");
    }
    let as_of = rescue::simulate::snapshot_dates()
        .into_iter()
        .map(rescue::api::timestamp)
        .collect();
    let trained = train(&channel, &trainer, as_of)
        .await
        .expect("a trained model");

    // A program reload after the file changed.
    let before = ProgramClient::new(channel.clone())
        .reload_program(with_token(ReloadProgramRequest {}, &admin))
        .await
        .expect("reloaded")
        .into_inner()
        .version;
    program.write(
        &crate::recommend::base_program().replace("lookback_days = 14", "lookback_days = 10"),
    );
    let after = ProgramClient::new(channel.clone())
        .reload_program(with_token(ReloadProgramRequest {}, &admin))
        .await
        .expect("reloaded")
        .into_inner()
        .version;
    assert_ne!(before, after);

    let (trail, next) = events(&channel, &admin, ListAuditEventsRequest::default()).await;
    assert!(next.is_empty(), "one page holds them all");
    let find = |method: &str, target: &str| -> Vec<&AuditEvent> {
        trail
            .iter()
            .filter(|e| e.method == method && e.target.contains(target))
            .collect()
    };
    let ingest = find("IngestRecords", "");
    assert_eq!(ingest.len(), 1, "{trail:#?}");
    assert_eq!(ingest[0].caller, "key:ingest-desk");
    assert_eq!(ingest[0].code, "Ok");
    assert!(
        ingest[0].changed.contains("1 accepted") && ingest[0].changed.contains("1 rejected"),
        "{:?}",
        ingest[0]
    );

    let promoted = find("PromoteModel", "health-b");
    assert_eq!(promoted.len(), 1);
    assert_eq!(promoted[0].caller, "key:admin-desk");
    assert!(
        promoted[0].changed.contains("activated health-b"),
        "{:?}",
        promoted[0]
    );
    let refused = find("PromoteModel", "health-zz");
    assert_eq!(refused[0].code, "NotFound");
    assert!(refused[0].changed.is_empty() && !refused[0].message.is_empty());

    let rollback = find("RollbackModel", "health");
    assert_eq!(rollback.len(), 1);
    assert!(
        rollback[0].changed.contains("activated health-a again"),
        "{:?}",
        rollback[0]
    );

    let training = find("Train", "kind health");
    assert_eq!(training.len(), 2, "{trail:#?}");
    assert!(training.iter().all(|e| e.caller == "key:train-desk"));
    assert_eq!(training[0].code, "Ok");
    assert!(
        training[0]
            .changed
            .contains(&format!("registered {trained}")),
        "{:?}",
        training[0]
    );
    assert_eq!(training[1].code, format!("{training_failed:?}"));

    let reloads = find("ReloadProgram", "");
    assert_eq!(reloads.len(), 2);
    // Newest first: the second reload changed the program, the first changed nothing.
    assert!(
        reloads[0].changed.contains(&after) && reloads[0].changed.contains(&before),
        "{:?}",
        reloads[0]
    );
    assert!(reloads[1].changed.is_empty());
    let micros = |e: &AuditEvent| {
        let at = e.at.expect("a time");
        i128::from(at.seconds) * 1_000_000 + i128::from(at.nanos / 1_000)
    };
    assert!(
        trail
            .windows(2)
            .all(|pair| micros(&pair[0]) >= micros(&pair[1])),
        "newest first"
    );

    // Filters and pages: the admin's events two at a time, each page older than the last.
    let admin_events = trail
        .iter()
        .filter(|e| e.caller == "key:admin-desk")
        .count();
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let (page, next) = events(
            &channel,
            &admin,
            ListAuditEventsRequest {
                caller: "key:admin-desk".into(),
                page_size: 2,
                page_token: token.clone(),
                ..ListAuditEventsRequest::default()
            },
        )
        .await;
        assert!(page.len() <= 2);
        seen.extend(page.into_iter().map(|e| e.event_id));
        if next.is_empty() {
            break;
        }
        token = next;
    }
    assert_eq!(seen.len(), admin_events);
    let unique: std::collections::BTreeSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no event twice across pages");

    // A token that was not given is refused.
    let bad_token = AuditClient::new(channel.clone())
        .list_audit_events(with_token(
            ListAuditEventsRequest {
                page_token: "forged".into(),
                ..ListAuditEventsRequest::default()
            },
            &admin,
        ))
        .await;
    assert_eq!(
        bad_token.expect_err("bad token").code(),
        tonic::Code::InvalidArgument
    );
    app.stop().await;
}
