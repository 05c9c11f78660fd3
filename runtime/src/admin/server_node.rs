//! What a server node answers on its admin socket: status, publish and
//! the topology.

use std::net::SocketAddr;
use std::sync::Arc;

use actix::Addr;
use branchline_actors::server::directory::changes::{Publish, Purge};
use branchline_actors::server::directory::views::{GetRegistryView, PreviewTopology, ShowTopology};
use branchline_actors::server::directory::{DirectoryActor, ExportTopology, ImportTopology};
use branchline_actors::wire::{AdminReply, AdminRequest, FileStorageView, ServerStatus};

use super::listener::Replies;
use crate::console::accounts::Accounts;
use crate::console::api_tokens::ApiTokens;
use crate::console::audit::{AuditLog, Caller};
use crate::console::health;
use crate::file_storage::FileStorage;
use crate::join::ca::Enroller;
use crate::node::supervisor::{ListActors, NodeSupervisor};
use crate::version_refusals::VersionRefusals;

/// The server node's admin handler.
pub struct ServerAdmin {
    /// The directory, in front of the office actors.
    pub registry: Addr<DirectoryActor>,
    /// The node supervisor.
    pub supervisor: Addr<NodeSupervisor>,
    /// The control endpoint's address.
    pub addr: SocketAddr,
    /// The embedded file storage and its base URL, if enabled.
    pub file_storage: Option<(FileStorage, String)>,
    /// Join tokens and certificates, on a server with its own CA.
    pub enroller: Option<Arc<Enroller>>,
    /// The console's accounts.
    pub accounts: Arc<Accounts>,
    /// The API tokens.
    pub api_tokens: Arc<ApiTokens>,
    /// The record of every change.
    pub audit: Arc<AuditLog>,
    /// What the health check looks at beyond the registry.
    pub health: HealthSources,
}

/// What the health check reads besides the registry.
pub struct HealthSources {
    /// Devices the control endpoint refused for their protocol version.
    pub refusals: Arc<VersionRefusals>,
    /// The server's data directory.
    pub data_dir: std::path::PathBuf,
    /// Its metadata store.
    pub meta: Arc<branchline_storage::MetaStore>,
    /// The clients' heartbeat period.
    pub heartbeat: std::time::Duration,
    /// The certificates the server shows (DER), by what they are.
    pub certificates: Vec<(String, Vec<u8>)>,
}

impl ServerAdmin {
    /// The node's status (also what the metrics endpoint renders).
    pub async fn status(&self) -> Result<ServerStatus, String> {
        let registry = self
            .registry
            .send(GetRegistryView)
            .await
            .map_err(|e| format!("registry unavailable: {e}"))?;
        Ok(ServerStatus {
            addr: self.addr,
            registry,
            file_storage: self.file_storage.as_ref().map(|(fs, url)| FileStorageView {
                base_url: url.clone(),
                dir: fs.root().to_path_buf(),
                bytes_served: fs.bytes_served(),
                connections_refused: fs.connections_refused(),
            }),
            actors: self.supervisor.send(ListActors).await.unwrap_or_default(),
        })
    }

    /// Answers one request of the admin socket.
    pub async fn handle(self: Arc<Self>, request: AdminRequest, mut replies: Replies) {
        let reply = self.perform(request, &Caller::admin_socket()).await;
        replies.send(&reply).await;
    }

    /// Answers `request` made by `caller` (the admin socket, or an account
    /// or token of the console's API); a change that was made goes to the
    /// audit log, in the caller's name, before it is answered.
    pub async fn perform(&self, request: AdminRequest, caller: &Caller) -> AdminReply {
        let change = change_of(&request);
        let reply = self.answer(request).await;
        match change {
            Some(what) => self.audited(what, reply, caller).await,
            None => reply,
        }
    }

    /// Records `what` in the audit log if `reply` says it was done.
    async fn audited(&self, what: String, reply: AdminReply, caller: &Caller) -> AdminReply {
        let what = match &reply {
            AdminReply::Error(_) | AdminReply::TopologyRefused(_) => return reply,
            AdminReply::Published(id) => format!("{what}: {id}"),
            AdminReply::TopologyImported(offices) => format!("{what}: {offices} offices"),
            AdminReply::ApiToken { view, .. } => format!("{what}: id {}", view.id),
            _ => what,
        };
        match self.record(caller, what.clone()).await {
            Ok(()) => reply,
            Err(e) => AdminReply::Error(format!(
                "{what}: done, but the audit log could not record it: {e}"
            )),
        }
    }

    /// Appends `what`, done by `caller`, to the audit log; durable when it
    /// returns.
    pub async fn record(&self, caller: &Caller, what: String) -> Result<(), String> {
        let (audit, caller) = (self.audit.clone(), caller.clone());
        off_thread(move || audit.record(&caller.who, &what, &caller.from))
            .await
            .map(|_| ())
    }

