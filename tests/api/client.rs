//! `rescue-client` as an operator runs it, against real servers: a simulated customer base
//! backfilled from files is stored exactly; a backfill survives the server being killed and
//! resumes from its checkpoint; bad rows are listed with their lines while good rows are
//! stored; the shipped examples load cleanly; and the demo runs simulate, backfill, train and
//! score end to end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use rescue::client::FileKind;
use rescue::client::checkpoint::Checkpoint;
use rescue::client::reader::{Position, RecordReader};
use rescue::domain::{Record, RecordKind};
use rescue::simulate::{self, SimulationParams};
use rescue::store::CustomerRecords;

use crate::helpers::{
    CLIENT, Scratch, ServeProcess, TestDatabase, client, on_every_backend, spawn_app,
};

/// `rescue simulate --out-dir DIR` with CSV files.
fn simulate_files(params: SimulationParams, directory: &Path) {
    let output = Command::new(env!("CARGO_BIN_EXE_rescue"))
        .args([
            "simulate",
            "--customers",
            &params.customers.to_string(),
            "--seed",
            &params.seed.to_string(),
            "--out-dir",
        ])
        .arg(directory)
        .output()
        .expect("run rescue simulate");
    assert!(
        output.status.success(),
        "rescue simulate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn simulated_file(directory: &Path, kind: FileKind) -> PathBuf {
    simulate::file_path(directory, kind, rescue::client::Format::Csv, false)
}

fn backfill(server: &str, kind: FileKind, file: &Path, extra: &[&str]) -> Output {
    let file = file.to_str().expect("a UTF-8 path");
    let mut args = vec!["backfill", kind.name(), file];
    args.extend_from_slice(extra);
    client(server, &args)
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(output)))
}

/// Backfills every simulated file, customers first, and checks each one was stored whole.
fn backfill_all(server: &str, directory: &Path) {
    for kind in FileKind::ALL {
        let output = backfill(server, kind, &simulated_file(directory, kind), &["--json"]);
        assert_eq!(output.status.code(), Some(0), "{kind}: {}", text(&output));
        let summary = json(&output);
        assert_eq!(summary["rejected"], 0, "{summary}");
        assert_eq!(summary["complete"], true, "{summary}");
    }
}

/// How many records of each kind the generator makes for `params`.
fn generated_counts(params: SimulationParams) -> BTreeMap<RecordKind, u64> {
    let mut counts = BTreeMap::new();
    for customer in simulate::simulate(params) {
        for record in &customer.records {
            *counts.entry(record.kind()).or_default() += 1;
        }
    }
    counts
}

/// A customer's records in a fixed order, whatever order they were read in.
fn sorted(mut records: CustomerRecords) -> CustomerRecords {
    let history = &mut records.history;
    history
        .usage
        .sort_by(|a, b| a.event_id.as_str().cmp(b.event_id.as_str()));
    history
        .interactions
        .sort_by(|a, b| a.interaction_id.as_str().cmp(b.interaction_id.as_str()));
    history
        .surveys
        .sort_by(|a, b| a.survey_id.as_str().cmp(b.survey_id.as_str()));
    history
        .recovery_cases
        .sort_by(|a, b| a.case_id.as_str().cmp(b.case_id.as_str()));
    // The files hold each record's newest version; the versions the store keeps beside them
    // are the store contract's to check.
    history.profile_versions.clear();
    history.case_versions.clear();
    records
}

/// Every row of a backfill file, as the server would store it.
fn file_records(path: &Path, kind: FileKind) -> Vec<Record> {
    let parser = rescue::api::RecordParser::received_at(
        rescue::domain::Timestamp::now(),
        rescue::domain::Vocabulary::built_in(),
    );
    let mut reader = RecordReader::open(path, kind, rescue::client::Format::Csv, Position::START)
        .expect("open the file");
    let mut records = Vec::new();
    while let Some(row) = reader.next_row().expect("read a row") {
        let record = row.record.expect("a readable row");
        records.push(parser.record(record).expect("a valid row"));
    }
    records
}

