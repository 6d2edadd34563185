//! `GET /api/refresh/`: everything new since a cursor in one answer ([`crate::live`]).

use crate::AppState;
use crate::errors::ApiError;
use crate::live::{self, CursorQuery};
use actix_web::{HttpResponse, web};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource(["/refresh/", "/refresh"]).route(web::get().to(get_refresh)));
}

async fn get_refresh(
    state: web::Data<AppState>,
    query: web::Query<CursorQuery>,
) -> Result<HttpResponse, ApiError> {
    let since = query.parse()?;
    Ok(HttpResponse::Ok().json(live::since(&state, since).await?))
}
