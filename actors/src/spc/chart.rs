//! One watched (link, field): its subgroups, the baseline that sets its limits, and the
//! Western Electric rules judged on every complete subgroup. Pure: no clock, no I/O; the queue
//! store keeps a [`Chart`] as JSON and writes what a [`Step`] says (`docs/ARCHITECTURE.md`,
//! section 5).

use super::constants::{self, IMR_E2};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Judged subgroups a chart remembers for its run rules (the longest rule looks at 8).
const WINDOW: usize = 8;
/// A zone position stands for "beyond every zone" when a zone has no width (R̄ = 0): finite,
/// so a chart's JSON never holds a value JSON cannot carry.
const FAR: f64 = 1e9;

/// What a watched field is judged by: `[serial.spc.<field>]` after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSpec {
    /// Films per subgroup; 1: individuals and moving range.
    pub subgroup: usize,
    /// Complete subgroups (values, for individuals) that set the limits.
    pub baseline: usize,
    pub lsl: Option<f64>,
    pub usl: Option<f64>,
    pub target: Option<f64>,
    /// Limits set elsewhere (no baseline).
    pub fixed: Option<FixedLimits>,
}

/// `center` / `ucl` / `lcl` (and `range_ucl`) from the config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FixedLimits {
    pub center: f64,
    pub ucl: f64,
    pub lcl: f64,
    /// Without it the range chart is not judged.
    pub range_ucl: Option<f64>,
}

impl ChartSpec {
    /// What a stored chart must have been built under to be continued (spec limits may change
    /// freely; a different subgroup, baseline or fixed limits start the chart afresh).
    pub fn identity(&self) -> String {
        format!("{}/{}/{:?}", self.subgroup, self.baseline, self.fixed)
    }

    /// Strictly outside a spec limit (a value equal to a limit is in spec).
    pub fn out_of_spec(&self, value: f64) -> bool {
        self.lsl.is_some_and(|l| value < l) || self.usl.is_some_and(|u| value > u)
    }

    /// The limits of fixed-limit monitoring, `None` for a chart that sets them from a baseline.
    fn fixed_limits(&self) -> Option<Limits> {
        let f = self.fixed?;
        let per_value = (f.ucl - f.center) / 3.0;
        Some(Limits {
            center: f.center,
            ucl: f.ucl,
            lcl: f.lcl,
            range: f.range_ucl.map(|ucl| RangeLimits {
                center: None,
                ucl,
                lcl: 0.0,
            }),
            sigma: if self.subgroup == 1 {
                per_value
            } else {
                per_value * (self.subgroup as f64).sqrt()
            },
        })
    }

    /// Cp and Cpk of `limits` (one-sided Cpk when one spec limit is missing); `None` where a
    /// spec limit is missing or σ̂ is zero.
    pub fn capability(&self, limits: &Limits) -> (Option<f64>, Option<f64>) {
        capability(self.lsl, self.usl, limits.center, limits.sigma)
    }
}

/// Cp = (USL − LSL)/6σ, Cpk = min(USL − μ, μ − LSL)/3σ over the limits that are given.
fn capability(
    lsl: Option<f64>,
    usl: Option<f64>,
    mean: f64,
    sigma: f64,
) -> (Option<f64>, Option<f64>) {
    if sigma <= 0.0 || !sigma.is_finite() {
        return (None, None);
    }
    let cp = lsl.zip(usl).map(|(l, u)| (u - l) / (6.0 * sigma));
    let sides = [usl.map(|u| u - mean), lsl.map(|l| mean - l)];
    let cpk = sides
        .into_iter()
        .flatten()
        .reduce(f64::min)
        .map(|d| d / (3.0 * sigma));
    (cp, cpk)
}

/// Frozen control limits of the chart of means (or values) and of ranges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    pub center: f64,
    pub ucl: f64,
    pub lcl: f64,
    /// The range (or moving range) chart; `None`: not judged.
    pub range: Option<RangeLimits>,
    /// σ̂ of single values.
    pub sigma: f64,
}

/// Limits of the range (or moving-range) chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeLimits {
    /// R̄ (MR̄); unknown for fixed limits.
    pub center: Option<f64>,
    pub ucl: f64,
    pub lcl: f64,
}

/// A rule, by the name the API and the metrics use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Rule {
    #[serde(rename = "beyond_3sigma")]
    Beyond3Sigma,
    #[serde(rename = "2_of_3_beyond_2sigma")]
    TwoOfThreeBeyond2Sigma,
    #[serde(rename = "4_of_5_beyond_1sigma")]
    FourOfFiveBeyond1Sigma,
    #[serde(rename = "8_on_one_side")]
    EightOnOneSide,
    #[serde(rename = "range_beyond_ucl")]
    RangeBeyondUcl,
    #[serde(rename = "out_of_spec")]
    OutOfSpec,
}

