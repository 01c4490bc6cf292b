//! The columns of every record kind in backfill files — the one definition that the file
//! readers (text to proto record) and the file writers (proto record to text, used by
//! `rescue simulate --out-dir`) share, so a written file always reads back as the same records.
//!
//! A column names one field of the record's `rescue.v1` message. Cells are text in CSV and
//! strings, numbers, booleans or null in JSON Lines; both go through the same parsing here.
//! An empty cell leaves the field unset; a required column may not be empty.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

use crate::proto::v1::{self as proto, record::Kind};

/// A kind of record, as backfill files and the command line name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum FileKind {
    #[value(name = "customers")]
    Customers,
    #[value(name = "usage_events", alias = "usage-events")]
    UsageEvents,
    #[value(name = "interactions")]
    Interactions,
    #[value(name = "surveys")]
    Surveys,
    #[value(name = "churn_outcomes", alias = "churn-outcomes")]
    ChurnOutcomes,
    #[value(name = "recovery_cases", alias = "recovery-cases")]
    RecoveryCases,
}

impl FileKind {
    /// Every kind, in the order a full backfill must load them: customers first, since every
    /// other record names a stored customer.
    pub const ALL: [Self; 6] = [
        Self::Customers,
        Self::UsageEvents,
        Self::Interactions,
        Self::Surveys,
        Self::ChurnOutcomes,
        Self::RecoveryCases,
    ];

    /// The kind's name on the command line and the stem of its file name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Customers => "customers",
            Self::UsageEvents => "usage_events",
            Self::Interactions => "interactions",
            Self::Surveys => "surveys",
            Self::ChurnOutcomes => "churn_outcomes",
            Self::RecoveryCases => "recovery_cases",
        }
    }

    /// The kind of a proto record; `None` for a record with no kind set.
    pub fn of(record: &proto::Record) -> Option<Self> {
        Some(match record.kind.as_ref()? {
            Kind::Customer(_) => Self::Customers,
            Kind::UsageEvent(_) => Self::UsageEvents,
            Kind::Interaction(_) => Self::Interactions,
            Kind::Survey(_) => Self::Surveys,
            Kind::ChurnOutcome(_) => Self::ChurnOutcomes,
            Kind::RecoveryCase(_) => Self::RecoveryCases,
        })
    }

    /// The kind's columns in file order: each name, and whether it must be present and filled.
    pub fn columns(self) -> Vec<(&'static str, bool)> {
        fn columns<M>(columns: &[Column<M>]) -> Vec<(&'static str, bool)> {
            columns.iter().map(|c| (c.name, c.required)).collect()
        }
        match self {
            Self::Customers => columns(CUSTOMER),
            Self::UsageEvents => columns(USAGE_EVENT),
            Self::Interactions => columns(INTERACTION),
            Self::Surveys => columns(SURVEY),
            Self::ChurnOutcomes => columns(CHURN_OUTCOME),
            Self::RecoveryCases => columns(RECOVERY_CASE),
        }
    }

    /// Builds a record of this kind from its cells, given by column position in
    /// [`columns`](Self::columns) order (`None` for a column the file lacks).
    pub fn parse(self, cells: &[Option<&str>]) -> Result<proto::Record, CellError> {
        let kind = match self {
            Self::Customers => Kind::Customer(parse_cells(CUSTOMER, cells)?),
            Self::UsageEvents => Kind::UsageEvent(parse_cells(USAGE_EVENT, cells)?),
            Self::Interactions => Kind::Interaction(parse_cells(INTERACTION, cells)?),
            Self::Surveys => Kind::Survey(parse_cells(SURVEY, cells)?),
            Self::ChurnOutcomes => Kind::ChurnOutcome(parse_cells(CHURN_OUTCOME, cells)?),
            Self::RecoveryCases => Kind::RecoveryCase(parse_cells(RECOVERY_CASE, cells)?),
        };
        Ok(proto::Record { kind: Some(kind) })
    }

    /// The cells of `record`, in column order; `None` for a record of no kind.
    pub fn cells(record: &proto::Record) -> Option<(Self, Vec<Cell<'_>>)> {
        fn cells<'a, M>(columns: &[Column<M>], message: &'a M) -> Vec<Cell<'a>> {
            columns.iter().map(|c| (c.get)(message)).collect()
        }
        Some(match record.kind.as_ref()? {
            Kind::Customer(r) => (Self::Customers, cells(CUSTOMER, r)),
            Kind::UsageEvent(r) => (Self::UsageEvents, cells(USAGE_EVENT, r)),
            Kind::Interaction(r) => (Self::Interactions, cells(INTERACTION, r)),
            Kind::Survey(r) => (Self::Surveys, cells(SURVEY, r)),
            Kind::ChurnOutcome(r) => (Self::ChurnOutcomes, cells(CHURN_OUTCOME, r)),
            Kind::RecoveryCase(r) => (Self::RecoveryCases, cells(RECOVERY_CASE, r)),
        })
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A cell that could not be read: the column and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellError {
    pub column: &'static str,
    pub reason: String,
}

