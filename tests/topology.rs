//! The office topology on a real server: clients land in the office their
//! address resolves to (automatic offices for unknown subnets), the office
//! elects the client its attributes rank first, the spreadsheet round-trips
//! byte for byte and survives a restart, and bad spreadsheets are refused
//! with line numbers and change nothing.

mod common;

use std::time::Duration;

use common::{Node, World, path_arg, run, run_err, wait_until};
use serde_json::Value;

const SHEET: &str = "office,parent,type,subnets,preferred_rvps,rvp_count,bg_target_delay_ms,bg_pause_delay_ms\n\
    hq,,Default,127.32.1.0/24,,1,,\n\
    branch,hq,Default,127.32.2.0/24,,1,40,50\n\
    vpn,hq,VPN,127.32.3.0/24,,1,,\n";

fn client(world: &World, name: &str, listen: &str, election: &str) -> Node {
    world.client_elected(name, listen, election)
}

fn topology(world: &World, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["topology".to_string()];
    all.extend(args.iter().map(ToString::to_string));
    all.extend(["--data-dir".into(), path_arg(&world.path("server"))]);
    let out = run(&all);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn export(world: &World) -> String {
    let (ok, csv, err) = topology(world, &["export"]);
    assert!(ok, "export failed: {err}");
    csv
}

fn office_of(server: &Value, name: &str) -> (String, bool) {
    let client = server["registry"]["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not registered"));
    (
        client["office"].as_str().unwrap().to_owned(),
        client["rvp"].as_bool().unwrap(),
    )
}

#[test]
fn offices_elections_and_the_spreadsheet_on_a_real_server() {
    let world = World::new(32, 1);
    let mut server = world.server();
    let laptop = "free_mib = 20000\nchassis = \"laptop\"";
    let desktop = "free_mib = 20000\nchassis = \"desktop\"";
    let clients = [
        client(&world, "hq-1", "127.32.1.11:34760", laptop),
        client(&world, "br-laptop", "127.32.2.11:34760", laptop),
        client(&world, "br-desktop", "127.32.2.12:34760", desktop),
        client(&world, "roamer", "127.32.9.11:34760", laptop),
    ];
    for c in &clients {
        world.wait_registered(c);
    }
    let before = server.status();
    assert_eq!(office_of(&before, "br-laptop").0, "auto-127.32.2.0/24");

    import_places_and_elects(&world, &server, &clients);
    the_tree_is_shown(&world);
    let first = export_round_trips(&world);
    bad_sheets_change_nothing(&world, &first);

    // The topology is durable: a restarted server has it.
    server.kill();
    drop(server);
    let _server = world.server();
    assert_eq!(export(&world), first, "the topology survived the restart");
    assert!(
        first.contains(",40,,,50,"),
        "the link settings are kept, and survive too:\n{first}"
    );
}

/// Importing the sheet moves every client into its office and elects the
/// client its attributes rank first; the client learns it.
fn import_places_and_elects(world: &World, server: &Node, clients: &[Node]) {
    let sheet = world.path("offices.csv");
    std::fs::write(&sheet, SHEET).unwrap();
    let (ok, _, err) = topology(world, &["import", &path_arg(&sheet)]);
    assert!(ok, "import failed: {err}");
    assert!(err.contains("3 offices"), "{err}");

    let after = server.status();
    assert_eq!(office_of(&after, "hq-1"), ("hq".into(), true));
    assert_eq!(
        office_of(&after, "br-desktop"),
        ("branch".into(), true),
        "the desktop outranks the laptop with the same free space"
    );
    assert_eq!(office_of(&after, "br-laptop"), ("branch".into(), false));
    assert_eq!(office_of(&after, "roamer").0, "auto-127.32.9.0/24");
    // The client learns its office and RVP role at its next heartbeat.
    wait_until(
        "br-desktop learns it is the RVP of branch",
        Duration::from_secs(15),
        || {
            let office = &clients[2].status()["office"];
            office["name"] == "branch"
                && office["rvps"] == serde_json::json!([clients[2].status()["id"]])
        },
    );
}

