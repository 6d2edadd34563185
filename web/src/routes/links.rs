//! Serial links: their status from the shared [`filmgate_actors::links::LinkRegistry`], and a
//! manual restart sent to the link's actor as [`RestartLink`].

use crate::AppState;
use crate::errors::ApiError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
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

async fn list_links(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(state.links.snapshot())
}

async fn restart_link(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let handle = match state.links.restart_handle(&name) {
        Some(h) => h,
        None if state.links.get(&name).is_some() => {
            // Registered, but its actor is not running (or not yet started).
            let message = format!("link {name:?} is not running");
            return Err(ApiError::new(StatusCode::CONFLICT, message));
        }
        None => return Err(ApiError::not_found(format!("no link named {name:?}"))),
    };
    handle
        .send(RestartLink)
        .timeout(RESTART_SEND_TIMEOUT)
        .await
        .map_err(|e| {
            ApiError::unavailable(format!("link {name:?} did not take the restart: {e}"))
        })?;
    log::info!("link {name}: restart requested over the API");
    Ok(HttpResponse::Accepted().json(json!({ "restarting": name })))
}
