//! SPC over HTTP (README "Quality"): the watched charts, a lot's points, the lot picker, a reset, and
//! the alarms with their acknowledgement. Reads are answered from the queue actor, which judges
//! the films (`filmgate_actors::spc`); `POST`s need the API token like every other write.

use crate::AppState;
use crate::errors::ApiError;
use crate::pagination::{effective_limit, page_response};
use actix::MailboxError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use filmgate_actors::messages::{
    AckAlarm, GetSpc, GetSpcLots, GetSpcPoints, ListAlarms, LotFilter, ResetSpc,
};
use filmgate_actors::queue::QueueError;
use serde::{Deserialize, Serialize};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource(["/spc/", "/spc"]).route(web::get().to(charts)))
        .service(
            super::resource(["/spc/{link}/{field}/points/", "/spc/{link}/{field}/points"])
                .route(web::get().to(points)),
        )
        .service(
            super::resource(["/spc/{link}/{field}/lots/", "/spc/{link}/{field}/lots"])
                .route(web::get().to(lots)),
        )
        .service(
            super::resource(["/spc/{link}/{field}/reset", "/spc/{link}/{field}/reset/"])
                .route(web::post().to(reset)),
        )
        .service(
            super::resource(["/spc/{link}/{field}/", "/spc/{link}/{field}"])
                .route(web::get().to(chart)),
        )
        .service(super::resource(["/alarms/", "/alarms"]).route(web::get().to(alarms)))
        .service(
            super::resource(["/alarms/{id}/ack", "/alarms/{id}/ack/"]).route(web::post().to(ack)),
        );
}

/// The queue's answer, its mailbox and store errors as the route's.
fn answer<T>(sent: Result<Result<T, QueueError>, MailboxError>) -> Result<T, ApiError> {
    Ok(sent??)
}

/// A chart's answer as JSON, or 404 naming the chart when it is not watched.
fn watched<T: Serialize>(
    found: Option<T>,
    link: &str,
    field: &str,
) -> Result<HttpResponse, actix_web::Error> {
    match found {
        Some(body) => Ok(HttpResponse::Ok().json(body)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{field} of link {link} is not watched (no [serial.spc.{field}] for it)"),
        )
        .into()),
    }
}

async fn charts(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let results = state.queue.spc.send(GetSpc { chart: None }).await??;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "results": results })))
}

async fn chart(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, actix_web::Error> {
    let (link, field) = path.into_inner();
    let chart = Some((link.clone(), field.clone()));
    let found = answer(state.queue.spc.send(GetSpc { chart }).await)?;
    watched(found.into_iter().next(), &link, &field)
}

/// Query of the points: `?sequence=ID` or `?lot=KEY`; neither: the newest lot.
#[derive(Debug, Deserialize)]
struct PointsQuery {
    sequence: Option<String>,
    lot: Option<String>,
    /// Only the newest this many points.
    last: Option<u64>,
}

async fn points(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    query: web::Query<PointsQuery>,
) -> Result<HttpResponse, actix_web::Error> {
    let (link, field) = path.into_inner();
    let query = query.into_inner();
    let lot = match (query.sequence, query.lot) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("give sequence or lot, not both").into());
        }
        (Some(id), None) => LotFilter::Sequence(id),
        (None, Some(key)) => LotFilter::Key(key),
        (None, None) => LotFilter::Newest,
    };
    let ask = GetSpcPoints {
        link: link.clone(),
        field: field.clone(),
        lot,
        last: query.last,
    };
    watched(
        answer(state.queue.spc_points.send(ask).await)?,
        &link,
        &field,
    )
}

async fn lots(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, actix_web::Error> {
    let (link, field) = path.into_inner();
    let ask = GetSpcLots {
        link: link.clone(),
        field: field.clone(),
    };
    let found = answer(state.queue.spc_lots.send(ask).await)?;
    let body = found.map(|results| serde_json::json!({ "results": results }));
    watched(body, &link, &field)
}

async fn reset(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, actix_web::Error> {
    let (link, field) = path.into_inner();
    let ask = ResetSpc {
        link: link.clone(),
        field: field.clone(),
    };
    watched(
        answer(state.queue.spc_reset.send(ask).await)?,
        &link,
        &field,
    )
}

/// Query of `GET /api/alarms/`.
#[derive(Debug, Deserialize)]
struct AlarmsQuery {
    acknowledged: Option<String>,
    sequence: Option<String>,
    link: Option<String>,
    field: Option<String>,
    limit: Option<u64>,
    offset: Option<u64>,
}

async fn alarms(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<AlarmsQuery>,
) -> Result<HttpResponse, ApiError> {
    let acknowledged = match query.acknowledged.as_deref() {
        None | Some("") => None,
        Some("true" | "True" | "1") => Some(true),
        Some("false" | "False" | "0") => Some(false),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "acknowledged must be true or false, not {other:?}"
            )));
        }
    };
    let limit = effective_limit(query.limit).map_err(ApiError::bad_request)?;
    let offset = query.offset.unwrap_or(0);
    let page = state
        .queue
        .alarms
        .send(ListAlarms {
            acknowledged,
            sequence: query.sequence.clone().filter(|s| !s.is_empty()),
            link: query.link.clone().filter(|s| !s.is_empty()),
            field: query.field.clone().filter(|s| !s.is_empty()),
            after_id: None,
            offset,
            limit,
        })
        .await??;
    Ok(page_response(&req, limit, offset, page.count, page.results))
}

async fn ack(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, actix_web::Error> {
    let id = id.into_inner();
    match answer(state.queue.ack_alarm.send(AckAlarm { id }).await)? {
        Some(alarm) => Ok(HttpResponse::Ok().json(alarm)),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, format!("no alarm {id}")).into()),
    }
}
