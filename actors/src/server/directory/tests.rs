//! Tests of `directory`.

use super::*;
use crate::server::registry::RegistryTiming;
use branchline_storage::{ContentRecord, Manifest, OriginKind};

fn deps() -> OfficeDeps {
    OfficeDeps {
        timing: RegistryTiming {
            client_timeout: Duration::from_secs(20),
            lease_ttl: Duration::from_secs(60),
            rvp_patience: Duration::from_secs(30),
        },
        seats: Arc::default(),
        heartbeat: Duration::from_secs(5),
        book: ActorBook::default(),
        arbiters: Vec::new(),
    }
}

/// A store written by the previous version: purges kept as a list with
/// wall-clock times under the `purges` setting.
#[test]
fn purges_of_the_previous_format_become_numbered_purges() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MetaStore::open(dir.path(), 1 << 20).unwrap());
    let record = |seed: u8| ContentRecord {
        manifest: Manifest::from_reader("p", &[seed; 20_000][..], 16 * 1024, |_| {}).unwrap(),
        origins: vec![],
        published_ms: 1,
    };
    let (gone, back) = (record(1), record(2));
    let (gone_id, back_id) = (gone.manifest.content_id(), back.manifest.content_id());
    // `back` was purged, then published again: it stays.
    store.put_content(&back, &[], false).unwrap();
    let old: Vec<(ContentId, u64)> = vec![(back_id, 20), (gone_id, 10)];
    store.put_setting(OLD_PURGES_SETTING, &old).unwrap();
    let signer: PublicationSigner = Arc::new(|_| None);
    let directory = DirectoryActor::new(deps(), store.clone(), signer, None).unwrap();
    assert_eq!(store.purges_since(0, 10).unwrap(), vec![(1, gone_id)]);
    assert!(
        store
            .setting::<Vec<(ContentId, u64)>>(OLD_PURGES_SETTING)
            .unwrap()
            .is_none()
    );
    assert!(directory.catalogue.get(&back_id).is_some());
}

/// Two topology writes on the blocking pool may finish in either order:
/// the newer topology is the one kept.
#[test]
fn an_older_topology_written_after_a_newer_one_is_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = MetaStore::open(dir.path(), 1 << 20).unwrap();
    let writes = TopologyWrites::default();
    let old = Topology::default();
    let new = spreadsheet::import(b"office,parent,type,subnets\nhq,,Default,10.0.0.0/8\n").unwrap();
    save_topology(&store, &new, 2, &writes).unwrap();
    save_topology(&store, &old, 1, &writes).unwrap();
    assert_eq!(load_topology(&store).unwrap(), Some(new.clone()));
    save_topology(&store, &old, 3, &writes).unwrap();
    assert_eq!(load_topology(&store).unwrap(), Some(old));
}

fn registration(n: u8, addr: std::net::IpAddr) -> crate::wire::Registration {
    crate::wire::Registration {
        id: NodeId([n; 16]),
        name: format!("c{n}"),
        addr: (addr, 34760).into(),
        background: (addr, 34750).into(),
        holdings: vec![],
        attributes: crate::server::election::Attributes::default(),
    }
}

/// Publishes a content whose file storage origin is listed before its
/// CDN; returns its id.
async fn publish_with_both_kinds(directory: &Addr<DirectoryActor>) -> ContentId {
    use branchline_storage::Origin;
    let manifest = Manifest::from_reader("p", &[3u8; 40_000][..], 16 * 1024, |_| {}).unwrap();
    let origin = |url: &str, kind| Origin {
        url: url.into(),
        kind,
    };
    directory
        .send(changes::Publish {
            manifest,
            origins: vec![
                origin("https://files.corp/p", OriginKind::FileStorage),
                origin("https://cdn.example/p", OriginKind::Cdn),
            ],
            confidential: false,
        })
        .await
        .unwrap()
        .unwrap()
}

