//! Training speed: `train_logistic` on 1,000,000 simulated rows (the 33 features of schema 1,
//! from `rescue simulate`'s customers, split by time) against scikit-learn's
//! `LogisticRegression(solver="lbfgs")` on the same rows, split and objective, same machine,
//! same run. The bar (DESIGN.md, Quality bars): within 2× of scikit-learn's time at the same
//! hold-out ROC-AUC (±0.002).
//!
//! Run: `cargo bench --bench train`. The first run creates a Python virtual environment in
//! `target/bench-venv` and installs numpy and scikit-learn into it from PyPI; the bench fails
//! if that, or the reference fit, does not work. `RESCUE_BENCH_TRAIN_ROWS` changes the row count.
//! Absolute times depend on the machine and its load; the ratio is what to compare.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use rescue::model::{Dataset, TrainParams, metrics, train_logistic};
use rescue::simulate;
use rescue::store::CustomerRecords;
use rescue::training::RowBuilder;

/// At least this many rows (training and hold-out); the last customer's rows may add a few.
const ROWS: usize = 1_000_000;
const SEED: u64 = 20_260_105;
/// Each contender's time is the best of this many fits: the least disturbed by other work.
const RUNS: usize = 3;

/// The bench's rows: point-in-time rows of simulated customers at the simulator's snapshot
/// dates, built by the same code `Train` uses; rows at the last snapshot are the hold-out, so
/// the split is by time. Returns the training rows and the hold-out rows.
fn training_rows(rows: usize, seed: u64) -> (Dataset, Dataset) {
    let mut builder = RowBuilder::new(simulate::snapshot_dates(), simulate::HORIZON_DAYS as u32)
        .expect("the simulator's snapshots are a valid grid");
    let mut index = 0;
    while builder.rows() < rows {
        let customer = simulate::simulate_customer(seed, index);
        index += 1;
        builder.add(
            &CustomerRecords::from_records(customer.records)
                .expect("every simulated customer has a profile"),
        );
    }
    let split = builder.finish().expect("simulated rows have both classes");
    (split.train, split.holdout)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// The venv's Python, creating the venv and installing the reference's packages on first use.
fn reference_python() -> Result<PathBuf, String> {
    let venv = target_dir().join("bench-venv");
    let python = venv.join("bin").join("python");
    let ready = Command::new(&python)
        .args(["-c", "import numpy, sklearn"])
        .status()
        .is_ok_and(|status| status.success());
    if ready {
        return Ok(python);
    }
    eprintln!(
        "creating {} with numpy and scikit-learn (first run only)…",
        venv.display()
    );
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    run(Command::new(&python).args(["-m", "pip", "install", "--quiet", "numpy", "scikit-learn"]))?;
    Ok(python)
}

fn run(command: &mut Command) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|err| format!("could not start {command:?}: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed: {status}"))
    }
}

/// Rows as the reference reads them: every row's features (little-endian f64, training rows
/// first, row order), then every label in the same order.
fn write_rows(train: &Dataset, holdout: &Dataset, path: &Path) -> std::io::Result<()> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    for value in train.features.iter().chain(holdout.features.iter()) {
        out.write_all(&value.to_le_bytes())?;
    }
    for label in train.labels.iter().chain(&holdout.labels) {
        out.write_all(&[u8::from(*label)])?;
    }
    out.flush()
}

#[derive(serde::Deserialize)]
struct Reference {
    seconds: f64,
    auc: f64,
    iterations: u64,
    coefficients: Vec<f64>,
    intercept: f64,
}

fn main() -> ExitCode {
    match bench() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("train bench FAILED: {err}");
            ExitCode::FAILURE
        }
    }
}

fn bench() -> Result<(), String> {
    // `cargo bench` passes `--bench`; there is nothing to filter in a one-figure bench.
    let rows = std::env::var("RESCUE_BENCH_TRAIN_ROWS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(ROWS);
    let python = reference_python()?;

    let started = Instant::now();
    let (train, holdout) = training_rows(rows, SEED);
    let train_rows = train.rows();
    let rows = train_rows + holdout.rows();
    eprintln!(
        "simulated {rows} rows × {} features ({} churned) in {:.1} s",
        train.feature_count(),
        train.positives() + holdout.positives(),
        started.elapsed().as_secs_f64()
    );

    let params = TrainParams::default();
    let valid = params.clone().check().map_err(|err| err.to_string())?;
    let mut best = f64::INFINITY;
    let mut model = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        let fitted = train_logistic(&train, &valid).map_err(|err| err.to_string())?;
        best = best.min(start.elapsed().as_secs_f64());
        model = Some(fitted);
    }
    let model = model.ok_or("no training run")?;
    let scores = model.predict_all(holdout.features.view());
    let auc = metrics::roc_auc(&scores, &holdout.labels).map_err(|err| err.to_string())?;

    let file = target_dir().join("bench-train-rows.bin");
    write_rows(&train, &holdout, &file)
        .map_err(|err| format!("writing {}: {err}", file.display()))?;
    drop(train);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/train_reference.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(&file)
        .args([rows, model.feature_count(), train_rows].map(|n| n.to_string()))
        .args([params.l2_penalty, params.gradient_tolerance].map(|x| x.to_string()))
        .args([params.max_iterations as usize, RUNS].map(|n| n.to_string()))
        .output()
        .map_err(|err| format!("could not start the reference: {err}"))?;
    let _ = std::fs::remove_file(&file);
    if !output.status.success() {
        return Err(format!(
            "reference {} failed ({}):\n{}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let reference: Reference = serde_json::from_slice(&output.stdout).map_err(|err| {
        format!(
            "reference printed no result ({err}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    })?;
    let largest_coefficient_gap = model
        .coefficients
        .iter()
        .zip(&reference.coefficients)
        .map(|(a, b)| (a - b).abs())
        .fold((model.intercept - reference.intercept).abs(), f64::max);

    println!(
        "rows                   {rows} ({train_rows} train, {} hold-out)",
        rows - train_rows
    );
    println!("features               {}", model.feature_count());
    println!("rescue train time      {best:.3} s (best of {RUNS})");
    println!(
        "scikit-learn time      {:.3} s (best of {RUNS}, {} lbfgs iterations)",
        reference.seconds, reference.iterations
    );
    println!("ratio rescue/sklearn   {:.2}×", best / reference.seconds);
    println!("rescue hold-out AUC    {auc:.5}");
    println!("sklearn hold-out AUC   {:.5}", reference.auc);
    println!("AUC difference         {:+.5}", auc - reference.auc);
    println!("max |coefficient gap|  {largest_coefficient_gap:.2e} (standardized units)");
    Ok(())
}