impl fmt::Display for CellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.column, self.reason)
    }
}

/// One cell's value as written: typed, so JSON Lines get numbers and booleans, not strings.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Empty,
    Text(&'a str),
    Number(f64),
    Count(u32),
    Bool(bool),
    Time(prost_types::Timestamp),
    Enum(String),
}

impl Cell<'_> {
    /// The cell as CSV text (empty for an empty cell).
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Self::Empty => Cow::Borrowed(""),
            Self::Text(text) => Cow::Borrowed(text),
            // `Display` of f64 is the shortest text that reads back as the same number.
            Self::Number(value) => Cow::Owned(value.to_string()),
            Self::Count(value) => Cow::Owned(value.to_string()),
            Self::Bool(value) => Cow::Borrowed(if *value { "true" } else { "false" }),
            Self::Time(at) => Cow::Owned(format_time(*at)),
            Self::Enum(name) => Cow::Borrowed(name),
        }
    }

    /// The cell as a JSON value; `None` for an empty cell, whose key is left out.
    pub fn json(&self) -> Option<serde_json::Value> {
        use serde_json::Value;
        match self {
            Self::Empty => None,
            Self::Number(value) => serde_json::Number::from_f64(*value).map(Value::Number),
            Self::Count(value) => Some(Value::from(*value)),
            Self::Bool(value) => Some(Value::Bool(*value)),
            Self::Text(_) | Self::Time(_) | Self::Enum(_) => {
                Some(Value::String(self.text().into_owned()))
            }
        }
    }
}

/// One column: its name, whether it must be filled, and how it reads and writes its field.
struct Column<M> {
    name: &'static str,
    required: bool,
    get: for<'a> fn(&'a M) -> Cell<'a>,
    set: fn(&mut M, &str) -> Result<(), String>,
}

fn parse_cells<M: Default>(columns: &[Column<M>], cells: &[Option<&str>]) -> Result<M, CellError> {
    let mut message = M::default();
    for (column, cell) in columns.iter().zip(cells) {
        match cell.map(str::trim).filter(|text| !text.is_empty()) {
            Some(text) => (column.set)(&mut message, text).map_err(|reason| CellError {
                column: column.name,
                reason,
            })?,
            None if column.required => {
                return Err(CellError {
                    column: column.name,
                    reason: "is required".into(),
                });
            }
            None => {}
        }
    }
    Ok(message)
}

/// Times are RFC 3339 (`2026-06-02T10:15:00Z`, any offset, fractions to the microsecond), or a
/// bare date meaning midnight UTC.
pub fn parse_time(text: &str) -> Result<prost_types::Timestamp, String> {
    let at = match DateTime::parse_from_rfc3339(text) {
        Ok(at) => at.with_timezone(&Utc),
        Err(error) => match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(date) => date.and_time(chrono::NaiveTime::MIN).and_utc(),
            Err(_) => {
                return Err(format!(
                    "{text:?} is not a time: {error} (use RFC 3339, e.g. 2026-06-02T10:15:00Z)"
                ));
            }
        },
    };
    Ok(prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    })
}

/// RFC 3339 in UTC with as many fraction digits as the time needs (none, 3, 6 or 9).
pub fn format_time(at: prost_types::Timestamp) -> String {
    match DateTime::from_timestamp(at.seconds, u32::try_from(at.nanos).unwrap_or(0)) {
        Some(at) => at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        // Out of chrono's range: written as is so the server names the problem.
        None => format!("{}s{}ns", at.seconds, at.nanos),
    }
}

fn parse_number(text: &str) -> Result<f64, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a number"))
}

fn parse_count(text: &str) -> Result<u32, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a whole number of 0 or more"))
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("{text:?} is not true or false")),
    }
}

