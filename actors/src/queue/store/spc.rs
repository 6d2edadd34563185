//! SPC in the queue file (`docs/ARCHITECTURE.md`, section 5): every film written by [`QueueStore::enqueue`] is judged
//! right after, and what that changed — points, alarms, the chart's state — is written into the
//! same open transaction, through the write log. A commit makes the films and their judgement
//! safe together: a crash loses or repeats neither, and a full disk replays both.
//!
//! Memory holds one [`Chart`] per watched (link, field); points and alarms live on disk,
//! points trimmed to the newest [`POINTS_KEPT`], acknowledged alarms beyond the newest
//! [`ALARMS_KEPT`] (and any beyond [`UNACKNOWLEDGED_KEPT`]).

use super::writes::WriteOp;
use super::{QueueStore, json_value};
use crate::messages::QueueError;
use crate::messages::{
    AlarmPage, AlarmView, ListAlarms, LotFilter, SpcChartView, SpcLot, SpcPointView, SpcPoints,
    SpcRangeView,
};
use crate::record::{ItemBody, SequenceRef, now_ms, rfc3339_ms};
use crate::spc::chart::lot_summary;
use crate::spc::{Chart, ChartSpec, Point, Rule, Step, numeric};
use rusqlite::{OptionalExtension, params};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Points kept (one per subgroup; per film for individuals), newest first.
const POINTS_KEPT: i64 = 200_000;
/// Acknowledged alarms kept, newest first.
const ALARMS_KEPT: i64 = 10_000;
/// Alarms kept whether acknowledged or not (a flood of out-of-spec films nobody acknowledges
/// must not fill the disk).
const UNACKNOWLEDGED_KEPT: i64 = 1_000_000;
/// Commits between two trims of points and alarms.
const TRIM_EVERY_COMMITS: u64 = 256;
/// Out-of-spec films are logged at most once per this long per chart, with the count.
const OUT_OF_SPEC_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// Lots offered by the lot picker.
const LOTS_LISTED: u64 = 50;

/// One watched (link, field) in memory.
#[derive(Debug)]
pub(super) struct Watched {
    link: String,
    field: String,
    spec: ChartSpec,
    chart: Chart,
    /// The chart changed since its state was last written.
    dirty: bool,
    /// Alarms by rule since start (the `/metrics` counters).
    alarms_total: BTreeMap<Rule, u64>,
    /// When an out-of-spec line was last logged, and films since then not logged.
    out_of_spec_logged_at: Option<Instant>,
    out_of_spec_unlogged: u64,
}

/// Every watched chart and the next alarm id.
#[derive(Debug, Default)]
pub(super) struct SpcCharts {
    charts: Vec<Watched>,
    /// Alarm ids are given here, not by SQLite, so a replayed write keeps its id.
    next_alarm_id: i64,
    /// The newest alarm committed: only those are listed and pushed, so an id once shown is
    /// never given to another alarm after a crash.
    committed_alarm_id: i64,
}

/// A write of SPC's, kept in the write log like the others.
#[derive(Debug)]
pub(super) enum SpcWrite {
    /// A chart's whole state, as JSON.
    Chart {
        link: String,
        field: String,
        state: String,
    },
    /// A complete subgroup, or a lot's incomplete last one.
    Point {
        link: String,
        field: String,
        point: Point,
    },
    /// A baseline subgroup judged when the limits froze.
    PointAlarms {
        link: String,
        field: String,
        index: u64,
        alarms: String,
    },
    Alarm(Box<AlarmRow>),
    Ack {
        id: i64,
    },
}

/// An alarm as stored.
#[derive(Debug)]
pub(super) struct AlarmRow {
    id: i64,
    time: String,
    link: String,
    field: String,
    /// The lot: the local uid of its sequence (its key and upstream id are joined at read).
    sequence_uid: String,
    index: Option<u64>,
    rule: Rule,
    value: f64,
}

/// A value for a log line: 9 decimals at most (a range of 0.66, not 0.6599999999999966).
fn shown(value: f64) -> f64 {
    (value * 1e9).round() / 1e9
}

/// The rules of a point as stored: names joined by commas.
fn rule_list(rules: &[Rule]) -> String {
    rules.iter().map(|r| r.name()).collect::<Vec<_>>().join(",")
}

