//! The records service, shaped like Django REST Framework: create (idempotent by uid), batch
//! create, list with limit/offset pagination and filters, and detail, for sequences and films.
//! Bodies enter as JSON, become [`crate::store`] rows, and leave as DRF-shaped JSON.

use crate::AppState;
use crate::errors::{ApiError, MAX_BATCH_JSON_BYTES, MAX_JSON_BYTES};
use crate::pagination::{effective_limit, page_response};
use crate::store::{FieldErrors, ListFilter, RecordsError, Saved, input};
use crate::views::{BatchBody, BatchResult};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most films in one batch post (README, HTTP API).
pub const MAX_BATCH_ITEMS: usize = 1000;

/// Header a client may send the uid in when the body has none.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        super::resource(["/sequences/", "/sequences"])
            .route(web::get().to(list_sequences))
            .route(web::post().to(create_sequence)),
    )
    .service(
        super::resource(["/sequences/{id}/", "/sequences/{id}"]).route(web::get().to(get_sequence)),
    )
    .service(
        super::resource(["/films/batch/", "/films/batch"])
            .route(web::post().to(create_films_batch)),
    )
    .service(
        super::resource(["/films/", "/films"])
            .route(web::get().to(list_films))
            .route(web::post().to(create_film)),
    )
    .service(super::resource(["/films/{id}/", "/films/{id}"]).route(web::get().to(get_film)));
}

/// Query of the list endpoints.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Page size (default 100, at most 1000).
    pub limit: Option<u64>,
    /// Rows to skip.
    pub offset: Option<u64>,
    /// Only rows with a higher id, ascending.
    pub since_id: Option<i64>,
    /// Only rows from this source.
    pub source: Option<String>,
    /// Only films of this sequence id.
    pub sequence: Option<i64>,
}

async fn create_sequence(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let new = record_body(&req, payload, "sequence", input::parse_sequence).await?;
    let saved = state.records.create_sequence(new).await?;
    Ok(saved_response(&saved))
}

async fn create_film(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let new = record_body(&req, payload, "film", input::parse_film).await?;
    let mut results = state.records.create_films(vec![new]).await?;
    let saved = results
        .pop()
        .ok_or_else(|| RecordsError::Store("the writer answered no result".into()))??;
    Ok(saved_response(&saved))
}

