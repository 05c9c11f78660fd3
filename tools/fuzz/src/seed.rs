//! Writes the starting corpus of every target into `corpus/<target>/`:
//! valid inputs of each kind, for libFuzzer to mutate. `run-all.sh ... keep`
//! runs it before a long run, so the seeds follow the formats as they change.

use std::net::SocketAddr;
use std::path::Path;

use branchline_actors::client::discovery::Datagram;
use branchline_actors::server::election::Attributes;
use branchline_actors::wire::{
    AdminReply, AdminRequest, ByteCounters, JoinRequest, PeerReply, PeerRequest, Refusal,
    ServerReply, ServerRequest, SourcesQuery, encode_frame,
};
use branchline_storage::publication::{Publication, Signature, SignedPublication};
use branchline_storage::records::encode;
use branchline_storage::{ContentId, ContentRecord, Manifest, NodeId, PieceMap};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// A stream for `Chunked`: no chunk sizes (one read), then `bytes`.
fn stream(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    out.extend_from_slice(bytes);
    out
}

/// Valid values of each kind the seeds are made of.
struct Samples {
    content: ContentId,
    node: NodeId,
    addr: SocketAddr,
    manifest: Manifest,
    publication: SignedPublication,
    have: PieceMap,
    record: ContentRecord,
}

impl Samples {
    fn new() -> Self {
        let content = ContentId::of(b"fuzz");
        let manifest = Manifest::from_reader("tool.bin", &[3u8; 100_000][..], 16 * 1024, |_| {}).unwrap();
        let publication = SignedPublication {
            publication: Publication { content, confidential: true },
            signature: Some(Signature { scheme: 0x0403, bytes: vec![9; 72], certificate: vec![0x30; 600] }),
        };
        let mut have = PieceMap::new(7);
        have.set(3);
        let record = ContentRecord {
            manifest: manifest.clone(),
            origins: vec!["https://198.18.0.1:34380/p.bin".into()],
            published_ms: 1,
        };
        Samples {
            content,
            node: NodeId([7; 16]),
            addr: "198.18.1.10:34760".parse().unwrap(),
            manifest,
            publication,
            have,
            record,
        }
    }
}

