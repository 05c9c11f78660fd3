//! Starting the server node.

use std::sync::Arc;
use std::time::Duration;

use actix::dev::ArbiterHandle;
use actix::prelude::*;
use anyhow::Context as _;
use branchline_actors::server::directory::{DirectoryActor, OfficeDeps};
use branchline_actors::server::registry::RegistryTiming;
use branchline_actors::server::seats::Seats;
use branchline_actors::supervision::{self, ActorBook};
use branchline_storage::MetaStore;
use branchline_storage::meta_store::MetaError;
use branchline_storage::sealed_db::OpenError;

use super::supervisor::{Child, NodeSupervisor};
use super::trust;
use super::{Stop, WATCHDOG_EVERY, on_arbiter, run_until, serve_metrics};
use crate::admin::server_node::{HealthSources, ServerAdmin};
use crate::admin::{listener, socket_path};
use crate::config::ServerConfig;
use crate::console::accounts::Accounts;
use crate::console::api::Console;
use crate::console::api_tokens::ApiTokens;
use crate::console::audit::AuditLog;
use crate::console::certificate;
use crate::file_storage::{Access, FileStorage, signed_url};
use crate::join::ca::{ClusterCa, Enroller};
use crate::tls::{Admit, Identity};
use crate::transport::endpoint;
use crate::version_refusals::VersionRefusals;
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
    let storage_listener = bind_file_storage(config)?;
    let console = bind_console(config, addr, ca.as_ref(), identity.as_ref())?;
    let meta = open_meta(&data_dir)?;
    let enroller = enroller(ca, identity.as_ref(), &meta, addr)?;
    let accounts =
        Arc::new(Accounts::open(meta.clone()).context("opening the console's accounts")?);
    let audit = Arc::new(AuditLog::open(meta.clone()).context("opening the audit log")?);
    let api_tokens = Arc::new(ApiTokens::open(meta.clone()).context("opening the API tokens")?);
    let file_storage = match storage_listener {
        Some((dir, listener)) => Some(file_storage(
            config,
            dir,
            listener,
            identity.as_ref(),
            &meta,
        )?),
        None => None,
    };
    let admin = listener::bind(&socket_path(&data_dir))?;
    let metrics = crate::config::metrics_listener(&config.metrics)?;
    crate::tls::warn_unauthenticated(identity.as_ref());
    let signer = crate::vouch::signer(identity.as_ref())?;
    // The system first: the office actors' arbiters belong to it.
    let system = actix_rt::System::new();
    let book = ActorBook::default();
    let deps = office_deps(config, book.clone(), office_arbiters());
    let storage_url = file_storage.as_ref().map(|(_, _, url)| url.as_str());
    let health_meta = meta.clone();
    let certificates = shown_certificates(identity.as_ref(), console.as_ref());
    let directory = DirectoryActor::new(deps, meta, signer, storage_url)
        .context("loading the metadata store")?;
    tracing::info!(%addr, "server starting");
    let session_lifetimes = config.console.lifetimes();
    let heartbeat = Duration::from_secs(config.registry.heartbeat_secs);

    system.block_on(async move {
        // The directory is restored once; a restart keeps its state, and
        // each office actor restarts on its own.
        let registry = supervision::start("directory", move |_| directory);
        let supervisor = NodeSupervisor::new(
            vec![Child::of("directory", &registry)],
            book,
            WATCHDOG_EVERY,
        )
        .start();
        let registry = registry.0;
        let refusals = Arc::new(VersionRefusals::default());
        let control = control::Control {
            registry: registry.clone(),
            trust: identity.as_ref().map(|id| id.trust().clone()),
            enroller: enroller.clone(),
            limits: config.control.limits(),
            refusals: refusals.clone(),
        };
        start_control(socket, identity, crl_file, control).await?;
        let storage_view = match file_storage {
            Some(storage) => Some(start_file_storage(storage).await?),
            None => None,
        };
        let handler = Arc::new(ServerAdmin {
            registry,
            supervisor,
            addr,
            file_storage: storage_view,
            enroller,
            accounts,
            api_tokens,
            audit,
            health: HealthSources {
                refusals,
                data_dir,
                meta: health_meta,
                heartbeat,
                certificates,
            },
        });
        if let Some((listener, tls, _)) = console {
            let console = Arc::new(Console::new(handler.clone(), session_lifetimes));
            actix_rt::spawn(crate::console::server::start(listener, tls, console)?);
        }
        serve_admin(handler, admin, metrics)
    })?;
    run_until(system, stop, None)
}

