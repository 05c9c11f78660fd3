//! `branchline health`: runs the server's health check over its admin
//! socket and prints each check (or the report as JSON); exits 1 when a
//! check failed, so a monitoring script can act on it.

use branchline_actors::wire::{AdminReply, AdminRequest, HealthLevel};

use super::ask;
use crate::cli::HealthArgs;

/// Runs `branchline health`.
pub fn run(args: &HealthArgs) -> anyhow::Result<()> {
    let report = match ask(&args.node, &AdminRequest::Health)? {
        AdminReply::Health(report) => report,
        AdminReply::Error(e) => anyhow::bail!(e),
        other => anyhow::bail!("unexpected answer {other:?}"),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for check in &report.checks {
            let level = match check.level {
                HealthLevel::Ok => "ok  ",
                HealthLevel::Warn => "WARN",
                HealthLevel::Fail => "FAIL",
            };
            println!("{level} {}: {}", check.name, check.detail);
            for flagged in &check.flagged {
                println!("       {flagged}");
            }
        }
    }
    anyhow::ensure!(
        report.level() != HealthLevel::Fail,
        "the health check failed (see above)"
    );
    Ok(())
}
