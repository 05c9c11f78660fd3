//! The console's HTTPS API on a real server (C3), called with `curl` that
//! checks the server's certificate against the cluster CA: every
//! endpoint answers an anonymous caller 401 and nothing else; signing in
//! sets a session whose changes need the CSRF token; a viewer reads but
//! every change of theirs is refused and changes nothing; an admin's
//! changes work, each bad input gets a clear error and changes nothing,
//! and each change is in the audit log with the account and the address;
//! API tokens work as Bearer and stop when revoked; failed sign-ins are
//! limited per address.

mod common;

use common::console::{Answer, Api, add_account};
use common::{World, make_package};
use serde_json::{Value, json};

const ADMIN_PW: &str = "correct horse battery";
const VIEWER_PW: &str = "viewer staple battery";

/// A server with an admin `ada` and a viewer `vic`.
fn world_with_accounts(c: u8) -> (World, common::Node) {
    let world = World::new(31, c);
    let server = world.server();
    add_account(&world, "ada", "admin", ADMIN_PW);
    add_account(&world, "vic", "viewer", VIEWER_PW);
    (world, server)
}

/// Runs the CLI; whether it succeeded, and its stdout and stderr.
fn run_out(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(common::bin())
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn signed_in(world: &World, name: &str, password: &str) -> Api {
    let mut api = Api::new(world, name);
    let answer = api.sign_in(name, password);
    assert_eq!(answer.status, 200, "{answer:?}");
    api
}

fn error_of(answer: &Answer) -> String {
    answer.body["error"].as_str().unwrap_or_default().to_owned()
}

/// Every documented route, as (method, path with ids filled in).
fn documented_routes(doc: &Value) -> Vec<(String, String)> {
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let path = path.replace("{id}", &"0".repeat(64));
            routes.push((method.to_uppercase(), path));
        }
    }
    routes
}

/// Every documented route but sign-in answers an anonymous caller 401; an
/// unknown path 404; a body that is not JSON 400.
fn nothing_for_anonymous_callers(world: &World) {
    let anonymous = Api::new(world, "nobody");
    let doc = anonymous.get("/api/v1/openapi.json");
    assert_eq!(doc.status, 200, "{doc:?}");
    let routes = documented_routes(&doc.body);
    assert_eq!(routes.len(), 18, "{routes:?}");
    for (method, path) in &routes {
        if (method.as_str(), path.as_str()) == ("POST", "/api/v1/session") {
            continue;
        }
        let answer = anonymous.call(method, path, None);
        assert_eq!(answer.status, 401, "{method} {path}: {answer:?}");
        assert!(error_of(&answer).contains("sign in first"), "{answer:?}");
        assert!(
            answer.headers.contains("www-authenticate: Bearer"),
            "{}",
            answer.headers
        );
    }
    let unknown = anonymous.get("/api/v1/nothing-here");
    assert_eq!(unknown.status, 404);
    assert!(error_of(&unknown).contains("openapi.json"), "{unknown:?}");
    let garbage = anonymous.call(
        "POST",
        "/api/v1/session",
        Some(("application/json", "{name")),
    );
    assert_eq!(garbage.status, 400, "{garbage:?}");
    assert!(!error_of(&garbage).is_empty());
}

