//! The published contents: what the directory tells every office actor.
//! The directory owns the catalogue and changes it on publish and purge;
//! each office actor holds the same `Arc` snapshot, so a manifest is kept
//! once however many offices there are. A content's origins are kept in
//! fallback order, every CDN before any file storage.

use std::collections::HashMap;
use std::sync::Arc;

use branchline_storage::origin::in_fallback_order;
use branchline_storage::{ContentId, ContentRecord, Origin, OriginKind};

/// One published content.
#[derive(Clone, Debug)]
pub struct Published {
    /// Its record: manifest, origins (in fallback order), when published.
    pub record: Arc<ContentRecord>,
    /// The kind of each origin, in the record's order.
    pub kinds: Vec<OriginKind>,
    /// Never shared by peers.
    pub confidential: bool,
}

impl Published {
    /// The record as a client off the corporate network is given it: only
    /// its CDN origins, if it has any (it cannot reach file storage).
    pub fn off_network(&self) -> ContentRecord {
        let mut record = (*self.record).clone();
        if self.kinds.contains(&OriginKind::Cdn) {
            record.origins = self.origins_of(OriginKind::Cdn);
        }
        record
    }

    fn origins_of(&self, kind: OriginKind) -> Vec<String> {
        self.record
            .origins
            .iter()
            .zip(&self.kinds)
            .filter(|(_, k)| **k == kind)
            .map(|(url, _)| url.clone())
            .collect()
    }

    /// Its origins with their kinds, in fallback order.
    pub fn origins(&self) -> Vec<Origin> {
        self.record
            .origins
            .iter()
            .zip(&self.kinds)
            .map(|(url, kind)| Origin {
                url: url.clone(),
                kind: *kind,
            })
            .collect()
    }

    /// Sets the origins, in fallback order.
    fn set_origins(&mut self, origins: Vec<Origin>) {
        let origins = in_fallback_order(origins);
        self.kinds = origins.iter().map(|o| o.kind).collect();
        Arc::make_mut(&mut self.record).origins = origins.into_iter().map(|o| o.url).collect();
    }
}

/// Every published content, and the number of the last purge made durable
/// (every office info carries it, and a client that has seen fewer asks
/// for the rest).
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    contents: HashMap<ContentId, Published>,
    purge_seq: u64,
}

/// Why the catalogue refused a publication.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CatalogueError {
    /// Confidential, but with no origin to fetch it from.
    #[error(
        "content {0} is confidential but has no origin: no peer ever serves it, so it needs one"
    )]
    ConfidentialWithoutOrigin(ContentId),
    /// Published again with the other confidentiality.
    #[error("content {content} is already published {was}; purge it first to publish it {asked}")]
    Confidentiality {
        /// The content.
        content: ContentId,
        /// How it is published: "confidential" or "shareable".
        was: &'static str,
        /// How it was asked to be published.
        asked: &'static str,
    },
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

    /// Publishes a content (its record's origins are replaced by
    /// `origins`, in fallback order), `confidential` or not. Publishing
    /// the same content again adds origins it did not list before, and is
    /// refused if it would change its confidentiality. Returns its id.
    pub fn publish(
        &mut self,
        record: ContentRecord,
        origins: Vec<Origin>,
        confidential: bool,
    ) -> Result<ContentId, CatalogueError> {
        let id = record.manifest.content_id();
        if confidential && origins.is_empty() {
            return Err(CatalogueError::ConfidentialWithoutOrigin(id));
        }
        match self.contents.get_mut(&id) {
            Some(existing) if existing.confidential != confidential => {
                Err(CatalogueError::Confidentiality {
                    content: id,
                    was: sharing(existing.confidential),
                    asked: sharing(confidential),
                })
            }
            Some(existing) => {
                let mut merged = existing.origins();
                for origin in origins {
                    if !merged.iter().any(|o| o.url == origin.url) {
                        merged.push(origin);
                    }
                }
                existing.set_origins(merged);
                Ok(id)
            }
            None => {
                let mut published = Published {
                    record: Arc::new(record),
                    kinds: Vec::new(),
                    confidential,
                };
                published.set_origins(origins);
                self.contents.insert(id, published);
                Ok(id)
            }
        }
    }

    /// Forgets a content; false if it was not published.
    pub fn purge(&mut self, id: &ContentId) -> bool {
        self.contents.remove(id).is_some()
    }
}
