//! Caller-chosen record ids. They come from other systems (a CRM's customer number, a ticket
//! id), so only what would break storage, logs or display is refused.

use std::fmt;

/// Long enough for UUIDs, URNs and composite keys; short enough to keep indexes small.
pub const MAX_ID_BYTES: usize = 128;

/// Whether `text` holds a control character; ids and labels are nearly always ASCII, checked
/// a byte at a time (every request carries dozens of them).
pub fn has_control_characters(text: &str) -> bool {
    if text.is_ascii() {
        text.bytes().any(|b| b.is_ascii_control())
    } else {
        text.chars().any(char::is_control)
    }
}

fn parse_id(raw: String) -> Result<String, String> {
    if raw.is_empty() {
        return Err("must not be empty".into());
    }
    if raw.len() > MAX_ID_BYTES {
        return Err(format!(
            "must be at most {MAX_ID_BYTES} bytes, got {}",
            raw.len()
        ));
    }
    if has_control_characters(&raw) {
        return Err("must not contain control characters".into());
    }
    if raw.trim().len() != raw.len() {
        return Err("must not start or end with whitespace".into());
    }
    Ok(raw)
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Accepts 1 to 128 bytes with no control characters and no surrounding whitespace.
            pub fn parse(raw: String) -> Result<Self, String> {
                parse_id(raw).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// The customer's id in the system of record.
    CustomerId
);
id_type!(
    /// A usage event's id.
    EventId
);
id_type!(
    /// A service interaction's id.
    InteractionId
);
id_type!(
    /// A survey answer's id.
    SurveyId
);
id_type!(
    /// A recovery case's id.
    CaseId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_ids_are_accepted() {
        for raw in ["c-1", "CUST 0042", "urn:crm:customer:9", "ümlaut-ok"] {
            assert!(CustomerId::parse(raw.into()).is_ok(), "{raw}");
        }
    }

    #[test]
    fn empty_oversized_control_and_padded_ids_are_refused() {
        let long = "x".repeat(MAX_ID_BYTES + 1);
        for raw in [
            "",
            long.as_str(),
            "a\nb",
            "tab\there",
            "del\u{7f}",
            "c1\u{85}control",
            "café\u{0}",
            " padded",
            "padded ",
            "\u{a0}padded",
        ] {
            assert!(CustomerId::parse(raw.into()).is_err(), "{raw:?}");
        }
        assert!(CustomerId::parse("x".repeat(MAX_ID_BYTES)).is_ok());
        assert!(CustomerId::parse("café-7".into()).is_ok());
    }
}
