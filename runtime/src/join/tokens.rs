//! The server's live join tokens, in its sled (tree `join_tokens`): the
//! hash of each token's secret, with when it was made and when it expires.
//! A token may be used by many devices until it expires (one token for a
//! rollout); expired tokens are dropped when a new one is made.
//!
//! Expiry reads the wall clock: a token's lifetime is a promise to people
//! ("valid for 24 hours"), and a clock set back lengthens it by as much.

use std::time::Duration;

use branchline_storage::MetaStore;
use branchline_storage::records::{self, BadRecord, unix_ms};
use serde::{Deserialize, Serialize};

use super::token::JoinToken;

/// The sled tree of live tokens.
const TREE: &str = "join_tokens";
/// The longest lifetime a token may be given.
pub const MAX_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// What is kept of a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct TokenRecord {
    made_ms: u64,
    expires_ms: u64,
}

/// Why a token store call failed, or a join was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// sled failed.
    #[error("the server's token store failed: {0}")]
    Db(#[from] sled::Error),
    /// A kept record does not decode.
    #[error(transparent)]
    BadRecord(#[from] BadRecord),
    /// No such token (never made, or expired and dropped).
    #[error("the join token is not known to this server (mistyped, or made by another server)")]
    Unknown,
    /// The token expired.
    #[error("the join token expired {ago_s} s ago; make a new one with `branchline token create`")]
    Expired {
        /// Seconds since it expired.
        ago_s: u64,
    },
    /// No randomness for a secret.
    #[error("no random bytes for a token: {0}")]
    Random(String),
    /// A lifetime of zero or too long.
    #[error("a join token lives between 1 second and 365 days")]
    BadLifetime,
}

/// The store of join tokens.
pub struct JoinTokens {
    tree: sled::Tree,
    /// The server's store, for durable flushes.
    meta: std::sync::Arc<MetaStore>,
}

impl JoinTokens {
    /// The tokens kept in the server's metadata store.
    pub fn open(meta: std::sync::Arc<MetaStore>) -> Result<Self, TokenError> {
        Ok(JoinTokens {
            tree: meta.db().open_tree(TREE)?,
            meta,
        })
    }

    /// Makes a token valid for `lifetime` from now; returns its secret and
    /// its expiry (ms since the epoch). Durable when it returns.
    pub fn make(&self, lifetime: Duration) -> Result<([u8; 16], u64), TokenError> {
        if lifetime.is_zero() || lifetime > MAX_LIFETIME {
            return Err(TokenError::BadLifetime);
        }
        let now = unix_ms();
        self.drop_expired(now)?;
        let mut secret = [0u8; 16];
        getrandom::getrandom(&mut secret).map_err(|e| TokenError::Random(e.to_string()))?;
        let lifetime_ms = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
        let record = TokenRecord {
            made_ms: now,
            expires_ms: now.saturating_add(lifetime_ms),
        };
        self.tree
            .insert(JoinToken::key(&secret), records::encode(&record))?;
        self.meta.db().flush()?;
        Ok((secret, record.expires_ms))
    }

    /// Checks that `secret` is a live token's.
    pub fn check(&self, secret: &[u8; 16]) -> Result<(), TokenError> {
        let record: TokenRecord = match self.tree.get(JoinToken::key(secret))? {
            Some(bytes) => records::decode(&bytes, || "join_tokens/<token>".to_owned())?,
            None => return Err(TokenError::Unknown),
        };
        let now = unix_ms();
        if now >= record.expires_ms {
            return Err(TokenError::Expired {
                ago_s: (now - record.expires_ms) / 1000,
            });
        }
        Ok(())
    }

    fn drop_expired(&self, now: u64) -> Result<(), TokenError> {
        for item in self.tree.iter() {
            let (key, value) = item?;
            let record: TokenRecord = records::decode(&value, || "join_tokens/<token>".to_owned())?;
            if record.expires_ms <= now {
                self.tree.remove(key)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_works_until_it_expires_and_a_wrong_one_never() {
        let dir = tempfile::tempdir().unwrap();
        let meta = std::sync::Arc::new(MetaStore::open(dir.path(), 1 << 20).unwrap());
        let tokens = JoinTokens::open(meta).unwrap();
        let (secret, expires) = tokens.make(Duration::from_secs(3600)).unwrap();
        assert!(expires > unix_ms());
        tokens.check(&secret).unwrap();
        let mut wrong = secret;
        wrong[0] ^= 1;
        assert!(matches!(tokens.check(&wrong), Err(TokenError::Unknown)));
        let (short, _) = tokens.make(Duration::from_millis(1)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let err = tokens.check(&short).unwrap_err();
        assert!(
            err.to_string().starts_with("the join token expired"),
            "{err}"
        );
        // Making another drops the expired one.
        tokens.make(Duration::from_secs(60)).unwrap();
        assert!(matches!(tokens.check(&short), Err(TokenError::Unknown)));
        assert!(matches!(
            tokens.make(Duration::ZERO),
            Err(TokenError::BadLifetime)
        ));
        assert!(matches!(
            tokens.make(MAX_LIFETIME + Duration::from_secs(1)),
            Err(TokenError::BadLifetime)
        ));
    }
}
