//! The offices as the console shows them: each office of the tree with
//! its clients and RVPs, the bytes its clients received by source (peers
//! in the office, the office above, the origin) and the share that did
//! not cross its WAN link, and, for a chosen content, how many of its
//! clients are done, downloading or waiting. `GET /api/v1/offices` answers
//! once; `GET /api/v1/offices/live` sends the same every second as
//! Server-Sent Events until the caller's session or token ends.

use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use branchline_actors::wire::{
    AdminReply, AdminRequest, ContentView, LinkView, OfficeView, OriginUse, RegistryView,
};
use branchline_storage::ContentId;
use branchline_storage::records::unix_ms;
use serde::{Deserialize, Serialize};

use super::auth::{Reader, Signed};
use super::error::{ApiError, ErrorBody};
use super::{Console, MOST_LIVE_STREAMS, unexpected};
use std::sync::atomic::Ordering;

/// A live stream's place among those open, given back when it ends.
struct LiveSlot(std::sync::Arc<Console>);

impl Drop for LiveSlot {
    fn drop(&mut self) {
        self.0.live_streams.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How often the live view is sent.
pub const LIVE_EVERY: Duration = Duration::from_secs(1);

/// Which content's rollout to show.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContentChoice {
    /// A content's id; without it, no rollout counts.
    pub content: Option<String>,
}

/// How far an office's clients are with the chosen content.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Rollout {
    /// Clients holding all of it.
    pub done: u32,
    /// Clients holding part of it.
    pub downloading: u32,
    /// Live clients holding none of it yet.
    pub waiting: u32,
}

/// One office, as the Offices page shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct OfficeRow {
    /// The office, its clients and RVPs.
    pub office: OfficeView,
    /// What its clients received, by source.
    pub link: LinkView,
    /// Of the bytes its clients received, the percentage that came from
    /// peers in the office (did not cross its WAN link); none before any
    /// byte came.
    pub efficiency_pct: Option<f64>,
    /// For the chosen content.
    pub rollout: Option<Rollout>,
    /// Its use of the origin, and why.
    pub origin: Vec<OriginUse>,
}

/// The office tree, top down, depth first.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct OfficesView {
    /// When, ms since the epoch (the server's clock).
    pub at_ms: u64,
    /// The chosen content.
    pub content: Option<ContentView>,
    /// The offices.
    pub offices: Vec<OfficeRow>,
}

/// The view for `content`, asked of the server now.
pub async fn view(
    console: &Console,
    signed: &Signed,
    content: Option<ContentId>,
) -> Result<OfficesView, ApiError> {
    let (tree, registry) = asked(console, signed).await?;
    Ok(rows(tree, &registry, content))
}

/// The office tree and the registry's figures, asked of the server now.
pub async fn asked(
    console: &Console,
    signed: &Signed,
) -> Result<(Vec<OfficeView>, RegistryView), ApiError> {
    let tree = match console
        .perform(AdminRequest::TopologyShow, &signed.caller())
        .await?
    {
        AdminReply::Topology(view) => view.offices,
        other => return Err(unexpected(&other)),
    };
    Ok((tree, console.registry(signed).await?))
}

/// Puts the tree and the registry's figures together (no I/O).
pub fn rows(
    tree: Vec<OfficeView>,
    registry: &RegistryView,
    content: Option<ContentId>,
) -> OfficesView {
    let chosen = content.and_then(|id| registry.contents.iter().find(|c| c.id == id).cloned());
    let offices = tree
        .into_iter()
        .map(|office| {
            let link = registry
                .links
                .iter()
                .find(|l| l.office == office.name)
                .cloned()
                .unwrap_or_default();
            let received = link.from_peers + link.from_parent + link.from_origin;
            let efficiency_pct = (received > 0).then(|| {
                // Byte counts far below 2^52 are exact as f64.
                #[allow(clippy::cast_precision_loss)]
                let pct = 100.0 * link.from_peers as f64 / received as f64;
                (pct * 10.0).round() / 10.0
            });
            let rollout = chosen.as_ref().map(|c| {
                let (done, downloading) = registry
                    .holdings
                    .iter()
                    .find(|h| h.office == office.name && h.content == c.id)
                    .map_or((0, 0), |h| (h.complete, h.partial));
                Rollout {
                    done,
                    downloading,
                    waiting: link.clients.saturating_sub(done + downloading),
                }
            });
            let origin = registry
                .origin
                .iter()
                .filter(|o| o.office == office.name)
                .cloned()
                .collect();
            OfficeRow {
                office,
                link,
                efficiency_pct,
                rollout,
                origin,
            }
        })
        .collect();
    OfficesView {
        at_ms: unix_ms(),
        content: chosen,
        offices,
    }
}

