//! `branchline status`: a node's status as text or JSON.

use branchline_actors::wire::{
    ActorView, AdminReply, AdminRequest, BackgroundLink, ClientStatus, ContentView, LinkView,
    ServerStatus, StartCheck, TransferProgress,
};

use super::{data_dir, mib, runtime};
use crate::admin::{connect, socket_path};
use crate::cli::StatusArgs;

/// Runs `branchline status`.
pub fn run(args: &StatusArgs) -> anyhow::Result<()> {
    let data_dir = data_dir(&args.node)?;
    let reply = runtime()?.block_on(connect::request(
        &socket_path(&data_dir),
        &AdminRequest::Status,
        Some,
    ))?;
    match (reply, args.json) {
        (AdminReply::ClientStatus(s), true) => println!("{}", serde_json::to_string_pretty(&s)?),
        (AdminReply::ServerStatus(s), true) => println!("{}", serde_json::to_string_pretty(&s)?),
        (AdminReply::ClientStatus(s), false) => print_client(&s),
        (AdminReply::ServerStatus(s), false) => print_server(&s),
        (AdminReply::Error(e), _) => anyhow::bail!(e),
        (other, _) => anyhow::bail!("unexpected answer {other:?}"),
    }
    Ok(())
}

pub(crate) fn print_actors(actors: &[ActorView]) {
    print!("{}", actor_tree(actors));
}

/// The actors as a tree: each top-level actor, then the actors drawn
/// under it (transfers under the office, peer sessions under their
/// transport; on a server, offices under the office above them), indented
/// by depth; one line each.
fn actor_tree(actors: &[ActorView]) -> String {
    let mut out = format!("actors ({}):\n", actors.len());
    let mut drawn = std::collections::HashSet::new();
    for a in actors.iter().filter(|a| a.parent.is_none()) {
        draw(actors, a, 0, &mut out, &mut drawn);
    }
    // An actor no top-level actor leads to (its parent is not listed) still
    // shows.
    for orphan in actors.iter().filter(|a| !drawn.contains(a.name.as_str())) {
        out += &actor_line(orphan, "? ");
    }
    out
}

/// `a` at `depth`, then what is drawn under it, depth first; each actor
/// once.
fn draw<'a>(
    actors: &'a [ActorView],
    a: &'a ActorView,
    depth: usize,
    out: &mut String,
    drawn: &mut std::collections::HashSet<&'a str>,
) {
    if !drawn.insert(a.name.as_str()) {
        return;
    }
    let prefix = match depth {
        0 => String::new(),
        d => format!("{}└ ", "  ".repeat(d - 1)),
    };
    *out += &actor_line(a, &prefix);
    for child in actors
        .iter()
        .filter(|c| c.parent.as_deref() == Some(a.name.as_str()))
    {
        draw(actors, child, depth + 1, out, drawn);
    }
}

fn actor_line(a: &ActorView, prefix: &str) -> String {
    let state = if a.alive { "running" } else { "GIVEN UP" };
    let cause = a
        .last_cause
        .as_deref()
        .map_or(String::new(), |c| format!(", last: {c}"));
    let probe = match (a.answered_probe, a.probe_ms) {
        (Some(true), Some(ms)) => format!("probe {ms} ms"),
        (Some(false), _) => "probe UNANSWERED".to_owned(),
        _ => "probe -".to_owned(),
    };
    let name = format!("{prefix}{}", a.name);
    let note = a
        .note
        .as_deref()
        .map_or(String::new(), |n| format!("  ({n})"));
    format!(
        "  {name:<24} {:<12} {state:<8} up {:>6} s  mailbox {:>3}/{:<4} handled {:>8}  {probe:<16} restarts {}{cause}{note}\n",
        a.kind, a.uptime_secs, a.mailbox_depth, a.mailbox_capacity, a.messages_handled, a.restarts
    )
}

/// The busy pause line: whether downloads from the office above are
/// paused, and why.
fn print_background_link(link: &BackgroundLink) {
    let delay = link
        .queuing_delay_ms
        .map_or("not measured".to_owned(), |ms| format!("{ms:.0} ms"));
    let at = link
        .pause_at_ms
        .map_or("never pauses".to_owned(), |ms| format!("pauses at {ms} ms"));
    match &link.paused {
        Some(p) => println!(
            "background link: PAUSED for {:.0} s ({}); queuing delay {delay}; {} pause(s) so far",
            p.for_secs, p.reason, link.pauses
        ),
        None => println!(
            "background link: running; queuing delay {delay} ({at}); {} pause(s) so far",
            link.pauses
        ),
    }
}

