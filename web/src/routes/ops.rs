//! Operations endpoints: `/healthz` (alive), `/readyz` (the queue store answers and is
//! healthy) and `/metrics` (the OpenMetrics text format, encoded by `prometheus-client` from
//! the link registry, the queue's stats, the poster's metrics and the open event streams as
//! they are at the scrape).

use crate::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use filmgate_actors::links::{LinkState, LinkStatus};
use filmgate_actors::messages::{GetSpc, QueueStats, SpcChartView};
use filmgate_actors::metrics::{PostMetrics, SharedPostMetrics};
use filmgate_actors::spc::Rule;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use serde_json::json;
use std::fmt;

/// Content type of the OpenMetrics text format (Prometheus asks for it first).
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let (stats, error) = crate::live::queue_stats(&state).await;
    match (stats, error) {
        (Some(stats), _) if stats.store_ok => HttpResponse::Ok().json(json!({"status": "ready"})),
        (Some(_), _) => unready("the queue store's last operation failed"),
        (None, error) => unready(&error.unwrap_or_else(|| "queue did not answer".into())),
    }
}

fn unready(reason: &str) -> HttpResponse {
    // The cause is logged where it happens (the queue store); not once per probe.
    log::debug!("readyz: not ready: {reason}");
    HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE)
        .json(json!({"status": "unavailable", "error": reason}))
}

async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if !crate::auth::read_allowed(&req, &state) {
        return crate::auth::unauthorized(
            "/metrics needs the token here (web.protect_reads): send Authorization: Bearer <token>",
        );
    }
    let (stats, _) = crate::live::queue_stats(&state).await;
    let spc = match state.queue.spc.send(GetSpc { chart: None }).await {
        Ok(Ok(charts)) => charts,
        _ => Vec::new(),
    };
    let scrape = Scrape {
        links: state.links.snapshot(),
        queue: stats,
        spc,
        posts: state.post_metrics.clone(),
        event_streams: state.event_clients.open(),
    };
    HttpResponse::Ok()
        .content_type(OPENMETRICS_CONTENT_TYPE)
        .body(scrape.render())
}

/// What `/metrics` shows, as read at one scrape. Queue series have no samples when the queue
/// did not answer (their descriptors stay, so the series are still announced).
#[derive(Debug)]
pub struct Scrape {
    pub links: Vec<LinkStatus>,
    pub queue: Option<QueueStats>,
    /// The SPC charts with their alarm counts.
    pub spc: Vec<SpcChartView>,
    pub posts: SharedPostMetrics,
    pub event_streams: usize,
}

