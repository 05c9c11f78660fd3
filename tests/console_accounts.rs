//! The console's accounts and audit log on a real server (C3, first
//! part): `branchline admin add-user` makes an account (a password made
//! and shown once, or read from standard input), refuses a taken name, a
//! bad name, a short password and an unknown role with a clear line and
//! changes nothing; `admin users` lists them; every change made over the
//! admin socket (publish, purge, a join token, an account) is in `admin
//! audit`, in order; both survive a restart; a client refuses them all.
//! API tokens are made (shown once), listed without their secrets,
//! revoked, refused with a bad name or lifetime, and audited.

mod common;

use common::console::admin_with_stdin;
use common::{World, make_package, path_arg, run_err};
use serde_json::Value;

fn admin(world: &World, args: &[&str]) -> (bool, String, String) {
    admin_with_stdin(world, args, None)
}

fn json(world: &World, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let (ok, out, err) = admin(world, &all);
    assert!(ok, "{err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn accounts_are_made_refused_listed_and_every_change_is_audited() {
    let world = World::new(31, 39);
    let mut server = world.server();

    let (ok, out, err) = admin(&world, &["add-user", "ada", "--role", "admin"]);
    assert!(ok, "{err}");
    assert!(err.contains("made the admin account `ada`"), "{err}");
    let made = out.trim();
    assert_eq!(made.len(), 20, "a made password is printed once: {out:?}");
    let (ok, _, err) = admin_with_stdin(
        &world,
        &["add-user", "vic", "--role", "viewer", "--password-stdin"],
        Some("correct horse battery\n"),
    );
    assert!(ok, "{err}");

    for (args, stdin, expected) in [
        (
            &["add-user", "ada", "--role", "viewer"][..],
            None,
            "there is already an account `ada`; nothing was changed",
        ),
        (
            &["add-user", "a b", "--role", "viewer"][..],
            None,
            "`a b` is not an account name",
        ),
        (
            &["add-user", "bob", "--role", "viewer", "--password-stdin"][..],
            Some("short\n"),
            "a password has 12 to 256 characters; this one has 5",
        ),
        (
            &["add-user", "bob", "--role", "viewer", "--password-stdin"][..],
            Some(""),
            "standard input gave no password",
        ),
    ] {
        let (ok, _, err) = admin_with_stdin(&world, args, stdin);
        assert!(!ok, "{args:?} was accepted");
        common::assert_one_line_error(&err, &[expected]);
    }
    let (ok, _, err) = admin(&world, &["add-user", "bob", "--role", "auditor"]);
    assert!(
        !ok && err.contains("`auditor` is not a role: admin or viewer"),
        "{err}"
    );

    let users = json(&world, &["users"]);
    let names: Vec<(&str, &str)> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["name"].as_str().unwrap(), u["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [("ada", "admin"), ("vic", "viewer")],
        "nothing else was made"
    );

    // Changes made over the admin socket are audited, in order.
    let package = world.path("package.bin");
    make_package(&package, 64 * 1024, 39);
    let content = world.publish(&package, &[]);
    let (ok, err) = run_err(&[
        "purge",
        "--data-dir",
        &path_arg(&world.path("server")),
        &content,
    ]);
    assert!(ok, "{err}");
    assert!(world.join_token().is_some());
    let whats = audited(&world);
    let expected_tail = [
        "add-user ada (admin)".to_owned(),
        "add-user vic (viewer)".to_owned(),
        format!("publish package.bin: {content}"),
        format!("purge {content}"),
        "create a join token for 3600 s".to_owned(),
    ];
    assert!(whats.ends_with(&expected_tail), "{whats:#?}");
    let entry = &json(&world, &["audit", "--last", "1"])[0];
    assert_eq!(entry["who"], "local administrator");
    assert_eq!(entry["from"], "admin socket");
    let (ok, out, _) = admin(&world, &["audit"]);
    assert!(
        ok && out.contains("(local administrator, admin socket): add-user ada (admin)"),
        "{out}"
    );

    // Both survive a restart.
    server.kill();
    drop(server);
    let _server = world.server();
    assert_eq!(json(&world, &["users"]).as_array().unwrap().len(), 2);
    assert!(audited(&world).ends_with(&expected_tail));

    // A client has none of this.
    let client = world.client(11);
    let (ok, err) = run_err(&["admin", "users", "--data-dir", &path_arg(&client.data_dir)]);
    assert!(!ok && err.contains("this is a client"), "{err}");
}

/// What the audit log says happened, oldest first.
fn audited(world: &World) -> Vec<String> {
    json(world, &["audit"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["what"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn api_tokens_are_made_once_listed_revoked_and_audited() {
    let world = World::new(31, 40);
    let _server = world.server();
    let (ok, out, err) = admin(
        &world,
        &[
            "token-create",
            "nightly",
            "--role",
            "viewer",
            "--expires",
            "30d",
        ],
    );
    assert!(ok, "{err}");
    let token = out.trim().to_owned();
    assert!(token.starts_with("blt_"), "{out}");
    let listed = json(&world, &["tokens"]);
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    assert!(token.starts_with(&format!("blt_{id}_")));
    assert_eq!(listed[0]["name"], "nightly");
    assert_eq!(listed[0]["role"], "viewer");
    assert!(
        !listed.to_string().contains(&token[token.len() - 64..]),
        "no secret is listed"
    );

    for (args, expected) in [
        (
            &["token-create", "a b", "--role", "viewer"][..],
            "`a b` is not a token name",
        ),
        (
            &["token-create", "x", "--role", "viewer", "--expires", "400d"][..],
            "an API token lives between 1 second and 365 days",
        ),
        (
            &["token-revoke", "0011223344556677"][..],
            "the API token is not known to this server",
        ),
    ] {
        let (ok, _, err) = admin(&world, args);
        assert!(!ok, "{args:?} was accepted");
        common::assert_one_line_error(&err, &[expected]);
    }
    let (ok, _, err) = admin(&world, &["token-revoke", &id]);
    assert!(
        ok && err.contains(&format!("revoked the API token {id} (nightly)")),
        "{err}"
    );
    assert_eq!(json(&world, &["tokens"]), serde_json::json!([]));
    let whats = audited(&world);
    assert_eq!(
        whats,
        [
            format!("create the API token nightly (viewer) for 2592000 s: id {id}"),
            format!("revoke the API token {id}"),
        ],
        "refused attempts change nothing and are not audited"
    );
}
