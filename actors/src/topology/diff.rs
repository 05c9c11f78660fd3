//! What importing a sheet would change, before it is applied: the offices
//! added, removed and changed (each change in words), and the registered
//! clients that would move to another office. A plain function of the two
//! topologies and the clients' addresses, tested without a server; the
//! console shows it as the upload's preview.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{Office, Topology};

/// The change a new topology makes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopologyChange {
    /// Offices only the new sheet has.
    pub added: Vec<String>,
    /// Offices only the current topology has (automatic ones marked).
    pub removed: Vec<String>,
    /// Offices in both whose settings differ.
    pub changed: Vec<OfficeChange>,
    /// Registered clients that would be in another office.
    pub moved: Vec<ClientMove>,
    /// Offices in the new sheet.
    pub offices: u32,
}

/// How one office would change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OfficeChange {
    /// The office.
    pub office: String,
    /// Each setting that differs, as `what: before → after`.
    pub what: Vec<String>,
}

/// A client that would move.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClientMove {
    /// The client's name.
    pub client: String,
    /// Its office now.
    pub from: String,
    /// Its office under the new sheet (`an automatic office` when no
    /// office of the sheet claims its address).
    pub to: String,
}

/// What a client is shown moving to when the new sheet claims its address
/// in no office.
pub const AUTOMATIC: &str = "an automatic office";

/// The change from `old` to `new` for `clients` (name, address, office
/// now).
pub fn diff(
    old: &Topology,
    new: &Topology,
    clients: &[(String, IpAddr, String)],
) -> TopologyChange {
    let mut change = TopologyChange {
        offices: u32::try_from(new.offices().len()).unwrap_or(u32::MAX),
        ..TopologyChange::default()
    };
    for office in new.offices() {
        match old.office(&office.name) {
            None => change.added.push(office.name.clone()),
            Some(before) => {
                let what = differences(before, office);
                if !what.is_empty() {
                    change.changed.push(OfficeChange {
                        office: office.name.clone(),
                        what,
                    });
                }
            }
        }
    }
    for office in old.offices() {
        if new.office(&office.name).is_none() {
            let note = if office.automatic { " (automatic)" } else { "" };
            change.removed.push(format!("{}{note}", office.name));
        }
    }
    for (client, addr, from) in clients {
        let to = new.resolve(*addr).map_or(AUTOMATIC, |o| o.name.as_str());
        let stays =
            to == from || (to == AUTOMATIC && old.office(from).is_some_and(|o| o.automatic));
        if !stays {
            change.moved.push(ClientMove {
                client: client.clone(),
                from: from.clone(),
                to: to.to_owned(),
            });
        }
    }
    change.moved.sort_by(|a, b| a.client.cmp(&b.client));
    change
}

/// Each setting of `after` that differs from `before`, in words.
fn differences(before: &Office, after: &Office) -> Vec<String> {
    let mut what = Vec::new();
    let mut compare = |name: &str, a: String, b: String| {
        if a != b {
            what.push(format!("{name}: {a} → {b}"));
        }
    };
    let or_none = |v: Option<&str>| v.unwrap_or("(none)").to_owned();
    compare(
        "parent",
        or_none(before.parent.as_deref()),
        or_none(after.parent.as_deref()),
    );
    compare(
        "type",
        format!("{:?}", before.kind),
        format!("{:?}", after.kind),
    );
    compare("subnets", blocks(before), blocks(after));
    compare(
        "RVPs",
        before.rvp_count.to_string(),
        after.rvp_count.to_string(),
    );
    compare(
        "preferred RVPs",
        before.preferred.join(" "),
        after.preferred.join(" "),
    );
    compare(
        "origin direct",
        before.origin_direct.to_string(),
        after.origin_direct.to_string(),
    );
    let rate = |o: &Office| {
        o.wan_rate_mbit
            .map_or("(none)".to_owned(), |r| format!("{r} Mbit/s"))
    };
    compare("WAN rate", rate(before), rate(after));
    compare(
        "link",
        format!("{:?}", before.link),
        format!("{:?}", after.link),
    );
    what
}

fn blocks(office: &Office) -> String {
    let shown: Vec<String> = office.blocks.iter().map(ToString::to_string).collect();
    shown.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::spreadsheet;

    fn sheet(text: &str) -> Topology {
        spreadsheet::import(text.as_bytes()).unwrap()
    }

    #[test]
    fn offices_added_removed_changed_and_clients_moved_are_named() {
        let old = sheet(
            "office,parent,type,subnets\n\
             hq,,Default,10.1.0.0/16\n\
             east,hq,Default,10.2.0.0/24\n\
             old,hq,Default,10.3.0.0/24\n",
        );
        let new = sheet(
            "office,parent,type,subnets\n\
             hq,,Default,10.1.0.0/16\n\
             east,hq,WiFi,10.2.0.0/23\n\
             west,hq,Default,10.3.0.0/25\n",
        );
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let clients = vec![
            ("a".to_owned(), ip("10.1.0.5"), "hq".to_owned()),
            ("b".to_owned(), ip("10.3.0.9"), "old".to_owned()),
            ("c".to_owned(), ip("10.3.0.200"), "old".to_owned()),
            ("d".to_owned(), ip("10.2.1.4"), "auto-10.2.1".to_owned()),
        ];
        let change = diff(&old, &new, &clients);
        assert_eq!(change.added, ["west"]);
        assert_eq!(change.removed, ["old"]);
        assert_eq!(
            change.changed,
            [OfficeChange {
                office: "east".into(),
                what: vec![
                    "type: Default → Wifi".into(),
                    "subnets: 10.2.0.0/24 → 10.2.0.0/23".into()
                ],
            }]
        );
        let moved: Vec<(&str, &str, &str)> = change
            .moved
            .iter()
            .map(|m| (m.client.as_str(), m.from.as_str(), m.to.as_str()))
            .collect();
        assert_eq!(
            moved,
            [
                ("b", "old", "west"),
                ("c", "old", AUTOMATIC),
                ("d", "auto-10.2.1", "east")
            ]
        );
        assert_eq!(change.offices, 3);
        assert_eq!(
            diff(&new, &new, &[]),
            TopologyChange {
                offices: 3,
                ..TopologyChange::default()
            }
        );
    }
}
