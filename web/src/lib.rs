//! filmgate's actix-web frontend.
//!
//! # Layout
//!
//! - [`config`] — the `[web]` section.
//! - [`store`] — the embedded records service's store (DRF-shaped films and sequences) on
//!   SQLite or PostgreSQL, one handle ([`RecordsStore`]) over both, with a group-committing
//!   writer; `store/input.rs` validates bodies as DRF would.
//! - [`routes`] — one module per area: `records` (`/api/sequences/`, `/api/films/`), `queue`
//!   (inspection and control, and the JSON view of a queue item), `links`, `refresh`,
//!   [`routes::events`] (server-sent events, woken by change signals), `ops` (`/healthz`,
//!   `/readyz`, `/metrics`), `spc` (`/api/spc/`, `/api/alarms/`), `lots` (the lot report
//!   `/lots/{id}` and `/api/sequences/{id}/films.csv`), `dashboard`.
//! - [`errors`] — the one [`errors::ApiError`] every route answers with (what each lower error
//!   means over HTTP) and the extractor configs (body caps, bad JSON, bad query).
//! - [`views`] — the JSON shapes answered (a queue item, a refresh, a page, a batch's results).
//! - [`live`] — what the live views show: everything new since a cursor, shared by `refresh`,
//!   the event stream and `ops`.
//! - `pagination` — DRF limit/offset `next` and `previous` links.
//! - `auth` — the API token check for non-GET `/api` requests; `guard` — Host allow-list,
//!   cross-site refusal and security headers on every request; [`body_timeout`] — a request
//!   body that stalls is answered 408 and its connection closed.
//! - `assets/`: the dashboard (HTML, CSS, JS), embedded in the binary.
//!
//! # A request's way
//!
//! Requests enter through [`server`] (guard, then the token check under `/api`). A film posted
//! by a gateway's poster is validated, handed to the records store's writer, committed in a
//! group with other requests and answered 201 (or 200 with the stored row when its uid is
//! known). The inspection routes talk to the queue through
//! [`filmgate_actors::queue::QueueClient`] and read the [`filmgate_actors::links::LinkRegistry`];
//! the dashboard follows all of it through `/api/events/`.

pub mod auth;
pub mod body_timeout;
pub mod config;
pub mod errors;
mod guard;
pub mod live;
mod pagination;
pub mod routes;
pub mod store;
pub mod views;

pub use config::WebConfig;
pub use store::{RecordsError, RecordsStore};

/// Log targets of lines that can repeat at request rate (a database down fails every post
/// alike): the binary's logger lets one through per interval. Named here, not taken from
/// module paths, so moving a module cannot unhook them.
pub mod log_targets {
    /// A records-store failure (a group commit, a read).
    pub const RECORDS_STORE: &str = "filmgate::records_store";
    /// A request answered 503 because something on this side failed (a store, an actor).
    pub const STORE_UNAVAILABLE: &str = "filmgate::store_unavailable";
}

use actix_web::dev::Server;
use actix_web::middleware::{Condition, Logger, from_fn};
use actix_web::{App, HttpServer, web};
use filmgate_actors::links::LinkRegistry;
use filmgate_actors::metrics::SharedPostMetrics;
use filmgate_actors::queue::QueueClient;
use std::net::TcpListener;

/// HTTP worker threads: the handlers are short (the store and the queue do their work on
/// threads of their own), and the machine is shared with the serial links and the poster.
pub const WORKERS: usize = 2;

/// Seconds a graceful stop waits for open connections (an SSE stream never ends by itself,
/// so this is what every stop with a dashboard open waits).
pub const SHUTDOWN_TIMEOUT_S: u64 = 1;

/// Longest a connection's sent data may wait unacknowledged (a client that stopped reading
/// an event stream, a pulled cable) before the kernel ends the connection (`TCP_USER_TIMEOUT`)
/// and with it the request, freeing its event-stream slot.
pub const STALLED_CONNECTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Access log line: client, request line, status, size, duration. Deliberately no headers,
/// so the `Authorization` token never reaches the log.
const LOG_FORMAT: &str = r#"%a "%r" %s %b %Dms"#;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The embedded records service's store.
    pub records: RecordsStore,
    /// The queue's inspection and control mailboxes.
    pub queue: QueueClient,
    /// Status and restart handles of the serial links.
    pub links: LinkRegistry,
    /// The poster's counters and latency histogram, for `/metrics`.
    pub post_metrics: SharedPostMetrics,
    /// When set, non-GET `/api` requests need it as a Bearer or Token credential.
    pub token: Option<filmgate_actors::token::Token>,
    /// `Host` names served besides loopback and the bound address (`web.allowed_hosts`).
    pub allowed_hosts: Vec<String>,
    /// Open `/api/events/` streams (capped).
    pub event_clients: routes::events::EventClients,
    /// How long a request body may stall and take in all.
    pub body_timeouts: body_timeout::BodyTimeouts,
    /// `web.protect_reads`: `/api` reads and `/metrics` need the token (or a session).
    pub protect_reads: bool,
    /// Read sessions opened with `POST /api/session`.
    pub sessions: auth::Sessions,
    /// `web.access_log`: one INFO line per request (off by default: a line per film posted
    /// would drown what matters in a journal kept for months).
    pub access_log: bool,
    /// Each link's configured field names in order (`serial.record.fields`): the columns of
    /// a lot's CSV.
    pub record_fields: std::collections::HashMap<String, Vec<String>>,
}

/// Builds the server on an already bound listener (port 0 in tests; read the port back from
/// the listener). The caller runs or spawns the returned [`Server`] and keeps its handle to
/// stop it.
pub fn server(listener: TcpListener, state: AppState) -> std::io::Result<Server> {
    let hosts = guard::AllowedHosts::new(&state.allowed_hosts);
    let body_timeouts = state.body_timeouts;
    let access_log = state.access_log;
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(hosts.clone())
            .app_data(body_timeouts)
            .app_data(errors::json_config(errors::MAX_JSON_BYTES))
            .app_data(errors::query_config())
            .app_data(errors::path_config())
            .wrap(Condition::new(access_log, Logger::new(LOG_FORMAT)))
            .wrap(from_fn(guard::guard))
            .wrap(from_fn(body_timeout::limit_body))
            .service(
                web::scope("/api")
                    .wrap(from_fn(auth::require_token))
                    .configure(routes::configure_api),
            )
            .configure(routes::ops::configure)
            .configure(routes::dashboard::configure)
            .configure(routes::lots::configure_pages)
            .default_service(web::to(errors::not_found))
    })
    .on_connect(|connection, _| {
        if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
            let ms = STALLED_CONNECTION_TIMEOUT.as_millis() as u32;
            if let Err(e) =
                nix::sys::socket::setsockopt(tcp, nix::sys::socket::sockopt::TcpUserTimeout, &ms)
            {
                log::debug!("cannot set TCP_USER_TIMEOUT on a connection: {e}");
            }
        }
    })
    .workers(WORKERS)
    .shutdown_timeout(SHUTDOWN_TIMEOUT_S)
    // The application owns SIGINT/SIGTERM: it stops the links and drains the poster before
    // it stops this server (see filmgate's startup).
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}
