//! The Health page: each check of a health run made when the page is
//! loaded (the button loads it again), its finding, and what it flagged:
//! clients not heard from, devices refused for their protocol version,
//! the disk.

use actix_web::{HttpResponse, ResponseError, web};
use branchline_actors::wire::{AdminReply, AdminRequest, HealthLevel};
use maud::html;

use super::layout::frame;
use super::see_other;
use crate::console::api::auth::Reader;
use crate::console::api::{Console, unexpected};

/// `GET /health`.
pub async fn page(reader: Option<Reader>, console: web::Data<Console>) -> HttpResponse {
    let Some(Reader(signed)) = reader else {
        return see_other("/sign-in");
    };
    let report = match console
        .perform(AdminRequest::Health, &signed.caller())
        .await
    {
        Ok(AdminReply::Health(report)) => report,
        Ok(other) => return unexpected(&other).error_response(),
        Err(e) => return e.error_response(),
    };
    super::page(frame(
        "Health",
        Some(&signed),
        &html! {
            form method="get" action="/health" {
                button type="submit" { "Run the health check" }
                " run at " (crate::commands::utc(report.at_ms))
            }
            table #health {
                thead { tr { th { "Check" } th { "Result" } th { "Finding" } th { "Flagged" } } }
                tbody {
                    @for check in &report.checks {
                        @let level = match check.level {
                            HealthLevel::Ok => "ok",
                            HealthLevel::Warn => "warn",
                            HealthLevel::Fail => "fail",
                        };
                        tr data-check=(check.name) data-level=(level) {
                            td { (check.name) }
                            td { span class={ "level " (level) } { (level) } }
                            td { (check.detail) }
                            td { @for flagged in &check.flagged { div.flagged { (flagged) } } }
                        }
                    }
                }
            }
        },
    ))
}
