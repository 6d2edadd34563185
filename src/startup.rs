//! [`Application`]: opens the stores, starts the queue, the poster and one supervised link per
//! `[[serial]]`, binds the web listener, and shuts everything down in order.
//!
//! Shutdown order is what keeps records safe: stop the links (no more reads), commit the
//! queue, let posts in flight finish and ack (what does not finish stays pending on disk),
//! commit again, then stop the web server.

use crate::config::Settings;
use actix::prelude::*;
use anyhow::Context as _;
use filmgate_actors::links::LinkRegistry;
use filmgate_actors::messages::{Flush, MarkStop, StopLink, Subscribe};
use filmgate_actors::metrics::{PostMetrics, SharedPostMetrics};
use filmgate_actors::poster::{Drain, PosterActor, QueueLinks, start_poster};
use filmgate_actors::queue::{QueueActor, QueueClient, QueueStore};
use filmgate_actors::serial::start_link_resuming;
use filmgate_web::AppState;
use filmgate_web::store::RecordsStore;
use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

/// Extra time granted to posts in flight at shutdown, beyond one upstream timeout.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// A running filmgate: every actor started and the web server bound.
pub struct Application {
    /// The port the web server listens on (useful when bound to port 0).
    port: u16,
    /// The web server, not yet awaited.
    server: actix_web::dev::Server,
    queue: Addr<QueueActor>,
    poster: Addr<PosterActor>,
    links: LinkRegistry,
    /// Longest wait for posts in flight at shutdown.
    drain_timeout: Duration,
}

impl Application {
    /// Builds everything from `settings`. Must run inside an actix `System`.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        filmgate_actors::redact::register_secrets(settings.secrets());
        let mut store = QueueStore::open(&settings.queue)?;
        let records = RecordsStore::open(&settings.web.records_db).context("web.records_db")?;
        let listener = TcpListener::bind(settings.web.bind)
            .with_context(|| format!("cannot listen on web.bind = {}", settings.web.bind))?;
        let local_addr = listener.local_addr()?;
        let port = local_addr.port();
        if !local_addr.ip().is_loopback() {
            if settings.web.token.is_none() {
                log::warn!(
                    "web.bind = {} is reachable from the network and web.token is empty: anyone \
                     who can reach it can retry, delete and restart; set web.token \
                     (FILMGATE__WEB__TOKEN)",
                    settings.web.bind
                );
            }
            if !settings.web.protect_reads {
                log::warn!(
                    "web.bind = {} is reachable from the network with reads open: raw records, \
                     dead items and device paths are readable by anyone who can reach it; set \
                     web.protect_reads = true (with web.token) to require the token for reads",
                    settings.web.bind
                );
            }
        }