fn the_tree_is_shown(world: &World) {
    let (ok, tree, _) = topology(world, &["show"]);
    assert!(ok);
    assert!(tree.contains("hq (Default) 127.32.1.0/24"), "{tree}");
    assert!(tree.contains("  branch (Default) 127.32.2.0/24"), "{tree}");
    assert!(tree.contains("RVPs: br-desktop"), "{tree}");
    assert!(
        tree.contains("auto-127.32.9.0/24 (Default, automatic)"),
        "{tree}"
    );
}

/// Export, import the export, export again: the same bytes. Returns them.
fn export_round_trips(world: &World) -> String {
    let first = export(world);
    assert!(
        first.contains("auto-127.32.9.0/24,hq,Default,127.32.9.0/24,,1,false,,true"),
        "{first}"
    );
    let exported = world.path("exported.csv");
    let (ok, _, err) = topology(world, &["export", &path_arg(&exported)]);
    assert!(ok, "{err}");
    assert_eq!(std::fs::read_to_string(&exported).unwrap(), first);
    let (ok, _, err) = topology(world, &["import", &path_arg(&exported)]);
    assert!(ok, "{err}");
    assert_eq!(
        export(world),
        first,
        "export, import, export gives the same file"
    );

    first
}

/// Bad spreadsheets: refused with line numbers, nothing changes.
fn bad_sheets_change_nothing(world: &World, first: &str) {
    let header = "office,parent,type,subnets\n";
    let bad: Vec<(Vec<u8>, &str)> = vec![
        (Vec::new(), "line 1: the file is empty"),
        (
            b"office,parent,type\nhq,,Default\n".to_vec(),
            "line 1: missing column `subnets`",
        ),
        (
            b"office,parent,kind,subnets\n".to_vec(),
            "line 1: unknown column `kind`",
        ),
        (
            format!("{header}hq,,Default,10.0.0.0/8\nx,nowhere,Default,\n").into_bytes(),
            "line 3: office `x` has parent `nowhere`",
        ),
        (
            format!("{header}hq,,Default,\na,b,Default,\nb,a,Default,\n").into_bytes(),
            "line 3: offices form a cycle",
        ),
        (
            format!("{header}hq,,Default,\nhq,hq,Default,\n").into_bytes(),
            "line 3: office `hq` is listed twice",
        ),
        (
            format!("{header}hq,,Default,10.1.0.0/24\nb,hq,Default,10.1.0.0/24\n").into_bytes(),
            "line 3: 10.1.0.0/24 of office `b` overlaps",
        ),
        (
            format!("{header}hq,,Default,10.1.0.0/33\n").into_bytes(),
            "line 2: bad subnet or range",
        ),
        (
            format!("{header}hq,,Default,10.1.0.9-10.1.0.1\n").into_bytes(),
            "line 2: bad subnet or range",
        ),
        (
            format!("{header}hq,,Satellite,\n").into_bytes(),
            "line 2: unknown office type `Satellite`",
        ),
        (
            format!("{header}hq,,Default,\nb,,Default,\n").into_bytes(),
            "line 3: office `b` has no parent",
        ),
        (
            b"office,parent,type,subnets\nhq,,Default,\nb\xFF,hq,Default,\n".to_vec(),
            "line 3: byte 0xFF",
        ),
        (
            format!("{header}hq,,Default,\nb,hq,Default\n").into_bytes(),
            "line 3: 3 fields",
        ),
        (
            b"office,parent,type,subnets,rvp_count\nhq,,Default,,many\n".to_vec(),
            "line 2: rvp_count is `many`",
        ),
    ];
    for (i, (text, expected)) in bad.iter().enumerate() {
        let file = world.path(&format!("bad-{i}.csv"));
        std::fs::write(&file, text).unwrap();
        let (ok, _, err) = topology(world, &["import", &path_arg(&file)]);
        assert!(!ok, "bad sheet {i} was accepted");
        assert!(
            err.contains(expected),
            "bad sheet {i}: expected {expected:?} in {err:?}"
        );
        assert!(err.contains("the topology is unchanged"), "{err}");
    }
    assert_eq!(export(world), first, "no bad sheet changed anything");
    let (ok, err) = run_err(&[
        "topology",
        "import",
        "--data-dir",
        &path_arg(&world.path("server")),
        "/nonexistent.csv",
    ]);
    assert!(!ok && err.contains("cannot read /nonexistent.csv"), "{err}");
}