fn time_cell(at: Option<prost_types::Timestamp>) -> Cell<'static> {
    at.map_or(Cell::Empty, Cell::Time)
}

fn text_cell(text: &str) -> Cell<'_> {
    if text.is_empty() {
        Cell::Empty
    } else {
        Cell::Text(text)
    }
}

/// A proto enum value's name as files and reports spell it: `SEGMENT_SMALL_BUSINESS` with
/// prefix `SEGMENT_` is `small_business`.
pub fn enum_name(proto_name: &str, prefix: &str) -> String {
    proto_name
        .strip_prefix(prefix)
        .unwrap_or(proto_name)
        .to_ascii_lowercase()
}

/// A proto enum as files spell it: the value's name without the type prefix, in lower case
/// (`small_business`); the full proto name (`SEGMENT_SMALL_BUSINESS`) is read too.
trait FileEnum: Sized + Into<i32> + TryFrom<i32> {
    const PREFIX: &'static str;
    fn proto_name(&self) -> &'static str;
    fn from_proto_name(name: &str) -> Option<Self>;

    fn cell(raw: i32) -> Cell<'static> {
        match Self::try_from(raw) {
            Ok(value) if raw != 0 => Cell::Enum(enum_name(value.proto_name(), Self::PREFIX)),
            // 0 is "unspecified"; an unknown number cannot come from a parsed file.
            _ => Cell::Empty,
        }
    }

    fn parse(text: &str) -> Result<i32, String> {
        let upper = text.to_ascii_uppercase();
        let value = Self::from_proto_name(&upper)
            .or_else(|| Self::from_proto_name(&format!("{}{upper}", Self::PREFIX)))
            .map(Into::into)
            .filter(|raw| *raw != 0);
        value.ok_or_else(|| {
            let known: Vec<String> = (1..)
                .map_while(|raw| match Self::cell(raw) {
                    Cell::Enum(name) => Some(name),
                    _ => None,
                })
                .collect();
            format!(
                "unknown value {text:?}; expected one of {}",
                known.join(", ")
            )
        })
    }
}

/// A model kind as flags spell it (`health`, …: whatever kinds the contract has).
pub fn parse_model_kind(text: &str) -> Result<i32, String> {
    <proto::ModelKind as FileEnum>::parse(text)
}

macro_rules! file_enum {
    ($($proto:ty => $prefix:literal),+ $(,)?) => {$(
        impl FileEnum for $proto {
            const PREFIX: &'static str = $prefix;
            fn proto_name(&self) -> &'static str {
                self.as_str_name()
            }
            fn from_proto_name(name: &str) -> Option<Self> {
                Self::from_str_name(name)
            }
        }
    )+};
}

file_enum!(
    proto::Segment => "SEGMENT_",
    proto::PlanTier => "PLAN_TIER_",
    proto::Channel => "CHANNEL_",
    proto::IssueTag => "ISSUE_TAG_",
    proto::Resolution => "RESOLUTION_",
    proto::ChurnStatus => "CHURN_STATUS_",
    proto::RecoveryTrigger => "RECOVERY_TRIGGER_",
    proto::RecoveryAction => "RECOVERY_ACTION_",
    proto::ModelKind => "MODEL_KIND_",
);