impl Scrape {
    /// The OpenMetrics text.
    pub fn render(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let e = &mut encoder;
        let per_link = |e: &mut DescriptorEncoder, name, help, value: fn(&LinkStatus) -> u64| {
            let samples = self
                .links
                .iter()
                .map(|l| (l.name.as_str(), ConstCounter::new(value(l))));
            labelled(e, name, help, MetricType::Counter, "link", samples)
        };
        per_link(
            e,
            "filmgate_frames_read",
            "Frames read that parsed into films.",
            |l| l.frames_read,
        )?;
        per_link(
            e,
            "filmgate_frames_rejected",
            "Frames that became dead items.",
            |l| l.frames_rejected,
        )?;
        per_link(
            e,
            "filmgate_frames_lost",
            "Frames read but given up at a stop because the queue refused them.",
            |l| l.frames_lost,
        )?;
        per_link(
            e,
            "filmgate_link_restarts",
            "Times the link was restarted.",
            |l| l.restarts,
        )?;
        per_link(
            e,
            "filmgate_link_queue_refusals",
            "Times the queue refused a batch of the link (its store failing).",
            |l| l.queue_refusals,
        )?;
        let up = self.links.iter().map(|l| {
            let up = i64::from(l.state == LinkState::Up);
            (l.name.as_str(), ConstGauge::new(up))
        });
        let help = "1 when the link's port is open and read.";
        labelled(e, "filmgate_link_up", help, MetricType::Gauge, "link", up)?;

        let q = self.queue.as_ref();
        let items = q.into_iter().flat_map(|q| {
            [
                ("pending", q.pending),
                ("in_flight", q.in_flight),
                ("dead", q.dead),
                ("posted", q.posted),
            ]
            .map(|(state, n)| (state, ConstGauge::new(n as i64)))
        });
        let help = "Queue items by state.";
        labelled(
            e,
            "filmgate_queue_items",
            help,
            MetricType::Gauge,
            "state",
            items,
        )?;
        let refused = q.map(|q| ConstCounter::new(q.refused_total));
        let help = "Frames refused because the queue was full.";
        single(
            e,
            "filmgate_queue_refused",
            help,
            MetricType::Counter,
            refused,
        )?;
        let uncertain = q.map(|q| ConstCounter::new(q.uncertain_resends_total));
        let help = "Items posted again whose earlier post's outcome was unknown when the last \
                    process died; a backend without a unique uid may have stored them twice.";
        single(
            e,
            "filmgate_uncertain_resends",
            help,
            MetricType::Counter,
            uncertain,
        )?;
        let age = q.map(|q| ConstGauge::new(q.oldest_pending_age_ms as f64 / 1000.0));
        let help = "Age of the oldest pending or in-flight item.";
        single(
            e,
            "filmgate_queue_oldest_pending_age_seconds",
            help,
            MetricType::Gauge,
            age,
        )?;

        let posts: &PostMetrics = &self.posts;
        let outcomes = [
            ("delivered", &posts.delivered),
            ("retried", &posts.retried),
            ("dead", &posts.dead),
        ]
        .map(|(outcome, counter)| (outcome, ConstCounter::new(counter.get())));
        let help = "Posted items by outcome.";
        labelled(
            e,
            "filmgate_posts",
            help,
            MetricType::Counter,
            "outcome",
            outcomes,
        )?;
        let sequences = ConstCounter::new(posts.sequences_posted.get());
        let help = "Sequences posted (created or replayed).";
        single(
            e,
            "filmgate_sequences_posted",
            help,
            MetricType::Counter,
            Some(sequences),
        )?;
        let help = "From a frame's last byte read to the upstream's 2xx.";
        let latency = Some(posts.latency_s.clone());
        single(
            e,
            "filmgate_post_latency_seconds",
            help,
            MetricType::Histogram,
            latency,
        )?;
        let alarms = self.spc.iter().flat_map(|c| {
            c.alarms_total.iter().map(|(rule, n)| {
                let labels = [
                    ("link", c.link.as_str()),
                    ("field", &c.field),
                    ("rule", rule),
                ];
                (labels.to_vec(), ConstCounter::new(*n))
            })
        });
        let help = "SPC rules that fired (alarms), since start.";
        labelled_by(e, "filmgate_spc_alarms", help, MetricType::Counter, alarms)?;
        let out_of_spec = self.spc.iter().map(|c| {
            let n = c
                .alarms_total
                .get(Rule::OutOfSpec.name())
                .copied()
                .unwrap_or(0);
            let labels = [("link", c.link.as_str()), ("field", &c.field)];
            (labels.to_vec(), ConstCounter::new(n))
        });
        let help = "Films whose watched field was outside its spec limits, since start.";
        labelled_by(
            e,
            "filmgate_out_of_spec",
            help,
            MetricType::Counter,
            out_of_spec,
        )?;
        let streams = ConstGauge::new(self.event_streams as i64);
        let help = "Open /api/events/ streams.";
        single(
            e,
            "filmgate_event_streams",
            help,
            MetricType::Gauge,
            Some(streams),
        )
    }
}

/// A family without labels: its descriptor, and its sample when there is one.
fn single(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    metric: Option<impl EncodeMetric>,
) -> fmt::Result {
    let family = encoder.encode_descriptor(name, help, None, kind)?;
    match metric {
        Some(metric) => metric.encode(family),
        None => Ok(()),
    }
}

/// A family with one label `key`: its descriptor, then a sample per label value.
fn labelled<'v, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    key: &'v str,
    samples: impl IntoIterator<Item = (&'v str, M)>,
) -> fmt::Result {
    let samples = samples
        .into_iter()
        .map(|(value, m)| (vec![(key, value)], m));
    labelled_by(encoder, name, help, kind, samples)
}

