//! A full SQLite database: writes past the file's size limit get a clear RESOURCE_EXHAUSTED,
//! nothing of a refused batch is stored, and once space is freed writes succeed again on the
//! same server, without a restart.

use rescue::proto::v1::IngestRecordsRequest;

use crate::fixtures;
use crate::helpers::{TestDatabase, spawn_app_with};

/// A message of `count` usage events of `customer`, ids starting at `first`.
fn events(customer: &str, first: usize, count: usize) -> IngestRecordsRequest {
    IngestRecordsRequest {
        records: (first..first + count)
            .map(|i| fixtures::usage_event(&format!("{customer}-event-{i:08}"), customer))
            .collect(),
    }
}

#[tokio::test]
async fn a_full_database_refuses_clearly_and_recovers_once_space_is_freed() {
    let database = TestDatabase::sqlite();
    // About 1 MiB: the schema takes ~150 KB, the rest fills with a few thousand events.
    let app = spawn_app_with(&database, |settings| {
        settings.pool.sqlite_max_bytes = Some(1024 * 1024);
    })
    .await;
    let mut ingest = app.ingest_client().await;
    ingest
        .ingest_records(tokio_stream::iter(vec![IngestRecordsRequest {
            records: vec![fixtures::customer("full-1")],
        }]))
        .await
        .expect("a customer fits");

    let mut stored = 0usize;
    let refusal = loop {
        let answer = ingest
            .ingest_records(tokio_stream::iter(vec![events("full-1", stored, 500)]))
            .await;
        match answer {
            Ok(answer) => {
                assert_eq!(answer.into_inner().accepted, 500);
                stored += 500;
                assert!(stored < 1_000_000, "the size limit never bit");
            }
            Err(status) => break status,
        }
    };
    assert_eq!(
        refusal.code(),
        tonic::Code::ResourceExhausted,
        "{refusal:?}"
    );
    assert!(refusal.message().contains("out of space"), "{refusal:?}");
    let counts = app.store.counts().await.expect("counts");
    let events_kind = rescue::domain::RecordKind::UsageEvent;
    assert_eq!(
        counts.0.get(&events_kind).copied(),
        Some(stored as u64),
        "the refused batch left nothing behind"
    );
    // Still full: refused again, the same clear way (not a stuck connection's error).
    let again = ingest
        .ingest_records(tokio_stream::iter(vec![events("full-1", stored, 500)]))
        .await
        .expect_err("still full");
    assert_eq!(again.code(), tonic::Code::ResourceExhausted, "{again:?}");

    // Free space as an operator would, from outside the server: the old events go.
    let file = database
        .url
        .expose()
        .trim_start_matches("sqlite://")
        .to_owned();
    let outside = sqlx::SqlitePool::connect(&format!("sqlite://{file}"))
        .await
        .expect("open the file");
    sqlx::query("DELETE FROM usage_events")
        .execute(&outside)
        .await
        .expect("free space");
    outside.close().await;

    let resumed = ingest
        .ingest_records(tokio_stream::iter(vec![events("full-1", stored, 500)]))
        .await
        .expect("writes succeed again without a restart");
    assert_eq!(resumed.into_inner().accepted, 500);
    app.stop().await;
}

/// A small filesystem of its own (tmpfs), unmounted when dropped; `None` where this process
/// may not mount one (not root, or no mount privilege in the container).
struct SmallDisk {
    path: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Option<Self> {
        let path =
            std::env::temp_dir().join(format!("rescue-disk-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).ok()?;
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&path)
            .output()
            .ok()?;
        if !mounted.status.success() {
            std::fs::remove_dir(&path).ok();
            return None;
        }
        Some(Self { path })
    }

    fn resize(&self, megabytes: u32) {
        let resized = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={megabytes}m")])
            .arg(&self.path)
            .status()
            .expect("run mount");
        assert!(resized.success(), "remount the test disk");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: the server's last connections may still be closing.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// The disk itself full — the database and its write-ahead log on a 2 MB filesystem: every
/// write is refused with the same clear error (a failed commit must not leave the connection
/// stuck in a transaction), and once the disk grows, writes succeed on the same server.
#[tokio::test]
async fn a_full_disk_refuses_clearly_and_recovers_once_it_has_room() {
    use std::io::Write;
    let Some(disk) = SmallDisk::mount(2) else {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED a full-disk test: this process may not mount a tmpfs (it needs root) ***"
        );
        return;
    };
    let url = rescue::store::DatabaseUrl::new(format!(
        "sqlite://{}",
        disk.path.join("rescue.db").display()
    ));
    let mut settings = rescue::config::Settings::with_database(url);
    settings.listen = "127.0.0.1:0".parse().expect("address");
    let application = rescue::server::Application::build(&settings)
        .await
        .expect("the server starts");
    let address = application.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(application.run_until_stopped(async {
        stopped.await.ok();
    }));
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut ingest = rescue::proto::v1::ingest_client::IngestClient::new(channel);
    ingest
        .ingest_records(tokio_stream::iter(vec![IngestRecordsRequest {
            records: vec![fixtures::customer("disk-1")],
        }]))
        .await
        .expect("a customer fits");
    let mut stored = 0usize;
    let refusal = loop {
        match ingest
            .ingest_records(tokio_stream::iter(vec![events("disk-1", stored, 1_000)]))
            .await
        {
            Ok(_) => {
                stored += 1_000;
                assert!(stored < 1_000_000, "the disk never filled");
            }
            Err(status) => break status,
        }
    };
    assert_eq!(
        refusal.code(),
        tonic::Code::ResourceExhausted,
        "{refusal:?}"
    );
    for _ in 0..3 {
        let again = ingest
            .ingest_records(tokio_stream::iter(vec![events("disk-1", stored, 1_000)]))
            .await
            .expect_err("still full");
        assert_eq!(again.code(), tonic::Code::ResourceExhausted, "{again:?}");
    }
    disk.resize(64);
    let resumed = ingest
        .ingest_records(tokio_stream::iter(vec![events("disk-1", stored, 1_000)]))
        .await
        .expect("writes succeed again without a restart");
    assert_eq!(resumed.into_inner().accepted, 1_000);
    stop.send(()).ok();
    serving
        .await
        .expect("server task")
        .expect("server stops cleanly");
}