/// `column!(required? "name", field: type)` — one column over a message field, by the
/// field's file type. Types: `text`, `time` (optional proto time), `number` (f64),
/// `optional_number`, `count` (optional u32), `bool` (empty is false), `optional_bool`,
/// `enum Type`, and `cares name` (a C.A.R.E.S. rating inside the nested `cares` message).
macro_rules! column {
    (@required required) => { true };
    (@required) => { false };
    ($($required:ident)? $name:literal, $field:ident: text) => {
        Column {
            name: $name,
            required: column!(@required $($required)?),
            get: |m| text_cell(&m.$field),
            set: |m, v| { m.$field = v.to_owned(); Ok(()) },
        }
    };
    ($($required:ident)? $name:literal, $field:ident: time) => {
        Column {
            name: $name,
            required: column!(@required $($required)?),
            get: |m| time_cell(m.$field),
            set: |m, v| { m.$field = Some(parse_time(v)?); Ok(()) },
        }
    };
    ($($required:ident)? $name:literal, $field:ident: number) => {
        Column {
            name: $name,
            required: column!(@required $($required)?),
            get: |m| Cell::Number(m.$field),
            set: |m, v| { m.$field = parse_number(v)?; Ok(()) },
        }
    };
    ($($required:ident)? $name:literal, $field:ident: optional_number) => {
        Column {
            name: $name,
            required: column!(@required $($required)?),
            get: |m| m.$field.map_or(Cell::Empty, Cell::Number),
            set: |m, v| { m.$field = Some(parse_number(v)?); Ok(()) },
        }
    };
    ($($required:ident)? $name:literal, $field:ident: count) => {
        Column {
            name: $name,
            required: column!(@required $($required)?),
            get: |m| m.$field.map_or(Cell::Empty, Cell::Count),
            set: |m, v| { m.$field = Some(parse_count(v)?); Ok(()) },
        }
    };
    ($($required:ident)? $name:literal, $field:ident: bool) => {
        Column {
            name: $name,
            required: column!(@required $($required)?),
            get: |m| Cell::Bool(m.$field),
            set: |m, v| { m.$field = parse_bool(v)?; Ok(()) },
        }
    };
    ($($required:ident)? $name:literal, $field:ident: optional_bool) => {
        Column {
            name: $name,
            required: column!(@required $($required)?),
            get: |m| m.$field.map_or(Cell::Empty, Cell::Bool),
            set: |m, v| { m.$field = Some(parse_bool(v)?); Ok(()) },
        }
    };
    ($($required:ident)? $name:literal, $field:ident: enum $type:ty) => {
        Column {
            name: $name,
            required: column!(@required $($required)?),
            get: |m| <$type as FileEnum>::cell(m.$field),
            set: |m, v| { m.$field = <$type as FileEnum>::parse(v)?; Ok(()) },
        }
    };
    ($name:literal, cares $field:ident) => {
        Column {
            name: $name,
            required: false,
            get: |m: &proto::RecoveryCase| {
                m.cares.as_ref().and_then(|c| c.$field).map_or(Cell::Empty, Cell::Count)
            },
            set: |m, v| {
                m.cares.get_or_insert_default().$field = Some(parse_count(v)?);
                Ok(())
            },
        }
    };
}

const CUSTOMER: &[Column<proto::Customer>] = &[
    column!(required "customer_id", customer_id: text),
    column!(required "segment", segment: enum proto::Segment),
    column!(required "plan", plan: enum proto::PlanTier),
    column!("persona", persona: text),
    column!("region", region: text),
    column!(required "annual_value", annual_value: number),
    column!(required "customer_since", customer_since: time),
    column!(required "updated_at", updated_at: time),
];

const USAGE_EVENT: &[Column<proto::UsageEvent>] = &[
    column!(required "event_id", event_id: text),
    column!(required "customer_id", customer_id: text),
    column!(required "occurred_at", occurred_at: time),
    column!(required "activity", activity: text),
    column!(required "quantity", quantity: number),
];

const INTERACTION: &[Column<proto::Interaction>] = &[
    column!(required "interaction_id", interaction_id: text),
    column!(required "customer_id", customer_id: text),
    column!(required "occurred_at", occurred_at: time),
    column!(required "channel", channel: enum proto::Channel),
    // Tags and actions are the serving program's names (the built-in ones read as before).
    column!(required "tag", tag_name: text),
    column!("failure", failure: bool),
    column!(required "resolution", resolution: enum proto::Resolution),
    column!(required "wait_seconds", wait_seconds: number),
    column!("first_contact_resolution", first_contact_resolution: bool),
    column!("repeat_contact", repeat_contact: bool),
];

const SURVEY: &[Column<proto::Survey>] = &[
    column!(required "survey_id", survey_id: text),
    column!(required "customer_id", customer_id: text),
    column!(required "answered_at", answered_at: time),
    column!(required "channel", channel: enum proto::Channel),
    column!("interaction_id", interaction_id: text),
    column!("csat", csat: count),
    column!("nps", nps: count),
    column!("recovery_rating", recovery_rating: count),
    column!("comment", comment: text),
];

const CHURN_OUTCOME: &[Column<proto::ChurnOutcome>] = &[
    column!(required "customer_id", customer_id: text),
    column!(required "status", status: enum proto::ChurnStatus),
    column!("churned_at", churned_at: time),
    column!(required "observed_at", observed_at: time),
];

