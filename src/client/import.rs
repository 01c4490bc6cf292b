//! `rescue-client import`: a customer table — one row per customer, as a CRM export or a
//! public churn table comes — stored as customers with attributes and their churn outcomes,
//! dated so that training finds them.
//!
//! The table describes the customers as of one moment, the snapshot (`--as-of`); its label
//! column says whether each one left within the horizon after it. Every other column is an
//! attribute of the customer, named as its header is normalised (`Call  Failure` becomes
//! `call_failure`) and typed from the cells (overridable with `--type`). Rows are stored as:
//! - a customer profile dated at the snapshot (its `customer_since` too: the table says
//!   nothing of when the relationship began), segment `consumer`, plan `standard` and the
//!   annual value of `--value-column` (0 without one) — fields a table rarely has, which
//!   training drops as constant;
//! - for a row whose label is filled in, a churn outcome: churned at the middle of the
//!   horizon (the table says only that it happened within it) or still active, observed at
//!   the snapshot + the horizon. A row with an empty label is stored without an outcome: a
//!   customer to score, not to learn from.
//!
//! All profiles are sent before any outcome, so an outcome never names a customer still in
//! flight. Re-running the same import changes nothing (every record comes back a duplicate).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};

use super::attributes::{AttributeType, attribute_value, parse_flag};
use super::backfill::{RowSource, SendOptions, send_rows};
use super::columns::parse_time;
use super::format;
use super::progress::Progress;
use super::reader::{Position, Row, RowError};
use super::rejects::RejectFile;
use super::retry::RetryPolicy;
use super::summary::{Totals, thousands};
use crate::domain::AttributeName;
use crate::proto::v1::{self as proto, record::Kind};

/// Label cells that mean "churned", compared without case; any other filled cell is
/// "retained".
const DEFAULT_CHURNED: &str = "1,true,yes,churned";

/// `rescue-client import` options.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// A CSV file (optionally gzip-compressed) with a header row, one row per customer.
    pub file: PathBuf,
    /// The column holding each customer's id [default: none; each customer is then
    /// `row-N`, N its row's position after the header, from 0].
    #[arg(long)]
    pub id_column: Option<String>,
    /// The column saying whether the customer churned within the horizon after the
    /// snapshot; an empty cell stores the customer without an outcome.
    #[arg(long)]
    pub label_column: String,
    /// The moment the table describes (RFC 3339 or a date). Its horizon must have passed.
    #[arg(long, value_parser = parse_time)]
    pub as_of: prost_types::Timestamp,
    /// Days after the snapshot within which the label counts churn.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=730))]
    pub horizon_days: u32,
    /// Label values that mean churned, comma-separated (any case); other values mean retained.
    #[arg(long, default_value = DEFAULT_CHURNED, value_delimiter = ',')]
    pub churned_values: Vec<String>,
    /// A column's type, overriding the one inferred from its cells: COLUMN=number|category|flag
    /// (e.g. --type "Tariff Plan=category"); may be given for several columns.
    #[arg(long = "type", value_parser = parse_column_type)]
    pub types: Vec<(String, AttributeType)>,
    /// A column holding each customer's annual value in money units (also kept as an attribute).
    #[arg(long)]
    pub value_column: Option<String>,
    /// Where rejected rows are listed [default: FILE.rejects.csv].
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    #[command(flatten)]
    pub sending: SendOptions,
}

fn parse_column_type(text: &str) -> Result<(String, AttributeType), String> {
    let (column, kind) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("expected COLUMN=number|category|flag, got {text:?}"))?;
    Ok((column.trim().to_owned(), AttributeType::parse(kind)?))
}

/// What an import stored.
#[derive(Debug)]
pub struct ImportSummary {
    pub file: PathBuf,
    pub customers: Totals,
    pub outcomes: Totals,
    /// Each attribute column: its header, its name in rescue and its type.
    pub attributes: Vec<(String, String, AttributeType)>,
    pub elapsed: std::time::Duration,
    pub rejects: Option<PathBuf>,
}

