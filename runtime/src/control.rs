//! The server's control endpoint: accepts client connections over QUIC and
//! answers one request per stream through the registry actor. A malformed
//! or oversized request ends its stream with an error and is never passed
//! on. Streams per connection are capped by the endpoint.
//!
//! Under the cluster PKI it also hands out the CA's revocation list in
//! force (`GetRevocations`) and closes the connection of a client whose
//! certificate is revoked while it is connected. On a server with its own
//! CA a device without a certificate may connect, and may only join
//! (`Join`, with a live token): every other request on its connection is
//! refused.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::join::ca::Enroller;
use crate::revocation::Trust;
use crate::transport::admission::Admission;
use crate::transport::request_rate::{Admitted, RequestRate, TOO_MANY_REQUESTS};
use actix::Addr;
use branchline_actors::server::directory::DirectoryActor;
use branchline_actors::server::office_actor::MAX_WAIT;
use branchline_actors::server::office_messages::Serve;
use branchline_actors::wire::{
    JoinRequest, MAX_REQUEST_FRAME, ServerReply, ServerRequest, read_frame, write_frame,
};
use branchline_storage::NodeId;

/// Caps on what clients may hold of the control endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlLimits {
    /// Connections open at once from one IP address (clients behind one
    /// NAT share one), refused before their handshake beyond.
    pub connections_per_address: usize,
    /// Requests one connection may make per second (and in a burst);
    /// beyond, each is refused, and a connection that keeps on after a
    /// second's worth of refusals is closed.
    pub requests_per_sec: u32,
    /// Longest a client has to send its request once it opened a stream,
    /// and longest the registry may take to answer it (beyond a long
    /// poll's own wait).
    pub deadline: Duration,
}

impl Default for ControlLimits {
    fn default() -> Self {
        ControlLimits {
            connections_per_address: 256,
            requests_per_sec: 1000,
            deadline: Duration::from_secs(10),
        }
    }
}

/// What the control endpoint answers with.
pub struct Control {
    /// The registry.
    pub registry: Addr<DirectoryActor>,
    /// Under the PKI: the CA and the revocation list in force.
    pub trust: Option<Arc<Trust>>,
    /// Devices joining, on a server with its own CA.
    pub enroller: Option<Arc<Enroller>>,
    /// Devices refused for another protocol version, for the health check.
    pub refusals: Arc<crate::version_refusals::VersionRefusals>,
    /// Its caps.
    pub limits: ControlLimits,
}

/// Accepts connections until the endpoint closes. Run it on the control
/// arbiter.
pub async fn serve(endpoint: quinn::Endpoint, control: Control) {
    let control = Arc::new(control);
    let admission = Arc::new(Mutex::new(Admission::new(
        control.limits.connections_per_address,
    )));
    while let Some(incoming) = endpoint.accept().await {
        let ip = incoming.remote_address().ip();
        if !branchline_actors::lock_unpoisoned(&admission).try_admit(ip) {
            tracing::debug!(%ip, "refused a control connection: the address has its cap of open connections");
            incoming.refuse();
            continue;
        }
        let (control, admission) = (control.clone(), admission.clone());
        actix_rt::spawn(async move {
            match incoming.await {
                Ok(conn) => match crate::tls::check_version(&conn) {
                    Err(reason) => {
                        tracing::warn!(client = %conn.remote_address(), %reason, "refused a client of another protocol version");
                        let node = crate::tls::peer_node_id(&conn);
                        control.refusals.record(conn.remote_address(), node, reason);
                    }
                    Ok(()) => serve_member(conn, control).await,
                },
                Err(e) => tracing::debug!(error = %e, "control handshake failed"),
            }
            branchline_actors::lock_unpoisoned(&admission).release(ip);
        });
    }
}

/// Serves a connection of this protocol version; under the PKI, a
/// member's connection is closed if its certificate is revoked.
async fn serve_member(conn: quinn::Connection, control: Arc<Control>) {
    let member = crate::tls::peer_chain(&conn).is_some();
    if let Some(trust) = &control.trust
        && member
    {
        actix_rt::spawn(trust.clone().guard(conn.clone(), None));
    }
    serve_connection(conn, control).await
}

/// Under the PKI (`sender` is `Some`: the node the connection's
/// certificate names, or `None` inside if it names none) a request that
/// names a client must come from that client's connection; without the
/// PKI any goes.
fn speaks_for_itself(request: &ServerRequest, sender: Option<Option<NodeId>>) -> bool {
    match (sender, request.claimed_id()) {
        (Some(sender), Some(claimed)) => sender == Some(claimed),
        _ => true,
    }
}

/// Tells a client, in the office info of its registration and heartbeat
/// answers, which revocation list is in force, so it asks for the list
/// only when its own differs.
fn with_revocations(mut reply: ServerReply, trust: Option<&Trust>) -> ServerReply {
    if let ServerReply::Alive(office) | ServerReply::Registered { office, .. } = &mut reply {
        office.revocations = trust.map(Trust::digest);
    }
    reply
}

