//! The console's sign-in sessions: who signed in, with which role, and
//! the token their forms must carry (CSRF), kept in the server's memory
//! only: a restart signs everyone out, and nothing a session could be
//! rebuilt from is ever written to disk.
//!
//! A session ends when it has been idle too long, when it reaches its
//! longest life whatever its use, or when its holder signs out. The map is
//! keyed by the SHA-256 of the session's secret, so looking a cookie up
//! takes no longer for a near guess than for a far one, and a copy of the
//! memory holds no cookie that works. Time is given by the caller, so the
//! rules are tested without a clock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use branchline_actors::wire::Role;
use sha2::{Digest, Sha256};

/// Sessions at most; signing in beyond is refused until some end.
pub const MOST_SESSIONS: usize = 10_000;
/// Sessions of one account at most; its oldest ends when it opens more
/// (so one account cannot fill the table).
pub const MOST_PER_ACCOUNT: usize = 16;

/// How long sessions live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetimes {
    /// Unused this long, a session ends.
    pub idle: Duration,
    /// Used or not, a session ends this long after sign-in.
    pub most: Duration,
}

/// A live session, as a request sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The account signed in.
    pub account: String,
    /// Its role at sign-in.
    pub role: Role,
    /// What every change made with this session must carry.
    pub csrf: String,
}

/// Why a sign-in could not open a session.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No random bytes.
    #[error("no random bytes for a session: {0}")]
    Random(String),
    /// Too many sessions are open.
    #[error("{MOST_SESSIONS} sessions are open; try again when some have ended")]
    Full,
}

struct Kept {
    session: Session,
    opened: Instant,
    used: Instant,
}

/// The console's sessions.
pub struct Sessions {
    lifetimes: Lifetimes,
    kept: HashMap<[u8; 32], Kept>,
}

impl Sessions {
    /// No sessions yet.
    pub fn new(lifetimes: Lifetimes) -> Self {
        Sessions {
            lifetimes,
            kept: HashMap::new(),
        }
    }

    /// Opens a session for `account`; its secret (the cookie's value) and
    /// the session.
    pub fn open(
        &mut self,
        account: &str,
        role: Role,
        now: Instant,
    ) -> Result<(String, Session), SessionError> {
        let theirs: Vec<([u8; 32], Instant)> = self
            .kept
            .iter()
            .filter(|(_, k)| k.session.account == account)
            .map(|(key, k)| (*key, k.opened))
            .collect();
        if theirs.len() >= MOST_PER_ACCOUNT
            && let Some((oldest, _)) = theirs.iter().min_by_key(|(_, opened)| *opened)
        {
            self.kept.remove(oldest);
        }
        if self.kept.len() >= MOST_SESSIONS {
            self.end_expired(now);
            if self.kept.len() >= MOST_SESSIONS {
                return Err(SessionError::Full);
            }
        }
        let secret = random_hex()?;
        let session = Session {
            account: account.to_owned(),
            role,
            csrf: random_hex()?,
        };
        self.kept.insert(
            key(&secret),
            Kept {
                session: session.clone(),
                opened: now,
                used: now,
            },
        );
        Ok((secret, session))
    }

    /// The live session whose secret is `secret`, marked used now; an
    /// expired one ends here.
    pub fn check(&mut self, secret: &str, now: Instant) -> Option<Session> {
        let key = key(secret);
        let kept = self.kept.get_mut(&key)?;
        if !self.lifetimes.live(kept, now) {
            self.kept.remove(&key);
            return None;
        }
        kept.used = now;
        Some(kept.session.clone())
    }

    /// Whether the session whose secret is `secret` is live, without
    /// counting this as its use.
    pub fn is_live(&self, secret: &str, now: Instant) -> bool {
        self.kept
            .get(&key(secret))
            .is_some_and(|kept| self.lifetimes.live(kept, now))
    }

    /// Ends the session whose secret is `secret`; whether there was one.
    pub fn close(&mut self, secret: &str) -> bool {
        self.kept.remove(&key(secret)).is_some()
    }

