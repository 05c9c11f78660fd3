//! `fetch --out` never clobbers a user's file and writes where the user
//! asked, as the user sees it: an existing file is refused unless
//! `--force`, `PATH.partial` is created exclusively and never through a
//! symlink, a relative path is the command's, and a node in a sandbox of
//! its own (a private mount namespace, as a hardened service unit gives
//! it) still writes into the user's file, because the command opens it
//! and hands it over.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::origin::{OriginOptions, TestOrigin};
use common::{
    Node, World, assert_one_line_error, bin, make_package, path_arg, run_err, sha256_file,
    try_status, wait_until,
};

const SIZE: usize = 3 * 1024 * 1024 + 5;

/// A server, an origin, one registered client and a published package.
struct Setup {
    world: World,
    content: String,
    sha: String,
    client: Node,
    _server: Node,
    _origin: TestOrigin,
}

fn setup(c: u8) -> Setup {
    let world = World::new(31, c);
    let package = world.path("package.bin");
    let sha = make_package(&package, SIZE, u64::from(c));
    let origin = TestOrigin::start(world.addr(2, 0), package.clone(), OriginOptions::default());
    let server = world.server();
    let client = world.client(11);
    world.wait_registered(&client);
    let content = world.publish(&package, &[origin.url("package.bin")]);
    Setup {
        world,
        content,
        sha,
        client,
        _server: server,
        _origin: origin,
    }
}

fn fetch(s: &Setup, out: &str, extra: &[&str]) -> (bool, String) {
    let data_dir = path_arg(&s.client.data_dir);
    let mut args = vec![
        "fetch",
        "--quiet",
        "--data-dir",
        &data_dir,
        &s.content,
        "--out",
        out,
    ];
    args.extend(extra);
    run_err(&args)
}

#[test]
fn an_existing_file_is_refused_without_force_and_replaced_with_it() {
    let s = setup(25);
    let out = s.world.path("mine.bin");
    std::fs::write(&out, b"precious").unwrap();
    let (ok, stderr) = fetch(&s, &path_arg(&out), &[]);
    assert!(!ok);
    assert_one_line_error(
        &stderr,
        &[&format!(
            "{} exists; refusing to replace it (add --force to replace it)",
            out.display()
        )],
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    assert!(!s.world.path("mine.bin.partial").exists());
    assert_eq!(
        s.client.status()["contents"].as_array().unwrap().len(),
        0,
        "refused before anything was fetched"
    );

    let (ok, stderr) = fetch(&s, &path_arg(&out), &["--force"]);
    assert!(ok, "{stderr}");
    assert_eq!(sha256_file(&out), s.sha);
    assert!(!s.world.path("mine.bin.partial").exists());

    // --force without --out is a usage error.
    let data_dir = path_arg(&s.client.data_dir);
    let (ok, stderr) = run_err(&["fetch", "--data-dir", &data_dir, &s.content, "--force"]);
    assert!(!ok);
    assert!(stderr.contains("--out"), "{stderr}");
}

#[test]
fn a_partial_file_or_symlink_in_the_way_is_never_followed_or_overwritten() {
    let s = setup(26);
    let victim = s.world.path("victim");
    std::fs::write(&victim, b"keep me").unwrap();
    let out = s.world.path("pkg.bin");
    let partial = s.world.path("pkg.bin.partial");
    std::os::unix::fs::symlink(&victim, &partial).unwrap();
    let (ok, stderr) = fetch(&s, &path_arg(&out), &[]);
    assert!(!ok);
    assert_one_line_error(
        &stderr,
        &[
            &format!("{} exists (left by an interrupted fetch", partial.display()),
            "add --force",
        ],
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    assert!(std::fs::symlink_metadata(&partial).unwrap().is_symlink());

    // --force removes the link (never what it points to) and writes.
    let (ok, stderr) = fetch(&s, &path_arg(&out), &["--force"]);
    assert!(ok, "{stderr}");
    assert_eq!(sha256_file(&out), s.sha);
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    assert!(std::fs::symlink_metadata(&partial).is_err());

    // A directory where the user cannot create a file: named, nothing left.
    let (ok, stderr) = fetch(&s, "/proc/pkg.bin", &[]);
    assert!(!ok);
    assert_one_line_error(&stderr, &["cannot create /proc/pkg.bin.partial"]);
    // A directory that does not exist, and a directory given as the file.
    let (ok, stderr) = fetch(&s, &path_arg(&s.world.path("nowhere/pkg.bin")), &[]);
    assert!(!ok);
    assert_one_line_error(&stderr, &["the directory of", "does not exist"]);
    let (ok, stderr) = fetch(&s, &path_arg(s.world.dir.path()), &[]);
    assert!(!ok);
    assert_one_line_error(&stderr, &["is a directory; give the path of a file"]);
}

#[test]
fn a_relative_out_is_resolved_by_the_command_not_by_the_node() {
    let s = setup(27);
    let here = s.world.path("here");
    std::fs::create_dir(&here).unwrap();
    let out = Command::new(bin())
        .current_dir(&here)
        .args([
            "fetch",
            "--quiet",
            "--data-dir",
            &path_arg(&s.client.data_dir),
            &s.content,
            "--out",
            "pkg.bin",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sha256_file(&here.join("pkg.bin")), s.sha);
}

/// The client runs in a mount namespace of its own in which the user's
/// output directory is hidden under an empty tmpfs, as a hardened service
/// unit (`PrivateTmp=`, `ProtectHome=`) hides directories from the node.
/// Writing by path, the node would put the file where the user never sees
/// it and report success; it writes into the file the command opened.
#[test]
fn a_node_in_a_sandbox_of_its_own_writes_the_file_the_user_sees() {
    let world = World::new(31, 28);
    let package = world.path("package.bin");
    let sha = make_package(&package, SIZE, 28);
    let origin = TestOrigin::start(world.addr(2, 0), package.clone(), OriginOptions::default());
    let _server = world.server();
    let hidden = world.path("users-files");
    std::fs::create_dir(&hidden).unwrap();
    let data_dir = world.path("client-11");
    let log = world.path("client-11.log");
    let script = format!(
        "mount -t tmpfs sandbox {hidden} && exec {bin} client --data-dir {data} --listen {listen} --server {server} --name client-11 --join {token}",
        hidden = path_arg(&hidden),
        bin = path_arg(&bin()),
        data = path_arg(&data_dir),
        listen = world.addr(11, 34760),
        server = world.server_addr(),
        token = world.join_token().unwrap(),
    );
    let child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(world.path("client-11.err")).unwrap())
        .spawn()
        .unwrap();
    let client = Node {
        name: "client-11".into(),
        child,
        data_dir,
        log,
    };
    wait_until(
        "the sandboxed client answers",
        Duration::from_secs(20),
        || try_status(&client.data_dir).is_some(),
    );
    world.wait_registered(&client);
    let content = world.publish(&package, &[origin.url("package.bin")]);
    let out = hidden.join("pkg.bin");
    let (ok, stderr) = run_err(&[
        "fetch",
        "--quiet",
        "--data-dir",
        &path_arg(&client.data_dir),
        &content,
        "--out",
        &path_arg(&out),
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(sha256_file(&out), sha, "the user's file is the package");
}
