//! The Clients page: every registered client, or those whose name,
//! address or office holds the search text: its office, address, whether
//! it is one of its office's RVPs, when it was last heard from, and what
//! it last said of itself (free space, chassis, uptime).

use actix_web::{HttpResponse, ResponseError, web};
use maud::html;

use super::layout::frame;
use super::see_other;
use crate::console::api::Console;
use crate::console::api::auth::Reader;
use crate::console::api::reads::{ClientSearch, matching};

/// `GET /clients?q=TEXT`.
pub async fn page(
    reader: Option<Reader>,
    console: web::Data<Console>,
    search: web::Query<ClientSearch>,
) -> HttpResponse {
    let Some(Reader(signed)) = reader else {
        return see_other("/sign-in");
    };
    let clients = match console.registry(&signed).await {
        Ok(registry) => matching(registry.clients, search.q.as_deref()),
        Err(e) => return e.error_response(),
    };
    super::page(frame(
        "Clients",
        Some(&signed),
        &html! {
            form #search method="get" action="/clients" {
                label { "Name, address or office " input name="q" value=[search.q.as_deref()]; }
                button type="submit" { "Search" }
            }
            p { (clients.len()) " clients" }
            table #clients {
                thead { tr {
                    th { "Name" } th { "Office" } th { "Address" } th { "RVP" }
                    th { "Last heard" } th { "Free space" } th { "Chassis" } th { "Up" }
                } }
                tbody {
                    @for c in &clients {
                        tr data-client=(c.name) {
                            td { (c.name) }
                            td { (c.office) }
                            td { (c.addr) }
                            td { @if c.rvp { "RVP" } }
                            td.number { (format!("{:.1} s ago", c.last_seen_ms_ago as f64 / 1000.0)) }
                            @match &c.attributes {
                                Some(a) => {
                                    td.number { (format!("{} GiB", a.free_bytes >> 30)) }
                                    td { (format!("{:?}", a.chassis)) }
                                    td.number { (format!("{:.1} d", a.uptime_secs as f64 / 86400.0)) }
                                }
                                None => { td { "–" } td { "–" } td { "–" } }
                            }
                        }
                    }
                }
            }
        },
    ))
}