impl ImportSummary {
    pub fn complete(&self) -> bool {
        self.customers.rejected == 0 && self.outcomes.rejected == 0
    }

    pub fn json(&self) -> serde_json::Value {
        let totals = |t: &Totals| {
            serde_json::json!({
                "rows": t.rows, "accepted": t.accepted, "duplicate": t.duplicate,
                "superseded": t.superseded, "rejected": t.rejected,
            })
        };
        serde_json::json!({
            "file": self.file.display().to_string(),
            "complete": self.complete(),
            "customers": totals(&self.customers),
            "churn_outcomes": totals(&self.outcomes),
            "attributes": self.attributes.iter().map(|(column, name, kind)| serde_json::json!({
                "column": column, "attribute": name, "type": kind.name(),
            })).collect::<Vec<_>>(),
            "seconds": self.elapsed.as_secs_f64(),
            "rejects_file": self.rejects.as_ref().map(|p| p.display().to_string()),
        })
    }
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = if self.complete() {
            "all stored".to_owned()
        } else {
            format!(
                "{} rejected",
                thousands(self.customers.rejected + self.outcomes.rejected)
            )
        };
        writeln!(f, "import of {}: {verdict}", self.file.display())?;
        for (what, t) in [
            ("customers", &self.customers),
            ("churn outcomes", &self.outcomes),
        ] {
            writeln!(
                f,
                "  {what}: {} rows, accepted {}, duplicate {}, superseded {}, rejected {}",
                thousands(t.rows),
                thousands(t.accepted),
                thousands(t.duplicate),
                thousands(t.superseded),
                thousands(t.rejected)
            )?;
        }
        write!(f, "  attributes:")?;
        for (column, name, kind) in &self.attributes {
            write!(f, "\n    {column:?} → {name} ({})", kind.name())?;
        }
        write!(f, "\n  in {:.1} s", self.elapsed.as_secs_f64())?;
        if let Some(path) = &self.rejects {
            write!(f, "\n  rejected rows are listed in {}", path.display())?;
        }
        Ok(())
    }
}

/// How the table's columns become records.
#[derive(Debug, Clone)]
struct Layout {
    /// The id column; `None`: ids by row position.
    id: Option<usize>,
    label: usize,
    value: Option<usize>,
    /// Every other column: its position, attribute name and type.
    attributes: Vec<(usize, String, AttributeType)>,
    churned: Vec<String>,
    as_of: prost_types::Timestamp,
    horizon_days: u32,
}

/// Reads the header and every cell once to settle each column's type: a column whose filled
/// cells all read as numbers is a number, all `true`/`false` a flag, anything else a category.
fn layout(args: &ImportArgs) -> anyhow::Result<(Layout, Vec<String>)> {
    let mut reader = csv_reader(&args.file)?;
    let header: Vec<String> = reader
        .headers()
        .with_context(|| format!("Failed to read the header of {}", args.file.display()))?
        .iter()
        .map(str::to_owned)
        .collect();
    let position = |name: &str, flag: &str| {
        header
            .iter()
            .position(|h| h.trim() == name.trim())
            .with_context(|| {
                format!("{flag} {name:?} is not a column of the file (its columns: {header:?})")
            })
    };
    let id = args
        .id_column
        .as_deref()
        .map(|name| position(name, "--id-column"))
        .transpose()?;
    let label = position(&args.label_column, "--label-column")?;
    if id == Some(label) {
        bail!("--id-column and --label-column name the same column");
    }
    let value = args
        .value_column
        .as_deref()
        .map(|name| position(name, "--value-column"))
        .transpose()?;
    for (column, _) in &args.types {
        position(column, "--type")?;
    }
    let candidates: Vec<usize> = (0..header.len())
        .filter(|&i| Some(i) != id && i != label)
        .collect();
    // What every column's filled cells could be: (all numbers, all flags).
    let mut could_be = vec![(true, true); header.len()];
    for record in reader.records() {
        let record = record.with_context(|| format!("Failed to read {}", args.file.display()))?;
        for &i in &candidates {
            let cell = record.get(i).unwrap_or("").trim();
            if cell.is_empty() {
                continue;
            }
            could_be[i].0 &= cell.parse::<f64>().is_ok_and(f64::is_finite);
            could_be[i].1 &= parse_flag(cell).is_some();
        }
    }
    let mut names = BTreeMap::new();
    let mut attributes = Vec::new();
    for i in candidates {
        let name = AttributeName::normalize(&header[i]).with_context(|| {
            format!(
                "column {:?} has no letters or digits to name an attribute by",
                header[i]
            )
        })?;
        if let Some(other) = names.insert(name.as_str().to_owned(), i) {
            bail!(
                "columns {:?} and {:?} both become attribute {name}: rename one",
                header[other],
                header[i]
            );
        }
        let kind = match args
            .types
            .iter()
            .rev()
            .find(|(c, _)| c.trim() == header[i].trim())
        {
            Some((_, kind)) => *kind,
            None if could_be[i].0 => AttributeType::Number,
            None if could_be[i].1 => AttributeType::Flag,
            None => AttributeType::Category,
        };
        attributes.push((i, name.as_str().to_owned(), kind));
    }
    let layout = Layout {
        id,
        label,
        value,
        attributes,
        churned: args
            .churned_values
            .iter()
            .map(|v| v.trim().to_lowercase())
            .collect(),
        as_of: args.as_of,
        horizon_days: args.horizon_days,
    };
    Ok((layout, header))
}

