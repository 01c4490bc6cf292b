//! Reading stored rows back into domain values. Both backends expose their rows through
//! [`ReadRow`]; the decoding, and the refusal of anything a valid record could not contain,
//! is written once here.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::StoreError;
use crate::domain::{
    Amount, Attributes, CaresRatings, CaseId, ChurnOutcome, Customer, CustomerId, EventId,
    Interaction, InteractionId, Money, Rating, RecordKind, RecoveryCase, SpendChange, Survey,
    SurveyId, Timestamp, UsageEvent, WaitSeconds,
};

/// Typed column access by position; times come back as [`Timestamp`] whatever the backend
/// stores them as.
pub(super) trait ReadRow {
    fn text(&self, index: usize) -> Result<Option<String>, sqlx::Error>;
    fn real(&self, index: usize) -> Result<Option<f64>, sqlx::Error>;
    fn small(&self, index: usize) -> Result<Option<i16>, sqlx::Error>;
    fn flag(&self, index: usize) -> Result<Option<bool>, sqlx::Error>;
    fn time(&self, index: usize) -> Result<Option<Timestamp>, sqlx::Error>;
    fn big(&self, index: usize) -> Result<Option<i64>, sqlx::Error>;
    fn bytes(&self, index: usize) -> Result<Option<Vec<u8>>, sqlx::Error>;
}

macro_rules! read_row {
    ($row:ty, $stored_time:ty, $to_timestamp:expr) => {
        impl ReadRow for $row {
            fn text(&self, index: usize) -> Result<Option<String>, sqlx::Error> {
                self.try_get(index)
            }
            fn real(&self, index: usize) -> Result<Option<f64>, sqlx::Error> {
                self.try_get(index)
            }
            fn small(&self, index: usize) -> Result<Option<i16>, sqlx::Error> {
                self.try_get(index)
            }
            fn flag(&self, index: usize) -> Result<Option<bool>, sqlx::Error> {
                self.try_get(index)
            }
            fn time(&self, index: usize) -> Result<Option<Timestamp>, sqlx::Error> {
                let stored: Option<$stored_time> = self.try_get(index)?;
                Ok(stored.map($to_timestamp))
            }
            fn big(&self, index: usize) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(index)
            }
            fn bytes(&self, index: usize) -> Result<Option<Vec<u8>>, sqlx::Error> {
                self.try_get(index)
            }
        }
    };
}

read_row!(sqlx::sqlite::SqliteRow, i64, Timestamp::from_unix_micros);
read_row!(sqlx::postgres::PgRow, DateTime<Utc>, |at: DateTime<Utc>| {
    Timestamp::from_unix_micros(at.timestamp_micros())
});

/// Reads columns in order, naming the column in any complaint.
struct Columns<'a> {
    row: &'a dyn ReadRow,
    names: &'static [(&'static str, super::tables::ColumnType)],
    next: usize,
}

impl<'a> Columns<'a> {
    fn new(row: &'a dyn ReadRow, table: &'static super::tables::Table) -> Self {
        Self {
            row,
            names: table.columns,
            next: 0,
        }
    }

    fn advance(&mut self) -> (usize, &'static str) {
        let index = self.next;
        self.next += 1;
        (index, self.names.get(index).map_or("?", |(name, _)| name))
    }

