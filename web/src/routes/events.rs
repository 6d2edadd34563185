//! `GET /api/events/`: the refresh pushed as server-sent events. A stream sleeps until the
//! records store, the queue or a link signals a change ([`filmgate_actors::changes`]), then
//! looks for new rows since the client's cursor, queue stats and link changes and sends
//! `event: refresh` with the same JSON as `/api/refresh/` when anything changed. Looks are at
//! least [`MIN_INTERVAL`] apart, so a flood of films makes a few events a second, not one per
//! film; while the queue is busy a stream also looks every [`BUSY_REFRESH`] (ages and rates
//! move without a signal); a comment every [`KEEP_ALIVE`] keeps proxies from closing an idle
//! stream.
//! Each event carries its cursor as `id:`, so a reconnecting `EventSource` resumes from
//! `Last-Event-ID`.
//!
//! Bounded: at most [`MAX_CLIENTS`] streams at once, [`MAX_CLIENTS_PER_PEER`] of them to one
//! peer address (HEAD takes none; the next gets a JSON 503; a client that
//! stops reading loses its stream after [`crate::STALLED_CONNECTION_TIMEOUT`]), and a cursor
//! far behind gets one catch-up page of `CATCH_UP_LIMIT` rows, then the stream continues from
//! the newest rows rather than replaying the whole history (a client that wants everything
//! pages through `/api/films/`). Once caught up, a stream sends every new row.

use crate::AppState;
use crate::errors::ApiError;
use crate::live::{CATCH_UP_LIMIT, Cursor, CursorQuery, next_cursor, queue_stats};
use crate::views::Refresh;
use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, HttpResponseBuilder, web};
use bytes::Bytes;
use filmgate_actors::links::LinkStatus;
use filmgate_actors::messages::{ListAlarms, QueueStats};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Shortest time between two looks of one stream.
pub const MIN_INTERVAL: Duration = Duration::from_millis(250);

/// Longest time between two looks while the last stats sent show work or non-zero rates.
pub const BUSY_REFRESH: Duration = Duration::from_secs(2);

/// Longest silence before a keep-alive comment: well under a proxy's idle timeout (nginx: 60 s),
/// and short enough that a closed client's slot is freed within two of them (the server learns
/// of the close when a write fails).
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// Event streams served at once.
pub const MAX_CLIENTS: usize = 32;

/// Event streams served at once to one peer address, so that one client (or one page opened
/// many times) cannot take every slot.
pub const MAX_CLIENTS_PER_PEER: usize = 8;

/// The open event streams by peer address, shared by the server's workers.
#[derive(Debug, Clone, Default)]
pub struct EventClients(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One open stream's place among the [`EventClients`]; freed when the stream is dropped.
struct ClientSlot {
    clients: EventClients,
    peer: IpAddr,
}

impl EventClients {
    /// Streams open now.
    pub fn open(&self) -> usize {
        self.lock().values().sum()
    }

    /// A place for a stream to `peer`, unless all [`MAX_CLIENTS`] or the peer's
    /// [`MAX_CLIENTS_PER_PEER`] are taken (the answer says which).
    fn take(&self, peer: IpAddr) -> Result<ClientSlot, String> {
        let mut open = self.lock();
        if open.values().sum::<usize>() >= MAX_CLIENTS {
            return Err(format!(
                "{MAX_CLIENTS} event streams are open already; poll /api/refresh/ instead"
            ));
        }
        let of_peer = open.entry(peer).or_default();
        if *of_peer >= MAX_CLIENTS_PER_PEER {
            return Err(format!(
                "{MAX_CLIENTS_PER_PEER} event streams are open to {peer} already; close one or \
                 poll /api/refresh/ instead"
            ));
        }
        *of_peer += 1;
        Ok(ClientSlot {
            clients: self.clone(),
            peer,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.clients.lock();
        if let Some(n) = open.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.peer);
            }
        }
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource(["/events/", "/events"]).route(web::get().to(events)));
}