fn main() {
    let samples = Samples::new();
    wire_seeds(&samples);
    file_seeds(&samples);
    record_seeds(&samples);
    text_seeds();
    println!("seeds written under {}", Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").display());
}

/// Frames of each message family, alone and in streams.
fn wire_seeds(s: &Samples) {
    let Samples { content, node, manifest, publication, record, .. } = s;
    let (content, node) = (*content, *node);
    let peer = [
        encode_frame(&PeerRequest::GetPiece { content, index: 3 }),
        encode_frame(&PeerRequest::GetManifest { content }),
        encode_frame(&PeerReply::Piece { len: 1 << 14 }),
        encode_frame(&PeerReply::Refused(Refusal::Busy)),
        encode_frame(&PeerReply::Manifest(manifest.clone(), publication.clone())),
    ];
    let server = [
        encode_frame(&ServerRequest::GetRevocations { known: [5; 32] }),
        encode_frame(&ServerRequest::GetPurges { since: 7 }),
        encode_frame(&ServerRequest::Heartbeat { id: node, attributes: Attributes::default(), counters: ByteCounters::default() }),
        encode_frame(&ServerRequest::Sources(SourcesQuery { id: node, content, since: 3, want_leases: 2, release: vec![1], stuck: vec![4], wait_ms: 2000 })),
        encode_frame(&ServerRequest::Join(JoinRequest { secret: [1; 16], name: "pc-7".into(), public_key: vec![4; 65] })),
        encode_frame(&ServerReply::Content(record.clone(), publication.clone())),
        encode_frame(&ServerReply::Purges { contents: vec![content], last: 9 }),
        encode_frame(&ServerReply::Revocations(Some(vec![vec![0x30, 0x82, 1, 0]; 2]))),
        encode_frame(&ServerReply::Error("no".into())),
    ];
    let admin = [
        encode_frame(&AdminRequest::Status),
        encode_frame(&AdminRequest::Fetch { content, out: Some("/tmp/x".into()) }),
        encode_frame(&AdminRequest::CreateJoinToken { expires_secs: 3600 }),
        encode_frame(&AdminRequest::SignUrl { url: "/p.bin".into(), expires_secs: 60 }),
        encode_frame(&AdminReply::Done("done".into())),
        encode_frame(&AdminReply::JoinToken { token: "BL1-x".into(), expires_ms: 1 }),
    ];
    for (i, frame) in peer.iter().enumerate() {
        write("wire_peer", &format!("{i}"), frame);
    }
    for (i, frame) in server.iter().enumerate() {
        write("wire_server", &format!("{i}"), frame);
        write("frame_stream", &format!("{i}"), &stream(frame));
    }
    let mut two = server[0].clone();
    two.extend_from_slice(&server[3]);
    write("frame_stream", "two", &[2, 3, 200].into_iter().chain(two).collect::<Vec<u8>>());
    for (i, frame) in admin.iter().enumerate() {
        write("wire_admin", &format!("{i}"), frame);
    }
    let mut piece = (1u32 << 14).to_le_bytes().to_vec();
    piece.extend(stream(&encode_frame(&PeerReply::Piece { len: (1 << 14) + 1 })));
    piece.extend(vec![0xAB; 1 << 14]);
    write("piece_stream", "piece", &piece);
}

/// The files a node reads: configs, a topology sheet, a revocation list,
/// a publication.
fn file_seeds(s: &Samples) {
    write("config", "server", include_bytes!("../../../configs/server.toml"));
    write("config", "client", include_bytes!("../../../configs/client.toml"));
    write(
        "topology_csv",
        "sheet",
        b"office,parent,type,subnets,rvp_count,wan_rate_mbit,bg_yielding\r\nhq,,Default,10.0.0.0/16,2,,\r\nbranch,hq,WiFi,10.1.0.0/24;10.2.0.1-10.2.0.9,1,20,false\r\n",
    );
    write("revocation_list", "junk", &[0x30, 0x82, 0x01, 0x00, 0x30]);
    write("publication", "signed", &postcard::to_stdvec(&s.publication).unwrap());
}

/// Every kind of record kept in sled, and a discovery datagram.
fn record_seeds(s: &Samples) {
    let Samples { content, node, addr, manifest, publication, have, record } = s;
    let (content, node, addr) = (*content, *node, *addr);
    let records: [(u8, Vec<u8>); 9] = [
        (0, encode(record)),
        (1, encode(&branchline_storage::ClientRecord { id: node, name: "pc".into(), addr, background: addr, last_seen_ms: 5 })),
        (2, encode(have)),
        (3, encode(publication)),
        (4, encode(&vec![(content, 9u64)])),
        (5, encode(&branchline_storage::self_check::SelfCheck::default())),
        (6, encode(&7u64)),
        (7, manifest.to_bytes()),
        (8, Datagram::Reply { nonce: 9, from: node, addr, content, have: have.clone(), signature: None }.encode().unwrap()),
    ];
    for (which, bytes) in records {
        let mut input = vec![which];
        input.extend(bytes);
        write("stored_records", &format!("{which}"), &input);
    }
}

/// Join tokens, signed URL queries, ranges, paths and lifetimes.
fn text_seeds() {
    for (i, text) in [
        format!("BL1-{}-{}-198.18.0.1:34323", "07".repeat(16), "ab".repeat(32)),
        "/p.bin?expires=1000&sig=00".to_owned(),
        "bytes=0-1023".to_owned(),
        "/apps/tool%201.bin".to_owned(),
        "24h".to_owned(),
    ]
    .iter()
    .enumerate()
    {
        write("text_inputs", &format!("{i}"), text.as_bytes());
    }
}