/// Every usage event in the store, by id.
async fn stored_usage(store: &dyn rescue::store::Store) -> BTreeMap<String, Record> {
    let mut stored = BTreeMap::new();
    let mut after = None;
    loop {
        let page = store
            .customer_page(after.as_ref(), 500)
            .await
            .expect("read a page");
        let Some(last) = page.last() else {
            return stored;
        };
        after = Some(last.history.customer.customer_id.clone());
        for customer in page {
            for event in customer.history.usage {
                let id = event.event_id.as_str().to_owned();
                assert!(
                    stored
                        .insert(id.clone(), Record::UsageEvent(event))
                        .is_none(),
                    "{id} is stored twice"
                );
            }
        }
    }
}

/// The store holds exactly the usage events of `path`: each one once, with the file's
/// content, and nothing else.
async fn assert_store_holds_exactly(store: &dyn rescue::store::Store, path: &Path) {
    let expected: BTreeMap<String, Record> = file_records(path, FileKind::UsageEvents)
        .into_iter()
        .map(|record| (record.id().to_owned(), record))
        .collect();
    let stored = stored_usage(store).await;
    assert_eq!(stored.len(), expected.len(), "stored vs file row count");
    for (id, record) in &expected {
        assert_eq!(stored.get(id), Some(record), "{id}");
    }
    assert_eq!(
        store
            .counts()
            .await
            .expect("counts")
            .get(RecordKind::UsageEvent),
        expected.len() as u64
    );
}

/// Acceptance 1: 20,000 simulated customers written to files and backfilled kind by kind
/// are stored exactly: the count of every kind is the generator's, and a sample of customers
/// reads back record for record as generated.
async fn a_backfilled_simulation_is_stored_exactly(database: TestDatabase) {
    const PARAMS: SimulationParams = SimulationParams {
        customers: 20_000,
        seed: 11,
    };
    let scratch = Scratch::new();
    simulate_files(PARAMS, &scratch.0);
    let app = spawn_app(&database).await;

    backfill_all(&app.endpoint(), &scratch.0);

    let counts = app.store.counts().await.expect("counts");
    for (kind, expected) in generated_counts(PARAMS) {
        assert_eq!(counts.get(kind), expected, "{kind:?}");
    }
    for index in [0, 1, 4_321, 12_345, PARAMS.customers - 1] {
        let generated = simulate::simulate_customer(PARAMS.seed, index);
        let expected = CustomerRecords::from_records(generated.records).expect("a profile");
        let id = expected.history.customer.customer_id.clone();
        let stored = app
            .store
            .customer_records(&id)
            .await
            .expect("read the customer")
            .expect("the customer is stored");
        assert_eq!(
            sorted((*stored).clone()),
            sorted(expected),
            "customer {index}"
        );
    }
    app.stop().await;
}

/// A `rescue serve` process over `database` holding the customers of `params`, and the
/// simulated usage events file (with its checkpoint path) for a backfill to be cut off.
struct CutOff {
    scratch: Scratch,
    server: ServeProcess,
    events: PathBuf,
    checkpoint: PathBuf,
}

impl CutOff {
    async fn prepare(database: &TestDatabase, params: SimulationParams) -> Self {
        let scratch = Scratch::new();
        simulate_files(params, &scratch.0);
        let events = simulated_file(&scratch.0, FileKind::UsageEvents);
        let checkpoint = rescue::client::checkpoint::default_path(&events);
        let server = ServeProcess::start(database, "127.0.0.1:0").await;
        let customers = simulated_file(&scratch.0, FileKind::Customers);
        let loaded = backfill(&server.address, FileKind::Customers, &customers, &[]);
        assert_eq!(loaded.status.code(), Some(0), "{}", text(&loaded));
        Self {
            scratch,
            server,
            events,
            checkpoint,
        }
    }

