//! The console's local accounts (C3): who may sign in to the console and
//! its API, and with which role. Kept in the server's metadata store
//! (tree `accounts`: name -> role, argon2id hash of the password as a PHC
//! string, when made). Made with `branchline admin add-user`; the console
//! and the API check sign-ins here.
//!
//! A password is never kept or logged; a wrong password and an unknown
//! name get the same answer after the same work (a hash is checked
//! either way), so a sign-in does not tell which names exist.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use branchline_actors::wire::{AccountView, Role};
use branchline_storage::MetaStore;
use branchline_storage::records::{self, BadRecord, unix_ms};
use serde::{Deserialize, Serialize};

/// The sled tree of accounts.
const TREE: &str = "accounts";
/// The shortest password an account may have.
pub const MIN_PASSWORD: usize = 12;
/// The longest (argon2 takes any length; this bounds the work a sign-in
/// with a huge password can cause).
pub const MAX_PASSWORD: usize = 256;

/// What is kept of an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct AccountRecord {
    role: Role,
    /// The password's argon2id hash, as a PHC string.
    hash: String,
    made_ms: u64,
}

/// Why an account call failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// A name the console could not show or a URL could not carry.
    #[error("`{0}` is not an account name: 1 to 64 letters, digits, dots, dashes or underscores")]
    BadName(String),
    /// A password too short or too long.
    #[error("a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters; this one has {0}")]
    BadPassword(usize),
    /// The name is someone's already.
    #[error("there is already an account `{0}`; nothing was changed")]
    Taken(String),
    /// sled failed.
    #[error("the server's account store failed: {0}")]
    Db(#[from] sled::Error),
    /// A kept record does not decode.
    #[error(transparent)]
    BadRecord(#[from] BadRecord),
    /// argon2 refused (it does not, for the lengths allowed).
    #[error("hashing the password failed: {0}")]
    Hash(String),
    /// No randomness for a salt.
    #[error("no random bytes for a salt: {0}")]
    Random(String),
}

/// The accounts kept in the server's metadata store.
pub struct Accounts {
    tree: sled::Tree,
    /// The server's store, for durable flushes.
    meta: std::sync::Arc<MetaStore>,
    /// A hash to check a sign-in against when the name is unknown, so
    /// that takes as long as a wrong password (made at the first sign-in).
    decoy: OnceLock<String>,
}

impl Accounts {
    /// The accounts of the server whose store is `meta`.
    pub fn open(meta: std::sync::Arc<MetaStore>) -> Result<Self, AccountError> {
        Ok(Accounts {
            tree: meta.db().open_tree(TREE)?,
            decoy: OnceLock::new(),
            meta,
        })
    }

    /// Makes the account `name` with `role` and `password`; durable when
    /// it returns. Refused, changing nothing, if the name is taken.
    pub fn add(&self, name: &str, role: Role, password: &str) -> Result<(), AccountError> {
        check_name(name)?;
        let length = password.chars().count();
        if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&length) {
            return Err(AccountError::BadPassword(length));
        }
        if self.tree.contains_key(name.as_bytes())? {
            return Err(AccountError::Taken(name.to_owned()));
        }
        let record = AccountRecord {
            role,
            hash: hash(password)?,
            made_ms: unix_ms(),
        };
        let swapped = self.tree.compare_and_swap(
            name.as_bytes(),
            None as Option<&[u8]>,
            Some(records::encode(&record)),
        )?;
        if swapped.is_err() {
            // Taken meanwhile by another `add-user` of the same name.
            return Err(AccountError::Taken(name.to_owned()));
        }
        self.meta.db().flush()?;
        Ok(())
    }

    /// The hash an unknown name's sign-in is checked against.
    fn decoy(&self) -> Result<&str, AccountError> {
        if let Some(decoy) = self.decoy.get() {
            return Ok(decoy);
        }
        let made = hash("not anyone's password")?;
        Ok(self.decoy.get_or_init(|| made))
    }

    /// Every account, by name.
    pub fn list(&self) -> Result<Vec<AccountView>, AccountError> {
        let mut accounts = Vec::new();
        for item in self.tree.iter() {
            let (key, value) = item?;
            let name = String::from_utf8_lossy(&key).into_owned();
            let record: AccountRecord = records::decode(&value, || format!("accounts/{name}"))?;
            accounts.push(AccountView {
                name,
                role: record.role,
                made_ms: record.made_ms,
            });
        }
        Ok(accounts)
    }

    /// The role of `name` if `password` is its password; `None` for a
    /// wrong password or an unknown name alike.
    pub fn sign_in(&self, name: &str, password: &str) -> Result<Option<Role>, AccountError> {
        let record: Option<AccountRecord> = match self.tree.get(name.as_bytes())? {
            Some(bytes) => Some(records::decode(&bytes, || format!("accounts/{name}"))?),
            None => None,
        };
        let hash = match &record {
            Some(record) => record.hash.as_str(),
            None => self.decoy()?,
        };
        let matches = password.len() <= MAX_PASSWORD * 4 && verify(password, hash)?;
        Ok(record.filter(|_| matches).map(|r| r.role))
    }
}

