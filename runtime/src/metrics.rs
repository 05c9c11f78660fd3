//! The Prometheus text endpoint: `GET /metrics` on `[metrics] listen`, off
//! unless `[metrics] enabled`. Every scrape renders the node's status (the
//! same the admin socket answers), so the figures are those `status` and
//! the debug shell show.
//!
//! Client: bytes received by source class (office, parent office, origin)
//! in all and per content, bytes served by protocol, pieces stored and
//! rejected (by reason), transfers active and done, the busy pause of the
//! link into the office (paused by reason, pauses, queuing delay), discovery broadcasts,
//! restarts and probe answers by actor. Server: registered clients,
//! published contents, what each office's clients received, origin use,
//! restarts by actor. Per actor also its mailbox capacity, depth (measured
//! by the watchdog's probe, see `branchline_actors::supervision`), messages
//! handled, and how long the probe waited in the mailbox.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::AtomicU64;

use branchline_actors::wire::{ActorView, ClientStatus, ServerStatus};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::encoding::EncodeMetric;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::TypedMetric;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// A per-actor metric family: name, type, help, and how to read it.
type ActorNumber = (
    &'static str,
    &'static str,
    &'static str,
    fn(&ActorView) -> u64,
);

/// A sample's labels, in order.
type Labels = Vec<(String, String)>;

/// A sample's value.
#[derive(Clone, Copy, Debug)]
enum Value {
    Whole(u64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Whole(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

/// One metric family as rendered: its name, kind, help and samples.
struct Collected {
    name: String,
    counter: bool,
    help: String,
    samples: Vec<(Labels, Value)>,
}

/// One scrape's exposition: the families are collected from the node's
/// status (label values escaped here, since the encoder writes them as
/// they are), then written by `prometheus-client` as OpenMetrics text (it
/// adds a counter's `_total` and ends with `# EOF`).
#[derive(Default)]
struct Exposition(Vec<Collected>);

impl Exposition {
    /// Starts a family; `kind` is `counter` or `gauge`, a counter's name
    /// ends with `_total`.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        self.0.push(Collected {
            name: name.to_owned(),
            counter: kind == "counter",
            help: help.to_owned(),
            samples: Vec::new(),
        });
    }

    /// A sample of the family started last.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Into<Value>) {
        let family = self.0.last_mut().expect("a family is started first");
        debug_assert_eq!(family.name, name, "a sample of the family started last");
        let labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), escape(v)))
            .collect();
        family.samples.push((labels, value.into()));
    }

    /// The text a scrape answers with.
    fn text(self) -> String {
        let mut registry = Registry::default();
        for f in self.0 {
            // The registry adds the help's full stop and a counter's
            // `_total` itself.
            let help = f.help.strip_suffix('.').unwrap_or(&f.help).to_owned();
            let floats = f.samples.iter().any(|(_, v)| matches!(v, Value::Float(_)));
            let r = &mut registry;
            if f.counter {
                let name = f.name.strip_suffix("_total").unwrap_or(&f.name);
                add::<Counter>(r, name, help, &f.samples, |c, v| {
                    c.inc_by(whole(v));
                });
            } else if floats {
                add::<Gauge<f64, AtomicU64>>(r, &f.name, help, &f.samples, |g, v| {
                    g.set(float(v));
                });
            } else {
                add::<Gauge>(r, &f.name, help, &f.samples, |g, v| {
                    g.set(i64::try_from(whole(v)).unwrap_or(i64::MAX));
                });
            }
        }
        let mut out = String::new();
        encode(&mut out, &registry).expect("writing to a String cannot fail");
        out
    }

    /// A family of one sample without labels.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl Into<Value>) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// A family whose samples differ by one label, `key`.
    fn by_label(&mut self, name: &str, kind: &str, help: &str, key: &str, samples: &[(&str, u64)]) {
        self.family(name, kind, help);
        for (value, n) in samples {
            self.sample(name, &[(key, value)], *n);
        }
    }

    fn actors(&mut self, actors: &[ActorView]) {
        self.family(
            "branchline_actor_restarts_total",
            "counter",
            "Restarts of a top-level actor after a stop or a panic.",
        );
        for a in actors {
            self.sample(
                "branchline_actor_restarts_total",
                &[("actor", &a.name), ("kind", &a.kind)],
                u64::from(a.restarts),
            );
        }
        self.family(
            "branchline_actor_up",
            "gauge",
            "1 if the actor is running and answered its last probe.",
        );
        for a in actors {
            let up = a.alive && a.answered_probe != Some(false);
            self.sample(
                "branchline_actor_up",
                &[("actor", &a.name), ("kind", &a.kind)],
                u64::from(up),
            );
        }
        let numbers: [ActorNumber; 3] = [
            (
                "branchline_actor_mailbox_capacity",
                "gauge",
                "The actor's mailbox capacity.",
                |a| a.mailbox_capacity,
            ),
            (
                "branchline_actor_mailbox_depth",
                "gauge",
                "Messages waiting in the actor's mailbox when its last answered probe was sent.",
                |a| a.mailbox_depth,
            ),
            (
                "branchline_actor_messages_handled_total",
                "counter",
                "Messages the actor's handlers have taken.",
                |a| a.messages_handled,
            ),
        ];
        for (name, kind, help, value) in numbers {
            self.family(name, kind, help);
            for a in actors {
                self.sample(name, &[("actor", &a.name), ("kind", &a.kind)], value(a));
            }
        }
        self.family(
            "branchline_actor_probe_ms",
            "gauge",
            "How long the watchdog's last probe waited for an answer through the mailbox.",
        );
        for a in actors {
            if let Some(ms) = a.probe_ms {
                self.sample(
                    "branchline_actor_probe_ms",
                    &[("actor", &a.name), ("kind", &a.kind)],
                    ms,
                );
            }
        }
    }
}

