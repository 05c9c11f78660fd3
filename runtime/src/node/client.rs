//! Starting a client node.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::net::UnixListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use anyhow::Context as _;
use branchline_actors::client::counters::Counters;
use branchline_actors::client::office::{Office, OfficeDeps, PublicationCheck};
use branchline_actors::client::rvp::Rvp;
use branchline_actors::client::store::{ReportDropsTo, Store};
use branchline_actors::client::strikes::StrikeBook;
use branchline_actors::messages::ServerCall;
use branchline_actors::pacing::busy::LinkPause;
use branchline_actors::wire::ServerRequest;
use branchline_storage::sealed_db::OpenError;
use branchline_storage::self_check;
use branchline_storage::{CacheConfig, CacheError, NodeId, PieceCache};

use super::supervisor::{Child, NodeSupervisor};
use super::{Stop, WATCHDOG_EVERY, on_arbiter, run_until, serve_metrics, start_check, trust};
use crate::admin::client_node::ClientAdmin;
use crate::admin::{listener, socket_path};
use crate::attributes::AttributeSource;
use crate::config::{ClientConfig, ClientSettings};
use crate::discovery::{self, Discovery, DiscoverySockets};
use crate::link_status::LinkStatus;
use crate::origin::Origin;
use crate::server_channel::ServerChannel;
use crate::server_link::{ConnectRvp, Identity, ServerLink};
use crate::tls::{self, Admit};
use crate::transport::admission::Admission;
use crate::transport::connection_slot::ConnectionSlot;
use crate::transport::{Transport, TransportDeps, endpoint};
use crate::{identity, logging};
use branchline_actors::supervision::{self, ActorBook, Health};
use branchline_actors::wire::StartCheck;

/// Runs a client node until it is told to stop.
pub fn run(config: ClientConfig, stop: Stop) -> anyhow::Result<()> {
    let opened = open(&config)?;
    let leaving = opened.me.id;
    let kept = (opened.cache.clone(), opened.start_check.clone());
    crate::tls::warn_unauthenticated(opened.identity.as_deref());
    let system = actix_rt::System::new();
    let link = system.block_on(start(config, opened))?;
    let farewell = Box::pin(async move {
        match link
            .send(ServerCall(ServerRequest::Leave { id: leaving }))
            .await
        {
            Ok(Ok(_)) => tracing::info!("told the server this client leaves"),
            Ok(Err(e)) => {
                tracing::info!(error = %e, "could not tell the server this client leaves")
            }
            Err(_) => {}
        }
    });
    run_until(system, stop, Some(farewell))?;
    start_check::stopped_cleanly(&kept.0, &kept.1);
    Ok(())
}

/// What a client binds and opens before its actors start. Everything that
/// can refuse to start refuses in [`open`], with a clear error, before the
/// cache is marked in use.
struct Opened {
    settings: ClientSettings,
    me: Identity,
    identity: Option<Arc<tls::Identity>>,
    vouch: PublicationCheck,
    reply_trust: discovery::ReplyTrust,
    socket: UdpSocket,
    background_socket: UdpSocket,
    discovery_sockets: Option<DiscoverySockets>,
    cache: Arc<PieceCache>,
    start_check: Arc<Mutex<StartCheck>>,
    admin: UnixListener,
    metrics: Option<TcpListener>,
    attributes: AttributeSource,
}

