//! The cluster PKI from the command line: `branchline pki` and configs
//! holding the `[tls]` section it prints.

use std::path::Path;

use super::{World, path_arg, run};

/// Runs `branchline pki ARGS`; returns its stdout, panics on failure.
pub fn pki(args: &[&str]) -> String {
    let mut all = vec!["pki".to_owned()];
    all.extend(args.iter().map(|a| a.to_string()));
    let out = run(&all);
    assert!(
        out.status.success(),
        "pki {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Issues a certificate and writes a config file holding the `[tls]`
/// section `pki issue` printed.
pub fn config_with_certificate(world: &World, ca: &Path, role: &str, name: &str) -> String {
    let tls = pki(&[
        "issue",
        "--ca",
        &path_arg(ca),
        "--role",
        role,
        "--name",
        name,
    ]);
    let path = world.path(&format!("{name}.toml"));
    std::fs::write(&path, tls).unwrap();
    path_arg(&path)
}