#[test]
fn anonymous_callers_get_nothing_and_sessions_need_their_csrf_token() {
    let (world, _server) = world_with_accounts(41);
    nothing_for_anonymous_callers(&world);

    let mut ada = Api::new(&world, "ada");
    let wrong = ada.sign_in("ada", "not the password");
    assert_eq!(
        (wrong.status, error_of(&wrong).as_str()),
        (401, "wrong name or password")
    );
    let unknown = ada.sign_in("nobody", ADMIN_PW);
    assert_eq!(
        (unknown.status, error_of(&unknown).as_str()),
        (401, "wrong name or password")
    );
    let forged = ada.sign_in("ada\n2026 INFO forged", ADMIN_PW);
    assert_eq!(forged.status, 401, "a name no account has: {forged:?}");
    let huge = json!({"name": "a".repeat(40_000), "password": "x"});
    let refused = ada.post_json("/api/v1/session", &huge);
    assert_eq!(refused.status, 400, "a body over 16 KiB: {refused:?}");
    assert!(error_of(&refused).contains("larger"), "{refused:?}");
    let answer = ada.sign_in("ada", ADMIN_PW);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(
        answer
            .headers
            .to_lowercase()
            .contains("x-content-type-options: nosniff")
    );
    assert_eq!(answer.body["role"], "admin");
    let cookie = answer.headers.to_lowercase();
    for flag in [
        "branchline_session=",
        "secure",
        "httponly",
        "samesite=strict",
    ] {
        assert!(cookie.contains(flag), "{flag}: {cookie}");
    }
    assert_eq!(ada.get("/api/v1/session").body["name"], "ada");

    // A change without the session's CSRF token is refused, and not made.
    let csrf = ada.csrf.take();
    let new_user = json!({"name": "eve", "role": "admin", "password": "a long enough one"});
    let refused = ada.post_json("/api/v1/users", &new_user);
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(error_of(&refused).contains("CSRF"), "{refused:?}");
    ada.csrf = Some("0".repeat(64));
    assert_eq!(ada.post_json("/api/v1/users", &new_user).status, 403);
    let users = ada.get("/api/v1/users").body;
    assert_eq!(users.as_array().unwrap().len(), 2, "{users}");
    ada.csrf = csrf;
    assert_eq!(ada.post_json("/api/v1/users", &new_user).status, 201);

    // Signing out ends the session.
    assert_eq!(ada.delete("/api/v1/session").status, 204);
    let after = ada.get("/api/v1/session");
    assert_eq!(after.status, 401, "{after:?}");
}

