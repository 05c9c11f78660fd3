//! One cached outgoing QUIC connection to one address, made on first use and
//! made again after it drops. Concurrent callers share the connection and
//! wait for one another's handshake instead of each dialling; when a dial
//! fails, callers that waited for it get the same failure at once instead of
//! each waiting out its own dial (a dead peer costs one dial deadline, not
//! one per request).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::endpoint::{self, DialError};
use super::session_stats::SessionStats;
use crate::revocation::Trust;

/// The slot.
#[derive(Clone)]
pub struct ConnectionSlot {
    endpoint: quinn::Endpoint,
    addr: SocketAddr,
    /// The name the other side's certificate must carry.
    name: &'static str,
    stats: Option<Arc<SessionStats>>,
    /// With the cluster PKI: closes a connection whose peer is revoked.
    trust: Option<Arc<Trust>>,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    conn: Option<quinn::Connection>,
    /// The last failed dial: when it ended and why.
    failed: Option<(Instant, DialError)>,
}

impl ConnectionSlot {
    /// A slot for connections from `endpoint` to the peer at `addr`.
    pub fn new(endpoint: quinn::Endpoint, addr: SocketAddr) -> Self {
        ConnectionSlot {
            endpoint,
            addr,
            name: crate::tls::SERVER_NAME,
            stats: None,
            trust: None,
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    /// A slot for connections to the server at `addr`: its certificate must
    /// name the server role.
    pub fn to_server(endpoint: quinn::Endpoint, addr: SocketAddr) -> Self {
        ConnectionSlot {
            name: crate::tls::CONTROL_NAME,
            ..ConnectionSlot::new(endpoint, addr)
        }
    }

    /// The same slot, counting its connections' numbers in `stats`.
    pub fn counting_in(self, stats: Arc<SessionStats>) -> Self {
        ConnectionSlot {
            stats: Some(stats),
            ..self
        }
    }

    /// The same slot, its connections closed if the peer's certificate is
    /// revoked while they are open.
    pub fn guarded_by(self, trust: Option<Arc<Trust>>) -> Self {
        ConnectionSlot { trust, ..self }
    }

    /// The connection, if one is open and no dial holds the slot.
    pub fn current(&self) -> Option<quinn::Connection> {
        let state = self.state.try_lock().ok()?;
        state.conn.clone().filter(|c| c.close_reason().is_none())
    }

    /// The address the slot dials.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The live connection, dialling if there is none.
    pub async fn get(&self, deadline: Duration) -> Result<quinn::Connection, DialError> {
        let asked = Instant::now();
        let mut state = self.state.lock().await;
        if let Some(conn) = state.conn.as_ref().filter(|c| c.close_reason().is_none()) {
            return Ok(conn.clone());
        }
        // A dial that failed while we waited for the lock answers for us.
        if let Some((at, reason)) = state.failed.as_ref().filter(|(at, _)| *at >= asked) {
            return Err(DialError::Recently {
                reason: Box::new(reason.clone()),
                ms: at.elapsed().as_millis(),
            });
        }
        match endpoint::connect(&self.endpoint, self.addr, self.name, deadline).await {
            Ok(conn) => {
                if let Some(stats) = &self.stats {
                    stats.track(&conn, true);
                }
                if let Some(trust) = &self.trust {
                    actix_rt::spawn(trust.clone().guard(conn.clone(), Some(self.name)));
                }
                state.conn = Some(conn.clone());
                state.failed = None;
                Ok(conn)
            }
            Err(reason) => {
                state.failed = Some((Instant::now(), reason.clone()));
                Err(reason)
            }
        }
    }

    /// Opens a bidirectional stream, dialling if needed. If the cached
    /// connection turns out dead, dials once more.
    pub async fn open(
        &self,
        deadline: Duration,
    ) -> Result<(quinn::SendStream, quinn::RecvStream), DialError> {
        let conn = self.get(deadline).await?;
        match conn.open_bi().await {
            Ok(streams) => Ok(streams),
            Err(first) => {
                tracing::debug!(addr = %self.addr, error = %first, "connection dropped; dialling again");
                let conn = self.get(deadline).await?;
                Ok(conn.open_bi().await?)
            }
        }
    }
}
