//! The console's HTTPS API, `/api/v1`: JSON over HTTPS (TLS 1.3, see
//! [`crate::console::certificate`]), served by actix-web on worker
//! threads of its own beside the server's actors, whose addresses it
//! asks. Every change goes through the same handler as the admin socket
//! ([`ServerAdmin::perform`]), so the API and the command line cannot
//! drift apart, and is recorded in the audit log with the account (or
//! token) and the client's address.
//!
//! - [`auth`]: who is asking (session cookie and CSRF token, or API
//!   token) and what their role lets them do.
//! - [`session`]: sign in and out, with the sign-in limit.
//! - [`offices`], [`topology`], [`reads`] and [`changes`]: the endpoints.
//! - [`openapi`]: the OpenAPI document, collected from the handlers'
//!   annotations as they are mounted ([`endpoints`]), at
//!   `/api/v1/openapi.json`.
//! - [`error`]: every failure as `{"error": "..."}` with its status.

pub mod auth;
pub mod changes;
pub mod error;
pub mod offices;
pub mod openapi;
pub mod reads;
pub mod session;
pub mod topology;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::{HttpResponse, web};
use branchline_actors::wire::{AdminReply, AdminRequest, RegistryView};

use crate::admin::server_node::ServerAdmin;
use crate::console::audit::Caller;
use crate::console::sessions::{Lifetimes, Sessions};
use crate::console::sign_in_limit::SignInLimit;
use auth::Signed;
use error::ApiError;

/// Largest body a request may have: a topology sheet of thousands of
/// offices fits.
const MOST_BODY: usize = 16 << 20;
/// Largest JSON body (a sign-in, an account, a token).
const MOST_JSON: usize = 16 << 10;
/// What the API's handlers share.
pub struct Console {
    /// The server's handler of admin requests, and its stores.
    pub admin: Arc<ServerAdmin>,
    sessions: Mutex<Sessions>,
    sign_in_limit: Mutex<SignInLimit>,
    session_most: Duration,
    /// Password checks running at once at most.
    checking: tokio::sync::Semaphore,
    /// Live streams open.
    live_streams: std::sync::atomic::AtomicUsize,
}

/// Password checks at once at most.
const CHECKS_AT_ONCE: usize = 4;
/// Live streams open at once at most.
pub const MOST_LIVE_STREAMS: usize = 64;

impl Console {
    /// A console in front of `admin`, no one signed in.
    pub fn new(admin: Arc<ServerAdmin>, lifetimes: Lifetimes) -> Self {
        Console {
            admin,
            sessions: Mutex::new(Sessions::new(lifetimes)),
            sign_in_limit: Mutex::new(SignInLimit::default()),
            session_most: lifetimes.most,
            checking: tokio::sync::Semaphore::new(CHECKS_AT_ONCE),
            live_streams: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The session table.
    fn sessions(&self) -> Result<MutexGuard<'_, Sessions>, ApiError> {
        self.sessions
            .lock()
            .map_err(|_| ApiError::internal("the session table is poisoned"))
    }

    /// The sign-in limiter.
    fn sign_in_limit(&self) -> Result<MutexGuard<'_, SignInLimit>, ApiError> {
        self.sign_in_limit
            .lock()
            .map_err(|_| ApiError::internal("the sign-in limiter is poisoned"))
    }

    /// Asks the server's admin handler, in `caller`'s name; its error
    /// reply as an API error.
    pub(crate) async fn perform(
        &self,
        request: AdminRequest,
        caller: &Caller,
    ) -> Result<AdminReply, ApiError> {
        match self.admin.perform(request, caller).await {
            AdminReply::Error(e) => Err(ApiError::from_admin(e)),
            reply => Ok(reply),
        }
    }

    /// The registry's view (clients, contents, links, holdings), asked in
    /// `signed`'s name.
    pub(crate) async fn registry(&self, signed: &Signed) -> Result<RegistryView, ApiError> {
        match self.perform(AdminRequest::Status, &signed.caller()).await? {
            AdminReply::ServerStatus(status) => Ok(status.registry),
            other => Err(unexpected(&other)),
        }
    }

    /// Records something done that is not an admin request (a sign-in).
    async fn record(&self, caller: &Caller, what: String) -> Result<(), ApiError> {
        self.admin
            .record(caller, what)
            .await
            .map_err(ApiError::internal)
    }
}

/// A reply the handler was not expected to give.
pub(crate) fn unexpected(reply: &AdminReply) -> ApiError {
    ApiError::internal(format!("unexpected answer from the server: {reply:?}"))
}

/// The API's endpoints under `/api/v1`, each documented by its own
/// annotation: what is served and what the OpenAPI document lists are one
/// list.
pub fn endpoints() -> utoipa_actix_web::scope::Scope<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    utoipa_actix_web::scope("/api/v1")
        .service(session::sign_in)
        .service(session::who)
        .service(session::sign_out)
        .service(offices::offices_now)
        .service(offices::offices_live)
        .service(reads::clients)
        .service(reads::contents)
        .service(topology::sheet)
        .service(topology::preview)
        .service(topology::import)
        .service(reads::audit)
        .service(reads::health)
        .service(reads::users)
        .service(reads::tokens)
        .service(changes::purge)
        .service(changes::add_user)
        .service(changes::create_token)
        .service(changes::revoke_token)
}

/// Framework errors (a body that is not JSON, a bad query) as API errors.
pub fn input_errors(config: &mut web::ServiceConfig) {
    config
        .app_data(
            web::JsonConfig::default()
                .limit(MOST_JSON)
                .error_handler(|e, _| ApiError::bad_request(e.to_string()).into()),
        )
        .app_data(
            web::QueryConfig::default()
                .error_handler(|e, _| ApiError::bad_request(e.to_string()).into()),
        )
        .app_data(
            web::PathConfig::default()
                .error_handler(|e, _| ApiError::bad_request(e.to_string()).into()),
        )
        .app_data(web::PayloadConfig::default().limit(MOST_BODY));
}

/// What a path that names nothing gets.
pub async fn no_such_path() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(
        "no such path or method (the API is described at /api/v1/openapi.json)",
    ))
}
