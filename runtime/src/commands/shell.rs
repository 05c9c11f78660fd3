//! `branchline shell`: the actor debug shell. It attaches to a running node
//! over its admin socket (readable by the node's user only) and answers
//! commands about the node's actors, transfers and cache, and can kill an
//! actor to exercise supervision. Interactive with history and tab
//! completion, or one command with `-c` (and `--json`) for scripts.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use branchline_actors::supervision::Kill;
use branchline_actors::wire::{ActorView, AdminReply, AdminRequest, PeerView};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::{Context, Editor, Helper, Highlighter, Hinter, Validator};

use super::status::{print_actors, print_client, print_server, transfer_line};
use super::{data_dir, mib, runtime};
use crate::admin::{connect, socket_path};
use crate::cli::{NodeLocator, ShellArgs};

/// The commands, with their one-line help.
const COMMANDS: &[(&str, &str)] = &[
    (
        "actors",
        "the node's actors: kind, state, restarts, last cause, probe, uptime",
    ),
    ("inspect ACTOR", "everything known about one actor"),
    (
        "transfers",
        "downloads under way: progress, sources, sources by class",
    ),
    ("cache", "cache usage and quota"),
    (
        "contents",
        "contents in the cache (client) or published (server)",
    ),
    (
        "offices",
        "the office tree (server) or this client's office",
    ),
    (
        "peers",
        "peers with a session: address, protocol, piece bytes received and served, QUIC wire bytes, losses, RTT",
    ),
    ("status", "the node's whole status"),
    (
        "kill ACTOR [stop|panic|panic-blocking|panic-reply|panic-task]",
        "make an actor stop (default) or panic: in its handler or a blocking job (it restarts), or in a reply future or a task of its own (the node stops with exit code 70)",
    ),
    (
        "log FILTER",
        "change the node's log filter: a level (debug) or per module (branchline=debug,info)",
    ),
    ("watch COMMAND", "run a command every second until Ctrl-C"),
    ("help", "this list"),
    ("quit", "leave the shell"),
];

/// How `kill` is used.
const KILL_USAGE: &str = "kill ACTOR [stop|panic|panic-blocking|panic-reply|panic-task]";

/// Runs `branchline shell`.
pub fn run(args: &ShellArgs) -> anyhow::Result<()> {
    let node = NodeLocator {
        config: args.config.clone(),
        data_dir: args.data_dir.clone(),
    };
    let data_dir = data_dir(&node)?;
    let socket = socket_path(&data_dir);
    let shell = Shell {
        socket,
        rt: runtime()?,
    };
    match &args.command {
        Some(line) => shell.run(line, args.json),
        None => shell.interactive(&data_dir),
    }
}

struct Shell {
    socket: PathBuf,
    rt: tokio::runtime::Runtime,
}

impl Shell {
    fn ask(&self, request: &AdminRequest) -> anyhow::Result<AdminReply> {
        let reply = self
            .rt
            .block_on(connect::request(&self.socket, request, Some))?;
        match reply {
            AdminReply::Error(e) => anyhow::bail!(e),
            other => Ok(other),
        }
    }

    fn actors(&self) -> anyhow::Result<Vec<ActorView>> {
        Ok(match self.ask(&AdminRequest::Status)? {
            AdminReply::ClientStatus(s) => s.actors,
            AdminReply::ServerStatus(s) => s.actors,
            other => anyhow::bail!("unexpected answer {other:?}"),
        })
    }

