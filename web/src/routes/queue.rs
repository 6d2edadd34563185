//! Queue inspection and control: list, stats, one item, retry (one or all dead), accept a
//! dead fragment, delete.
//! Requests become the queue's typed messages, sent through [`AppState::queue`]
//! ([`filmgate_actors::queue::QueueClient`]); its answers leave as JSON.

use crate::AppState;
use crate::errors::ApiError;
use crate::pagination::{effective_limit, page_response};
use crate::views::ItemView;
use actix_web::{HttpRequest, HttpResponse, web};
use filmgate_actors::messages::{
    AcceptItem, DeleteItem, GetItem, GetStats, ItemState, ListItems, RetryAllDead, RetryItem,
};
use serde::Deserialize;

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
}
