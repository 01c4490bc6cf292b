//! A real customer table, through `rescue-client` only, as a data scientist would use it:
//! the development table (a public telecom churn table, `tests/data`) imported with its
//! labels for the training 80% and without them for the test 20% of scikit-learn's stratified
//! split, a model trained, and the test customers scored — then judged against the split's
//! reference figures.

use std::collections::HashMap;

use rescue::model::Metrics;

use crate::helpers::{Scratch, TestDatabase, client, spawn_app};

const TABLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iranian_churn.csv");
const TEST_ROWS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/iranian_churn.test_rows.txt"
);
/// scikit-learn's HistGradientBoostingClassifier on the same split (tests/data/README.md).
const REFERENCE_ROC_AUC: f64 = 0.993;
/// The snapshot the table is dated at: its horizon has passed.
const AS_OF: &str = "2026-01-01";

fn succeeded(output: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_table_trains_a_model_within_0_01_of_gradient_boosting_and_calibrated() {
    let database = TestDatabase::sqlite();
    let app = spawn_app(&database).await;
    let server = app.endpoint();
    let scratch = Scratch::new();

    // The table with the test rows' labels blanked: they are stored, never learnt from.
    let test_rows: Vec<usize> = std::fs::read_to_string(TEST_ROWS)
        .expect("the split")
        .lines()
        .map(|line| line.trim().parse().expect("a row number"))
        .collect();
    let table = std::fs::read_to_string(TABLE).expect("the table");
    let mut lines = table.lines();
    let header = lines.next().expect("a header");
    let label_column = header.split(',').position(|c| c == "Churn").expect("Churn");
    let mut labels: HashMap<String, bool> = HashMap::new();
    let mut blanked = vec![header.to_owned()];
    for (row, line) in lines.enumerate() {
        let mut cells: Vec<&str> = line.split(',').collect();
        if test_rows.contains(&row) {
            labels.insert(format!("row-{row}"), cells[label_column] == "1");
            cells[label_column] = "";
        }
        blanked.push(cells.join(","));
    }
    let file = scratch.file("customers.csv", &(blanked.join("\n") + "\n"));

    let imported = succeeded(&client(
        &server,
        &[
            "import",
            file.to_str().expect("a path"),
            "--label-column",
            "Churn",
            "--as-of",
            AS_OF,
        ],
    ));
    assert!(imported.contains("all stored"), "{imported}");
    assert!(
        imported.contains("\"Call  Failure\" → call_failure (number)"),
        "{imported}"
    );

    let trained = succeeded(&client(&server, &["--json", "train"]));
    let result: serde_json::Value = serde_json::from_str(&trained).expect("JSON");
    eprintln!("{result:#}");
    assert!(
        result["model"]["holdout"]
            .as_str()
            .is_some_and(|h| h.contains("of the customers")),
        "a snapshot holds out customers: {result}"
    );

    let ids = scratch.file(
        "ids.txt",
        &test_rows
            .iter()
            .map(|row| format!("row-{row}\n"))
            .collect::<String>(),
    );
    let out = scratch.0.join("scores.jsonl");
    succeeded(&client(
        &server,
        &[
            "score",
            ids.to_str().expect("a path"),
            "--out",
            out.to_str().expect("a path"),
            "--as-of",
            AS_OF,
        ],
    ));
    let (mut scores, mut truth) = (Vec::new(), Vec::new());
    for line in std::fs::read_to_string(&out).expect("scores").lines() {
        let score: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let id = score["customer_id"].as_str().expect("an id");
        scores.push(score["churn_probability"].as_f64().expect("a probability"));
        truth.push(labels[id]);
    }
    assert_eq!(scores.len(), test_rows.len());
    let metrics = Metrics::evaluate(&scores, &truth).expect("metrics");
    eprintln!(
        "test ROC-AUC {:.4} (reference {REFERENCE_ROC_AUC}), ECE {:.4}, learner {}",
        metrics.roc_auc, metrics.expected_calibration_error, result["model"]["learner"]
    );
    assert!(
        metrics.roc_auc >= REFERENCE_ROC_AUC - 0.01,
        "test ROC-AUC {:.4}",
        metrics.roc_auc
    );
    assert!(
        metrics.expected_calibration_error <= 0.03,
        "ECE {:.4}",
        metrics.expected_calibration_error
    );

    // Scored now, long after the snapshot: the score says so, and its features stay within
    // what training saw.
    let now = scratch.0.join("now.jsonl");
    succeeded(&client(
        &server,
        &[
            "score",
            ids.to_str().expect("a path"),
            "--out",
            now.to_str().expect("a path"),
        ],
    ));
    let first = std::fs::read_to_string(&now).expect("scores");
    let first: serde_json::Value =
        serde_json::from_str(first.lines().next().expect("a line")).expect("JSON");
    let warnings = first["warnings"].to_string();
    assert!(warnings.contains("more than a horizon"), "{first}");
    assert!(!warnings.contains("baseline"), "{first}");
    app.stop().await;
}