impl Rule {
    /// Every rule, in the order a point lists them.
    pub const ALL: [Rule; 6] = [
        Rule::Beyond3Sigma,
        Rule::TwoOfThreeBeyond2Sigma,
        Rule::FourOfFiveBeyond1Sigma,
        Rule::EightOnOneSide,
        Rule::RangeBeyondUcl,
        Rule::OutOfSpec,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Rule::Beyond3Sigma => "beyond_3sigma",
            Rule::TwoOfThreeBeyond2Sigma => "2_of_3_beyond_2sigma",
            Rule::FourOfFiveBeyond1Sigma => "4_of_5_beyond_1sigma",
            Rule::EightOnOneSide => "8_on_one_side",
            Rule::RangeBeyondUcl => "range_beyond_ucl",
            Rule::OutOfSpec => "out_of_spec",
        }
    }

    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// One plotted point: a subgroup (complete with its index, or a lot's incomplete last one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// 1, 2, … since monitoring started or was reset; `None` for an incomplete subgroup.
    pub index: Option<u64>,
    /// The lot (the local uid of its sequence).
    pub lot: String,
    /// Values in it.
    pub n: usize,
    /// The subgroup's mean (the value, for individuals).
    pub mean: f64,
    /// Its range; for individuals the moving range to the lot's previous value (`None` for a
    /// lot's first value).
    pub range: Option<f64>,
    /// Σ(x − mean)² of its values (a lot's own standard deviation is made of these).
    pub m2: f64,
    /// Rules that fired on it.
    pub alarms: Vec<Rule>,
}

impl Point {
    fn of(index: Option<u64>, lot: &str, values: &[f64]) -> Point {
        let n = values.len();
        let mean = mean_of(values);
        let (lo, hi) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        Point {
            index,
            lot: lot.to_owned(),
            n,
            mean,
            range: Some(hi - lo),
            m2: values.iter().map(|v| (v - mean) * (v - mean)).sum(),
            alarms: Vec::new(),
        }
    }
}

/// An alarm as judged: the rule, where it fired and the plotted value that completed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub rule: Rule,
    /// The subgroup's index; `None` for `out_of_spec`.
    pub index: Option<u64>,
    pub lot: String,
    pub value: f64,
}

/// What one observed value changed, for the store to write.
#[derive(Debug, Default, PartialEq)]
pub struct Step {
    /// Points to add: a complete subgroup, or the incomplete last subgroup of a lot that ended.
    pub closed: Vec<Point>,
    /// Baseline points judged now that the limits froze (their alarms to store).
    pub rejudged: Vec<Point>,
    /// Every rule that fired.
    pub alarms: Vec<Judged>,
}

/// The subgroup being filled.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpenSubgroup {
    pub lot: String,
    pub values: Vec<f64>,
    /// One of its films was out of spec.
    pub out_of_spec: bool,
}

/// A chart's whole state: bounded by the baseline length and the subgroup size, never by
/// history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    /// [`ChartSpec::identity`] of the spec it was built under.
    pub identity: String,
    /// Frozen limits; `None` while baselining.
    pub limits: Option<Limits>,
    /// The complete subgroups of the baseline so far.
    pub baseline: Vec<Point>,
    /// Complete subgroups since monitoring started or was reset.
    pub index: u64,
    /// Zone positions of the last judged subgroups, newest last.
    pub window: VecDeque<f64>,
    /// The subgroup being filled (subgroups of n ≥ 2).
    pub open: Option<OpenSubgroup>,
    /// The previous value and its lot (individuals).
    pub previous: Option<(String, f64)>,
    /// Films whose value was missing or not a number.
    pub skipped: u64,
}

impl Chart {
    /// A chart starting to monitor under `spec`.
    pub fn new(spec: &ChartSpec) -> Chart {
        Chart {
            identity: spec.identity(),
            limits: spec.fixed_limits(),
            ..Chart::default()
        }
    }

    /// Starts afresh (`POST /api/spc/{link}/{field}/reset`): new limits from the next baseline,
    /// indexes from 1, empty run-rule windows; the skipped count and the previous value (a
    /// moving range within a lot) stay. The subgroup being filled is closed unjudged: it is
    /// returned to be shown.
    pub fn reset(&mut self, spec: &ChartSpec) -> Option<Point> {
        let open = self.open.take().filter(|o| !o.values.is_empty());
        let kept = (self.skipped, self.previous.take());
        *self = Chart::new(spec);
        (self.skipped, self.previous) = kept;
        open.as_ref().map(open_point)
    }

