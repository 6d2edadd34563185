//! Statistical process control at the line (`docs/ARCHITECTURE.md`, section 5; README
//! "Quality"): each watched numeric field of a link is charted as it is read — X̄–R for
//! subgroups, I-MR for individuals — with limits set from a baseline (or fixed in the config),
//! judged by the Western Electric rules, and every rule that fires becomes an alarm.
//!
//! - [`SpcConfig`]: `[serial.spc.<field>]`, validated into a [`ChartSpec`].
//! - [`chart`]: the pure core — subgroups, limits, rules — whose [`Chart`] state the queue
//!   store keeps (`queue/store/spc.rs`) in the same transactions as the films it judged, so a
//!   crash neither loses nor repeats a judgement.
//! - [`constants`]: A2, D3, D4, d2 for n = 2…25.
//!
//! SPC never holds back a record: a film is written first and judged after; a value that is
//! missing or not a number is skipped and counted.

pub mod chart;
pub mod constants;

pub use chart::{Chart, ChartSpec, FixedLimits, LotSummary, Point, Rule, Step};

use crate::invalid::InvalidConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The longest baseline: a chart's state holds its baseline until the limits freeze.
pub const MAX_BASELINE: usize = 1000;

/// `[serial.spc.<field>]`: how one numeric field of a link is watched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpcConfig {
    /// Lower spec limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lsl: Option<f64>,
    /// Upper spec limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usl: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// Consecutive films of one lot per subgroup (1 = individuals).
    pub subgroup: usize,
    /// Subgroups (values, for individuals) that set the control limits.
    pub baseline: usize,
    /// Fixed limits instead of a baseline: all three together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub center: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ucl: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lcl: Option<f64>,
    /// With fixed limits: the range (moving range) chart's UCL; without it that chart is not
    /// judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range_ucl: Option<f64>,
}

impl Default for SpcConfig {
    fn default() -> Self {
        SpcConfig {
            lsl: None,
            usl: None,
            target: None,
            subgroup: 5,
            baseline: 25,
            center: None,
            ucl: None,
            lcl: None,
            range_ucl: None,
        }
    }
}

impl SpcConfig {
    /// Checks every key (under `prefix`, e.g. `serial[0].spc.thickness_um`) and makes the
    /// chart's spec.
    pub fn spec(&self, prefix: &str) -> Result<ChartSpec, InvalidConfig> {
        let bad = |key: &str, expected: &str| Err(InvalidConfig::new(prefix, key, expected));
        let numbers = [
            ("lsl", self.lsl),
            ("usl", self.usl),
            ("target", self.target),
            ("center", self.center),
            ("ucl", self.ucl),
            ("lcl", self.lcl),
            ("range_ucl", self.range_ucl),
        ];
        if let Some((key, _)) = numbers
            .iter()
            .find(|(_, v)| v.is_some_and(|v| !v.is_finite()))
        {
            return bad(key, "a finite number");
        }
        if !(1..=constants::MAX_SUBGROUP).contains(&self.subgroup) {
            return bad(
                "subgroup",
                &format!(
                    "1 (individuals) to {} films per subgroup",
                    constants::MAX_SUBGROUP
                ),
            );
        }
        if let (Some(l), Some(u)) = (self.lsl, self.usl)
            && l >= u
        {
            return bad("usl", &format!("a limit above lsl = {l}"));
        }
        let fixed = match (self.center, self.ucl, self.lcl) {
            (None, None, None) => {
                if self.range_ucl.is_some() {
                    return bad("range_ucl", "center, ucl and lcl given with it");
                }
                None
            }
            (Some(center), Some(ucl), Some(lcl)) => {
                if !(lcl < center && center < ucl) {
                    return bad("center", "lcl < center < ucl");
                }
                if self.range_ucl.is_some_and(|r| r <= 0.0) {
                    return bad("range_ucl", "a positive number");
                }
                Some(FixedLimits {
                    center,
                    ucl,
                    lcl,
                    range_ucl: self.range_ucl,
                })
            }
            _ => return bad("center", "center, ucl and lcl all given, or none of them"),
        };
        let least = if self.subgroup == 1 { 2 } else { 1 };
        if fixed.is_none() && !(least..=MAX_BASELINE).contains(&self.baseline) {
            return bad(
                "baseline",
                &format!("{least} to {MAX_BASELINE} (subgroups, or values for subgroup = 1)"),
            );
        }
        Ok(ChartSpec {
            subgroup: self.subgroup,
            baseline: self.baseline,
            lsl: self.lsl,
            usl: self.usl,
            target: self.target,
            fixed,
        })
    }
}

/// Values beyond this magnitude are skipped: sums of them could overflow to infinity.
pub const MAX_MAGNITUDE: f64 = 1e100;

/// A film's value of a watched field as a number: a JSON number, or text that reads as a
/// finite number (within ±[`MAX_MAGNITUDE`]); anything else is skipped.
pub fn numeric(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|v| v.is_finite() && v.abs() <= MAX_MAGNITUDE)
}

#[cfg(test)]
mod tests;