fn print_start_check(check: &StartCheck) {
    match check {
        StartCheck::NotNeeded => {}
        StartCheck::Running => {
            println!("start-up check: running (the last run did not stop cleanly)")
        }
        StartCheck::Done(found) => {
            println!(
                "start-up check after an unclean stop: {} piece(s) of {} content(s) read, {} corrupt{}",
                found.pieces,
                found.contents,
                found.corrupt.len(),
                if found.corrupt.is_empty() {
                    ""
                } else {
                    " (dropped; fetched again when wanted)"
                }
            );
            for lost in &found.unreadable {
                println!(
                    "  content {} could not be read and was dropped (fetched again when wanted): {}",
                    lost.content, lost.error
                );
            }
        }
        StartCheck::Failed { error } => println!("start-up check FAILED: {error}"),
    }
}

pub(crate) fn print_client(s: &ClientStatus) {
    let registered = if s.registered {
        "registered"
    } else {
        "NOT registered"
    };
    println!(
        "client {} ({}) at {} (background {}), server {} ({registered})",
        s.name, s.id, s.addr, s.background, s.server
    );
    match &s.office {
        Some(office) => {
            let role = if office.rvps.contains(&s.id) {
                "this client is an RVP"
            } else {
                "not an RVP"
            };
            println!(
                "office: {} ({}), {} RVP(s); {role}",
                office.name,
                office.kind,
                office.rvps.len()
            );
        }
        None => println!("office: not known yet (the server tells it at registration)"),
    }
    println!(
        "cache: {} of {} quota, {} reserved",
        mib(s.usage.stored_bytes),
        mib(s.usage.quota_bytes),
        mib(s.usage.reserved_bytes)
    );
    let c = &s.counters;
    println!(
        "received: {} from office peers, {} from the parent office, {} from origins; served {}; pieces stored {}, again {}, rejected {}",
        mib(c.from_peers),
        mib(c.from_parent),
        mib(c.from_origin),
        mib(c.served),
        c.pieces_stored,
        c.pieces_again,
        c.pieces_rejected
    );
    print_background_link(&s.background_link);
    print_start_check(&s.start_check);
    for strike in &s.strikes {
        let state = if strike.banned { "BANNED" } else { "struck" };
        let last = strike.evidence.last().map_or(String::new(), |e| {
            format!("; last: content {}: {}", e.content, e.error)
        });
        println!(
            "peer {} {state}: {} bad piece(s){last}",
            strike.peer, strike.strikes
        );
    }
    println!("contents ({}):", s.contents.len());
    for content in &s.contents {
        let pinned = if content.pinned { " pinned" } else { "" };
        println!(
            "  {}  {:<24} {:>5}/{:<5} pieces  {}{pinned}",
            content.id,
            content.name,
            content.have,
            content.pieces,
            mib(content.size)
        );
    }
    print_actors(&s.actors);
    println!("transfers ({}):", s.transfers.len());
    for t in &s.transfers {
        println!("{}", transfer_line(t));
    }
}

/// One download as `status` and the shell's `transfers` show it: progress,
/// sources, requests in flight, usable origins and origin leases.
pub(crate) fn transfer_line(t: &TransferProgress) -> String {
    format!(
        "  {}  {:<24} {:>5}/{:<5} pieces  {} sources, {} in flight, {} origins, leases {} (+{} elsewhere)",
        t.content,
        t.name,
        t.have,
        t.pieces,
        t.sources,
        t.in_flight,
        t.origins,
        t.leases,
        t.leased_elsewhere
    )
}

pub(crate) fn print_server(s: &ServerStatus) {
    println!(
        "server at {}; {} clients registered (licenses in use)",
        s.addr,
        s.registry.clients.len()
    );
    if let Some(fs) = &s.file_storage {
        println!(
            "file storage: {} serving {}, {} sent, {} connections refused at a cap",
            fs.base_url,
            fs.dir.display(),
            mib(fs.bytes_served),
            fs.connections_refused
        );
    }
    print_published(&s.registry.contents);
    print_links(&s.registry.links);
    if !s.registry.origin.is_empty() {
        println!("origin use (pieces leased from the origin):");
        for o in &s.registry.origin {
            println!("  {:<20} {:>8} pieces  ({})", o.office, o.pieces, o.reason);
        }
    }
    for ban in &s.registry.bans {
        let first = ban.evidence.first().map_or(String::new(), |e| {
            format!(": content {}: {}", e.content, e.error)
        });
        println!(
            "BANNED in office {}: peer {} (reported by {}, {} bad piece(s){first})",
            ban.office,
            ban.peer,
            ban.by,
            ban.evidence.len()
        );
    }
    println!("clients ({}):", s.registry.clients.len());
    for c in &s.registry.clients {
        let rvp = if c.rvp { " RVP" } else { "" };
        println!(
            "  {:<20} {}  {}  office {}{rvp}  seen {:.1} s ago",
            c.name,
            c.id,
            c.addr,
            c.office,
            c.last_seen_ms_ago as f64 / 1000.0
        );
    }
    print_actors(&s.actors);
}

