//! Starting a node: one actix System per node (one runtime per node), its
//! actors under supervision, its sockets bound before anything starts so a
//! port in use or a locked data directory is a clear error.
//!
//! - [`supervisor`]: the root actor, watching the others.
//! - [`client`]: store, transport (own arbiter), server link, origin, office,
//!   admin socket.
//! - [`start_check`]: the client's cache self-check after an unclean stop.
//! - [`server`]: registry, control endpoint (own arbiter), file storage (own
//!   arbiter), admin socket.

pub mod client;
pub mod server;
pub mod start_check;
pub mod supervisor;
pub mod trust;

use actix::Arbiter;
use anyhow::Context as _;

/// How often the node supervisor checks its children.
const WATCHDOG_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// How a node is told to stop.
pub enum Stop {
    /// On SIGINT or SIGTERM (the command line).
    Signal,
    /// When the caller stops the returned System (the demo).
    Handle(std::sync::mpsc::Sender<actix_rt::System>),
}

/// What a node does after a stop signal and before its System stops (a
/// client tells the server it leaves); given at most [`FAREWELL_DEADLINE`].
type Farewell = std::pin::Pin<Box<dyn Future<Output = ()>>>;

/// Longest wait for a [`Farewell`].
const FAREWELL_DEADLINE: std::time::Duration = std::time::Duration::from_secs(3);

/// Runs the started System until it is told to stop.
fn run_until(
    system: actix_rt::SystemRunner,
    stop: Stop,
    farewell: Option<Farewell>,
) -> anyhow::Result<()> {
    match stop {
        Stop::Signal => {
            system.block_on(async {
                actix_rt::spawn(async {
                    wait_for_signal().await;
                    tracing::info!("stopping");
                    if let Some(farewell) = farewell {
                        let _ = tokio::time::timeout(FAREWELL_DEADLINE, farewell).await;
                    }
                    actix_rt::System::current().stop();
                });
            });
        }
        Stop::Handle(tx) => {
            let _ = tx.send(system.block_on(async { actix_rt::System::current() }));
        }
    }
    match system.run_with_code().context("node runtime failed")? {
        0 => Ok(()),
        code if code == i32::from(supervisor::ACTOR_DIED_EXIT) => Err(supervisor::ActorDied.into()),
        code => anyhow::bail!("node runtime stopped with code {code}"),
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Serves the metrics endpoint on `listener` (if metrics are enabled),
/// rendering `scrape()` on every scrape. Call it inside the node's System.
fn serve_metrics<F, Fut>(listener: Option<std::net::TcpListener>, scrape: F) -> anyhow::Result<()>
where
    F: Fn() -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = Result<String, String>> + 'static,
{
    if let Some(listener) = listener {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        actix_rt::spawn(crate::metrics::serve(listener, scrape));
    }
    Ok(())
}

/// Runs `make` on `arbiter` and returns its result: how an endpoint is made
/// on the arbiter whose runtime will drive it.
async fn on_arbiter<T: Send + 'static>(
    arbiter: &Arbiter,
    make: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = arbiter.spawn(async move {
        let _ = tx.send(make());
    });
    anyhow::ensure!(spawned, "arbiter is not running");
    rx.await.context("arbiter dropped the task")
}
