//! Operations endpoints: `/healthz` (alive), `/readyz` (the queue store answers and is
//! healthy) and `/metrics` (Prometheus text format 0.0.4, rendered by [`render_metrics`]
//! from the link registry, the queue's stats and the poster's counters).

use crate::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use filmgate_actors::links::{LinkState, LinkStatus};
use filmgate_actors::messages::QueueStats;
use filmgate_actors::metrics::{LATENCY_BUCKETS_MS, PostMetrics};
use serde_json::json;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

/// Content type of the Prometheus text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let (stats, error) = super::refresh::queue_stats(&state).await;
    match (stats, error) {
        (Some(stats), _) if stats.store_ok => HttpResponse::Ok().json(json!({"status": "ready"})),
        (Some(_), _) => unready("the queue store's last operation failed"),
        (None, error) => unready(&error.unwrap_or_else(|| "queue did not answer".into())),
    }
}

fn unready(reason: &str) -> HttpResponse {
    log::warn!("readyz: not ready: {reason}");
    HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE)
        .json(json!({"status": "unavailable", "error": reason}))
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let (stats, _) = super::refresh::queue_stats(&state).await;
    let mut body = render_metrics(&state.links.snapshot(), stats.as_ref(), &state.post_metrics);
    header(
        &mut body,
        "filmgate_event_streams",
        "gauge",
        "Open /api/events/ streams.",
    );
    let _ = writeln!(
        body,
        "filmgate_event_streams {}",
        state.event_clients.open()
    );
    HttpResponse::Ok()
        .content_type(PROMETHEUS_CONTENT_TYPE)
        .body(body)
}

/// The Prometheus text for the given state. Queue series carry no samples when the queue did
/// not answer (their HELP/TYPE lines stay, so the series are still announced).
pub fn render_metrics(
    links: &[LinkStatus],
    queue: Option<&QueueStats>,
    posts: &PostMetrics,
) -> String {
    let mut out = String::with_capacity(4096);
    let per_link = |out: &mut String,
                    name: &str,
                    kind: &str,
                    help: &str,
                    value: &dyn Fn(&LinkStatus) -> u64| {
        header(out, name, kind, help);
        for link in links {
            let _ = writeln!(
                out,
                "{name}{{link=\"{}\"}} {}",
                escape_label(&link.name),
                value(link)
            );
        }
    };
    per_link(
        &mut out,
        "filmgate_frames_read_total",
        "counter",
        "Frames read that parsed into films.",
        &|l| l.frames_read,
    );
    per_link(
        &mut out,
        "filmgate_frames_rejected_total",
        "counter",
        "Frames that became dead items.",
        &|l| l.frames_rejected,
    );
    per_link(
        &mut out,
        "filmgate_frames_lost_total",
        "counter",
        "Frames read but given up at a stop because the queue refused them.",
        &|l| l.frames_lost,
    );
    per_link(
        &mut out,
        "filmgate_link_restarts_total",
        "counter",
        "Times the link was restarted.",
        &|l| l.restarts,
    );
    per_link(
        &mut out,
        "filmgate_link_up",
        "gauge",
        "1 when the link's port is open and read.",
        &|l| u64::from(l.state == LinkState::Up),
    );

    header(
        &mut out,
        "filmgate_queue_items",
        "gauge",
        "Queue items by state.",
    );
    if let Some(q) = queue {
        for (state, n) in [
            ("pending", q.pending),
            ("in_flight", q.in_flight),
            ("dead", q.dead),
            ("posted", q.posted),
        ] {
            let _ = writeln!(out, "filmgate_queue_items{{state=\"{state}\"}} {n}");
        }
    }
    header(
        &mut out,
        "filmgate_queue_refused_total",
        "counter",
        "Frames refused because the queue was full.",
    );
    if let Some(q) = queue {
        let _ = writeln!(out, "filmgate_queue_refused_total {}", q.refused_total);
    }
    header(
        &mut out,
        "filmgate_queue_oldest_pending_age_seconds",
        "gauge",
        "Age of the oldest pending or in-flight item.",
    );
    if let Some(q) = queue {
        let _ = writeln!(
            out,
            "filmgate_queue_oldest_pending_age_seconds {}",
            q.oldest_pending_age_ms as f64 / 1000.0
        );
    }

    header(
        &mut out,
        "filmgate_posts_total",
        "counter",
        "Posted items by outcome.",
    );
    for (outcome, counter) in [
        ("delivered", &posts.delivered),
        ("retried", &posts.retried),
        ("dead", &posts.dead),
    ] {
        let _ = writeln!(
            out,
            "filmgate_posts_total{{outcome=\"{outcome}\"}} {}",
            counter.load(Ordering::Relaxed)
        );
    }
    header(
        &mut out,
        "filmgate_sequences_posted_total",
        "counter",
        "Sequences posted (created or replayed).",
    );
    let _ = writeln!(
        out,
        "filmgate_sequences_posted_total {}",
        posts.sequences_posted.load(Ordering::Relaxed)
    );

    let name = "filmgate_post_latency_seconds";
    header(
        &mut out,
        name,
        "histogram",
        "From a frame's last byte read to the upstream's 2xx.",
    );
    let latency = posts.latency();
    for (i, count) in latency.cumulative.iter().enumerate() {
        let le = match LATENCY_BUCKETS_MS.get(i) {
            Some(ms) => format!("{}", ms / 1000.0),
            None => "+Inf".to_owned(),
        };
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_sum {}", latency.sum_s);
    let _ = writeln!(out, "{name}_count {}", latency.count);
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value escaped for the text format (backslash, double quote, newline).
pub fn escape_label(value: &str) -> String {
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
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn metrics_render_links_queue_posts_and_histogram() {
        let posts = PostMetrics::default();
        posts.delivered.store(5, Ordering::Relaxed);
        posts.observe_latency_us(1_500);
        let stats = QueueStats {
            pending: 3,
            dead: 1,
            refused_total: 4,
            oldest_pending_age_ms: 2500,
            ..Default::default()
        };
        let text = render_metrics(&[link("line \"1\"", LinkState::Up)], Some(&stats), &posts);
        for line in [
            "filmgate_frames_read_total{link=\"line \\\"1\\\"\"} 7",
            "filmgate_frames_rejected_total{link=\"line \\\"1\\\"\"} 1",
            "filmgate_link_restarts_total{link=\"line \\\"1\\\"\"} 2",
            "filmgate_link_up{link=\"line \\\"1\\\"\"} 1",
            "filmgate_queue_items{state=\"pending\"} 3",
            "filmgate_queue_items{state=\"dead\"} 1",
            "filmgate_queue_refused_total 4",
            "filmgate_queue_oldest_pending_age_seconds 2.5",
            "filmgate_posts_total{outcome=\"delivered\"} 5",
            "filmgate_sequences_posted_total 0",
            "filmgate_post_latency_seconds_bucket{le=\"0.001\"} 0",
            "filmgate_post_latency_seconds_bucket{le=\"0.002\"} 1",
            "filmgate_post_latency_seconds_bucket{le=\"+Inf\"} 1",
            "filmgate_post_latency_seconds_count 1",
            "# TYPE filmgate_post_latency_seconds histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn queue_series_are_announced_without_samples_when_the_queue_is_down() {
        let text = render_metrics(&[], None, &PostMetrics::default());
        assert!(text.contains("# TYPE filmgate_queue_items gauge"));
        assert!(!text.contains("filmgate_queue_items{"));
    }
}
