//! A simulated enterprise: the server (its real directory and office
//! actors over a metadata store on a temporary directory), the offices of
//! a topology sheet with their links, and clients made of their real
//! actors. Call everything from inside an actix system whose tokio clock
//! is paused ([`SimWorld::run`] makes one).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use branchline_actors::client::counters::Counters;
use branchline_actors::client::office::{Office, OfficeDeps, StartTransfer};
use branchline_actors::client::rvp::Rvp;
use branchline_actors::client::store::{ReportDropsTo, Store};
use branchline_actors::client::strikes::StrikeBook;
use branchline_actors::client::transfer::{GetState, Phase};
use branchline_actors::pacing::busy::LinkPause;
use branchline_actors::server::directory::changes::Publish;
use branchline_actors::server::directory::{
    DirectoryActor, ImportTopology, OfficeDeps as ServerDeps, PublicationSigner,
};
use branchline_actors::server::registry::RegistryTiming;
use branchline_actors::supervision::{self, ActorBook};
use branchline_actors::topology::{Topology, spreadsheet};
use branchline_storage::{
    CacheConfig, ContentId, Manifest, MetaStore, NodeId, Origin, OriginKind, PieceCache,
};

use super::io::{ServerPort, SimDiscovery, SimOrigin, SimTransport};
use super::link::Link;
use super::net::{NodeParts, SimNet};
use crate::attributes::AttributeSource;
use crate::config::{BackgroundSection, ElectionSection, TransferSection};
use crate::link_status::LinkStatus;
use crate::server_channel::ServerChannel;
use crate::server_link::{ConnectRvp, Identity, ServerLink};

/// The server's address, for messages (it is in the top office).
const SERVER: &str = "10.255.255.1:34323";
/// Each client's cache quota.
const QUOTA: u64 = 64 << 30;

/// Why the world could not be made or did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// The topology sheet.
    #[error("the topology sheet: {0}")]
    Sheet(String),
    /// The metadata store or a cache.
    #[error("{0}")]
    Storage(String),
    /// The server refused.
    #[error("the server refused: {0}")]
    Refused(String),
    /// Two clients of one world were given one name.
    #[error("a client named {0} is in the world already")]
    NameTaken(String),
    /// A download failed or did not end in time.
    #[error("{client}: {reason}")]
    Fetch {
        /// The client.
        client: String,
        /// Why.
        reason: String,
    },
}

/// A simulated client: its real actors, and its counters.
pub struct SimClient {
    /// Its name.
    pub name: String,
    /// Its address.
    pub addr: IpAddr,
    /// Its office actor.
    pub office: Addr<Office>,
    /// Its store.
    pub store: Addr<Store>,
    /// Its byte counters (from peers, from the office above, from the
    /// origin).
    pub counters: Arc<Counters>,
}

/// A simulated enterprise.
pub struct SimWorld {
    /// The network.
    pub net: SimNet,
    /// The server's directory.
    pub directory: Addr<DirectoryActor>,
    topology: Topology,
    links: HashMap<String, Link>,
    clients: Vec<SimClient>,
    dir: tempfile::TempDir,
    next_id: u8,
}

impl SimWorld {
    /// Runs `test` in a new actix system with tokio's clock paused.
    pub fn run<F, T>(test: impl FnOnce() -> F) -> T
    where
        F: Future<Output = T>,
    {
        let system = actix_rt::System::new();
        system.block_on(async {
            tokio::time::pause();
            test().await
        })
    }

