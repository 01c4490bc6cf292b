//! Training speed: `train_logistic` on 1,000,000 rows × 40 features against scikit-learn's
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

use ndarray::Array2;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal, Normal, Poisson};
use rescue::model::{Dataset, TrainParams, metrics, train_logistic};

const ROWS: usize = 1_000_000;
const SEED: u64 = 20_260_105;
/// Time order is row order, so the first 80% train and the latest 20% are the hold-out.
const TRAIN_FRACTION: f64 = 0.8;
/// Each contender's time is the best of this many fits: the least disturbed by other work.
const RUNS: usize = 3;
/// The churn rate the synthetic label is tuned to: DOMAIN.md's order of magnitude for a
/// quarterly horizon.
const CHURN_RATE: f64 = 0.07;

/// The bench's rows. Synthetic for now (features of mixed scale — counts, rates, money, one-hots
/// — and a label drawn from a known logistic model); to be replaced by the data simulator's rows.
fn training_rows(rows: usize, seed: u64) -> Dataset {
    let mut rng = StdRng::seed_from_u64(seed);
    let poisson = |rate: f64| Poisson::new(rate).expect("positive rate");
    let logins = poisson(22.0);
    let tickets = poisson(1.4);
    let failures = poisson(0.4);
    let escalations = poisson(0.15);
    let seats = poisson(25.0);
    let exports = poisson(6.0);
    let api_calls = poisson(300.0);
    let wait = Exp::new(1.0 / 240.0).expect("positive rate");
    let value = LogNormal::new(8.0, 1.0).expect("valid spread");
    let normal = Normal::<f64>::new(0.0, 1.0).expect("valid spread");
    const SEGMENTS: usize = 4;
    const PLANS: usize = 3;
    const REGIONS: usize = 4;
    const CHANNELS: usize = 3;
    const NOISE: usize = 8;
    // Raw features, then one-hots, then pure noise the model should learn to ignore.
    const RAW: usize = 18;
    const FEATURES: usize = RAW + SEGMENTS + PLANS + REGIONS + CHANNELS + NOISE;

    // True weights per raw unit: small for big-scale columns, as a real churn model's are.
    const RAW_WEIGHTS: [f64; RAW] = [
        -0.04, 0.35, 0.6, 0.9, -0.01, -0.03, -0.0015, 0.002, -0.00002, -0.45, -0.12, 0.8, -0.0004,
        0.5, -0.7, 0.0, 0.25, -0.2,
    ];
    const ONE_HOT_WEIGHTS: [f64; SEGMENTS + PLANS + REGIONS + CHANNELS] = [
        0.3, 0.0, -0.2, -0.4, 0.25, 0.0, -0.35, 0.0, 0.1, -0.1, 0.05, 0.15, 0.0, -0.1,
    ];

    let mut features = Array2::zeros((rows, FEATURES));
    let mut logits = Vec::with_capacity(rows);
    for mut row in features.rows_mut() {
        let tenure_days: f64 = rng.gen_range(30.0..3_000.0);
        let csat: f64 = (3.8 + 0.8 * normal.sample(&mut rng)).clamp(1.0, 5.0);
        let raw: [f64; RAW] = [
            logins.sample(&mut rng),
            tickets.sample(&mut rng),
            failures.sample(&mut rng),
            escalations.sample(&mut rng),
            seats.sample(&mut rng),
            exports.sample(&mut rng),
            api_calls.sample(&mut rng),
            wait.sample(&mut rng),
            value.sample(&mut rng),
            csat,
            (7.5 + 2.0 * normal.sample(&mut rng)).clamp(0.0, 10.0), // NPS
            rng.gen_range(0.0..0.6),                                // share of failed contacts
            tenure_days,
            (normal.sample(&mut rng) * 0.3).tanh(), // usage trend
            rng.gen_range(0.0..1.0),                // feature adoption
            rng.gen_range(0.0..1.0),                // unused by the true model
            f64::from(u8::from(rng.gen_bool(0.12))), // open complaint
            f64::from(u8::from(rng.gen_bool(0.35))), // annual contract
        ];
        let mut logit = 0.0;
        for (j, (value, weight)) in raw.iter().zip(RAW_WEIGHTS).enumerate() {
            row[j] = *value;
            logit += value * weight;
        }
        let hots = [
            rng.gen_range(0..SEGMENTS),
            SEGMENTS + rng.gen_range(0..PLANS),
            SEGMENTS + PLANS + rng.gen_range(0..REGIONS),
            SEGMENTS + PLANS + REGIONS + rng.gen_range(0..CHANNELS),
        ];
        for hot in hots {
            row[RAW + hot] = 1.0;
            logit += ONE_HOT_WEIGHTS[hot];
        }
        for j in RAW + ONE_HOT_WEIGHTS.len()..FEATURES {
            row[j] = normal.sample(&mut rng);
        }
        logits.push(logit);
    }

    // The intercept that gives CHURN_RATE, by bisection on the mean probability.
    let (mut low, mut high) = (-30.0, 30.0);
    for _ in 0..60 {
        let mid = (low + high) / 2.0;
        let rate = logits
            .iter()
            .step_by(10)
            .map(|z| sigmoid(z + mid))
            .sum::<f64>()
            / logits.iter().step_by(10).count() as f64;
        if rate < CHURN_RATE {
            low = mid
        } else {
            high = mid
        }
    }
    let labels = logits
        .iter()
        .map(|z| rng.gen_bool(sigmoid(z + low)))
        .collect();
    Dataset::new(features, labels).expect("generated rows are finite and shaped")
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
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

/// Rows as the reference reads them: features (little-endian f64, row order), then labels.
fn write_rows(data: &Dataset, path: &Path) -> std::io::Result<()> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    for value in data.features.iter() {
        out.write_all(&value.to_le_bytes())?;
    }
    for label in &data.labels {
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
    let data = training_rows(rows, SEED);
    let train_rows = (rows as f64 * TRAIN_FRACTION) as usize;
    let (train, holdout) = data.split_at(train_rows);
    eprintln!(
        "generated {rows} rows × {} features ({} churned) in {:.1} s",
        data.feature_count(),
        data.positives(),
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
    write_rows(&data, &file).map_err(|err| format!("writing {}: {err}", file.display()))?;
    drop((data, train));
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