#[test]
fn a_viewer_reads_and_every_change_of_theirs_is_refused() {
    let (world, _server) = world_with_accounts(42);
    let vic = signed_in(&world, "vic", VIEWER_PW);
    for path in [
        "/api/v1/health",
        "/api/v1/offices",
        "/api/v1/clients",
        "/api/v1/contents",
        "/api/v1/topology",
        "/api/v1/audit",
        "/api/v1/users",
        "/api/v1/tokens",
    ] {
        let answer = vic.get(path);
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
    }
    let health = vic.get("/api/v1/health").body;
    assert_eq!(health["checks"][1]["level"], "ok", "{health}");
    let before = vic.get("/api/v1/topology").body;
    let sheet = "office,parent,type,subnets\nhq,,Default,127.31.42.0/24\n";
    for (method, path, body) in [
        ("PUT", "/api/v1/topology", Some(("text/csv", sheet))),
        (
            "POST",
            "/api/v1/users",
            Some((
                "application/json",
                r#"{"name":"mal","role":"admin","password":"twelve chars ok"}"#,
            )),
        ),
        (
            "POST",
            "/api/v1/tokens",
            Some(("application/json", r#"{"name":"t","role":"admin"}"#)),
        ),
        ("DELETE", "/api/v1/tokens/0011223344556677", None),
        (
            "DELETE",
            &format!("/api/v1/contents/{}", "0".repeat(64)),
            None,
        ),
    ] {
        let answer = vic.call(method, path, body);
        assert_eq!(answer.status, 403, "{method} {path}: {answer:?}");
        assert!(
            error_of(&answer).contains("`vic` is a viewer"),
            "{answer:?}"
        );
    }
    let preview = vic.call(
        "POST",
        "/api/v1/topology/preview",
        Some(("text/csv", sheet)),
    );
    assert_eq!(
        preview.status, 200,
        "a preview changes nothing: {preview:?}"
    );
    assert_eq!(vic.get("/api/v1/topology").body, before);
    assert_eq!(vic.get("/api/v1/users").body.as_array().unwrap().len(), 2);
    assert_eq!(vic.get("/api/v1/tokens").body, json!([]));
    let bad = vic.get("/api/v1/audit?last=0");
    assert_eq!(bad.status, 400, "{bad:?}");
    let bad = vic.get("/api/v1/audit?last=many");
    assert_eq!(bad.status, 400, "{bad:?}");
}

#[test]
fn an_admin_changes_accounts_and_contents_and_each_change_is_audited() {
    let (world, _server) = world_with_accounts(43);
    let ada = signed_in(&world, "ada", ADMIN_PW);
    for (body, expected) in [
        (
            json!({"name": "ada", "role": "viewer", "password": "another long one"}),
            "already an account",
        ),
        (
            json!({"name": "bad name", "role": "viewer", "password": "another long one"}),
            "is not an account name",
        ),
        (
            json!({"name": "short", "role": "viewer", "password": "short"}),
            "12",
        ),
        (
            json!({"name": "x", "role": "root", "password": "another long one"}),
            "unknown variant",
        ),
    ] {
        let answer = ada.post_json("/api/v1/users", &body);
        assert_eq!(answer.status, 400, "{body}: {answer:?}");
        assert!(
            error_of(&answer).contains(expected),
            "{expected}: {answer:?}"
        );
    }
    assert_eq!(ada.get("/api/v1/users").body.as_array().unwrap().len(), 2);

    let package = world.path("app.bin");
    make_package(&package, 300_000, 7);
    let id = world.publish(&package, &["https://127.31.43.200/app.bin".to_owned()]);
    assert_eq!(ada.get("/api/v1/contents").body[0]["id"], id.as_str());
    assert_eq!(ada.delete("/api/v1/contents/not-hex").status, 400);
    let unknown = ada.delete(&format!("/api/v1/contents/{}", "0".repeat(64)));
    assert_eq!(unknown.status, 404, "{unknown:?}");
    let purged = ada.delete(&format!("/api/v1/contents/{id}"));
    assert_eq!(purged.status, 200, "{purged:?}");
    assert_eq!(ada.get("/api/v1/contents").body, json!([]));

    let audit = ada.get("/api/v1/audit").body;
    let by_ada: Vec<(&str, &str)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["who"] == "ada")
        .map(|e| (e["what"].as_str().unwrap(), e["from"].as_str().unwrap()))
        .collect();
    let whats: Vec<&str> = by_ada.iter().map(|(w, _)| *w).collect();
    assert_eq!(whats, ["sign in", &format!("purge {id}")[..]], "{audit}");
    assert!(
        by_ada.iter().all(|(_, from)| from.starts_with("127.")),
        "{by_ada:?}"
    );
}

#[test]
fn a_topology_sheet_is_previewed_then_imported_and_a_bad_one_changes_nothing() {
    let (world, _server) = world_with_accounts(45);
    let ada = signed_in(&world, "ada", ADMIN_PW);
    let wrong = "office,parent,type,subnets\nhq,nowhere,Default,127.31.45.0/24\n";
    for method in ["POST", "PUT"] {
        let path = if method == "POST" {
            "/api/v1/topology/preview"
        } else {
            "/api/v1/topology"
        };
        let bad = ada.call(method, path, Some(("text/csv", wrong)));
        assert_eq!(bad.status, 422, "{method}: {bad:?}");
        let first = bad.body["problems"][0].as_str().unwrap();
        assert!(first.contains("line 2"), "{bad:?}");
    }
    let sheet =
        "office,parent,type,subnets\nhq,,Default,127.31.45.0/25\nbranch,hq,WiFi,127.31.45.128/25\n";
    let preview = ada.call(
        "POST",
        "/api/v1/topology/preview",
        Some(("text/csv", sheet)),
    );
    assert_eq!(preview.status, 200, "{preview:?}");
    assert_eq!(
        preview.body["added"],
        json!(["hq", "branch"]),
        "{preview:?}"
    );
    assert_eq!(preview.body["removed"], json!(["top"]), "{preview:?}");
    let file = world.path("two.csv");
    std::fs::write(&file, sheet).unwrap();
    let dir = common::path_arg(&world.path("server"));
    let (ok, out) = run_out(&[
        "topology",
        "preview",
        "--data-dir",
        &dir,
        &common::path_arg(&file),
    ]);
    assert!(ok && out.contains("added: hq, branch"), "{out}");
    assert!(
        !ada.get("/api/v1/topology")
            .body
            .as_str()
            .unwrap()
            .contains("branch"),
        "a preview changes nothing"
    );

    let good = ada.call("PUT", "/api/v1/topology", Some(("text/csv", sheet)));
    assert_eq!(
        (good.status, good.body["offices"].as_u64()),
        (200, Some(2)),
        "{good:?}"
    );
    let offices = ada.get("/api/v1/offices").body;
    let names: Vec<&str> = offices["offices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["office"]["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"branch"), "{offices}");
    assert!(
        ada.get("/api/v1/topology")
            .body
            .as_str()
            .unwrap()
            .contains("branch,hq,")
    );
    let audit = ada.get("/api/v1/audit").body.to_string();
    assert!(audit.contains("topology import: 2 offices"), "{audit}");
    assert_eq!(
        audit.matches("topology import").count(),
        1,
        "refused sheets are not audited: {audit}"
    );
}