/// The content id a query names, if any.
pub fn chosen(choice: &ContentChoice) -> Result<Option<ContentId>, ApiError> {
    match choice.content.as_deref() {
        None | Some("") => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("`{text}` is not a content id: {e}"))),
    }
}

/// The office tree with each office's links, origin use and, for a
/// chosen content, its rollout.
#[utoipa::path(tag = "offices", params(ContentChoice),
    responses((status = 200, body = OfficesView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
#[get("/offices")]
pub async fn offices_now(
    Reader(signed): Reader,
    console: web::Data<Console>,
    choice: web::Query<ContentChoice>,
) -> Result<web::Json<OfficesView>, ApiError> {
    let content = chosen(&choice)?;
    Ok(web::Json(view(&console, &signed, content).await?))
}

/// The same as `GET /api/v1/offices`, every second, as Server-Sent
/// Events (`event: offices`, the JSON as `data`), until the session or
/// token ends.
#[utoipa::path(tag = "offices", params(ContentChoice),
    responses((status = 200, content_type = "text/event-stream", body = OfficesView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
#[get("/offices/live")]
pub async fn offices_live(
    Reader(signed): Reader,
    console: web::Data<Console>,
    choice: web::Query<ContentChoice>,
) -> Result<HttpResponse, ApiError> {
    let content = chosen(&choice)?;
    let open = console.live_streams.fetch_add(1, Ordering::SeqCst);
    let slot = LiveSlot(console.clone().into_inner());
    if open >= MOST_LIVE_STREAMS {
        return Err(ApiError::unavailable(format!(
            "{MOST_LIVE_STREAMS} live views are open; close one or try again later"
        )));
    }
    let ticks = tokio::time::interval(LIVE_EVERY);
    let events = futures_util::stream::unfold(
        (ticks, console, signed, slot),
        move |(mut ticks, console, signed, slot)| async move {
            ticks.tick().await;
            if !console.still_signed(&signed) {
                return None;
            }
            let event = match view(&console, &signed, content).await {
                Ok(view) => format!(
                    "event: offices\ndata: {}\n\n",
                    serde_json::to_string(&view).unwrap_or_default()
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "the live offices view could not be made");
                    "event: problem\ndata: the server could not make the view; it tries again in a second\n\n".to_owned()
                }
            };
            Some((
                Ok::<_, actix_web::Error>(web::Bytes::from(event)),
                (ticks, console, signed, slot),
            ))
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .streaming(events))
}

#[cfg(test)]
mod tests {
    use super::*;
    use branchline_actors::topology::OfficeKind;
    use branchline_actors::wire::OfficeHoldings;

    fn office(name: &str, parent: Option<&str>) -> OfficeView {
        OfficeView {
            name: name.into(),
            parent: parent.map(Into::into),
            kind: OfficeKind::Default,
            blocks: Vec::new(),
            automatic: false,
            clients: Vec::new(),
            rvps: Vec::new(),
        }
    }

    #[test]
    fn rows_join_links_rollout_and_efficiency_by_office() {
        let id: ContentId = "11".repeat(32).parse().unwrap();
        let content = ContentView {
            id,
            name: "app".into(),
            size: 10,
            pieces: 1,
            origins: Vec::new(),
            confidential: false,
            complete_holders: 3,
            partial_holders: 1,
        };
        let registry = RegistryView {
            clients: Vec::new(),
            contents: vec![content],
            links: vec![
                LinkView {
                    office: "hq".into(),
                    clients: 2,
                    from_origin: 100,
                    from_peers: 100,
                    ..LinkView::default()
                },
                LinkView {
                    office: "branch".into(),
                    clients: 5,
                    from_parent: 100,
                    from_peers: 300,
                    ..LinkView::default()
                },
            ],
            origin: Vec::new(),
            bans: Vec::new(),
            holdings: vec![
                OfficeHoldings {
                    office: "hq".into(),
                    content: id,
                    complete: 2,
                    partial: 0,
                },
                OfficeHoldings {
                    office: "branch".into(),
                    content: id,
                    complete: 1,
                    partial: 1,
                },
            ],
        };
        let tree = vec![
            office("hq", None),
            office("branch", Some("hq")),
            office("new", Some("hq")),
        ];
        let view = rows(tree, &registry, Some(id));
        let got: Vec<(&str, Option<f64>, Option<Rollout>)> = view
            .offices
            .iter()
            .map(|r| (r.office.name.as_str(), r.efficiency_pct, r.rollout.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "hq",
                    Some(50.0),
                    Some(Rollout {
                        done: 2,
                        downloading: 0,
                        waiting: 0
                    })
                ),
                (
                    "branch",
                    Some(75.0),
                    Some(Rollout {
                        done: 1,
                        downloading: 1,
                        waiting: 3
                    })
                ),
                ("new", None, Some(Rollout::default())),
            ]
        );
        assert_eq!(view.content.map(|c| c.name), Some("app".into()));
    }
}
