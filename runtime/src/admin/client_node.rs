//! What a client node answers on its admin socket: status, and fetch (start
//! or join the content's transfer, stream progress, write the file).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Addr;
use branchline_actors::busy::LinkPause;
use branchline_actors::counters::Counters;
use branchline_actors::office::{ListTransfers, Office, StartTransfer};
use branchline_actors::store::{Export, GetInventory, Store};
use branchline_actors::strikes::StrikeBook;
use branchline_actors::transfer::{GetState, Phase};
use branchline_actors::wire::{
    AdminReply, AdminRequest, ClientStatus, StartCheck, TransferProgress,
};
use branchline_storage::ContentId;

use super::listener::Replies;
use crate::node::supervisor::{ListActors, NodeSupervisor};
use crate::server_link::{Identity, LinkStatus};
use crate::transport::{ListPeers, Transport};

/// How often a fetch reports progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// The client node's admin handler.
pub struct ClientAdmin {
    /// The office actor.
    pub office: Addr<Office>,
    /// The store.
    pub store: Addr<Store>,
    /// The node's counters.
    pub counters: Arc<Counters>,
    /// Who the node is.
    pub me: Identity,
    /// The server.
    pub server: SocketAddr,
    /// What the server link knows.
    pub link: Arc<LinkStatus>,
    /// The busy pause of the link into the office.
    pub link_pause: LinkPause,
    /// Peers struck and banned for bad bytes.
    pub strikes: Arc<Mutex<StrikeBook>>,
    /// The start-up self-check of the cache.
    pub start_check: Arc<Mutex<StartCheck>>,
    /// The node supervisor.
    pub supervisor: Addr<NodeSupervisor>,
    /// The foreground transport.
    pub transport: Addr<Transport>,
    /// The background transport.
    pub wan: Addr<Transport>,
}

impl ClientAdmin {
    /// Answers one request.
    pub async fn handle(self: Arc<Self>, request: AdminRequest, mut replies: Replies) {
        let reply = match request {
            AdminRequest::Status => match self.status().await {
                Ok(status) => AdminReply::ClientStatus(Box::new(status)),
                Err(e) => AdminReply::Error(e),
            },
            AdminRequest::Fetch { content, out } => return self.fetch(content, out, replies).await,
            AdminRequest::SetLog(filter) => super::set_log(&filter),
            AdminRequest::Peers => {
                let mut peers = self.transport.send(ListPeers).await.unwrap_or_default();
                peers.extend(self.wan.send(ListPeers).await.unwrap_or_default());
                peers.sort_by_key(|p| (p.background, p.addr));
                AdminReply::Peers(peers)
            }
            AdminRequest::KillActor { name, panic } => {
                super::kill_actor(&self.supervisor, name, panic).await
            }
            AdminRequest::Publish { .. }
            | AdminRequest::Purge(_)
            | AdminRequest::TopologyImport(_)
            | AdminRequest::TopologyExport
            | AdminRequest::TopologyShow => AdminReply::Error(
                "this is a client; publish and topology need the server's config or data directory"
                    .into(),
            ),
        };
        replies.send(&reply).await;
    }

    /// The node's status (also what the metrics endpoint renders).
    pub async fn status(&self) -> Result<ClientStatus, String> {
        let inventory = self
            .store
            .send(GetInventory)
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let (mut transfers, mut transfers_done) = (Vec::new(), 0u32);
        for transfer in self
            .office
            .send(ListTransfers)
            .await
            .map_err(|e| e.to_string())?
        {
            match transfer.send(GetState).await {
                Ok(state) if matches!(state.phase, Phase::Running | Phase::Starting) => {
                    transfers.push(state.progress);
                }
                Ok(state) if state.phase == Phase::Complete => transfers_done += 1,
                _ => {}
            }
        }
        Ok(ClientStatus {
            id: self.me.id,
            name: self.me.name.clone(),
            addr: self.me.addr,
            server: self.server,
            background: self.me.background,
            registered: self.link.registered(),
            office: self.link.office(),
            usage: inventory.usage,
            contents: inventory.contents,
            transfers,
            transfers_done,
            counters: self.counters.snapshot(),
            actors: self.supervisor.send(ListActors).await.unwrap_or_default(),
            background_link: self.link_pause.view(std::time::Instant::now()),
            strikes: branchline_actors::lock_unpoisoned(&self.strikes).views(),
            start_check: branchline_actors::lock_unpoisoned(&self.start_check).clone(),
        })
    }

    async fn fetch(&self, content: ContentId, out: Option<PathBuf>, mut replies: Replies) {
        if let Some(Err(e)) = out.as_deref().map(check_output) {
            replies.send(&AdminReply::Error(e)).await;
            return;
        }
        let transfer = match self.office.send(StartTransfer(content)).await {
            Ok(t) => t,
            Err(e) => {
                replies
                    .send(&AdminReply::Error(format!("office unavailable: {e}")))
                    .await;
                return;
            }
        };
        loop {
            let state = match transfer.send(GetState).await {
                Ok(state) => state,
                Err(e) => {
                    replies
                        .send(&AdminReply::Error(format!("the transfer stopped: {e}")))
                        .await;
                    return;
                }
            };
            match state.phase {
                Phase::Starting | Phase::Running => {
                    if !replies.send(&AdminReply::Progress(state.progress)).await {
                        return; // the tool went away; the download goes on
                    }
                    tokio::time::sleep(PROGRESS_EVERY).await;
                }
                Phase::Failed(reason) => {
                    replies.send(&AdminReply::Error(reason)).await;
                    return;
                }
                Phase::Complete => {
                    let reply = match out {
                        Some(out) => self.export(content, out, state.progress).await,
                        None => AdminReply::Fetched(state.progress),
                    };
                    replies.send(&reply).await;
                    return;
                }
            }
        }
    }

    /// Writes a complete content to `out`.
    async fn export(&self, content: ContentId, out: PathBuf, done: TransferProgress) -> AdminReply {
        match self
            .store
            .send(Export {
                content,
                out: out.clone(),
            })
            .await
        {
            Ok(Ok(())) => AdminReply::Fetched(done),
            Ok(Err(e)) => AdminReply::Error(format!("writing {} failed: {e}", out.display())),
            Err(e) => AdminReply::Error(format!("store unavailable: {e}")),
        }
    }
}

fn check_output(out: &std::path::Path) -> Result<(), String> {
    if !out.is_absolute() {
        return Err(format!("output path {} is not absolute", out.display()));
    }
    if out.is_dir() {
        return Err(format!("output path {} is a directory", out.display()));
    }
    match out.parent() {
        Some(parent) if parent.is_dir() => Ok(()),
        _ => Err(format!(
            "the directory of output path {} does not exist",
            out.display()
        )),
    }
}
