//! Starting a client node.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use anyhow::Context as _;
use branchline_actors::client::counters::Counters;
use branchline_actors::client::office::{Office, OfficeDeps};
use branchline_actors::client::picker::Limits;
use branchline_actors::client::rvp::Rvp;
use branchline_actors::client::store::{ReportDropsTo, Store};
use branchline_actors::client::strikes::StrikeBook;
use branchline_actors::client::transfer::TransferSettings;
use branchline_actors::messages::ServerCall;
use branchline_actors::pacing::busy::LinkPause;
use branchline_actors::wire::ServerRequest;
use branchline_storage::sealed_db::OpenError;
use branchline_storage::self_check;
use branchline_storage::{CacheConfig, CacheError, PieceCache};

use super::supervisor::{Child, NodeSupervisor};
use super::{Stop, WATCHDOG_EVERY, on_arbiter, run_until, serve_metrics, start_check, trust};
use crate::admin::client_node::ClientAdmin;
use crate::admin::{listener, socket_path};
use crate::attributes::AttributeSource;
use crate::config::ClientConfig;
use crate::discovery::{self, Discovery};
use crate::link_status::LinkStatus;
use crate::origin::Origin;
use crate::server_link::{ConnectRvp, Identity, ServerLink};
use crate::tls::Admit;
use crate::transport::admission::Admission;
use crate::transport::{Transport, TransportDeps, endpoint};
use crate::{identity, logging};
use branchline_actors::supervision::{self, ActorBook};

