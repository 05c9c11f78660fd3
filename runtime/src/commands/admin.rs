//! `branchline admin`: the console's accounts (`add-user`, `users`) and
//! the audit log (`audit`), over the server's admin socket.

use std::io::BufRead as _;

use branchline_actors::wire::{AdminReply, AdminRequest};

use super::{ask, utc};
use crate::cli::{AdminAction, AdminArgs};

/// Length of a password `add-user` makes.
const MADE_PASSWORD: usize = 20;

/// Runs `branchline admin`.
pub fn run(args: &AdminArgs) -> anyhow::Result<()> {
    match &args.action {
        AdminAction::AddUser {
            node,
            name,
            role,
            password_stdin,
        } => {
            let (password, made) = if *password_stdin {
                (read_password()?, false)
            } else {
                (make_password()?, true)
            };
            let request = AdminRequest::AddUser {
                name: name.clone(),
                role: *role,
                password: password.clone(),
            };
            let line = done(ask(node, &request)?)?;
            eprintln!("{line}");
            if made {
                eprintln!("its password (shown once; keep it somewhere safe):");
                println!("{password}");
            }
            Ok(())
        }
        AdminAction::TokenCreate {
            node,
            name,
            role,
            expires,
        } => {
            let request = AdminRequest::CreateApiToken {
                name: name.clone(),
                role: *role,
                expires_secs: expires.as_secs(),
            };
            match ask(node, &request)? {
                AdminReply::ApiToken { token, view } => {
                    eprintln!(
                        "API token {} ({}, {}), valid until {}; shown once, keep it secret:",
                        view.id,
                        view.name,
                        view.role.name(),
                        utc(view.expires_ms)
                    );
                    println!("{token}");
                    Ok(())
                }
                other => unexpected(other),
            }
        }
        AdminAction::Tokens { node, json } => match ask(node, &AdminRequest::ApiTokens)? {
            AdminReply::ApiTokens(tokens) if *json => print_json(&tokens),
            AdminReply::ApiTokens(tokens) => {
                for t in tokens {
                    println!(
                        "{} {:<24} {:<7} until {}",
                        t.id,
                        t.name,
                        t.role.name(),
                        utc(t.expires_ms)
                    );
                }
                Ok(())
            }
            other => unexpected(other),
        },
        AdminAction::TokenRevoke { node, id } => {
            let line = done(ask(node, &AdminRequest::RevokeApiToken(id.clone()))?)?;
            eprintln!("{line}");
            Ok(())
        }
        AdminAction::Users { node, json } => match ask(node, &AdminRequest::Users)? {
            AdminReply::Users(users) if *json => print_json(&users),
            AdminReply::Users(users) => {
                for user in users {
                    println!(
                        "{:<24} {:<7} made {}",
                        user.name,
                        user.role.name(),
                        utc(user.made_ms)
                    );
                }
                Ok(())
            }
            other => unexpected(other),
        },
        AdminAction::Audit { node, last, json } => {
            match ask(node, &AdminRequest::Audit { most: *last })? {
                AdminReply::Audit(entries) if *json => print_json(&entries),
                AdminReply::Audit(entries) => {
                    for e in entries {
                        println!(
                            "{} {} ({}, {}): {}",
                            e.seq,
                            utc(e.at_ms),
                            e.who,
                            e.from,
                            e.what
                        );
                    }
                    Ok(())
                }
                other => unexpected(other),
            }
        }
    }
}

fn done(reply: AdminReply) -> anyhow::Result<String> {
    match reply {
        AdminReply::Done(line) => Ok(line),
        other => unexpected(other),
    }
}

fn unexpected<T>(reply: AdminReply) -> anyhow::Result<T> {
    match reply {
        AdminReply::Error(e) => anyhow::bail!(e),
        other => anyhow::bail!("unexpected answer {other:?}"),
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// One line of standard input, without its line end.
fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(
        !password.is_empty(),
        "--password-stdin: standard input gave no password"
    );
    Ok(password)
}

/// A password of letters and digits from the system's randomness.
pub(crate) fn make_password() -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; MADE_PASSWORD];
    getrandom::getrandom(&mut bytes).map_err(|e| anyhow::anyhow!("no random bytes: {e}"))?;
    // 256 is not a multiple of the alphabet's 56 letters: the first few
    // letters come slightly more often, which costs a fraction of a bit of
    // the password's 116.
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}