/// Stores what it can of an array of at most [`MAX_BATCH_ITEMS`] films and answers per item,
/// in order; one bad item never fails the others. The body is read under a cap and parsed on a
/// blocking thread, stopping at the first item past the cap: no body can cost more than its
/// bytes' worth of memory or hold an HTTP worker.
async fn create_films_batch(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    require_json(&req)?;
    let body = read_capped(payload, MAX_BATCH_JSON_BYTES).await?;
    let items = web::block(move || input::parse_batch(&body, MAX_BATCH_ITEMS))
        .await
        .map_err(|e| RecordsError::Store(format!("batch parsing failed: {e}")))?
        .map_err(|e| match e {
            input::BatchError::TooMany => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("a batch holds at most {MAX_BATCH_ITEMS} films; split it"),
            ),
            input::BatchError::Invalid(message) => ApiError::bad_request(message),
        })?;
    let mut results: Vec<Option<BatchResult>> = Vec::with_capacity(items.len());
    let mut valid = Vec::new();
    for item in items {
        let hint = input::uid_hint(&item);
        match input::parse_film(item, None) {
            Ok(film) => {
                valid.push(film);
                results.push(None);
            }
            Err(errors) => results.push(Some(BatchResult {
                uid: hint,
                status: 400,
                id: None,
                error: Some(errors.summary("film")),
            })),
        }
    }
    let uids: Vec<String> = valid.iter().map(|f| f.uid.clone()).collect();
    let stored = state.records.create_films(valid).await?;
    let mut stored = uids.into_iter().zip(stored);
    let results = results
        .into_iter()
        .map(|slot| {
            slot.unwrap_or_else(|| match stored.next() {
                Some((uid, Ok(saved))) => BatchResult {
                    uid: Some(uid),
                    status: if saved.is_created() { 201 } else { 200 },
                    id: Some(saved.row().id),
                    error: None,
                },
                Some((uid, Err(rejected))) => BatchResult {
                    uid: Some(uid),
                    status: 400,
                    id: None,
                    error: Some(rejected.to_string()),
                },
                None => BatchResult {
                    uid: None,
                    status: 503,
                    id: None,
                    error: Some("the store answered fewer results than items".into()),
                },
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(BatchBody { results }))
}

async fn list_films(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = list_filter(&query)?;
    let page = state.records.list_films(filter.clone()).await?;
    Ok(page_response(
        &req,
        filter.limit,
        filter.offset,
        page.count,
        page.results,
    ))
}

async fn list_sequences(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = list_filter(&query)?;
    let page = state.records.list_sequences(filter.clone()).await?;
    Ok(page_response(
        &req,
        filter.limit,
        filter.offset,
        page.count,
        page.results,
    ))
}

async fn get_film(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    match state.records.film(id).await? {
        Some(row) => Ok(HttpResponse::Ok().json(row)),
        None => Err(ApiError::not_found(format!("no film with id {id}"))),
    }
}

async fn get_sequence(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    match state.records.sequence(id).await? {
        Some(row) => Ok(HttpResponse::Ok().json(row)),
        None => Err(ApiError::not_found(format!("no sequence with id {id}"))),
    }
}

fn idempotency_key(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
}

fn saved_response<T: Serialize>(saved: &Saved<T>) -> HttpResponse {
    let status = if saved.is_created() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    HttpResponse::build(status).json(saved.row())
}

fn list_filter(query: &ListQuery) -> Result<ListFilter, ApiError> {
    let limit = effective_limit(query.limit).map_err(ApiError::bad_request)?;
    Ok(ListFilter {
        source: query.source.clone().filter(|s| !s.is_empty()),
        sequence: query.sequence,
        since_id: query.since_id,
        limit,
        offset: query.offset.unwrap_or(0),
    })
}

/// One record (`what`) from a JSON body, parsed by `parse` with the request's
/// `Idempotency-Key`; its field errors answer 400 DRF-style.
async fn record_body<T: Send + 'static>(
    req: &HttpRequest,
    payload: web::Payload,
    what: &'static str,
    parse: fn(Value, Option<&str>) -> Result<T, FieldErrors>,
) -> Result<T, ApiError> {
    let key = idempotency_key(req).map(str::to_owned);
    json_body(req, payload, MAX_JSON_BYTES, move |body| {
        parse(body, key.as_deref()).map_err(|errors| ApiError::invalid(what, &errors))
    })
    .await
}

/// A JSON object body (`Content-Type: application/json`, at most `cap` bytes) handed to
/// `parse` on a blocking thread: no body is parsed on an HTTP worker's event loop.
async fn json_body<T: Send + 'static>(
    req: &HttpRequest,
    payload: web::Payload,
    cap: usize,
    parse: impl FnOnce(Value) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    require_json(req)?;
    let body = read_capped(payload, cap).await?;
    web::block(move || {
        let value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
        parse(value)
    })
    .await
    .map_err(|e| RecordsError::Store(format!("body parsing failed: {e}")))?
}

/// A 400 unless the body is declared JSON (`application/json` or a `+json` type).
fn require_json(req: &HttpRequest) -> Result<(), ApiError> {
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "expected a JSON body with Content-Type: application/json",
        ))
    }
}

/// The request body, at most `cap` bytes (else a 413 before more is read).
async fn read_capped(mut payload: web::Payload, cap: usize) -> Result<bytes::Bytes, ApiError> {
    use futures_util::StreamExt;
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > cap {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body is larger than the limit of {cap} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
