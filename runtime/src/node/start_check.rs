//! The client's start-up self-check, run beside the node: after an unclean
//! stop every held piece is read and verified on a thread of its own while
//! the node already works (a piece is verified again before it is served
//! anyway), and the result shows in `status`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use actix::Recipient;
use branchline_actors::client::office::CacheChanged;
use branchline_actors::lock_unpoisoned;
use branchline_actors::messages::ReportHave;
use branchline_actors::wire::StartCheck;
use branchline_storage::self_check::{self, PreviousRun};
use branchline_storage::{ContentId, PieceCache, PieceMap};

/// The check's state as `status` shows it, before it starts: nothing to
/// do after a clean stop, else running.
pub fn initial(previous: PreviousRun) -> Arc<Mutex<StartCheck>> {
    Arc::new(Mutex::new(match previous {
        PreviousRun::Clean => StartCheck::NotNeeded,
        PreviousRun::Unclean => StartCheck::Running,
    }))
}

/// Runs the check on a thread of its own if `state` says it is needed,
/// and keeps the result in `state`. A content that lost pieces has its
/// have-map reported again through `report`, so the server stops sending
/// peers for pieces this node no longer holds, and its transfer, if one
/// runs, told through `office` to start again from what the cache holds.
pub fn start(
    state: &Arc<Mutex<StartCheck>>,
    cache: Arc<PieceCache>,
    report: Recipient<ReportHave>,
    office: Recipient<CacheChanged>,
) {
    if *lock_unpoisoned(state) != StartCheck::Running {
        return;
    }
    tracing::warn!("the last run did not stop cleanly; checking every stored piece");
    let shared = state.clone();
    let spawned = std::thread::Builder::new()
        .name("self-check".into())
        .spawn(move || {
            let done = match self_check::check_all(&cache) {
                Ok(found) if found.corrupt.is_empty() && found.unreadable.is_empty() => {
                    tracing::info!(
                        contents = found.contents,
                        pieces = found.pieces,
                        "start-up check: every stored piece is sound"
                    );
                    StartCheck::Done(found)
                }
                Ok(found) => {
                    tracing::error!(
                        contents = found.contents,
                        pieces = found.pieces,
                        corrupt = found.corrupt.len(),
                        unreadable = found.unreadable.len(),
                        "start-up check: corrupt pieces were dropped and will be fetched again (and unreadable contents)"
                    );
                    let damaged: BTreeSet<ContentId> =
                        found.corrupt.iter().map(|(id, _)| *id).collect();
                    for content in damaged {
                        if let Ok(have) = cache.have(&content) {
                            report.do_send(ReportHave { content, have });
                        }
                        office.do_send(CacheChanged(content));
                    }
                    for lost in &found.unreadable {
                        if let Some(pieces) = lost.pieces {
                            let have = PieceMap::new(pieces);
                            report.do_send(ReportHave { content: lost.content, have });
                        }
                    }
                    StartCheck::Done(found)
                }
                Err(e) => {
                    tracing::error!(error = %e, "start-up check could not finish");
                    StartCheck::Failed {
                        error: e.to_string(),
                    }
                }
            };
            *lock_unpoisoned(&shared) = done;
        });
    if let Err(e) = spawned {
        *lock_unpoisoned(state) = StartCheck::Failed {
            error: format!("cannot start the check's thread: {e}"),
        };
    }
}

/// Marks the run as stopped cleanly, so the next start skips the check;
/// but not while the check is unfinished or failed: then the next start
/// checks again.
pub fn stopped_cleanly(cache: &PieceCache, check: &Mutex<StartCheck>) {
    if matches!(
        *lock_unpoisoned(check),
        StartCheck::Running | StartCheck::Failed { .. }
    ) {
        tracing::warn!(
            "the start-up check did not finish; the next start checks every piece again"
        );
        return;
    }
    if let Err(e) = self_check::end_run(cache) {
        tracing::warn!(error = %e, "could not mark the cache as stopped cleanly; the next start checks it");
    }
}
