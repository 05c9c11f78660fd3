//! Which identity a node runs with. Secure by default: a server without a
//! `[tls]` section makes and uses its own cluster CA; a client without one
//! uses the certificate it got when it joined, or joins now with its join
//! token. Only `insecure = true` runs a node with no identity (and it says
//! so at every start).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use branchline_storage::MetaStore;

use crate::config::{ClientConfig, ClientSettings, ServerConfig};
use crate::join::ca::{ClusterCa, Enroller};
use crate::join::client as joining;
use crate::join::tokens::JoinTokens;
use crate::revocation::Trust;
use crate::tls::Identity;

/// The server's identity, and where its revocation list file is.
pub struct ServerTrust {
    /// Its certificate; `None` only when insecure.
    pub identity: Option<Identity>,
    /// The revocation list to watch.
    pub crl: Option<std::path::PathBuf>,
    /// Its own CA, if it made one (then devices can join).
    pub ca: Option<ClusterCa>,
}

/// The server's identity: the administrator's `[tls]`, else its own CA's
/// (made on first start in `<data_dir>/ca`), else none if `insecure`.
pub fn server(config: &ServerConfig, data_dir: &Path) -> anyhow::Result<ServerTrust> {
    if let Some(identity) = config.tls.identity()? {
        return Ok(ServerTrust {
            identity: Some(identity),
            crl: config.tls.crl.clone(),
            ca: None,
        });
    }
    if config.insecure {
        return Ok(ServerTrust {
            identity: None,
            crl: None,
            ca: None,
        });
    }
    let (ca, identity) = ClusterCa::open_or_make(data_dir).with_context(|| {
        format!(
            "cannot make or open the cluster CA in {} (if its files are damaged, restore them from a backup: every client's certificate depends on them)",
            data_dir.join(crate::join::ca::CA_DIR).display()
        )
    })?;
    Ok(ServerTrust {
        identity: Some(identity),
        crl: Some(ca.crl()),
        ca: Some(ca),
    })
}

/// The enroller of a server that made its own CA (`ca`), with its token
/// store and the trust in force; `None` for a server without its own CA.
pub fn enroller(
    ca: Option<ClusterCa>,
    live: Option<Arc<Trust>>,
    meta: &Arc<MetaStore>,
    server: SocketAddr,
) -> anyhow::Result<Option<Enroller>> {
    let (Some(ca), Some(live)) = (ca, live) else {
        return Ok(None);
    };
    let tokens = JoinTokens::open(meta.clone()).context("opening the join token store")?;
    Ok(Some(Enroller::new(ca, tokens, live, server)))
}

/// The client's identity: the administrator's `[tls]`, else the one it
/// got when it joined, else one it gets now with its join token (through
/// the server, from an ephemeral port on `bind`), else none if `insecure`.
pub fn client(
    config: &ClientConfig,
    settings: &ClientSettings,
    bind: IpAddr,
    name: &str,
) -> anyhow::Result<Option<Identity>> {
    if let Some(identity) = config.tls.identity()? {
        return Ok(Some(identity));
    }
    if config.insecure {
        return Ok(None);
    }
    let stored = joining::stored(&settings.data_dir).with_context(|| {
        format!(
            "the cluster identity this client got when it joined ({}) is damaged: move that directory away and join again with a new token",
            settings.data_dir.join(joining::IDENTITY_DIR).display()
        )
    })?;
    if let Some(identity) = stored {
        if settings.join.is_some() {
            tracing::info!(
                "this client joined the cluster before; the join token is not needed again"
            );
        }
        return Ok(Some(identity));
    }
    let Some(token) = &settings.join else {
        anyhow::bail!(
            "this client has not joined a cluster: start it once with --join TOKEN (`branchline token create` on the server prints one), or give it a [tls] section; only insecure = true runs it without authentication"
        );
    };
    Ok(Some(joining::join(
        token,
        settings.server,
        bind,
        name,
        &settings.data_dir,
    )?))
}
