//! One cached outgoing QUIC connection to one address, made on first use and
//! made again after it drops. Concurrent callers share the connection and
//! wait for one another's handshake instead of each dialling.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use super::endpoint;

/// The slot.
#[derive(Clone)]
pub struct ConnectionSlot {
    endpoint: quinn::Endpoint,
    addr: SocketAddr,
    conn: Arc<Mutex<Option<quinn::Connection>>>,
}

impl ConnectionSlot {
    /// A slot for connections from `endpoint` to `addr`.
    pub fn new(endpoint: quinn::Endpoint, addr: SocketAddr) -> Self {
        ConnectionSlot { endpoint, addr, conn: Arc::new(Mutex::new(None)) }
    }

    /// The address the slot dials.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The live connection, dialling if there is none.
    pub async fn get(&self, deadline: Duration) -> Result<quinn::Connection, String> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref().filter(|c| c.close_reason().is_none()) {
            return Ok(conn.clone());
        }
        let conn = endpoint::connect(&self.endpoint, self.addr, deadline).await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Opens a bidirectional stream, dialling if needed. If the cached
    /// connection turns out dead, dials once more.
    pub async fn open(&self, deadline: Duration) -> Result<(quinn::SendStream, quinn::RecvStream), String> {
        let conn = self.get(deadline).await?;
        match conn.open_bi().await {
            Ok(streams) => Ok(streams),
            Err(first) => {
                tracing::debug!(addr = %self.addr, error = %first, "connection dropped; dialling again");
                let conn = self.get(deadline).await?;
                conn.open_bi().await.map_err(|e| e.to_string())
            }
        }
    }
}
