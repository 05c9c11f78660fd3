//! The `branchline` binary: parses the command line and runs the command.

use std::process::ExitCode;

use clap::Parser;

use branchline::cli::{Cli, ClientArgs, Command, PkiAction, ServerArgs};
use branchline::config::{self, ClientConfig, LogSection, ServerConfig};
use branchline::node::supervisor::{ACTOR_DIED_EXIT, ActorDied};
use branchline::node::{self, Stop};
use branchline::{commands, demo, logging};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(
        cli.command,
        Command::Server(_) | Command::Client(_) | Command::Demo(_)
    ) {
        quiet_on_closed_pipe();
    }
    // reqwest takes the process-wide rustls provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if matches!(
        cli.command,
        Command::Server(_) | Command::Client(_) | Command::Demo(_)
    ) {
        // Every panic is handled where it happens or ends the node.
        branchline_actors::panics::install_hook();
        few_malloc_arenas();
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            match e.downcast_ref::<ActorDied>() {
                Some(_) => ExitCode::from(ACTOR_DIED_EXIT),
                None => ExitCode::FAILURE,
            }
        }
    }
}

/// A tool printing into a pipe that closed (`branchline status | head`)
/// ends quietly, as Unix tools do, instead of panicking in `println!`.
/// Nodes keep Rust's default (SIGPIPE ignored), so a peer that closes a
/// socket can never kill one.
#[allow(unsafe_code)]
fn quiet_on_closed_pipe() {
    // SAFETY: called at the start of `main`, before any thread starts; it
    // only puts one signal's disposition back to the system default.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Most malloc arenas a node keeps (glibc makes up to 8 per core, one per
/// thread that meets a locked one). Piece buffers are a megabyte each and
/// pass through the actors', the blocking pool's and the origin fetcher's
/// threads; with an arena per thread, glibc kept the freed megabytes of
/// each: a client that fetched 1 GiB from the origin and served it peaked
/// at 91 MB, 35 MB with one arena (`BENCHMARKS.md`).
const MALLOC_ARENAS: libc::c_int = 2;

#[allow(unsafe_code)]
fn few_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called at the start of `main`, before any thread starts;
    // mallopt only sets an allocator parameter (0 means it was refused,
    // which leaves glibc's default and changes nothing else).
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Server(args) => {
            let config = server_config(args)?;
            logging::init(&config.log);
            node::server::run(&config, Stop::Signal)
        }
        Command::Client(args) => {
            let config = client_config(args)?;
            logging::init(&config.log);
            node::client::run(config, Stop::Signal)
        }
        Command::Publish(args) => {
            logging::init(&quiet());
            commands::publish::run(&args)
        }
        Command::Purge(args) => {
            logging::init(&quiet());
            commands::purge::run(&args)
        }
        Command::Fetch(args) => {
            logging::init(&quiet());
            commands::fetch::run(&args)
        }
        Command::Status(args) => {
            logging::init(&quiet());
            commands::status::run(&args)
        }
        Command::Shell(args) => {
            logging::init(&quiet());
            commands::shell::run(&args)
        }
        Command::Topology(args) => {
            logging::init(&quiet());
            commands::topology::run(&args)
        }
        Command::Demo(args) => demo::run(&args),
        Command::Pki(args) => pki(args.action),
        Command::Token(args) => {
            logging::init(&quiet());
            commands::token::run(&args)
        }
        Command::Url(args) => {
            logging::init(&quiet());
            commands::token::sign_url(&args)
        }
        Command::Admin(args) => {
            logging::init(&quiet());
            commands::admin::run(&args)
        }
        Command::Health(args) => {
            logging::init(&quiet());
            commands::health::run(&args)
        }
    }
}

fn pki(action: PkiAction) -> anyhow::Result<()> {
    match action {
        PkiAction::Init { dir } => {
            let ca = branchline::pki::init(&dir)?;
            println!("cluster CA made; give every node {}", ca.display());
            println!(
                "keep {} where it is: whoever has it can issue node certificates",
                dir.join(branchline::pki::CA_KEY).display()
            );
        }
        PkiAction::Issue {
            ca,
            role,
            name,
            out,
        } => {
            let out = out.unwrap_or_else(|| ca.clone());
            let (cert, key) = branchline::pki::issue(&ca, role, &name, &out)?;
            // The node's `[tls]` section, paths as TOML strings.
            let toml_path = |p: &std::path::Path| {
                toml::Value::String(p.to_string_lossy().into_owned()).to_string()
            };
            println!("[tls]");
            println!("ca = {}", toml_path(&ca.join(branchline::pki::CA_CERT)));
            println!("cert = {}", toml_path(&cert));
            println!("key = {}", toml_path(&key));
            let crl = ca.join(branchline::pki::CRL);
            if crl.exists() {
                println!("crl = {}", toml_path(&crl));
            }
        }
        PkiAction::Revoke { ca, name } => {
            let crl = branchline::pki::revoke(&ca, &name)?;
            println!(
                "{name} revoked in {}; the server named it as tls.crl takes it within seconds, hands it to every client at its next heartbeat, and every node closes its connections to {name}",
                crl.display()
            );
        }
    }
    Ok(())
}

fn quiet() -> LogSection {
    LogSection {
        level: "warn".into(),
        ..LogSection::default()
    }
}

fn server_config(args: ServerArgs) -> anyhow::Result<ServerConfig> {
    let mut config = match &args.config {
        Some(path) => config::load(path)?,
        None => ServerConfig::empty(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = Some(dir);
    }
    if let Some(dir) = args.file_storage {
        config.file_storage.enabled = true;
        config.file_storage.dir = Some(dir);
    }
    if let Some(listen) = args.file_storage_listen {
        config.file_storage.listen = listen;
    }
    Ok(config)
}

fn client_config(args: ClientArgs) -> anyhow::Result<ClientConfig> {
    let mut config = match &args.config {
        Some(path) => config::load(path)?,
        None => ClientConfig::empty(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(server) = args.server {
        config.server = Some(server);
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = Some(dir);
    }
    if let Some(advertise) = args.advertise {
        config.advertise = Some(advertise);
    }
    if let Some(background) = args.background_listen {
        config.background_listen = Some(background);
    }
    if let Some(name) = args.name {
        config.name = Some(name);
    }
    if let Some(join) = args.join {
        config.join = Some(join);
    }
    Ok(config)
}
