//! The topology through the API: the spreadsheet (`GET`), what a new one
//! would change (`POST /topology/preview`, any role: it changes nothing)
//! and replacing it (`PUT`, admins), all or nothing; a refused sheet is a
//! 422 with its problems by line, as the command line prints them.

use actix_web::{HttpResponse, get, post, put, web};
use branchline_actors::topology::diff::TopologyChange;
use branchline_actors::wire::{AdminReply, AdminRequest};
use serde::Serialize;

use super::auth::{Changer, Reader, Signed};
use super::error::{ApiError, ErrorBody};
use super::{Console, unexpected};

/// Offices a sheet made.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Imported {
    /// Offices in force now.
    pub offices: u32,
}

/// The topology sheet (CSV), as `branchline topology export` gives it.
#[utoipa::path(tag = "topology",
    responses((status = 200, content_type = "text/csv", body = String), (status = 401, body = ErrorBody)))]
#[get("/topology")]
pub async fn sheet(
    Reader(signed): Reader,
    console: web::Data<Console>,
) -> Result<HttpResponse, ApiError> {
    match console
        .perform(AdminRequest::TopologyExport, &signed.caller())
        .await?
    {
        AdminReply::TopologyCsv(csv) => Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                "Content-Disposition",
                "attachment; filename=\"topology.csv\"",
            ))
            .body(csv)),
        other => Err(unexpected(&other)),
    }
}

/// Asks the server with a sheet; a refused one as a 422 with its problems.
async fn with_sheet(
    console: &Console,
    signed: &Signed,
    request: AdminRequest,
) -> Result<AdminReply, ApiError> {
    match console.perform(request, &signed.caller()).await? {
        AdminReply::TopologyRefused(problems) => Err(ApiError::refused(
            format!(
                "the sheet was refused ({} problems); nothing changed",
                problems.len()
            ),
            problems,
        )),
        reply => Ok(reply),
    }
}

/// What replacing the topology with this sheet (CSV) would change:
/// offices added, removed and changed, clients that would move. Nothing
/// changes.
#[utoipa::path(tag = "topology",
    request_body(content = String, content_type = "text/csv"),
    responses(
        (status = 200, body = TopologyChange),
        (status = 401, body = ErrorBody), (status = 403, description = "No CSRF token", body = ErrorBody),
        (status = 422, description = "Refused; the problems by line", body = ErrorBody),
    ))]
#[post("/topology/preview")]
pub async fn preview(
    Reader(signed): Reader,
    console: web::Data<Console>,
    body: web::Bytes,
) -> Result<web::Json<TopologyChange>, ApiError> {
    match with_sheet(
        &console,
        &signed,
        AdminRequest::TopologyPreview(body.to_vec()),
    )
    .await?
    {
        AdminReply::TopologyPreview(change) => Ok(web::Json(change)),
        other => Err(unexpected(&other)),
    }
}

/// Replaces the topology with a sheet (CSV, as `GET /api/v1/topology`
/// gives it), all at once or not at all.
#[utoipa::path(tag = "topology",
    request_body(content = String, content_type = "text/csv"),
    responses(
        (status = 200, body = Imported),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, description = "Refused; nothing changed; the problems by line", body = ErrorBody),
    ))]
#[put("/topology")]
pub async fn import(
    Changer(signed): Changer,
    console: web::Data<Console>,
    body: web::Bytes,
) -> Result<web::Json<Imported>, ApiError> {
    match with_sheet(
        &console,
        &signed,
        AdminRequest::TopologyImport(body.to_vec()),
    )
    .await?
    {
        AdminReply::TopologyImported(offices) => Ok(web::Json(Imported { offices })),
        other => Err(unexpected(&other)),
    }
}