fn parse_rules(text: &str) -> Vec<Rule> {
    text.split(',').filter_map(Rule::from_name).collect()
}

impl QueueStore {
    /// Starts watching `charts` (link, field, spec): each continues from its stored state
    /// when that was built under the same subgroup, baseline and fixed limits, else starts
    /// afresh (logged).
    pub fn watch_spc(
        &mut self,
        charts: Vec<(String, String, ChartSpec)>,
    ) -> Result<(), QueueError> {
        let mut watched = Vec::with_capacity(charts.len());
        for (link, field, spec) in charts {
            let stored: Option<String> = self
                .conn
                .query_row(
                    "SELECT state FROM spc_charts WHERE link = ?1 AND field = ?2",
                    params![link, field],
                    |r| r.get(0),
                )
                .optional()?;
            let chart = match stored.map(|s| serde_json::from_str::<Chart>(&s)) {
                Some(Ok(chart)) if chart.identity == spec.identity() => chart,
                Some(Ok(chart)) => {
                    log::warn!(
                        "spc: {link} {field}: subgroup, baseline or fixed limits changed: new \
                         limits from the next baseline (indexes go on from {})",
                        chart.index
                    );
                    let (chart, cut) = chart.respecified(&spec);
                    if let Some(point) = cut {
                        let (link, field) = (link.clone(), field.clone());
                        self.write(WriteOp::Spc(SpcWrite::Point { link, field, point }));
                    }
                    chart
                }
                Some(Err(e)) => {
                    log::error!(
                        "spc: {link} {field}: the stored chart is unreadable ({e}); monitoring \
                         starts afresh"
                    );
                    Chart::new(&spec)
                }
                None => Chart::new(&spec),
            };
            watched.push(Watched {
                link,
                field,
                spec,
                chart,
                dirty: true,
                alarms_total: BTreeMap::new(),
                out_of_spec_logged_at: None,
                out_of_spec_unlogged: 0,
            });
        }
        let last_id: i64 =
            self.conn
                .query_row("SELECT coalesce(max(id), 0) FROM spc_alarms", [], |r| {
                    r.get(0)
                })?;
        self.spc = SpcCharts {
            charts: watched,
            next_alarm_id: last_id + 1,
            committed_alarm_id: last_id,
        };
        Ok(())
    }

    /// Judges the films among the writes from `log[from..]` (this enqueue's) and writes what
    /// that changed.
    pub(super) fn judge_films(&mut self, from: usize) {
        if self.spc.charts.is_empty() {
            return;
        }
        let mut writes = Vec::new();
        let mut time = None;
        for op in &self.log[from..] {
            let WriteOp::Insert(item) = op else { continue };
            let ItemBody::Film(data) = &item.body else {
                continue;
            };
            let sequence = item
                .sequence
                .as_ref()
                .or_else(|| self.orphan_sequences.get(&item.source));
            let Some(sequence) = sequence else { continue };
            for w in self.spc.charts.iter_mut().filter(|w| w.link == item.source) {
                w.dirty = true;
                let Some(value) = numeric(data.get(&w.field)) else {
                    w.chart.skip();
                    continue;
                };
                let step = w.chart.observe(&w.spec, &sequence.uid, value);
                if step != Step::default() {
                    let time = time.get_or_insert_with(|| rfc3339_ms(now_ms()));
                    w.record(
                        step,
                        time,
                        sequence,
                        &mut self.spc.next_alarm_id,
                        &mut writes,
                    );
                }
            }
        }
        for write in writes {
            self.write(WriteOp::Spc(write));
        }
    }

    /// Writes the state of every chart that changed (called before each commit).
    pub(super) fn write_dirty_charts(&mut self) {
        let mut writes = Vec::new();
        for w in self.spc.charts.iter_mut().filter(|w| w.dirty) {
            w.dirty = false;
            // Serialising plain numbers and strings cannot fail.
            let state = serde_json::to_string(&w.chart).unwrap_or_default();
            writes.push(SpcWrite::Chart {
                link: w.link.clone(),
                field: w.field.clone(),
                state,
            });
        }
        for write in writes {
            self.write(WriteOp::Spc(write));
        }
    }

