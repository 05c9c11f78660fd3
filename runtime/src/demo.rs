//! `branchline demo`: one process runs a server with embedded file storage
//! and N clients in four offices (a top office, two branches, and a WiFi
//! office under one branch), each office on its own loopback /24 and each
//! node its own actix System on its own address, exactly as they run as
//! separate processes. It imports the topology, publishes a generated
//! package, fetches it on every client at once with live progress, checks
//! every copy's SHA-256 and shows what crossed each office link.

use std::io::{BufWriter, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use branchline_actors::wire::{
    AdminReply, AdminRequest, ClientStatus, ServerStatus, TransferProgress,
};
use branchline_storage::content::DEFAULT_PIECE_SIZE;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::admin::{connect, socket_path};
use crate::cli::DemoArgs;
use crate::commands::{fetch, mib, publish};
use crate::config::{self, ClientConfig, LogSection, ServerConfig};
use crate::node::{self, Stop};

/// A node running on its own thread.
struct NodeThread {
    name: String,
    system: actix_rt::System,
    thread: JoinHandle<anyhow::Result<()>>,
}

impl NodeThread {
    fn spawn(
        name: String,
        run: impl FnOnce(Stop) -> anyhow::Result<()> + Send + 'static,
    ) -> anyhow::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || run(Stop::Handle(tx)))?;
        match rx.recv() {
            Ok(system) => Ok(NodeThread {
                name,
                system,
                thread,
            }),
            Err(_) => match thread.join() {
                Ok(Err(e)) => Err(e.context(format!("{name} failed to start"))),
                _ => anyhow::bail!("{name} failed to start"),
            },
        }
    }

    fn stop(self) -> anyhow::Result<()> {
        self.system.stop();
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("{} panicked", self.name))?
    }
}

/// The demo's offices: name, parent, type; office `i` is on the /24 `i`
/// after the top office's.
const OFFICES: [(&str, Option<&str>, &str); 4] = [
    ("hq", None, "Default"),
    ("branch-a", Some("hq"), "Default"),
    ("a-wifi", Some("branch-a"), "WiFi"),
    ("branch-b", Some("hq"), "Default"),
];

/// One client of the demo.
struct DemoClient {
    name: String,
    office: usize,
    socket: PathBuf,
    out: PathBuf,
}

struct Demo {
    work: PathBuf,
    subnet: [u8; 3],
    nodes: Vec<NodeThread>,
}

impl Demo {
    /// An address in office `office`'s /24.
    fn addr(&self, office: usize, host: u8, port: u16) -> SocketAddr {
        let third = self.subnet[2] + u8::try_from(office).expect("four offices");
        SocketAddr::from((
            Ipv4Addr::new(self.subnet[0], self.subnet[1], third, host),
            port,
        ))
    }

    /// The topology spreadsheet of the demo's offices.
    fn sheet(&self) -> String {
        let mut csv = String::from("office,parent,type,subnets\n");
        for (i, (name, parent, kind)) in OFFICES.iter().enumerate() {
            let net = self.addr(i, 0, 0).ip();
            csv.push_str(&format!(
                "{name},{},{kind},{net}/24\n",
                parent.unwrap_or("")
            ));
        }
        csv
    }
}

/// Runs the demo.
pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    crate::logging::init(&LogSection {
        level: "warn".into(),
        ..LogSection::default()
    });
    let subnet = parse_subnet(&args.subnet)?;
    let temp;
    let work = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            dir.clone()
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("branchline-demo-")
                .tempdir()
                .context("cannot make a work directory")?;
            temp.path().to_path_buf()
        }
    };
    let mut demo = Demo {
        work,
        subnet,
        nodes: Vec::new(),
    };
    let result = demo.play(args);
    for node in demo.nodes.drain(..) {
        if let Err(e) = node.stop() {
            eprintln!("warning: {e:#}");
        }
    }
    result
}

fn parse_subnet(text: &str) -> anyhow::Result<[u8; 3]> {
    let octets: Vec<u8> = text
        .split('.')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()
        .unwrap_or_default();
    match octets[..] {
        [127, b, c] if c <= 252 => Ok([127, b, c]),
        _ => anyhow::bail!(
            "--subnet `{text}` must be three octets of a loopback /24 with three more after it, e.g. 127.10.1"
        ),
    }
}