async fn events(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<CursorQuery>,
) -> Result<HttpResponse, ApiError> {
    let resumed = req
        .headers()
        .get("Last-Event-ID")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<Cursor>().ok());
    let cursor = match query.parse()?.or(resumed) {
        Some(c) => c,
        None => {
            let (sequence_id, film_id) = state.records.latest_ids();
            Cursor {
                sequence_id,
                film_id,
            }
        }
    };
    if req.extensions().contains::<crate::guard::HeadRequest>() {
        // The headers a stream would have; no stream, so no slot.
        return Ok(stream_headers(&mut HttpResponse::Ok()).finish());
    }
    let peer = req
        .peer_addr()
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    let slot = state.event_clients.take(peer).map_err(|message| {
        ApiError::new(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, message)
    })?;
    let signals = [
        state.records.change_signal().watch(),
        state.queue.changes.watch(),
        state.links.change_signal().watch(),
    ];
    let tail = Tail {
        _slot: slot,
        signals,
        last_look: None,
        caught_up: false,
        state: state.get_ref().clone(),
        cursor,
        last_queue: None,
        last_links: None,
        alarm_cursor: None,
        alarms_behind: false,
        last_sent: Instant::now(),
        greeted: false,
        failing: false,
    };
    let stream = futures_util::stream::unfold(tail, |mut tail| async move {
        let chunk = tail.next_chunk().await;
        Some((Ok::<_, actix_web::Error>(chunk), tail))
    });
    Ok(stream_headers(&mut HttpResponse::Ok()).streaming(stream))
}

/// The headers of an event stream.
fn stream_headers(res: &mut HttpResponseBuilder) -> &mut HttpResponseBuilder {
    res.insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
}

/// One client's position in the stream.
struct Tail {
    /// Holds the client's place among the [`MAX_CLIENTS`].
    _slot: ClientSlot,
    /// Change signals of the records store, the queue and the links.
    signals: [watch::Receiver<u64>; 3],
    /// When the stream last looked; `None` before the first look, which is at once.
    last_look: Option<Instant>,
    /// The first look (one catch-up page at most) is done.
    caught_up: bool,
    state: AppState,
    /// The highest ids sent to this client.
    cursor: Cursor,
    /// Queue stats last sent, to notice a change.
    last_queue: Option<QueueStats>,
    /// Link statuses last sent, to notice a change.
    last_links: Option<Vec<LinkStatus>>,
    /// The newest SPC alarm sent (or there when the stream opened); `None` before the first
    /// look.
    alarm_cursor: Option<i64>,
    /// The last look pushed a full page of alarms: more may wait (looked for again soon).
    alarms_behind: bool,
    /// When anything (event or comment) was last sent.
    last_sent: Instant,
    /// Whether the opening comment went out.
    greeted: bool,
    /// Whether the last look failed (logged once per failure run).
    failing: bool,
}

impl Tail {
    /// Waits until there is something to send and returns it.
    async fn next_chunk(&mut self) -> Bytes {
        if !self.greeted {
            self.greeted = true;
            // Sent at once so the client sees the stream open; `retry` sets its reconnect delay.
            return Bytes::from_static(b"retry: 2000\n: connected\n\n");
        }
        loop {
            if let Some(last_look) = self.last_look {
                let busy = self.busy();
                let keep_alive_due = KEEP_ALIVE.saturating_sub(self.last_sent.elapsed());
                let quiet_for = if busy {
                    BUSY_REFRESH.min(keep_alive_due)
                } else {
                    keep_alive_due
                };
                let signalled = tokio::time::timeout(quiet_for, self.any_change())
                    .await
                    .is_ok();
                if !signalled && !busy {
                    // Idle and nothing changed: nothing to look at, only the keep-alive is due.
                    self.last_sent = Instant::now();
                    return Bytes::from_static(b": keep-alive\n\n");
                }
                tokio::time::sleep_until((last_look + MIN_INTERVAL).into()).await;
            }
            self.last_look = Some(Instant::now());
            if let Some(chunk) = self.look().await {
                self.last_sent = Instant::now();
                return chunk;
            }
            if self.last_sent.elapsed() >= KEEP_ALIVE {
                self.last_sent = Instant::now();
                return Bytes::from_static(b": keep-alive\n\n");
            }
        }
    }

    /// Resolves at the next change signal (a signal whose sender is gone never resolves).
    async fn any_change(&mut self) {
        let waits = self.signals.iter_mut().map(|signal| {
            Box::pin(async move {
                if signal.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            })
        });
        futures_util::future::select_all(waits).await;
    }

    /// Whether the stats last sent show work waiting or moving (their ages and rates change
    /// without a signal).
    fn busy(&self) -> bool {
        self.alarms_behind
            || self.last_queue.as_ref().is_some_and(|q| {
                q.pending + q.in_flight > 0 || q.read_rate_per_s > 0.0 || q.post_rate_per_s > 0.0
            })
    }

