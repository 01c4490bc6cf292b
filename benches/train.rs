//! Training speed, each learner against scikit-learn on the same 1,000,000 simulated rows (the
//! 33 built-in features, from `rescue simulate`'s customers, split by time), same machine, same
//! run: `train_logistic` against `LogisticRegression(solver="lbfgs")` with the same objective,
//! and `train_trees` against `HistGradientBoostingClassifier` with its defaults. The bars: at
//! most scikit-learn's time, at a hold-out ROC-AUC within 0.002 of its.
//!
//! Run: `cargo bench --bench train`. The first run creates a Python virtual environment in
//! `target/bench-venv` and installs numpy and scikit-learn into it from PyPI; the bench fails
//! if that, or a reference fit, does not work. `RESCUE_BENCH_TRAIN_ROWS` changes the row count,
//! `RESCUE_BENCH_TRAIN_LEARNERS` (`logistic`, `trees`, or both, comma-separated) which parts run.
//! Absolute times depend on the machine and its load; the ratio is what to compare.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use rescue::model::{Dataset, TrainParams, TreeParams, metrics, train_logistic, train_trees};
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
    let rows = train.rows() + holdout.rows();
    eprintln!(
        "simulated {rows} rows × {} features ({} churned) in {:.1} s",
        train.feature_count(),
        train.positives() + holdout.positives(),
        started.elapsed().as_secs_f64()
    );

    let learners = std::env::var("RESCUE_BENCH_TRAIN_LEARNERS")
        .unwrap_or_else(|_| "logistic,trees".to_owned());
    let file = target_dir().join("bench-train-rows.bin");
    write_rows(&train, &holdout, &file)
        .map_err(|err| format!("writing {}: {err}", file.display()))?;
    let result = learners
        .split(',')
        .try_for_each(|learner| match learner.trim() {
            "logistic" => logistic(&python, &file, &train, &holdout),
            "trees" => trees(&python, &file, &train, &holdout),
            other => Err(format!("unknown learner {other:?}: use logistic or trees")),
        });
    let _ = std::fs::remove_file(&file);
    result
}

/// Runs a reference script on the rows file with `args`, and reads its JSON line.
fn reference<T: serde::de::DeserializeOwned>(
    python: &Path,
    script: &str,
    file: &Path,
    args: &[String],
) -> Result<T, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches")
        .join(script);
    let output = Command::new(python)
        .arg(&script)
        .arg(file)
        .args(args)
        .output()
        .map_err(|err| format!("could not start the reference: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "reference {} failed ({}):\n{}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|err| {
        format!(
            "reference printed no result ({err}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[derive(serde::Deserialize)]
struct TreesReference {
    seconds: f64,
    auc: f64,
    iterations: u64,
}

/// The tree learner against HistGradientBoosting: one fit each (a fit takes minutes).
fn trees(python: &Path, file: &Path, train: &Dataset, holdout: &Dataset) -> Result<(), String> {
    let start = Instant::now();
    let model = train_trees(train, &TreeParams::default()).map_err(|err| err.to_string())?;
    let seconds = start.elapsed().as_secs_f64();
    let scores = model.predict_all(holdout.features.view());
    let auc = metrics::roc_auc(&scores, &holdout.labels).map_err(|err| err.to_string())?;
    let rows = train.rows() + holdout.rows();
    let reference: TreesReference = reference(
        python,
        "train_trees_reference.py",
        file,
        &[rows, train.feature_count(), train.rows(), 1].map(|n| n.to_string()),
    )?;
    println!(
        "trees: rows            {rows} ({} train, {} hold-out)",
        train.rows(),
        holdout.rows()
    );
    println!(
        "trees: rescue time     {seconds:.3} s (forust, {} trees)",
        model.trees()
    );
    println!(
        "trees: sklearn time    {:.3} s (HistGradientBoosting, {} iterations)",
        reference.seconds, reference.iterations
    );
    println!("trees: ratio           {:.2}×", seconds / reference.seconds);
    println!("trees: rescue AUC      {auc:.5}");
    println!("trees: sklearn AUC     {:.5}", reference.auc);
    println!("trees: AUC difference  {:+.5}", auc - reference.auc);
    Ok(())
}

/// The logistic learner against lbfgs with the same objective.
fn logistic(python: &Path, file: &Path, train: &Dataset, holdout: &Dataset) -> Result<(), String> {
    let train_rows = train.rows();
    let rows = train_rows + holdout.rows();
    let params = TrainParams::default();
    let valid = params.clone().check().map_err(|err| err.to_string())?;
    let mut best = f64::INFINITY;
    let mut model = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        let fitted = train_logistic(train, &valid).map_err(|err| err.to_string())?;
        best = best.min(start.elapsed().as_secs_f64());
        model = Some(fitted);
    }
    let model = model.ok_or("no training run")?;
    let scores = model.predict_all(holdout.features.view());
    let auc = metrics::roc_auc(&scores, &holdout.labels).map_err(|err| err.to_string())?;
    let mut args: Vec<String> = [rows, model.feature_count(), train_rows]
        .map(|n| n.to_string())
        .to_vec();
    args.extend([params.l2_penalty, params.gradient_tolerance].map(|x| x.to_string()));
    args.extend([params.max_iterations as usize, RUNS].map(|n| n.to_string()));
    let reference: Reference = reference(python, "train_reference.py", file, &args)?;
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
