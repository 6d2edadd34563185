//! Settings: the whole configuration (`[web]`, `[queue]`, `[upstream]`, `[[serial]]`), loaded
//! from a TOML file (or the embedded default), overridden by `FILMGATE__SECTION__KEY`
//! environment variables, validated, and printed with secrets redacted.
//!
//! Every error names the key: TOML errors carry the line and the offending text, environment
//! errors the variable, and semantic checks the full key path (`serial[0].parity`).

use filmgate_actors::invalid::InvalidConfig;
use filmgate_actors::poster::UpstreamConfig;
use filmgate_actors::queue::QueueConfig;
use filmgate_actors::redact::{REDACTED, redact_url, url_secrets};
use filmgate_actors::serial::{Port, SerialConfig};
use filmgate_actors::token::Token;
use filmgate_web::WebConfig;
use filmgate_web::store::RecordsDb;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The configuration shipped in the repository, used when no file is given and `./config.toml`
/// does not exist.
pub const EMBEDDED_DEFAULT: &str = include_str!("../config.toml");

/// Prefix of environment overrides; sections and keys follow, separated by `__`.
pub const ENV_PREFIX: &str = "FILMGATE__";

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub web: WebConfig,
    #[serde(default)]
    pub queue: QueueConfig,
    #[serde(default)]
    pub upstream: UpstreamConfig,
    /// One entry per link; none at all runs filmgate as a records service only.
    #[serde(default)]
    pub serial: Vec<SerialConfig>,
}

/// Why a configuration could not be loaded; each names where to look.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("{origin}: {source}")]
    Invalid {
        origin: String,
        source: InvalidConfig,
    },
}

/// Where settings came from, for messages.
fn origin_of(path: Option<&Path>) -> String {
    path.map_or_else(
        || "embedded default config".to_owned(),
        |p| p.display().to_string(),
    )
}

