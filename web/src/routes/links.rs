//! Serial links: their status from the shared [`filmgate_actors::links::LinkRegistry`], and a
//! manual restart sent to the link's actor as [`RestartLink`].

use crate::AppState;
use crate::errors::ApiError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use filmgate_actors::messages::RestartLink;
use serde_json::json;

/// How long a restart request waits for the link's actor to take the message.
const RESTART_SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource(["/links/", "/links"]).route(web::get().to(list_links)))
        .service(
            super::resource(["/links/{name}/restart", "/links/{name}/restart/"])
                .route(web::post().to(restart_link)),
        );
}

/// What went wrong with a link request.
#[derive(Debug, thiserror::Error)]
pub enum LinkRouteError {
    #[error("no link named {0:?}")]
    Unknown(String),
    /// The link is registered but its actor is not running (or not yet started).
    #[error("link {0:?} is not running")]
    NotRunning(String),
    #[error("link {0:?} did not take the restart: {1}")]
    Mailbox(String, actix::MailboxError),
}

impl ResponseError for LinkRouteError {
    fn status_code(&self) -> StatusCode {
        match self {
            LinkRouteError::Unknown(_) => StatusCode::NOT_FOUND,
            LinkRouteError::NotRunning(_) => StatusCode::CONFLICT,
            LinkRouteError::Mailbox(..) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        ApiError::new(self.status_code(), self.to_string()).error_response()
    }
}

async fn list_links(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(state.links.snapshot())
}

async fn restart_link(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, LinkRouteError> {
    let name = name.into_inner();
    let handle = match state.links.restart_handle(&name) {
        Some(h) => h,
        None if state.links.get(&name).is_some() => return Err(LinkRouteError::NotRunning(name)),
        None => return Err(LinkRouteError::Unknown(name)),
    };
    handle
        .send(RestartLink)
        .timeout(RESTART_SEND_TIMEOUT)
        .await
        .map_err(|e| LinkRouteError::Mailbox(name.clone(), e))?;
    log::info!("link {name}: restart requested over the API");
    Ok(HttpResponse::Accepted().json(json!({ "restarting": name })))
}
