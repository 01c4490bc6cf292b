//! Caller-chosen record ids. They come from other systems (a CRM's customer number, a ticket
//! id), so only what would break storage, logs or display is refused.

use std::fmt;

/// Long enough for UUIDs, URNs and composite keys; short enough to keep indexes small.
pub const MAX_ID_BYTES: usize = 128;

/// Why text with [`has_hidden_characters`] is refused, in the words every field uses.
pub const HIDDEN_CHARACTERS: &str = "must not contain control characters or invisible ones (zero-width, bidirectional overrides, line separators)";

/// Whether `text` holds a character that does not show as itself: a control character, a
/// format character (zero-width spaces and joiners, bidirectional overrides, byte-order marks)
/// or a line or paragraph separator. Such characters make two ids look alike, reverse how a
/// log line reads, or break it in two. Every request carries dozens of ids and labels, nearly
/// always printable ASCII: one pass without early exit (which the compiler turns into wide
/// vector compares) finds whether any byte is an ASCII control or not ASCII at all, and only
/// such text is then read character by character.
pub fn has_hidden_characters(text: &str) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    let unusual = text
        .bytes()
        .fold(false, |found, b| found | !(b' '..0x7f).contains(&b));
    unusual
        && text.chars().any(|c| {
            matches!(
                c.general_category(),
                GeneralCategory::Control
                    | GeneralCategory::Format
                    | GeneralCategory::LineSeparator
                    | GeneralCategory::ParagraphSeparator
            )
        })
}

/// The most of a caller's text an answer or a log line repeats: enough to recognise an id,
/// too little for one bad record to bloat a reply.
pub const MAX_ECHOED_BYTES: usize = 256;

/// The start of `text`, at most `max_bytes` long (cut at a character boundary): what answers
/// repeat of caller text that may be of any size.
pub fn shortened(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
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
    if has_hidden_characters(&raw) {
        return Err(HIDDEN_CHARACTERS.into());
    }
    // Whitespace surrounds an id only if its first or last character is whitespace.
    if raw.starts_with(char::is_whitespace) || raw.ends_with(char::is_whitespace) {
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
            /// Accepts 1 to 128 bytes with no hidden characters and no surrounding whitespace.
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
            "c\u{200b}1",
            "c\u{202e}1",
            "c\u{2028}1",
            " padded",
            "padded ",
            "\u{a0}padded",
        ] {
            assert!(CustomerId::parse(raw.into()).is_err(), "{raw:?}");
        }
        assert!(CustomerId::parse("x".repeat(MAX_ID_BYTES)).is_ok());
        assert!(CustomerId::parse("café-7".into()).is_ok());
    }

    #[test]
    fn hidden_characters_are_found_anywhere_in_long_text() {
        let printable = "abcdefghij".repeat(10);
        assert!(!has_hidden_characters(&printable));
        assert!(!has_hidden_characters(&format!("{printable}ü€ 東京")));
        // Controls; zero-width space, joiner and no-break; bidirectional overrides and
        // isolates; byte-order mark; line and paragraph separators.
        let hidden = [
            '\u{0}', '\u{1f}', '\u{7f}', '\u{85}', '\u{9f}', '\u{200b}', '\u{200d}', '\u{2060}',
            '\u{202e}', '\u{2066}', '\u{feff}', '\u{2028}', '\u{2029}',
        ];
        for control in hidden {
            for at in [0, 31, 32, 63, printable.len()] {
                let mut text = printable.clone();
                text.insert(at, control);
                assert!(has_hidden_characters(&text), "{control:?} at {at}");
            }
        }
    }
}