    /// Keeps the newest points and alarms (every [`TRIM_EVERY_COMMITS`] commits).
    pub(super) fn trim_spc(&mut self) -> rusqlite::Result<()> {
        if self.spc.charts.is_empty() || !self.commits_total.is_multiple_of(TRIM_EVERY_COMMITS) {
            return Ok(());
        }
        self.conn
            .prepare_cached(
                "DELETE FROM spc_points WHERE id <= (SELECT max(id) FROM spc_points) - ?1",
            )?
            .execute([POINTS_KEPT])?;
        // An alarm waits for its acknowledgement; only far behind is it trimmed regardless.
        self.conn
            .prepare_cached(
                "DELETE FROM spc_alarms WHERE id <= (SELECT max(id) FROM spc_alarms) - ?1
                 AND (acknowledged = 1 OR id <= (SELECT max(id) FROM spc_alarms) - ?2)",
            )?
            .execute([ALARMS_KEPT, UNACKNOWLEDGED_KEPT])?;
        Ok(())
    }

    pub(super) fn apply_spc(&mut self, write: &SpcWrite) -> rusqlite::Result<()> {
        match write {
            SpcWrite::Chart { link, field, state } => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO spc_charts (link, field, state) VALUES (?1, ?2, ?3)
                         ON CONFLICT (link, field) DO UPDATE SET state = excluded.state",
                    )?
                    .execute(params![link, field, state])?;
            }
            SpcWrite::Point { link, field, point } => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO spc_points (link, field, sequence_uid, idx, n, mean, range,
                         m2, alarms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    )?
                    .execute(params![
                        link,
                        field,
                        point.lot,
                        point.index.map(|i| i as i64),
                        point.n as i64,
                        point.mean,
                        point.range,
                        point.m2,
                        rule_list(&point.alarms),
                    ])?;
            }
            SpcWrite::PointAlarms {
                link,
                field,
                index,
                alarms,
            } => {
                self.conn
                    .prepare_cached(
                        "UPDATE spc_points SET alarms = ?4 WHERE id =
                         (SELECT max(id) FROM spc_points WHERE link = ?1 AND field = ?2 AND idx = ?3)",
                    )?
                    .execute(params![link, field, *index as i64, alarms])?;
            }
            SpcWrite::Alarm(a) => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO spc_alarms (id, time, link, field, sequence_uid, idx, rule,
                         value) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )?
                    .execute(params![
                        a.id,
                        a.time,
                        a.link,
                        a.field,
                        a.sequence_uid,
                        a.index.map(|i| i as i64),
                        a.rule.name(),
                        a.value,
                    ])?;
            }
            SpcWrite::Ack { id } => {
                self.conn
                    .prepare_cached("UPDATE spc_alarms SET acknowledged = 1 WHERE id = ?1")?
                    .execute([id])?;
            }
        }
        Ok(())
    }

    /// The newest committed alarm's id (0: none).
    pub fn last_alarm_id(&self) -> i64 {
        self.spc.committed_alarm_id
    }

    /// After a commit: its alarms may be shown.
    pub(super) fn spc_committed(&mut self) {
        self.spc.committed_alarm_id = self.spc.next_alarm_id - 1;
    }

    fn watched(&self, link: &str, field: &str) -> Option<&Watched> {
        self.spc
            .charts
            .iter()
            .find(|w| w.link == link && w.field == field)
    }

    /// The watched charts (all, or the one of `chart`).
    pub fn spc_charts(&self, chart: Option<(&str, &str)>) -> Vec<SpcChartView> {
        self.spc
            .charts
            .iter()
            .filter(|w| chart.is_none_or(|(l, f)| w.link == l && w.field == f))
            .map(Watched::view)
            .collect()
    }

    /// Starts a chart afresh; `None` when it is not watched. Committed by the caller.
    pub fn spc_reset(&mut self, link: &str, field: &str) -> Option<SpcChartView> {
        let w = self
            .spc
            .charts
            .iter_mut()
            .find(|w| w.link == link && w.field == field)?;
        let cut = w.chart.reset(&w.spec);
        w.dirty = true;
        log::warn!("spc: {link} {field}: reset; new limits from the next baseline");
        let view = w.view();
        if let Some(point) = cut {
            let (link, field) = (link.to_owned(), field.to_owned());
            self.write(WriteOp::Spc(SpcWrite::Point { link, field, point }));
        }
        self.write_dirty_charts();
        Some(view)
    }

    /// One lot's points of a chart; `None` when it is not watched.
    pub fn spc_points(
        &self,
        link: &str,
        field: &str,
        filter: &LotFilter,
        last: Option<u64>,
    ) -> Result<Option<SpcPoints>, QueueError> {
        let Some(w) = self.watched(link, field) else {
            return Ok(None);
        };
        let uid: Option<String> = match filter {
            LotFilter::Sequence(id) => self
                .conn
                .query_row(
                    "SELECT uid FROM sequences WHERE source = ?1 AND upstream_id IN (?2, ?3)
                     ORDER BY id DESC LIMIT 1",
                    params![link, id, serde_json::Value::from(id.as_str()).to_string()],
                    |r| r.get(0),
                )
                .optional()?,
            LotFilter::Key(key) => self
                .conn
                .query_row(
                    "SELECT uid FROM sequences WHERE source = ?1 AND key = ?2
                     ORDER BY id DESC LIMIT 1",
                    params![link, key],
                    |r| r.get(0),
                )
                .optional()?,
            LotFilter::Newest => match w.chart.newest_lot() {
                Some(lot) => Some(lot.to_owned()),
                None => self
                    .conn
                    .query_row(
                        // Newest first by rowid (stops at the first): through the (link,
                        // field) index SQLite would sort all of the chart's points.
                        "SELECT sequence_uid FROM spc_points NOT INDEXED
                         WHERE link = ?1 AND field = ?2 ORDER BY id DESC LIMIT 1",
                        params![link, field],
                        |r| r.get(0),
                    )
                    .optional()?,
            },
        };
        let mut points = Vec::new();
        if let Some(uid) = &uid {
            // Newest first (all of them without `last`), put back in order below.
            let mut stmt = self.conn.prepare_cached(
                "SELECT idx, n, mean, range, m2, alarms FROM spc_points
                 WHERE sequence_uid = ?1 AND link = ?2 AND field = ?3 ORDER BY id DESC LIMIT ?4",
            )?;
            let open = w.chart.open_point(uid);
            let stored = last.map_or(-1, |n| n.saturating_sub(u64::from(open.is_some())) as i64);
            let mut rows = stmt.query(params![uid, link, field, stored])?;
            while let Some(row) = rows.next()? {
                points.push(Point {
                    index: row.get::<_, Option<i64>>(0)?.map(|i| i as u64),
                    lot: uid.clone(),
                    n: row.get::<_, i64>(1)? as usize,
                    mean: row.get(2)?,
                    range: row.get(3)?,
                    m2: row.get(4)?,
                    alarms: parse_rules(&row.get::<_, String>(5)?),
                });
            }
            points.reverse();
            points.extend(open);
        }
        let (lot, sequence) = match &uid {
            Some(uid) => self.sequence_names(uid)?,
            None => (None, None),
        };
        let summary = lot_summary(&points, w.spec.lsl, w.spec.usl);
        let results = points
            .into_iter()
            .map(|p| SpcPointView {
                index: p.index,
                sequence: sequence.clone(),
                n: p.n,
                mean: p.mean,
                range: p.range,
                alarms: p.alarms,
            })
            .collect();
        Ok(Some(SpcPoints {
            sequence,
            lot,
            results,
            summary,
        }))
    }

    /// The key and upstream id of the sequence with local uid `uid`.
    fn sequence_names(
        &self,
        uid: &str,
    ) -> rusqlite::Result<(Option<String>, Option<serde_json::Value>)> {
        let row: Option<(Option<String>, Option<String>)> = self
            .conn
            .prepare_cached("SELECT key, upstream_id FROM sequences WHERE uid = ?1")?
            .query_row([uid], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (key, upstream) = row.unwrap_or_default();
        Ok((key, upstream.as_deref().map(json_value)))
    }

    /// The newest lots a chart has points of; `None` when it is not watched.
    pub fn spc_lots(&self, link: &str, field: &str) -> Result<Option<Vec<SpcLot>>, QueueError> {
        if self.watched(link, field).is_none() {
            return Ok(None);
        }
        // The newest lots are the first distinct ones met walking the chart's points from the
        // newest back, which stops after a few lots' points; grouping every point of the chart
        // (up to POINTS_KEPT) took ~0.1 s of the queue's thread per call.
        let mut uids: Vec<String> = Vec::with_capacity(LOTS_LISTED as usize);
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT sequence_uid FROM spc_points NOT INDEXED
                 WHERE link = ?1 AND field = ?2 ORDER BY id DESC",
            )?;
            let mut rows = stmt.query(params![link, field])?;
            while uids.len() < LOTS_LISTED as usize {
                let Some(row) = rows.next()? else { break };
                let uid: String = row.get(0)?;
                if !uids.contains(&uid) {
                    uids.push(uid);
                }
            }
        }
        let mut count = self.conn.prepare_cached(
            // The lot's index: with no statistics SQLite would take the (link, field) one and
            // walk the whole chart.
            "SELECT count(*) FROM spc_points INDEXED BY spc_points_lot
             WHERE sequence_uid = ?1 AND link = ?2 AND field = ?3",
        )?;
        let mut lots = Vec::with_capacity(uids.len());
        for uid in uids {
            let points: i64 = count.query_row(params![uid, link, field], |r| r.get(0))?;
            let (lot, sequence) = self.sequence_names(&uid)?;
            lots.push(SpcLot {
                sequence,
                lot,
                points: points as u64,
            });
        }
        Ok(Some(lots))
    }

    /// A page of alarms: newest first, or oldest first after `after_id`.
    pub fn alarms(&self, q: &ListAlarms) -> Result<AlarmPage, QueueError> {
        let sequence_text = q
            .sequence
            .as_deref()
            .map(|s| serde_json::Value::from(s).to_string());
        let filter = "WHERE (?1 IS NULL OR a.acknowledged = ?1) AND (?2 IS NULL OR a.id > ?2)
               AND (?3 IS NULL OR s.upstream_id IN (?3, ?4)) AND a.id <= ?7
               AND (?8 IS NULL OR a.link = ?8) AND (?9 IS NULL OR a.field = ?9)";
        let args = params![
            q.acknowledged,
            q.after_id,
            q.sequence,
            sequence_text,
            q.limit as i64,
            q.offset as i64,
            self.spc.committed_alarm_id,
            q.link,
            q.field
        ];
        // The count binds the page's LIMIT and OFFSET too (?5, ?6: slots it leaves unused).
        let count: i64 = self
            .conn
            .prepare_cached(&format!(
                "SELECT count(*) FROM spc_alarms a
                 LEFT JOIN sequences s ON s.uid = a.sequence_uid {filter}"
            ))?
            .query_row(args, |r| r.get(0))?;
        let order = if q.after_id.is_some() { "ASC" } else { "DESC" };
        let results = self
            .conn
            .prepare_cached(&format!(
                "{ALARM_SELECT} {filter} ORDER BY a.id {order} LIMIT ?5 OFFSET ?6"
            ))?
            .query_map(args, alarm_view)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(AlarmPage {
            count: count as u64,
            results,
        })
    }

    /// Acknowledges an alarm; `None` when there is none with that id. Committed by the caller.
    pub fn ack_alarm(&mut self, id: i64) -> Result<Option<AlarmView>, QueueError> {
        let found: Option<AlarmView> = self
            .conn
            .query_row(
                &format!("{ALARM_SELECT} WHERE a.id = ?1 AND a.id <= ?2"),
                [id, self.spc.committed_alarm_id],
                alarm_view,
            )
            .optional()?;
        let Some(mut alarm) = found else {
            return Ok(None);
        };
        if !alarm.acknowledged {
            self.write(WriteOp::Spc(SpcWrite::Ack { id }));
            alarm.acknowledged = true;
        }
        Ok(Some(alarm))
    }
}