/// Binds the sockets, loads or gets the node's identity, and opens the
/// cache, the admin socket and the metrics listener.
fn open(config: &ClientConfig) -> anyhow::Result<Opened> {
    let settings = config.validate()?;
    logging::check_level(&config.log.level).map_err(anyhow::Error::msg)?;
    crate::private_files::restrict_umask();
    crate::private_files::create_dir(&settings.data_dir)
        .with_context(|| format!("cannot create data_dir {}", settings.data_dir.display()))?;
    let socket = endpoint::bind(config.listen)?;
    let bound = socket.local_addr().context("reading the bound address")?;
    let advertise = advertised(config.advertise, bound)?;
    let name = config.name.clone().unwrap_or_else(host_name);
    let identity = trust::client(config, &settings, advertise.ip(), &name)?.map(Arc::new);
    let vouch = crate::vouch::checker(identity.as_deref())?;
    let reply_trust = discovery::ReplyTrust::new(identity.as_deref())?;
    let background_socket = endpoint::bind(config.background_listen())?;
    let background_bound = background_socket
        .local_addr()
        .context("reading the bound background address")?;
    let background = config
        .background_advertise
        .unwrap_or_else(|| SocketAddr::new(advertise.ip(), background_bound.port()));
    let discovery_sockets = discovery_sockets(config, advertise.ip())?;
    let cache = open_cache(config, &settings)?;
    let me = Identity {
        // Under the PKI the certificate names the node, so the server can
        // check that a request speaks for the node that sends it.
        id: match &identity {
            Some(pki) => pki.node_id(),
            None => identity::node_id(cache.db())?,
        },
        name,
        addr: advertise,
        background,
    };
    let admin = listener::bind(&socket_path(&settings.data_dir))?;
    let metrics = crate::config::metrics_listener(&config.metrics)?;
    let attributes = AttributeSource::new(
        &settings.data_dir,
        config.cache.quota_mib * 1024 * 1024,
        config.election.clone(),
    );
    let cache = Arc::new(cache);
    // Marked only now that everything that can refuse to start has been
    // bound, so a start that fails does not force a check on the next.
    let previous_run = self_check::begin_run(&cache).context("marking the cache in use")?;
    let start_check = start_check::initial(previous_run);
    tracing::info!(id = %me.id, name = %me.name, addr = %me.addr, background = %me.background, server = %settings.server, "client starting");
    Ok(Opened {
        settings,
        me,
        identity,
        vouch,
        reply_trust,
        socket,
        background_socket,
        discovery_sockets,
        cache,
        start_check,
        admin,
        metrics,
        attributes,
    })
}

