//! The debug shell under a real terminal, and the systemd units.
//!
//! - `branchline shell` runs in a `tmux` pane attached to a live client; the
//!   test types `help` and `actors` with `send-keys` and reads the screen
//!   with `capture-pane`.
//! - `systemd-analyze verify` accepts both unit files (with `ExecStart`
//!   pointed at the binary under test).
//!
//! `tools/run-tests` installs tmux and systemd when they are missing.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{World, bin, path_arg, wait_until};

/// A tmux session, killed when dropped.
struct Tmux(String);

impl Tmux {
    fn keys(&self, keys: &str) {
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.0, keys, "Enter"])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.0, "-S", "-200"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

#[test]
fn the_interactive_shell_works_in_a_terminal() {
    let world = World::new(37, 1);
    let _server = world.server();
    let client = world.client(11);
    world.wait_registered(&client);
    let session = format!("branchline-test-{}", std::process::id());
    let shell = format!(
        "{} shell --data-dir {}",
        path_arg(&bin()),
        path_arg(&client.data_dir)
    );
    let status = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-x",
            "200",
            "-y",
            "60",
            "-s",
            &session,
            &shell,
        ])
        .env("TERM", "xterm")
        .status()
        .expect("tmux on PATH (tools/run-tests installs it)");
    assert!(status.success());
    let tmux = Tmux(session);
    wait_until("the shell's prompt", Duration::from_secs(10), || {
        // capture-pane trims the prompt's trailing space.
        tmux.screen().contains("branchline>")
    });
    tmux.keys("help");
    wait_until("help", Duration::from_secs(10), || {
        tmux.screen().contains("kill ACTOR [stop|panic|")
    });
    tmux.keys("actors");
    wait_until("the actors table", Duration::from_secs(10), || {
        let screen = tmux.screen();
        screen.contains("actors (8):") && screen.contains("background-transport")
    });
    tmux.keys("quit");
    wait_until("the shell to leave", Duration::from_secs(10), || {
        !Command::new("tmux")
            .args(["has-session", "-t", &tmux.0])
            .status()
            .unwrap()
            .success()
    });
    let history = std::fs::read_to_string(client.data_dir.join("shell_history")).unwrap();
    assert!(history.contains("actors"), "history is kept: {history}");
}

#[test]
fn systemd_accepts_both_units() {
    let world = World::new(37, 2);
    let units = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/systemd");
    for unit in ["branchline-server.service", "branchline-client.service"] {
        let text = std::fs::read_to_string(format!("{units}/{unit}")).unwrap();
        assert!(text.contains("Restart=always") && text.contains("User=branchline"));
        assert!(text.contains("ProtectSystem=strict") && text.contains("NoNewPrivileges=yes"));
        let copy = world.path(unit);
        std::fs::write(
            &copy,
            text.replace("/usr/local/bin/branchline", &path_arg(&bin())),
        )
        .unwrap();
        let out = Command::new("systemd-analyze")
            .args(["verify", &path_arg(&copy)])
            .output()
            .expect("systemd-analyze on PATH (tools/run-tests installs it)");
        assert!(
            out.status.success(),
            "{unit}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
