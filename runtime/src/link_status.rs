//! What a client knows of its standing with the server: whether it is
//! registered, and its office as the server last told it. The server link
//! writes it; the admin socket, the transports and discovery read it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use branchline_actors::lock_unpoisoned;
use branchline_actors::topology::OfficeKind;
use branchline_actors::wire::OfficeInfo;

/// What the link knows, shared with the admin socket's status.
#[derive(Debug, Default)]
pub struct LinkStatus {
    registered: AtomicBool,
    office: Mutex<Option<OfficeInfo>>,
}

impl LinkStatus {
    /// True while registered with a live server.
    pub fn registered(&self) -> bool {
        self.registered.load(Ordering::Relaxed)
    }

    /// This client's office type, as the server last said (Default until
    /// it says).
    pub fn office_kind(&self) -> OfficeKind {
        self.office().map_or(OfficeKind::Default, |o| o.kind)
    }

    /// Whether this client serves peers: not when its office is a VPN
    /// office.
    pub fn serves(&self) -> bool {
        self.office_kind().serves()
    }

    /// This client's office, as the server last said.
    pub fn office(&self) -> Option<OfficeInfo> {
        lock_unpoisoned(&self.office).clone()
    }

    pub(crate) fn set_registered(&self, yes: bool) {
        self.registered.store(yes, Ordering::Relaxed);
    }

    pub(crate) fn set_office(&self, office: OfficeInfo) {
        let mut current = lock_unpoisoned(&self.office);
        if current.as_ref().map(|o| (&o.name, &o.rvps)) != Some((&office.name, &office.rvps)) {
            tracing::info!(office = %office.name, kind = %office.kind, rvps = ?office.rvps, "office assignment");
        }
        *current = Some(office);
    }
}