/// An alarm's columns, with its lot's key and upstream id, as [`alarm_view`] reads them.
const ALARM_SELECT: &str = "SELECT a.id, a.time, a.link, a.field, s.upstream_id, s.key, a.idx,
    a.rule, a.value, a.acknowledged FROM spc_alarms a LEFT JOIN sequences s ON s.uid = a.sequence_uid";

fn alarm_view(r: &rusqlite::Row<'_>) -> rusqlite::Result<AlarmView> {
    let rule: String = r.get(7)?;
    Ok(AlarmView {
        id: r.get(0)?,
        time: r.get(1)?,
        link: r.get(2)?,
        field: r.get(3)?,
        sequence: r.get::<_, Option<String>>(4)?.as_deref().map(json_value),
        lot: r.get(5)?,
        index: r.get::<_, Option<i64>>(6)?.map(|i| i as u64),
        // Only names of [`Rule`] are written; an unknown one reads as out of spec.
        rule: Rule::from_name(&rule).unwrap_or(Rule::OutOfSpec),
        value: r.get(8)?,
        acknowledged: r.get(9)?,
    })
}

impl Watched {
    /// Turns what one value changed into writes, counts and log lines.
    fn record(
        &mut self,
        step: Step,
        time: &str,
        sequence: &SequenceRef,
        next_alarm_id: &mut i64,
        writes: &mut Vec<SpcWrite>,
    ) {
        let (link, field) = (self.link.clone(), self.field.clone());
        for point in step.closed {
            writes.push(SpcWrite::Point {
                link: link.clone(),
                field: field.clone(),
                point,
            });
        }
        for point in step.rejudged {
            if let (Some(index), false) = (point.index, point.alarms.is_empty()) {
                writes.push(SpcWrite::PointAlarms {
                    link: link.clone(),
                    field: field.clone(),
                    index,
                    alarms: rule_list(&point.alarms),
                });
            }
        }
        for alarm in step.alarms {
            *self.alarms_total.entry(alarm.rule).or_default() += 1;
            // The film in hand's lot, when the alarm is in it (a baseline judged at freeze
            // may be older).
            let lot = sequence
                .key
                .as_deref()
                .filter(|_| alarm.lot == sequence.uid);
            if alarm.rule == Rule::OutOfSpec {
                self.log_out_of_spec(alarm.value, lot);
            } else {
                log::warn!(
                    "spc: {link} {field}: {} at subgroup {} (value {}{})",
                    alarm.rule.name(),
                    alarm.index.unwrap_or_default(),
                    shown(alarm.value),
                    lot.map(|l| format!(", lot {l}")).unwrap_or_default(),
                );
            }
            writes.push(SpcWrite::Alarm(Box::new(AlarmRow {
                id: *next_alarm_id,
                time: time.to_owned(),
                link: link.clone(),
                field: field.clone(),
                sequence_uid: alarm.lot,
                index: alarm.index,
                rule: alarm.rule,
                value: alarm.value,
            })));
            *next_alarm_id += 1;
        }
    }

