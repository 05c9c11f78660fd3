//! The API's OpenAPI document at `GET /api/v1/openapi.json` (no sign-in
//! needed: it says what the API is, nothing of the cluster). Its paths
//! and schemas are collected from the handlers' annotations as
//! [`super::endpoints`] mounts them, so a route cannot be served without
//! being documented; this module adds the title and the two ways to sign
//! in.

use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use super::auth::SESSION_COOKIE;

/// The document's frame: title, description, security.
#[derive(OpenApi)]
#[openapi(
    info(title = "Branchline console API", description = "The administrator's console of a Branchline server: offices, clients, contents, the topology, accounts and the audit log. Sign in (POST /api/v1/session) for a session cookie, whose changes carry X-CSRF-Token, or send an API token as `Authorization: Bearer`."),
    modifiers(&Credentials),
    security(("session" = []), ("token" = [])),
)]
struct Frame;

/// The two ways to be signed in, as security schemes.
struct Credentials;

impl Modify for Credentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(SESSION_COOKIE))),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document, rendered once.
pub struct Document(String);

impl Document {
    /// Collects the document from the mounted endpoints and renders it.
    pub fn rendered() -> Self {
        Document(json(&collect()))
    }
}

fn collect() -> utoipa::openapi::OpenApi {
    let (_, doc) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(Frame::openapi())
        .service(super::endpoints())
        .split_for_parts();
    doc
}

fn json(doc: &utoipa::openapi::OpenApi) -> String {
    doc.to_pretty_json().unwrap_or_else(|e| {
        serde_json::json!({ "error": format!("the OpenAPI document does not render: {e}") })
            .to_string()
    })
}

/// `GET /api/v1/openapi.json`.
pub async fn serve(document: web::Data<Document>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document.0.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_is_documented_with_its_method_and_schemas() {
        let doc = collect();
        let mut routes: Vec<String> = doc
            .paths
            .paths
            .iter()
            .flat_map(|(path, item)| {
                [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("DELETE", item.delete.is_some()),
                ]
                .into_iter()
                .filter(|(_, there)| *there)
                .map(move |(method, _)| format!("{method} {path}"))
            })
            .collect();
        routes.sort();
        assert_eq!(
            routes,
            [
                "DELETE /api/v1/contents/{id}",
                "DELETE /api/v1/session",
                "DELETE /api/v1/tokens/{id}",
                "GET /api/v1/audit",
                "GET /api/v1/clients",
                "GET /api/v1/contents",
                "GET /api/v1/health",
                "GET /api/v1/offices",
                "GET /api/v1/offices/live",
                "GET /api/v1/session",
                "GET /api/v1/tokens",
                "GET /api/v1/topology",
                "GET /api/v1/users",
                "POST /api/v1/session",
                "POST /api/v1/tokens",
                "POST /api/v1/topology/preview",
                "POST /api/v1/users",
                "PUT /api/v1/topology",
            ]
        );
        let schemas = doc
            .components
            .as_ref()
            .map(|c| c.schemas.len())
            .unwrap_or(0);
        assert!(schemas >= 15, "{schemas} schemas");
        let text = json(&doc);
        for needed in ["ContentView", "AuditEntry", "X-CSRF-Token", "bearer"] {
            assert!(text.contains(needed), "{needed} missing");
        }
    }
}
