//! SPC over HTTP (SPEC §10): the watched charts, a lot's points, the lot picker, a reset, and
//! the alarms with their acknowledgement. Reads are answered from the queue actor, which judges
//! the films (`filmgate_actors::spc`); `POST`s need the API token like every other write.

use super::queue::QueueRouteError;
use crate::AppState;
use crate::errors::ApiError;
use crate::pagination::{PageBody, absolute_path, effective_limit, links};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use filmgate_actors::messages::{
    AckAlarm, GetSpc, GetSpcLots, GetSpcPoints, ListAlarms, LotFilter, ResetSpc,
};
use serde::Deserialize;

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

fn not_watched(link: &str, field: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("{field} of link {link} is not watched (no [serial.spc.{field}] for it)"),
    )
}

async fn charts(state: web::Data<AppState>) -> Result<HttpResponse, QueueRouteError> {
    let results = state.queue.spc.send(GetSpc { chart: None }).await??;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "results": results })))
}

async fn chart(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, actix_web::Error> {
    let (link, field) = path.into_inner();
    let found = state
        .queue
        .spc
        .send(GetSpc {
            chart: Some((link.clone(), field.clone())),
        })
        .await
        .map_err(QueueRouteError::from)?
        .map_err(QueueRouteError::from)?;
    match found.into_iter().next() {
        Some(view) => Ok(HttpResponse::Ok().json(view)),
        None => Err(not_watched(&link, &field).into()),
    }
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
    let found = state
        .queue
        .spc_points
        .send(GetSpcPoints {
            link: link.clone(),
            field: field.clone(),
            lot,
            last: query.last,
        })
        .await
        .map_err(QueueRouteError::from)?
        .map_err(QueueRouteError::from)?;
    match found {
        Some(points) => Ok(HttpResponse::Ok().json(points)),
        None => Err(not_watched(&link, &field).into()),
    }
}

async fn lots(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, actix_web::Error> {
    let (link, field) = path.into_inner();
    let found = state
        .queue
        .spc_lots
        .send(GetSpcLots {
            link: link.clone(),
            field: field.clone(),
        })
        .await
        .map_err(QueueRouteError::from)?
        .map_err(QueueRouteError::from)?;
    match found {
        Some(results) => Ok(HttpResponse::Ok().json(serde_json::json!({ "results": results }))),
        None => Err(not_watched(&link, &field).into()),
    }
}

async fn reset(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, actix_web::Error> {
    let (link, field) = path.into_inner();
    let found = state
        .queue
        .spc_reset
        .send(ResetSpc {
            link: link.clone(),
            field: field.clone(),
        })
        .await
        .map_err(QueueRouteError::from)?
        .map_err(QueueRouteError::from)?;
    match found {
        Some(view) => Ok(HttpResponse::Ok().json(view)),
        None => Err(not_watched(&link, &field).into()),
    }
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
) -> Result<HttpResponse, QueueRouteError> {
    let acknowledged = match query.acknowledged.as_deref() {
        None | Some("") => None,
        Some("true" | "True" | "1") => Some(true),
        Some("false" | "False" | "0") => Some(false),
        Some(other) => {
            return Err(QueueRouteError::BadQuery(format!(
                "acknowledged must be true or false, not {other:?}"
            )));
        }
    };
    let limit = effective_limit(query.limit).map_err(QueueRouteError::BadQuery)?;
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
    let (next, previous) = links(
        &absolute_path(&req),
        req.query_string(),
        limit,
        offset,
        page.count,
    );
    Ok(HttpResponse::Ok().json(PageBody {
        count: page.count,
        next,
        previous,
        results: page.results,
    }))
}

async fn ack(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, actix_web::Error> {
    let id = id.into_inner();
    let found = state
        .queue
        .ack_alarm
        .send(AckAlarm { id })
        .await
        .map_err(QueueRouteError::from)?
        .map_err(QueueRouteError::from)?;
    match found {
        Some(alarm) => Ok(HttpResponse::Ok().json(alarm)),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, format!("no alarm {id}")).into()),
    }
}
