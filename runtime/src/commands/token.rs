//! The server's short-lived credentials: `branchline token create` (a
//! join token, for `branchline client --join TOKEN`) and `branchline url
//! sign` (a URL of the file storage for someone without a certificate).

use branchline_actors::wire::{AdminReply, AdminRequest};

use super::{ask, utc};
use crate::cli::{TokenAction, TokenArgs, UrlAction, UrlArgs};

/// Runs `branchline token`.
pub fn run(args: &TokenArgs) -> anyhow::Result<()> {
    match &args.action {
        TokenAction::Create { node, expires } => {
            let request = AdminRequest::CreateJoinToken {
                expires_secs: expires.as_secs(),
            };
            match ask(node, &request)? {
                AdminReply::JoinToken { token, expires_ms } => {
                    eprintln!(
                        "join token, valid until {} (keep it secret: anyone holding it can join the cluster until then):",
                        utc(expires_ms)
                    );
                    println!("{token}");
                    Ok(())
                }
                AdminReply::Error(e) => anyhow::bail!(e),
                other => anyhow::bail!("unexpected answer {other:?}"),
            }
        }
    }
}

/// Runs `branchline url`.
pub fn sign_url(args: &UrlArgs) -> anyhow::Result<()> {
    match &args.action {
        UrlAction::Sign { node, url, expires } => {
            let request = AdminRequest::SignUrl {
                url: url.clone(),
                expires_secs: expires.as_secs(),
            };
            match ask(node, &request)? {
                AdminReply::SignedUrl(signed) => {
                    println!("{signed}");
                    Ok(())
                }
                AdminReply::Error(e) => anyhow::bail!(e),
                other => anyhow::bail!("unexpected answer {other:?}"),
            }
        }
    }
}
