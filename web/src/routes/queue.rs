//! Queue inspection and control: list, stats, one item, retry (one or all dead), delete.
//! Requests become the queue's typed messages, sent through [`AppState::queue`]
//! ([`filmgate_actors::queue::QueueClient`]); its answers leave as JSON.

use crate::AppState;
use crate::errors::ApiError;
use crate::pagination::{PageBody, absolute_path, effective_limit, links};
use actix::MailboxError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use filmgate_actors::messages::{
    DeleteItem, GetItem, GetStats, ItemState, ListItems, RetryAllDead, RetryItem,
};
use filmgate_actors::queue::QueueError;
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
            super::resource(["/queue/{id}", "/queue/{id}/"])
                .route(web::get().to(get_item))
                .route(web::delete().to(delete_item)),
        );
}

/// What went wrong with a queue request.
#[derive(Debug, thiserror::Error)]
pub enum QueueRouteError {
    /// The queue answered with an error.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The queue actor could not be reached.
    #[error("queue actor unavailable: {0}")]
    Mailbox(#[from] MailboxError),
    /// A query parameter is invalid.
    #[error("{0}")]
    BadQuery(String),
}

/// The status a queue error is answered with.
pub fn queue_error_status(e: &QueueError) -> StatusCode {
    match e {
        QueueError::NotFound(_) => StatusCode::NOT_FOUND,
        QueueError::NotDead { .. } => StatusCode::CONFLICT,
        QueueError::Store(_)
        | QueueError::Open { .. }
        | QueueError::InUse { .. }
        | QueueError::Damaged { .. }
        | QueueError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl ResponseError for QueueRouteError {
    fn status_code(&self) -> StatusCode {
        match self {
            QueueRouteError::Queue(e) => queue_error_status(e),
            QueueRouteError::Mailbox(_) => StatusCode::SERVICE_UNAVAILABLE,
            QueueRouteError::BadQuery(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            log::error!("{self}");
        }
        ApiError::new(status, self.to_string()).error_response()
    }
}

/// Query of `GET /api/queue/`.
#[derive(Debug, Deserialize)]
pub struct QueueListQuery {
    /// `pending`, `in_flight`, `dead` or `posted`; all states when absent.
    pub state: Option<String>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

/// The [`ItemState`] an API name stands for (its serde name).
pub fn parse_state(name: &str) -> Result<ItemState, String> {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .map_err(|_| format!("state must be pending, in_flight, dead or posted, not {name:?}"))
}

async fn list_items(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<QueueListQuery>,
) -> Result<HttpResponse, QueueRouteError> {
    let item_state = match query.state.as_deref().filter(|s| !s.is_empty()) {
        Some(name) => Some(parse_state(name).map_err(QueueRouteError::BadQuery)?),
        None => None,
    };
    let limit = effective_limit(query.limit).map_err(QueueRouteError::BadQuery)?;
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

async fn stats(state: web::Data<AppState>) -> Result<HttpResponse, QueueRouteError> {
    let stats = state.queue.stats.send(GetStats).await??;
    Ok(HttpResponse::Ok().json(stats))
}

async fn get_item(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, QueueRouteError> {
    let item = state
        .queue
        .get
        .send(GetItem {
            id: id.into_inner(),
        })
        .await??;
    Ok(HttpResponse::Ok().json(item))
}

async fn retry_item(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, QueueRouteError> {
    let item = state
        .queue
        .retry
        .send(RetryItem {
            id: id.into_inner(),
        })
        .await??;
    Ok(HttpResponse::Ok().json(item))
}

async fn retry_all(state: web::Data<AppState>) -> Result<HttpResponse, QueueRouteError> {
    let outcome = state.queue.retry_all.send(RetryAllDead).await??;
    Ok(HttpResponse::Ok().json(outcome))
}

async fn delete_item(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, QueueRouteError> {
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
    fn queue_errors_map_to_statuses() {
        assert_eq!(
            queue_error_status(&QueueError::NotFound(1)),
            StatusCode::NOT_FOUND
        );
        let not_dead = QueueError::NotDead {
            id: 1,
            state: "pending",
        };
        assert_eq!(queue_error_status(&not_dead), StatusCode::CONFLICT);
        let gone = QueueError::Unavailable("stopped".into());
        assert_eq!(queue_error_status(&gone), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn state_names_parse_and_others_are_rejected() {
        assert_eq!(parse_state("in_flight"), Ok(ItemState::InFlight));
        assert!(parse_state("done").is_err());
    }
}
