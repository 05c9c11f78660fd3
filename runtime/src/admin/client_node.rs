//! What a client node answers on its admin socket: status, and fetch (start
//! or join the content's transfer, stream progress, write the file).

use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Addr;
use branchline_actors::client::counters::Counters;
use branchline_actors::client::office::{ListTransfers, Office, StartTransfer};
use branchline_actors::client::store::{ExportTo, GetInventory, Store, StoreError};
use branchline_actors::client::strikes::StrikeBook;
use branchline_actors::client::transfer::{GetState, Phase};
use branchline_actors::pacing::busy::LinkPause;
use branchline_actors::wire::{
    AdminReply, AdminRequest, ClientStatus, StartCheck, TransferProgress,
};
use branchline_storage::{CacheError, ContentId};

use super::listener::Replies;
use crate::link_status::LinkStatus;
use crate::node::supervisor::{ListActors, NodeSupervisor};
use crate::server_link::Identity;
use crate::transport::{ListPeers, Transport};

/// How often a fetch reports progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// Writing a content out and fetching again what rotted: after this many
/// rounds that still find rotted pieces, the disk is failing.
const WRITE_OUT_ROUNDS: u32 = 3;

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
    pub async fn handle(
        self: Arc<Self>,
        request: AdminRequest,
        file: Option<File>,
        mut replies: Replies,
    ) {
        let reply = match request {
            AdminRequest::Status => match self.status().await {
                Ok(status) => AdminReply::ClientStatus(Box::new(status)),
                Err(e) => AdminReply::Error(e),
            },
            AdminRequest::Fetch { content, out } => {
                return self.fetch(content, out.zip(file), replies).await;
            }
            AdminRequest::SetLog(filter) => super::set_log(&filter),
            AdminRequest::Peers => {
                let mut peers = self.transport.send(ListPeers).await.unwrap_or_default();
                peers.extend(self.wan.send(ListPeers).await.unwrap_or_default());
                peers.sort_by_key(|p| (p.background, p.addr));
                AdminReply::Peers(peers)
            }
            AdminRequest::KillActor { name, how } => {
                super::kill_actor(&self.supervisor, name, how).await
            }
            AdminRequest::Publish { .. }
            | AdminRequest::CreateJoinToken { .. }
            | AdminRequest::SignUrl { .. }
            | AdminRequest::Purge(_)
            | AdminRequest::TopologyImport(_)
            | AdminRequest::TopologyPreview(_)
            | AdminRequest::Health
            | AdminRequest::TopologyExport
            | AdminRequest::TopologyShow
            | AdminRequest::AddUser { .. }
            | AdminRequest::Users
            | AdminRequest::CreateApiToken { .. }
            | AdminRequest::ApiTokens
            | AdminRequest::RevokeApiToken(_)
            | AdminRequest::Audit { .. } => AdminReply::Error(
                "this is a client; publish, purge, join tokens, topology and console accounts need the server's config or data directory"
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

    async fn fetch(&self, content: ContentId, out: Option<(PathBuf, File)>, mut replies: Replies) {
        let reply = match self.download(content, &mut replies).await {
            Err(Some(reply)) => reply,
            Err(None) => return, // the tool went away; the download goes on
            Ok(done) => match out {
                Some((label, file)) => {
                    self.write_out(content, label, file, done, &mut replies)
                        .await
                }
                None => AdminReply::Fetched(done),
            },
        };
        replies.send(&reply).await;
    }

    /// Starts (or joins) the content's transfer and streams its progress
    /// until every piece is held. `Err(None)`: the tool went away.
    async fn download(
        &self,
        content: ContentId,
        replies: &mut Replies,
    ) -> Result<TransferProgress, Option<AdminReply>> {
        let transfer = self
            .office
            .send(StartTransfer(content))
            .await
            .map_err(|e| AdminReply::Error(format!("office unavailable: {e}")))?;
        loop {
            let state = transfer
                .send(GetState)
                .await
                .map_err(|e| AdminReply::Error(format!("the transfer stopped: {e}")))?;
            match state.phase {
                Phase::Starting | Phase::Running => {
                    if !replies.send(&AdminReply::Progress(state.progress)).await {
                        return Err(None);
                    }
                    tokio::time::sleep(PROGRESS_EVERY).await;
                }
                Phase::Failed(reason) => return Err(Some(AdminReply::Error(reason))),
                Phase::Complete => return Ok(state.progress),
            }
        }
    }

    /// Writes a complete content into the file the tool passed, every
    /// piece verified on the way out. A piece that rotted on disk is
    /// dropped, fetched again (from a peer or the origin) and then written;
    /// the tool renames the file only after `Fetched`.
    async fn write_out(
        &self,
        content: ContentId,
        label: PathBuf,
        file: File,
        mut done: TransferProgress,
        replies: &mut Replies,
    ) -> AdminReply {
        let file = Arc::new(file);
        let mut pieces = None;
        let mut round = 0;
        loop {
            round += 1;
            let exported = self
                .store
                .send(ExportTo {
                    content,
                    out: file.clone(),
                    label: label.clone(),
                    pieces: pieces.take(),
                })
                .await;
            // What to write in the next round: the pieces dropped on the
            // way out, or everything (`None`) if pieces had been dropped
            // before (found rotted while the transfer believed it whole).
            let next = match exported {
                Ok(Ok(exported)) if exported.dropped.is_empty() => {
                    return AdminReply::Fetched(done);
                }
                Ok(Ok(exported)) => Some(exported.dropped),
                Ok(Err(StoreError::Cache(CacheError::Incomplete { .. }))) => None,
                Ok(Err(e)) => {
                    return AdminReply::Error(format!("writing {} failed: {e}", label.display()));
                }
                Err(e) => return AdminReply::Error(format!("store unavailable: {e}")),
            };
            let which = next
                .as_ref()
                .map_or_else(|| "some".to_owned(), |p| format!("{p:?}"));
            if round == WRITE_OUT_ROUNDS {
                return AdminReply::Error(format!(
                    "pieces {which} of {content} failed verification on disk again after being fetched {} times; the disk under the cache is failing (check it); {} was not written",
                    WRITE_OUT_ROUNDS - 1,
                    label.display()
                ));
            }
            tracing::warn!(%content, pieces = %which, "pieces rotted on disk were dropped while writing out; fetching them again");
            let again = match self.download(content, replies).await {
                Ok(again) => again,
                Err(Some(reply)) => return reply,
                Err(None) => return AdminReply::Error("the tool went away".into()),
            };
            done.from_peers += again.from_peers;
            done.from_parent += again.from_parent;
            done.from_origin += again.from_origin;
            pieces = next;
        }
    }
}
