//! The dashboard: `index.html`, its native ES modules (`main.js` and what it imports) and
//! `style.css`, embedded in the binary at build time and served with `Cache-Control: no-cache`
//! (a new binary's assets are picked up at once).

use actix_web::http::header;
use actix_web::{HttpResponse, web};

const INDEX_HTML: &str = include_str!("../../assets/index.html");
/// The dashboard's modules, by file name (see `web/assets/main.js` for what each owns).
const MODULES: [(&str, &str); 12] = [
    ("main.js", include_str!("../../assets/main.js")),
    ("api.js", include_str!("../../assets/api.js")),
    ("chart.js", include_str!("../../assets/chart.js")),
    ("dead.js", include_str!("../../assets/dead.js")),
    ("dom.js", include_str!("../../assets/dom.js")),
    ("format.js", include_str!("../../assets/format.js")),
    ("live.js", include_str!("../../assets/live.js")),
    ("lot.js", include_str!("../../assets/lot.js")),
    ("quality.js", include_str!("../../assets/quality.js")),
    ("spcchart.js", include_str!("../../assets/spcchart.js")),
    ("status.js", include_str!("../../assets/status.js")),
    ("tables.js", include_str!("../../assets/tables.js")),
];
const STYLE_CSS: &str = include_str!("../../assets/style.css");
const FAVICON_SVG: &str = include_str!("../../assets/favicon.svg");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/",
        web::get().to(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
    )
    .route("/assets/{module}.js", web::get().to(module))
    .route(
        "/assets/style.css",
        web::get().to(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
    )
    .route(
        "/favicon.ico",
        web::get().to(|| async { asset("image/svg+xml", FAVICON_SVG) }),
    );
}

async fn module(name: web::Path<String>) -> HttpResponse {
    let file = format!("{name}.js");
    match MODULES.iter().find(|(known, _)| *known == file) {
        Some((_, body)) => asset("text/javascript; charset=utf-8", body),
        None => crate::errors::json_error(
            actix_web::http::StatusCode::NOT_FOUND,
            &format!("no dashboard module {file}"),
            None,
        ),
    }
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}
