//! The audit log page: the newest changes first, who made each and from
//! where.

use actix_web::{HttpResponse, ResponseError, web};
use branchline_actors::wire::{AdminReply, AdminRequest};
use maud::html;

use super::layout::frame;
use super::see_other;
use crate::console::api::auth::Reader;
use crate::console::api::{Console, unexpected};

/// Entries the page shows.
const SHOWN: u32 = 500;

/// `GET /audit`.
pub async fn page(reader: Option<Reader>, console: web::Data<Console>) -> HttpResponse {
    let Some(Reader(signed)) = reader else {
        return see_other("/sign-in");
    };
    let entries = match console
        .perform(AdminRequest::Audit { most: SHOWN }, &signed.caller())
        .await
    {
        Ok(AdminReply::Audit(entries)) => entries,
        Ok(other) => return unexpected(&other).error_response(),
        Err(e) => return e.error_response(),
    };
    super::page(frame(
        "Audit log",
        Some(&signed),
        &html! {
            table #audit {
                thead { tr { th { "When (UTC)" } th { "Who" } th { "What" } th { "From" } } }
                tbody {
                    @for e in entries.iter().rev() {
                        tr {
                            td { (crate::commands::utc(e.at_ms)) }
                            td { (e.who) }
                            td { (e.what) }
                            td { (e.from) }
                        }
                    }
                }
            }
        },
    ))
}
