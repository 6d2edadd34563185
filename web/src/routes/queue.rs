//! Queue inspection and control: list, stats, one item, retry (one or all dead), accept a
//! dead fragment, delete.
//! Requests become the queue's typed messages, sent through [`AppState::queue`]
//! ([`filmgate_actors::queue::QueueClient`]); its answers leave as JSON.

use crate::AppState;
use crate::errors::ApiError;
use crate::pagination::{effective_limit, page_response};
use actix_web::{HttpRequest, HttpResponse, web};
use filmgate_actors::messages::{
    AcceptItem, DeleteItem, GetItem, GetStats, ItemState, ListItems, QueuedItem, RetryAllDead,
    RetryItem,
};
use filmgate_actors::record::{FilmData, rfc3339_ms};
use filmgate_actors::redact::redact;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // `stats` and `retry` are registered before `{id}` so they are not taken for ids.
    cfg.service(super::resource(["/queue/", "/queue"]).route(web::get().to(list_items)))
        .service(super::resource(["/queue/stats", "/queue/stats/"]).route(web::get().to(stats)))
        .service(
            super::resource(["/queue/retry", "/queue/retry/"]).route(web::post().to(retry_all)),
        )
        .service(
            super::resource(["/queue/{id}/retry", "/queue/{id}/retry/"])
                .route(web::post().to(retry_item)),
        )
        .service(
            super::resource(["/queue/{id}/accept", "/queue/{id}/accept/"])
                .route(web::post().to(accept_item)),
        )
        .service(
            super::resource(["/queue/{id}", "/queue/{id}/"])
                .route(web::get().to(get_item))
                .route(web::delete().to(delete_item)),
        );
}

/// Query of `GET /api/queue/`.
#[derive(Debug, Deserialize)]
pub struct QueueListQuery {
    /// `pending`, `in_flight`, `dead` or `posted`; all states when absent.
    pub state: Option<String>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

/// A queue item as the inspection API shows it.
#[derive(Debug, Serialize)]
pub struct ItemView {
    pub id: i64,
    pub uid: String,
    pub source: String,
    /// `pending`, `in_flight`, `dead` or `posted`.
    pub state: &'static str,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// RFC 3339; `null` when due now.
    pub next_attempt_at: Option<String>,
    /// RFC 3339.
    pub received_at: String,
    /// The frame as text (invalid UTF-8 replaced by U+FFFD; see `raw_hex`).
    pub raw: String,
    /// The exact bytes as hex, present only when the frame is not valid UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_hex: Option<String>,
    /// Parsed fields; `null` for a rejected frame.
    pub data: Option<FilmData>,
    pub sequence_uid: Option<String>,
    /// The upstream's id of the posted film (posted items only).
    pub upstream_id: Option<Value>,
    /// A fragment an operator accepted as a whole record (present only then).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub accepted_by_hand: bool,
}

impl From<QueuedItem> for ItemView {
    fn from(item: QueuedItem) -> ItemView {
        let (raw, raw_hex) = match String::from_utf8(item.raw) {
            Ok(text) => (text, None),
            Err(e) => {
                let bytes = e.into_bytes();
                let hex = bytes.iter().map(|b| format!("{b:02x}")).collect();
                (String::from_utf8_lossy(&bytes).into_owned(), Some(hex))
            }
        };
        ItemView {
            id: item.id,
            uid: item.uid,
            source: item.source,
            state: item.state.as_str(),
            attempts: item.attempts,
            // Errors stored before secrets were redacted at the source are redacted here.
            last_error: item.last_error.map(|e| redact(&e).into_owned()),
            next_attempt_at: item.next_attempt_at_ms.map(rfc3339_ms),
            received_at: rfc3339_ms(item.received_at_ms),
            raw,
            raw_hex,
            data: item.data,
            sequence_uid: item.sequence_uid,
            upstream_id: item.upstream_id,
            accepted_by_hand: item.accepted_by_hand,
        }
    }
}

/// The [`ItemState`] an API name stands for.
pub fn parse_state(name: &str) -> Result<ItemState, String> {
    ItemState::from_name(name)
        .ok_or_else(|| format!("state must be pending, in_flight, dead or posted, not {name:?}"))
}

async fn list_items(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<QueueListQuery>,
) -> Result<HttpResponse, ApiError> {
    let item_state = match query.state.as_deref().filter(|s| !s.is_empty()) {
        Some(name) => Some(parse_state(name).map_err(ApiError::bad_request)?),
        None => None,
    };
    let limit = effective_limit(query.limit).map_err(ApiError::bad_request)?;
    let offset = query.offset.unwrap_or(0);
    let page = state
        .queue
        .list
        .send(ListItems {
            state: item_state,
            limit: limit as usize,
            offset: offset as usize,
        })
        .await??;
    let results: Vec<ItemView> = page.results.into_iter().map(ItemView::from).collect();
    Ok(page_response(&req, limit, offset, page.count, results))
}

async fn stats(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let stats = state.queue.stats.send(GetStats).await??;
    Ok(HttpResponse::Ok().json(stats))
}

async fn get_item(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let item = state
        .queue
        .get
        .send(GetItem {
            id: id.into_inner(),
        })
        .await??;
    Ok(HttpResponse::Ok().json(ItemView::from(item)))
}

async fn retry_item(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let item = state
        .queue
        .retry
        .send(RetryItem {
            id: id.into_inner(),
        })
        .await??;
    Ok(HttpResponse::Ok().json(ItemView::from(item)))
}

async fn accept_item(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let item = state
        .queue
        .accept
        .send(AcceptItem {
            id: id.into_inner(),
        })
        .await??;
    Ok(HttpResponse::Ok().json(ItemView::from(item)))
}

async fn retry_all(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let outcome = state.queue.retry_all.send(RetryAllDead).await??;
    Ok(HttpResponse::Ok().json(outcome))
}

async fn delete_item(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    state
        .queue
        .delete
        .send(DeleteItem {
            id: id.into_inner(),
        })
        .await??;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_parse_and_others_are_rejected() {
        for state in ItemState::ALL {
            assert_eq!(parse_state(state.as_str()), Ok(state));
        }
        assert!(parse_state("done").is_err());
        assert!(parse_state("Pending").is_err());
    }

    #[test]
    fn an_item_shows_exact_bytes_as_hex_only_when_they_are_not_text() {
        let item = |raw: &[u8]| QueuedItem {
            id: 1,
            uid: "u".into(),
            source: "line-1".into(),
            state: ItemState::Dead,
            attempts: 0,
            last_error: None,
            next_attempt_at_ms: Some(1_700_000_000_123),
            received_at_ms: 0,
            raw: raw.to_vec(),
            data: None,
            sequence_uid: None,
            upstream_id: None,
            accepted_by_hand: false,
        };
        let text = serde_json::to_value(ItemView::from(item(b"L1,1"))).unwrap();
        assert_eq!(text["raw"], "L1,1");
        assert!(text.get("raw_hex").is_none(), "{text}");
        assert_eq!(text["next_attempt_at"], "2023-11-14T22:13:20.123Z");
        assert_eq!(text["received_at"], "1970-01-01T00:00:00.000Z");
        let bytes = serde_json::to_value(ItemView::from(item(b"L1,\xff\xfe,1"))).unwrap();
        assert_eq!(bytes["raw"], "L1,\u{fffd}\u{fffd},1");
        assert_eq!(bytes["raw_hex"], "4c312cfffe2c31");
        assert_eq!(bytes["state"], "dead");
    }
}
