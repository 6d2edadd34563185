//! [`Token`]: a secret shared with a peer (`web.token`, `upstream.token`), made once at load.
//!
//! In a config a token is `Option<Token>`: `token = ""` (or no key) reads as none, so no
//! later code has to treat an empty text as "not set". A token is never printed: its `Debug`
//! shows `<redacted>`; [`Token::as_str`] is for the one place that sends or compares it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A non-empty secret without control characters (what fits in one HTTP header value).
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Reads a token as a config writes it: `""` is none; a control character is an error.
    pub fn parse(text: &str) -> Result<Option<Token>, String> {
        if text.is_empty() {
            Ok(None)
        } else if text.contains(char::is_control) {
            Err("a token without control characters".into())
        } else {
            Ok(Some(Token(text.to_owned())))
        }
    }

    /// The secret itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Serde for an `Option<Token>` config field: written and read as a string, `""` for none.
pub mod optional {
    use super::*;

    pub fn serialize<S: Serializer>(token: &Option<Token>, s: S) -> Result<S::Ok, S::Error> {
        token.as_ref().map_or("", Token::as_str).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Token>, D::Error> {
        Token::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    struct Section {
        #[serde(with = "optional", default)]
        token: Option<Token>,
    }

    #[test]
    fn empty_or_missing_is_none_and_control_characters_are_refused() {
        let read = |text: &str| serde_json::from_str::<Section>(text).map(|s| s.token);
        assert_eq!(read("{}").unwrap(), None);
        assert_eq!(read(r#"{"token": ""}"#).unwrap(), None);
        assert_eq!(
            read(r#"{"token": "a b"}"#).unwrap().unwrap().as_str(),
            "a b"
        );
        let err = read(r#"{"token": "a\nb"}"#).unwrap_err().to_string();
        assert!(err.contains("control characters"), "{err}");
    }

    #[test]
    fn debug_hides_the_secret_and_serde_round_trips_it() {
        let section = Section {
            token: Token::parse("s3cret").unwrap(),
        };
        assert!(!format!("{section:?}").contains("s3cret"));
        let text = serde_json::to_string(&section).unwrap();
        assert_eq!(
            serde_json::from_str::<Section>(&text).unwrap().token,
            section.token
        );
    }
}