    /// Continues a chart under a changed spec (subgroup, baseline or fixed limits): as a
    /// reset, except that indexes go on from where they were (never reused without a reset).
    pub fn respecified(mut self, spec: &ChartSpec) -> (Chart, Option<Point>) {
        let index = self.index;
        let open = self.reset(spec);
        self.index = index;
        (self, open)
    }

    /// `"baselining"` or `"monitoring"`.
    pub fn state(&self) -> &'static str {
        if self.limits.is_some() {
            "monitoring"
        } else {
            "baselining"
        }
    }

    /// A film whose value is missing or not a number.
    pub fn skip(&mut self) {
        self.skipped += 1;
    }

    /// Takes one film's value.
    pub fn observe(&mut self, spec: &ChartSpec, lot: &str, value: f64) -> Step {
        let mut step = Step::default();
        let out_of_spec = spec.out_of_spec(value);
        if out_of_spec {
            step.alarms.push(Judged {
                rule: Rule::OutOfSpec,
                index: None,
                lot: lot.to_owned(),
                value,
            });
        }
        if spec.subgroup == 1 {
            let range = match &self.previous {
                Some((prev_lot, prev)) if prev_lot == lot => Some((value - prev).abs()),
                _ => None,
            };
            self.previous = Some((lot.to_owned(), value));
            self.index += 1;
            let mut point = Point::of(Some(self.index), lot, &[value]);
            point.range = range;
            if out_of_spec {
                point.alarms.push(Rule::OutOfSpec);
            }
            self.complete(spec, point, &mut step);
            return step;
        }
        if self.open.as_ref().is_some_and(|open| open.lot != lot) {
            // A subgroup never spans two lots: the last lot's rest is shown, never judged.
            let done = self.open.take().unwrap_or_default();
            if !done.values.is_empty() {
                step.closed.push(open_point(&done));
            }
        }
        let open = self.open.get_or_insert_with(|| OpenSubgroup {
            lot: lot.to_owned(),
            ..OpenSubgroup::default()
        });
        open.values.push(value);
        open.out_of_spec |= out_of_spec;
        if open.values.len() >= spec.subgroup {
            let full = std::mem::take(open);
            open.lot = full.lot.clone();
            self.index += 1;
            let mut point = Point::of(Some(self.index), &full.lot, &full.values);
            if full.out_of_spec {
                point.alarms.push(Rule::OutOfSpec);
            }
            self.complete(spec, point, &mut step);
        }
        step
    }

    /// The lot of the newest value judged (its local sequence uid), if any since start or reset.
    pub fn newest_lot(&self) -> Option<&str> {
        self.open
            .as_ref()
            .map(|o| o.lot.as_str())
            .or(self.previous.as_ref().map(|(lot, _)| lot.as_str()))
    }

    /// The incomplete subgroup being filled, if it belongs to `lot` and holds a value.
    pub fn open_point(&self, lot: &str) -> Option<Point> {
        self.open
            .as_ref()
            .filter(|o| o.lot == lot && !o.values.is_empty())
            .map(open_point)
    }

    /// A complete subgroup: judged against frozen limits, or part of the baseline (which,
    /// once full, freezes the limits and is judged in order).
    fn complete(&mut self, spec: &ChartSpec, mut point: Point, step: &mut Step) {
        if let Some(limits) = self.limits.clone() {
            self.judge(&limits, &mut point, step);
            step.closed.push(point);
            return;
        }
        self.baseline.push(point.clone());
        step.closed.push(point);
        if self.baseline.len() >= spec.baseline {
            let limits = baseline_limits(spec.subgroup, &self.baseline);
            for mut point in std::mem::take(&mut self.baseline) {
                self.judge(&limits, &mut point, step);
                step.rejudged.push(point);
            }
            self.limits = Some(limits);
        }
    }

    /// The Western Electric rules and the range chart on one complete subgroup, in order.
    fn judge(&mut self, limits: &Limits, point: &mut Point, step: &mut Step) {
        let position = zone_position(limits, point.mean);
        self.window.push_back(position);
        if self.window.len() > WINDOW {
            self.window.pop_front();
        }
        let mut fired = Vec::new();
        if point.mean > limits.ucl || point.mean < limits.lcl {
            fired.push((Rule::Beyond3Sigma, point.mean));
        }
        if position != 0.0 {
            let side = position.signum();
            let beyond = |zones: f64, last: usize| {
                self.window
                    .iter()
                    .rev()
                    .take(last)
                    .filter(|&&p| side * p > zones)
                    .count()
            };
            if side * position > 2.0 && beyond(2.0, 3) >= 2 {
                fired.push((Rule::TwoOfThreeBeyond2Sigma, point.mean));
            }
            if side * position > 1.0 && beyond(1.0, 5) >= 4 {
                fired.push((Rule::FourOfFiveBeyond1Sigma, point.mean));
            }
            if beyond(0.0, WINDOW) == WINDOW {
                fired.push((Rule::EightOnOneSide, point.mean));
            }
        }
        if let (Some(range_limits), Some(range)) = (&limits.range, point.range)
            && range > range_limits.ucl
        {
            fired.push((Rule::RangeBeyondUcl, range));
        }
        for (rule, value) in fired {
            point.alarms.push(rule);
            step.alarms.push(Judged {
                rule,
                index: point.index,
                lot: point.lot.clone(),
                value,
            });
        }
        point.alarms.sort();
    }
}

