//! One office actor on the server panics mid-transfer (C2): it restarts in
//! place and rebuilds itself from the metadata store, the transfer in its
//! office completes, and the other office never notices. Two branches
//! (east and west) fetch a package from a slow origin, each with two
//! clients; a prober of our own in each office asks the server every
//! 20 ms (heartbeat, then sources) and times each answer. East's office
//! actor is panicked (`kill office-east panic` in the server's debug
//! shell) while east's clients hold part of the package. West's prober is
//! answered within 1 s throughout (its worst answer is printed), east's
//! office shows one restart, and every copy in both offices is right.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use branchline::tls::{self, Identity};
use branchline_actors::wire::{ServerReply, ServerRequest};
use branchline_storage::ContentId;
use common::origin::{OriginOptions, TestOrigin};
use common::{World, finish_fetches, have_pieces, make_package, shell, start_fetches};
use serde_json::Value;

const SIZE: usize = 48 * 1024 * 1024;

const SHEET: &str = "office,parent,type,subnets\n\
    hq,,Default,127.40.1.0/24\n\
    east,hq,Default,127.40.2.0/24\n\
    west,hq,Default,127.40.3.0/24\n";

/// A prober's answer times: (when asked, how long it took).
type Times = Vec<(Instant, Duration)>;

/// Registers `identity` from `from`, then asks heartbeat and sources every
/// 20 ms until `stop`, registering again when the server forgot it.
async fn probe(
    identity: Identity,
    from: SocketAddr,
    server: SocketAddr,
    content: ContentId,
    stop: Arc<AtomicBool>,
) -> Times {
    let id = identity.node_id();
    let conn = common::pki::connect_as(from, server, tls::CONTROL_NAME, &identity).await;
    let register = ServerRequest::Register(common::pki::registration(
        id,
        format!("prober-{}", from.ip()),
        from.ip(),
    ));
    let mut times = Vec::new();
    let mut registered = false;
    while !stop.load(Ordering::Relaxed) {
        let requests = common::pki::heartbeat_and_sources(id, content);
        for request in requests {
            let request = if registered {
                request
            } else {
                register.clone()
            };
            let asked = Instant::now();
            let reply: ServerReply = common::pki::ask_on(&conn, &request).await;
            times.push((asked, asked.elapsed()));
            registered = match reply {
                ServerReply::UnknownClient => false,
                ServerReply::Error(e) if e.contains("unavailable") => registered,
                ServerReply::Error(e) => panic!("refused: {e}"),
                _ => true,
            };
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    times
}

fn actor(data_dir: &Path, name: &str) -> Option<Value> {
    let (ok, out) = shell(data_dir, "actors");
    assert!(ok, "{out}");
    let actors: Vec<Value> = serde_json::from_str(&out).unwrap();
    actors.into_iter().find(|a| a["name"] == name)
}

/// The longest answer among `times` asked within `around` of `at`.
fn worst_near(times: &Times, at: Instant, around: Duration) -> Duration {
    times
        .iter()
        .filter(|(asked, _)| *asked + around >= at && *asked <= at + around)
        .map(|(_, took)| *took)
        .max()
        .unwrap_or_default()
}

#[test]
fn a_panicked_office_restarts_its_transfer_completes_and_the_other_office_never_notices() {
    let world = World::new(40, 1);
    let package = world.path("package.bin");
    let sha = make_package(&package, SIZE, 40);
    let origin = TestOrigin::start(
        world.addr(2, 0),
        package.clone(),
        OriginOptions {
            delay: Duration::from_millis(150),
            ..OriginOptions::default()
        },
    );
    let server = world.server();
    world.import_topology(SHEET);
    let mut clients = Vec::new();
    for (net, office) in [(2, "east"), (3, "west")] {
        for n in 0..2u8 {
            let listen = format!("127.40.{net}.{}:34760", 11 + n);
            let free = if n == 0 { 900_000 } else { 100_000 };
            let name = format!("{office}-{n}");
            clients.push(world.client_elected(&name, &listen, &format!("free_mib = {free}")));
        }
    }
    for client in &clients {
        world.wait_registered(client);
    }
    let content = world.publish(&package, &[origin.url("package.bin")]);
    let content_id: ContentId = content.parse().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let probing = start_probers(&world, content_id, &stop);

    let mut fetches = start_fetches(&world, clients.iter(), &content);
    let pieces = |i: usize| have_pieces(&clients[i].status());
    common::wait_until(
        "east holds part of the package",
        Duration::from_secs(60),
        || pieces(0) > 0,
    );
    let east_fetching = fetches[..2]
        .iter_mut()
        .any(|(fetch, _)| fetch.try_wait().unwrap().is_none());
    let killed = Instant::now();
    let (ok, out) = shell(&server.data_dir, "kill office-east panic");
    assert!(ok, "{out}");
    common::wait_until("east's office restarted", Duration::from_secs(20), || {
        actor(&server.data_dir, "office-east").is_some_and(|a| a["restarts"] == 1)
    });
    the_shell_draws_the_office_tree(&server.data_dir);
    finish_fetches(fetches, &sha);
    stop.store(true, Ordering::Relaxed);
    let times = probing.join().unwrap();

    assert!(
        east_fetching,
        "the panic came while east was still fetching"
    );
    let around = Duration::from_secs(3);
    let (east, west) = (
        worst_near(&times[0], killed, around),
        worst_near(&times[1], killed, around),
    );
    eprintln!(
        "around the panic: east's slowest answer {east:?}, west's {west:?} ({} and {} answers)",
        times[0].len(),
        times[1].len()
    );
    assert!(
        west <= Duration::from_secs(1),
        "west waited {west:?} while east's office restarted"
    );
    assert!(
        server.log().contains("office rebuilt from the store"),
        "{}",
        server.log()
    );
}

/// A prober in east's and one in west's office, on a thread of their own
/// until `stop`; the thread returns each one's answer times.
fn start_probers(
    world: &World,
    content: ContentId,
    stop: &Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Times>> {
    let server_addr = world.server_addr();
    let probers = [(2, "east"), (3, "west")]
        .into_iter()
        .map(|(net, office)| {
            let from: SocketAddr = format!("127.40.{net}.200:0").parse().unwrap();
            let identity =
                common::pki::joined_identity(world, &format!("prober-{office}"), from.ip());
            probe(identity, from, server_addr, content, stop.clone())
        })
        .collect();
    common::pki::in_background(probers)
}

/// West's office never restarted; the shell draws each office under the
/// office above it, and says how many clients it has (its sessions are
/// rows).
fn the_shell_draws_the_office_tree(server_dir: &Path) {
    let west = actor(server_dir, "office-west").expect("west's office is listed");
    assert_eq!(west["restarts"], 0, "{west}");
    assert_eq!(west["parent"], "office-hq", "{west}");
    let hq = actor(server_dir, "office-hq").expect("hq's office is listed");
    assert_eq!(hq["parent"], "directory", "{hq}");
    let clients = west["note"]
        .as_str()
        .and_then(|n| n.strip_suffix(" clients"))
        .and_then(|n| n.parse::<u32>().ok());
    assert!(clients.is_some_and(|n| n >= 2), "{west}");
}