impl Demo {
    fn play(&mut self, args: &DemoArgs) -> anyhow::Result<()> {
        let size = args.size_mib * 1024 * 1024;
        let storage = self.work.join("storage");
        std::fs::create_dir_all(&storage)?;
        let package = storage.join("package.bin");
        println!(
            "Branchline demo: a server with its file storage and {} clients in {} offices, under mutual TLS from a cluster CA of its own",
            args.clients,
            OFFICES.len()
        );
        let sha = generate(&package, size)?;
        let rt = crate::commands::runtime()?;
        let (server_socket, file_storage) = self.start_server(&storage, &rt)?;
        let token = rt.block_on(join_token(&server_socket))?;
        let clients = self.start_clients(args.clients, &token)?;
        rt.block_on(wait_for_clients(&server_socket, clients.len()))?;

        let manifest = publish::hash_file(&package, "package.bin", DEFAULT_PIECE_SIZE, true)?;
        let origin = format!("{}/package.bin", file_storage.url(true)?);
        let content = rt.block_on(publish::publish_manifest(
            &server_socket,
            manifest.clone(),
            vec![branchline_storage::Origin {
                url: origin.clone(),
                kind: branchline_storage::OriginKind::FileStorage,
            }],
            false,
        ))?;
        println!(
            "published {} ({}, {} pieces), origin {origin}",
            content,
            mib(size),
            manifest.piece_count()
        );
        let wall = fetch_all(&rt, &clients, content, size)?;

        println!("checking SHA-256 of {} copies...", clients.len());
        let outputs: Vec<&PathBuf> = clients.iter().map(|c| &c.out).collect();
        let matching = verify_all(&outputs, &sha)?;

        let server_status = rt.block_on(server_status(&server_socket))?;
        let mut client_statuses = Vec::new();
        for c in &clients {
            client_statuses.push((c.office, rt.block_on(client_status(&c.socket))?));
        }
        report(args, size, wall, matching, &server_status, &client_statuses);
        if args.linger > 0 {
            println!(
                "every node keeps running {} s for the console (Ctrl-C ends the demo)",
                args.linger
            );
            std::thread::sleep(Duration::from_secs(args.linger));
        }
        anyhow::ensure!(
            matching == clients.len(),
            "{} of {} copies do not match the package",
            clients.len() - matching,
            clients.len()
        );
        Ok(())
    }

    /// The server with its file storage over `storage`, its offices
    /// imported (as in production, it makes its cluster CA at first start
    /// and every client joins with a token from it); its admin socket and
    /// file storage settings.
    fn start_server(
        &mut self,
        storage: &Path,
        rt: &tokio::runtime::Runtime,
    ) -> anyhow::Result<(PathBuf, config::FileStorageSection)> {
        let mut server: ServerConfig = ServerConfig::empty();
        server.data_dir = Some(self.work.join("server"));
        server.listen = self.server_addr();
        server.file_storage.enabled = true;
        server.file_storage.dir = Some(storage.to_owned());
        server.file_storage.listen = self.addr(0, 1, config::DEFAULT_FILE_STORAGE_PORT);
        server.log = LogSection {
            level: "warn".into(),
            ..LogSection::default()
        };
        let server_socket = socket_path(&self.work.join("server"));
        let file_storage = server.file_storage.clone();
        self.nodes
            .push(NodeThread::spawn("server".into(), move |stop| {
                node::server::run(&server, stop)
            })?);
        rt.block_on(wait_for_clients(&server_socket, 0))?;
        rt.block_on(import_topology(&server_socket, self.sheet()))?;
        for (i, (name, parent, kind)) in OFFICES.iter().enumerate() {
            println!(
                "  office {name:<9} {kind:<8} {}/24{}",
                self.addr(i, 0, 0).ip(),
                parent.map_or(String::new(), |p| format!(", under {p}"))
            );
        }
        let password = rt.block_on(console_admin(&server_socket))?;
        println!(
            "console: https://{}/ (sign in as `admin` with the one-time password {password}; import {} into the browser as an authority first; the API is described at /api/v1/openapi.json)",
            self.addr(0, 1, config::DEFAULT_CONSOLE_PORT),
            self.work.join("server").join("ca").join("ca.pem").display()
        );
        Ok((server_socket, file_storage))
    }

    /// The server's control address.
    fn server_addr(&self) -> SocketAddr {
        self.addr(0, 1, config::DEFAULT_CONTROL_PORT)
    }

    /// `count` clients, four per office in turn, each joining with `token`.
    fn start_clients(&mut self, count: u8, token: &str) -> anyhow::Result<Vec<DemoClient>> {
        let mut clients = Vec::new();
        for i in 0..count {
            let office = usize::from(i) % OFFICES.len();
            let host = 11 + i / 4;
            let name = format!("{}-{}", OFFICES[office].0, host);
            let mut client = ClientConfig::empty();
            client.data_dir = Some(self.work.join(&name));
            client.server = Some(self.server_addr());
            client.listen = self.addr(office, host, config::DEFAULT_FOREGROUND_PORT);
            client.name = Some(name.clone());
            client.join = Some(token.to_owned());
            client.log = LogSection {
                level: "warn".into(),
                ..LogSection::default()
            };
            clients.push(DemoClient {
                name: name.clone(),
                office,
                socket: socket_path(&self.work.join(&name)),
                out: self.work.join(format!("{name}.out")),
            });
            self.nodes.push(NodeThread::spawn(name, move |stop| {
                node::client::run(client, stop)
            })?);
        }
        Ok(clients)
    }
}