/// Who may join the cluster (a server with its own CA), with a join token
/// printed at each start.
fn enroller(
    ca: Option<ClusterCa>,
    identity: Option<&Identity>,
    meta: &Arc<MetaStore>,
    addr: std::net::SocketAddr,
) -> anyhow::Result<Option<Arc<Enroller>>> {
    let enroller = trust::enroller(ca, identity.map(|id| id.trust().clone()), meta, addr)?;
    let Some(enroller) = enroller else {
        return Ok(None);
    };
    let (token, _) = enroller
        .make_token(START_TOKEN_LIFETIME)
        .context("making the start join token")?;
    tracing::info!(
        "join clients to this cluster (token valid 24 h; `branchline token create` makes more): branchline client --join {token}"
    );
    Ok(Some(Arc::new(enroller)))
}

/// The admin socket and the metrics endpoint, both answered by `handler`.
fn serve_admin(
    handler: Arc<ServerAdmin>,
    admin: std::os::unix::net::UnixListener,
    metrics: Option<std::net::TcpListener>,
) -> anyhow::Result<()> {
    let scraped = handler.clone();
    serve_metrics(metrics, move || {
        let handler = scraped.clone();
        async move { Ok(crate::metrics::render_server(&handler.status().await?)) }
    })?;
    actix_rt::spawn(listener::serve(admin, move |request, _file, replies| {
        handler.clone().handle(request, replies)
    }));
    Ok(())
}

/// The console's listener and TLS, made before anything else starts so
/// a port in use or a bad certificate is named at once; `None` when it is
/// off.
fn bind_console(
    config: &ServerConfig,
    control: std::net::SocketAddr,
    ca: Option<&ClusterCa>,
    identity: Option<&Identity>,
) -> anyhow::Result<Option<ConsoleListener>> {
    let section = &config.console;
    if !section.enabled {
        return Ok(None);
    }
    let listen = section.listen(control);
    let source = match (&section.cert, &section.key, ca, identity) {
        (Some(cert), Some(key), _, _) => certificate::Source::Given { cert, key },
        (_, _, Some(ca), _) => certificate::Source::ClusterCa(ca),
        (_, _, None, Some(identity)) => certificate::Source::Node(identity),
        (_, _, None, None) => certificate::Source::SelfSigned,
    };
    let (tls, shown) =
        certificate::server_config(source, &certificate::names(&section.names, listen))?;
    let listener = std::net::TcpListener::bind(listen).with_context(|| {
        format!(
            "cannot listen on {listen} for the console (set [console] listen, or enabled = false)"
        )
    })?;
    let url = match listen.ip().is_unspecified() {
        true => format!("https://<this host>:{}/", listen.port()),
        false => format!("https://{listen}/"),
    };
    tracing::info!(%url, "the console and its API (/api/v1) answer here; sign in with an account from `branchline admin add-user`");
    Ok(Some((listener, tls, shown)))
}

/// The console's listener, its TLS, and the certificate it shows.
type ConsoleListener = (
    std::net::TcpListener,
    rustls::ServerConfig,
    rustls::pki_types::CertificateDer<'static>,
);

/// The certificates the server shows, by what they are (DER), for the
/// health check: its own, its CA's (the chain's next), the console's.
fn shown_certificates(
    identity: Option<&Identity>,
    console: Option<&ConsoleListener>,
) -> Vec<(String, Vec<u8>)> {
    let mut shown = Vec::new();
    if let Some(identity) = identity {
        let labels = ["the server's certificate", "its CA"];
        for (label, cert) in labels.iter().zip(identity.chain()) {
            shown.push(((*label).to_owned(), cert.to_vec()));
        }
    }
    if let Some((_, _, cert)) = console {
        shown.push(("the console's certificate".to_owned(), cert.to_vec()));
    }
    shown
}

/// The file storage's listener, bound before anything else starts so a
/// port in use is named at once; `None` when it is off.
fn bind_file_storage(
    config: &ServerConfig,
) -> anyhow::Result<Option<(&std::path::Path, std::net::TcpListener)>> {
    let (true, Some(dir)) = (&config.file_storage.enabled, &config.file_storage.dir) else {
        return Ok(None);
    };
    let listener = crate::file_storage::listen(config.file_storage.listen).with_context(|| {
        format!(
            "cannot listen on {} for the file storage",
            config.file_storage.listen
        )
    })?;
    Ok(Some((dir, listener)))
}

/// The metadata store, with a damaged one named as such.
fn open_meta(data_dir: &std::path::Path) -> anyhow::Result<Arc<MetaStore>> {
    let meta = MetaStore::open(&data_dir.join("meta"), 16 * 1024 * 1024).map_err(|e| match e {
        damaged @ MetaError::Open(OpenError::Damaged(_)) => anyhow::Error::new(damaged),
        other => anyhow::Error::new(other).context(format!(
            "cannot open the metadata store in {} (is another server using it?)",
            data_dir.display()
        )),
    })?;
    Ok(Arc::new(meta))
}