impl Settings {
    /// Loads `path` (or `./config.toml`, or the embedded default), applies the environment
    /// overrides from `env`, and validates.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let default_path = Path::new("config.toml");
        let path = path.or_else(|| default_path.exists().then_some(default_path));
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.to_owned(),
                source,
            })?,
            None => EMBEDDED_DEFAULT.to_owned(),
        };
        let settings = Self::from_toml(&text, &origin_of(path), env)?;
        if let Some(path) = path
            && let Some(warning) = exposed_secrets_warning(path, &text)
        {
            log::warn!("{warning}");
        }
        Ok(settings)
    }

    /// Parses TOML text, applies overrides, validates. `origin` names the text in errors.
    pub fn from_toml(
        text: &str,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        // A TOML error quotes the line it found wrong, which may be a secret's own line.
        let parse_err = |e: toml::de::Error| ConfigError::Parse {
            origin: origin.to_owned(),
            message: without_written_secrets(&e, text),
        };
        // Deserialize the file as written first, so its errors point at its lines.
        let mut settings: Settings = toml::from_str(text).map_err(parse_err)?;
        let overrides: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        if !overrides.is_empty() {
            let mut table: toml::Table = toml::from_str(text).map_err(parse_err)?;
            for (var, value) in &overrides {
                apply_override(&mut table, var, value)?;
                // After each one, so an error is blamed on the variable that caused it.
                settings =
                    Settings::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
                        ConfigError::Env {
                            var: var.clone(),
                            message: e.to_string(),
                        }
                    })?;
            }
        }
        settings.validate().map_err(|source| ConfigError::Invalid {
            origin: if overrides.is_empty() {
                origin.to_owned()
            } else {
                format!("{origin} with {ENV_PREFIX}* overrides")
            },
            source,
        })?;
        Ok(settings)
    }

    /// Checks every value serde cannot, naming the full key of the first bad one.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        self.web.validate("web")?;
        self.queue.validate("queue")?;
        self.upstream.validate("upstream")?;
        if self.upstream.is_https() {
            // The same loading the poster does at start, so a bad PEM file is found here.
            filmgate_actors::poster::tls::client_config(&self.upstream)
                .map_err(|e| InvalidConfig::new("", "upstream", e))?;
        }
        if let RecordsDb::Sqlite(records) = &self.web.records_db
            && resolved(records) == resolved(&self.queue.path)
        {
            return Err(InvalidConfig::new(
                "web",
                "records_db",
                "a file other than queue.path (the queue and the records service each need their own)",
            ));
        }
        let mut names = HashSet::new();
        let mut ports = HashSet::new();
        for (i, link) in self.serial.iter().enumerate() {
            let prefix = format!("serial[{i}]");
            link.validate(&prefix)?;
            if !names.insert(link.name.as_str()) {
                return Err(InvalidConfig::new(
                    &prefix,
                    "name",
                    format!("a name not used by another link ({:?} is)", link.name),
                ));
            }
            if let Port::Device(path) = &link.port
                && !ports.insert(resolved(Path::new(path)))
            {
                return Err(InvalidConfig::new(
                    &prefix,
                    "port",
                    format!("a port not read by another link ({:?} is)", link.port),
                ));
            }
        }
        Ok(())
    }

    /// The effective configuration as TOML, with every secret replaced by `<redacted>`.
    pub fn redacted_toml(&self) -> String {
        let mut shown = self.clone();
        for token in [&mut shown.web.token, &mut shown.upstream.token] {
            if token.is_some() {
                *token = Token::parse(REDACTED).ok().flatten();
            }
        }
        shown.upstream.base_url = redact_url(&shown.upstream.base_url);
        if let RecordsDb::Postgres(url) = &mut shown.web.records_db {
            *url = redact_url(url);
        }
        toml::to_string(&shown).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }

    /// Every secret of the configuration as it may appear in a text: the tokens (and the
    /// password of a Basic `user:password` token), and the secret parts of the URLs.
    pub fn secrets(&self) -> Vec<String> {
        self.secrets_by_key()
            .into_iter()
            .flat_map(|(_, secrets)| secrets)
            .collect()
    }

    /// The keys that hold a secret, each with the secrets in it as they may appear in a text.
    fn secrets_by_key(&self) -> Vec<(&'static str, Vec<String>)> {
        let token = |token: &Option<Token>| token.as_ref().map_or("", Token::as_str).to_owned();
        secrets_by_key([
            token(&self.web.token),
            token(&self.upstream.token),
            self.upstream.base_url.clone(),
            self.web.records_db.to_string(),
        ])
    }
}

/// The keys that can hold a secret, in the order [`secrets_by_key`] takes their values.
const SECRET_KEYS: [&str; 4] = [
    "web.token",
    "upstream.token",
    "upstream.base_url",
    "web.records_db",
];