    /// The server with `timing`, the offices of `sheet` (a topology
    /// spreadsheet), each linked to its parent by `links[office]` (100
    /// Mbit/s and 10 ms if not named), a LAN in each, and the origin
    /// linked to the top office by `origin`. Losses are drawn from `seed`.
    pub async fn new(
        sheet: &str,
        links: &HashMap<String, Link>,
        origin: Link,
        timing: RegistryTiming,
        seed: u64,
    ) -> Result<Self, WorldError> {
        let topology = spreadsheet::import(sheet.as_bytes())
            .map_err(|problems| WorldError::Sheet(format!("{problems:?}")))?;
        let dir = tempfile::Builder::new()
            .prefix("branchline-sim-")
            .tempdir()
            .map_err(|e| WorldError::Storage(e.to_string()))?;
        let store = MetaStore::open(&dir.path().join("server"), 8 << 20)
            .map_err(|e| WorldError::Storage(e.to_string()))?;
        let deps = ServerDeps {
            timing,
            seats: Arc::default(),
            heartbeat: Duration::from_secs(5),
            book: ActorBook::default(),
            arbiters: Vec::new(),
        };
        let signer: PublicationSigner = Arc::new(|_| None);
        let directory = DirectoryActor::new(deps, Arc::new(store), signer, None)
            .map_err(|e| WorldError::Storage(e.to_string()))?;
        let (directory, _) = supervision::start("directory", move |_| directory);
        directory
            .send(ImportTopology(sheet.as_bytes().to_vec()))
            .await
            .map_err(|e| WorldError::Refused(e.to_string()))?
            .map_err(|problems| WorldError::Sheet(problems.join("; ")))?;
        let net = SimNet::new(seed);
        for office in topology.offices() {
            let uplink = links
                .get(&office.name)
                .copied()
                .unwrap_or_else(|| Link::wan(100.0, 10));
            net.add_office(&office.name, office.parent.as_deref(), uplink, Link::LAN);
        }
        net.set_origin(origin);
        Ok(SimWorld {
            net,
            directory,
            topology,
            links: links.clone(),
            clients: Vec::new(),
            dir,
            next_id: 0,
        })
    }

    /// A client named `name` at `addr`, reporting `election` about itself;
    /// returns its index.
    pub fn client(
        &mut self,
        name: &str,
        addr: IpAddr,
        election: ElectionSection,
    ) -> Result<usize, WorldError> {
        if self.clients.iter().any(|c| c.name == name) {
            return Err(WorldError::NameTaken(name.to_owned()));
        }
        let office = self.office_of(addr);
        let cache_dir = self.dir.path().join("clients").join(name);
        let cache = PieceCache::open(&CacheConfig {
            dir: cache_dir.clone(),
            quota_bytes: QUOTA,
            sled_cache_bytes: 4 << 20,
        })
        .map_err(|e| WorldError::Storage(e.to_string()))?;
        let cache = Arc::new(cache);
        let (store, _) = supervision::start("store", move |_| Store::new(cache));
        let counters = Arc::new(Counters::default());
        let link_status = Arc::new(LinkStatus::default());
        self.next_id += 1;
        let id = NodeId([self.next_id; 16]);
        let parts = NodeParts {
            id,
            store: store.clone(),
            counters: counters.clone(),
            link: link_status.clone(),
        };
        self.net.add_node(addr, &office, parts);
        let me = Identity {
            id,
            name: name.to_owned(),
            addr: SocketAddr::new(addr, 34760),
            background: SocketAddr::new(addr, 34750),
        };
        let port = ServerPort {
            directory: self.directory.clone(),
            server: SERVER.parse().expect("a valid address"),
            from: me.addr,
            net: self.net.clone(),
        };
        let attributes = AttributeSource::new(&cache_dir, QUOTA, election);
        let (link_store, link_counters) = (store.clone(), counters.clone());
        let discovery = SimDiscovery {
            net: self.net.clone(),
            me: addr,
            link: link_status.clone(),
            counters: counters.clone(),
        };
        let (link, _) = supervision::start("server-link", move |_| {
            ServerLink::new(
                ServerChannel::InMemory(port),
                me,
                link_store,
                attributes,
                link_status,
                link_counters,
            )
        });
        let deps = self.office_deps(id, addr, &store, &link, &counters, discovery);
        let settings = TransferSection::default().settings();
        let (office_actor, _) = supervision::start("office", move |_| Office::new(deps, settings));
        store.do_send(ReportDropsTo(link.clone().recipient()));
        let for_rvp = office_actor.clone();
        let (rvp, _) = supervision::start("rvp", move |_| Rvp::new(for_rvp));
        link.do_send(ConnectRvp(
            rvp.recipient(),
            office_actor.clone().recipient(),
        ));
        self.clients.push(SimClient {
            name: name.to_owned(),
            addr,
            office: office_actor,
            store,
            counters,
        });
        Ok(self.clients.len() - 1)
    }