fn open_point(open: &OpenSubgroup) -> Point {
    let mut point = Point::of(None, &open.lot, &open.values);
    if open.out_of_spec {
        point.alarms.push(Rule::OutOfSpec);
    }
    point
}

/// Where `mean` lies in zones of the chart: (mean − CL) over (UCL − CL)/3 (the same width on both
/// sides); ±[`FAR`] when that width is zero.
fn zone_position(limits: &Limits, mean: f64) -> f64 {
    let zone = (limits.ucl - limits.center) / 3.0;
    let offset = mean - limits.center;
    if offset == 0.0 {
        0.0
    } else if zone > 0.0 {
        (offset / zone).clamp(-FAR, FAR)
    } else {
        FAR.copysign(offset)
    }
}

/// The mean as the first value plus the mean deviation from it: exact for equal values (a
/// constant series sits on its center line, never an ulp beside it) and accurate for values
/// far from zero. 0 for no values.
fn mean_of(values: &[f64]) -> f64 {
    let Some(&first) = values.first() else {
        return 0.0;
    };
    first + values.iter().map(|v| v - first).sum::<f64>() / values.len() as f64
}

/// A mean that does not depend on the order of its terms (sorted first): the limits of a
/// baseline are the same whatever order its subgroups came in.
fn ordered_mean(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    mean_of(&values)
}

/// The limits a full baseline sets: X̄–R with the table's constants, or I-MR. For individuals
/// MR̄ is the mean of the baseline's `baseline − 1` moving ranges between consecutive values,
/// across lots (a lot's first value plots no moving range, but the limits need them all).
fn baseline_limits(subgroup: usize, baseline: &[Point]) -> Limits {
    let center = ordered_mean(baseline.iter().map(|p| p.mean).collect());
    let ranges = if subgroup == 1 {
        baseline
            .windows(2)
            .map(|w| (w[1].mean - w[0].mean).abs())
            .collect()
    } else {
        baseline.iter().filter_map(|p| p.range).collect()
    };
    let rbar = ordered_mean(ranges);
    let (spread, d3, d4, d2) = match constants::for_subgroup(subgroup) {
        Some(c) => (c.a2 * rbar, c.d3, c.d4, c.d2),
        None => (IMR_E2 * rbar, 0.0, 3.267, 1.128),
    };
    Limits {
        center,
        ucl: center + spread,
        lcl: center - spread,
        range: Some(RangeLimits {
            center: Some(rbar),
            ucl: d4 * rbar,
            lcl: d3 * rbar,
        }),
        sigma: rbar / d2,
    }
}

/// A lot's own statistics (the lot report): its films' mean and sample standard deviation,
/// and Pp/Ppk from them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LotSummary {
    pub n: usize,
    pub mean: Option<f64>,
    pub sd: Option<f64>,
    pub pp: Option<f64>,
    pub ppk: Option<f64>,
}

/// [`LotSummary`] of a lot's points (complete and incomplete), combined exactly from each
/// point's mean and Σ(x − mean)².
pub fn lot_summary(points: &[Point], lsl: Option<f64>, usl: Option<f64>) -> LotSummary {
    let n: usize = points.iter().map(|p| p.n).sum();
    if n == 0 {
        return LotSummary {
            n,
            mean: None,
            sd: None,
            pp: None,
            ppk: None,
        };
    }
    let mean = points.iter().map(|p| p.mean * p.n as f64).sum::<f64>() / n as f64;
    let ss: f64 = points
        .iter()
        .map(|p| p.m2 + p.n as f64 * (p.mean - mean) * (p.mean - mean))
        .sum();
    let sd = (n > 1).then(|| (ss / (n - 1) as f64).sqrt());
    let (pp, ppk) = sd.map_or((None, None), |sd| capability(lsl, usl, mean, sd));
    LotSummary {
        n,
        mean: Some(mean),
        sd,
        pp,
        ppk,
    }
}
