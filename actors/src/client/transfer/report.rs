//! What a transfer reports when asked: its phase and progress.

use actix::prelude::*;

use super::{GetState, Transfer, TransferState};
use crate::wire::TransferProgress;

impl Handler<GetState> for Transfer {
    type Result = MessageResult<GetState>;
    fn handle(&mut self, _: GetState, _: &mut Context<Self>) -> Self::Result {
        crate::supervision::handled();
        MessageResult(self.state())
    }
}

impl Transfer {
    fn state(&self) -> TransferState {
        let progress = match &self.run {
            Some(run) => {
                let have = run.picker.have();
                let (leases, leased_elsewhere) = run.picker.leases();
                TransferProgress {
                    content: self.content,
                    name: run.manifest.name.clone(),
                    have: have.count(),
                    pieces: have.len(),
                    have_bytes: have.iter_set().map(|i| run.manifest.piece_len(i)).sum(),
                    size: run.manifest.size,
                    from_peers: run.from_peers,
                    from_parent: run.from_parent,
                    from_origin: run.from_origin,
                    sources: run.picker.source_count(),
                    in_flight: run.picker.in_flight(),
                    origins: run.picker.usable_origins(),
                    leases,
                    leased_elsewhere,
                }
            }
            None => TransferProgress {
                content: self.content,
                name: String::new(),
                have: 0,
                pieces: 0,
                have_bytes: 0,
                size: 0,
                from_peers: 0,
                from_parent: 0,
                from_origin: 0,
                sources: 0,
                in_flight: 0,
                origins: 0,
                leases: 0,
                leased_elsewhere: 0,
            },
        };
        TransferState {
            phase: self.phase.clone(),
            progress,
        }
    }
}
