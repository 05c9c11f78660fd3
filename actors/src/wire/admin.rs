//! A command line tool to its local node over the admin socket: the
//! requests and the answers.

use std::path::PathBuf;

use branchline_storage::{ContentId, Manifest};
use serde::{Deserialize, Serialize};

use super::views::{ClientStatus, PeerView, ServerStatus, TopologyView, TransferProgress};

/// What a command line tool asks its local node over the admin socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminRequest {
    /// The node's status.
    Status,
    /// Client: download a content and write it out. Progress frames
    /// follow until `Fetched` or `Error`.
    Fetch {
        /// The content.
        content: ContentId,
        /// The file the tool writes, for messages. With it, the tool passes
        /// the file it opened right after this frame (see
        /// [`AdminRequest::passes_file`]) and the node writes the content
        /// into that file, never into a path of its own; `None` only
        /// downloads the content into the cache (pre-staging).
        out: Option<PathBuf>,
    },
    /// Server: publish a manifest with its origins.
    Publish {
        /// The manifest.
        manifest: Manifest,
        /// Where the bytes live, with each place's kind.
        origins: Vec<branchline_storage::Origin>,
        /// Never shared by peers: every client fetches it from an origin.
        confidential: bool,
    },
    /// Server: replace the topology with this spreadsheet (CSV bytes),
    /// all or nothing.
    TopologyImport(Vec<u8>),
    /// Server: what importing this spreadsheet would change; nothing
    /// changes.
    TopologyPreview(Vec<u8>),
    /// Server: the topology as a spreadsheet.
    TopologyExport,
    /// Server: the office tree with its clients.
    TopologyShow,
    /// Client: the peers it has sessions with.
    Peers,
    /// Replace the node's log filter, e.g. `debug` or
    /// `branchline_actors=debug,info`.
    SetLog(String),
    /// Server: remove a content from the server and from every cache.
    Purge(ContentId),
    /// Server: a URL of its file storage that anyone may fetch until it
    /// expires.
    SignUrl {
        /// The file's URL (or its path in the file storage).
        url: String,
        /// Its lifetime.
        expires_secs: u64,
    },
    /// Server: make a join token valid for this many seconds.
    CreateJoinToken {
        /// Its lifetime.
        expires_secs: u64,
    },
    /// Server: make a console account.
    AddUser {
        /// Its name.
        name: String,
        /// Its role.
        role: super::Role,
        /// Its password (the admin socket is the node's own account's;
        /// the server keeps only a hash).
        password: String,
    },
    /// Server: the console's accounts.
    Users,
    /// Server: make an API token.
    CreateApiToken {
        /// What it is for.
        name: String,
        /// What it may do.
        role: super::Role,
        /// Its lifetime.
        expires_secs: u64,
    },
    /// Server: the API tokens.
    ApiTokens,
    /// Server: revoke the API token with this id.
    RevokeApiToken(String),
    /// Server: run the health check.
    Health,
    /// Server: the newest entries of the audit log.
    Audit {
        /// How many at most.
        most: u32,
    },
    /// Make an actor stop or panic, to exercise supervision.
    KillActor {
        /// Its name, as the status lists it.
        name: String,
        /// How.
        how: crate::supervision::Kill,
    },
}

impl AdminRequest {
    /// True if the tool passes an open file after this request's frame
    /// (over the admin socket, as ancillary data): a fetch with an output.
    pub fn passes_file(&self) -> bool {
        matches!(self, AdminRequest::Fetch { out: Some(_), .. })
    }
}

/// The local node's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AdminReply {
    /// Status of a client node (boxed: by far the largest answer).
    ClientStatus(Box<ClientStatus>),
    /// Status of a server node.
    ServerStatus(ServerStatus),
    /// A fetch is under way.
    Progress(TransferProgress),
    /// A fetch finished; every piece of the file passed with it is
    /// verified and written (the tool syncs and renames it).
    Fetched(TransferProgress),
    /// Published; the content id.
    Published(ContentId),
    /// A signed URL.
    SignedUrl(String),
    /// A join token, and when it expires (ms since the epoch).
    JoinToken {
        /// The token, as `branchline client --join` takes it.
        token: String,
        /// When it stops working.
        expires_ms: u64,
    },
    /// The topology was replaced; how many offices it has.
    TopologyImported(u32),
    /// The spreadsheet was refused; one `line N: ...` per problem.
    TopologyRefused(Vec<String>),
    /// What importing the spreadsheet would change.
    TopologyPreview(crate::topology::diff::TopologyChange),
    /// The topology as a spreadsheet.
    TopologyCsv(String),
    /// The office tree with its clients.
    Topology(TopologyView),
    /// Done; a line that says what happened.
    Done(String),
    /// A client's peers.
    Peers(Vec<PeerView>),
    /// The console's accounts.
    Users(Vec<super::AccountView>),
    /// A new API token (its only showing) and how it is listed.
    ApiToken {
        /// The token.
        token: String,
        /// How it is listed.
        view: super::ApiTokenView,
    },
    /// The API tokens.
    ApiTokens(Vec<super::ApiTokenView>),
    /// Audit log entries, oldest first.
    Audit(Vec<super::AuditEntry>),
    /// A health run.
    Health(super::HealthReport),
    /// The request failed; one line that says why.
    Error(String),
}
