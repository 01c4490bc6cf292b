//! A company's own customer attributes: any number of named, typed, optional values on a
//! customer's profile (age, contract, payment method, products held, …), kept with the
//! profile version they arrived in. Which of them become model features is decided at
//! training from the data, not here.

use std::collections::BTreeMap;
use std::fmt;

use super::{HIDDEN_CHARACTERS, has_hidden_characters};

/// Long enough for any column name a warehouse uses, short enough to read in a driver.
pub const MAX_ATTRIBUTE_NAME_BYTES: usize = 64;
/// Category values are labels (a contract type, a payment method), not free text.
pub const MAX_CATEGORY_BYTES: usize = 128;
/// Enough for a wide customer table; bounds what one profile can cost to store and read.
pub const MAX_ATTRIBUTES: usize = 256;
/// Numbers beyond this are data errors (or ids read as numbers), not measurements.
pub const MAX_ATTRIBUTE_MAGNITUDE: f64 = 1e15;

/// An attribute's name: lower-case ASCII letters, digits and `_`, starting with a letter, so
/// it reads the same in a file header, a JSON key, a feature name and a SQL-free store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttributeName(String);

impl AttributeName {
    pub fn parse(raw: String) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("an attribute name must not be empty".into());
        }
        if raw.len() > MAX_ATTRIBUTE_NAME_BYTES {
            return Err(format!(
                "attribute name {raw:?} is longer than {MAX_ATTRIBUTE_NAME_BYTES} bytes"
            ));
        }
        let well_formed = raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !well_formed {
            return Err(format!(
                "attribute name {raw:?} must be lower-case letters, digits and _, starting with a letter (e.g. \"contract_type\")"
            ));
        }
        Ok(Self(raw))
    }

    /// `text` made into a valid name the way a file header is: lower-cased, every run of
    /// other characters turned into one `_`, trimmed of `_`, and prefixed with `a_` when it
    /// would not start with a letter. `None` when nothing usable is left.
    pub fn normalize(text: &str) -> Option<Self> {
        let mut name = String::with_capacity(text.len());
        for c in text.trim().chars() {
            if c.is_ascii_alphanumeric() {
                name.push(c.to_ascii_lowercase());
            } else if !name.ends_with('_') {
                name.push('_');
            }
        }
        let name = name.trim_matches('_');
        if name.is_empty() {
            return None;
        }
        let name = if name.starts_with(|c: char| c.is_ascii_lowercase()) {
            name.to_owned()
        } else {
            format!("a_{name}")
        };
        let mut name = name;
        name.truncate(MAX_ATTRIBUTE_NAME_BYTES);
        Self::parse(name).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AttributeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    /// A measurement or a count; finite, at most [`MAX_ATTRIBUTE_MAGNITUDE`] in size.
    Number(f64),
    /// One of a set of labels, e.g. `"month-to-month"`; 1–128 bytes, printable.
    Category(String),
    Flag(bool),
}

impl AttributeValue {
    pub fn number(value: f64) -> Result<Self, String> {
        if !value.is_finite() {
            return Err(format!("must be a finite number, got {value}"));
        }
        if value.abs() > MAX_ATTRIBUTE_MAGNITUDE {
            return Err(format!(
                "must be at most {MAX_ATTRIBUTE_MAGNITUDE:e} in size, got {value}"
            ));
        }
        Ok(Self::Number(value))
    }

    pub fn category(value: String) -> Result<Self, String> {
        if value.is_empty() {
            return Err("a category must not be empty (leave the attribute out instead)".into());
        }
        if value.len() > MAX_CATEGORY_BYTES {
            return Err(format!(
                "a category must be at most {MAX_CATEGORY_BYTES} bytes, got {}",
                value.len()
            ));
        }
        if has_hidden_characters(&value) {
            return Err(format!("a category {HIDDEN_CHARACTERS}"));
        }
        Ok(Self::Category(value))
    }

    /// The name of the value's type, as files and errors spell it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Number(_) => "number",
            Self::Category(_) => "category",
            Self::Flag(_) => "flag",
        }
    }
}

/// The attributes of one profile version, by name; an attribute not listed is unknown.
#[derive(Debug, Clone, PartialEq)]
pub struct Attributes {
    values: BTreeMap<AttributeName, AttributeValue>,
    /// The stored form ([`Self::as_json`]), encoded once: the store writes it with every
    /// profile, borrowing it like any other text column.
    json: String,
}