/// Registers a family of metrics of type `M`, `set` giving each its value;
/// a lone sample without labels as one metric (written without braces).
fn add<M>(
    registry: &mut Registry,
    name: &str,
    help: String,
    samples: &[(Labels, Value)],
    set: impl Fn(&M, Value),
) where
    M: EncodeMetric + TypedMetric + Default + std::fmt::Debug + Send + Sync + 'static,
{
    if let [(labels, value)] = samples
        && labels.is_empty()
    {
        let metric = M::default();
        set(&metric, *value);
        registry.register(name, help, metric);
        return;
    }
    let family = Family::<Labels, M>::default();
    for (labels, value) in samples {
        set(&family.get_or_create(labels), *value);
    }
    registry.register(name, help, family);
}

/// A label value with `\`, `"` and newlines escaped (the encoder writes
/// label values as they are).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A value as a whole number (a float rounded down: none of the families
/// that take whole numbers is given one).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn whole(v: Value) -> u64 {
    match v {
        Value::Whole(v) => v,
        Value::Float(v) => v as u64,
    }
}

/// A value as a float.
fn float(v: Value) -> f64 {
    match v {
        Value::Whole(v) => v as f64,
        Value::Float(v) => v,
    }
}

/// A client's metrics.
pub fn render_client(s: &ClientStatus) -> String {
    let mut out = Exposition::default();
    client_bytes(&mut out, s);
    client_pieces(&mut out, s);
    let link = &s.background_link;
    out.by_label(
        "branchline_background_paused",
        "gauge",
        "1 while downloads from the office above are paused, by reason.",
        "reason",
        &[("link_busy", u64::from(link.paused.is_some()))],
    );
    out.single(
        "branchline_background_pauses_total",
        "counter",
        "Busy pauses of downloads from the office above.",
        link.pauses,
    );
    if let Some(ms) = link.queuing_delay_ms {
        out.single(
            "branchline_background_queuing_delay_seconds",
            "gauge",
            "Queuing delay on the link into the office, as the busy pause measures it.",
            ms / 1e3,
        );
    }
    out.single(
        "branchline_discovery_broadcasts_total",
        "counter",
        "Discovery requests broadcast.",
        s.counters.broadcasts_sent,
    );
    out.by_label(
        "branchline_cache_bytes",
        "gauge",
        "Cache bytes stored, reserved and allowed.",
        "what",
        &[
            ("stored", s.usage.stored_bytes),
            ("reserved", s.usage.reserved_bytes),
            ("quota", s.usage.quota_bytes),
        ],
    );
    out.single(
        "branchline_registered",
        "gauge",
        "1 while registered with the server.",
        u64::from(s.registered),
    );
    out.actors(&s.actors);
    out.text()
}

/// Bytes received (in all and per content) and served.
fn client_bytes(out: &mut Exposition, s: &ClientStatus) {
    let c = &s.counters;
    out.by_label(
        "branchline_received_bytes_total",
        "counter",
        "Verified bytes received, by source class.",
        "class",
        &[
            ("office", c.from_peers),
            ("parent", c.from_parent),
            ("origin", c.from_origin),
        ],
    );
    out.family(
        "branchline_content_received_bytes_total",
        "counter",
        "Verified bytes received per content, by source class (transfers this run).",
    );
    for t in &s.transfers {
        let id = t.content.to_hex();
        for (class, bytes) in [
            ("office", t.from_peers),
            ("parent", t.from_parent),
            ("origin", t.from_origin),
        ] {
            out.sample(
                "branchline_content_received_bytes_total",
                &[("content", &id), ("class", class)],
                bytes,
            );
        }
    }
    out.by_label(
        "branchline_served_bytes_total",
        "counter",
        "Bytes of pieces served, by protocol.",
        "protocol",
        &[
            ("foreground", c.served - c.served_background),
            ("background", c.served_background),
        ],
    );
}