/// The secrets in the values of [`SECRET_KEYS`] as they may appear in a text, by key (only
/// the keys holding one): a token (and the password of upstream's Basic `user:password`), the
/// secret parts of a URL.
fn secrets_by_key(values: [String; 4]) -> Vec<(&'static str, Vec<String>)> {
    let mut keys: Vec<(&'static str, Vec<String>)> = SECRET_KEYS
        .into_iter()
        .zip(values)
        .map(|(key, value)| {
            let secrets = if key == "upstream.token" {
                let password = value.split_once(':').map(|(_, p)| p.to_owned());
                std::iter::once(value).chain(password).collect()
            } else if key == "web.token" {
                vec![value]
            } else {
                url_secrets(&value)
            };
            (key, secrets)
        })
        .collect();
    for (_, secrets) in &mut keys {
        secrets.retain(|s| !s.is_empty());
    }
    keys.retain(|(_, secrets)| !secrets.is_empty());
    keys
}

/// The TOML error `e` (met in `text`) with every secret written in `text` redacted: the
/// tokens and the secret parts of the URLs, read as plain strings (the text may not make a
/// [`Settings`]), and the value the error points at when it is a secret key's, as written.
fn without_written_secrets(e: &toml::de::Error, text: &str) -> String {
    let mut secrets = Vec::new();
    if let Some(span) = e.span()
        && let Some(value) = text.get(span.clone())
    {
        let line_start = text[..span.start].rfind('\n').map_or(0, |i| i + 1);
        let key = text[line_start..span.start].trim_start();
        if SECRET_KEYS
            .iter()
            .filter_map(|k| k.split_once('.'))
            .any(|(_, name)| key.starts_with(name))
        {
            secrets.push(value.to_owned());
        }
    }
    if let Ok(table) = text.parse::<toml::Table>() {
        let written = SECRET_KEYS.map(|key| {
            let (section, name) = key.split_once('.').unwrap_or(("", key));
            table
                .get(section)
                .and_then(|s| s.get(name))
                .and_then(toml::Value::as_str)
                .unwrap_or_default()
                .to_owned()
        });
        secrets.extend(secrets_by_key(written).into_iter().flat_map(|(_, s)| s));
    }
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(e.to_string().trim_end().to_owned(), |m, secret| {
            m.replace(secret.as_str(), REDACTED)
        })
}

/// A warning when the config file at `path` (holding `text`) has a secret in it and other
/// users may read or write it.
fn exposed_secrets_warning(path: &Path, text: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return None;
    }
    let written: Settings = toml::from_str(text).ok()?;
    let keys: Vec<&str> = written
        .secrets_by_key()
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    if keys.is_empty() {
        return None;
    }
    Some(format!(
        "config file {} holds a secret ({}) and other users may {} it (mode {mode:04o}): \
         chmod 600 it, or set the secret in the environment ({ENV_PREFIX}SECTION__KEY) instead",
        path.display(),
        keys.join(", "),
        match (mode & 0o044 != 0, mode & 0o022 != 0) {
            (true, true) => "read and write",
            (false, true) => "write",
            _ => "read",
        }
    ))
}

/// The file `path` names, links and `..` resolved: the path itself when it exists, else its
/// resolved directory with its name (a file not made yet), else the path as given.
fn resolved(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(dir), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_owned(),
    }
}