fn check_name(name: &str) -> Result<(), AccountError> {
    if super::is_plain_name(name) {
        Ok(())
    } else {
        Err(AccountError::BadName(name.to_owned()))
    }
}

/// `password`'s argon2id hash with a fresh salt, as a PHC string.
fn hash(password: &str) -> Result<String, AccountError> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| AccountError::Random(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash`.
fn verify(password: &str, hash: &str) -> Result<bool, AccountError> {
    let parsed = PasswordHash::new(hash).map_err(|e| AccountError::Hash(e.to_string()))?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> (tempfile::TempDir, Accounts) {
        let dir = tempfile::tempdir().unwrap();
        let meta = std::sync::Arc::new(MetaStore::open(dir.path(), 1 << 20).unwrap());
        (dir, Accounts::open(meta).unwrap())
    }

    #[test]
    fn an_account_signs_in_with_its_password_only() {
        let (_dir, accounts) = accounts();
        accounts
            .add("ada", Role::Admin, "correct horse battery")
            .unwrap();
        accounts
            .add("vic", Role::Viewer, "staple staple staple")
            .unwrap();
        assert_eq!(
            accounts.sign_in("ada", "correct horse battery").unwrap(),
            Some(Role::Admin)
        );
        assert_eq!(
            accounts.sign_in("vic", "staple staple staple").unwrap(),
            Some(Role::Viewer)
        );
        assert_eq!(
            accounts.sign_in("ada", "correct horse batter").unwrap(),
            None
        );
        assert_eq!(
            accounts.sign_in("nobody", "correct horse battery").unwrap(),
            None
        );
        let names: Vec<(String, Role)> = accounts
            .list()
            .unwrap()
            .into_iter()
            .map(|a| (a.name, a.role))
            .collect();
        assert_eq!(
            names,
            [
                ("ada".to_owned(), Role::Admin),
                ("vic".to_owned(), Role::Viewer)
            ]
        );
    }

    #[test]
    fn bad_names_short_passwords_and_taken_names_are_refused_and_change_nothing() {
        let (_dir, accounts) = accounts();
        accounts
            .add("ada", Role::Admin, "correct horse battery")
            .unwrap();
        for (name, password, expected) in [
            ("", "correct horse battery", "`` is not an account name"),
            (
                "a b",
                "correct horse battery",
                "`a b` is not an account name",
            ),
            (
                "ada/x",
                "correct horse battery",
                "`ada/x` is not an account name",
            ),
            (
                "bob",
                "short",
                "a password has 12 to 256 characters; this one has 5",
            ),
            (
                "ada",
                "another long password",
                "there is already an account `ada`",
            ),
        ] {
            let err = accounts.add(name, Role::Viewer, password).unwrap_err();
            assert!(err.to_string().starts_with(expected), "{err}");
        }
        assert_eq!(accounts.list().unwrap().len(), 1);
        assert_eq!(
            accounts.sign_in("ada", "correct horse battery").unwrap(),
            Some(Role::Admin),
            "the taken account kept its password"
        );
        assert_eq!(
            "auditor".parse::<Role>().unwrap_err(),
            "`auditor` is not a role: admin or viewer"
        );
    }

    #[test]
    fn accounts_survive_a_restart_and_no_password_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        {
            let meta = std::sync::Arc::new(MetaStore::open(dir.path(), 1 << 20).unwrap());
            Accounts::open(meta)
                .unwrap()
                .add("ada", Role::Admin, "correct horse battery")
                .unwrap();
        }
        let meta = std::sync::Arc::new(MetaStore::open(dir.path(), 1 << 20).unwrap());
        let tree = meta.db().open_tree(TREE).unwrap();
        let kept = tree.get("ada").unwrap().unwrap();
        assert!(
            !String::from_utf8_lossy(&kept).contains("correct horse"),
            "only the hash is kept"
        );
        let accounts = Accounts::open(meta).unwrap();
        assert_eq!(
            accounts.sign_in("ada", "correct horse battery").unwrap(),
            Some(Role::Admin)
        );
    }
}