/// A client off the corporate network (an address no office and no private
/// range holds) gets an office of its own that takes the origin directly,
/// and only the CDN origins; a client inside gets them all, CDN first,
/// whatever order they were published in. Real actors, in one process.
#[actix_rt::test]
async fn a_client_off_the_network_goes_to_the_cdn_directly() {
    use crate::wire::{ServerReply, ServerRequest, SourcesQuery};
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MetaStore::open(dir.path(), 1 << 20).unwrap());
    let signer: PublicationSigner = Arc::new(|_| None);
    let directory = DirectoryActor::new(deps(), store.clone(), signer, None)
        .unwrap()
        .start();
    let id = publish_with_both_kinds(&directory).await;
    let ask = |request: ServerRequest, from: &str| {
        directory.send(Serve {
            request,
            from: format!("{from}:34760").parse().unwrap(),
        })
    };
    let origins = |reply: ServerReply| match reply {
        ServerReply::Content(record, _) => record.origins,
        other => panic!("{other:?}"),
    };
    let outside = "203.0.113.5";
    match ask(
        ServerRequest::Register(registration(1, outside.parse().unwrap())),
        outside,
    )
    .await
    .unwrap()
    {
        ServerReply::Registered { office, .. } => {
            assert_eq!(office.name, "offnet-203.0.113.0/24");
            assert!(office.rvps.is_empty(), "nobody serves there");
        }
        other => panic!("{other:?}"),
    }
    let content = ServerRequest::GetContent { content: id };
    assert_eq!(
        origins(ask(content.clone(), outside).await.unwrap()),
        ["https://cdn.example/p"]
    );
    assert_eq!(
        origins(ask(content, "10.1.2.3").await.unwrap()),
        ["https://cdn.example/p", "https://files.corp/p"],
        "CDN first inside the network"
    );
    let query = SourcesQuery {
        id: NodeId([1; 16]),
        content: id,
        since: 0,
        want_leases: 2,
        release: vec![],
        stuck: vec![],
        wait_ms: 0,
    };
    match ask(ServerRequest::Sources(query), outside).await.unwrap() {
        ServerReply::Sources(answer) => {
            assert_eq!(answer.granted, vec![0, 1], "the origin at once");
            assert!(answer.peers.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.origin_kinds(&id).unwrap(),
        Some(vec![OriginKind::Cdn, OriginKind::FileStorage]),
        "kinds stored in the record's order"
    );
}

/// A store written before origins had kinds: each stored origin gets one
/// from its URL at start (file:// and the server's own file storage are
/// file storage), and the record is answered CDN first.
#[test]
fn origins_stored_without_kinds_get_them_from_their_urls() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MetaStore::open(dir.path(), 1 << 20).unwrap());
    let record = ContentRecord {
        manifest: Manifest::from_reader("p", &[5u8; 20_000][..], 16 * 1024, |_| {}).unwrap(),
        origins: vec![
            "file:///srv/p".into(),
            "https://server:34330/p".into(),
            "https://cdn.example/p".into(),
        ],
        published_ms: 1,
    };
    let id = record.manifest.content_id();
    // As an earlier version stored it: no kinds that fit its origins.
    store.put_content(&record, &[], false).unwrap();
    let signer: PublicationSigner = Arc::new(|_| None);
    let directory =
        DirectoryActor::new(deps(), store, signer, Some("https://server:34330")).unwrap();
    let published = directory.catalogue.get(&id).unwrap();
    assert_eq!(
        published.record.origins,
        [
            "https://cdn.example/p",
            "file:///srv/p",
            "https://server:34330/p"
        ]
    );
    assert_eq!(
        published.kinds,
        [
            OriginKind::Cdn,
            OriginKind::FileStorage,
            OriginKind::FileStorage
        ]
    );
}

/// The actor book draws each office under the office above it, and an
/// import that moves an office in the tree moves it in the book too.
#[actix_rt::test]
async fn offices_are_listed_under_the_office_above_them_before_and_after_an_import() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MetaStore::open(dir.path(), 1 << 20).unwrap());
    let signer: PublicationSigner = Arc::new(|_| None);
    let deps = deps();
    let book = deps.book.clone();
    let directory = DirectoryActor::new(deps, store, signer, None)
        .unwrap()
        .start();
    let import = |sheet: &str| directory.send(ImportTopology(sheet.as_bytes().to_vec()));
    import(
        "office,parent,type,subnets\n\
         hq,,Default,10.1.0.0/24\n\
         east,hq,Default,10.2.0.0/24\n\
         branch,hq,Default,10.3.0.0/24\n",
    )
    .await
    .unwrap()
    .unwrap();
    let from = "10.3.0.7";
    let reply = directory
        .send(Serve {
            request: crate::wire::ServerRequest::Register(registration(1, from.parse().unwrap())),
            from: format!("{from}:34760").parse().unwrap(),
        })
        .await
        .unwrap();
    assert!(
        matches!(reply, crate::wire::ServerReply::Registered { .. }),
        "{reply:?}"
    );
    let parent_of = |name: &str| {
        book.listed()
            .into_iter()
            .find(|l| l.name == name)
            .map(|l| l.parent)
    };
    assert_eq!(parent_of("office-branch").as_deref(), Some("office-hq"));
    assert_eq!(parent_of("office-hq").as_deref(), Some("directory"));
    import(
        "office,parent,type,subnets\n\
         hq,,Default,10.1.0.0/24\n\
         east,hq,Default,10.2.0.0/24\n\
         branch,east,Default,10.3.0.0/24\n",
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(parent_of("office-branch").as_deref(), Some("office-east"));
    assert_eq!(parent_of("office-east").as_deref(), Some("office-hq"));
}
