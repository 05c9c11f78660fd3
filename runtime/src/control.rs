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

use std::sync::Arc;
use std::time::Duration;

use crate::join::ca::Enroller;
use crate::revocation::Trust;
use actix::Addr;
use branchline_actors::registry_actor::{RegistryActor, Serve};
use branchline_actors::wire::{
    JoinRequest, MAX_REQUEST_FRAME, ServerReply, ServerRequest, read_frame, write_frame,
};
use branchline_storage::NodeId;

/// Deadline for a client to send its request once it opened a stream.
const REQUEST_DEADLINE: Duration = Duration::from_secs(10);

/// Accepts connections until the endpoint closes. Run it on the control
/// arbiter.
pub async fn serve(
    endpoint: quinn::Endpoint,
    registry: Addr<RegistryActor>,
    trust: Option<Arc<Trust>>,
    enroller: Option<Arc<Enroller>>,
) {
    while let Some(incoming) = endpoint.accept().await {
        let (registry, trust, enroller) = (registry.clone(), trust.clone(), enroller.clone());
        actix_rt::spawn(async move {
            match incoming.await {
                Ok(conn) if crate::tls::check_version(&conn).is_err() => {
                    tracing::warn!(client = %conn.remote_address(), "refused a client of another protocol version");
                }
                Ok(conn) => {
                    let member = crate::tls::peer_chain(&conn).is_some();
                    if let Some(trust) = &trust
                        && member
                    {
                        actix_rt::spawn(trust.clone().guard(conn.clone(), None));
                    }
                    serve_connection(conn, registry, trust, enroller).await
                }
                Err(e) => tracing::debug!(error = %e, "control handshake failed"),
            }
        });
    }
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

async fn serve_connection(
    conn: quinn::Connection,
    registry: Addr<RegistryActor>,
    trust: Option<Arc<Trust>>,
    enroller: Option<Arc<Enroller>>,
) {
    let from = conn.remote_address();
    // Under the PKI, the node this connection's certificate names (none:
    // a device that may only join).
    let sender = trust.as_ref().map(|_| crate::tls::peer_node_id(&conn));
    let member = sender.is_none_or(|id| id.is_some());
    loop {
        let (mut send, mut recv) = match conn.accept_bi().await {
            Ok(streams) => streams,
            Err(e) => {
                tracing::debug!(%from, reason = %e, "control connection closed");
                return;
            }
        };
        let (registry, trust, enroller) = (registry.clone(), trust.clone(), enroller.clone());
        actix_rt::spawn(async move {
            let request = match tokio::time::timeout(
                REQUEST_DEADLINE,
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
            let reply = match request {
                ServerRequest::Join(request) => join(enroller, request, member).await,
                _ if !member => {
                    tracing::warn!(%from, "refused a request from a connection without a certificate");
                    ServerReply::Error(
                        "this connection shows no cluster certificate: join the cluster first (branchline client --join TOKEN)".into(),
                    )
                }
                ServerRequest::GetRevocations { known } => revocations(trust.as_deref(), known),
                request if !speaks_for_itself(&request, sender) => {
                    tracing::warn!(%from, claimed = ?request.claimed_id(), "refused a request made for another node");
                    ServerReply::Error(format!(
                        "this connection's certificate is node {}'s; a client speaks only for itself",
                        sender
                            .flatten()
                            .map_or_else(|| "none".to_owned(), |id| id.to_string())
                    ))
                }
                request => match registry.send(Serve { request, from }).await {
                    Ok(reply) => with_revocations(reply, trust.as_deref()),
                    Err(e) => ServerReply::Error(format!("registry unavailable: {e}")),
                },
            };
            if write_frame(&mut send, &reply).await.is_ok() {
                let _ = send.finish();
            }
        });
    }
}