/// The discovery sockets, unless discovery is off (by config, or because
/// the address has no broadcast, which is said once).
fn discovery_sockets(
    config: &ClientConfig,
    ip: std::net::IpAddr,
) -> anyhow::Result<Option<DiscoverySockets>> {
    if !config.discovery.enabled {
        return Ok(None);
    }
    match discovery::bind(&config.discovery, ip) {
        Ok(sockets) => Ok(Some(sockets)),
        Err(e @ discovery::DiscoveryError::NoBroadcast(_)) => {
            tracing::warn!(error = %e, "subnet discovery is off");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The piece cache, with an error that says what to do.
fn open_cache(config: &ClientConfig, settings: &ClientSettings) -> anyhow::Result<PieceCache> {
    PieceCache::open(&CacheConfig {
        dir: settings.data_dir.join("cache"),
        quota_bytes: config.cache.quota_mib * 1024 * 1024,
        sled_cache_bytes: config.cache.sled_cache_mib * 1024 * 1024,
    })
    .map_err(|e| match e {
        damaged @ CacheError::Open(OpenError::Damaged(_)) => anyhow::Error::new(damaged),
        other => anyhow::Error::new(other).context(format!(
            "cannot open the cache in {} (is another client using it?)",
            settings.data_dir.display()
        )),
    })
}

/// The actors on the io arbiter: the two transports, the server link and
/// discovery.
struct Io {
    transport: (Addr<Transport>, Arc<Health>),
    wan: (Addr<Transport>, Arc<Health>),
    link: (Addr<ServerLink>, Arc<Health>),
    finder: (Addr<Discovery>, Arc<Health>),
}

/// What the io actors take from [`Opened`].
struct IoParts {
    socket: UdpSocket,
    background_socket: UdpSocket,
    discovery_sockets: Option<DiscoverySockets>,
    reply_trust: discovery::ReplyTrust,
    identity: Option<Arc<tls::Identity>>,
    me: Identity,
    server: SocketAddr,
    attributes: AttributeSource,
}

/// What the node's actors share.
#[derive(Clone)]
struct Shared {
    store: (Addr<Store>, Arc<Health>),
    counters: Arc<Counters>,
    link_status: Arc<LinkStatus>,
    book: ActorBook,
    link_pause: LinkPause,
}

/// Starts the io actors on `io`, where the QUIC endpoints and their
/// drivers live.
async fn start_io(
    io: &Arbiter,
    config: &ClientConfig,
    parts: IoParts,
    shared: &Shared,
) -> anyhow::Result<Io> {
    let trust = parts.identity.as_ref().map(|id| id.trust().clone());
    let shared = shared.clone();
    let discovery_me = discovery::Me {
        id: parts.me.id,
        foreground: parts.me.addr,
    };
    let discovery_wait = Duration::from_millis(config.discovery.wait_ms);
    let per_peer = config.limits.connections_per_peer;
    let requests_per_sec = u64::from(config.limits.requests_per_sec);
    let wan_settings = endpoint::Background {
        yielding: config.background.ledbat(),
        pause: shared.link_pause.clone(),
    };
    let yielding = wan_settings.yielding.is_some();
    on_arbiter(io, move || -> anyhow::Result<Io> {
        let (store, counters, status) = (
            shared.store.0.clone(),
            shared.counters.clone(),
            shared.link_status.clone(),
        );
        let finder = Discovery::new(
            parts.discovery_sockets,
            discovery_me,
            discovery_wait,
            store.clone(),
            status.clone(),
            counters.clone(),
            parts.reply_trust,
        )?;
        let finder = supervision::start("discovery", move |_| finder);
        let (endpoint, served) = endpoint::endpoint(
            parts.socket,
            None,
            parts.identity.as_deref(),
            Admit::Members,
        )?;
        let wan = endpoint::endpoint(
            parts.background_socket,
            Some(wan_settings),
            parts.identity.as_deref(),
            Admit::Members,
        )?;
        let deps = TransportDeps {
            endpoint: endpoint.clone(),
            store: store.clone(),
            counters: counters.clone(),
            link: status.clone(),
            background: false,
            probe: false,
            served,
            admission: admission(per_peer),
            requests_per_sec,
            book: shared.book.clone(),
            trust: trust.clone(),
        };
        let wan_deps = background_deps(&deps, wan, yielding, per_peer);
        let transport = supervision::start("transport", move |_| Transport::new(deps));
        let wan = supervision::start("transport", move |_| Transport::new(wan_deps));
        let link = supervision::start("server-link", move |_| {
            let channel = ServerChannel::Quic(ConnectionSlot::to_server(endpoint, parts.server));
            ServerLink::new(channel, parts.me, store, parts.attributes, status, counters)
                .guarded_by(trust)
        });
        Ok(Io {
            transport,
            wan,
            link,
            finder,
        })
    })
    .await?
}

/// The background transport's deps: the foreground's, with an endpoint
/// and an admission of its own, probing its connections when the
/// controller yields.
fn background_deps(
    foreground: &TransportDeps,
    (endpoint, served): (quinn::Endpoint, Arc<endpoint::ServedConfigs>),
    yielding: bool,
    per_peer: u32,
) -> TransportDeps {
    TransportDeps {
        endpoint,
        background: true,
        probe: yielding,
        served,
        admission: admission(per_peer),
        ..foreground.clone()
    }
}

/// A transport's cap of open connections per peer address.
fn admission(per_peer: u32) -> crate::transport::admission::SharedAdmission {
    Arc::new(Mutex::new(Admission::new(
        per_peer.try_into().unwrap_or(usize::MAX),
    )))
}

/// What the office actor is given: the node's other actors, as recipients.
fn office_deps(
    node: NodeId,
    shared: &Shared,
    io: &Io,
    origin: &(Addr<Origin>, Arc<Health>),
    strikes: Arc<Mutex<StrikeBook>>,
    vouch: PublicationCheck,
) -> OfficeDeps {
    OfficeDeps {
        node,
        store: shared.store.0.clone(),
        server: io.link.0.clone().recipient(),
        have_report: io.link.0.clone().recipient(),
        peer_fetch: io.transport.0.clone().recipient(),
        wan_fetch: io.wan.0.clone().recipient(),
        discover: io.finder.0.clone().recipient(),
        manifest_fetch: io.transport.0.clone().recipient(),
        origin_fetch: origin.0.clone().recipient(),
        counters: shared.counters.clone(),
        book: shared.book.clone(),
        link_pause: shared.link_pause.clone(),
        strikes,
        vouch,
    }
}

/// Starts the node's actors, its admin socket and its metrics; returns
/// the server link (the farewell goes through it).
async fn start(config: ClientConfig, opened: Opened) -> anyhow::Result<Addr<ServerLink>> {
    let Opened {
        settings,
        me,
        identity,
        vouch,
        cache,
        start_check,
        admin,
        metrics,
        ..
    } = opened;
    let checked = cache.clone();
    let shared = Shared {
        store: supervision::start("store", move |_| Store::new(cache)),
        counters: Arc::new(Counters::default()),
        link_status: Arc::new(LinkStatus::default()),
        book: ActorBook::default(),
        link_pause: LinkPause::new(
            config.background.busy(),
            config.background.ledbat().map(|c| c.target),
        ),
    };
    let parts = IoParts {
        socket: opened.socket,
        background_socket: opened.background_socket,
        discovery_sockets: opened.discovery_sockets,
        reply_trust: opened.reply_trust,
        identity: identity.clone(),
        me: me.clone(),
        server: settings.server,
        attributes: opened.attributes,
    };
    let io = start_io(&Arbiter::new(), &config, parts, &shared).await?;
    let (transport, wan, link) = (&io.transport, &io.wan, &io.link);
    let store = &shared.store;
    // A piece found rotted later (serving it, writing it out) is
    // reported at once too, so nobody waits on this node for it.
    store.0.do_send(ReportDropsTo(link.0.clone().recipient()));
    let origin = Origin::new(identity.as_deref()).context("making the origin fetcher")?;
    let origin = supervision::start("origin", move |_| origin);
    let strikes = Arc::new(Mutex::new(StrikeBook::new(
        config.transfer.ban_after_strikes,
    )));
    let deps = office_deps(me.id, &shared, &io, &origin, strikes.clone(), vouch);
    let transfer_settings = config.transfer.settings();
    let office = supervision::start("office", move |_| Office::new(deps, transfer_settings));
    start_check::start(
        &start_check,
        checked,
        io.link.0.clone().recipient(),
        office.0.clone().recipient(),
    );
    let office2 = office.0.clone();
    let rvp = supervision::start("rvp", move |_| Rvp::new(office2));
    link.0.do_send(ConnectRvp(
        rvp.0.clone().recipient(),
        office.0.clone().recipient(),
    ));
    let supervisor = supervise(&shared, &io, &origin, &office, &rvp);
    let handler = Arc::new(ClientAdmin {
        office: office.0,
        store: store.0.clone(),
        supervisor,
        transport: transport.0.clone(),
        wan: wan.0.clone(),
        counters: shared.counters.clone(),
        me,
        server: settings.server,
        link: shared.link_status.clone(),
        link_pause: shared.link_pause.clone(),
        strikes,
        start_check,
    });
    serve_admin(handler, admin, metrics)?;
    Ok(link.0.clone())
}

/// The node's supervisor, over every top-level actor.
fn supervise(
    shared: &Shared,
    io: &Io,
    origin: &(Addr<Origin>, Arc<Health>),
    office: &(Addr<Office>, Arc<Health>),
    rvp: &(Addr<Rvp>, Arc<Health>),
) -> Addr<NodeSupervisor> {
    NodeSupervisor::new(
        vec![
            Child::of("store", &shared.store),
            Child::of("transport", &io.transport),
            Child::of("background-transport", &io.wan),
            Child::of("discovery", &io.finder),
            Child::of("server-link", &io.link),
            Child::of("origin", origin),
            Child::of("office", office),
            Child::of("rvp", rvp),
        ],
        shared.book.clone(),
        WATCHDOG_EVERY,
    )
    .start()
}

/// The admin socket and the metrics endpoint, both answered by `handler`.
fn serve_admin(
    handler: Arc<ClientAdmin>,
    admin: UnixListener,
    metrics: Option<TcpListener>,
) -> anyhow::Result<()> {
    let scraped = handler.clone();
    serve_metrics(metrics, move || {
        let handler = scraped.clone();
        async move { Ok(crate::metrics::render_client(&handler.status().await?)) }
    })?;
    actix_rt::spawn(listener::serve(admin, move |request, file, replies| {
        handler.clone().handle(request, file, replies)
    }));
    Ok(())
}

fn advertised(advertise: Option<SocketAddr>, bound: SocketAddr) -> anyhow::Result<SocketAddr> {
    match advertise {
        Some(addr) => Ok(addr),
        None if bound.ip().is_unspecified() => {
            anyhow::bail!(
                "listen address {bound} is not one peers can reach: set `advertise` (or --advertise)"
            )
        }
        None => Ok(bound),
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "client".into())
}
