//! Twenty rounds of SIGKILL at random moments, on clients and on the
//! server, during a four-office distribution (hq, branch-a, branch-b and
//! branch-c under branch-a; two clients each; every node a process).
//!
//! After each kill the node starts again on the same data directory:
//! - a client finds its last run unclean, reads every stored piece again,
//!   and finds none corrupt; it holds every piece it held before the kill,
//!   and its transfer starts from them (its log says so), so none of them
//!   is asked for again;
//! - the server still knows the content, and its clients register again.
//!
//! At the end every output is the package. Some pieces may arrive twice
//! (`pieces_again`): when a restarted server's first answers do not list a
//! peer yet, the requests on the wire to it are written off and asked of
//! another source, and both copies arrive. Those are counted and bounded;
//! none was a piece held when it was asked for. The kills are random but
//! repeatable: the seed is printed, and `BRANCHLINE_KILL_SEED` replays one.

mod common;

use std::process::Child;
use std::time::{Duration, Instant};

use common::origin::{OriginOptions, TestOrigin};
use common::{Node, World, have_pieces, make_package, sha256_file};

const SIZE: usize = 64 * 1024 * 1024;
const PIECES: u64 = 64;
const ROUNDS: usize = 20;

/// The offices of a run on 127.`b`.0.0/16.
fn sheet(b: u8) -> String {
    format!(
        "office,parent,type,subnets\n\
         hq,,Default,127.{b}.1.0/24\n\
         branch-a,hq,Default,127.{b}.2.0/24\n\
         branch-b,hq,Default,127.{b}.3.0/24\n\
         branch-c,branch-a,Default,127.{b}.4.0/24\n"
    )
}

const OFFICES: [(&str, u8); 4] = [("hq", 1), ("branch-a", 2), ("branch-b", 3), ("branch-c", 4)];

/// xorshift64: repeatable randomness without a crate.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

struct Member {
    office: &'static str,
    listen: String,
    node: Node,
    fetch: Option<Child>,
    /// Pieces held when it last started again after a kill.
    restarted_with: Option<u64>,
}

impl Member {
    fn start(world: &World, name: &str, listen: &str) -> Node {
        world.client_at(name, listen.parse().unwrap(), world.server_addr(), &[])
    }

    fn out(&self, world: &World) -> std::path::PathBuf {
        world.path(&format!("{}.out", self.node.name))
    }

    /// True once its fetch has ended well; restarts a fetch that died with
    /// its client.
    fn fetched(&mut self, world: &World, content: &str) -> bool {
        if let Some(fetch) = self.fetch.as_mut() {
            match fetch.try_wait().unwrap() {
                None => return false,
                Some(status) if status.success() => return true,
                Some(_) => self.fetch = None,
            }
        }
        if self.fetch.is_none() {
            self.fetch = Some(world.start_fetch(&self.node, content, &self.out(world)));
        }
        false
    }
}

/// The seeds the kills follow: `BRANCHLINE_KILL_SEED` (one, or several
/// separated by commas) replays runs; by default, fixed ones, among them
/// a seed that once made 8 pieces arrive twice.
fn seeds() -> Vec<u64> {
    match std::env::var("BRANCHLINE_KILL_SEED") {
        Ok(list) => list
            .split(',')
            .map(|s| s.trim().parse().expect("BRANCHLINE_KILL_SEED is numbers"))
            .collect(),
        Err(_) => vec![867_626_719, 20_261_204],
    }
}

/// Pieces that arrived twice in one run, at most: the most measured over
/// the default seeds and 8 runs of random ones (see docs/DEVELOPMENT.md, "Tests"), not a
/// loosened bound.
const MOST_TWICE: u64 = 8;

// The default seeds run side by side, each in its own block of addresses.

#[test]
fn twenty_random_kills_lose_no_stored_piece_and_every_copy_ends_right() {
    twenty_kills(seeds()[0], 39);
}

#[test]
fn twenty_more_random_kills_lose_no_stored_piece_and_every_copy_ends_right() {
    for seed in seeds().into_iter().skip(1) {
        twenty_kills(seed, 36);
    }
}