    /// Runs one command line.
    fn run(&self, line: &str, json: bool) -> anyhow::Result<()> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => Ok(()),
            ["help"] => {
                for (command, help) in COMMANDS {
                    println!("  {command:<26} {help}");
                }
                Ok(())
            }
            ["actors"] => {
                let actors = self.actors()?;
                if json {
                    print_json(&actors)
                } else {
                    print_actors(&actors);
                    Ok(())
                }
            }
            ["inspect", name] => self.inspect(name, json),
            ["peers"] => match self.ask(&AdminRequest::Peers)? {
                AdminReply::Peers(peers) if json => print_json(&peers),
                AdminReply::Peers(peers) => {
                    print_peers(&peers);
                    Ok(())
                }
                other => anyhow::bail!("unexpected answer {other:?}"),
            },
            ["log", filter] => match self.ask(&AdminRequest::SetLog((*filter).to_owned()))? {
                AdminReply::Done(what) => {
                    println!("{what}");
                    Ok(())
                }
                other => anyhow::bail!("unexpected answer {other:?}"),
            },
            ["watch", rest @ ..] if !rest.is_empty() => {
                let command = rest.join(" ");
                loop {
                    print!("\x1b[2J\x1b[H");
                    println!("every 1 s: {command}   (Ctrl-C to stop)");
                    self.run(&command, json)?;
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
            }
            ["kill", name, how @ ..] => self.kill(name, how),
            [command @ ("status" | "transfers" | "cache" | "contents" | "offices")] => {
                self.status_part(command, json)
            }
            _ => anyhow::bail!("unknown command `{line}`; `help` lists them"),
        }
    }

    /// `inspect NAME`: one actor, in full.
    fn inspect(&self, name: &str, json: bool) -> anyhow::Result<()> {
        let actors = self.actors()?;
        let actor = actors.iter().find(|a| a.name == name).with_context(|| {
            let names: Vec<&str> = actors.iter().map(|a| a.name.as_str()).collect();
            format!("no actor `{name}` (actors: {})", names.join(", "))
        })?;
        if json {
            print_json(actor)
        } else {
            println!("{}", serde_json::to_string_pretty(actor)?);
            Ok(())
        }
    }

    /// `kill NAME [stop|panic|panic-blocking]`.
    fn kill(&self, name: &str, how: &[&str]) -> anyhow::Result<()> {
        let how = match how {
            [] => Kill::Stop,
            [word] => Kill::from_word(word).ok_or_else(|| anyhow::anyhow!(KILL_USAGE))?,
            _ => anyhow::bail!(KILL_USAGE),
        };
        match self.ask(&AdminRequest::KillActor {
            name: name.to_owned(),
            how,
        })? {
            AdminReply::Done(what) => {
                println!("{what}");
                Ok(())
            }
            other => anyhow::bail!("unexpected answer {other:?}"),
        }
    }

    /// The commands answered from the node's status.
    fn status_part(&self, command: &str, json: bool) -> anyhow::Result<()> {
        match (self.ask(&AdminRequest::Status)?, command) {
            (AdminReply::ClientStatus(s), "status") if json => print_json(&s)?,
            (AdminReply::ClientStatus(s), "status") => print_client(&s),
            (AdminReply::ServerStatus(s), "status") if json => print_json(&s)?,
            (AdminReply::ServerStatus(s), "status") => print_server(&s),
            (AdminReply::ClientStatus(s), "transfers") if json => print_json(&s.transfers)?,
            (AdminReply::ClientStatus(s), "transfers") => {
                for t in &s.transfers {
                    println!(
                        "{}; office {}, WAN {}, origin {}",
                        transfer_line(t),
                        mib(t.from_peers),
                        mib(t.from_parent),
                        mib(t.from_origin)
                    );
                }
                if s.transfers.is_empty() {
                    println!("no transfers");
                }
            }
            (AdminReply::ClientStatus(s), "cache") if json => print_json(&s.usage)?,
            (AdminReply::ClientStatus(s), "cache") => println!(
                "{} stored, {} reserved, quota {}",
                mib(s.usage.stored_bytes),
                mib(s.usage.reserved_bytes),
                mib(s.usage.quota_bytes)
            ),
            (AdminReply::ClientStatus(s), "contents") if json => print_json(&s.contents)?,
            (AdminReply::ClientStatus(s), "contents") => {
                for c in &s.contents {
                    println!(
                        "  {}  {:<24} {:>5}/{:<5} pieces  {}",
                        c.id,
                        c.name,
                        c.have,
                        c.pieces,
                        mib(c.size)
                    );
                }
            }
            (AdminReply::ServerStatus(s), "contents") if json => print_json(&s.registry.contents)?,
            (AdminReply::ServerStatus(s), "contents") => {
                for c in &s.registry.contents {
                    println!(
                        "  {}  {:<24} {}  held by {} (+{} partly)",
                        c.id,
                        c.name,
                        mib(c.size),
                        c.complete_holders,
                        c.partial_holders
                    );
                }
            }
            (AdminReply::ClientStatus(s), "offices") if json => print_json(&s.office)?,
            (AdminReply::ClientStatus(s), "offices") => match &s.office {
                Some(o) => println!("office {} ({}), RVPs {:?}", o.name, o.kind, o.rvps),
                None => println!("office not known yet"),
            },
            (AdminReply::ServerStatus(s), "offices") if json => print_json(&s.registry.links)?,
            (AdminReply::ServerStatus(_), "offices") => {
                println!("see `branchline topology show` for the tree; `status` for the links");
            }
            (_, command) => anyhow::bail!("`{command}` is for clients"),
        }
        Ok(())
    }

    fn interactive(&self, data_dir: &Path) -> anyhow::Result<()> {
        let names = self
            .actors()
            .map(|actors| actors.into_iter().map(|a| a.name).collect())
            .unwrap_or_default();
        let mut editor: Editor<ShellHelper, rustyline::history::DefaultHistory> =
            Editor::new().context("starting the line editor")?;
        editor.set_helper(Some(ShellHelper { actors: names }));
        let history = data_dir.join("shell_history");
        let _ = editor.load_history(&history);
        println!(
            "branchline shell on {}; `help` lists the commands",
            self.socket.display()
        );
        loop {
            match editor.readline("branchline> ") {
                Ok(line) => {
                    let line = line.trim();
                    if line.is_empty() {
                        continue;
                    }
                    let _ = editor.add_history_entry(line);
                    if matches!(line, "quit" | "exit") {
                        break;
                    }
                    if let Err(e) = self.run(line, false) {
                        println!("error: {e:#}");
                    }
                }
                Err(ReadlineError::Interrupted | ReadlineError::Eof) => break,
                Err(e) => return Err(e).context("reading a command"),
            }
        }
        let _ = editor.save_history(&history);
        Ok(())
    }
}

