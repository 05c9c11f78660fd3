//! The Offices page: the tree, each office's type, subnets, clients and
//! RVPs, what its clients received by source and the share that stayed
//! off its WAN link, and for a chosen content how many of its clients are
//! done, downloading or waiting. The script keeps the figures live from
//! `GET /api/v1/offices/live`, so a rollout can be watched as it runs.

use actix_web::{HttpResponse, ResponseError, web};
use maud::{Markup, html};

use super::layout::frame;
use super::see_other;
use crate::commands::mib;
use crate::console::api::Console;
use crate::console::api::auth::Reader;
use crate::console::api::offices::{ContentChoice, OfficeRow, asked, chosen, rows};

/// `GET /offices?content=ID`.
pub async fn page(
    reader: Option<Reader>,
    console: web::Data<Console>,
    choice: web::Query<ContentChoice>,
) -> HttpResponse {
    let Some(Reader(signed)) = reader else {
        return see_other("/sign-in");
    };
    let content = match chosen(&choice) {
        Ok(content) => content,
        Err(e) => return e.error_response(),
    };
    // One question to the server for both the table and the choice of
    // contents.
    let (tree, registry) = match asked(&console, &signed).await {
        Ok(asked) => asked,
        Err(e) => return e.error_response(),
    };
    let offices = rows(tree, &registry, content);
    let contents = registry.contents;
    let live = match content {
        Some(id) => format!("/api/v1/offices/live?content={id}"),
        None => "/api/v1/offices/live".to_owned(),
    };
    super::page(frame(
        "Offices",
        Some(&signed),
        &html! {
            form #choose-content method="get" action="/offices" {
                label { "Rollout of "
                    select name="content" {
                        option value="" { "(no content)" }
                        @for c in &contents {
                            option value=(c.id) selected[content == Some(c.id)] { (c.name) }
                        }
                    }
                }
                button type="submit" { "Show" }
                span #updated data-live=(live) { "" }
            }
            table #offices {
                thead { tr {
                    th { "Office" } th { "Type" } th { "Subnets" } th { "Clients" } th { "RVPs" }
                    th { "From peers" } th { "From the office above" } th { "From the origin" }
                    th { "Efficiency" }
                    @if content.is_some() { th { "Done" } th { "Downloading" } th { "Waiting" } }
                } }
                tbody {
                    @for row in &offices.offices { (office_row(row, depth(&offices.offices, row))) }
                }
            }
        },
    ))
}

/// How deep `row` is in the tree (the top office is 0).
fn depth(rows: &[OfficeRow], row: &OfficeRow) -> usize {
    let mut depth = 0;
    let mut parent = row.office.parent.as_deref();
    while let Some(name) = parent {
        depth += 1;
        parent = rows
            .iter()
            .find(|r| r.office.name == name)
            .and_then(|r| r.office.parent.as_deref());
        if depth > rows.len() {
            break;
        }
    }
    depth
}

fn office_row(row: &OfficeRow, depth: usize) -> Markup {
    let o = &row.office;
    html! {
        tr data-office=(o.name) {
            td class={ "depth-" (depth.min(8)) } { (o.name) @if o.automatic { " (automatic)" } }
            td { (format!("{:?}", o.kind)) }
            td { (o.blocks.join(", ")) }
            td.number data-field="clients" { (row.link.clients) }
            td data-field="rvps" { (o.rvps.join(", ")) }
            td.number data-field="from_peers" { (mib(row.link.from_peers)) }
            td.number data-field="from_parent" { (mib(row.link.from_parent)) }
            td.number data-field="from_origin" { (mib(row.link.from_origin)) }
            td.number data-field="efficiency" {
                @match row.efficiency_pct { Some(p) => (format!("{p:.1} %")), None => "–" }
            }
            @if let Some(r) = &row.rollout {
                td.number data-field="done" { (r.done) }
                td.number data-field="downloading" { (r.downloading) }
                td.number data-field="waiting" { (r.waiting) }
            }
        }
    }
}