        // Read before the store moves to its thread: each keyed link continues its sequence.
        let last_sequences = settings
            .serial
            .iter()
            .map(|s| store.last_sequence(&s.name))
            .collect::<Result<Vec<_>, _>>()?;
        // And each link the last graceful stop left at a record boundary gets the port it
        // stopped on: its first open of that same port starts at a record.
        let handovers: Vec<Option<String>> = settings
            .serial
            .iter()
            .map(|s| store.handover(&s.name).map(str::to_owned))
            .collect();
        let parsers: HashMap<_, _> = settings
            .serial
            .iter()
            .map(|s| (s.name.clone(), s.parser()))
            .collect();
        let charts = settings
            .serial
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let charts = s.charts(&format!("serial[{i}]"))?;
                Ok(charts
                    .into_iter()
                    .map(|(field, spec)| (s.name.clone(), field, spec)))
            })
            .collect::<Result<Vec<_>, filmgate_actors::invalid::InvalidConfig>>()?;
        store.watch_spc(charts.into_iter().flatten().collect())?;
        let queue_changes = store.change_signal();
        // The links run on the queue's thread: a frame reaches the queue without a wake-up
        // of another thread (the link waits for its batch to be taken in any case).
        let queue_thread = actix::Arbiter::new().handle();
        let queue = QueueActor::start_on(&queue_thread, store, settings.queue.clone(), parsers);

        let metrics: SharedPostMetrics = Arc::new(PostMetrics::default());
        let queue_links = QueueLinks::to(&queue);
        // `base_url = ""` is the embedded service wherever the listener was bound.
        let upstream = settings.upstream.clone().with_embedded_default(local_addr);
        let posting_to = upstream.base_url.clone();
        let poster_metrics = metrics.clone();
        let poster = start_poster(upstream, queue_links, poster_metrics)
            .await
            .map_err(anyhow::Error::msg)
            .context("upstream")?;
        queue.send(Subscribe(poster.clone().recipient())).await?;

        let links = LinkRegistry::default();
        for ((link, last), handover) in settings.serial.iter().zip(last_sequences).zip(handovers) {
            start_link_resuming(
                link.clone(),
                queue.clone().recipient(),
                links.clone(),
                last,
                handover,
                Some(&queue_thread),
            )
            .with_context(|| format!("cannot start link {}", link.name))?;
        }

        let state = AppState {
            records,
            queue: QueueClient::new(&queue, queue_changes),
            links: links.clone(),
            post_metrics: metrics,
            token: settings.web.token.clone(),
            allowed_hosts: settings.web.allowed_hosts.clone(),
            event_clients: Default::default(),
            body_timeouts: settings.web.body_timeouts(),
            protect_reads: settings.web.protect_reads,
            sessions: Default::default(),
            access_log: settings.web.access_log,
            record_fields: settings
                .serial
                .iter()
                .map(|s| (s.name.clone(), s.record.fields.clone()))
                .collect(),
        };
        let server = filmgate_web::server(listener, state)?;
        log::info!(
            "filmgate listening on http://{} with {} link(s), posting to {}",
            local_addr,
            settings.serial.len(),
            filmgate_actors::redact::redact_url(&posting_to)
        );
        Ok(Application {
            port,
            server,
            queue,
            poster,
            links,
            drain_timeout: settings.upstream.timeout() + DRAIN_GRACE,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` resolves, then shuts down in order.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let server = actix_rt::spawn(self.server);
        crate::service::ready();
        crate::service::spawn_watchdog(
            self.queue.clone().recipient(),
            self.poster.clone().recipient(),
        );
        shutdown.await;
        crate::service::stopping();
        log::info!("shutting down: stopping links, committing the queue, draining posts");
        for stop in self.links.stop_handles() {
            let _ = stop.send(StopLink).await;
        }
        // Commit what the links read, then let the posts in flight end; their acks and any
        // last reads are committed by the final flush. Unfinished posts stay pending on disk.
        let _ = self.queue.send(Flush { last: false }).await;
        let drained = self
            .poster
            .send(Drain {
                timeout: self.drain_timeout,
            })
            .await
            .unwrap_or(false);
        if !drained {
            log::warn!("posts still in flight at shutdown stay pending and are re-sent next start");
        }
        // Tell the next process where each link stopped (the last commit keeps it).
        let boundaries = self
            .links
            .snapshot()
            .into_iter()
            .filter_map(|link| Some((link.name, link.boundary_port?)))
            .collect();
        let _ = self
            .queue
            .send(MarkStop {
                boundaries,
                drained,
            })
            .await;
        // The web server stops before the last commit: no request may write to the queue after
        // it (the last commit releases the queue file to the next process).
        handle.stop(true).await;
        let _ = server.await;
        self.queue
            .send(Flush { last: true })
            .await?
            .context("final queue commit failed")?;
        let lost: u64 = self.links.snapshot().iter().map(|s| s.frames_lost).sum();
        if lost > 0 {
            anyhow::bail!(
                "{lost} frames read could not be kept (the queue refused them); each is logged \
                 above as \"frame not kept\" with its bytes"
            );
        }
        log::info!("filmgate stopped");
        Ok(())
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut term) => term.recv().await,
            Err(e) => {
                log::error!("cannot handle SIGTERM ({e}): only Ctrl-C stops filmgate gracefully");
                std::future::pending().await
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
