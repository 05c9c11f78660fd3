//! API tokens (C3): what a script or a remote command line presents to
//! the console's API instead of signing in. A token is `blt_<id>_<secret>`:
//! the id (8 random bytes, hex) names it in lists, the audit log and
//! `revoke`; the secret (32 random bytes, hex) is shown once, when the
//! token is made, and only its SHA-256 is kept (tree `api_tokens` of the
//! server's metadata store). Every token has a role and an expiry.

use std::time::Duration;

use branchline_actors::wire::{ApiTokenView, Role};
use branchline_storage::MetaStore;
use branchline_storage::records::{self, BadRecord, unix_ms};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The sled tree of tokens.
const TREE: &str = "api_tokens";
/// What every token starts with.
const PREFIX: &str = "blt_";
/// The longest lifetime a token may be given.
pub const MAX_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// What is kept of a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct TokenRecord {
    name: String,
    role: Role,
    made_ms: u64,
    expires_ms: u64,
    /// SHA-256 of the secret.
    secret_hash: [u8; 32],
}

/// Why a token call failed, or a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApiTokenError {
    /// Not the shape of a token.
    #[error("not an API token (they look like blt_<16 hex digits>_<64 hex digits>)")]
    Malformed,
    /// No such token (never made, revoked, or a wrong secret).
    #[error("the API token is not known to this server (revoked, or mistyped)")]
    Unknown,
    /// Its time is up.
    #[error("the API token expired {ago_s} s ago")]
    Expired {
        /// Seconds since it expired.
        ago_s: u64,
    },
    /// A name the console could not show.
    #[error("`{0}` is not a token name: 1 to 64 letters, digits, dots, dashes or underscores")]
    BadName(String),
    /// A lifetime of zero or too long.
    #[error("an API token lives between 1 second and 365 days")]
    BadLifetime,
    /// sled failed.
    #[error("the server's token store failed: {0}")]
    Db(#[from] sled::Error),
    /// A kept record does not decode.
    #[error(transparent)]
    BadRecord(#[from] BadRecord),
    /// No randomness for a secret.
    #[error("no random bytes for a token: {0}")]
    Random(String),
}

/// The API tokens kept in the server's metadata store.
pub struct ApiTokens {
    tree: sled::Tree,
    meta: std::sync::Arc<MetaStore>,
}

impl ApiTokens {
    /// The tokens of the server whose store is `meta`.
    pub fn open(meta: std::sync::Arc<MetaStore>) -> Result<Self, ApiTokenError> {
        Ok(ApiTokens {
            tree: meta.db().open_tree(TREE)?,
            meta,
        })
    }

    /// Makes a token named `name` with `role`, valid for `lifetime`;
    /// returns the token (its only showing) and how it is listed.
    /// Durable when it returns.
    pub fn make(
        &self,
        name: &str,
        role: Role,
        lifetime: Duration,
    ) -> Result<(String, ApiTokenView), ApiTokenError> {
        if !super::is_plain_name(name) {
            return Err(ApiTokenError::BadName(name.to_owned()));
        }
        if lifetime.is_zero() || lifetime > MAX_LIFETIME {
            return Err(ApiTokenError::BadLifetime);
        }
        let mut id = [0u8; 8];
        let mut secret = [0u8; 32];
        getrandom::getrandom(&mut id).map_err(|e| ApiTokenError::Random(e.to_string()))?;
        getrandom::getrandom(&mut secret).map_err(|e| ApiTokenError::Random(e.to_string()))?;
        let made_ms = unix_ms();
        let record = TokenRecord {
            name: name.to_owned(),
            role,
            made_ms,
            expires_ms: made_ms
                .saturating_add(u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX)),
            secret_hash: Sha256::digest(secret).into(),
        };
        self.tree.insert(id, records::encode(&record))?;
        self.meta.db().flush()?;
        let token = format!("{PREFIX}{}_{}", hex::encode(id), hex::encode(secret));
        Ok((token, view(&id, &record)))
    }

    /// Every token, by id.
    pub fn list(&self) -> Result<Vec<ApiTokenView>, ApiTokenError> {
        let mut tokens = Vec::new();
        for item in self.tree.iter() {
            let (id, value) = item?;
            let record: TokenRecord = records::decode(&value, || "api_tokens/<id>".to_owned())?;
            tokens.push(view(&id, &record));
        }
        Ok(tokens)
    }

    /// Revokes the token whose id is `id`; durable when it returns. What
    /// it was.
    pub fn revoke(&self, id: &str) -> Result<ApiTokenView, ApiTokenError> {
        let key = hex::decode(id).map_err(|_| ApiTokenError::Unknown)?;
        let Some(value) = self.tree.remove(&key)? else {
            return Err(ApiTokenError::Unknown);
        };
        self.meta.db().flush()?;
        let record: TokenRecord = records::decode(&value, || "api_tokens/<id>".to_owned())?;
        Ok(view(&key, &record))
    }

    /// The name and role of `token` if it is live.
    pub fn check(&self, token: &str) -> Result<(String, Role), ApiTokenError> {
        let (id, secret) = token
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('_'))
            .ok_or(ApiTokenError::Malformed)?;
        let id = hex::decode(id).map_err(|_| ApiTokenError::Malformed)?;
        let secret = hex::decode(secret).map_err(|_| ApiTokenError::Malformed)?;
        if id.len() != 8 || secret.len() != 32 {
            return Err(ApiTokenError::Malformed);
        }
        let Some(value) = self.tree.get(&id)? else {
            return Err(ApiTokenError::Unknown);
        };
        let record: TokenRecord = records::decode(&value, || "api_tokens/<id>".to_owned())?;
        let hash: [u8; 32] = Sha256::digest(&secret).into();
        // Every byte compared, whatever differs first.
        let differ = hash
            .iter()
            .zip(&record.secret_hash)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if differ != 0 {
            return Err(ApiTokenError::Unknown);
        }
        let now = unix_ms();
        if now >= record.expires_ms {
            return Err(ApiTokenError::Expired {
                ago_s: (now - record.expires_ms) / 1000,
            });
        }
        Ok((record.name, record.role))
    }
}