    /// What a simulated client's office actor is given: its real store and
    /// server link, the simulated transports, origin and discovery.
    fn office_deps(
        &self,
        id: NodeId,
        addr: IpAddr,
        store: &Addr<Store>,
        link: &Addr<ServerLink>,
        counters: &Arc<Counters>,
        discovery: SimDiscovery,
    ) -> OfficeDeps {
        let transport = SimTransport {
            net: self.net.clone(),
            me: addr,
        }
        .start();
        let origin = SimOrigin {
            net: self.net.clone(),
            me: addr,
        }
        .start();
        let background = BackgroundSection::default();
        OfficeDeps {
            node: id,
            store: store.clone(),
            server: link.clone().recipient(),
            have_report: link.clone().recipient(),
            peer_fetch: transport.clone().recipient(),
            wan_fetch: transport.clone().recipient(),
            origin_fetch: origin.recipient(),
            discover: discovery.start().recipient(),
            manifest_fetch: transport.recipient(),
            counters: counters.clone(),
            book: ActorBook::default(),
            link_pause: LinkPause::new(background.busy(), background.ledbat().map(|c| c.target)),
            strikes: Arc::new(Mutex::new(StrikeBook::new(2))),
            vouch: Arc::new(|_| Ok(())),
        }
    }

    /// Takes the server off the network (every call to it fails after the
    /// dial deadline, as to a server that stopped), or brings it back.
    pub fn set_server_down(&self, down: bool) {
        let server: SocketAddr = SERVER.parse().expect("a valid address");
        self.net.set_down(server.ip(), down);
    }

    /// The office of a client at `addr`: the sheet's, or the automatic
    /// office the server makes for an address no office claims (off the
    /// corporate network for a public address), placed in the network
    /// under the top office behind `self.links[its name]` or a default
    /// link.
    fn office_of(&mut self, addr: IpAddr) -> String {
        let (office, made) = self.topology.resolve_or_add(addr);
        let (name, parent) = (office.name.clone(), office.parent.clone());
        if made {
            let uplink = self
                .links
                .get(&name)
                .copied()
                .unwrap_or_else(|| Link::wan(100.0, 10));
            self.net
                .add_office(&name, parent.as_deref(), uplink, Link::LAN);
        }
        name
    }

    /// The clients.
    pub fn clients(&self) -> &[SimClient] {
        &self.clients
    }

    /// Publishes `bytes` as `name` in pieces of `piece_size`, served by the
    /// origin (a CDN) at `https://cdn.sim/<name>`.
    pub async fn publish(
        &self,
        name: &str,
        bytes: Vec<u8>,
        piece_size: u32,
    ) -> Result<ContentId, WorldError> {
        let cdn = Origin {
            url: format!("https://cdn.sim/{name}"),
            kind: OriginKind::Cdn,
        };
        self.publish_at(name, bytes, piece_size, vec![cdn]).await
    }

    /// Publishes `bytes` as `name` in pieces of `piece_size`, served at
    /// every one of `origins` (each URL's bytes counted apart).
    pub async fn publish_at(
        &self,
        name: &str,
        bytes: Vec<u8>,
        piece_size: u32,
        origins: Vec<Origin>,
    ) -> Result<ContentId, WorldError> {
        let manifest = Manifest::from_reader(name, &bytes[..], piece_size, |_| {})
            .map_err(|e| WorldError::Storage(e.to_string()))?;
        let bytes = Arc::new(bytes);
        for origin in &origins {
            self.net.serve_at_origin(&origin.url, bytes.clone());
        }
        self.directory
            .send(Publish {
                manifest,
                origins,
                confidential: false,
            })
            .await
            .map_err(|e| WorldError::Refused(e.to_string()))?
            .map_err(|e| WorldError::Refused(e.to_string()))
    }

    /// Waits (in simulated time) until every client registered.
    pub async fn settle(&self) {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    /// Client `i` fetches `content` into its cache; ends when it holds it
    /// whole, or fails, or `within` (simulated) has passed.
    pub async fn fetch(
        &self,
        i: usize,
        content: ContentId,
        within: Duration,
    ) -> Result<Duration, WorldError> {
        let client = &self.clients[i];
        let failed = |reason: String| WorldError::Fetch {
            client: client.name.clone(),
            reason,
        };
        let started = tokio::time::Instant::now();
        let transfer = client
            .office
            .send(StartTransfer(content))
            .await
            .map_err(|e| failed(e.to_string()))?;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let state = transfer
                .send(GetState)
                .await
                .map_err(|e| failed(e.to_string()))?;
            match state.phase {
                Phase::Complete => return Ok(started.elapsed()),
                Phase::Failed(reason) => return Err(failed(reason)),
                Phase::Starting | Phase::Running if started.elapsed() < within => {}
                _ => return Err(failed(format!("not done within {within:?}"))),
            }
        }
    }
}
