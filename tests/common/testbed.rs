//! Running `tools/testbed/testbed.py` from a test: the delay program built
//! in this profile, the branchline binary under test, results read back
//! from the JSON the testbed writes.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The delay program, built in this profile next to the branchline binary.
fn wan_delay() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "-p", "branchline-tools", "--bin", "wan-delay"]);
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    assert!(build.status().unwrap().success(), "building wan-delay");
    super::bin().with_file_name("wan-delay")
}

/// Runs `testbed.py ARGS...` and returns the results file it wrote.
pub fn run(args: &[&str]) -> Value {
    let results = tempfile::tempdir().unwrap();
    let out = Command::new("python3")
        .arg(repo().join("tools/testbed/testbed.py"))
        .args(args)
        .arg("--bin")
        .arg(super::bin())
        .arg("--wan-delay")
        .arg(wan_delay())
        .arg("--results")
        .arg(results.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}{stderr}");
    assert!(out.status.success(), "testbed failed: {stderr}");
    let json = std::fs::read_dir(results.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("a results file");
    serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap()
}

/// Runs `testbed.py ARGS...` expecting a refusal: its exit code and stderr.
pub fn refused(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new("python3")
        .arg(repo().join("tools/testbed/testbed.py"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Runs the delay program with `args`, expecting a refusal: its exit code
/// and stderr.
pub fn wan_delay_refused(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(wan_delay()).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// True when no namespace the testbed makes is left.
pub fn nothing_left() -> bool {
    let left = Command::new("ip").args(["netns", "list"]).output().unwrap();
    !String::from_utf8_lossy(&left.stdout).contains("bltb-")
}