/// The published contents, with their holders and origins.
fn print_published(contents: &[ContentView]) {
    println!("contents ({}):", contents.len());
    for c in contents {
        let holders = match c.confidential {
            true => "CONFIDENTIAL (origins only, holders not tracked)".to_owned(),
            false => format!(
                "held by {} (+{} partly)",
                c.complete_holders, c.partial_holders
            ),
        };
        println!(
            "  {}  {:<24} {}  {} pieces  {holders}  origins: {}",
            c.id,
            c.name,
            mib(c.size),
            c.pieces,
            c.origins.join(", ")
        );
    }
}

/// What each office's live clients received, by source, per office link.
fn print_links(links: &[LinkView]) {
    println!(
        "office links (what each office's live clients received, as of their last heartbeat):"
    );
    println!(
        "  {:<20} {:<16} {:>7} {:>14} {:>14} {:>14} {:>14} {:>14}",
        "office",
        "parent",
        "clients",
        "from parent",
        "(QUIC wire)",
        "from origin",
        "in office",
        "served"
    );
    for l in links.iter().filter(|l| l.clients > 0) {
        println!(
            "  {:<20} {:<16} {:>7} {:>14} {:>14} {:>14} {:>14} {:>14}",
            l.office,
            l.parent.as_deref().unwrap_or("-"),
            l.clients,
            mib(l.from_parent),
            mib(l.wire_from_parent),
            mib(l.from_origin),
            mib(l.from_peers),
            mib(l.served)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(name: &str, parent: Option<&str>) -> ActorView {
        ActorView {
            name: name.to_owned(),
            parent: parent.map(str::to_owned),
            kind: "k".to_owned(),
            alive: true,
            restarts: 0,
            last_cause: None,
            uptime_secs: 1,
            answered_probe: None,
            probe_ms: None,
            mailbox_capacity: 16,
            mailbox_depth: 0,
            messages_handled: 0,
            note: None,
        }
    }

    #[test]
    fn the_actors_print_as_a_tree_with_each_child_under_its_parent() {
        let tree = actor_tree(&[
            actor("store", None),
            actor("transfer-1a2b", Some("office")),
            actor("office", None),
            actor("peer-127.0.0.1:1", Some("transport")),
            actor("transport", None),
            actor("lost", Some("gone")),
        ]);
        let names: Vec<&str> = tree
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>())
            .map(|w| {
                if w[0] == "└" || w[0] == "?" {
                    w[1]
                } else {
                    w[0]
                }
            })
            .collect();
        assert_eq!(
            names,
            [
                "store",
                "office",
                "transfer-1a2b",
                "transport",
                "peer-127.0.0.1:1",
                "lost"
            ]
        );
        assert!(tree.starts_with("actors (6):\n"));
        assert!(tree.contains("  └ transfer-1a2b"));
        assert!(tree.contains("  ? lost"));
    }

    #[test]
    fn actors_whose_parents_loop_are_still_listed() {
        let tree = actor_tree(&[
            actor("directory", None),
            actor("office-a", Some("office-b")),
            actor("office-b", Some("office-a")),
        ]);
        assert!(tree.contains("  ? office-a"), "{tree}");
        assert!(tree.contains("  ? office-b"), "{tree}");
    }

    #[test]
    fn a_servers_offices_are_drawn_under_the_office_above_them() {
        let tree = actor_tree(&[
            actor("directory", None),
            actor("office-branch-c", Some("office-branch-a")),
            actor("office-hq", Some("directory")),
            actor("office-branch-a", Some("office-hq")),
            actor("office-branch-b", Some("office-hq")),
        ]);
        let lines: Vec<&str> = tree.lines().skip(1).collect();
        let starts = |line: &str, prefix: &str| line.trim_start().starts_with(prefix);
        assert!(starts(lines[0], "directory"), "{tree}");
        assert!(lines[1].starts_with("  └ office-hq"), "{tree}");
        assert!(lines[2].starts_with("    └ office-branch-a"), "{tree}");
        assert!(lines[3].starts_with("      └ office-branch-c"), "{tree}");
        assert!(lines[4].starts_with("    └ office-branch-b"), "{tree}");
    }
}