    /// An event when anything changed since the last one, else `None`.
    async fn look(&mut self) -> Option<Bytes> {
        let (top_seq, top_film) = self.state.records.latest_ids();
        let rows_new = top_seq > self.cursor.sequence_id || top_film > self.cursor.film_id;
        let (sequences, films) = if rows_new {
            let after = Some((self.cursor.sequence_id, self.cursor.film_id));
            match self.state.records.changes(after, CATCH_UP_LIMIT).await {
                Ok(rows) => {
                    self.failing = false;
                    rows
                }
                Err(e) => {
                    if !self.failing {
                        log::warn!("events: cannot read new records: {e}");
                    }
                    self.failing = true;
                    return Some(sse_event(
                        "error",
                        &serde_json::json!({"error": e.to_string()}).to_string(),
                        None,
                    ));
                }
            }
        } else {
            (Vec::new(), Vec::new())
        };
        let (queue, queue_error) = queue_stats(&self.state).await;
        let alarms = self.new_alarms(queue.as_ref()).await;
        let links = self.state.links.snapshot();
        let changed = !sequences.is_empty()
            || !films.is_empty()
            || self.last_queue != queue
            || self.last_links.as_ref() != Some(&links);
        if !changed {
            return alarms;
        }
        self.cursor = next_cursor(Some(self.cursor), &sequences, &films);
        if !std::mem::replace(&mut self.caught_up, true) {
            // One catch-up page; what lies between it and the newest rows is skipped.
            self.cursor = Cursor {
                sequence_id: self.cursor.sequence_id.max(top_seq),
                film_id: self.cursor.film_id.max(top_film),
            };
        }
        self.last_queue = queue.clone();
        self.last_links = Some(links.clone());
        let cursor = self.cursor.to_string();
        // A stream's catch-up page skips what lies beyond it (see above): never `more`.
        let body = Refresh {
            cursor: cursor.clone(),
            sequences,
            films,
            queue,
            links,
            queue_error,
            more: false,
        };
        let data =
            serde_json::to_string(&body).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
        let refresh = sse_event("refresh", &data, Some(&cursor));
        Some(match alarms {
            Some(alarms) => [alarms, refresh].concat().into(),
            None => refresh,
        })
    }

    /// `event: alarm` for each SPC alarm judged since the last look (none at the first look:
    /// a stream pushes what happens while it is open; `/api/alarms/` lists the rest).
    async fn new_alarms(&mut self, queue: Option<&QueueStats>) -> Option<Bytes> {
        let newest = queue?.last_alarm_id;
        let after = *self.alarm_cursor.get_or_insert(newest);
        if newest <= after {
            self.alarms_behind = false;
            return None;
        }
        let query = ListAlarms {
            after_id: Some(after),
            limit: ALARMS_PER_LOOK,
            ..ListAlarms::default()
        };
        let page = match self.state.queue.alarms.send(query).await {
            Ok(Ok(page)) => page,
            _ => return None,
        };
        self.alarms_behind = page.results.len() as u64 == ALARMS_PER_LOOK;
        let mut out = Vec::new();
        for alarm in &page.results {
            self.alarm_cursor = Some(alarm.id);
            let data = serde_json::to_string(alarm).unwrap_or_default();
            out.extend_from_slice(&sse_event("alarm", &data, None));
        }
        (!out.is_empty()).then(|| out.into())
    }
}

/// Alarms pushed per look at most (a burst beyond it follows at the next looks, which come
/// every [`BUSY_REFRESH`] until it is all sent).
const ALARMS_PER_LOOK: u64 = 100;

/// One SSE event; `data` must be a single line (compact JSON is).
pub fn sse_event(event: &str, data: &str, id: Option<&str>) -> Bytes {
    let mut out = String::with_capacity(data.len() + 48);
    out.push_str("event: ");
    out.push_str(event);
    out.push('\n');
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(id);
        out.push('\n');
    }
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_event_frames_each_data_line() {
        let ev = sse_event("refresh", "{\"a\":1}\n{\"b\":2}", Some("s1.f2"));
        assert_eq!(
            &ev[..],
            b"event: refresh\nid: s1.f2\ndata: {\"a\":1}\ndata: {\"b\":2}\n\n"
        );
    }
}