fn view(id: &[u8], record: &TokenRecord) -> ApiTokenView {
    ApiTokenView {
        id: hex::encode(id),
        name: record.name.clone(),
        role: record.role,
        made_ms: record.made_ms,
        expires_ms: record.expires_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> (tempfile::TempDir, ApiTokens) {
        let dir = tempfile::tempdir().unwrap();
        let meta = std::sync::Arc::new(MetaStore::open(dir.path(), 1 << 20).unwrap());
        (dir, ApiTokens::open(meta).unwrap())
    }

    #[test]
    fn a_token_works_with_its_role_until_it_is_revoked_or_expires() {
        let (_dir, tokens) = tokens();
        let (token, made) = tokens
            .make("nightly-report", Role::Viewer, Duration::from_secs(3600))
            .unwrap();
        assert!(token.starts_with(&format!("blt_{}_", made.id)), "{token}");
        assert_eq!(
            tokens.check(&token).unwrap(),
            ("nightly-report".to_owned(), Role::Viewer)
        );
        assert_eq!(tokens.list().unwrap(), vec![made.clone()]);
        // A wrong secret for a real id, and shapes that are no token.
        let mut wrong = token.clone();
        let last = wrong.pop().unwrap();
        wrong.push(if last == '0' { '1' } else { '0' });
        assert!(matches!(tokens.check(&wrong), Err(ApiTokenError::Unknown)));
        for junk in ["", "blt_", "blt_zz_00", "hello", &token[..token.len() - 2]] {
            assert!(
                matches!(tokens.check(junk), Err(ApiTokenError::Malformed)),
                "{junk}"
            );
        }
        assert_eq!(tokens.revoke(&made.id).unwrap(), made);
        assert!(matches!(tokens.check(&token), Err(ApiTokenError::Unknown)));
        assert!(matches!(
            tokens.revoke(&made.id),
            Err(ApiTokenError::Unknown)
        ));

        let (short, _) = tokens
            .make("short", Role::Admin, Duration::from_millis(1))
            .unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let err = tokens.check(&short).unwrap_err();
        assert!(
            err.to_string().starts_with("the API token expired"),
            "{err}"
        );
    }

    #[test]
    fn bad_names_and_lifetimes_are_refused_and_make_nothing() {
        let (_dir, tokens) = tokens();
        let err = tokens
            .make("a b", Role::Viewer, Duration::from_secs(60))
            .unwrap_err();
        assert!(
            err.to_string().starts_with("`a b` is not a token name"),
            "{err}"
        );
        for lifetime in [Duration::ZERO, MAX_LIFETIME + Duration::from_secs(1)] {
            let err = tokens.make("ci", Role::Viewer, lifetime).unwrap_err();
            assert_eq!(
                err.to_string(),
                "an API token lives between 1 second and 365 days"
            );
        }
        assert!(tokens.list().unwrap().is_empty());
    }
}
