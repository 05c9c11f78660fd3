//! The console in a real headless browser (C3): Debian's chromium, driven
//! through chromedriver by `tests/browser/console_rollout.py`, trusting
//! the cluster CA as an administrator's browser does (ca.pem imported into
//! its NSS database). It signs in (a wrong password first), uploads a
//! topology sheet with a mistake (the problem is shown by line) and one
//! adding the third office (previewed, then applied), opens the Offices
//! page for a published content, and watches a rollout across
//! three offices complete live while this test starts the fetches; then
//! the Clients, Contents, Health (a device of the previous protocol
//! version flagged) and Audit pages, and signs out. Its screenshots are those
//! of docs/console.md (`BRANCHLINE_SCREENSHOTS=docs/console` writes them
//! there; otherwise into the test's directory).

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::console::{CONSOLE_PORT, add_account};
use common::origin::{OriginOptions, TestOrigin};
use common::{World, finish_fetches, make_package, start_fetches};

/// The topology at the start: west's clients land in an automatic office.
const FIRST_SHEET: &str = "office,parent,type,subnets\n\
    hq,,Default,127.43.1.0/24\n\
    east,hq,Default,127.43.2.0/24\n";
/// The sheet the browser uploads, after one with a mistake.
const SHEET: &str = "office,parent,type,subnets\n\
    hq,,Default,127.43.1.0/24\n\
    east,hq,Default,127.43.2.0/24\n\
    west,hq,WiFi,127.43.3.0/24\n";
const BAD_SHEET: &str = "office,parent,type,subnets\n\
    hq,,Default,127.43.1.0/24\n\
    west,nowhere,WiFi,127.43.3.0/24\n";
const PASSWORD: &str = "correct horse battery";

/// An NSS database under `home` that trusts `ca` (what chromium reads).
fn trust_in_browser(home: &std::path::Path, ca: &std::path::Path) {
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db).unwrap();
    let db = format!("sql:{}", db.display());
    for args in [
        vec!["-N", "-d", &db, "--empty-password"],
        vec![
            "-A",
            "-d",
            &db,
            "-t",
            "C,,",
            "-n",
            "branchline-cluster-ca",
            "-i",
            ca.to_str().unwrap(),
        ],
    ] {
        let status = Command::new("certutil")
            .args(&args)
            .status()
            .expect("certutil runs");
        assert!(status.success(), "certutil {args:?}");
    }
}

/// A device of the previous protocol version tries the server (and is
/// refused), for the Health page to flag.
fn an_old_device_is_refused(world: &World) {
    let old = common::pki::joined_identity(world, "old-device", world.addr(40, 0).ip());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let to = world.server_addr();
        let conn =
            common::pki::old_node(&old, world.addr(40, 0), to, branchline::tls::CONTROL_NAME).await;
        tokio::time::timeout(Duration::from_secs(5), conn.closed())
            .await
            .expect("refused");
    });
}

#[test]
fn a_rollout_across_three_offices_is_watched_live_in_a_browser() {
    let world = World::new(43, 1);
    let package = world.path("package.bin");
    let sha = make_package(&package, 16 << 20, 43);
    let origin = TestOrigin::start(world.addr(2, 0), package.clone(), OriginOptions::default());
    let _server = world.server();
    world.import_topology(FIRST_SHEET);
    add_account(&world, "ada", "admin", PASSWORD);
    let mut clients = Vec::new();
    for (net, office) in [(1, "hq"), (2, "east"), (3, "west")] {
        for n in 0..2u8 {
            let listen = format!("127.43.{net}.{}:34760", 11 + n);
            clients.push(world.client_elected(
                &format!("{office}-{n}"),
                &listen,
                "free_mib = 100000",
            ));
        }
    }
    for client in &clients {
        world.wait_registered(client);
    }
    let content = world.publish(&package, &[origin.url("package.bin")]);
    an_old_device_is_refused(&world);

    let (sheet, bad_sheet) = (world.path("three-offices.csv"), world.path("bad.csv"));
    std::fs::write(&sheet, SHEET).unwrap();
    std::fs::write(&bad_sheet, BAD_SHEET).unwrap();
    let home = world.path("browser-home");
    trust_in_browser(&home, &world.path("server").join("ca").join("ca.pem"));
    let shots = std::env::var_os("BRANCHLINE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| world.path("shots"));
    std::fs::create_dir_all(&shots).unwrap();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/browser/console_rollout.py");
    let base = format!("https://{}", world.addr(1, CONSOLE_PORT));
    let mut browser = Command::new("/usr/bin/python3")
        .arg(&script)
        .args(["--base", &base, "--user", "ada", "--password", PASSWORD])
        .args(["--content", &content, "--offices", "hq,east,west"])
        .args(["--least-efficiency", "49", "--clients-per-office", "2"])
        .arg("--sheet")
        .arg(&sheet)
        .arg("--bad-sheet")
        .arg(&bad_sheet)
        .arg("--shots")
        .arg(&shots)
        .env("HOME", &home)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut said = BufReader::new(browser.stdout.take().unwrap()).lines();
    let first = said.next().and_then(Result::ok).unwrap_or_default();
    assert_eq!(
        first, "watching",
        "the browser did not get to the Offices page"
    );

    let fetches = start_fetches(&world, &clients, &content);
    finish_fetches(fetches, &sha);
    let status = common::wait_child(&mut browser, Duration::from_secs(180));
    let rest: Vec<String> = said.map_while(Result::ok).collect();
    eprintln!("browser: {rest:?}");
    assert!(status.success(), "the browser's steps failed: {rest:?}");
    assert_eq!(rest.last().map(String::as_str), Some("ok"));
    for page in [
        "topology", "offices", "clients", "contents", "audit", "sign-in",
    ] {
        let png = std::fs::read(shots.join(format!("{page}.png"))).unwrap();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{page}.png"
        );
    }
}
