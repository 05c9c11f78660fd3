//! A client of the console's HTTPS API for the tests: `curl`, checking the
//! server's certificate against the cluster CA (as a browser that
//! imported `ca.pem` would), keeping the session cookie in a jar and
//! sending the CSRF token or an API token as it is told.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use super::World;

/// `branchline admin ARGS` on the world's server, with `stdin` on its
/// standard input: whether it succeeded, its stdout and its stderr.
pub fn admin_with_stdin(
    world: &World,
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String, String) {
    let mut child = Command::new(super::bin())
        .arg("admin")
        .args(args)
        .args(["--data-dir", &super::path_arg(&world.path("server"))])
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Makes the account `name` with `role` and `password` on the world's
/// server, as an administrator does on its host.
pub fn add_account(world: &World, name: &str, role: &str, password: &str) {
    let args = ["add-user", name, "--role", role, "--password-stdin"];
    let (ok, _, err) = admin_with_stdin(world, &args, Some(password));
    assert!(ok, "{err}");
}

/// The console's port (the default).
pub const CONSOLE_PORT: u16 = 34390;

/// One caller of the API: a cookie jar of its own, and what it sends.
pub struct Api {
    base: String,
    ca: PathBuf,
    jar: PathBuf,
    /// Sent as `X-CSRF-Token`.
    pub csrf: Option<String>,
    /// Sent as `Authorization: Bearer`.
    pub token: Option<String>,
    /// The address requests come from.
    pub from: Option<SocketAddr>,
}

/// An answer: the status and the body (JSON if it parses, else a string).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: String,
}

impl Api {
    /// A caller of the world's server's console, named `who` (its jar).
    pub fn new(world: &World, who: &str) -> Self {
        let addr = SocketAddr::new(world.server_addr().ip(), CONSOLE_PORT);
        Api {
            base: format!("https://{addr}"),
            ca: world.path("server").join("ca").join("ca.pem"),
            jar: world.path(&format!("{who}.cookies")),
            csrf: None,
            token: None,
            from: None,
        }
    }

    /// `method path` with `body` of `content_type`.
    pub fn call(&self, method: &str, path: &str, body: Option<(&str, &str)>) -> Answer {
        let headers = self.jar.with_extension("headers");
        let mut command = Command::new("curl");
        command
            .args(["-s", "--max-time", "20", "-X", method, "--cacert"])
            .arg(&self.ca)
            .arg("-b")
            .arg(&self.jar)
            .arg("-c")
            .arg(&self.jar)
            .arg("-D")
            .arg(&headers)
            .args(["-w", "\n%{http_code}"]);
        if let Some(csrf) = &self.csrf {
            command.args(["-H", &format!("X-CSRF-Token: {csrf}")]);
        }
        if let Some(token) = &self.token {
            command.args(["-H", &format!("Authorization: Bearer {token}")]);
        }
        if let Some(from) = self.from {
            command.args(["--interface", &from.ip().to_string()]);
        }
        if let Some((content_type, text)) = body {
            command.args([
                "-H",
                &format!("Content-Type: {content_type}"),
                "--data-binary",
                text,
            ]);
        }
        let out = command
            .arg(format!("{}{path}", self.base))
            .output()
            .expect("curl runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        Answer {
            status: status.trim().parse().unwrap_or(0),
            body: serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned())),
            headers: std::fs::read_to_string(&headers).unwrap_or_default(),
        }
    }

    pub fn get(&self, path: &str) -> Answer {
        self.call("GET", path, None)
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Answer {
        self.call("POST", path, Some(("application/json", &body.to_string())))
    }

    pub fn delete(&self, path: &str) -> Answer {
        self.call("DELETE", path, None)
    }

    /// Signs in as `name`; keeps the CSRF token. The answer.
    pub fn sign_in(&mut self, name: &str, password: &str) -> Answer {
        let answer = self.post_json(
            "/api/v1/session",
            &serde_json::json!({ "name": name, "password": password }),
        );
        if answer.status == 200 {
            self.csrf = answer.body["csrf_token"].as_str().map(str::to_owned);
        }
        answer
    }
}
