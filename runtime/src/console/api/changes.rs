//! What only an administrator may do through the API: purge a content,
//! add an account, make and revoke API tokens.
//! Each goes through the admin socket's own handler, which records it in
//! the audit log before it answers.

use actix_web::{HttpResponse, delete, post, web};
use branchline_actors::wire::{AdminReply, AdminRequest, ApiTokenView, Role};
use branchline_storage::ContentId;
use serde::{Deserialize, Serialize};

use super::auth::Changer;
use super::error::{ApiError, ErrorBody};
use super::{Console, unexpected};

/// A new account.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewUser {
    /// 1 to 64 letters, digits, dots, dashes or underscores.
    pub name: String,
    /// `admin` or `viewer`.
    pub role: Role,
    /// 12 to 256 characters.
    pub password: String,
}

/// A new API token.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewToken {
    /// What it is for (`nightly-report`).
    pub name: String,
    /// `admin` or `viewer`.
    pub role: Role,
    /// Days it works, 1 to 365 (default 90).
    pub expires_days: Option<u32>,
}

/// A token just made: its secret, shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MadeToken {
    /// The whole token, for `Authorization: Bearer`.
    pub token: String,
    /// What is kept of it.
    pub view: ApiTokenView,
}

/// What a change did, in words.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Done {
    /// One line.
    pub done: String,
}

/// Purges a content: the server forgets it and every client drops it.
#[utoipa::path(tag = "contents",
    params(("id" = String, Path, description = "The content's id (64 hex digits)")),
    responses(
        (status = 200, body = Done),
        (status = 400, description = "Not a content id", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "Not published", body = ErrorBody),
    ))]
#[delete("/contents/{id}")]
pub async fn purge(
    Changer(signed): Changer,
    console: web::Data<Console>,
    id: web::Path<String>,
) -> Result<web::Json<Done>, ApiError> {
    let id: ContentId = id
        .parse()
        .map_err(|e| ApiError::bad_request(format!("`{id}` is not a content id: {e}")))?;
    let caller = signed.caller();
    let published = console
        .registry(&signed)
        .await?
        .contents
        .iter()
        .any(|c| c.id == id);
    if !published {
        return Err(ApiError::not_found(format!(
            "content {id} is not published"
        )));
    }
    match console.perform(AdminRequest::Purge(id), &caller).await? {
        AdminReply::Done(done) => Ok(web::Json(Done { done })),
        other => Err(unexpected(&other)),
    }
}

/// Adds an account.
#[utoipa::path(tag = "accounts", request_body = NewUser,
    responses(
        (status = 201, body = Done),
        (status = 400, description = "A bad name or password, or the name is taken", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
#[post("/users")]
pub async fn add_user(
    Changer(signed): Changer,
    console: web::Data<Console>,
    body: web::Json<NewUser>,
) -> Result<HttpResponse, ApiError> {
    let NewUser {
        name,
        role,
        password,
    } = body.into_inner();
    let request = AdminRequest::AddUser {
        name,
        role,
        password,
    };
    match console.perform(request, &signed.caller()).await? {
        AdminReply::Done(done) => Ok(HttpResponse::Created().json(Done { done })),
        other => Err(unexpected(&other)),
    }
}

/// Makes an API token; its secret is in this answer only.
#[utoipa::path(tag = "accounts", request_body = NewToken,
    responses(
        (status = 201, body = MadeToken),
        (status = 400, description = "A bad name or lifetime", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
#[post("/tokens")]
pub async fn create_token(
    Changer(signed): Changer,
    console: web::Data<Console>,
    body: web::Json<NewToken>,
) -> Result<HttpResponse, ApiError> {
    let NewToken {
        name,
        role,
        expires_days,
    } = body.into_inner();
    let days = expires_days.unwrap_or(90);
    if !(1..=365).contains(&days) {
        return Err(ApiError::bad_request(format!(
            "expires_days {days}: an API token lives 1 to 365 days"
        )));
    }
    let request = AdminRequest::CreateApiToken {
        name,
        role,
        expires_secs: u64::from(days) * 24 * 3600,
    };
    match console.perform(request, &signed.caller()).await? {
        AdminReply::ApiToken { token, view } => {
            Ok(HttpResponse::Created().json(MadeToken { token, view }))
        }
        other => Err(unexpected(&other)),
    }
}

/// Revokes an API token.
#[utoipa::path(tag = "accounts",
    params(("id" = String, Path, description = "The token's id (16 hex digits)")),
    responses(
        (status = 200, body = Done),
        (status = 400, description = "No such token", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ))]
#[delete("/tokens/{id}")]
pub async fn revoke_token(
    Changer(signed): Changer,
    console: web::Data<Console>,
    id: web::Path<String>,
) -> Result<web::Json<Done>, ApiError> {
    match console
        .perform(
            AdminRequest::RevokeApiToken(id.into_inner()),
            &signed.caller(),
        )
        .await?
    {
        AdminReply::Done(done) => Ok(web::Json(Done { done })),
        other => Err(unexpected(&other)),
    }
}