/// Every client fetches `content` at once, each with a progress bar; the
/// time the last one took.
fn fetch_all(
    rt: &tokio::runtime::Runtime,
    clients: &[DemoClient],
    content: branchline_storage::ContentId,
    size: u64,
) -> anyhow::Result<Duration> {
    let bars = MultiProgress::new();
    let style =
        ProgressStyle::with_template("{prefix:10} {bar:40} {bytes:>10}/{total_bytes} {msg}")
            .expect("valid template");
    let started = Instant::now();
    let fetches = clients.iter().map(|c| {
        let bar = bars.add(ProgressBar::new(size));
        bar.set_style(style.clone());
        bar.set_prefix(c.name.clone());
        fetch_one(c.socket.clone(), content, c.out.clone(), bar, started)
    });
    let outcomes = rt.block_on(futures_util::future::join_all(fetches));
    let mut wall = Duration::ZERO;
    for (c, outcome) in clients.iter().zip(outcomes) {
        wall = wall.max(outcome.with_context(|| format!("{} failed", c.name))?);
    }
    Ok(wall)
}

/// Writes a deterministic pseudo-random package; returns its SHA-256.
fn generate(path: &Path, size: u64) -> anyhow::Result<[u8; 32]> {
    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template("making package {bar:40} {bytes}/{total_bytes}")
            .expect("valid template"),
    );
    let mut out = BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    let mut sha = Sha256::new();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0u8; 1 << 20];
    let mut written = 0u64;
    while written < size {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n =
            usize::try_from((size - written).min(block.len() as u64)).expect("block fits usize");
        out.write_all(&block[..n])?;
        sha.update(&block[..n]);
        written += n as u64;
        bar.set_position(written);
    }
    out.flush()?;
    bar.finish_and_clear();
    Ok(sha.finalize().into())
}

async fn import_topology(server: &Path, sheet: String) -> anyhow::Result<()> {
    let request = AdminRequest::TopologyImport(sheet.into_bytes());
    connect::request(server, &request, |reply| match reply {
        AdminReply::TopologyImported(_) => Some(Ok(())),
        AdminReply::TopologyRefused(problems) => Some(Err(anyhow::anyhow!(
            "the demo's topology was refused: {}",
            problems.join("; ")
        ))),
        other => Some(Err(anyhow::anyhow!("unexpected answer {other:?}"))),
    })
    .await?
}

/// Waits until the server answers and `count` clients are registered.
async fn wait_for_clients(server: &Path, count: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let registered = server_status(server)
            .await
            .map(|s| s.registry.clients.len());
        if registered.as_ref().is_ok_and(|&n| n >= count) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {count} clients registered within 30 s",
            registered.unwrap_or(0)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Makes the console's `admin` account with a fresh password; the
/// password.
async fn console_admin(server: &Path) -> anyhow::Result<String> {
    let password = crate::commands::admin::make_password()?;
    let request = AdminRequest::AddUser {
        name: "admin".into(),
        role: branchline_actors::wire::Role::Admin,
        password: password.clone(),
    };
    connect::request(server, &request, |reply| match reply {
        AdminReply::Done(_) => Some(Ok(())),
        AdminReply::Error(e) => Some(Err(anyhow::anyhow!("making the console's account: {e}"))),
        other => Some(Err(anyhow::anyhow!("unexpected answer {other:?}"))),
    })
    .await??;
    Ok(password)
}

/// A join token from the demo's server, for its clients.
async fn join_token(server: &Path) -> anyhow::Result<String> {
    let request = AdminRequest::CreateJoinToken { expires_secs: 3600 };
    connect::request(server, &request, |reply| match reply {
        AdminReply::JoinToken { token, .. } => Some(Ok(token)),
        AdminReply::Error(e) => Some(Err(anyhow::anyhow!("making a join token: {e}"))),
        other => Some(Err(anyhow::anyhow!("unexpected answer {other:?}"))),
    })
    .await?
}

async fn fetch_one(
    socket: PathBuf,
    content: branchline_storage::ContentId,
    out: PathBuf,
    bar: ProgressBar,
    started: Instant,
) -> anyhow::Result<Duration> {
    fetch::fetch_to(&socket, content, Some(&out), false, |p| {
        fetch::show(&bar, p);
        bar.set_message(sources(p));
    })
    .await?;
    bar.set_message(format!(
        "{}  done in {:.1} s",
        bar.message(),
        started.elapsed().as_secs_f64()
    ));
    bar.finish();
    Ok(started.elapsed())
}

/// Where a transfer's bytes came from, for its progress line.
fn sources(p: &TransferProgress) -> String {
    format!(
        "office {:>9}  WAN {:>9}  origin {:>9}",
        mib(p.from_peers),
        mib(p.from_parent),
        mib(p.from_origin)
    )
}

/// Hashes the outputs on as many threads as there are cores; returns how
/// many match.
fn verify_all(outputs: &[&PathBuf], expected: &[u8; 32]) -> anyhow::Result<usize> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunks: Vec<Vec<PathBuf>> = outputs
        .chunks(outputs.len().div_ceil(threads))
        .map(|c| c.iter().map(|p| (*p).clone()).collect())
        .collect();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|paths| {
            std::thread::spawn(move || {
                paths
                    .iter()
                    .map(|p| sha256_file(p))
                    .collect::<anyhow::Result<Vec<_>>>()
            })
        })
        .collect();
    let mut matching = 0;
    for handle in handles {
        let digests = handle
            .join()
            .map_err(|_| anyhow::anyhow!("hashing thread panicked"))??;
        matching += digests.iter().filter(|d| *d == expected).count();
    }
    Ok(matching)
}