    /// One WARN line a minute per chart, with the count of out-of-spec films it stands for.
    fn log_out_of_spec(&mut self, value: f64, lot: Option<&str>) {
        self.out_of_spec_unlogged += 1;
        if self
            .out_of_spec_logged_at
            .is_some_and(|at| at.elapsed() < OUT_OF_SPEC_LOG_INTERVAL)
        {
            return;
        }
        let count = std::mem::take(&mut self.out_of_spec_unlogged);
        self.out_of_spec_logged_at = Some(Instant::now());
        let spec = [
            self.spec.lsl.map(|l| format!("lsl {l}")),
            self.spec.usl.map(|u| format!("usl {u}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        log::warn!(
            "spc: {} {}: {count} film(s) out of spec ({spec}) since the last such line; the \
             latest {}{}",
            self.link,
            self.field,
            shown(value),
            lot.map(|l| format!(" in lot {l}")).unwrap_or_default(),
        );
    }

    fn view(&self) -> SpcChartView {
        let limits = self.chart.limits.as_ref();
        let (cp, cpk) = limits.map_or((None, None), |l| self.spec.capability(l));
        let range = limits
            .and_then(|l| l.range.as_ref())
            .map(|r| SpcRangeView {
                center: r.center,
                ucl: Some(r.ucl),
                lcl: Some(r.lcl),
            })
            .unwrap_or_default();
        SpcChartView {
            link: self.link.clone(),
            field: self.field.clone(),
            subgroup: self.spec.subgroup,
            baseline: self.spec.baseline,
            state: self.chart.state(),
            center: limits.map(|l| l.center),
            ucl: limits.map(|l| l.ucl),
            lcl: limits.map(|l| l.lcl),
            range,
            sigma: limits.map(|l| l.sigma),
            cp,
            cpk,
            lsl: self.spec.lsl,
            usl: self.spec.usl,
            target: self.spec.target,
            subgroups: if limits.is_some() {
                self.chart.index
            } else {
                self.chart.baseline.len() as u64
            },
            skipped: self.chart.skipped,
            alarms_total: self
                .alarms_total
                .iter()
                .map(|(rule, n)| (rule.name(), *n))
                .collect(),
        }
    }
}
