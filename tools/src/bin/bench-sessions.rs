//! What a registered client session costs on the server, two ways, side
//! by side: a row in its office's registry (a map entry with the client's
//! record, last heartbeat and counters; what Branchline does) against one
//! actix actor per session holding the same and arming its own expiry
//! timer at each heartbeat (C2 asked to measure both before deciding).
//! Each layout runs in a child process of its own, so each one's resident
//! memory is its own: memory per session, the time to make N sessions,
//! and the time to deliver one heartbeat to every session.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use branchline_storage::{ClientRecord, NodeId};
use branchline_tools::{print_command, secs};
use clap::Parser;

/// One client session: what the registry keeps per client.
struct Session {
    record: ClientRecord,
    last_seen: Instant,
    counters: [u64; 5],
}

fn session(n: usize) -> Session {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&(n as u64).to_le_bytes());
    let [_, b, c, d] = u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes();
    let addr: SocketAddr = ([10, b, c, d], 34760).into();
    Session {
        record: ClientRecord {
            id: NodeId(id),
            name: format!("client-{n}"),
            addr,
            background: addr,
            last_seen_ms: 0,
        },
        last_seen: Instant::now(),
        counters: [0; 5],
    }
}

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// The session as an actor: a heartbeat moves its expiry timer.
struct SessionActor {
    session: Session,
    expiry: Option<SpawnHandle>,
    done: Arc<AtomicUsize>,
}

impl Actor for SessionActor {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        self.arm(ctx);
    }
}

impl SessionActor {
    fn arm(&mut self, ctx: &mut Context<Self>) {
        if let Some(old) = self.expiry.take() {
            ctx.cancel_future(old);
        }
        self.expiry = Some(ctx.run_later(Duration::from_secs(3600), |_, ctx| ctx.stop()));
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Heartbeat;

impl Handler<Heartbeat> for SessionActor {
    type Result = ();
    fn handle(&mut self, _: Heartbeat, ctx: &mut Context<Self>) {
        self.session.last_seen = Instant::now();
        self.session.counters[0] += 1;
        self.session.record.last_seen_ms += 1;
        self.arm(ctx);
        self.done.fetch_add(1, Ordering::Relaxed);
    }
}

/// (bytes per session, seconds to make them, seconds for one heartbeat each)
fn rows(n: usize) -> (f64, f64, f64) {
    let before = rss();
    let made = Instant::now();
    let mut rows: HashMap<NodeId, Session> = HashMap::new();
    for i in 0..n {
        let s = session(i);
        rows.insert(s.record.id, s);
    }
    let make = secs(made);
    let per = (rss() - before) as f64 / n as f64;
    let ids: Vec<NodeId> = rows.keys().copied().collect();
    let beat = Instant::now();
    for id in &ids {
        if let Some(s) = rows.get_mut(id) {
            s.last_seen = Instant::now();
            s.counters[0] += 1;
        }
    }
    (per, make, secs(beat))
}

fn actors(n: usize) -> (f64, f64, f64) {
    let system = actix_rt::System::new();
    system.block_on(async move {
        let done = Arc::new(AtomicUsize::new(0));
        let before = rss();
        let made = Instant::now();
        let addrs: Vec<Addr<SessionActor>> = (0..n)
            .map(|i| {
                SessionActor {
                    session: session(i),
                    expiry: None,
                    done: done.clone(),
                }
                .start()
            })
            .collect();
        // Let every actor start (and arm its timer).
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let make = secs(made) - 0.2;
        let per = (rss() - before) as f64 / n as f64;
        let beat = Instant::now();
        for addr in &addrs {
            addr.do_send(Heartbeat);
        }
        while done.load(Ordering::Relaxed) < n {
            tokio::task::yield_now().await;
        }
        (per, make, secs(beat))
    })
}

/// Client sessions as rows of one actor against one actor per session:
/// bytes per session and time per heartbeat round.
#[derive(Parser)]
struct Args {
    /// Sessions.
    #[arg(long, default_value_t = 100_000)]
    clients: usize,
    /// Measure one layout (`rows` or `actors`) in this process; without
    /// it, each runs in a child process of its own, side by side.
    #[arg(long)]
    layout: Option<String>,
}

fn main() {
    let Args { clients, layout } = branchline_tools::parse_args::<Args>();
    if let Some(layout) = layout {
        let (per, make, beat) = match layout.as_str() {
            "rows" => rows(clients),
            _ => actors(clients),
        };
        println!("{per} {make} {beat}");
        return;
    }
    print_command();
    println!("{clients} client sessions, each layout in a process of its own");
    println!();
    println!("| layout | bytes per session | make all (s) | one heartbeat each (s) |");
    println!("|---|---|---|---|");
    let mut figures = Vec::new();
    for layout in ["rows", "actors"] {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--clients", &clients.to_string(), "--layout", layout])
            .output()
            .unwrap();
        let line = String::from_utf8_lossy(&out.stdout);
        let f: Vec<f64> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        assert_eq!(f.len(), 3, "{layout}: {line}");
        println!("| {layout} | {:.0} | {:.3} | {:.3} |", f[0], f[1], f[2]);
        figures.push(f);
    }
    println!();
    println!(
        "actors / rows: {:.1}x the memory, {:.1}x the time to make, {:.1}x the time per heartbeat round",
        figures[1][0] / figures[0][0],
        figures[1][1] / figures[0][1],
        figures[1][2] / figures[0][2]
    );
}
