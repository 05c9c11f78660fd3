//! The console's pages, rendered by the server (`maud`, no Node
//! toolchain at build time), with one small hand-written script
//! (`console.js`) that signs in and out, sends changes to the API with
//! the session's CSRF token, and keeps the Offices page live from
//! `GET /api/v1/offices/live` (Server-Sent Events). Pages read nothing
//! the API does not: each one asks the same handlers.
//!
//! Every page answers with a strict Content-Security-Policy (scripts and
//! styles from the console only, no inline script, no framing), so a
//! name or a path shown in a page cannot run in it (maud escapes them
//! too).

mod audit;
mod clients;
mod contents;
mod health;
mod layout;
mod offices;
mod sign_in;
mod topology;

use actix_web::http::header;
use actix_web::{HttpResponse, web};

/// The script every page loads.
const SCRIPT: &str = include_str!("console.js");
/// The style sheet every page loads.
const STYLE: &str = include_str!("console.css");

/// The pages' routes.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/", web::get().to(home))
        .route("/sign-in", web::get().to(sign_in::page))
        .route("/offices", web::get().to(offices::page))
        .route("/clients", web::get().to(clients::page))
        .route("/contents", web::get().to(contents::page))
        .route("/topology", web::get().to(topology::page))
        .route("/health", web::get().to(health::page))
        .route("/audit", web::get().to(audit::page))
        .route("/console.js", web::get().to(script))
        .route("/console.css", web::get().to(style));
}

async fn home() -> HttpResponse {
    see_other("/offices")
}

/// A redirection to `to`.
fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// A page's answer: its HTML with the console's security headers.
fn page(markup: maud::Markup) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(markup.into_string())
}

async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(SCRIPT)
}

async fn style() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(STYLE)
}