/// Runs a client node until it is told to stop.
pub fn run(config: ClientConfig, stop: Stop) -> anyhow::Result<()> {
    let settings = config.validate()?;
    logging::check_level(&config.log.level).map_err(anyhow::Error::msg)?;
    crate::private_files::restrict_umask();
    crate::private_files::create_dir(&settings.data_dir)
        .with_context(|| format!("cannot create data_dir {}", settings.data_dir.display()))?;
    let socket = endpoint::bind(config.listen)?;
    let bound = socket.local_addr().context("reading the bound address")?;
    let advertise = advertised(config.advertise, bound)?;
    let name = config.name.clone().unwrap_or_else(host_name);
    let identity = trust::client(&config, &settings, advertise.ip(), &name)?.map(Arc::new);
    let vouch = crate::vouch::checker(identity.as_deref())?;
    let reply_trust = discovery::ReplyTrust::new(identity.as_deref())?;
    let trust = identity.as_ref().map(|id| id.trust().clone());
    let identity_for_origin = identity.clone();
    let background_socket = endpoint::bind(config.background_listen())?;
    let background_bound = background_socket
        .local_addr()
        .context("reading the bound background address")?;
    let background = config
        .background_advertise
        .unwrap_or_else(|| SocketAddr::new(advertise.ip(), background_bound.port()));
    let discovery_sockets = match config.discovery.enabled {
        false => None,
        true => match discovery::bind(&config.discovery, advertise.ip()) {
            Ok(sockets) => Some(sockets),
            Err(e @ discovery::DiscoveryError::NoBroadcast(_)) => {
                tracing::warn!(error = %e, "subnet discovery is off");
                None
            }
            Err(e) => return Err(e.into()),
        },
    };
    let discovery_wait = Duration::from_millis(config.discovery.wait_ms);
    let per_peer = config.limits.connections_per_peer;
    let requests_per_sec = u64::from(config.limits.requests_per_sec);
    let strikes = Arc::new(Mutex::new(StrikeBook::new(
        config.transfer.ban_after_strikes,
    )));
    let link_pause = LinkPause::new(
        config.background.busy(),
        config.background.ledbat().map(|c| c.target),
    );
    let wan_settings = endpoint::Background {
        yielding: config.background.ledbat(),
        pause: link_pause.clone(),
    };
    let cache = PieceCache::open(&CacheConfig {
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
    })?;
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
    let kept = (cache.clone(), start_check.clone());
    let checked = cache.clone();
    tracing::info!(id = %me.id, name = %me.name, addr = %me.addr, background = %me.background, server = %settings.server, "client starting");

    crate::tls::warn_unauthenticated(identity.as_deref());
    let system = actix_rt::System::new();
    let leaving = me.id;
    let link = system.block_on(async move {
        let counters = Arc::new(Counters::default());
        let link_status = Arc::new(LinkStatus::default());
        let book = ActorBook::default();
        let book2 = book.clone();
        let store = supervision::start("store", move |_| Store::new(cache));
        let io = Arbiter::new();
        let (store2, counters2, me2, status2, server) = (
            store.0.clone(),
            counters.clone(),
            me.clone(),
            link_status.clone(),
            settings.server,
        );
        let discovery_me = discovery::Me {
            id: me.id,
            foreground: me.addr,
        };
        let (store3, status3, counters3) = (store.0.clone(), link_status.clone(), counters.clone());
        let (transport, wan, link, finder) = on_arbiter(&io, move || -> anyhow::Result<_> {
            let finder = Discovery::new(
                discovery_sockets,
                discovery_me,
                discovery_wait,
                store3,
                status3,
                counters3,
                reply_trust,
            )?;
            let finder = supervision::start("discovery", move |_| finder);
            let (endpoint, served) =
                endpoint::endpoint(socket, None, identity.as_deref(), Admit::Members)?;
            let yielding = wan_settings.yielding.is_some();
            let admission = || {
                Arc::new(Mutex::new(Admission::new(
                    per_peer.try_into().unwrap_or(usize::MAX),
                )))
            };
            let (wan_endpoint, wan_served) = endpoint::endpoint(
                background_socket,
                Some(wan_settings),
                identity.as_deref(),
                Admit::Members,
            )?;
            let deps = TransportDeps {
                endpoint: endpoint.clone(),
                store: store2.clone(),
                counters: counters2.clone(),
                link: status2.clone(),
                background: false,
                probe: false,
                served,
                admission: admission(),
                requests_per_sec,
                book: book2,
                trust: trust.clone(),
            };
            let link_trust = trust.clone();
            let wan_deps = TransportDeps {
                endpoint: wan_endpoint,
                background: true,
                probe: yielding,
                served: wan_served,
                admission: admission(),
                requests_per_sec,
                ..deps.clone()
            };
            let transport = supervision::start("transport", move |_| Transport::new(deps));
            let wan = supervision::start("transport", move |_| Transport::new(wan_deps));
            let link = supervision::start("server-link", move |_| {
                ServerLink::new(
                    endpoint, server, me2, store2, attributes, status2, counters2,
                )
                .guarded_by(link_trust)
            });
            Ok((transport, wan, link, finder))
        })
        .await??;
        // A piece found rotted later (serving it, writing it out) is
        // reported at once too, so nobody waits on this node for it.
        store.0.do_send(ReportDropsTo(link.0.clone().recipient()));
        let origin =
            Origin::new(identity_for_origin.as_deref()).context("making the origin fetcher")?;
        let origin = supervision::start("origin", move |_| origin);
        let deps = OfficeDeps {
            node: me.id,
            store: store.0.clone(),
            server: link.0.clone().recipient(),
            have_report: link.0.clone().recipient(),
            peer_fetch: transport.0.clone().recipient(),
            wan_fetch: wan.0.clone().recipient(),
            discover: finder.0.clone().recipient(),
            manifest_fetch: transport.0.clone().recipient(),
            origin_fetch: origin.0.clone().recipient(),
            counters: counters.clone(),
            book: book.clone(),
            link_pause: link_pause.clone(),
            strikes: strikes.clone(),
            vouch: vouch.clone(),
        };
        let transfer = &config.transfer;
        let transfer_settings = TransferSettings {
            limits: Limits {
                per_peer: transfer.per_peer,
                total: transfer.max_in_flight,
                origin: transfer.origin_in_flight,
                retry_after: Duration::from_millis(transfer.retry_after_ms),
                stuck_after: Duration::from_secs(transfer.stuck_after_secs),
            },
            request_timeout: config.request_timeout(),
            poll_wait: Duration::from_secs(2),
        };
        let office = supervision::start("office", move |_| Office::new(deps, transfer_settings));
        start_check::start(
            &start_check,
            checked,
            link.0.clone().recipient(),
            office.0.clone().recipient(),
        );
        let office2 = office.0.clone();
        let rvp = supervision::start("rvp", move |_| Rvp::new(office2));
        link.0.do_send(ConnectRvp(
            rvp.0.clone().recipient(),
            office.0.clone().recipient(),
        ));
        let supervisor = NodeSupervisor::new(
            vec![
                Child::of("store", &store),
                Child::of("transport", &transport),
                Child::of("background-transport", &wan),
                Child::of("discovery", &finder),
                Child::of("server-link", &link),
                Child::of("origin", &origin),
                Child::of("office", &office),
                Child::of("rvp", &rvp),
            ],
            book,
            WATCHDOG_EVERY,
        )
        .start();
        let handler = Arc::new(ClientAdmin {
            office: office.0,
            store: store.0,
            supervisor,
            transport: transport.0.clone(),
            wan: wan.0.clone(),
            counters,
            me,
            server: settings.server,
            link: link_status,
            link_pause,
            strikes,
            start_check,
        });
        let scraped = handler.clone();
        serve_metrics(metrics, move || {
            let handler = scraped.clone();
            async move { Ok(crate::metrics::render_client(&handler.status().await?)) }
        })?;
        actix_rt::spawn(listener::serve(admin, move |request, file, replies| {
            handler.clone().handle(request, file, replies)
        }));
        anyhow::Ok(link.0)
    })?;
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