    /// Waits until the checkpoint shows confirmed rows; answers with its line.
    async fn confirmed_line(&self) -> u64 {
        tokio::time::timeout(Duration::from_secs(120), async {
            loop {
                if let Some(line) = Checkpoint::load(&self.checkpoint)
                    .map(|c| c.position.line)
                    .filter(|line| *line > 1)
                {
                    return line;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the checkpoint shows progress")
    }

    /// The backfill command of the events file, with `extra` flags.
    fn command(&self, extra: &[&str]) -> Command {
        let mut command = Command::new(CLIENT);
        command
            .env("RESCUE_SERVER", &self.server.address)
            .args(["backfill", "usage_events"])
            .arg(&self.events)
            .args(extra);
        command
    }
}

/// Acceptance 2: the server is killed (SIGKILL) in the middle of a backfill; the client gives
/// up, the server is restarted on the same database, and the same command finishes the job
/// from the checkpoint: every row of the file stored once, none missing.
async fn a_backfill_interrupted_by_a_killed_server_finishes_when_run_again(database: TestDatabase) {
    let mut cut = CutOff::prepare(
        &database,
        SimulationParams {
            customers: 600,
            seed: 5,
        },
    )
    .await;
    // Small chunks, so the checkpoint advances many times; one retry, so the client gives
    // up soon after the server is gone.
    let flags = ["--chunk-rows", "2000", "--retries", "1"];
    let mut first = cut
        .command(&flags)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rescue-client");
    let confirmed_line = cut.confirmed_line().await;
    cut.server.kill();
    let first = tokio::task::spawn_blocking(move || first.wait())
        .await
        .expect("wait task")
        .expect("wait for rescue-client");
    assert!(
        !first.success(),
        "the backfill finished before the server was killed (at line {confirmed_line})"
    );
    let stopped_at = Checkpoint::load(&cut.checkpoint)
        .expect("the checkpoint stays")
        .position
        .line;
    assert!(stopped_at >= confirmed_line);

    cut.server = ServeProcess::start(&database, &cut.server.address).await;
    let again = cut.command(&flags).output().expect("run rescue-client");
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(stdout.contains("resumed at line"), "{stdout}");
    assert!(
        !cut.checkpoint.exists(),
        "a finished backfill leaves no checkpoint"
    );

    assert_store_holds_exactly(database.open_store().await.as_ref(), &cut.events).await;
    drop(cut.scratch);
}

/// A server restarted on the same address while a backfill runs is ridden out by retries
/// with backoff: the same run finishes, with every row stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_rides_out_a_server_restart_by_retrying() {
    let database = TestDatabase::sqlite();
    let mut cut = CutOff::prepare(
        &database,
        SimulationParams {
            customers: 400,
            seed: 6,
        },
    )
    .await;
    let mut command = cut.command(&["--chunk-rows", "2000"]);
    let run = tokio::task::spawn_blocking(move || command.output());
    cut.confirmed_line().await;
    cut.server.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    cut.server = ServeProcess::start(&database, &cut.server.address).await;

    let output = run.await.expect("client task").expect("run rescue-client");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("retrying"),
        "{}",
        text(&output)
    );
    assert_store_holds_exactly(database.open_store().await.as_ref(), &cut.events).await;
}

const CUSTOMERS_CSV: &str = "customer_id,segment,plan,annual_value,customer_since,updated_at\n\
    c-1,small_business,standard,1200,2024-03-01,2025-06-01T09:00:00Z\n\
    c-2,consumer,free,0,2024-03-01,2025-06-01T09:00:00Z\n";

/// Acceptance 3: good rows are stored, every bad row is in the reject file with its line and
/// reason — whether the client could not read it or the server refused it — and the exit
/// code says the file was not stored whole.
async fn bad_rows_are_listed_with_their_lines_while_good_rows_are_stored(database: TestDatabase) {
    let scratch = Scratch::new();
    let app = spawn_app(&database).await;
    let customers = scratch.file("customers.csv", CUSTOMERS_CSV);
    let loaded = backfill(&app.endpoint(), FileKind::Customers, &customers, &[]);
    assert_eq!(loaded.status.code(), Some(0), "{}", text(&loaded));
    let events = scratch.file(
        "usage_events.csv",
        "event_id,customer_id,occurred_at,activity,quantity\n\
         u-1,c-1,2025-07-01T00:00:00Z,login,1\n\
         u-2,c-1,not a time,login,1\n\
         u-3,c-1,2025-07-02T00:00:00Z,login,-4\n\
         u-4,c-404,2025-07-02T00:00:00Z,login,1\n\
         u-5,c-2,2025-07-03T00:00:00Z,\"report.export\",2\n\
         u-6,c-2,2025-07-03T00:00:00Z,login\n\
         u-7,c-2,2025-07-04T00:00:00Z,login,3\n",
    );

    // Chunks of two rows: line numbers must survive chunking.
    let output = backfill(
        &app.endpoint(),
        FileKind::UsageEvents,
        &events,
        &["--chunk-rows", "2", "--json"],
    );
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let summary = json(&output);
    assert_eq!(summary["rows"], 7, "{summary}");
    assert_eq!(summary["accepted"], 3, "{summary}");
    assert_eq!(summary["rejected"], 4, "{summary}");

    let rejects_path = scratch.0.join("usage_events.csv.rejects.csv");
    assert_eq!(summary["rejects_file"], rejects_path.display().to_string());
    let rejects = std::fs::read_to_string(&rejects_path).expect("the reject file");
    let mut lines = csv::Reader::from_reader(rejects.as_bytes());
    let rows: Vec<(u64, String, String, String)> = lines
        .deserialize()
        .collect::<Result<_, _>>()
        .expect("the reject file is CSV");
    let located: Vec<(u64, &str, &str)> = rows
        .iter()
        .map(|(line, id, field, _)| (*line, id.as_str(), field.as_str()))
        .collect();
    assert_eq!(
        located,
        [
            (3, "u-2", "occurred_at"),
            (4, "u-3", "usage_event.quantity"),
            (5, "u-4", "usage_event.customer_id"),
            (7, "u-6", ""),
        ]
    );
    assert!(rows[0].3.contains("not a time"), "{rows:?}");
    assert!(rows[1].3.contains("negative"), "{rows:?}");
    assert!(rows[2].3.contains("unknown customer"), "{rows:?}");
    assert!(rows[3].3.contains("has 4 fields"), "{rows:?}");
    assert_eq!(
        app.store
            .counts()
            .await
            .expect("counts")
            .get(RecordKind::UsageEvent),
        3
    );
    app.stop().await;
}

on_every_backend!(
    a_backfilled_simulation_is_stored_exactly,
    a_backfill_interrupted_by_a_killed_server_finishes_when_run_again,
    bad_rows_are_listed_with_their_lines_while_good_rows_are_stored,
);

/// The server lists at most 10,000 rejections per call; the client asks again about the rest
/// so the reject file still names every bad row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_row_is_listed_even_past_the_servers_listing_limit() {
    const ROWS: u64 = 12_000;
    let database = TestDatabase::sqlite();
    let scratch = Scratch::new();
    let app = spawn_app(&database).await;
    let mut csv = String::from("event_id,customer_id,occurred_at,activity,quantity\n");
    for i in 0..ROWS {
        csv.push_str(&format!("u-{i},nobody,2025-07-01T00:00:00Z,login,1\n"));
    }
    let events = scratch.file("usage_events.csv", &csv);
    let output = backfill(&app.endpoint(), FileKind::UsageEvents, &events, &["--json"]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert_eq!(json(&output)["rejected"], ROWS);
    let rejects = std::fs::read_to_string(scratch.0.join("usage_events.csv.rejects.csv"))
        .expect("the reject file");
    let listed: Vec<&str> = rejects.lines().skip(1).collect();
    assert_eq!(listed.len() as u64, ROWS);
    assert!(listed[0].starts_with("2,u-0,"), "{}", listed[0]);
    assert!(
        listed
            .last()
            .is_some_and(|l| l.starts_with("12001,u-11999,")),
        "{listed:?}"
    );
    app.stop().await;
}

/// The example files shipped under `examples/` load without a single reject.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_files_backfill_cleanly() {
    let database = TestDatabase::sqlite();
    let app = spawn_app(&database).await;
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for kind in FileKind::ALL {
        let file = examples.join(format!("{}.csv", kind.name()));
        let output = backfill(&app.endpoint(), kind, &file, &["--json"]);
        assert_eq!(output.status.code(), Some(0), "{kind}: {}", text(&output));
        let summary = json(&output);
        assert_eq!(summary["accepted"], summary["rows"], "{kind}: {summary}");
        assert!(summary["rows"].as_u64().is_some_and(|rows| rows > 0));
        // The run leaves nothing behind next to the shipped files.
        assert!(!rescue::client::checkpoint::default_path(&file).exists());
    }
    app.stop().await;
}

/// The demo: simulate to files, backfill them, train, and score every customer to a file;
/// then the registry, recovery-decision and funnel commands, as scripts call them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_backfill_train_and_score_run_end_to_end() {
    const PARAMS: SimulationParams = SimulationParams {
        customers: 400,
        seed: 9,
    };
    let database = TestDatabase::sqlite();
    let scratch = Scratch::new();
    simulate_files(PARAMS, &scratch.0);
    let app = spawn_app(&database).await;
    let server = app.endpoint();
    backfill_all(&server, &scratch.0);

