//! What a transfer asks of its office: sources by long-poll, the origins
//! of a content that started without them, and its leases given back when
//! it ends unfinished.

use std::time::Duration;

use actix::prelude::*;

use super::{ASK_ORIGINS_EVERY, Phase, Transfer};
use crate::client::office_asks::{ContentInfo, SourcesRequest};

impl Transfer {
    /// Tells the server, without waiting for its answer, that the origin
    /// leases this transfer held are free.
    pub(super) fn give_back_leases(&mut self) {
        self.give_back(Vec::new());
    }

    /// Gives back every lease this transfer holds and `also` (leased by an
    /// answer that came after it ended).
    fn give_back(&mut self, also: Vec<u32>) {
        let Some(run) = self.run.as_mut() else { return };
        let mut release = run.picker.take_every_lease();
        release.extend(also);
        release.sort_unstable();
        release.dedup();
        if release.is_empty() {
            return;
        }
        self.deps.office.sources.do_send(SourcesRequest {
            content: self.content,
            since: run.known.version(),
            want_leases: 0,
            release,
            stuck: Vec::new(),
            wait: Duration::ZERO,
        });
    }

    /// Long-polls the office for sources; one poll at a time.
    pub(super) fn poll(&mut self, ctx: &mut Context<Self>) {
        if self.phase != Phase::Running {
            return;
        }
        let Some(run) = self.run.as_mut() else { return };
        if run.polling || run.confidential {
            return;
        }
        run.polling = true;
        let now = crate::clock::now();
        let request = SourcesRequest {
            content: self.content,
            since: run.known.version(),
            want_leases: run.picker.wanted_leases(now),
            release: run.picker.take_releases(),
            stuck: run.picker.stuck_pieces(now),
            wait: self.settings.poll_wait,
        };
        let office = self.deps.office.sources.clone();
        let call = async move {
            office
                .send(request)
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())
        };
        ctx.spawn(call.into_actor(self).map(|answer, act, ctx| {
            let Some(run) = act.run.as_mut() else { return };
            run.polling = false;
            match answer {
                Ok(answer) if act.phase != Phase::Running => {
                    // The transfer ended while this poll waited: what
                    // the answer leased goes back at once.
                    act.give_back(answer.granted);
                }
                Ok(answer) => {
                    if !run.known.apply(&answer) {
                        tracing::debug!(content = %act.content, base = answer.base, "sources delta against another version; asking for a complete answer");
                        act.poll(ctx);
                        return;
                    }
                    run.picker.set_upstream_link(answer.upstream_link.as_ref(), u64::from(run.manifest.piece_size));
                    run.picker.update_sources(run.known.peers(), run.known.leased_elsewhere().clone(), &answer.granted);
                    if answer.is_discovered() {
                        run.picker.grant_unheld();
                    } else {
                        act.learn_origins(ctx);
                    }
                    act.pump(ctx);
                    act.poll(ctx);
                }
                Err(reason) => {
                    tracing::warn!(content = %act.content, %reason, "asking for sources failed; retrying in 1 s");
                    ctx.run_later(Duration::from_secs(1), |act, ctx| act.poll(ctx));
                }
            }
        }));
    }

    /// A transfer that started from a manifest a peer gave (the server was
    /// out of reach) knows no origin. Once the server answers again it is
    /// asked for the content's record (at most every [`ASK_ORIGINS_EVERY`]:
    /// a content may have none), whose origins the picker may then lease
    /// from: without them a top office whose RVP started this way would
    /// wait for peers that will never have the missing pieces.
    pub(super) fn learn_origins(&mut self, ctx: &mut Context<Self>) {
        let Some(run) = self.run.as_mut() else { return };
        let now = crate::clock::now();
        let recently = run
            .origins_asked
            .is_some_and(|at| now.duration_since(at) < ASK_ORIGINS_EVERY);
        if recently || !run.origins.is_empty() {
            return;
        }
        run.origins_asked = Some(now);
        let office = self.deps.office.content_info.clone();
        let content = self.content;
        let ask = async move {
            match office.send(ContentInfo(content)).await {
                Ok(answer) => answer.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        };
        ctx.spawn(ask.into_actor(self).map(|answer, act, ctx| {
            let Some(run) = act.run.as_mut() else { return };
            match answer {
                Ok((record, _)) if run.origins.is_empty() && !record.origins.is_empty() => {
                    tracing::info!(content = %act.content, origins = record.origins.len(), "the server named the content's origins");
                    run.picker.learn_origins(record.origins.len());
                    run.origin_errors = vec![None; record.origins.len()];
                    run.origins = record.origins;
                    act.pump(ctx);
                    act.poll(ctx);
                }
                Ok(_) => {}
                Err(reason) => {
                    tracing::debug!(content = %act.content, %reason, "asking the server for the content's origins failed");
                }
            }
        }));
    }
}