    fn optional<T>(
        &mut self,
        read: impl FnOnce(&'a dyn ReadRow, usize) -> Result<Option<T>, sqlx::Error>,
    ) -> Result<(Option<T>, &'static str), StoreError> {
        let (index, name) = self.advance();
        Ok((read(self.row, index)?, name))
    }

    fn required<T>(
        &mut self,
        read: impl FnOnce(&'a dyn ReadRow, usize) -> Result<Option<T>, sqlx::Error>,
    ) -> Result<(T, &'static str), StoreError> {
        let (value, name) = self.optional(read)?;
        value
            .map(|v| (v, name))
            .ok_or_else(|| StoreError::Corrupt(format!("{name} is NULL")))
    }

    fn parsed<T, E: std::fmt::Display>(
        &mut self,
        parse: impl FnOnce(String) -> Result<T, E>,
    ) -> Result<T, StoreError> {
        let (value, name) = self.required(|row, i| row.text(i))?;
        parse(value).map_err(|e| corrupt(name, e))
    }

    fn optional_parsed<T, E: std::fmt::Display>(
        &mut self,
        parse: impl FnOnce(String) -> Result<T, E>,
    ) -> Result<Option<T>, StoreError> {
        let (value, name) = self.optional(|row, i| row.text(i))?;
        value.map(parse).transpose().map_err(|e| corrupt(name, e))
    }

    fn name<T: FromStr<Err = crate::domain::UnknownName>>(&mut self) -> Result<T, StoreError> {
        self.parsed(|text| text.parse::<T>())
    }

    fn number<T>(&mut self, parse: impl FnOnce(f64) -> Result<T, String>) -> Result<T, StoreError> {
        let (value, name) = self.required(|row, i| row.real(i))?;
        parse(value).map_err(|e| corrupt(name, e))
    }

    fn money(&mut self) -> Result<Money, StoreError> {
        self.number(Money::parse)
    }

    fn required_flag(&mut self) -> Result<bool, StoreError> {
        Ok(self.required(|row, i| row.flag(i))?.0)
    }

    fn optional_label(&mut self) -> Result<Option<String>, StoreError> {
        Ok(self.optional(|row, i| row.text(i))?.0)
    }

    /// Only the fingerprint may follow the decoded columns: a column added to the table
    /// without being decoded would otherwise shift every position silently.
    fn end(mut self) -> Result<(), StoreError> {
        let (_, name) = self.advance();
        if name == "fingerprint" {
            Ok(())
        } else {
            Err(StoreError::Corrupt(format!("unexpected column {name}")))
        }
    }

    fn optional_real(&mut self) -> Result<(Option<f64>, &'static str), StoreError> {
        self.optional(|row, i| row.real(i))
    }

    fn rating<const MIN: u8, const MAX: u8>(
        &mut self,
    ) -> Result<Option<Rating<MIN, MAX>>, StoreError> {
        let (value, name) = self.optional(|row, i| row.small(i))?;
        value
            .map(|v| {
                u32::try_from(v)
                    .map_err(|e| e.to_string())
                    .and_then(Rating::parse)
            })
            .transpose()
            .map_err(|e| corrupt(name, e))
    }

    fn flag(&mut self) -> Result<Option<bool>, StoreError> {
        Ok(self.optional(|row, i| row.flag(i))?.0)
    }

    fn time(&mut self) -> Result<Timestamp, StoreError> {
        Ok(self.required(|row, i| row.time(i))?.0)
    }

    fn optional_time(&mut self) -> Result<Option<Timestamp>, StoreError> {
        Ok(self.optional(|row, i| row.time(i))?.0)
    }
}

fn corrupt(column: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{column}: {error}"))
}

/// A `recovery_cases` row, selected with every column in table order.
pub(super) fn recovery_case(row: &dyn ReadRow) -> Result<RecoveryCase, StoreError> {
    let mut c = Columns::new(
        row,
        super::tables::table(crate::domain::RecordKind::RecoveryCase),
    );
    let case = RecoveryCase {
        case_id: c.parsed(CaseId::parse)?,
        customer_id: c.parsed(CustomerId::parse)?,
        trigger: c.name()?,
        tag: c.name()?,
        action: c.name()?,
        cost: c.money()?,
        trigger_interaction_id: c.optional_parsed(InteractionId::parse)?,
        trigger_survey_id: c.optional_parsed(SurveyId::parse)?,
        opened_at: c.time()?,
        first_response_at: c.optional_time()?,
        resolved_at: c.optional_time()?,
        cares: CaresRatings {
            communication: c.rating()?,
            accountability: c.rating()?,
            responsiveness: c.rating()?,
            empathy: c.rating()?,
            solution: c.rating()?,
        },
        resurvey_score: c.rating()?,
        retained: c.flag()?,
        spend_change_pct: {
            let (value, name) = c.optional_real()?;
            value
                .map(SpendChange::parse)
                .transpose()
                .map_err(|e| corrupt(name, e))?
        },
        updated_at: c.time()?,
    };
    c.end()?;
    Ok(case)
}

/// A `customers` row, every column in table order.
pub(super) fn customer(row: &dyn ReadRow) -> Result<Customer, StoreError> {
    let mut c = Columns::new(row, super::tables::table(RecordKind::Customer));
    let customer = Customer {
        customer_id: c.parsed(CustomerId::parse)?,
        segment: c.name()?,
        plan: c.name()?,
        persona: c.optional_label()?,
        region: c.optional_label()?,
        annual_value: c.money()?,
        customer_since: c.time()?,
        updated_at: c.time()?,
        attributes: c.parsed(|json| Attributes::from_json(&json))?,
    };
    c.end()?;
    Ok(customer)
}

/// A `usage_events` row, every column in table order.
pub(super) fn usage_event(row: &dyn ReadRow) -> Result<UsageEvent, StoreError> {
    let mut c = Columns::new(row, super::tables::table(RecordKind::UsageEvent));
    let event = UsageEvent {
        event_id: c.parsed(EventId::parse)?,
        customer_id: c.parsed(CustomerId::parse)?,
        occurred_at: c.time()?,
        activity: c.parsed(Ok::<String, String>)?,
        quantity: c.number(Amount::parse)?,
    };
    c.end()?;
    Ok(event)
}

/// An `interactions` row, every column in table order.
pub(super) fn interaction(row: &dyn ReadRow) -> Result<Interaction, StoreError> {
    let mut c = Columns::new(row, super::tables::table(RecordKind::Interaction));
    let interaction = Interaction {
        interaction_id: c.parsed(InteractionId::parse)?,
        customer_id: c.parsed(CustomerId::parse)?,
        occurred_at: c.time()?,
        channel: c.name()?,
        tag: c.name()?,
        failure: c.required_flag()?,
        resolution: c.name()?,
        wait_seconds: c.number(WaitSeconds::parse)?,
        first_contact_resolution: c.required_flag()?,
        repeat_contact: c.required_flag()?,
    };
    c.end()?;
    Ok(interaction)
}

/// A `surveys` row, every column in table order.
pub(super) fn survey(row: &dyn ReadRow) -> Result<Survey, StoreError> {
    let mut c = Columns::new(row, super::tables::table(RecordKind::Survey));
    let survey = Survey {
        survey_id: c.parsed(SurveyId::parse)?,
        customer_id: c.parsed(CustomerId::parse)?,
        answered_at: c.time()?,
        channel: c.name()?,
        interaction_id: c.optional_parsed(InteractionId::parse)?,
        csat: c.rating()?,
        nps: c.rating()?,
        recovery_rating: c.rating()?,
        comment: c.optional_label()?,
    };
    c.end()?;
    Ok(survey)
}

/// A `churn_outcomes` row, every column in table order.
pub(super) fn churn_outcome(row: &dyn ReadRow) -> Result<ChurnOutcome, StoreError> {
    let mut c = Columns::new(row, super::tables::table(RecordKind::ChurnOutcome));
    let outcome = ChurnOutcome {
        customer_id: c.parsed(CustomerId::parse)?,
        status: c.name()?,
        churned_at: c.optional_time()?,
        observed_at: c.time()?,
    };
    c.end()?;
    Ok(outcome)
}
