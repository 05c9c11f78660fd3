//! Starting the server node.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use anyhow::Context as _;
use branchline_actors::registry::{Registry, RegistryTiming};
use branchline_actors::registry_actor::RegistryActor;
use branchline_actors::supervision::{self, ActorBook};
use branchline_storage::MetaStore;

use super::supervisor::{Child, NodeSupervisor};
use super::trust;
use super::{Stop, WATCHDOG_EVERY, on_arbiter, run_until, serve_metrics};
use crate::admin::server_node::ServerAdmin;
use crate::admin::{listener, socket_path};
use crate::config::ServerConfig;
use crate::file_storage::FileStorage;
use crate::tls::Admit;
use crate::transport::endpoint;
use crate::{control, logging, revocation};

/// How long the join token a server prints at each start lives.
const START_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Runs the server node until it is told to stop.
pub fn run(config: &ServerConfig, stop: Stop) -> anyhow::Result<()> {
    let data_dir = config.validate()?;
    logging::check_level(&config.log.level).map_err(anyhow::Error::msg)?;
    crate::private_files::restrict_umask();
    crate::private_files::create_dir(&data_dir)
        .with_context(|| format!("cannot create data_dir {}", data_dir.display()))?;
    let trust::ServerTrust {
        identity,
        crl: crl_file,
        ca,
    } = trust::server(config, &data_dir)?;
    let socket = endpoint::bind(config.listen)?;
    let addr = socket.local_addr().context("reading the bound address")?;
    let file_storage = match (&config.file_storage.enabled, &config.file_storage.dir) {
        (true, Some(dir)) => {
            let storage = FileStorage::new(dir)
                .with_context(|| format!("file_storage.dir {} is not usable", dir.display()))?;
            let listener =
                std::net::TcpListener::bind(config.file_storage.listen).with_context(|| {
                    format!(
                        "cannot listen on {} for the file storage",
                        config.file_storage.listen
                    )
                })?;
            listener.set_nonblocking(true)?;
            Some((storage, listener, config.file_storage.url()?))
        }
        _ => None,
    };
    let meta = Arc::new(
        MetaStore::open(&data_dir.join("meta"), 16 * 1024 * 1024).with_context(|| {
            format!(
                "cannot open the metadata store in {} (is another server using it?)",
                data_dir.display()
            )
        })?,
    );
    let enroller = trust::enroller(
        ca,
        identity.as_ref().map(|id| id.trust().clone()),
        &meta,
        addr,
    )?
    .map(Arc::new);
    if let Some(enroller) = &enroller {
        let (token, _) = enroller
            .make_token(START_TOKEN_LIFETIME)
            .context("making the start join token")?;
        tracing::info!(
            "join clients to this cluster (token valid 24 h; `branchline token create` makes more): branchline client --join {token}"
        );
    }
    if let Some((storage, _, url)) = &file_storage {
        // What was published before this start is served again.
        for record in meta.contents().context("reading the published contents")? {
            storage.allow(url, &record.origins);
        }
    }
    let admin = listener::bind(&socket_path(&data_dir))?;
    let metrics = crate::config::metrics_listener(&config.metrics)?;
    let timing = RegistryTiming {
        client_timeout: Duration::from_secs(config.registry.client_timeout_secs),
        lease_ttl: Duration::from_secs(config.registry.lease_ttl_secs),
        rvp_patience: Duration::from_secs(config.registry.rvp_patience_secs),
    };
    let heartbeat = Duration::from_secs(config.registry.heartbeat_secs);
    crate::tls::warn_unauthenticated(identity.as_ref());
    let signer = crate::vouch::signer(identity.as_ref())?;
    let registry = RegistryActor::new(Registry::new(timing), meta, heartbeat, signer)
        .context("loading the metadata store")?;
    tracing::info!(%addr, "server starting");

    let system = actix_rt::System::new();
    system.block_on(async move {
        // The registry is restored once; a restart keeps its state.
        let registry = supervision::start("registry", move |_| registry);
        let supervisor = NodeSupervisor::new(
            vec![Child::of("registry", &registry)],
            ActorBook::default(),
            WATCHDOG_EVERY,
        )
        .start();
        let registry = registry.0;
        let control_arbiter = Arbiter::new();
        let registry2 = registry.clone();
        let enroller2 = enroller.clone();
        on_arbiter(&control_arbiter, move || -> anyhow::Result<()> {
            let admit = match enroller2 {
                Some(_) => Admit::MembersAndJoiners,
                None => Admit::Members,
            };
            let (endpoint, _) = endpoint::endpoint(socket, None, identity.as_ref(), admit)?;
            let trust = identity.as_ref().map(|id| id.trust().clone());
            if let (Some(trust), Some(crl)) = (&trust, crl_file) {
                actix_rt::spawn(revocation::watch_file(trust.clone(), crl));
            }
            actix_rt::spawn(control::serve(endpoint, registry2, trust, enroller2));
            Ok(())
        })
        .await??;
        let mut storage_view = None;
        if let Some((storage, listener, url)) = file_storage {
            tracing::info!(dir = %storage.root().display(), %url, "file storage serving");
            storage_view = Some((storage.clone(), url));
            let arbiter = Arbiter::new();
            on_arbiter(&arbiter, move || -> anyhow::Result<()> {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                actix_rt::spawn(storage.serve(listener));
                Ok(())
            })
            .await??;
        }
        let handler = Arc::new(ServerAdmin {
            registry,
            supervisor,
            addr,
            file_storage: storage_view,
            enroller,
        });
        let scraped = handler.clone();
        serve_metrics(metrics, move || {
            let handler = scraped.clone();
            async move { Ok(crate::metrics::render_server(&handler.status().await?)) }
        })?;
        actix_rt::spawn(listener::serve(admin, move |request, _file, replies| {
            handler.clone().handle(request, replies)
        }));
        anyhow::Ok(())
    })?;
    run_until(system, stop, None)
}