fn csv_reader(path: &Path) -> anyhow::Result<csv::Reader<Box<dyn std::io::BufRead + Send>>> {
    Ok(csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(format::open(path, 0)?.reader))
}

/// Which records a pass over the table produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Customers,
    Outcomes,
}

/// The table's rows as records of one pass.
struct TableSource {
    reader: csv::Reader<Box<dyn std::io::BufRead + Send>>,
    layout: Layout,
    pass: Pass,
    line: u64,
    /// Data rows read so far: the position of the next one after the header.
    rows: u64,
}

impl RowSource for TableSource {
    fn next_row(&mut self) -> anyhow::Result<Option<Row>> {
        loop {
            let mut record = csv::StringRecord::new();
            if !self
                .reader
                .read_record(&mut record)
                .context("Failed to read the table")?
            {
                return Ok(None);
            }
            self.line = record.position().map_or(self.line + 1, |p| p.line());
            let line = self.line;
            let id = match self.layout.id {
                Some(i) => record.get(i).unwrap_or("").trim().to_owned(),
                None => format!("row-{}", self.rows),
            };
            self.rows += 1;
            let built = match self.pass {
                Pass::Customers => Some(customer(&self.layout, &id, &record)),
                Pass::Outcomes => outcome(&self.layout, &id, &record).transpose(),
            };
            if let Some(record) = built {
                return Ok(Some(Row { line, record }));
            }
        }
    }

    fn position(&self) -> Position {
        Position {
            offset: self.reader.position().byte(),
            line: self.line + 1,
        }
    }

    fn consumed(&self) -> u64 {
        self.reader.position().byte()
    }
}

fn row_error(id: &str, field: &str, reason: impl Into<String>) -> RowError {
    RowError {
        id: id.to_owned(),
        field: field.to_owned(),
        reason: reason.into(),
    }
}

fn customer(
    layout: &Layout,
    id: &str,
    record: &csv::StringRecord,
) -> Result<proto::Record, RowError> {
    let mut attributes = BTreeMap::new();
    for (i, name, kind) in &layout.attributes {
        let cell = record.get(*i).unwrap_or("").trim();
        if cell.is_empty() {
            continue;
        }
        let value =
            attribute_value(cell, Some(*kind)).map_err(|reason| row_error(id, name, reason))?;
        attributes.insert(name.clone(), value);
    }
    let annual_value = match layout.value {
        Some(i) => {
            let cell = record.get(i).unwrap_or("").trim();
            cell.parse::<f64>()
                .map_err(|_| row_error(id, "annual_value", format!("{cell:?} is not an amount")))?
        }
        None => 0.0,
    };
    Ok(proto::Record {
        kind: Some(Kind::Customer(proto::Customer {
            customer_id: id.to_owned(),
            segment: proto::Segment::Consumer.into(),
            plan: proto::PlanTier::Standard.into(),
            persona: String::new(),
            region: String::new(),
            annual_value,
            customer_since: Some(layout.as_of),
            updated_at: Some(layout.as_of),
            attributes,
        })),
    })
}