fn sha256_file(path: &Path) -> anyhow::Result<[u8; 32]> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(sha.finalize().into());
        }
        sha.update(&buf[..n]);
    }
}

async fn server_status(socket: &Path) -> anyhow::Result<ServerStatus> {
    connect::request(socket, &AdminRequest::Status, |reply| match reply {
        AdminReply::ServerStatus(s) => Some(Ok(s)),
        other => Some(Err(anyhow::anyhow!("unexpected answer {other:?}"))),
    })
    .await?
}

async fn client_status(socket: &Path) -> anyhow::Result<ClientStatus> {
    connect::request(socket, &AdminRequest::Status, |reply| match reply {
        AdminReply::ClientStatus(s) => Some(Ok(*s)),
        other => Some(Err(anyhow::anyhow!("unexpected answer {other:?}"))),
    })
    .await?
}

fn report(
    args: &DemoArgs,
    size: u64,
    wall: Duration,
    matching: usize,
    server: &ServerStatus,
    clients: &[(usize, ClientStatus)],
) {
    let n = clients.len() as u64;
    let origin = server.file_storage.as_ref().map_or(0, |f| f.bytes_served);
    let sum = |office: Option<usize>, pick: fn(&ClientStatus) -> u64| -> u64 {
        clients
            .iter()
            .filter(|(o, _)| office.is_none_or(|office| *o == office))
            .map(|(_, c)| pick(c))
            .sum()
    };
    let ratio = |bytes: u64| bytes as f64 / size as f64;
    println!();
    println!(
        "  {} clients in {} offices, {} package, all fetching at once",
        args.clients,
        OFFICES.len(),
        mib(size)
    );
    println!("  ---------------------------------------------------------------------------");
    println!("  copies matching the package's SHA-256      {matching} of {n}");
    println!(
        "  wall time (publish to last client done)    {:.1} s",
        wall.as_secs_f64()
    );
    println!(
        "  bytes from the origin (file storage)       {:>12}  ({:.2}x the package; without peers {:.2}x)",
        mib(origin),
        ratio(origin),
        n as f64
    );
    println!();
    println!(
        "  {:<10} {:<10} {:>7}  {:>22}  {:>12}  {:>12}",
        "office", "link from", "clients", "link carried", "without peers", "in office"
    );
    for (i, (name, parent, _)) in OFFICES.iter().enumerate() {
        let members = clients.iter().filter(|(o, _)| *o == i).count() as u64;
        // Without peers, every client below this link pulls its own copy.
        let below: u64 = (0..OFFICES.len())
            .filter(|&j| is_under(j, i))
            .map(|j| clients.iter().filter(|(o, _)| *o == j).count() as u64)
            .sum();
        let carried = if parent.is_some() {
            sum(Some(i), |c| c.counters.from_parent)
        } else {
            sum(Some(i), |c| c.counters.from_origin)
        };
        println!(
            "  {:<10} {:<10} {:>7}  {:>12} ({:>5.2}x)  {:>10.0}x  {:>12}",
            name,
            parent.unwrap_or("origin"),
            members,
            mib(carried),
            ratio(carried),
            below as f64,
            mib(sum(Some(i), |c| c.counters.from_peers))
        );
    }
    println!(
        "  origin traffic saved                       {:>11.1} %",
        100.0 * (1.0 - origin as f64 / (n * size) as f64)
    );
}

/// Whether office `j` is office `i` or below it.
fn is_under(j: usize, i: usize) -> bool {
    let mut at = Some(OFFICES[j].0);
    while let Some(name) = at {
        if name == OFFICES[i].0 {
            return true;
        }
        at = OFFICES.iter().find(|o| o.0 == name).and_then(|o| o.1);
    }
    false
}