    // Kept a candidate, so the test decides what serves whatever the metrics say.
    let trained = client(&server, &["train", "--no-promote", "--json"]);
    assert_eq!(trained.status.code(), Some(0), "{}", text(&trained));
    let trained = json(&trained);
    let version = trained["model"]["version"]
        .as_str()
        .expect("a version")
        .to_owned();
    assert_eq!(trained["promoted"], false, "{trained}");
    assert!(
        trained["model"]["holdout_metrics"]["roc_auc"]
            .as_f64()
            .is_some()
    );
    let promoted = json(&client(&server, &["models", "promote", &version, "--json"]));
    assert_eq!(promoted["status"], "active", "{promoted}");

    let mut ids: String = (0..PARAMS.customers)
        .map(|i| format!("{}\n", simulate::customer_id(i)))
        .collect();
    ids.push_str("nobody-we-know\n");
    let ids = scratch.file("ids.txt", &ids);
    let out = scratch.0.join("scores.jsonl");
    let scored = client(
        &server,
        &[
            "score",
            ids.to_str().expect("UTF-8"),
            "--out",
            out.to_str().expect("UTF-8"),
            "--as-of",
            "2025-12-31T00:00:00Z",
            "--json",
        ],
    );
    // One id is unknown: scored all but one, and the exit code says so.
    assert_eq!(scored.status.code(), Some(3), "{}", text(&scored));
    assert_eq!(json(&scored)["scored"], PARAMS.customers);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .expect("the scores")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), PARAMS.customers + 1);
    assert_eq!(lines[0]["customer_id"], simulate::customer_id(0));
    assert_eq!(lines[0]["model_version"], version.as_str());
    assert!(lines[0]["churn_probability"].as_f64().is_some());
    assert!(
        lines[0]["drivers"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
    );
    assert_eq!(lines[PARAMS.customers]["error"]["code"], "NotFound");

    let listed = json(&client(&server, &["models", "list", "--json"]));
    assert_eq!(listed[0]["version"], version.as_str());
    assert_eq!(listed[0]["status"], "active");
    let baseline = listed[1]["version"]
        .as_str()
        .expect("the baseline")
        .to_owned();
    let rolled_back = json(&client(&server, &["models", "rollback", "--json"]));
    assert_eq!(rolled_back["version"], baseline.as_str());
    let shown = client(&server, &["models", "show", &version]);
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("status       retired"),
        "{}",
        text(&shown)
    );
    let missing = client(&server, &["models", "show", "no-such-version"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("NotFound"));

    // A recovery decision for a customer, then the funnel of the decisions made.
    let customer = simulate::customer_id(1);
    let as_of = ["--as-of", "2025-12-31T00:00:00Z"];
    let decided = client(
        &server,
        &[&["recommend", &customer, "--json"][..], &as_of].concat(),
    );
    assert_eq!(decided.status.code(), Some(0), "{}", text(&decided));
    let decision = json(&decided);
    assert_eq!(decision["customer_id"], customer.as_str(), "{decision}");
    assert!(
        decision["decision_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert!(
        decision["reasons"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    );
    let shown = client(&server, &[&["recommend", &customer][..], &as_of].concat());
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("decision id"),
        "{}",
        text(&shown)
    );
    // Decisions are made now, whatever their as-of time.
    let now = chrono::Utc::now().to_rfc3339();
    let window = ["funnel", "--from", "2000-01-01", "--to", &now];
    let funnel = client(&server, &[&window[..], &["--json"]].concat());
    assert_eq!(funnel.status.code(), Some(0), "{}", text(&funnel));
    assert!(
        json(&funnel)["total"]["decided"]
            .as_u64()
            .is_some_and(|n| n >= 1)
    );
    let table = client(&server, &window);
    assert!(
        String::from_utf8_lossy(&table.stdout).contains("total"),
        "{}",
        text(&table)
    );
    app.stop().await;
}
