//! The console's HTTPS server: the API ([`super::api`]) and the pages
//! ([`super::pages`]) on one listener, answered by actix-web's own worker
//! threads beside the server's actors.

use std::sync::Arc;

use actix_web::{App, web};
use utoipa_actix_web::AppExt;

use super::api::{self, Console, openapi};

/// Connections each worker holds open at most.
const MOST_CONNECTIONS: usize = 512;

/// Worker threads answering the console (the server's actors run on
/// their own).
const WORKERS: usize = 2;

/// Starts the console on `listener` with `tls`; the server it returns
/// runs until stopped (the process's signals are the node's, not its).
pub fn start(
    listener: std::net::TcpListener,
    tls: rustls::ServerConfig,
    console: Arc<Console>,
) -> std::io::Result<actix_web::dev::Server> {
    let data = web::Data::from(console);
    let document = web::Data::new(openapi::Document::rendered());
    let server = actix_web::HttpServer::new(move || {
        App::new()
            .wrap(
                actix_web::middleware::DefaultHeaders::new()
                    .add(("X-Content-Type-Options", "nosniff")),
            )
            .app_data(data.clone())
            .app_data(document.clone())
            .configure(api::input_errors)
            .configure(super::pages::routes)
            .default_service(web::to(api::no_such_path))
            .into_utoipa_app()
            .service(api::endpoints().route("/openapi.json", web::get().to(openapi::serve)))
            .into_app()
    })
    .workers(WORKERS)
    .max_connections(MOST_CONNECTIONS)
    .disable_signals()
    .shutdown_timeout(1)
    .listen_rustls_0_23(listener, tls)?
    .run();
    Ok(server)
}
