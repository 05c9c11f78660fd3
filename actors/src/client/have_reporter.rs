//! Have reports from a transfer to the server link without losing the last
//! one. A report goes with `try_send`, so a busy link never stalls a
//! transfer. When the link's mailbox is full, the report is kept, newer
//! ones replace it, and one waiting task delivers the newest as soon as
//! there is room. Reports reach the link in the order they were made, and
//! the final map of a finished download always arrives.

use std::cell::RefCell;
use std::rc::Rc;

use actix::prelude::*;

use crate::messages::ReportHave;

/// Sends a transfer's have reports to the server link.
pub struct HaveReporter {
    to: Recipient<ReportHave>,
    owed: Rc<RefCell<Owed>>,
}

#[derive(Default)]
struct Owed {
    /// A task is waiting for room in the link's mailbox.
    waiting: bool,
    /// The newest report not yet handed to the link.
    newest: Option<ReportHave>,
}

impl HaveReporter {
    /// Reports go to `to`.
    pub fn new(to: Recipient<ReportHave>) -> Self {
        HaveReporter {
            to,
            owed: Rc::default(),
        }
    }

    /// Sends `report` now, or as soon as the link has room. Call it on an
    /// actix arbiter.
    pub fn report(&self, report: ReportHave) {
        let mut owed = self.owed.borrow_mut();
        if owed.waiting {
            owed.newest = Some(report);
            return;
        }
        match self.to.try_send(report) {
            Ok(()) => {}
            Err(SendError::Full(report)) => {
                tracing::debug!(content = %report.content, "server link busy; the have report waits for room");
                owed.waiting = true;
                owed.newest = Some(report);
                actix::spawn(deliver(self.to.clone(), self.owed.clone()));
            }
            Err(SendError::Closed(report)) => {
                tracing::warn!(content = %report.content, "server link gone; have report dropped (registration resends holdings)");
            }
        }
    }
}

/// Hands the newest owed report to the link, waiting for room, until none
/// is owed.
async fn deliver(to: Recipient<ReportHave>, owed: Rc<RefCell<Owed>>) {
    loop {
        let next = {
            let mut owed = owed.borrow_mut();
            let next = owed.newest.take();
            owed.waiting = next.is_some();
            next
        };
        let Some(report) = next else { return };
        if to.send(report).await.is_err() {
            owed.borrow_mut().waiting = false;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use branchline_storage::{Hash, PieceMap};

    use super::*;

    /// A link whose mailbox holds one message and which records what it got.
    struct Link(Rc<RefCell<Vec<u32>>>);

    impl Actor for Link {
        type Context = Context<Self>;
    }

    impl Handler<ReportHave> for Link {
        type Result = ();
        fn handle(&mut self, msg: ReportHave, _: &mut Context<Self>) {
            self.0.borrow_mut().push(msg.have.count());
        }
    }

    #[test]
    fn given_a_full_link_when_reports_pile_up_then_the_newest_arrives_last_and_none_go_backwards() {
        let got = Rc::new(RefCell::new(Vec::new()));
        let seen = got.clone();
        System::new().block_on(async move {
            let mut ctx = Context::new();
            ctx.set_mailbox_capacity(1);
            let link = ctx.run(Link(seen));
            let reporter = HaveReporter::new(link.recipient());
            // Ten reports in one go: the one-slot mailbox fills at once.
            let mut have = PieceMap::new(10);
            for i in 0..10 {
                have.set(i);
                reporter.report(ReportHave {
                    content: Hash([1; 32]),
                    have: have.clone(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        });
        let got = got.borrow();
        assert_eq!(got.last(), Some(&10), "the final map arrived: {got:?}");
        assert!(got.windows(2).all(|w| w[0] < w[1]), "in order: {got:?}");
        assert!(got.len() < 10, "busy reports were coalesced: {got:?}");
    }
}
