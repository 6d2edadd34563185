//! `[[serial]]` and `[serial.record]`: one link's line settings, framing and record format.

use crate::invalid::InvalidConfig;
pub use crate::record::format::{RecordConfig, RecordFormat};
use crate::spc::{ChartSpec, SpcConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Character times of silence that prove a line was between records (see
/// [`SerialConfig::start_quiet`]).
pub const START_QUIET_CHARACTERS: u64 = 32;
/// The least silence that proves a line was between records, whatever its speed.
pub const START_QUIET_MIN_MS: u64 = 50;

/// One serial link (`[[serial]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SerialConfig {
    /// Link name; the `source` of its films and the key in `/api/links/`.
    pub name: String,
    /// Device path (`/dev/ttyUSB0`, `/dev/serial/by-id/...`) or `sim`.
    pub port: Port,
    pub baud_rate: u32,
    /// 5, 6, 7 or 8.
    pub data_bits: DataBits,
    pub parity: Parity,
    /// 1 or 2.
    pub stop_bits: u8,
    pub flow_control: FlowControl,
    /// Bytes that end a frame (TOML escapes allowed: `"\r"`, `"\r\n"`).
    pub delimiter: String,
    /// Longest frame accepted; a longer one becomes a dead item.
    pub max_frame_bytes: usize,
    /// > 0: restart the link after this long without a byte.
    pub idle_timeout_ms: u64,
    /// First restart backoff.
    pub reconnect_initial_ms: u64,
    /// Longest restart backoff.
    pub reconnect_max_ms: u64,
    /// Silence after an open that proves the line was between records (see
    /// [`SerialConfig::start_quiet`]); unset: max(50 ms, 32 character times). A line whose
    /// records come with shorter gaps sets it lower.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_quiet_ms: Option<u64>,
    /// Records per second written by the simulated machine (`port = "sim"` only).
    pub sim_rate_hz: f64,
    /// How frames become films.
    pub record: RecordConfig,
    /// `[serial.spc.<field>]`: the numeric fields watched by SPC, by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub spc: BTreeMap<String, SpcConfig>,
}

impl Default for SerialConfig {
    fn default() -> Self {
        SerialConfig {
            name: String::new(),
            port: Port::Device(String::new()),
            baud_rate: 9600,
            data_bits: DataBits::Eight,
            parity: Parity::None,
            stop_bits: 1,
            flow_control: FlowControl::None,
            delimiter: "\r".into(),
            max_frame_bytes: 4096,
            idle_timeout_ms: 0,
            reconnect_initial_ms: 200,
            reconnect_max_ms: 5000,
            start_quiet_ms: None,
            sim_rate_hz: 5.0,
            record: RecordConfig::default(),
            spc: BTreeMap::new(),
        }
    }
}

/// Where a link reads (`port`): the built-in simulated machine (`"sim"`), or a device path.
/// Made once at load: no later code compares the text with `"sim"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Port {
    /// `port = "sim"`: a simulated vision machine on a pseudo-terminal of the process.
    Sim,
    /// A device path (`/dev/ttyUSB0`, `/dev/serial/by-id/...`, a bridge's pty link).
    Device(String),
}

impl From<String> for Port {
    fn from(text: String) -> Port {
        if text == "sim" {
            Port::Sim
        } else {
            Port::Device(text)
        }
    }
}

impl From<&str> for Port {
    fn from(text: &str) -> Port {
        Port::from(text.to_owned())
    }
}

impl From<Port> for String {
    fn from(port: Port) -> String {
        port.to_string()
    }
}

impl std::fmt::Display for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Port::Sim => f.write_str("sim"),
            Port::Device(path) => f.write_str(path),
        }
    }
}

/// Data bits per character (`data_bits`): 5, 6, 7 or 8; anything else is an error at load
/// naming the key, never a silent 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum DataBits {
    Five,
    Six,
    Seven,
    Eight,
}

impl TryFrom<u8> for DataBits {
    type Error = String;

    fn try_from(bits: u8) -> Result<DataBits, String> {
        match bits {
            5 => Ok(DataBits::Five),
            6 => Ok(DataBits::Six),
            7 => Ok(DataBits::Seven),
            8 => Ok(DataBits::Eight),
            other => Err(format!("data_bits must be 5, 6, 7 or 8, found {other}")),
        }
    }
}

