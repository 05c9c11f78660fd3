//! What any signed-in account (or token) may read, and the health check (the offices are
//! [`super::offices`]'s): clients, contents, the audit log, accounts
//! and API tokens (never a password's hash or a token's secret).

use actix_web::{get, web};
use branchline_actors::wire::{
    AccountView, AdminReply, AdminRequest, ApiTokenView, AuditEntry, ClientView, ContentView,
    HealthReport,
};
use serde::Deserialize;

use super::auth::Reader;
use super::error::{ApiError, ErrorBody};
use super::{Console, unexpected};

/// A search of the clients.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClientSearch {
    /// Part of a client's name, address or office (any case); all
    /// clients without it.
    pub q: Option<String>,
}

/// How much of the audit log.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// The newest this many entries (default 100, at most 10,000).
    pub last: Option<u32>,
}

/// The registered clients, or those matching `q`.
#[utoipa::path(tag = "clients", params(ClientSearch),
    responses((status = 200, body = Vec<ClientView>), (status = 401, body = ErrorBody)))]
#[get("/clients")]
pub async fn clients(
    reader: Reader,
    console: web::Data<Console>,
    search: web::Query<ClientSearch>,
) -> Result<web::Json<Vec<ClientView>>, ApiError> {
    let registered = console.registry(&reader.0).await?.clients;
    Ok(web::Json(matching(registered, search.q.as_deref())))
}

/// The clients whose name, office or address holds `q` (any case); all
/// without it.
pub fn matching(mut found: Vec<ClientView>, q: Option<&str>) -> Vec<ClientView> {
    if let Some(q) = q.map(str::to_lowercase).filter(|q| !q.is_empty()) {
        found.retain(|c| {
            [&c.name, &c.office, &c.addr.to_string()]
                .iter()
                .any(|field| field.to_lowercase().contains(&q))
        });
    }
    found
}

/// The published contents.
#[utoipa::path(tag = "contents",
    responses((status = 200, body = Vec<ContentView>), (status = 401, body = ErrorBody)))]
#[get("/contents")]
pub async fn contents(
    reader: Reader,
    console: web::Data<Console>,
) -> Result<web::Json<Vec<ContentView>>, ApiError> {
    Ok(web::Json(console.registry(&reader.0).await?.contents))
}

/// The newest entries of the audit log, oldest first.
#[utoipa::path(tag = "audit", params(AuditQuery),
    responses((status = 200, body = Vec<AuditEntry>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
#[get("/audit")]
pub async fn audit(
    reader: Reader,
    console: web::Data<Console>,
    query: web::Query<AuditQuery>,
) -> Result<web::Json<Vec<AuditEntry>>, ApiError> {
    let most = query.last.unwrap_or(100);
    if !(1..=10_000).contains(&most) {
        return Err(ApiError::bad_request(format!(
            "last={most}: ask for 1 to 10000 entries"
        )));
    }
    match console
        .perform(AdminRequest::Audit { most }, &reader.0.caller())
        .await?
    {
        AdminReply::Audit(entries) => Ok(web::Json(entries)),
        other => Err(unexpected(&other)),
    }
}

/// Runs the health check: clients heard from, devices refused for their
/// protocol version, disk (as `branchline health`).
#[utoipa::path(tag = "health",
    responses((status = 200, body = HealthReport), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[get("/health")]
pub async fn health(
    reader: Reader,
    console: web::Data<Console>,
) -> Result<web::Json<HealthReport>, ApiError> {
    match console
        .perform(AdminRequest::Health, &reader.0.caller())
        .await?
    {
        AdminReply::Health(report) => Ok(web::Json(report)),
        other => Err(unexpected(&other)),
    }
}

/// The console's accounts.
#[utoipa::path(tag = "accounts",
    responses((status = 200, body = Vec<AccountView>), (status = 401, body = ErrorBody)))]
#[get("/users")]
pub async fn users(
    reader: Reader,
    console: web::Data<Console>,
) -> Result<web::Json<Vec<AccountView>>, ApiError> {
    match console
        .perform(AdminRequest::Users, &reader.0.caller())
        .await?
    {
        AdminReply::Users(users) => Ok(web::Json(users)),
        other => Err(unexpected(&other)),
    }
}

/// The API tokens (never their secrets).
#[utoipa::path(tag = "accounts",
    responses((status = 200, body = Vec<ApiTokenView>), (status = 401, body = ErrorBody)))]
#[get("/tokens")]
pub async fn tokens(
    reader: Reader,
    console: web::Data<Console>,
) -> Result<web::Json<Vec<ApiTokenView>>, ApiError> {
    match console
        .perform(AdminRequest::ApiTokens, &reader.0.caller())
        .await?
    {
        AdminReply::ApiTokens(tokens) => Ok(web::Json(tokens)),
        other => Err(unexpected(&other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use branchline_storage::NodeId;

    fn client(name: &str, office: &str, addr: &str) -> ClientView {
        ClientView {
            id: NodeId([1; 16]),
            name: name.into(),
            addr: addr.parse().unwrap(),
            last_seen_ms_ago: 0,
            office: office.into(),
            rvp: false,
            attributes: None,
        }
    }

    #[test]
    fn a_search_matches_a_name_an_office_or_an_address_in_any_case() {
        let all = vec![
            client("Desk-7", "east", "10.2.0.7:34760"),
            client("lap-3", "West", "10.3.0.3:34760"),
        ];
        let names = |q: Option<&str>| -> Vec<String> {
            matching(all.clone(), q)
                .into_iter()
                .map(|c| c.name)
                .collect()
        };
        assert_eq!(names(Some("desk")), ["Desk-7"]);
        assert_eq!(names(Some("west")), ["lap-3"]);
        assert_eq!(names(Some("10.3.")), ["lap-3"]);
        assert_eq!(names(Some("")), ["Desk-7", "lap-3"]);
        assert_eq!(names(None), ["Desk-7", "lap-3"]);
        assert!(names(Some("nowhere")).is_empty());
    }
}
