//! The lot report: `GET /api/sequences/{id}/films.csv` (the lot's films as CSV, from the
//! records service) and the printable page `/lots/{id}` (charts, capability and alarms of the
//! lot, drawn by `web/assets/lot.js` from the SPC API).

use crate::AppState;
use crate::errors::ApiError;
use crate::store::{FilmRow, ListFilter};
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use bytes::Bytes;
use serde_json::Value;

const LOT_HTML: &str = include_str!("../../assets/lot.html");
/// Films read from the store per step of the CSV stream.
const FILMS_PER_READ: u64 = 1000;

pub fn configure_api(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource(["/sequences/{id}/films.csv"]).route(web::get().to(films_csv)));
}

pub fn configure_pages(cfg: &mut web::ServiceConfig) {
    cfg.route("/lots/{id}", web::get().to(lot_page))
        .route("/lots/{id}/", web::get().to(lot_page));
}

async fn lot_page(_id: web::Path<String>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(LOT_HTML)
}

/// The lot's films as CSV: a header of the link's configured fields in order (for a format
/// without names, the fields the lot's first film has), then `uid,received_at,raw`; a row per
/// film in the order they were stored. Streamed a page at a time, so a long lot never sits in
/// memory whole.
async fn films_csv(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let Some(sequence) = state.records.sequence(id).await? else {
        return Err(ApiError::not_found(format!("no sequence with id {id}")));
    };
    // With `since_id` the store lists in ascending id order: the lot's films as stored.
    let first = state.records.list_films(films_of(id, 0)).await?.results;
    let fields = match state.record_fields.get(&sequence.source) {
        Some(fields) if !fields.is_empty() => fields.clone(),
        _ => first
            .first()
            .and_then(|f| f.data.as_object())
            .map(|data| data.keys().cloned().collect())
            .unwrap_or_default(),
    };
    let mut header_line = fields.iter().map(|f| csv_cell(f)).collect::<Vec<_>>();
    header_line.extend(["uid", "received_at", "raw"].map(String::from));
    let head = Bytes::from(header_line.join(",") + "\r\n");
    let records = state.records.clone();
    // The page in hand becomes rows; a full page means another may follow. A failed read ends
    // the body with an error, never as if it were whole.
    let pages = futures_util::stream::try_unfold(first, move |page| {
        let (records, fields) = (records.clone(), fields.clone());
        async move {
            let Some(last) = page.last().map(|f| f.id) else {
                return Ok(None);
            };
            let body = Bytes::from(rows(&fields, &page));
            let next = if page.len() as u64 == FILMS_PER_READ {
                let next = records.list_films(films_of(id, last)).await.map_err(|e| {
                    log::warn!("films.csv of sequence {id}: reading films failed: {e}");
                    actix_web::error::ErrorServiceUnavailable(e.to_string())
                })?;
                next.results
            } else {
                Vec::new()
            };
            Ok::<_, actix_web::Error>(Some((body, next)))
        }
    });
    let body = futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok::<_, actix_web::Error>(head) }),
        pages,
    );
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"sequence-{id}-films.csv\""),
        ))
        .streaming(body))
}

/// The next [`FILMS_PER_READ`] films of `sequence` after id `since_id`, ascending.
fn films_of(sequence: i64, since_id: i64) -> ListFilter {
    ListFilter {
        sequence: Some(sequence),
        since_id: Some(since_id),
        limit: FILMS_PER_READ,
        ..ListFilter::default()
    }
}

/// CSV rows (RFC 4180, CRLF) of `films`: the value of each field, then uid, received_at, raw.
fn rows(fields: &[String], films: &[FilmRow]) -> String {
    let mut out = String::new();
    for film in films {
        let mut cells: Vec<String> = fields
            .iter()
            .map(|f| csv_cell(&value_text(film.data.get(f))))
            .collect();
        cells.push(csv_cell(&film.uid));
        cells.push(csv_cell(&film.received_at));
        cells.push(csv_cell(&film.raw));
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

/// A field's value as the cell shows it: text as is, a number as written, nothing when absent.
fn value_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// One cell, quoted when it holds a comma, a quote or a line break (quotes doubled). Values
/// are kept exactly as read, so a spreadsheet may take a cell starting with `=` for a
/// formula: open the file as text data.
fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_are_quoted_only_when_needed_and_rows_follow_the_fields() {
        assert_eq!(csv_cell("L1"), "L1");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\"\r\n"), "\"say \"\"hi\"\"\r\n\"");
        let film = FilmRow {
            id: 1,
            uid: "u1".into(),
            sequence: 1,
            source: "line-1".into(),
            received_at: "2026-12-02T10:00:00.000Z".into(),
            raw: "L1,1,25.01".into(),
            data: json!({"lot": "L1", "film_no": 1, "thickness_um": 25.01}),
            created: String::new(),
        };
        let fields = ["thickness_um", "lot", "missing"].map(String::from);
        assert_eq!(
            rows(&fields, &[film]),
            "25.01,L1,,u1,2026-12-02T10:00:00.000Z,\"L1,1,25.01\"\r\n"
        );
    }
}
