//! The administrator's console and API (C3): the local accounts that sign
//! in to it, with their roles ([`accounts`]), the API tokens scripts
//! present instead ([`api_tokens`]), the audit log of every change
//! ([`audit`]), sessions and the sign-in limit ([`sessions`],
//! [`sign_in_limit`]), the certificate it shows ([`certificate`]) and the
//! HTTPS API itself ([`api`]), the pages ([`pages`]) and the server that
//! serves both ([`server`]; see docs/ARCHITECTURE.md, "The console").

pub mod accounts;
pub mod api;
pub mod api_tokens;
pub mod audit;
pub mod cert_dates;
pub mod certificate;
pub mod health;
pub mod pages;
pub mod server;
pub mod sessions;
pub mod sign_in_limit;

/// Whether `name` may name an account or a token: 1 to 64 letters,
/// digits, dots, dashes or underscores (names appear in URLs, the audit
/// log and pages).
pub fn is_plain_name(name: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    (1..=64).contains(&name.len()) && name.chars().all(allowed)
}
