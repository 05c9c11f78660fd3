//! Signing in and out: `POST /api/v1/session` checks a name and password
//! (argon2, on the blocking pool) under the sign-in limit, opens a session
//! and sets its cookie (`Secure`, `HttpOnly`, `SameSite=Strict`);
//! `GET` says who is signed in and gives the CSRF token; `DELETE` signs
//! out.

use std::time::Instant;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use branchline_actors::wire::Role;
use serde::{Deserialize, Serialize};

use super::Console;
use super::auth::{Reader, SESSION_COOKIE, address_of};
use super::error::{ApiError, ErrorBody};
use crate::admin::server_node::off_thread;
use crate::console::audit::Caller;

/// A sign-in.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SignIn {
    /// The account's name.
    pub name: String,
    /// Its password.
    pub password: String,
}

/// Who is signed in.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// The account.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// What every change made with this session carries in
    /// `X-CSRF-Token`; empty for an API token.
    pub csrf_token: String,
}

/// Signs in.
#[utoipa::path(tag = "session", request_body = SignIn,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = SessionView),
        (status = 401, description = "Wrong name or password", body = ErrorBody),
        (status = 429, description = "Too many failures: wait Retry-After seconds", body = ErrorBody),
    ))]
#[post("/session")]
pub async fn sign_in(
    req: HttpRequest,
    console: web::Data<Console>,
    body: web::Json<SignIn>,
) -> Result<HttpResponse, ApiError> {
    let SignIn { name, password } = body.into_inner();
    let from = address_of(&req);
    if !crate::console::is_plain_name(&name) {
        // No account has such a name: refused before it can take room in
        // the limiter or the log.
        console
            .sign_in_limit()?
            .failed_address(from, Instant::now());
        return Err(ApiError::unauthorized("wrong name or password"));
    }
    // A few password checks at once at most (argon2 takes 19 MiB each).
    let _permit = console
        .checking
        .try_acquire()
        .map_err(|_| ApiError::unavailable("too many sign-ins at once: try again in a moment"))?;
    {
        // Counted as failed before the password is checked, so attempts
        // made in parallel see each other; a success clears it.
        let mut limit = console.sign_in_limit()?;
        if let Err(wait) = limit.check(from, &name, Instant::now()) {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Err(ApiError::too_many(
                format!(
                    "too many failed sign-ins from {from} or for `{name}`: try again in {secs} s"
                ),
                secs,
            ));
        }
        limit.failed(from, &name, Instant::now());
    }
    let accounts = console.admin.accounts.clone();
    let checked_name = name.clone();
    let role = off_thread(move || accounts.sign_in(&checked_name, &password))
        .await
        .map_err(ApiError::internal)?;
    let Some(role) = role else {
        tracing::warn!(%from, account = ?name, "console sign-in refused");
        return Err(ApiError::unauthorized("wrong name or password"));
    };
    console.sign_in_limit()?.succeeded(from, &name);
    let (secret, session) = console
        .sessions()?
        .open(&name, role, Instant::now())
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let caller = Caller {
        who: name.clone(),
        from: from.to_string(),
    };
    console.record(&caller, "sign in".into()).await?;
    let cookie = Cookie::build(SESSION_COOKIE, secret)
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(CookieDuration::seconds(
            i64::try_from(console.session_most.as_secs()).unwrap_or(i64::MAX),
        ))
        .finish();
    Ok(HttpResponse::Ok().cookie(cookie).json(SessionView {
        name,
        role,
        csrf_token: session.csrf,
    }))
}

/// Who is signed in, and the session's CSRF token.
#[utoipa::path(tag = "session",
    responses(
        (status = 200, body = SessionView),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
#[get("/session")]
pub async fn who(Reader(signed): Reader) -> web::Json<SessionView> {
    web::Json(SessionView {
        csrf_token: signed.csrf.clone(),
        name: signed.name,
        role: signed.role,
    })
}

/// Signs out: the session ends and its cookie is cleared.
#[utoipa::path(tag = "session",
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "No CSRF token", body = ErrorBody),
    ))]
#[delete("/session")]
pub async fn sign_out(
    Reader(signed): Reader,
    console: web::Data<Console>,
) -> Result<HttpResponse, ApiError> {
    if let Some(secret) = &signed.session {
        console.sessions()?.close(secret);
    }
    let mut gone = Cookie::build(SESSION_COOKIE, "")
        .path("/")
        .secure(true)
        .http_only(true)
        .finish();
    gone.make_removal();
    Ok(HttpResponse::NoContent().cookie(gone).finish())
}