fn twenty_kills(seed: u64, b: u8) {
    let world = World::new(b, 1);
    let package = world.path("package.bin");
    let sha = make_package(&package, SIZE, 39);
    // A slow origin keeps the distribution going while the kills land.
    let origin = TestOrigin::start(
        world.addr(2, 0),
        package.clone(),
        OriginOptions {
            delay: Duration::from_millis(700),
            ..Default::default()
        },
    );
    let mut server = world.server();
    world.import_topology(&sheet(b));
    let mut members = start_members(&world, b);
    let content = world.publish(&package, &[origin.url("package.bin")]);
    for member in &mut members {
        member.fetched(&world, &content);
    }

    eprintln!("kill seed {seed} (BRANCHLINE_KILL_SEED={seed} replays it)");
    let mut dice = Dice(seed);
    let (mut during_download, mut pieces_checked, mut duplicates) = (0, 0, 0);
    for round in 1..=ROUNDS {
        std::thread::sleep(Duration::from_millis(100 + dice.below(900)));
        let downloading = members
            .iter_mut()
            .map(|m| !m.fetched(&world, &content))
            .filter(|&d| d)
            .count();
        if downloading > 0 {
            during_download += 1;
        }
        let round = format!("round {round} ({downloading} clients downloading)");
        // One round in five hits the server.
        if dice.below(5) == 0 {
            server = kill_the_server(&world, server, &mut dice, &content);
            eprintln!("{round}: killed the server");
            continue;
        }
        let victim = &mut members[usize::try_from(dice.below(8)).unwrap()];
        let (held, twice) = kill_a_client(&world, victim, &round);
        pieces_checked += held;
        duplicates += twice;
    }

    let deadline = Instant::now() + Duration::from_secs(240);
    while !members.iter_mut().all(|m| m.fetched(&world, &content)) {
        assert!(Instant::now() < deadline, "the distribution did not finish");
        std::thread::sleep(Duration::from_millis(200));
    }
    for member in &members {
        duplicates += every_copy_is_right(&world, member, &sha);
    }
    eprintln!(
        "{ROUNDS} rounds, {during_download} while clients were still downloading; \
         {pieces_checked} pieces re-verified after kills, none corrupt; {duplicates} pieces arrived twice; origin served {:.2}x",
        origin.bytes() as f64 / SIZE as f64
    );
    assert!(
        duplicates <= MOST_TWICE,
        "seed {seed}: {duplicates} pieces arrived twice across 8 clients"
    );
    assert!(
        during_download >= ROUNDS / 2,
        "most kills landed during the download"
    );
}

/// Two clients in each office, registered.
fn start_members(world: &World, b: u8) -> Vec<Member> {
    let mut members: Vec<Member> = Vec::new();
    for (office, net) in OFFICES {
        for host in [11, 12] {
            let listen = format!("127.{b}.{net}.{host}:34760");
            let name = format!("{office}-{host}");
            let node = Member::start(world, &name, &listen);
            members.push(Member {
                office,
                listen,
                node,
                fetch: None,
                restarted_with: None,
            });
        }
    }
    for member in &members {
        world.wait_registered(&member.node);
    }
    members
}

/// Kills the server and starts it again after a random pause; it still
/// knows the content.
fn kill_the_server(world: &World, mut server: Node, dice: &mut Dice, content: &str) -> Node {
    server.kill();
    std::thread::sleep(Duration::from_millis(dice.below(1000)));
    let server = world.server();
    let contents = server.status()["registry"]["contents"].clone();
    assert!(
        contents
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == content),
        "the restarted server forgot the content: {contents}"
    );
    server
}

/// Kills a client and starts it again: its start-up check finds nothing
/// corrupt and every piece it held. Returns the pieces it held and those
/// that had arrived twice before the kill.
fn kill_a_client(world: &World, victim: &mut Member, round: &str) -> (u64, u64) {
    let before = victim.node.status();
    victim.node.kill();
    let twice = before["counters"]["pieces_again"].as_u64().unwrap();
    let name = victim.node.name.clone();
    victim.node = Member::start(world, &name, &victim.listen);
    let found = victim.node.start_check();
    let checked = &found["done"];
    assert!(
        checked["corrupt"].as_array().is_some_and(Vec::is_empty),
        "{round}: {name}'s start-up check: {found}"
    );
    // The check read every piece the cache held at the start; the
    // download resumed by itself meanwhile and may hold more now.
    let held = checked["pieces"].as_u64().unwrap();
    assert!(
        have_pieces(&victim.node.status()) >= held,
        "{round}: {name} checked every piece it holds"
    );
    assert!(
        held >= have_pieces(&before),
        "{round}: {name} lost stored pieces in the kill"
    );
    victim.restarted_with = Some(held);
    eprintln!(
        "{round}: killed {name} with {} pieces stored; it restarted holding {held}, all sound",
        have_pieces(&before)
    );
    (held, twice)
}

/// The member's copy is the package, its last transfer started from what
/// it held after its kill, and nothing was rejected. Returns the pieces
/// that arrived twice.
fn every_copy_is_right(world: &World, member: &Member, sha: &str) -> u64 {
    let name = &member.node.name;
    assert_eq!(sha256_file(&member.out(world)), sha, "{name}");
    let status = member.node.status();
    if let Some(held) = member.restarted_with {
        let log = member.node.log();
        let started = log
            .lines()
            .find(|l| l.contains("transfer started"))
            .unwrap_or_default()
            .to_owned();
        assert!(
            started.contains(&format!(" have={held} ")),
            "{name}'s last transfer did not start from the {held} pieces it held: {started}"
        );
    }
    assert_eq!(status["counters"]["pieces_rejected"], 0, "{name}");
    assert_eq!(have_pieces(&status), PIECES);
    assert_eq!(status["office"]["name"], member.office, "{name}");
    status["counters"]["pieces_again"].as_u64().unwrap()
}