/// The answer to `GetRevocations`: the list in force unless the client
/// has it already (or there is none to give).
fn revocations(trust: Option<&Trust>, known: [u8; 32]) -> ServerReply {
    let Some(trust) = trust else {
        return ServerReply::Revocations(None);
    };
    let (crls, digest) = trust.list();
    if digest == known || crls.is_empty() {
        return ServerReply::Revocations(None);
    }
    ServerReply::Revocations(Some(crls.iter().map(|crl| crl.to_vec()).collect()))
}

/// The answer to `Join`: a certificate for a device with a live token,
/// from a connection without one; signed off the async threads.
async fn join(enroller: Option<Arc<Enroller>>, request: JoinRequest, member: bool) -> ServerReply {
    let Some(enroller) = enroller else {
        return ServerReply::Error(
            "this server does not let devices join (its certificates are issued with `branchline pki issue`)".into(),
        );
    };
    if member {
        return ServerReply::Error("this connection already shows a cluster certificate".into());
    }
    match tokio::task::spawn_blocking(move || enroller.join(&request)).await {
        Ok(Ok(joined)) => ServerReply::Joined(joined),
        Ok(Err(reason)) => ServerReply::Error(reason),
        Err(e) => ServerReply::Error(format!("joining failed on the server: {e}")),
    }
}

async fn serve_connection(conn: quinn::Connection, control: Arc<Control>) {
    let from = conn.remote_address();
    // Under the PKI, the node this connection's certificate names (none:
    // a device that may only join).
    let sender = control
        .trust
        .as_ref()
        .map(|_| crate::tls::peer_node_id(&conn));
    let member = sender.is_none_or(|id| id.is_some());
    let rate = Arc::new(Mutex::new(RequestRate::new(
        control.limits.requests_per_sec,
    )));
    // Refusals are logged once per connection, so a flood cannot flood
    // the log too.
    let warned = Arc::new(AtomicBool::new(false));
    loop {
        let (mut send, mut recv) = match conn.accept_bi().await {
            Ok(streams) => streams,
            Err(e) => {
                tracing::debug!(%from, reason = %e, "control connection closed");
                return;
            }
        };
        let (control, rate, conn, warned) =
            (control.clone(), rate.clone(), conn.clone(), warned.clone());
        actix_rt::spawn(async move {
            let deadline = control.limits.deadline;
            let request = match tokio::time::timeout(
                deadline,
                read_frame::<ServerRequest>(&mut recv, MAX_REQUEST_FRAME),
            )
            .await
            {
                Ok(Ok(Some(request))) => request,
                Ok(Ok(None)) => return,
                Ok(Err(e)) => {
                    tracing::warn!(%from, error = %e, "bad request frame; dropping the stream");
                    let _ =
                        write_frame(&mut send, &ServerReply::Error(format!("bad request: {e}")))
                            .await;
                    let _ = send.finish();
                    return;
                }
                Err(_) => return,
            };
            let admitted = branchline_actors::lock_unpoisoned(&rate).admit(Instant::now());
            let reply = match admitted {
                Admitted::Close => {
                    tracing::warn!(%from, "closed a control connection that kept on over its request rate");
                    conn.close(TOO_MANY_REQUESTS.into(), b"too many requests");
                    return;
                }
                Admitted::Refused => ServerReply::Error(format!(
                    "too many requests: at most {} a second per connection; slow down",
                    control.limits.requests_per_sec
                )),
                Admitted::Yes => answer(&control, request, sender, member, from, &warned).await,
            };
            if write_frame(&mut send, &reply).await.is_ok() {
                let _ = send.finish();
            }
        });
    }
}

/// The answer to one admitted request.
async fn answer(
    control: &Control,
    request: ServerRequest,
    sender: Option<Option<NodeId>>,
    member: bool,
    from: std::net::SocketAddr,
    warned: &AtomicBool,
) -> ServerReply {
    let first = || !warned.swap(true, Ordering::Relaxed);
    let trust = control.trust.as_deref();
    match request {
        ServerRequest::Join(request) => join(control.enroller.clone(), request, member).await,
        _ if !member => {
            if first() {
                tracing::warn!(%from, "refused a request from a connection without a certificate (logged once per connection)");
            }
            ServerReply::Error(
                "this connection shows no cluster certificate: join the cluster first (branchline client --join TOKEN)".into(),
            )
        }
        ServerRequest::GetRevocations { known } => revocations(trust, known),
        request if !speaks_for_itself(&request, sender) => {
            if first() {
                tracing::warn!(%from, claimed = ?request.claimed_id(), "refused a request made for another node (logged once per connection)");
            }
            ServerReply::Error(format!(
                "this connection's certificate is node {}'s; a client speaks only for itself",
                sender
                    .flatten()
                    .map_or_else(|| "none".to_owned(), |id| id.to_string())
            ))
        }
        request => {
            // A long poll waits up to MAX_WAIT by design; beyond that and
            // the deadline, the registry is stuck or swamped.
            let deadline = control.limits.deadline + MAX_WAIT;
            match tokio::time::timeout(deadline, control.registry.send(Serve { request, from }))
                .await
            {
                Ok(Ok(reply)) => with_revocations(reply, trust),
                Ok(Err(e)) => ServerReply::Error(format!("registry unavailable: {e}")),
                Err(_) => ServerReply::Error(format!(
                    "the server did not answer within {} s (busy); try again",
                    deadline.as_secs()
                )),
            }
        }
    }
}
