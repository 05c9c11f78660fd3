//! Publish and purge: the directory changes the catalogue, makes the
//! change durable, and tells every office.

use std::sync::Arc;

use actix::prelude::*;
use branchline_storage::meta_store::MetaError;
use branchline_storage::records::unix_ms;
use branchline_storage::{ContentId, ContentRecord, Manifest, Origin};

use super::DirectoryActor;
use crate::server::catalogue::CatalogueError;
use crate::server::office_messages::SetCatalogue;

/// Why the directory refused a publish or a purge.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The manifest is not one the registry accepts.
    #[error("{0}")]
    Manifest(#[from] branchline_storage::content::ContentError),
    /// A content published shareable cannot be made confidential.
    #[error(
        "content {0} was published shareable before, and peers may still hold the server's signed word for that; publish a new build to make it confidential"
    )]
    WasShared(ContentId),
    /// The catalogue refused it.
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    /// Purging a content that is not published.
    #[error("content {0} is not published")]
    NotPublished(ContentId),
    /// The metadata store failed.
    #[error("{what} failed: {source}")]
    Store {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        source: MetaError,
    },
    /// The blocking job that wrote it panicked or was cancelled.
    #[error("{what} failed: {source}")]
    Job {
        /// What was being done.
        what: &'static str,
        /// Why it stopped.
        source: crate::panics::JobError,
    },
}

impl ChangeError {
    /// The error of a store write run with [`crate::panics::run_blocking`].
    fn of_write(
        what: &'static str,
        result: Result<Result<(), MetaError>, crate::panics::JobError>,
    ) -> Self {
        match result {
            Ok(Err(source)) => ChangeError::Store { what, source },
            Ok(Ok(())) => unreachable!("only errors are converted"),
            Err(source) => ChangeError::Job { what, source },
        }
    }
}

impl DirectoryActor {
    /// Every office learns the catalogue as it is now.
    fn tell_catalogue(&self) {
        let catalogue = self.catalogue.clone();
        self.tell_offices(|| SetCatalogue(catalogue.clone()));
    }
}

/// Publishes a content; durable when answered.
#[derive(Debug, Message)]
#[rtype(result = "Result<ContentId, ChangeError>")]
pub struct Publish {
    /// The manifest.
    pub manifest: Manifest,
    /// Its origins, with their kinds.
    pub origins: Vec<Origin>,
    /// Never shared by peers.
    pub confidential: bool,
}

impl Handler<Publish> for DirectoryActor {
    type Result = ResponseActFuture<Self, Result<ContentId, ChangeError>>;
    fn handle(&mut self, msg: Publish, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        let refuse = |e: ChangeError| -> Self::Result { Box::pin(actix::fut::ready(Err(e))) };
        let record = ContentRecord {
            manifest: msg.manifest,
            origins: Vec::new(),
            published_ms: unix_ms(),
        };
        if let Err(e) = record.manifest.validate() {
            return refuse(e.into());
        }
        let store = self.store.clone();
        let confidential = msg.confidential;
        let id = record.manifest.content_id();
        if confidential {
            match store.was_shared(&id) {
                Ok(false) => {}
                Ok(true) => return refuse(ChangeError::WasShared(id)),
                Err(source) => {
                    return refuse(ChangeError::Store {
                        what: "reading what was published",
                        source,
                    });
                }
            }
        }
        let catalogue = Arc::make_mut(&mut self.catalogue);
        let id = match catalogue.publish(record, msg.origins, confidential) {
            Ok(id) => id,
            Err(e) => return refuse(e.into()),
        };
        let published = catalogue.get(&id).expect("just published");
        let (merged, kinds) = ((*published.record).clone(), published.kinds.clone());
        self.tell_catalogue();
        let write = crate::panics::run_blocking(
            || {},
            move || store.put_content(&merged, &kinds, confidential),
        );
        Box::pin(
            write
                .into_actor(self)
                .map(move |result, _, _| match result {
                    Ok(Ok(())) => {
                        tracing::info!(content = %id, "content published");
                        Ok(id)
                    }
                    other => Err(ChangeError::of_write("storing the content", other)),
                }),
        )
    }
}

/// Purges a content from the server and, through the clients' next
/// heartbeats, from every cache; durable when answered. The purge is one
/// transaction in the store, numbered; clients learn the number with
/// their office, and each asks for the purges it has not seen, however
/// long it was away.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ChangeError>")]
pub struct Purge(pub ContentId);

impl Handler<Purge> for DirectoryActor {
    type Result = ResponseActFuture<Self, Result<(), ChangeError>>;
    fn handle(&mut self, msg: Purge, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        let id = msg.0;
        if !Arc::make_mut(&mut self.catalogue).purge(&id) {
            return Box::pin(actix::fut::ready(Err(ChangeError::NotPublished(id))));
        }
        tracing::warn!(content = %id, "content purged; clients drop it at their next heartbeat");
        self.tell_catalogue();
        let store = self.store.clone();
        let removal = crate::panics::run_blocking(|| {}, move || store.purge_content(&id));
        Box::pin(removal.into_actor(self).map(|result, act, _| match result {
            Ok(Ok(seq)) => {
                Arc::make_mut(&mut act.catalogue).purged_up_to(seq);
                act.tell_catalogue();
                Ok(())
            }
            other => Err(ChangeError::of_write(
                "removing the content from the store",
                other.map(|r| r.map(|_| ())),
            )),
        }))
    }
}