    async fn answer(&self, request: AdminRequest) -> AdminReply {
        match request {
            AdminRequest::Status => match self.status().await {
                Ok(status) => AdminReply::ServerStatus(status),
                Err(e) => AdminReply::Error(e),
            },
            AdminRequest::Publish {
                manifest,
                origins,
                confidential,
            } => match self
                .registry
                .send(Publish {
                    confidential,
                    manifest,
                    origins: origins.clone(),
                })
                .await
            {
                Ok(Ok(id)) => {
                    if let Some((storage, url)) = &self.file_storage {
                        let urls: Vec<String> = origins.into_iter().map(|o| o.url).collect();
                        storage.allow(url, &urls);
                    }
                    AdminReply::Published(id)
                }
                Ok(Err(e)) => AdminReply::Error(e.to_string()),
                Err(e) => AdminReply::Error(format!("registry unavailable: {e}")),
            },
            AdminRequest::TopologyImport(csv) => match self.registry.send(ImportTopology(csv)).await {
                Ok(Ok(offices)) => AdminReply::TopologyImported(offices),
                Ok(Err(problems)) => AdminReply::TopologyRefused(problems),
                Err(e) => AdminReply::Error(format!("registry unavailable: {e}")),
            },
            AdminRequest::TopologyPreview(csv) => match self.registry.send(PreviewTopology(csv)).await {
                Ok(Ok(change)) => AdminReply::TopologyPreview(change),
                Ok(Err(problems)) => AdminReply::TopologyRefused(problems),
                Err(e) => AdminReply::Error(format!("registry unavailable: {e}")),
            },
            AdminRequest::TopologyExport => match self.registry.send(ExportTopology).await {
                Ok(csv) => AdminReply::TopologyCsv(csv),
                Err(e) => AdminReply::Error(format!("registry unavailable: {e}")),
            },
            AdminRequest::TopologyShow => match self.registry.send(ShowTopology).await {
                Ok(view) => AdminReply::Topology(view),
                Err(e) => AdminReply::Error(format!("registry unavailable: {e}")),
            },
            AdminRequest::SetLog(filter) => super::set_log(&filter),
            AdminRequest::KillActor { name, how } => {
                super::kill_actor(&self.supervisor, name, how).await
            }
            AdminRequest::Purge(id) => match self.registry.send(Purge(id)).await {
                Ok(Ok(())) => {
                    self.withdraw_purged().await;
                    AdminReply::Done(format!(
                        "purged {id}: the server forgot it, the file storage no longer serves what only it named, and every client drops it from its cache at its next heartbeat"
                    ))
                }
                Ok(Err(e)) => AdminReply::Error(e.to_string()),
                Err(e) => AdminReply::Error(format!("registry unavailable: {e}")),
            },
            AdminRequest::Peers => AdminReply::Error(
                "this is the server; peers are a client's (shell --config client.toml)".into(),
            ),
            AdminRequest::Fetch { .. } => {
                AdminReply::Error("this is the server; fetch with a client's config (`branchline fetch --config client.toml`)".into())
            }
            AdminRequest::CreateJoinToken { expires_secs } => self.join_token(expires_secs).await,
            AdminRequest::SignUrl { url, expires_secs } => match &self.file_storage {
                Some((storage, base)) => match storage.sign(base, &url, expires_secs) {
                    Ok(signed) => AdminReply::SignedUrl(signed),
                    Err(e) => AdminReply::Error(e),
                },
                None => AdminReply::Error("this server has no file storage".into()),
            },
            AdminRequest::AddUser {
                name,
                role,
                password,
            } => {
                let accounts = self.accounts.clone();
                match off_thread(move || accounts.add(&name, role, &password).map(|()| name)).await
                {
                    Ok(name) => AdminReply::Done(format!(
                        "made the {} account `{name}`",
                        role.name()
                    )),
                    Err(e) => AdminReply::Error(e),
                }
            }
            AdminRequest::CreateApiToken {
                name,
                role,
                expires_secs,
            } => {
                let tokens = self.api_tokens.clone();
                let lifetime = std::time::Duration::from_secs(expires_secs);
                match off_thread(move || tokens.make(&name, role, lifetime)).await {
                    Ok((token, view)) => AdminReply::ApiToken { token, view },
                    Err(e) => AdminReply::Error(e),
                }
            }
            AdminRequest::ApiTokens => match self.api_tokens.list() {
                Ok(tokens) => AdminReply::ApiTokens(tokens),
                Err(e) => AdminReply::Error(e.to_string()),
            },
            AdminRequest::RevokeApiToken(id) => {
                let tokens = self.api_tokens.clone();
                match off_thread(move || tokens.revoke(&id)).await {
                    Ok(view) => AdminReply::Done(format!(
                        "revoked the API token {} ({})",
                        view.id, view.name
                    )),
                    Err(e) => AdminReply::Error(e),
                }
            }
            AdminRequest::Users => match self.accounts.list() {
                Ok(users) => AdminReply::Users(users),
                Err(e) => AdminReply::Error(e.to_string()),
            },
            AdminRequest::Health => match self.health().await {
                Ok(report) => AdminReply::Health(report),
                Err(e) => AdminReply::Error(e),
            },
            AdminRequest::Audit { most } => {
                match self.audit.recent(usize::try_from(most).unwrap_or(usize::MAX)) {
                    Ok(entries) => AdminReply::Audit(entries),
                    Err(e) => AdminReply::Error(e.to_string()),
                }
            }
        }
    }