/// Pieces stored, arrived twice and refused; transfers by state.
fn client_pieces(out: &mut Exposition, s: &ClientStatus) {
    let c = &s.counters;
    out.single(
        "branchline_pieces_stored_total",
        "counter",
        "Pieces verified and stored.",
        c.pieces_stored,
    );
    out.single(
        "branchline_pieces_again_total",
        "counter",
        "Verified pieces that arrived when the cache already held them.",
        c.pieces_again,
    );
    out.by_label(
        "branchline_pieces_rejected_total",
        "counter",
        "Pieces refused, by reason.",
        "reason",
        &[
            ("hash_mismatch", c.rejected_hash),
            ("wrong_length", c.rejected_length),
            ("corrupt_on_disk", c.rejected_on_disk),
        ],
    );
    out.by_label(
        "branchline_transfers",
        "gauge",
        "Downloads since the node started, by state.",
        "state",
        &[
            ("active", s.transfers.len() as u64),
            ("done", u64::from(s.transfers_done)),
        ],
    );
}

/// The server's metrics.
pub fn render_server(s: &ServerStatus) -> String {
    let mut out = Exposition::default();
    out.single(
        "branchline_clients",
        "gauge",
        "Registered (live) clients.",
        s.registry.clients.len() as u64,
    );
    out.single(
        "branchline_contents",
        "gauge",
        "Published contents.",
        s.registry.contents.len() as u64,
    );
    out.family(
        "branchline_office_received_bytes_total",
        "counter",
        "What each office's live clients received, by source class (the link ledger).",
    );
    for l in &s.registry.links {
        for (class, bytes) in [
            ("office", l.from_peers),
            ("parent", l.from_parent),
            ("origin", l.from_origin),
        ] {
            out.sample(
                "branchline_office_received_bytes_total",
                &[("office", &l.office), ("class", class)],
                bytes,
            );
        }
    }
    out.family(
        "branchline_office_link_wire_bytes_total",
        "counter",
        "UDP bytes that crossed each office's link from the office above on its clients' background connections (pieces plus QUIC's overhead).",
    );
    for l in &s.registry.links {
        out.sample(
            "branchline_office_link_wire_bytes_total",
            &[("office", &l.office)],
            l.wire_from_parent,
        );
    }
    out.family(
        "branchline_origin_pieces_total",
        "counter",
        "Pieces leased from the origin, by office and reason.",
    );
    for o in &s.registry.origin {
        out.sample(
            "branchline_origin_pieces_total",
            &[("office", &o.office), ("reason", &o.reason)],
            o.pieces,
        );
    }
    if let Some(fs) = &s.file_storage {
        out.single(
            "branchline_file_storage_served_bytes_total",
            "counter",
            "Bytes the embedded file storage sent.",
            fs.bytes_served,
        );
        out.single(
            "branchline_file_storage_refused_connections_total",
            "counter",
            "Connections the embedded file storage closed at once at a cap.",
            fs.connections_refused,
        );
    }
    out.actors(&s.actors);
    out.text()
}

/// Serves `GET /metrics` on `listener`, rendering with `render` on every
/// scrape. Run it on the node's main arbiter.
pub async fn serve<F, Fut>(listener: tokio::net::TcpListener, render: F)
where
    F: Fn() -> Fut + Clone + 'static,
    Fut: Future<Output = Result<String, String>> + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        let render = render.clone();
        actix_rt::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let render = render.clone();
                async move { Ok::<_, Infallible>(respond(&req, render).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

async fn respond<F, Fut>(req: &Request<hyper::body::Incoming>, render: F) -> Response<Full<Bytes>>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<String, String>>,
{
    let reply = |code: StatusCode, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = code;
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            ),
        );
        response
    };
    if req.method() != Method::GET || req.uri().path() != "/metrics" {
        return reply(
            StatusCode::NOT_FOUND,
            "metrics are at GET /metrics\n".into(),
        );
    }
    match render().await {
        Ok(text) => reply(StatusCode::OK, text),
        Err(e) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("status unavailable: {e}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_escape_their_labels_and_families_say_their_type() {
        let mut out = Exposition::default();
        out.family("x_total", "counter", "An x.");
        out.sample("x_total", &[("office", "a \"b\"\\c")], 3u64);
        out.family("z_total", "counter", "A z.");
        out.sample("z_total", &[], 4u64);
        out.family("y_seconds", "gauge", "A y.");
        out.sample("y_seconds", &[], 0.25);
        assert_eq!(
            out.text(),
            "# HELP x An x.\n# TYPE x counter\nx_total{office=\"a \\\"b\\\"\\\\c\"} 3\n\
             # HELP z A z.\n# TYPE z counter\nz_total 4\n\
             # HELP y_seconds A y.\n# TYPE y_seconds gauge\ny_seconds 0.25\n# EOF\n"
        );
    }
}