    fn end_expired(&mut self, now: Instant) {
        let lifetimes = self.lifetimes;
        self.kept.retain(|_, kept| lifetimes.live(kept, now));
    }
}

impl Lifetimes {
    fn live(&self, kept: &Kept, now: Instant) -> bool {
        now.duration_since(kept.used) < self.idle && now.duration_since(kept.opened) < self.most
    }
}

fn key(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// 32 random bytes as hex.
fn random_hex() -> Result<String, SessionError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| SessionError::Random(e.to_string()))?;
    Ok(hex::encode(bytes))
}

/// Whether `given` is `expected`, comparing every byte whatever differs
/// first (for CSRF tokens).
pub fn same_secret(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIFE: Lifetimes = Lifetimes {
        idle: Duration::from_secs(30 * 60),
        most: Duration::from_secs(8 * 3600),
    };

    #[test]
    fn a_session_lives_while_used_ends_when_idle_or_old_or_closed() {
        let mut sessions = Sessions::new(LIFE);
        let t0 = Instant::now();
        let (secret, session) = sessions.open("ada", Role::Admin, t0).unwrap();
        assert_eq!(session.account, "ada");
        assert_eq!(secret.len(), 64);
        assert_ne!(secret, session.csrf);
        // Used every 20 minutes, it lives until its longest life.
        let mut t = t0;
        while t + Duration::from_secs(20 * 60) < t0 + LIFE.most {
            t += Duration::from_secs(20 * 60);
            assert_eq!(sessions.check(&secret, t).as_ref(), Some(&session));
        }
        assert_eq!(sessions.check(&secret, t0 + LIFE.most), None);
        assert_eq!(sessions.kept.len(), 0, "an expired session ends");

        let (idle, _) = sessions.open("ada", Role::Admin, t0).unwrap();
        assert_eq!(sessions.check(&idle, t0 + LIFE.idle), None);

        let (watched, _) = sessions.open("bob", Role::Viewer, t0).unwrap();
        assert!(sessions.is_live(&watched, t0 + LIFE.idle / 2));
        assert!(
            !sessions.is_live(&watched, t0 + LIFE.idle),
            "watching is not use"
        );

        let (closed, _) = sessions.open("bob", Role::Viewer, t0).unwrap();
        assert!(sessions.close(&closed));
        assert_eq!(sessions.check(&closed, t0), None);
        assert!(!sessions.close(&closed));
        assert_eq!(sessions.check("0".repeat(64).as_str(), t0), None);
    }

    #[test]
    fn a_full_table_drops_expired_sessions_first_then_refuses() {
        let mut sessions = Sessions::new(LIFE);
        let t0 = Instant::now();
        for n in 0..MOST_SESSIONS {
            sessions
                .open(&format!("user{}", n / 10), Role::Viewer, t0)
                .unwrap();
        }
        assert!(matches!(
            sessions.open("ada", Role::Viewer, t0),
            Err(SessionError::Full)
        ));
        let later = t0 + LIFE.idle;
        sessions.open("ada", Role::Viewer, later).unwrap();
        assert_eq!(sessions.kept.len(), 1);
    }

    #[test]
    fn an_account_opening_many_sessions_ends_its_oldest() {
        let mut sessions = Sessions::new(LIFE);
        let t0 = Instant::now();
        let (first, _) = sessions.open("vic", Role::Viewer, t0).unwrap();
        let (other, _) = sessions.open("ada", Role::Admin, t0).unwrap();
        for n in 1..=MOST_PER_ACCOUNT {
            let at = t0 + Duration::from_secs(u64::try_from(n).unwrap());
            sessions.open("vic", Role::Viewer, at).unwrap();
        }
        assert!(!sessions.is_live(&first, t0), "vic's oldest ended");
        assert!(sessions.is_live(&other, t0), "ada's is untouched");
        assert_eq!(sessions.kept.len(), MOST_PER_ACCOUNT + 1);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abcd", "abcd"));
        assert!(!same_secret("abce", "abcd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "abcd"));
    }
}
