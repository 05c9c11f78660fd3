//! Group commit: many threads that each need "everything I wrote is now
//! durable" share one sync instead of queueing one each.
//!
//! A caller registers after its write completed, then waits until a sync
//! that *started after* its registration has finished. Whoever finds no sync
//! running starts one covering every registration so far; the others wait
//! for it. With 16 pieces landing at once this is one or two `fdatasync`s,
//! not 16 in a row on the same inode.

use std::sync::{Condvar, Mutex};

/// One gate per thing that is synced (a file, or the sled database).
#[derive(Debug, Default)]
pub struct GroupCommit {
    state: Mutex<State>,
    done: Condvar,
}

#[derive(Debug, Default)]
struct State {
    registered: u64,
    synced: u64,
    syncing: bool,
}

impl GroupCommit {
    /// Returns once a run of `sync` that started after this call has
    /// succeeded. If the sync this caller waited for failed, the caller runs
    /// one itself and returns its error.
    pub fn commit<E>(&self, sync: impl Fn() -> Result<(), E>) -> Result<(), E> {
        let mut state = crate::lock_unpoisoned(&self.state);
        state.registered += 1;
        let mine = state.registered;
        loop {
            if state.synced >= mine {
                return Ok(());
            }
            if state.syncing {
                state = self
                    .done
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            }
            state.syncing = true;
            let target = state.registered;
            drop(state);
            // If `sync` panics, the guard ends the run and wakes the
            // waiters (one of them syncs next), so nobody waits forever.
            let running = Running(self);
            let result = sync();
            std::mem::forget(running);
            state = crate::lock_unpoisoned(&self.state);
            state.syncing = false;
            if result.is_ok() {
                state.synced = state.synced.max(target);
            }
            self.done.notify_all();
            result?;
        }
    }
}

/// A sync run under way: if it unwinds, it is ended and the waiters woken.
struct Running<'a>(&'a GroupCommit);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        crate::lock_unpoisoned(&self.0.state).syncing = false;
        self.0.done.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn concurrent_callers_share_syncs_and_each_sees_one_that_started_after_it() {
        let gate = Arc::new(GroupCommit::default());
        let syncs = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (gate, syncs) = (gate.clone(), syncs.clone());
                std::thread::spawn(move || {
                    gate.commit(|| {
                        syncs.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        Ok::<(), ()>(())
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap().unwrap();
        }
        let n = syncs.load(Ordering::SeqCst);
        assert!((1..16).contains(&n), "{n} syncs for 16 callers");
    }

    #[test]
    fn a_failed_sync_is_reported_and_the_next_caller_syncs_again() {
        let gate = GroupCommit::default();
        assert_eq!(gate.commit(|| Err("disk gone")), Err("disk gone"));
        assert_eq!(gate.commit(|| Ok::<(), &str>(())), Ok(()));
    }

    #[test]
    fn a_sync_that_panics_leaves_no_caller_waiting_forever() {
        let commit = GroupCommit::default();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            commit.commit(|| -> Result<(), ()> { panic!("the disk driver blew up") })
        }));
        assert!(panicked.is_err());
        // The next caller runs its own sync instead of waiting on the dead one.
        assert_eq!(commit.commit(|| Ok::<(), ()>(())), Ok(()));
    }
}