/// A family with several labels per sample: its descriptor, then each sample.
fn labelled_by<'v, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: impl IntoIterator<Item = (Vec<(&'v str, &'v str)>, M)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, metric) in samples {
        // prometheus-client 0.24 writes label values as given: a link named `a"b` would break
        // the whole exposition.
        let labels: Vec<(&str, String)> = labels
            .into_iter()
            .map(|(k, v)| (k, escape_label(v)))
            .collect();
        metric.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A label value escaped for the text format (backslash, double quote, newline).
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn link(name: &str, state: LinkState) -> LinkStatus {
        LinkStatus {
            name: name.into(),
            port: "sim".into(),
            state,
            restarts: 2,
            last_error: None,
            frames_read: 7,
            frames_rejected: 1,
            last_frame_at: None,
            frames_lost: 0,
            queue_refusals: 0,
            noise_bytes: 0,
            boundary_port: None,
        }
    }

    fn render(links: Vec<LinkStatus>, queue: Option<QueueStats>, posts: PostMetrics) -> String {
        let spc = SpcChartView {
            link: "line-1".into(),
            field: "thickness_um".into(),
            subgroup: 5,
            baseline: 25,
            state: "monitoring",
            center: Some(25.0),
            ucl: Some(25.2),
            lcl: Some(24.8),
            range: Default::default(),
            sigma: Some(0.1),
            cp: None,
            cpk: None,
            lsl: None,
            usl: None,
            target: None,
            subgroups: 30,
            skipped: 0,
            alarms_total: [("beyond_3sigma", 2), ("out_of_spec", 3)].into(),
        };
        let scrape = Scrape {
            links,
            queue,
            spc: vec![spc],
            posts: Arc::new(posts),
            event_streams: 2,
        };
        scrape.render()
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn metrics_render_links_queue_posts_and_histogram() {
        let posts = PostMetrics::default();
        posts.delivered.inc_by(5);
        posts.observe_latency_us(1_500);
        let stats = QueueStats {
            pending: 3,
            dead: 1,
            refused_total: 4,
            oldest_pending_age_ms: 2500,
            ..Default::default()
        };
        let text = render(vec![link("line \"1\"", LinkState::Up)], Some(stats), posts);
        for line in [
            "filmgate_frames_read_total{link=\"line \\\"1\\\"\"} 7",
            "filmgate_frames_rejected_total{link=\"line \\\"1\\\"\"} 1",
            "filmgate_link_restarts_total{link=\"line \\\"1\\\"\"} 2",
            "filmgate_link_queue_refusals_total{link=\"line \\\"1\\\"\"} 0",
            "filmgate_link_up{link=\"line \\\"1\\\"\"} 1",
            "filmgate_queue_items{state=\"pending\"} 3",
            "filmgate_queue_items{state=\"dead\"} 1",
            "filmgate_queue_refused_total 4",
            "filmgate_uncertain_resends_total 0",
            "filmgate_queue_oldest_pending_age_seconds 2.5",
            "filmgate_posts_total{outcome=\"delivered\"} 5",
            "filmgate_sequences_posted_total 0",
            "filmgate_post_latency_seconds_bucket{le=\"0.001\"} 0",
            "filmgate_post_latency_seconds_bucket{le=\"0.002\"} 1",
            "filmgate_post_latency_seconds_bucket{le=\"+Inf\"} 1",
            "filmgate_post_latency_seconds_count 1",
            "# TYPE filmgate_post_latency_seconds histogram",
            "filmgate_event_streams 2",
            "filmgate_spc_alarms_total{link=\"line-1\",field=\"thickness_um\",rule=\"beyond_3sigma\"} 2",
            "filmgate_out_of_spec_total{link=\"line-1\",field=\"thickness_um\"} 3",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn queue_series_are_announced_without_samples_when_the_queue_is_down() {
        let text = render(Vec::new(), None, PostMetrics::default());
        assert!(text.contains("# TYPE filmgate_queue_items gauge"), "{text}");
        assert!(!text.contains("filmgate_queue_items{"), "{text}");
        assert!(!text.contains("filmgate_queue_refused_total "), "{text}");
    }
}