    /// A health run: the registry's clients, the refusals, the disk.
    async fn health(&self) -> Result<branchline_actors::wire::HealthReport, String> {
        let clients = self
            .registry
            .send(GetRegistryView)
            .await
            .map_err(|e| format!("registry unavailable: {e}"))?
            .clients;
        let (meta, dir) = (self.health.meta.clone(), self.health.data_dir.clone());
        let (metadata_bytes, disk) = off_thread(move || {
            let disk = rustix::fs::statvfs(&dir).ok().map(|s| health::Disk {
                free: s.f_bavail.saturating_mul(s.f_frsize),
                total: s.f_blocks.saturating_mul(s.f_frsize),
            });
            meta.db().size_on_disk().map(|bytes| (bytes, disk))
        })
        .await?;
        Ok(health::assess(&health::Inputs {
            now_ms: branchline_storage::records::unix_ms(),
            clients,
            heartbeat: self.health.heartbeat,
            refusals: self.health.refusals.recent(),
            disk,
            metadata_bytes,
            certificates: self
                .health
                .certificates
                .iter()
                .map(|(what, der)| (what.clone(), crate::console::cert_dates::not_after(der)))
                .collect(),
        }))
    }

    async fn join_token(&self, expires_secs: u64) -> AdminReply {
        let Some(enroller) = self.enroller.clone() else {
            return AdminReply::Error(
                "this server does not let devices join: its certificates come from a [tls] section (issue them with `branchline pki issue`), or it runs insecure".into(),
            );
        };
        let lifetime = std::time::Duration::from_secs(expires_secs);
        match off_thread(move || enroller.make_token(lifetime)).await {
            Ok((token, expires_ms)) => AdminReply::JoinToken { token, expires_ms },
            Err(e) => AdminReply::Error(e),
        }
    }

    /// After a purge, the file storage serves exactly what the contents
    /// still published name (all it served if the registry cannot say).
    async fn withdraw_purged(&self) {
        let Some((storage, url)) = &self.file_storage else {
            return;
        };
        match self.registry.send(GetRegistryView).await {
            Ok(view) => storage.publish_only(url, view.contents.iter().flat_map(|c| &c.origins)),
            Err(e) => {
                tracing::error!(error = %e, "registry unavailable after a purge; the file storage withdraws every file");
                storage.publish_only(url, []);
            }
        }
    }
}

/// Runs a call of the server's stores (each change is flushed to disk, or
/// a password is hashed) on the blocking pool, not on the thread answering
/// the admin socket or the console; its error, or the job's, as a line.
pub(crate) async fn off_thread<T: Send + 'static, E: std::fmt::Display + Send + 'static>(
    job: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, String> {
    match branchline_actors::panics::run_blocking(|| {}, job).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// The line the audit log keeps for `request` if it changes anything.
fn change_of(request: &AdminRequest) -> Option<String> {
    Some(match request {
        AdminRequest::Publish {
            manifest,
            confidential,
            ..
        } => {
            let how = if *confidential { " (confidential)" } else { "" };
            format!("publish {}{how}", manifest.name)
        }
        AdminRequest::TopologyImport(_) => "topology import".into(),
        AdminRequest::Purge(id) => format!("purge {id}"),
        AdminRequest::SignUrl { url, expires_secs } => {
            format!("sign url {url} for {expires_secs} s")
        }
        AdminRequest::CreateJoinToken { expires_secs } => {
            format!("create a join token for {expires_secs} s")
        }
        AdminRequest::SetLog(filter) => format!("log filter {filter}"),
        AdminRequest::KillActor { name, how } => format!("kill {name} ({how:?})"),
        AdminRequest::AddUser { name, role, .. } => {
            format!("add-user {name} ({})", role.name())
        }
        AdminRequest::CreateApiToken {
            name,
            role,
            expires_secs,
        } => {
            format!(
                "create the API token {name} ({}) for {expires_secs} s",
                role.name()
            )
        }
        AdminRequest::RevokeApiToken(id) => format!("revoke the API token {id}"),
        AdminRequest::Status
        | AdminRequest::Fetch { .. }
        | AdminRequest::TopologyExport
        | AdminRequest::TopologyPreview(_)
        | AdminRequest::TopologyShow
        | AdminRequest::Peers
        | AdminRequest::Users
        | AdminRequest::ApiTokens
        | AdminRequest::Audit { .. }
        | AdminRequest::Health => return None,
    })
}
