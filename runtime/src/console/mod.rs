//! The administrator's console and API (C3). What is built so far: the
//! local accounts that sign in to it, with their roles ([`accounts`]),
//! the API tokens scripts present instead ([`api_tokens`]), and the audit
//! log of every change ([`audit`]), all in the server's metadata store
//! and managed with `branchline admin`. The
//! HTTPS API and the pages come next (docs/ARCHITECTURE.md, "The
//! console").

pub mod accounts;
pub mod api_tokens;
pub mod audit;

/// Whether `name` may name an account or a token: 1 to 64 letters,
/// digits, dots, dashes or underscores (names appear in URLs, the audit
/// log and pages).
pub fn is_plain_name(name: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    (1..=64).contains(&name.len()) && name.chars().all(allowed)
}