#[test]
fn api_tokens_work_as_bearer_until_revoked_and_sign_ins_are_limited() {
    let (world, _server) = world_with_accounts(44);
    let ada = signed_in(&world, "ada", ADMIN_PW);
    let bad = ada.post_json(
        "/api/v1/tokens",
        &json!({"name": "n", "role": "viewer", "expires_days": 0}),
    );
    assert_eq!(bad.status, 400, "{bad:?}");
    let made = ada.post_json(
        "/api/v1/tokens",
        &json!({"name": "report", "role": "viewer"}),
    );
    assert_eq!(made.status, 201, "{made:?}");
    let token = made.body["token"].as_str().unwrap().to_owned();
    let id = made.body["view"]["id"].as_str().unwrap().to_owned();
    let mut script = Api::new(&world, "script");
    script.token = Some(token.clone());
    assert_eq!(script.get("/api/v1/contents").status, 200);
    let refused = script.call("PUT", "/api/v1/topology", Some(("text/csv", "x")));
    assert_eq!(
        refused.status, 403,
        "a viewer token changes nothing: {refused:?}"
    );
    let other = if token.ends_with('0') { '1' } else { '0' };
    script.token = Some(format!("{}{other}", &token[..token.len() - 1]));
    assert_eq!(script.get("/api/v1/contents").status, 401);
    script.token = Some("Basic abc".into());
    assert_eq!(script.get("/api/v1/contents").status, 401);
    let revoked = ada.delete(&format!("/api/v1/tokens/{id}"));
    assert_eq!(revoked.status, 200, "{revoked:?}");
    script.token = Some(token);
    let gone = script.get("/api/v1/contents");
    assert_eq!(gone.status, 401, "{gone:?}");
    let audit = ada.get("/api/v1/audit").body.to_string();
    assert!(
        audit.contains(&format!("revoke the API token {id}")),
        "{audit}"
    );

    // Five failures from one address are free; the sixth makes it wait,
    // and another address is not held up.
    let mut guesser = Api::new(&world, "guesser");
    guesser.from = Some(world.addr(60, 0));
    for _ in 0..6 {
        assert_eq!(guesser.sign_in("vic", "wrong password!").status, 401);
    }
    let held = guesser.sign_in("vic", VIEWER_PW);
    assert_eq!(held.status, 429, "{held:?}");
    assert!(
        held.headers.to_lowercase().contains("retry-after: 2"),
        "{}",
        held.headers
    );
    let mut other = Api::new(&world, "other");
    other.from = Some(world.addr(61, 0));
    assert_eq!(other.sign_in("vic", VIEWER_PW).status, 200);
}
