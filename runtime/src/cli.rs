//! The command line: every subcommand and flag, with `--help` on each.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Branchline: peer-to-peer distribution of large packages to branch offices.
#[derive(Debug, Parser)]
#[command(name = "branchline", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: registry of clients and contents, control endpoint,
    /// optional embedded file storage.
    Server(ServerArgs),
    /// Run a client: piece cache, downloads, serving peers.
    Client(ClientArgs),
    /// Hash a package and publish it on the server (run where the server
    /// runs). Prints the content id as the last line of stdout.
    Publish(PublishArgs),
    /// Remove a content from the server and, at their next heartbeat, from
    /// every client's cache (run where the server runs).
    Purge(PurgeArgs),
    /// Download a content through the local client and write it to a file.
    Fetch(FetchArgs),
    /// Show a node's status.
    Status(StatusArgs),
    /// The office topology on the server: import or export the spreadsheet
    /// (CSV), or show the office tree with its clients.
    Topology(TopologyArgs),
    /// The actor debug shell: attach to a running node and look at (or
    /// kill) its actors. Interactive, or one command with -c.
    Shell(ShellArgs),
    /// Run a server, file storage and 8 clients in four offices in this
    /// process, spread a generated package to all of them and show what
    /// crossed each office link.
    Demo(DemoArgs),
    /// The cluster PKI: make the CA, issue node certificates. Nodes given
    /// them (`[tls]` in their config) accept only peers the CA signed.
    Pki(PkiArgs),
    /// Join tokens: what a new client needs to join the cluster
    /// (`branchline client --join TOKEN`). Run where the server runs.
    Token(TokenArgs),
    /// Signed URLs of the embedded file storage, for someone outside the
    /// cluster (no certificate) to fetch a published file until they
    /// expire. Run where the server runs.
    Url(UrlArgs),
    /// The console's accounts and the audit log of every change. Run
    /// where the server runs.
    Admin(AdminArgs),
    /// Run the server's health check: clients heard from, devices refused
    /// for their protocol version, disk. Exits 1 if a check fails. Run
    /// where the server runs.
    Health(HealthArgs),
}

/// `branchline admin`.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: AdminAction,
}

/// `branchline admin` subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminAction {
    /// Make a console account. Its password is read from standard input
    /// with --password-stdin (one line); otherwise one is made and printed
    /// once, as the last line of stdout.
    AddUser {
        /// The server.
        #[command(flatten)]
        node: NodeLocator,
        /// The account's name: letters, digits, dots, dashes, underscores.
        name: String,
        /// admin (reads and changes) or viewer (reads only).
        #[arg(long, value_parser = |s: &str| s.parse::<branchline_actors::wire::Role>())]
        role: branchline_actors::wire::Role,
        /// Read the password from standard input instead of making one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Make an API token, for a script or a remote command line to call
    /// the console's API with. Prints the token once, as the last line of
    /// stdout.
    TokenCreate {
        /// The server.
        #[command(flatten)]
        node: NodeLocator,
        /// What it is for: letters, digits, dots, dashes, underscores.
        name: String,
        /// admin (reads and changes) or viewer (reads only).
        #[arg(long, value_parser = |s: &str| s.parse::<branchline_actors::wire::Role>())]
        role: branchline_actors::wire::Role,
        /// How long it works: a number with s, m, h or d (at most 365d).
        #[arg(long, default_value = "90d", value_parser = parse_lifetime)]
        expires: std::time::Duration,
    },
    /// List the API tokens (never their secrets).
    Tokens {
        /// The server.
        #[command(flatten)]
        node: NodeLocator,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API token by its id (as `admin tokens` lists it).
    TokenRevoke {
        /// The server.
        #[command(flatten)]
        node: NodeLocator,
        /// The token's id.
        id: String,
    },
    /// List the console's accounts.
    Users {
        /// The server.
        #[command(flatten)]
        node: NodeLocator,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the newest entries of the audit log, oldest first.
    Audit {
        /// The server.
        #[command(flatten)]
        node: NodeLocator,
        /// How many.
        #[arg(long, default_value_t = 50)]
        last: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `branchline url`.
#[derive(Debug, Args)]
pub struct UrlArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: UrlAction,
}

/// `branchline url` subcommands.
#[derive(Debug, Subcommand)]
pub enum UrlAction {
    /// Sign the URL (or path) of a published file of the file storage.
    /// Prints the signed URL as the last line of stdout.
    Sign {
        /// The server.
        #[command(flatten)]
        node: NodeLocator,
        /// The file's URL in the file storage, or its path (/pkg.bin).
        url: String,
        /// How long it works: a number with s, m, h or d (at most 7d).
        #[arg(long, default_value = "1h", value_parser = parse_lifetime)]
        expires: std::time::Duration,
    },
}

/// `branchline token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: TokenAction,
}

/// `branchline token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Make a join token; any number of clients may join with it until
    /// it expires. Prints the token as the last line of stdout.
    Create {
        /// The server.
        #[command(flatten)]
        node: NodeLocator,
        /// How long it works: a number with s, m, h or d (e.g. 30m, 24h, 7d).
        #[arg(long, default_value = "24h", value_parser = parse_lifetime)]
        expires: std::time::Duration,
    },
}

/// Parses a lifetime like `90s`, `30m`, `24h` or `7d`.
pub fn parse_lifetime(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("`{text}` is not a lifetime: give a number with s, m, h or d, e.g. 24h");
    // The unit is the last character, whatever its width (found by
    // fuzzing: splitting at the last byte panicked inside a character).
    let cut = text.char_indices().last().map_or(0, |(at, _)| at);
    let (number, unit) = text.split_at(cut);
    let seconds: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    n.checked_mul(seconds)
        .filter(|&s| s > 0)
        .map(std::time::Duration::from_secs)
        .ok_or_else(bad)
}

/// `branchline pki`.
#[derive(Debug, Args)]
pub struct PkiArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: PkiAction,
}

