//! Secrets and control characters kept out of what leaves the process.
//!
//! - [`redact_url`]: a URL as it may be shown — the password of `user:password@` (or a
//!   userinfo that is one token, `ghp_…@host`) and the values of query parameters named like
//!   secrets (`key`, `token`, `secret`, `password`, `api_key`, …) replaced by `<redacted>`.
//! - The process's secrets ([`register_secrets`], from the configuration at start) and
//!   [`redact`], which every log line (the binary's logger), every error kept with a queue item
//!   and every API answer that shows such an error pass through. One place, so a new log line
//!   or a new error text cannot forget it.
//! - [`escape_controls`]: text from outside (an upstream's error body, a frame) with its
//!   control characters escaped, so a log line cannot be forged or a terminal driven.

use std::borrow::Cow;
use std::sync::RwLock;

/// What a secret is replaced by.
pub const REDACTED: &str = "<redacted>";

/// Shortest text taken as a secret (shorter ones would redact ordinary words).
const MIN_SECRET_CHARS: usize = 4;

/// The secrets of this process's configuration.
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Whether a query parameter's name says its value is a secret.
fn secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "key",
        "token",
        "secret",
        "password",
        "passwd",
        "pwd",
        "auth",
        "signature",
        "sig",
    ]
    .iter()
    .any(|word| name == *word || name.contains(word))
}

/// Whether a userinfo without `:` is itself a secret: in an http(s) URL it is a token
/// (`https://ghp_…@host/`); elsewhere (`postgres://user@host/db`) a user name.
fn bare_userinfo_is_secret(scheme: &str) -> bool {
    scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
}

/// The parts of `url` that are secret: the password of its userinfo (in http(s), the whole
/// userinfo when it has no `:`), and the values of secret-named query parameters.
pub fn url_secrets(url: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    let Some((scheme, rest)) = url.split_once("://") else {
        return secrets;
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if let Some((userinfo, _)) = rest[..authority_end].rsplit_once('@') {
        match userinfo.split_once(':') {
            Some((_, password)) => secrets.push(password.to_owned()),
            None if bare_userinfo_is_secret(scheme) => secrets.push(userinfo.to_owned()),
            None => {}
        }
    }
    if let Some((_, query)) = rest.split_once('?') {
        let query = query.split('#').next().unwrap_or_default();
        for pair in query.split('&') {
            if let Some((name, value)) = pair.split_once('=')
                && secret_param(name)
            {
                secrets.push(value.to_owned());
            }
        }
    }
    secrets.retain(|s| !s.is_empty());
    secrets
}

/// `url` with its secret parts (see [`url_secrets`]) replaced by `<redacted>`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:{REDACTED}@{host}"),
            None if bare_userinfo_is_secret(scheme) => format!("{REDACTED}@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let (query, fragment) = match query.split_once('#') {
                Some((q, f)) => (q, format!("#{f}")),
                None => (query, String::new()),
            };
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if secret_param(name) => format!("{name}={REDACTED}"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}{fragment}", pairs.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Adds secrets that [`redact`] replaces from now on (empty and very short ones are ignored).
pub fn register_secrets<I, S>(secrets: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut known = SECRETS.write().unwrap_or_else(|p| p.into_inner());
    for secret in secrets {
        let secret = secret.as_ref();
        if secret.chars().count() >= MIN_SECRET_CHARS && !known.iter().any(|k| k == secret) {
            known.push(secret.to_owned());
        }
    }
    // Longest first, so a secret that holds another is replaced whole.
    known.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `text` with every registered secret replaced by `<redacted>`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let known = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    if !known.iter().any(|s| text.contains(s.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_owned();
    for secret in known.iter() {
        out = out.replace(secret.as_str(), REDACTED);
    }
    Cow::Owned(out)
}

/// `text` with control characters (line breaks, ESC, DEL, C1 controls) escaped as `\n`,
/// `\u{1b}`, …, so that it stays one line and drives no terminal.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_passwords_tokens_and_secret_query_values() {
        for (url, shown) in [
            (
                "http://admin:S3cretPW@host/api/",
                "http://admin:<redacted>@host/api/",
            ),
            ("https://ghp_SECRET@host/", "https://<redacted>@host/"),
            (
                "https://host/api/?api_key=SECRET&lot=7",
                "https://host/api/?api_key=<redacted>&lot=7",
            ),
            (
                "https://host/api?Token=t0k3n#x",
                "https://host/api?Token=<redacted>#x",
            ),
            (
                "postgres://gw:pw@db:5432/records",
                "postgres://gw:<redacted>@db:5432/records",
            ),
            ("http://h/api/", "http://h/api/"),
            ("postgres://gw@db/records", "postgres://gw@db/records"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
            for secret in url_secrets(url) {
                assert!(!redact_url(url).contains(&secret), "{url}");
            }
        }
        assert_eq!(
            url_secrets("https://u:p4ss@h/?key=k1&x=1&secret=s2"),
            ["p4ss", "k1", "s2"]
        );
        assert_eq!(url_secrets("https://ghp_SECRET@host/"), ["ghp_SECRET"]);
    }

    #[test]
    fn registered_secrets_are_redacted_anywhere_in_a_text() {
        register_secrets(["S3cretPW-redact-test", "", "ab"]);
        assert_eq!(
            redact("failed: http://admin:S3cretPW-redact-test@h/ (S3cretPW-redact-test)"),
            "failed: http://admin:<redacted>@h/ (<redacted>)"
        );
        assert!(matches!(redact("nothing here ab"), Cow::Borrowed(_)));
    }

    #[test]
    fn control_characters_are_escaped_and_other_text_is_kept() {
        assert_eq!(
            escape_controls("a\nWARN forged\r\u{1b}[2J\u{1b}]0;title\u{7}é"),
            "a\\nWARN forged\\r\\u{1b}[2J\\u{1b}]0;title\\u{7}é"
        );
        assert!(matches!(
            escape_controls("plain « text »"),
            Cow::Borrowed(_)
        ));
    }
}
