//! The Topology page: download the spreadsheet; upload one and see what
//! it would change (offices added, removed and changed, clients that
//! would move) before applying it, all at once; a refused sheet's
//! problems by line, as the command line gives them. The script sends the
//! file to `POST /api/v1/topology/preview`, then `PUT /api/v1/topology`.

use actix_web::HttpResponse;
use branchline_actors::wire::Role;
use maud::html;

use super::layout::frame;
use super::see_other;
use crate::console::api::auth::Reader;

/// `GET /topology`.
pub async fn page(reader: Option<Reader>) -> HttpResponse {
    let Some(Reader(signed)) = reader else {
        return see_other("/sign-in");
    };
    let admin = signed.role == Role::Admin;
    super::page(frame(
        "Topology",
        Some(&signed),
        &html! {
            p { a #download href="/api/v1/topology" download="topology.csv" { "Download the spreadsheet" } }
            form #topology-upload {
                label { "Spreadsheet (CSV) " input #sheet type="file" name="sheet" accept=".csv,text/csv" required; }
                button type="submit" { "Preview the change" }
            }
            section #preview hidden {
                h2 { "What it would change" }
                ul #preview-lines {}
                @if admin {
                    button #apply type="button" { "Apply" }
                } @else {
                    p { "Only an admin may apply it." }
                }
            }
            p #applied role="status" hidden {}
        },
    ))
}