/// `branchline pki` subcommands.
#[derive(Debug, Subcommand)]
pub enum PkiAction {
    /// Make the cluster CA in DIR: ca.pem (give it to every node) and
    /// ca.key (keep it there, mode 0600). Refuses a DIR with a CA.
    Init {
        /// The CA directory (made, mode 0700).
        dir: PathBuf,
    },
    /// Issue a node certificate from the CA: NAME.pem and NAME.key (mode
    /// 0600) in --out. Put them, with ca.pem, in the node's `[tls]`.
    Issue {
        /// The CA directory.
        #[arg(long, value_name = "DIR")]
        ca: PathBuf,
        /// The node's role: the server or a client.
        #[arg(long, value_enum)]
        role: crate::pki::Role,
        /// The node's name (letters, digits, `-`, `_`, `.`).
        #[arg(long)]
        name: String,
        /// Where to write the files (default: the CA directory).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Revoke the certificate issued to NAME: writes the CA's revocation
    /// list (crl.pem in the CA directory) anew. Give it to every node as
    /// `tls.crl`; nodes read it at start.
    Revoke {
        /// The CA directory.
        #[arg(long, value_name = "DIR")]
        ca: PathBuf,
        /// The node's name, as issued.
        #[arg(long)]
        name: String,
    },
}

/// `branchline server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Server config file (TOML); flags override it.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Control endpoint address (QUIC/UDP), e.g. 0.0.0.0:34323.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Data directory (metadata and admin socket).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Serve this directory over HTTP as file storage.
    #[arg(long, value_name = "DIR")]
    pub file_storage: Option<PathBuf>,
    /// Address of the file storage (TCP), e.g. 127.0.0.1:34380.
    #[arg(long, value_name = "ADDR")]
    pub file_storage_listen: Option<SocketAddr>,
}

/// `branchline client`.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Client config file (TOML); flags override it.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Foreground endpoint address (QUIC/UDP), e.g. 127.10.1.11:34760.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// The server's control endpoint, e.g. 127.10.1.1:34323.
    #[arg(long)]
    pub server: Option<SocketAddr>,
    /// Data directory (piece cache and admin socket).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The address peers reach this client at, if not --listen.
    #[arg(long)]
    pub advertise: Option<SocketAddr>,
    /// Background endpoint address (QUIC/UDP) for transfers between
    /// offices; default: --listen's address with port 34750.
    #[arg(long)]
    pub background_listen: Option<SocketAddr>,
    /// A name for people.
    #[arg(long)]
    pub name: Option<String>,
    /// Join the cluster with this token at the first start (the server
    /// prints one; `branchline token create` makes more). Not needed once
    /// joined.
    #[arg(long, value_name = "TOKEN")]
    pub join: Option<String>,
}

/// Where a tool finds its node: a config file or a data directory.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct NodeLocator {
    /// The node's config file.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The node's data directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// `branchline publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The server.
    #[command(flatten)]
    pub node: NodeLocator,
    /// The package file.
    pub file: PathBuf,
    /// A CDN clients fetch the bytes from when no peer has them
    /// (http(s):// URL). CDNs are tried first, in the order given; a client
    /// off the corporate network is given only these.
    #[arg(long = "cdn", value_name = "URL")]
    pub cdns: Vec<String>,
    /// File storage clients fetch the bytes from when no peer has them and
    /// no CDN answers (http(s):// or file:// URL), in the order given.
    #[arg(long = "file-storage", value_name = "URL")]
    pub file_storages: Vec<String>,
    /// An origin whose kind follows from its URL: file:// URLs and URLs of
    /// the server's own file storage are file storage, others a CDN.
    /// Default (no origin given): the embedded file storage if the file is
    /// inside it, else file://.
    #[arg(long = "origin", value_name = "URL")]
    pub origins: Vec<String>,
    /// Piece size in bytes (16 KiB to 16 MiB).
    #[arg(long, default_value_t = branchline_storage::content::DEFAULT_PIECE_SIZE)]
    pub piece_size: u32,
    /// The content's name; the file name by default.
    #[arg(long)]
    pub name: Option<String>,
    /// Never shared by peers: every client fetches it from the origins
    /// only, and no peer serves it (for packages that must not be copied
    /// between devices). The server signs this with the content.
    #[arg(long)]
    pub confidential: bool,
}