/// Sets one `FILMGATE__...` variable's value in the TOML table, typed like the key's default.
fn apply_override(table: &mut toml::Table, var: &str, raw: &str) -> Result<(), ConfigError> {
    let env_err = |message: String| ConfigError::Env {
        var: var.to_owned(),
        message,
    };
    let path: Vec<String> = var[ENV_PREFIX.len()..]
        .split("__")
        .map(|p| p.to_ascii_lowercase())
        .collect();
    // The default value of the key tells the type the text must become.
    let defaults = toml::Value::try_from(Settings {
        serial: vec![SerialConfig::default()],
        ..Settings::default()
    })
    .map_err(|e| env_err(e.to_string()))?;
    let mut default = &defaults;
    for part in &path {
        let next = match (default, part.parse::<usize>()) {
            (toml::Value::Array(items), Ok(_)) => items.first(),
            (toml::Value::Table(t), _) => t.get(part.as_str()),
            _ => None,
        };
        default = next.ok_or_else(|| env_err(format!("no such key `{}`", path.join("."))))?;
    }
    let value = match default {
        toml::Value::String(_) => toml::Value::String(raw.to_owned()),
        toml::Value::Table(_) | toml::Value::Array(_) if path.len() < 3 && path[0] == "serial" => {
            return Err(env_err(
                "name a key of a link, e.g. FILMGATE__SERIAL__0__PORT".into(),
            ));
        }
        // One value: a line break would let the text set other keys, silently.
        _ if raw.contains(char::is_control) => {
            return Err(env_err(format!(
                "one value without line breaks or control characters for `{}`",
                path.join(".")
            )));
        }
        _ => format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .filter(|t| t.len() == 1)
            .and_then(|mut t| t.remove("v"))
            .ok_or_else(|| {
                env_err(format!(
                    "`{raw}` is not a valid value for `{}`",
                    path.join(".")
                ))
            })?,
    };
    // Walk the table, creating sections (and serial entries) as needed.
    let mut node = table;
    let Some((last, parents)) = path.split_last() else {
        return Err(env_err("name a key after the prefix".into()));
    };
    let mut parts = parents.iter().peekable();
    while let Some(part) = parts.next() {
        let entry = node.entry(part.clone()).or_insert_with(|| {
            if part == "serial" {
                toml::Value::Array(vec![])
            } else {
                toml::Value::Table(toml::Table::new())
            }
        });
        node = match entry {
            toml::Value::Array(items) => {
                let index: usize = parts
                    .next()
                    .and_then(|i| i.parse().ok())
                    .ok_or_else(|| env_err("expected a link index after SERIAL".into()))?;
                if index > items.len() {
                    return Err(env_err(format!(
                        "no link with index {index}; there are {}",
                        items.len()
                    )));
                }
                if index == items.len() {
                    items.push(toml::Value::Table(toml::Table::new()));
                }
                items[index]
                    .as_table_mut()
                    .ok_or_else(|| env_err("not a table".into()))?
            }
            toml::Value::Table(t) => t,
            _ => return Err(env_err(format!("`{part}` is not a section"))),
        };
    }
    node.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_toml(
            text,
            "test.toml",
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn embedded_default_is_valid_and_runs_one_sim_link() {
        let s = load(EMBEDDED_DEFAULT, &[]).unwrap();
        assert_eq!(s.serial.len(), 1);
        assert_eq!(s.serial[0].port, Port::Sim);
        assert_eq!(s.serial[0].delimiter, "\r");
        assert_eq!(s.web.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(
            s.upstream.base_url, "",
            "the embedded service, wherever web.bind is"
        );
    }

    #[test]
    fn a_password_in_base_url_is_redacted() {
        let s = load(
            "[upstream]\nbase_url = \"https://gw:s3cret@records.plant:8443/api/\"\n",
            &[],
        )
        .unwrap();
        let shown = s.redacted_toml();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("https://gw:<redacted>@records.plant:8443/api/"),
            "{shown}"
        );
        assert_eq!(redact_url("http://h/api/"), "http://h/api/");
        assert_eq!(redact_url("postgres://gw@h/db"), "postgres://gw@h/db");
    }

    #[test]
    fn a_password_in_records_db_is_redacted() {
        let s = load(
            "[web]\nrecords_db = \"postgres://gw:s3cret@db.plant:5432/records\"\n",
            &[],
        )
        .unwrap();
        let shown = s.redacted_toml();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("postgres://gw:<redacted>@db.plant:5432/records"),
            "{shown}"
        );
    }

    #[test]
    fn empty_file_means_records_service_only() {
        let s = load("", &[]).unwrap();
        assert!(s.serial.is_empty());
    }

    #[test]
    fn typo_key_is_named_with_its_line() {
        let err = load("[queue]\ncomit_interval_ms = 5\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("comit_interval_ms"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        assert!(err.starts_with("test.toml"), "{err}");
    }

    #[test]
    fn wrong_type_is_named_with_what_was_expected() {
        let err = load("[upstream]\ntimeout_ms = \"soon\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("timeout_ms") && err.contains("line 2"),
            "{err}"
        );
        assert!(err.contains("expected"), "{err}");
    }

    #[test]
    fn unknown_parity_is_named() {
        let text = "[[serial]]\nname = \"a\"\nport = \"sim\"\nparity = \"mark\"\n";
        let err = load(text, &[]).unwrap_err().to_string();
        assert!(
            err.contains("parity = \"mark\"") && err.contains("`none`, `even`, `odd`"),
            "{err}"
        );
    }

    #[test]
    fn serial_without_port_is_named() {
        let err = load("[[serial]]\nname = \"a\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("serial[0].port"), "{err}");
    }

    #[test]
    fn duplicate_link_names_are_refused() {
        let text = "[[serial]]\nname = \"a\"\nport = \"sim\"\n[[serial]]\nname = \"a\"\nport = \"/dev/x\"\n";
        let err = load(text, &[]).unwrap_err().to_string();
        assert!(err.contains("serial[1].name"), "{err}");
    }

    #[test]
    fn env_overrides_keys_with_their_types() {
        let s = load(
            EMBEDDED_DEFAULT,
            &[
                ("FILMGATE__UPSTREAM__TOKEN", "12345"),
                ("FILMGATE__UPSTREAM__CONCURRENCY", "8"),
                ("FILMGATE__SERIAL__0__PORT", "/dev/ttyUSB0"),
                // The shipped config watches thickness_um: the fields keep it.
                (
                    "FILMGATE__SERIAL__0__RECORD__FIELDS",
                    "[\"a\", \"thickness_um\"]",
                ),
                ("FILMGATE__SERIAL__0__RECORD__SEQUENCE_KEY", ""),
                ("OTHER", "ignored"),
            ],
        )
        .unwrap();
        assert_eq!(s.upstream.token, Token::parse("12345").unwrap());
        assert_eq!(s.upstream.concurrency, 8);
        assert_eq!(s.serial[0].port, Port::from("/dev/ttyUSB0"));
        assert_eq!(s.serial[0].record.fields, ["a", "thickness_um"]);
        // Without it, the watched field is named.
        let err = load(
            EMBEDDED_DEFAULT,
            &[
                ("FILMGATE__SERIAL__0__RECORD__FIELDS", "[\"a\", \"b\"]"),
                ("FILMGATE__SERIAL__0__RECORD__SEQUENCE_KEY", ""),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("serial[0].spc.thickness_um"), "{err}");
    }

    #[test]
    fn bad_env_values_name_the_variable() {
        let err = load("", &[("FILMGATE__QUEUE__MAX_ITEMS", "lots")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("FILMGATE__QUEUE__MAX_ITEMS"), "{err}");
        let err = load("", &[("FILMGATE__WEB__TOKN", "x")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("FILMGATE__WEB__TOKN") && err.contains("web.tokn"),
            "{err}"
        );
    }

    #[test]
    fn an_env_error_is_blamed_on_its_own_variable_and_a_line_break_sets_nothing_else() {
        let err = load(
            "",
            &[
                ("FILMGATE__UPSTREAM__BODY", "sideways"),
                ("FILMGATE__WEB__BIND", "127.0.0.1:9"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("FILMGATE__UPSTREAM__BODY"), "{err}");
        let err = load(
            "",
            &[("FILMGATE__QUEUE__MAX_ITEMS", "5\nposted_history = 0")],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("FILMGATE__QUEUE__MAX_ITEMS") && err.contains("line breaks"),
            "{err}"
        );
    }

    #[test]
    fn mistakes_that_would_stop_delivery_silently_are_refused_by_key() {
        let link = |extra: &str| {
            format!(
                "[[serial]]\nname = \"a\"\nport = \"/dev/ttyS0\"\n{extra}\n\
                 [serial.record]\nfields = [\"lot\", \"film_no\"]\nsequence_key = \"lot\"\n"
            )
        };
        let key_of = |text: &str| match load(text, &[]) {
            Err(ConfigError::Invalid { source, .. }) => source.key,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(
            key_of("[upstream]\nauth_scheme = \"Token\\r\\nX-Evil: 1\"\n"),
            "upstream.auth_scheme"
        );
        assert_eq!(
            key_of("[web]\nrecords_db = \"q.db\"\n[queue]\npath = \"q.db\"\n"),
            "web.records_db"
        );
        // The same file behind a symlink, or by another spelling, is the same file.
        // (See also exposed_secrets_warning's test.)
        let dir = tempfile::tempdir().unwrap();
        let queue = dir.path().join("queue.sqlite3");
        std::fs::write(&queue, b"").unwrap();
        let alias = dir.path().join("records.sqlite3");
        std::os::unix::fs::symlink(&queue, &alias).unwrap();
        for records in [alias.clone(), dir.path().join("sub/../queue.sqlite3")] {
            std::fs::create_dir_all(dir.path().join("sub")).unwrap();
            let text = format!(
                "[web]\nrecords_db = {:?}\n[queue]\npath = {:?}\n",
                records.display().to_string(),
                queue.display().to_string()
            );
            assert_eq!(key_of(&text), "web.records_db", "{}", records.display());
        }
        for bad in [
            "postgres://gw:s3cret@db:port/records",
            "mysql://db/records",
            "",
        ] {
            // Read at load (a `RecordsDb`): the TOML error shows the key's line.
            let text = format!("[web]\nrecords_db = \"{bad}\"\n");
            let message = load(&text, &[]).unwrap_err().to_string();
            assert!(message.contains("records_db = "), "{message}");
            assert!(!message.contains("s3cret"), "{message}");
            let var = ("FILMGATE__WEB__RECORDS_DB".to_owned(), bad.to_owned());
            match Settings::from_toml("", "test.toml", [var]) {
                Err(ConfigError::Env { var, message }) => {
                    assert_eq!(var, "FILMGATE__WEB__RECORDS_DB");
                    assert!(!message.contains("s3cret"), "{message}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        for section in ["web", "upstream"] {
            let text = format!("[{section}]\ntoken = \"s3cr\\u0001et\"\n");
            let message = load(&text, &[]).unwrap_err().to_string();
            assert!(
                message.contains("token = ") && message.contains("control"),
                "{message}"
            );
            assert!(!message.contains("s3cr"), "{message}");
        }
        let two = format!(
            "{}{}",
            link(""),
            link("").replace("name = \"a\"", "name = \"b\"")
        );
        assert_eq!(key_of(&two), "serial[1].port");
        assert_eq!(
            key_of(&link("").replace("name = \"a\"", "name = \"a\\nb\"")),
            "serial[0].name"
        );
        assert_eq!(key_of(&link("delimiter = \",\"")), "serial[0].delimiter");
        for fields in [
            "[\"lot\", \"lot\"]",
            "[\"lot\", \"\"]",
            "[\"lot\", \"uid\"]",
        ] {
            let text = link("").replace("[\"lot\", \"film_no\"]", fields);
            assert_eq!(key_of(&text), "serial[0].record.fields", "{fields}");
        }
    }

    #[test]
    fn redacted_output_hides_tokens_and_round_trips() {
        let s = load(EMBEDDED_DEFAULT, &[("FILMGATE__WEB__TOKEN", "s3cret")]).unwrap();
        let shown = s.redacted_toml();
        assert!(!shown.contains("s3cret"));
        assert!(shown.contains(REDACTED));
        let back = load(&shown, &[]).unwrap();
        assert_eq!(back.serial, s.serial);
    }
}

#[cfg(test)]
mod exposure_tests {
    use super::exposed_secrets_warning;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_config_file_with_a_secret_that_others_may_read_or_write_is_named_with_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("filmgate.toml");
        let secret = "[upstream]\nbase_url = \"http://admin:S3cretPW@h/api/\"\n";
        std::fs::write(&path, secret).unwrap();
        let set_mode =
            |mode| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        set_mode(0o666);
        let warning = exposed_secrets_warning(&path, secret).expect("a warning");
        assert!(warning.contains(&path.display().to_string()), "{warning}");
        assert!(warning.contains("mode 0666"), "{warning}");
        assert!(warning.contains("upstream.base_url"), "{warning}");
        assert!(!warning.contains("S3cretPW"), "{warning}");
        set_mode(0o600);
        assert_eq!(exposed_secrets_warning(&path, secret), None);
        set_mode(0o644);
        let plain = "[web]\nbind = \"127.0.0.1:8080\"\n";
        assert_eq!(
            exposed_secrets_warning(&path, plain),
            None,
            "no secret in it"
        );
        let token = "[web]\ntoken = \"abcd1234\"\n";
        assert!(
            exposed_secrets_warning(&path, token)
                .unwrap()
                .contains("web.token")
        );
    }
}