const RECOVERY_CASE: &[Column<proto::RecoveryCase>] = &[
    column!(required "case_id", case_id: text),
    column!(required "customer_id", customer_id: text),
    column!(required "trigger", trigger: enum proto::RecoveryTrigger),
    column!(required "tag", tag_name: text),
    column!(required "action", action_name: text),
    column!(required "cost", cost: number),
    column!("trigger_interaction_id", trigger_interaction_id: text),
    column!("trigger_survey_id", trigger_survey_id: text),
    column!(required "opened_at", opened_at: time),
    column!("first_response_at", first_response_at: time),
    column!("resolved_at", resolved_at: time),
    column!("cares_communication", cares communication),
    column!("cares_accountability", cares accountability),
    column!("cares_responsiveness", cares responsiveness),
    column!("cares_empathy", cares empathy),
    column!("cares_solution", cares solution),
    column!("resurvey_score", resurvey_score: count),
    column!("retained", retained: optional_bool),
    column!("spend_change_pct", spend_change_pct: optional_number),
    column!(required "updated_at", updated_at: time),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(kind: FileKind, record: proto::Record) {
        let (written_kind, cells) = FileKind::cells(&record).expect("a kind");
        assert_eq!(written_kind, kind);
        let texts: Vec<String> = cells.iter().map(|c| c.text().into_owned()).collect();
        let read: Vec<Option<&str>> = texts.iter().map(|t| Some(t.as_str())).collect();
        assert_eq!(kind.parse(&read).expect("reads back"), record);
    }

    #[test]
    fn every_kind_reads_back_what_it_writes() {
        let at = |seconds| {
            Some(prost_types::Timestamp {
                seconds,
                nanos: 123_456_000,
            })
        };
        round_trip(
            FileKind::Customers,
            proto::Record {
                kind: Some(Kind::Customer(proto::Customer {
                    customer_id: "c-1".into(),
                    segment: proto::Segment::MidMarket.into(),
                    plan: proto::PlanTier::Premium.into(),
                    persona: String::new(),
                    region: "EMEA, north".into(),
                    annual_value: 1_234.5,
                    customer_since: at(1_600_000_000),
                    updated_at: at(1_700_000_000),
                    attributes: Default::default(),
                })),
            },
        );
        round_trip(
            FileKind::RecoveryCases,
            proto::Record {
                kind: Some(Kind::RecoveryCase(proto::RecoveryCase {
                    case_id: "r-1".into(),
                    customer_id: "c-1".into(),
                    trigger: proto::RecoveryTrigger::LiveAnger.into(),
                    tag_name: "app crash".into(),
                    action_name: "courier redelivery".into(),
                    cost: 0.1 + 0.2,
                    opened_at: at(1_700_000_000),
                    cares: Some(proto::CaresRatings {
                        empathy: Some(7),
                        ..Default::default()
                    }),
                    retained: Some(false),
                    spend_change_pct: Some(-12.5),
                    updated_at: at(1_700_000_100),
                    ..Default::default()
                })),
            },
        );
    }

    #[test]
    fn enums_read_in_either_spelling_and_name_the_known_values_otherwise() {
        assert_eq!(
            proto::Channel::parse("in_person"),
            Ok(proto::Channel::InPerson.into())
        );
        assert_eq!(
            proto::Channel::parse("CHANNEL_IN_APP"),
            Ok(proto::Channel::InApp.into())
        );
        let error = proto::PlanTier::parse("gold").expect_err("not a tier");
        assert_eq!(
            error,
            "unknown value \"gold\"; expected one of free, basic, standard, premium"
        );
        assert!(proto::PlanTier::parse("unspecified").is_err());
    }

    #[test]
    fn a_required_cell_left_empty_is_named() {
        let error = FileKind::UsageEvents
            .parse(&[
                Some("u-1"),
                Some("c-1"),
                Some("2026-01-01"),
                Some("login"),
                None,
            ])
            .expect_err("no quantity");
        assert_eq!(error.to_string(), "quantity: is required");
    }

    #[test]
    fn dates_and_offsets_are_read_as_utc() {
        assert_eq!(
            parse_time("2026-01-01").map(|t| t.seconds),
            Ok(1_767_225_600)
        );
        assert_eq!(
            parse_time("2026-01-01T01:00:00+01:00").map(|t| t.seconds),
            Ok(1_767_225_600)
        );
        assert!(parse_time("yesterday").is_err());
    }
}