/// `at` plus whole days.
fn days_after(at: prost_types::Timestamp, days: f64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.seconds + (days * 86_400.0).round() as i64,
        nanos: at.nanos,
    }
}

fn outcome(
    layout: &Layout,
    id: &str,
    record: &csv::StringRecord,
) -> Result<Option<proto::Record>, RowError> {
    let label = record.get(layout.label).unwrap_or("").trim();
    if label.is_empty() {
        return Ok(None);
    }
    let churned = layout.churned.contains(&label.to_lowercase());
    let horizon = f64::from(layout.horizon_days);
    let (status, churned_at) = if churned {
        (
            proto::ChurnStatus::Churned,
            Some(days_after(layout.as_of, horizon / 2.0)),
        )
    } else {
        (proto::ChurnStatus::Active, None)
    };
    Ok(Some(proto::Record {
        kind: Some(Kind::ChurnOutcome(proto::ChurnOutcome {
            customer_id: id.to_owned(),
            status: status.into(),
            churned_at,
            observed_at: Some(days_after(layout.as_of, horizon)),
        })),
    }))
}

/// Runs an import: profiles first, then outcomes.
pub async fn import(
    channel: super::connection::Connection,
    args: &ImportArgs,
) -> anyhow::Result<ImportSummary> {
    let started = Instant::now();
    let horizon_end = days_after(args.as_of, f64::from(args.horizon_days));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if horizon_end.seconds > now {
        bail!(
            "the snapshot's horizon ends in the future ({}): outcomes are observed at --as-of + --horizon-days, \
             so --as-of must lie at least --horizon-days in the past (the label says whether each customer left within them)",
            super::columns::format_time(horizon_end)
        );
    }
    let (layout, header) = layout(args)?;
    let rejects_path = args
        .rejects
        .clone()
        .unwrap_or_else(|| super::checkpoint::with_suffix(&args.file, ".rejects.csv"));
    let mut rejects = RejectFile::open(&rejects_path, 0)?;
    let size = std::fs::metadata(&args.file).map_or(0, |m| m.len());
    let mut passes = Vec::new();
    for pass in [Pass::Customers, Pass::Outcomes] {
        let mut source = TableSource {
            reader: csv_reader(&args.file)?,
            layout: layout.clone(),
            pass,
            line: 1,
            rows: 0,
        };
        source
            .reader
            .headers()
            .context("Failed to read the header")?;
        let label = match pass {
            Pass::Customers => "customers",
            Pass::Outcomes => "churn outcomes",
        };
        let mut progress = Progress::new(label, size, 0);
        let mut totals = Totals::default();
        send_rows(
            channel.clone(),
            source,
            args.sending.chunk_rows,
            RetryPolicy::with_retries(args.sending.retries),
            |confirmed| {
                rejects.append(&confirmed.rejects)?;
                totals.add(&confirmed.totals);
                progress.update(totals.rows, confirmed.consumed);
                Ok(())
            },
        )
        .await
        .with_context(|| {
            format!(
                "the import stopped while storing {label}; run the same command again to finish it"
            )
        })?;
        progress.finish();
        passes.push(totals);
    }
    Ok(ImportSummary {
        file: args.file.clone(),
        customers: passes[0],
        outcomes: passes[1],
        attributes: layout
            .attributes
            .iter()
            .map(|(i, name, kind)| (header[*i].clone(), name.clone(), *kind))
            .collect(),
        elapsed: started.elapsed(),
        rejects: (passes[0].rejected + passes[1].rejected > 0).then_some(rejects_path),
    })
}
