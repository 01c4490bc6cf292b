//! `rescue simulate` as an operator runs it: it stores exactly what the generator produces,
//! a re-run changes nothing, and the oracle files hold one row per oracle entry.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use rescue::domain::RecordKind;
use rescue::simulate::{SimulationParams, simulate};

use crate::helpers::TestDatabase;

const PARAMS: SimulationParams = SimulationParams {
    customers: 200,
    seed: 7,
};

fn run_simulate(database: &TestDatabase, oracle_dir: &Path) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_rescue"))
        .args([
            "simulate",
            "--customers",
            &PARAMS.customers.to_string(),
            "--seed",
            &PARAMS.seed.to_string(),
            "--database",
            database.url.expose(),
            "--oracle-out",
        ])
        .arg(oracle_dir)
        .output()
        .expect("run rescue simulate");
    assert!(
        output.status.success(),
        "rescue simulate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The `records: N (accepted A, duplicates D)` line of the summary.
fn stored(output: &Output) -> (u64, u64, u64) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("records: "))
        .unwrap_or_else(|| panic!("no records line in {stdout}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(numbers.len(), 3, "{line}");
    (numbers[0], numbers[1], numbers[2])
}

fn data_lines(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).expect("read an oracle file");
    let mut lines = text.lines();
    assert!(lines.next().is_some_and(|header| header.contains(',')));
    lines.count()
}

#[tokio::test]
async fn rescue_simulate_stores_what_the_generator_makes_once_and_writes_the_oracle() {
    let database = TestDatabase::sqlite();
    let oracle_dir =
        std::env::temp_dir().join(format!("rescue-oracle-{}", uuid::Uuid::new_v4().simple()));

    let mut expected: BTreeMap<RecordKind, u64> = BTreeMap::new();
    let (mut churn_rows, mut recovery_rows) = (0, 0);
    for customer in simulate(PARAMS) {
        for record in &customer.records {
            *expected.entry(record.kind()).or_default() += 1;
        }
        churn_rows += customer.churn_oracle.len();
        recovery_rows += customer.recovery_oracle.len();
    }
    let total: u64 = expected.values().sum();

    let first = run_simulate(&database, &oracle_dir);
    assert_eq!(stored(&first), (total, total, 0));
    let store = database.open_store().await;
    let counts = store.counts().await.expect("counts");
    for kind in RecordKind::ALL {
        assert_eq!(
            counts.get(kind),
            expected.get(&kind).copied().unwrap_or(0),
            "{kind:?}"
        );
    }
    assert_eq!(counts.get(RecordKind::Customer), 200);
    assert_eq!(data_lines(&oracle_dir.join("churn_oracle.csv")), churn_rows);
    assert_eq!(
        data_lines(&oracle_dir.join("recovery_oracle.csv")),
        recovery_rows
    );
    assert!(churn_rows > 200 && recovery_rows > 0);

    let second = run_simulate(&database, &oracle_dir);
    assert_eq!(stored(&second), (total, 0, total));
    assert_eq!(store.counts().await.expect("counts"), counts);

    std::fs::remove_dir_all(&oracle_dir).ok();
}
