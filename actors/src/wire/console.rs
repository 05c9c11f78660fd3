//! What the console's stores (accounts, the audit log) answer, over the
//! admin socket and, later, the console's API: plain data, shared by the
//! server that keeps them and the tools that show them.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What an account may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads and changes.
    Admin,
    /// Reads only.
    Viewer,
}

impl Role {
    /// The role's name, as the command line and the API spell it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!("`{other}` is not a role: admin or viewer")),
        }
    }
}

/// An account as it is listed (never its password's hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccountView {
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// When it was made, ms since the epoch.
    pub made_ms: u64,
}

/// One change made to the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Its place in the log; later changes have larger numbers.
    pub seq: u64,
    /// When, ms since the epoch (the server's clock).
    pub at_ms: u64,
    /// Who: an account's name, or `local administrator` for the admin
    /// socket (the server's own account on its host).
    pub who: String,
    /// What, as a line: `add-user ada (admin)`, `purge <content>`.
    pub what: String,
    /// From where: the console's client address, or `admin socket`.
    pub from: String,
}

/// An API token as it is listed (never its secret, which is shown once,
/// when it is made).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiTokenView {
    /// Its public id, the first part of the token.
    pub id: String,
    /// What it is for, as its maker named it (`nightly-report`).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was made, ms since the epoch.
    pub made_ms: u64,
    /// When it stops working, ms since the epoch.
    pub expires_ms: u64,
}

/// How a health check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthLevel {
    /// Nothing to do.
    Ok,
    /// Worth a look.
    Warn,
    /// Something is wrong.
    Fail,
}

/// One check of the server's health.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HealthCheck {
    /// What was checked.
    pub name: String,
    /// How it came out.
    pub level: HealthLevel,
    /// What was found, in one line.
    pub detail: String,
    /// The things flagged, one per line (clients, addresses).
    pub flagged: Vec<String>,
}

/// A health run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HealthReport {
    /// When, ms since the epoch (the server's clock).
    pub at_ms: u64,
    /// The checks, in a fixed order.
    pub checks: Vec<HealthCheck>,
}

impl HealthReport {
    /// The worst level of its checks.
    pub fn level(&self) -> HealthLevel {
        let worst = |l: HealthLevel| match l {
            HealthLevel::Ok => 0,
            HealthLevel::Warn => 1,
            HealthLevel::Fail => 2,
        };
        self.checks
            .iter()
            .map(|c| c.level)
            .max_by_key(|l| worst(*l))
            .unwrap_or(HealthLevel::Ok)
    }
}

/// A node the server refused for speaking another protocol version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VersionRefusal {
    /// When, ms since the epoch.
    pub at_ms: u64,
    /// Its address.
    pub from: String,
    /// The node its certificate names, if any.
    pub node: Option<String>,
    /// Why, naming both versions.
    pub reason: String,
}