impl From<DataBits> for u8 {
    fn from(bits: DataBits) -> u8 {
        match bits {
            DataBits::Five => 5,
            DataBits::Six => 6,
            DataBits::Seven => 7,
            DataBits::Eight => 8,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    None,
    Even,
    Odd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowControl {
    None,
    Software,
    Hardware,
}

impl SerialConfig {
    /// Whether this link uses the built-in simulated machine.
    pub fn is_sim(&self) -> bool {
        self.port == Port::Sim
    }

    /// How the queue re-parses this link's dead items (same limits as a new frame).
    pub fn parser(&self) -> crate::record::LinkParser {
        crate::record::LinkParser {
            record: self.record.clone(),
            max_frame_bytes: self.max_frame_bytes,
        }
    }

    pub fn idle_timeout(&self) -> Option<Duration> {
        (self.idle_timeout_ms > 0).then(|| Duration::from_millis(self.idle_timeout_ms))
    }

    /// How long a new connection's line must stay silent before its first byte for that byte
    /// to count as the start of a record (else the bytes up to the first delimiter are a
    /// fragment): `START_QUIET_CHARACTERS` character times at the line's speed, at least
    /// `START_QUIET_MIN_MS` (a writer pausing a few milliseconds inside a record, as USB
    /// adapters and device firmware do, must not pass for silence). `start_quiet_ms` when set.
    pub fn start_quiet(&self) -> Duration {
        if let Some(ms) = self.start_quiet_ms {
            return Duration::from_millis(ms);
        }
        let bits_per_char = 1
            + u64::from(u8::from(self.data_bits))
            + u64::from(self.parity != Parity::None)
            + u64::from(self.stop_bits);
        let line_ms =
            START_QUIET_CHARACTERS * bits_per_char * 1000 / u64::from(self.baud_rate.max(1));
        Duration::from_millis(line_ms.max(START_QUIET_MIN_MS))
    }

    pub fn reconnect_initial(&self) -> Duration {
        Duration::from_millis(self.reconnect_initial_ms)
    }

    pub fn reconnect_max(&self) -> Duration {
        Duration::from_millis(self.reconnect_max_ms)
    }

    /// Checks values serde cannot; `prefix` is the table's key, e.g. `serial[0]`.
    pub fn validate(&self, prefix: &str) -> Result<(), InvalidConfig> {
        let bad = |key: &str, expected: String| Err(InvalidConfig::new(prefix, key, expected));
        if self.name.trim().is_empty() || self.name.chars().any(char::is_control) {
            return bad(
                "name",
                format!(
                    "a link name without control characters, found {:?}",
                    self.name
                ),
            );
        }
        if matches!(&self.port, Port::Device(path) if path.trim().is_empty()) {
            return bad(
                "port",
                "a device path (e.g. /dev/ttyUSB0) or \"sim\"".into(),
            );
        }
        if self.baud_rate == 0 {
            return bad("baud_rate", "a positive baud rate, e.g. 9600".into());
        }
        if !(1..=2).contains(&self.stop_bits) {
            return bad("stop_bits", format!("1 or 2, found {}", self.stop_bits));
        }
        if self.delimiter.is_empty() {
            return bad("delimiter", "at least one byte, e.g. \"\\r\"".into());
        }
        if matches!(self.record.format, RecordFormat::Csv | RecordFormat::Kv)
            && self.delimiter == self.record.separator
        {
            return bad(
                "delimiter",
                format!(
                    "a delimiter other than the record separator {:?} (every field would be a frame)",
                    self.record.separator
                ),
            );
        }
        if self.max_frame_bytes == 0 {
            return bad("max_frame_bytes", "a positive byte count".into());
        }
        if self.reconnect_initial_ms == 0 || self.reconnect_initial_ms > self.reconnect_max_ms {
            return bad(
                "reconnect_initial_ms",
                "a positive number of ms not above reconnect_max_ms".into(),
            );
        }
        if self.is_sim() && !(self.sim_rate_hz > 0.0 && self.sim_rate_hz <= 100_000.0) {
            return bad("sim_rate_hz", "a rate above 0 and at most 100000".into());
        }
        self.record.validate(&format!("{prefix}.record"))?;
        self.charts(prefix).map(drop)
    }

    /// The SPC chart spec of every watched field, by name; a field a csv record does not
    /// have, the sequence key, or a bad key is named.
    pub fn charts(&self, prefix: &str) -> Result<Vec<(String, ChartSpec)>, InvalidConfig> {
        self.spc
            .iter()
            .map(|(field, cfg)| {
                let at = format!("{prefix}.spc.{field}");
                let missing = matches!(self.record.format, RecordFormat::Csv)
                    && !self.record.fields.contains(field);
                if missing || self.record.sequence_key == *field || field.trim().is_empty() {
                    return Err(InvalidConfig::new(
                        "",
                        &at,
                        "a numeric field of the record (one of serial.record.fields), not the \
                         sequence key",
                    ));
                }
                Ok((field.clone(), cfg.spec(&at)?))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> SerialConfig {
        SerialConfig {
            name: "line-1".into(),
            port: "sim".into(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_with_name_and_port_are_valid() {
        assert_eq!(valid().validate("serial[0]"), Ok(()));
    }

    #[test]
    fn missing_port_names_the_key() {
        let cfg = SerialConfig {
            port: Port::Device(String::new()),
            ..valid()
        };
        assert_eq!(cfg.validate("serial[1]").unwrap_err().key, "serial[1].port");
    }

    #[test]
    fn sequence_key_must_be_a_csv_field() {
        let mut cfg = valid();
        cfg.record.sequence_key = "batch".into();
        assert_eq!(
            cfg.validate("serial[0]").unwrap_err().key,
            "serial[0].record.sequence_key"
        );
    }
}