/// `branchline fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// The local client.
    #[command(flatten)]
    pub node: NodeLocator,
    /// The content id (64 hex characters, as `publish` printed it).
    pub content: String,
    /// Where to write the package. Without it the package is only
    /// downloaded into the cache (pre-staged); `fetch --out` writes it later
    /// without downloading again.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace the file at --out if there is one (without it, an existing
    /// file is refused and left untouched).
    #[arg(long, requires = "out")]
    pub force: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// `branchline purge`.
#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// The server.
    #[command(flatten)]
    pub node: NodeLocator,
    /// The content id.
    pub content: String,
}

/// `branchline health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The server.
    #[command(flatten)]
    pub node: NodeLocator,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `branchline status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The node.
    #[command(flatten)]
    pub node: NodeLocator,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `branchline shell`.
#[derive(Debug, Args)]
pub struct ShellArgs {
    /// The node's config file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The node's data directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Run this one command and exit, e.g. -c "actors" (no terminal needed).
    #[arg(short = 'c', long = "command", value_name = "COMMAND")]
    pub command: Option<String>,
    /// With -c: print JSON.
    #[arg(long, requires = "command")]
    pub json: bool,
}

/// `branchline topology`.
#[derive(Debug, Args)]
pub struct TopologyArgs {
    /// What to do with the topology.
    #[command(subcommand)]
    pub action: TopologyAction,
}

/// `branchline topology` subcommands.
#[derive(Debug, Subcommand)]
pub enum TopologyAction {
    /// Replace the topology with a spreadsheet (CSV, UTF-8). All or
    /// nothing: every problem is reported as `line N: ...` and nothing
    /// changes. Columns: office, parent, type, subnets, and optionally
    /// preferred_rvps, rvp_count, origin_direct, wan_rate_mbit, automatic,
    /// and the link from the parent: bg_yielding, bg_target_delay_ms,
    /// wan_min_rate_mbit, bg_pause, bg_pause_delay_ms, bg_pause_after_secs,
    /// bg_resume_after_secs.
    Import {
        /// The server.
        #[command(flatten)]
        node: NodeLocator,
        /// The spreadsheet.
        file: PathBuf,
    },
    /// Say what importing a spreadsheet would change (offices added,
    /// removed and changed; clients that would move), changing nothing;
    /// problems as `import` gives them.
    Preview {
        /// The server.
        #[command(flatten)]
        node: NodeLocator,
        /// The spreadsheet.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write the topology as a spreadsheet, automatic offices included.
    Export {
        /// The server.
        #[command(flatten)]
        node: NodeLocator,
        /// Where to write it; standard output if not given.
        file: Option<PathBuf>,
    },
    /// Print the office tree with each office's clients and RVPs.
    Show {
        /// The server.
        #[command(flatten)]
        node: NodeLocator,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `branchline demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of clients, spread over the four offices (at least one each).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(4..=80))]
    pub clients: u8,
    /// Package size in MiB.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub size_mib: u64,
    /// Work directory (default: a new temporary directory, removed at the end).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The top office's loopback /24, as its first three octets; the other
    /// offices take the next three /24s.
    #[arg(long, default_value = "127.10.1")]
    pub subnet: String,
    /// Seconds to keep every node running after the report, to look at
    /// the console.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub linger: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demos_linger_takes_0_to_a_day_and_names_a_bad_value() {
        let parse = |v: &str| Cli::try_parse_from(["branchline", "demo", "--linger", v]);
        let Command::Demo(demo) = parse("600").unwrap().command else {
            panic!("not the demo");
        };
        assert_eq!(demo.linger, 600);
        for bad in ["86401", "ten"] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(
                err.contains(&format!("'{bad}' for '--linger <LINGER>'")),
                "{err}"
            );
        }
        let err = parse("-1").unwrap_err().to_string();
        assert!(err.contains("unexpected argument '-1'"), "{err}");
    }

    #[test]
    fn lifetimes_parse_and_anything_else_is_refused_without_a_panic() {
        assert_eq!(
            parse_lifetime("90s"),
            Ok(std::time::Duration::from_secs(90))
        );
        assert_eq!(
            parse_lifetime("24h"),
            Ok(std::time::Duration::from_secs(86_400))
        );
        assert_eq!(
            parse_lifetime("7d"),
            Ok(std::time::Duration::from_secs(604_800))
        );
        // The last: found by the text_inputs fuzz target (a panic before).
        for bad in [
            "",
            "h",
            "0h",
            "-1h",
            "1.5h",
            "soon",
            "99999999999999999999d",
            "?estess=\0\u{657}",
        ] {
            let err = parse_lifetime(bad).unwrap_err();
            assert!(err.contains("is not a lifetime"), "{bad:?}: {err}");
        }
    }
}
