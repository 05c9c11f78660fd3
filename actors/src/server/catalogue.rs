//! The published contents: what the directory tells every office actor.
//! The directory owns the catalogue and changes it on publish and purge;
//! each office actor holds the same `Arc` snapshot, so a manifest is kept
//! once however many offices there are.

use std::collections::HashMap;
use std::sync::Arc;

use branchline_storage::{ContentId, ContentRecord};

use crate::server::registry::RegistryError;

/// One published content.
#[derive(Clone, Debug)]
pub struct Published {
    /// Its record: manifest, origins, when published.
    pub record: Arc<ContentRecord>,
    /// Never shared by peers.
    pub confidential: bool,
}

/// Every published content, and the number of the last purge made durable
/// (every office info carries it, and a client that has seen fewer asks
/// for the rest).
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    contents: HashMap<ContentId, Published>,
    purge_seq: u64,
}

/// How a content may be shared, for people.
fn sharing(confidential: bool) -> &'static str {
    if confidential {
        "confidential"
    } else {
        "shareable"
    }
}

impl Catalogue {
    /// A content, if published.
    pub fn get(&self, id: &ContentId) -> Option<&Published> {
        self.contents.get(id)
    }

    /// Every published content.
    pub fn iter(&self) -> impl Iterator<Item = (&ContentId, &Published)> {
        self.contents.iter()
    }

    /// The number of the last purge made durable.
    pub fn purge_seq(&self) -> u64 {
        self.purge_seq
    }

    /// The purge numbered `seq` is durable (or, at start, the last one
    /// made): office infos carry it from now on.
    pub fn purged_up_to(&mut self, seq: u64) {
        self.purge_seq = self.purge_seq.max(seq);
    }

    /// Publishes a content, `confidential` or not. Publishing the same
    /// content again adds origins it did not list before, and is refused if
    /// it would change its confidentiality. Returns its id.
    pub fn publish(
        &mut self,
        record: ContentRecord,
        confidential: bool,
    ) -> Result<ContentId, RegistryError> {
        let id = record.manifest.content_id();
        if confidential && record.origins.is_empty() {
            return Err(RegistryError::ConfidentialWithoutOrigin(id));
        }
        match self.contents.get_mut(&id) {
            Some(existing) if existing.confidential != confidential => {
                Err(RegistryError::Confidentiality {
                    content: id,
                    was: sharing(existing.confidential),
                    asked: sharing(confidential),
                })
            }
            Some(existing) => {
                let merged = Arc::make_mut(&mut existing.record);
                for origin in record.origins {
                    if !merged.origins.contains(&origin) {
                        merged.origins.push(origin);
                    }
                }
                Ok(id)
            }
            None => {
                let record = Arc::new(record);
                self.contents.insert(
                    id,
                    Published {
                        record,
                        confidential,
                    },
                );
                Ok(id)
            }
        }
    }

    /// Forgets a content; false if it was not published.
    pub fn purge(&mut self, id: &ContentId) -> bool {
        self.contents.remove(id).is_some()
    }
}
