//! Tests of `topology`.

use super::*;

fn office(name: &str, parent: Option<&str>, blocks: &[&str]) -> Office {
    let mut o = Office::new(name, parent);
    o.blocks = blocks.iter().map(|b| b.parse().unwrap()).collect();
    o
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sample() -> Topology {
    Topology::new(vec![
        office("hq", None, &["10.0.0.0/16"]),
        office("branch-a", Some("hq"), &["10.1.0.0/16"]),
        office("a-wifi", Some("branch-a"), &["10.1.200.0/24"]),
        office("a-printers", Some("branch-a"), &["10.1.200.10-10.1.200.20"]),
    ])
    .unwrap()
}

#[test]
fn link_settings_are_kept_beside_the_stored_form_which_has_no_place_for_them() {
    let mut t = sample();
    t.set_links(vec![(
        "a-wifi".into(),
        LinkSettings {
            pause: Some(false),
            ..LinkSettings::default()
        },
    )]);
    let stored = postcard::to_stdvec(&t).unwrap();
    let mut back: Topology = postcard::from_bytes(&stored).unwrap();
    assert!(back.links().is_empty(), "not in the stored form");
    back.set_links(t.links());
    assert_eq!(back, t);
    back.set_links(vec![("gone".into(), LinkSettings::default())]);
    assert_eq!(back, t, "unknown offices are skipped");
}

#[test]
fn the_links_below_an_office_are_sent_only_if_one_sets_the_sender() {
    let mut t = sample();
    assert!(t.links_below("hq").is_empty(), "nothing set");
    let slow = LinkSettings {
        target_delay_ms: Some(60),
        ..LinkSettings::default()
    };
    t.set_links(vec![("a-wifi".into(), slow)]);
    let below = t.links_below("hq");
    assert_eq!(below.len(), 3, "branch-a, a-wifi, a-printers");
    assert!(below.iter().any(|l| l.settings == slow));
    assert_eq!(t.links_below("branch-a").len(), 2);
    assert!(t.links_below("a-wifi").is_empty(), "nothing below");
}

#[test]
fn the_most_specific_block_wins_with_ranges_and_nested_subnets() {
    let t = sample();
    let name = |a: &str| t.resolve(ip(a)).map(|o| o.name.as_str());
    assert_eq!(name("10.0.3.4"), Some("hq"));
    assert_eq!(name("10.1.3.4"), Some("branch-a"));
    assert_eq!(name("10.1.200.9"), Some("a-wifi"));
    assert_eq!(name("10.1.200.15"), Some("a-printers"));
    assert_eq!(name("10.1.200.21"), Some("a-wifi"));
    assert_eq!(name("10.2.0.1"), None);
    let path: Vec<&str> = t
        .path_to_top("a-wifi")
        .iter()
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(path, ["a-wifi", "branch-a", "hq"]);
}

#[test]
fn an_unknown_address_gets_an_automatic_office_under_the_top_once() {
    let mut t = sample();
    let (made, new) = t.resolve_or_add(ip("192.168.7.42"));
    assert!(new && made.automatic);
    assert_eq!(made.name, "auto-192.168.7.0/24");
    assert_eq!(made.parent.as_deref(), Some("hq"));
    let (again, new) = t.resolve_or_add(ip("192.168.7.9"));
    assert!(!new);
    assert_eq!(again.name, "auto-192.168.7.0/24");
    assert!(!again.is_off_network(), "a private address");
    assert_eq!(t.offices().len(), 5);
    assert!(Topology::new(t.offices().to_vec()).is_ok(), "still valid");
}

#[test]
fn an_address_on_no_private_network_gets_an_office_off_the_network() {
    let mut t = sample();
    let (made, new) = t.resolve_or_add(ip("203.0.113.7"));
    assert!(new && made.is_off_network());
    assert_eq!(made.name, "offnet-203.0.113.0/24");
    assert_eq!(
        (made.kind, made.origin_direct),
        (OfficeKind::Vpn, true),
        "nobody serves; each client takes the origin directly"
    );
    let exported = spreadsheet::export(&t);
    let back = spreadsheet::import(exported.as_bytes()).unwrap();
    assert!(
        back.office("offnet-203.0.113.0/24")
            .unwrap()
            .is_off_network(),
        "still off the network after an export and import"
    );
}

#[test]
fn invalid_topologies_name_the_office_at_fault() {
    let err = |offices: Vec<Office>| Topology::new(offices).unwrap_err();
    assert_eq!(err(vec![]), (0, TopologyError::Empty));
    let (i, e) = err(vec![office("hq", None, &[]), office("hq", Some("hq"), &[])]);
    assert_eq!(
        (i, e.to_string()),
        (1, "office `hq` is listed twice".into())
    );
    let (i, e) = err(vec![
        office("hq", None, &[]),
        office("b", Some("nowhere"), &[]),
    ]);
    assert_eq!(
        (i, e.to_string()),
        (
            1,
            "office `b` has parent `nowhere`, which is not an office".into()
        )
    );
    let (i, e) = err(vec![
        office("hq", None, &[]),
        office("a", Some("b"), &[]),
        office("b", Some("a"), &[]),
    ]);
    assert_eq!(
        (i, e.to_string()),
        (1, "offices form a cycle: a -> b -> a".into())
    );
    let (i, e) = err(vec![office("hq", None, &[]), office("x", None, &[])]);
    assert_eq!(i, 1);
    assert_eq!(
        e.to_string(),
        "office `x` has no parent, but `hq` is already the top office"
    );
    let (_, e) = err(vec![
        office("a", Some("b"), &[]),
        office("b", Some("a"), &[]),
    ]);
    assert!(matches!(e, TopologyError::Cycle(_)));
    let (i, e) = err(vec![
        office("hq", None, &["10.0.0.0/24"]),
        office("b", Some("hq"), &["10.0.0.0/24"]),
    ]);
    assert_eq!(i, 1);
    assert_eq!(
        e.to_string(),
        "10.0.0.0/24 of office `b` overlaps 10.0.0.0/24 of office `hq`"
    );
    let (i, _) = err(vec![
        office("hq", None, &["10.0.0.10-10.0.0.20"]),
        office("b", Some("hq"), &["10.0.0.15-10.0.0.30"]),
    ]);
    assert_eq!(i, 1, "ranges that cross are refused");
    let mut many = office("hq", None, &[]);
    many.rvp_count = 0;
    assert_eq!(err(vec![many]).1, TopologyError::RvpCount("hq".into(), 0));
}

#[test]
fn office_types_share_as_the_manual_says() {
    assert!(OfficeKind::Default.serves() && OfficeKind::Default.broadcasts());
    assert!(!OfficeKind::Vpn.serves() && OfficeKind::Vpn.broadcasts());
    assert!(OfficeKind::Wifi.serves() && !OfficeKind::Wifi.broadcasts());
    assert_eq!("wifi".parse::<OfficeKind>(), Ok(OfficeKind::Wifi));
    assert_eq!(
        "lan".parse::<OfficeKind>().unwrap_err(),
        "unknown office type `lan` (expected Default, VPN or WiFi)"
    );
}

#[test]
fn many_automatic_offices_resolve_before_and_after_the_lookup_is_built_again() {
    let mut t = sample();
    for n in 0..200u32 {
        let addr = IpAddr::from([172, 16, u8::try_from(n).unwrap(), 7]);
        let (office, made) = t.resolve_or_add(addr);
        assert!(made);
        assert_eq!(office.name, format!("auto-172.16.{n}.0/24"));
    }
    for n in 0..200u32 {
        let addr = IpAddr::from([172, 16, u8::try_from(n).unwrap(), 99]);
        let (office, made) = t.resolve_or_add(addr);
        assert!(!made, "{addr} already has its office");
        let name = office.name.clone();
        assert_eq!(name, format!("auto-172.16.{n}.0/24"));
        assert_eq!(t.office(&name).unwrap().blocks.len(), 1);
    }
    // The sheet's offices resolve as before, the most specific block first.
    assert_eq!(
        t.resolve("10.1.200.15".parse().unwrap()).unwrap().name,
        "a-printers"
    );
    assert_eq!(t.offices().len(), 204);
}

#[test]
fn an_automatic_office_whose_name_is_taken_gets_another() {
    let mut t = Topology::new(vec![
        office("hq", None, &["10.0.0.0/16"]),
        office("auto-10.9.9.0/24", Some("hq"), &["10.8.0.0/16"]),
    ])
    .unwrap();
    let (office, made) = t.resolve_or_add("10.9.9.1".parse().unwrap());
    assert!(made);
    assert_eq!(office.name, "auto-10.9.9.0/24-2");
    assert_eq!(
        t.resolve("10.8.1.1".parse().unwrap()).unwrap().name,
        "auto-10.9.9.0/24",
        "the sheet's office keeps its name and its block"
    );
}
