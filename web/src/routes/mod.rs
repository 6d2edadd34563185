//! The HTTP routes, one module per area. Each holds its handlers and query types; answers are
//! [`crate::views`] (or rows), errors [`crate::errors::ApiError`].
//!
//! - `records` — the DRF-shaped records service under `/api/sequences/` and `/api/films/`.
//! - `lots` — the lot report: `/api/sequences/{id}/films.csv` and the page `/lots/{id}`.
//! - `queue` — queue inspection and control under `/api/queue/`.
//! - `links` — serial links under `/api/links/`.
//! - `spc` — SPC charts, points and lots under `/api/spc/`, alarms under `/api/alarms/`.
//! - `refresh` — `/api/refresh/`, everything new since a cursor.
//! - [`events`] — `/api/events/`, the same pushed as server-sent events.
//! - `ops` — `/healthz`, `/readyz`, `/metrics`.
//! - `/api/session` — a read session for the dashboard (`crate::auth`).
//! - `dashboard` — `/` and `/assets/*`.

pub(crate) mod dashboard;
pub mod events;
mod links;
pub(crate) mod lots;
pub(crate) mod ops;
mod queue;
mod records;
mod refresh;
mod spc;

use crate::errors::json_error;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, Resource, web};

/// Every `/api` route (mounted under the `/api` scope with the token check).
pub fn configure_api(cfg: &mut web::ServiceConfig) {
    records::configure(cfg);
    lots::configure_api(cfg);
    queue::configure(cfg);
    links::configure(cfg);
    refresh::configure(cfg);
    spc::configure(cfg);
    events::configure(cfg);
    cfg.service(
        resource(["/session/", "/session"]).route(web::post().to(crate::auth::open_session)),
    );
}

/// A resource at several paths (with and without the trailing slash, as DRF clients vary)
/// that answers a method it does not serve with a JSON 405.
fn resource<const N: usize>(paths: [&'static str; N]) -> Resource {
    web::resource(paths.to_vec()).default_service(web::to(method_not_allowed))
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("method {} not allowed on {}", req.method(), req.path()),
        None,
    )
}
