//! Customer attributes in files: the column convention of customer backfill files, and how a
//! cell becomes a typed attribute value — shared by `backfill customers` and `import`.
//!
//! In a customer file every column named `attr.NAME` (or `attr.NAME:TYPE`, TYPE one of
//! `number`, `category`, `flag`) is the attribute NAME; in JSON Lines the same keys carry JSON
//! numbers, strings or booleans. Without a type a cell is a number when it reads as one,
//! a flag when it is `true` or `false` (also `yes`/`no`), else a category; an empty cell or
//! `null` leaves the attribute unknown.

use crate::proto::v1::{self as proto, attribute_value::Value};

/// The prefix that makes a customer file's column an attribute.
pub const ATTRIBUTE_PREFIX: &str = "attr.";

/// An attribute column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AttributeType {
    Number,
    Category,
    Flag,
}

impl AttributeType {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Number => "number",
            Self::Category => "category",
            Self::Flag => "flag",
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        <Self as clap::ValueEnum>::from_str(text.trim(), true)
            .map_err(|_| format!("unknown attribute type {text:?}: use number, category or flag"))
    }
}

/// An attribute column of a customer file: its attribute name and declared type. `None`
/// when `header` is not an attribute column.
pub fn attribute_column(header: &str) -> Option<Result<(String, Option<AttributeType>), String>> {
    let rest = header.strip_prefix(ATTRIBUTE_PREFIX)?;
    Some(match rest.split_once(':') {
        Some((name, kind)) => AttributeType::parse(kind).map(|kind| (name.to_owned(), Some(kind))),
        None => Ok((rest.to_owned(), None)),
    })
}

/// `true`/`false` and `yes`/`no`, in any case.
pub fn parse_flag(cell: &str) -> Option<bool> {
    match cell.to_ascii_lowercase().as_str() {
        "true" | "yes" => Some(true),
        "false" | "no" => Some(false),
        _ => None,
    }
}

/// A filled cell as an attribute value of `kind`, or of the type the cell reads as.
pub fn attribute_value(
    cell: &str,
    kind: Option<AttributeType>,
) -> Result<proto::AttributeValue, String> {
    let number = || {
        cell.parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| format!("{cell:?} is not a number"))
    };
    let value = match kind {
        Some(AttributeType::Number) => Value::Number(number()?),
        Some(AttributeType::Flag) => Value::Flag(
            parse_flag(cell)
                .or(match cell {
                    "1" => Some(true),
                    "0" => Some(false),
                    _ => None,
                })
                .ok_or_else(|| format!("{cell:?} is not true or false"))?,
        ),
        Some(AttributeType::Category) => Value::Category(cell.to_owned()),
        None => match (number(), parse_flag(cell)) {
            (Ok(n), _) => Value::Number(n),
            (_, Some(flag)) => Value::Flag(flag),
            _ => Value::Category(cell.to_owned()),
        },
    };
    Ok(proto::AttributeValue { value: Some(value) })
}

/// A JSON Lines value as an attribute value: numbers, strings and booleans by their JSON type
/// unless `kind` says otherwise; `None` for null.
pub fn json_attribute_value(
    value: &serde_json::Value,
    kind: Option<AttributeType>,
) -> Result<Option<proto::AttributeValue>, String> {
    use serde_json::Value as Json;
    let typed = |v: Value| Ok(Some(proto::AttributeValue { value: Some(v) }));
    match (value, kind) {
        (Json::Null, _) => Ok(None),
        (Json::Number(n), None | Some(AttributeType::Number)) => {
            typed(Value::Number(n.as_f64().unwrap_or(f64::NAN)))
        }
        (Json::Bool(b), None | Some(AttributeType::Flag)) => typed(Value::Flag(*b)),
        (Json::String(s), None | Some(AttributeType::Category)) => {
            typed(Value::Category(s.clone()))
        }
        (Json::String(s), Some(kind)) => attribute_value(s, Some(kind)).map(Some),
        (Json::Number(n), Some(kind)) => attribute_value(&n.to_string(), Some(kind)).map(Some),
        (Json::Bool(b), Some(kind)) => attribute_value(&b.to_string(), Some(kind)).map(Some),
        (Json::Array(_) | Json::Object(_), _) => {
            Err("must be a number, a string, a boolean or null".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(cell: &str, kind: Option<AttributeType>) -> Option<Value> {
        attribute_value(cell, kind).ok().and_then(|v| v.value)
    }

    #[test]
    fn a_cell_is_typed_by_what_it_reads_as_unless_its_column_says() {
        assert_eq!(value("42.5", None), Some(Value::Number(42.5)));
        assert_eq!(value("Yes", None), Some(Value::Flag(true)));
        assert_eq!(
            value("Fiber optic", None),
            Some(Value::Category("Fiber optic".into()))
        );
        assert_eq!(
            value("2", Some(AttributeType::Category)),
            Some(Value::Category("2".into()))
        );
        assert_eq!(
            value("1", Some(AttributeType::Flag)),
            Some(Value::Flag(true))
        );
        assert!(attribute_value("many", Some(AttributeType::Number)).is_err());
        assert!(attribute_value("NaN", Some(AttributeType::Number)).is_err());
    }

    #[test]
    fn attribute_columns_are_named_by_their_prefix_and_may_declare_a_type() {
        assert_eq!(attribute_column("segment"), None);
        assert_eq!(
            attribute_column("attr.contract:category"),
            Some(Ok(("contract".into(), Some(AttributeType::Category))))
        );
        assert_eq!(attribute_column("attr.age"), Some(Ok(("age".into(), None))));
        assert!(matches!(attribute_column("attr.age:integer"), Some(Err(_))));
    }
}
