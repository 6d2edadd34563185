//! The error every component config's `validate` returns: the full key and what was expected.

/// A configuration value that does not fit, named by its full key (e.g. `serial[0].parity`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: expected {expected}")]
pub struct InvalidConfig {
    /// The full key path, as a user would look for it in `config.toml`.
    pub key: String,
    /// What a valid value looks like (and what was found, where useful).
    pub expected: String,
}

impl InvalidConfig {
    /// An error for `key` (under `prefix`, which may be empty) expecting `expected`.
    pub fn new(prefix: &str, key: &str, expected: impl Into<String>) -> Self {
        let key = if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        };
        InvalidConfig {
            key,
            expected: expected.into(),
        }
    }
}
