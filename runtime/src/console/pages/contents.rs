//! The Contents page: every published content, how many clients hold it,
//! a link to its rollout on the Offices page, and (for an admin) purge,
//! after a confirmation naming it.

use actix_web::{HttpResponse, ResponseError, web};
use branchline_actors::wire::Role;
use maud::html;

use super::layout::frame;
use super::see_other;
use crate::commands::mib;
use crate::console::api::Console;
use crate::console::api::auth::Reader;

/// `GET /contents`.
pub async fn page(reader: Option<Reader>, console: web::Data<Console>) -> HttpResponse {
    let Some(Reader(signed)) = reader else {
        return see_other("/sign-in");
    };
    let contents = match console.registry(&signed).await {
        Ok(registry) => registry.contents,
        Err(e) => return e.error_response(),
    };
    let admin = signed.role == Role::Admin;
    super::page(frame(
        "Contents",
        Some(&signed),
        &html! {
            @if contents.is_empty() {
                p { "Nothing is published yet (" code { "branchline publish" } ")." }
            } @else {
                table #contents {
                    thead { tr {
                        th { "Name" } th { "Size" } th { "Pieces" } th { "Clients done" }
                        th { "Downloading" } th { "Origins" } th { "" }
                    } }
                    tbody {
                        @for c in &contents {
                            tr data-content=(c.id) {
                                td { a href={ "/offices?content=" (c.id) } { (c.name) }
                                     @if c.confidential { " (confidential)" } }
                                td.number { (mib(c.size)) }
                                td.number { (c.pieces) }
                                td.number { (c.complete_holders) }
                                td.number { (c.partial_holders) }
                                td { @for o in &c.origins { div { (o) } } }
                                td { @if admin {
                                    button.purge type="button" data-id=(c.id) data-name=(c.name) { "Purge" }
                                } }
                            }
                        }
                    }
                }
            }
        },
    ))
}