impl Default for Attributes {
    fn default() -> Self {
        Self {
            values: BTreeMap::new(),
            json: "{}".to_owned(),
        }
    }
}

impl Attributes {
    /// Checks the count; names and values are checked when built.
    pub fn new(values: BTreeMap<AttributeName, AttributeValue>) -> Result<Self, String> {
        if values.len() > MAX_ATTRIBUTES {
            return Err(format!(
                "at most {MAX_ATTRIBUTES} attributes per customer, got {}",
                values.len()
            ));
        }
        let json = encode(&values);
        Ok(Self { values, json })
    }

    pub fn get(&self, name: &str) -> Option<&AttributeValue> {
        // Names are few per customer; a lookup by &str without allocating a key.
        self.values
            .iter()
            .find(|(key, _)| key.as_str() == name)
            .map(|(_, value)| value)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&AttributeName, &AttributeValue)> {
        self.values.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// The stored form: a JSON object in name order, numbers as numbers, categories as
    /// strings, flags as booleans — one text column on both backends, readable by hand.
    pub fn as_json(&self) -> &str {
        &self.json
    }

    /// Reads [`Self::as_json`]'s form back, checking every name and value again.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("attributes are not JSON: {e}"))?;
        let serde_json::Value::Object(object) = value else {
            return Err("attributes must be a JSON object".into());
        };
        let mut values = BTreeMap::new();
        for (name, value) in object {
            let name = AttributeName::parse(name)?;
            let value = match value {
                serde_json::Value::Number(n) => {
                    AttributeValue::number(n.as_f64().unwrap_or(f64::NAN))?
                }
                serde_json::Value::String(s) => AttributeValue::category(s)?,
                serde_json::Value::Bool(b) => AttributeValue::Flag(b),
                other => return Err(format!("attribute {name}: unsupported value {other}")),
            };
            values.insert(name, value);
        }
        Self::new(values)
    }
}

fn encode(values: &BTreeMap<AttributeName, AttributeValue>) -> String {
    let object: serde_json::Map<String, serde_json::Value> = values
        .iter()
        .map(|(name, value)| {
            let value = match value {
                // Finite by construction, so always a JSON number.
                AttributeValue::Number(n) => serde_json::Number::from_f64(*n)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number),
                AttributeValue::Category(c) => serde_json::Value::String(c.clone()),
                AttributeValue::Flag(f) => serde_json::Value::Bool(*f),
            };
            (name.0.clone(), value)
        })
        .collect();
    serde_json::Value::Object(object).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> AttributeName {
        AttributeName::parse(text.to_owned()).expect("valid name")
    }

    #[test]
    fn names_are_lower_case_identifiers() {
        assert!(AttributeName::parse("contract_type".into()).is_ok());
        for bad in ["", "Contract", "1st", "a-b", "a b", &"x".repeat(65)] {
            assert!(AttributeName::parse(bad.into()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn file_headers_normalize_into_names() {
        let normalized = |text: &str| AttributeName::normalize(text).map(|n| n.0);
        assert_eq!(normalized("Call  Failure").as_deref(), Some("call_failure"));
        assert_eq!(
            normalized(" Frequency of SMS ").as_deref(),
            Some("frequency_of_sms")
        );
        assert_eq!(normalized("2nd line").as_deref(), Some("a_2nd_line"));
        assert_eq!(normalized("--"), None);
    }

    #[test]
    fn values_outside_their_type_are_refused() {
        assert!(AttributeValue::number(f64::NAN).is_err());
        assert!(AttributeValue::number(1e16).is_err());
        assert!(AttributeValue::category(String::new()).is_err());
        assert!(AttributeValue::category("a\u{7}".into()).is_err());
        assert!(AttributeValue::category("x".repeat(129)).is_err());
    }

    #[test]
    fn the_stored_form_reads_back_exactly() {
        assert_eq!(Attributes::default().as_json(), "{}");
        let attributes = Attributes::new(BTreeMap::from([
            (name("age"), AttributeValue::Number(30.25)),
            (
                name("contract"),
                AttributeValue::Category("two year".into()),
            ),
            (name("paperless"), AttributeValue::Flag(true)),
        ]))
        .expect("valid");
        let json = attributes.as_json().to_owned();
        assert_eq!(
            json,
            r#"{"age":30.25,"contract":"two year","paperless":true}"#
        );
        assert_eq!(Attributes::from_json(&json), Ok(attributes));
        assert!(Attributes::from_json(r#"{"Bad":1}"#).is_err());
        assert!(Attributes::from_json(r#"{"a":null}"#).is_err());
    }
}