/// Tab completion of command names and, after `inspect` or `kill`, actor
/// names.
#[derive(Helper, Hinter, Highlighter, Validator)]
struct ShellHelper {
    actors: Vec<String>,
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let line = &line[..pos];
        let start = line.rfind(' ').map_or(0, |i| i + 1);
        let word = &line[start..];
        let first = line.split_whitespace().next().unwrap_or("");
        let choices: Vec<String> = if start == 0 {
            COMMANDS
                .iter()
                .map(|(c, _)| c.split(' ').next().unwrap_or(c).to_owned())
                .collect()
        } else if matches!(first, "inspect" | "kill")
            && line[..start].split_whitespace().count() == 1
        {
            self.actors.clone()
        } else if first == "kill" {
            vec!["stop".into(), "panic".into()]
        } else {
            Vec::new()
        };
        let pairs = choices
            .into_iter()
            .filter(|c| c.starts_with(word))
            .map(|c| Pair {
                display: c.clone(),
                replacement: c,
            })
            .collect();
        Ok((start, pairs))
    }
}

/// Prints a shell answer as JSON.
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// One line per peer session: protocol, bytes each way, what the wire
/// carried and lost, and the round trip.
fn print_peers(peers: &[PeerView]) {
    for p in peers {
        let protocol = if p.background {
            "background"
        } else {
            "foreground"
        };
        let w = &p.wire;
        let rtt = w
            .rtt_us
            .map_or("-".to_owned(), |us| format!("{:.1} ms", us as f64 / 1e3));
        let controller = p
            .serving_controller
            .as_deref()
            .map_or(String::new(), |c| format!("  serving with {c}"));
        println!(
            "  {:<24} {protocol:<10}  received {:>12}  served {:>12}  wire out {:>12} in {:>12}  lost {} packets ({})  congestion events {}  rtt {rtt}{controller}",
            p.addr,
            mib(p.received),
            mib(p.served),
            mib(w.sent_bytes),
            mib(w.received_bytes),
            w.lost_packets,
            mib(w.lost_bytes),
            w.congestion_events,
        );
    }
    if peers.is_empty() {
        println!("no peer sessions");
    }
}

#[cfg(test)]
mod tests {
    use rustyline::history::DefaultHistory;

    use super::*;

    fn complete(line: &str) -> Vec<String> {
        let helper = ShellHelper {
            actors: vec!["store".into(), "server-link".into()],
        };
        let history = DefaultHistory::new();
        let (_, pairs) = helper
            .complete(line, line.len(), &Context::new(&history))
            .unwrap();
        pairs.into_iter().map(|p| p.replacement).collect()
    }

    #[test]
    fn tab_completes_commands_then_actor_names_then_how_to_kill() {
        assert_eq!(complete("ki"), ["kill"]);
        assert_eq!(complete("in"), ["inspect"]);
        assert_eq!(complete("kill s"), ["store", "server-link"]);
        assert_eq!(complete("inspect se"), ["server-link"]);
        assert_eq!(complete("kill store p"), ["panic"]);
        assert!(complete("actors x").is_empty());
    }
}