/// The embedded file storage, allowed to serve what was published before
/// this start, with its listener and its URL.
fn file_storage(
    config: &ServerConfig,
    dir: &std::path::Path,
    listener: std::net::TcpListener,
    identity: Option<&Identity>,
    meta: &MetaStore,
) -> anyhow::Result<(FileStorage, std::net::TcpListener, String)> {
    let access = storage_access(identity, meta)?;
    let storage = FileStorage::new(dir, access, config.file_storage.limits())
        .with_context(|| format!("file_storage.dir {} is not usable", dir.display()))?;
    let url = config.file_storage.url(!config.insecure)?;
    for record in meta.contents().context("reading the published contents")? {
        storage.allow(&url, &record.origins);
    }
    Ok((storage, listener, url))
}

/// What every office actor shares: timing, the client cap, the actor book
/// and the arbiters they are spread over.
fn office_deps(config: &ServerConfig, book: ActorBook, arbiters: Vec<ArbiterHandle>) -> OfficeDeps {
    let registry = &config.registry;
    OfficeDeps {
        timing: RegistryTiming {
            client_timeout: Duration::from_secs(registry.client_timeout_secs),
            lease_ttl: Duration::from_secs(registry.lease_ttl_secs),
            rvp_patience: Duration::from_secs(registry.rvp_patience_secs),
        },
        seats: Arc::new(Seats::new(
            usize::try_from(config.control.max_clients).unwrap_or(usize::MAX),
        )),
        heartbeat: Duration::from_secs(registry.heartbeat_secs),
        book,
        arbiters,
    }
}

/// The control endpoint on an arbiter of its own (connections handed to
/// the per-core arbiters answered no faster: bench-registry measured the
/// sources p99 1.23x and 1.32x worse, the registration rate 0.91x and
/// 1.01x), and the revocation list watched.
async fn start_control(
    socket: std::net::UdpSocket,
    identity: Option<Identity>,
    crl_file: Option<std::path::PathBuf>,
    control: control::Control,
) -> anyhow::Result<()> {
    let control_arbiter = Arbiter::new();
    on_arbiter(&control_arbiter, move || -> anyhow::Result<()> {
        let admit = match control.enroller {
            Some(_) => Admit::MembersAndJoiners,
            None => Admit::Members,
        };
        let (endpoint, _) = endpoint::endpoint(socket, None, identity.as_ref(), admit)?;
        if let (Some(trust), Some(crl)) = (&control.trust, crl_file) {
            actix_rt::spawn(revocation::watch_file(trust.clone(), crl));
        }
        actix_rt::spawn(control::serve(endpoint, control));
        Ok(())
    })
    .await?
}

/// The embedded file storage serving on an arbiter of its own; what the
/// admin status shows of it.
async fn start_file_storage(
    (storage, listener, url): (FileStorage, std::net::TcpListener, String),
) -> anyhow::Result<(FileStorage, String)> {
    tracing::info!(dir = %storage.root().display(), %url, "file storage serving");
    let view = (storage.clone(), url);
    let arbiter = Arbiter::new();
    on_arbiter(&arbiter, move || -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        actix_rt::spawn(storage.serve(listener));
        Ok(())
    })
    .await??;
    Ok(view)
}

/// One arbiter (thread) per core for the office actors, so a server with
/// many offices uses every core; the arbiters live as long as the process.
fn office_arbiters() -> Vec<ArbiterHandle> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    (0..cores)
        .map(|_| {
            let arbiter = Arbiter::new();
            let handle = arbiter.handle();
            // Kept running when the `Arbiter` value goes: it stops with
            // the system.
            drop(arbiter);
            handle
        })
        .collect()
}

/// The sled setting that keeps the key signed URLs are made with.
const URL_KEY: &str = "file_storage_url_key";

/// Who the file storage serves: with the server's identity, cluster
/// members over HTTPS and holders of URLs signed with the server's own key
/// (made on first start, kept in its metadata); without one (insecure),
/// anyone over HTTP.
fn storage_access(identity: Option<&Identity>, meta: &MetaStore) -> anyhow::Result<Access> {
    let Some(identity) = identity else {
        tracing::warn!(
            "insecure = true: the file storage serves plain HTTP to anyone who reaches it"
        );
        return Ok(Access::Open);
    };
    let key = match meta.setting::<[u8; 32]>(URL_KEY)? {
        Some(key) => key,
        None => {
            let key = signed_url::new_key().map_err(anyhow::Error::msg)?;
            meta.put_setting(URL_KEY, &key)?;
            meta.flush()?;
            key
        }
    };
    let mut tls = crate::tls::server_config(Some(identity), Admit::MembersAndJoiners)?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Access::Members {
        tls: tokio_rustls::TlsAcceptor::from(Arc::new(tls)),
        trust: identity.trust().clone(),
        key: signed_url::key(&key),
    })
}
