//! Who is asking: every API request but signing in carries either the
//! session cookie the console set at sign-in or an API token
//! (`Authorization: Bearer blt_...`). A request with a session that
//! changes anything (any method but GET and HEAD) must also carry the
//! session's CSRF token in `X-CSRF-Token`, which another site's page
//! cannot read, so it cannot make a signed-in browser change anything. A
//! token's request needs none: no browser sends a token by itself.
//!
//! Handlers take [`Reader`] (any role) or [`Changer`] (the admin role) and
//! so cannot forget the check.

use std::future::{Ready, ready};
use std::net::IpAddr;
use std::time::Instant;

use actix_web::dev::Payload;
use actix_web::http::{Method, header};
use actix_web::{FromRequest, HttpRequest, web};
use branchline_actors::wire::Role;

use super::Console;
use super::error::ApiError;
use crate::console::api_tokens::ApiTokenError;
use crate::console::audit::Caller;
use crate::console::sessions::same_secret;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "branchline_session";
/// The header a session's changes carry their CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Someone signed in, or a script with a live token.
#[derive(Clone, Debug)]
pub struct Signed {
    /// The account's name, or the token's.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// Their address.
    pub from: IpAddr,
    /// Signed in with a session (not a token); its secret.
    pub session: Option<String>,
    /// The session's CSRF token (empty for an API token).
    pub csrf: String,
    /// The API token, for a token.
    token: Option<String>,
}

impl Signed {
    /// Who the audit log names.
    pub fn caller(&self) -> Caller {
        Caller {
            who: match self.token.as_deref().and_then(|t| t.get(4..20)) {
                Some(id) => format!("token {id} ({})", self.name),
                None => self.name.clone(),
            },
            from: self.from.to_string(),
        }
    }
}

/// Anyone signed in: what reads need.
pub struct Reader(pub Signed);

/// An administrator: what changes need.
pub struct Changer(pub Signed);

impl FromRequest for Reader {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(signed(req).map(Reader))
    }
}

impl FromRequest for Changer {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(signed(req).and_then(|s| match s.role {
            Role::Admin => Ok(Changer(s)),
            Role::Viewer => Err(ApiError::forbidden(format!(
                "`{}` is a viewer: only an admin may change anything",
                s.name
            ))),
        }))
    }
}

impl Console {
    /// Whether `signed`'s session or token still works (for a long
    /// answer, such as the live offices; it does not count as use).
    pub fn still_signed(&self, signed: &Signed) -> bool {
        match (&signed.session, &signed.token) {
            (Some(secret), _) => self
                .sessions()
                .is_ok_and(|s| s.is_live(secret, Instant::now())),
            (None, Some(token)) => self.admin.api_tokens.check(token).is_ok(),
            (None, None) => false,
        }
    }
}

/// The client's address as the connection shows it (no proxy header is
/// believed).
pub fn address_of(req: &HttpRequest) -> IpAddr {
    req.peer_addr()
        .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip())
}

fn signed(req: &HttpRequest) -> Result<Signed, ApiError> {
    let console = req
        .app_data::<web::Data<Console>>()
        .ok_or_else(|| ApiError::internal("the console's state is missing"))?;
    let from = address_of(req);
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        return by_token(console, value, from);
    }
    let Some(cookie) = req.cookie(SESSION_COOKIE) else {
        return Err(ApiError::unauthorized(
            "sign in first (POST /api/v1/session) or give an API token (Authorization: Bearer ...)",
        ));
    };
    let secret = cookie.value().to_owned();
    let session = console
        .sessions()?
        .check(&secret, Instant::now())
        .ok_or_else(|| ApiError::unauthorized("the session has ended: sign in again"))?;
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    if !safe {
        let given = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !same_secret(given, &session.csrf) {
            return Err(ApiError::forbidden(format!(
                "a change made with a session must carry its CSRF token in {CSRF_HEADER} (GET /api/v1/session gives it)"
            )));
        }
    }
    Ok(Signed {
        name: session.account,
        role: session.role,
        from,
        session: Some(secret),
        csrf: session.csrf,
        token: None,
    })
}

fn by_token(
    console: &Console,
    value: &header::HeaderValue,
    from: IpAddr,
) -> Result<Signed, ApiError> {
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::unauthorized("Authorization must be `Bearer <API token>`"))?;
    match console.admin.api_tokens.check(token) {
        Ok((name, role)) => Ok(Signed {
            name,
            role,
            from,
            session: None,
            csrf: String::new(),
            token: Some(token.to_owned()),
        }),
        Err(e @ (ApiTokenError::Db(_) | ApiTokenError::BadRecord(_))) => {
            Err(ApiError::internal(e.to_string()))
        }
        Err(e) => {
            tracing::warn!(%from, error = %e, "API token refused");
            Err(ApiError::unauthorized(e.to_string()))
        }
    }
}
