//! Supervision that restarts an actor in place when it stops *or panics*.
//!
//! actix's own `Supervisor` restarts an actor that stops, but a panic in a
//! handler or in a future the actor spawned unwinds out of its context and
//! drops the actor for good. [`start`] wraps the actor's context future in
//! `catch_unwind`; on a panic or a stop it waits a backoff (doubling from
//! [`FIRST_BACKOFF`] up to [`MAX_BACKOFF`]) and calls
//! `ContextFut::restart`, which keeps the address and the queued messages,
//! cancels what the actor had spawned, calls `Supervised::restarting` and
//! then `started` again. The actor struct itself is kept: state worth
//! keeping lives in it or in sled.
//!
//! An actor that needs more than [`MAX_RESTARTS`] restarts within
//! [`RESTART_WINDOW`] is given up: its mailbox closes, and the node
//! supervisor, which watches every top-level actor, stops the node so the
//! process supervisor starts it again (escalation).
//!
//! Every restart is counted in the actor's [`Health`] and logged with its
//! cause. Needs `panic = "unwind"` (set for every profile in the workspace).
//!
//! **Mailbox numbers.** actix keeps its mailbox's length private, so they
//! are counted here. While [`start`]'s wrapper polls an actor, that actor's
//! [`Health`] is the thread's current one, and every handler calls
//! [`handled`] first, which counts a message for it. The depth is measured
//! with a [`Probe`]: the prober notes the count when it sends the probe,
//! and the probe's handler takes the difference, which is the number of
//! messages that were ahead of it in the mailbox.

use std::cell::RefCell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use actix::dev::{AsyncContextParts, ContextFut};
use actix::prelude::*;

/// Wait before the first restart.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest wait before a restart.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Restarts allowed within [`RESTART_WINDOW`] before the actor is given up.
pub const MAX_RESTARTS: usize = 5;
/// The window [`MAX_RESTARTS`] counts in.
pub const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// What supervision knows about one actor: for logs, status and the debug
/// shell.
#[derive(Debug)]
pub struct Health {
    kind: &'static str,
    restarts: AtomicU32,
    last_cause: Mutex<Option<String>>,
    gave_up: AtomicBool,
    started: Instant,
    capacity: AtomicUsize,
    handled: AtomicU64,
    probe_mark: AtomicU64,
    depth: AtomicU64,
    note: Mutex<Option<String>>,
}

impl Health {
    fn new(kind: &'static str) -> Self {
        Health {
            kind,
            restarts: AtomicU32::new(0),
            last_cause: Mutex::new(None),
            gave_up: AtomicBool::new(false),
            started: crate::clock::now(),
            handled: AtomicU64::new(0),
            probe_mark: AtomicU64::new(0),
            depth: AtomicU64::new(0),
            capacity: AtomicUsize::new(0),
            note: Mutex::new(None),
        }
    }

    /// What the actor last said of itself ([`note`]).
    pub fn note(&self) -> Option<String> {
        crate::lock_unpoisoned(&self.note).clone()
    }

    /// The actor's kind (store, transport, transfer...).
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Restarts so far.
    pub fn restarts(&self) -> u32 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Why it last restarted.
    pub fn last_cause(&self) -> Option<String> {
        crate::lock_unpoisoned(&self.last_cause).clone()
    }

    /// True once supervision gave the actor up.
    pub fn gave_up(&self) -> bool {
        self.gave_up.load(Ordering::Relaxed)
    }

    /// Time since the actor first started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Its mailbox's capacity, as the actor set it (0 until it ran).
    pub fn mailbox_capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
    }

    /// Messages its handlers have taken, over every restart.
    pub fn messages_handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }

    /// Messages that were waiting in its mailbox when the last answered
    /// [`Probe`] was sent (0 before any).
    pub fn mailbox_depth(&self) -> u64 {
        self.depth.load(Ordering::Relaxed)
    }

    /// Call just before sending the actor a [`Probe`].
    pub fn mark_probe(&self) {
        self.probe_mark
            .store(self.handled.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

thread_local! {
    /// The [`Health`] of the actor being polled on this thread.
    static CURRENT: RefCell<Option<Arc<Health>>> = const { RefCell::new(None) };
}

/// Counts one message for the actor being polled; every handler of a
/// supervised actor calls it first.
pub fn handled() {
    CURRENT.with(|current| {
        if let Some(health) = current.borrow().as_ref() {
            health.handled.fetch_add(1, Ordering::Relaxed);
        }
    });
}

/// Lets the actor being polled say something of itself, shown beside it
/// in the actor tree (an office: how many clients it has).
pub fn note(text: String) {
    CURRENT.with(|current| {
        if let Some(health) = current.borrow().as_ref() {
            *crate::lock_unpoisoned(&health.note) = Some(text);
        }
    });
}

/// The [`Probe`] handler's count: the messages handled since the probe was
/// sent are the ones that were ahead of it.
pub fn probe_answered() {
    CURRENT.with(|current| {
        if let Some(health) = current.borrow().as_ref() {
            let now = health.handled.fetch_add(1, Ordering::Relaxed);
            let mark = health.probe_mark.load(Ordering::Relaxed);
            health
                .depth
                .store(now.saturating_sub(mark), Ordering::Relaxed);
        }
    });
}

/// Makes `health` the current one while it lives.
struct Polling;

impl Polling {
    fn enter(health: &Arc<Health>) -> Self {
        CURRENT.with(|current| *current.borrow_mut() = Some(health.clone()));
        Polling
    }
}

impl Drop for Polling {
    fn drop(&mut self) {
        CURRENT.with(|current| *current.borrow_mut() = None);
    }
}

/// "Are you there?": answered through the actor's own mailbox, so an answer
/// within a deadline shows the actor is not stuck. Every supervised actor
/// handles it ([`supervised_controls!`]).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Probe;

/// Makes the actor fail, to exercise supervision and the panic ledger
/// ([`crate::panics`]; the debug shell's `kill`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message, serde::Serialize, serde::Deserialize)]
#[rtype(result = "()")]
pub enum Kill {
    /// `ctx.stop()`: restarted in place.
    Stop,
    /// `panic!` in the handler: restarted in place.
    Panic,
    /// `panic!` in a blocking job of the actor: restarted in place.
    PanicInBlocking,
    /// `panic!` in the reply future, which actix runs outside the actor:
    /// unhandled, the node stops with exit code 70.
    PanicInReply,
    /// `panic!` in a task of its own (`actix_rt::spawn`): unhandled, the
    /// node stops with exit code 70.
    PanicInTask,
}

impl Kill {
    /// The debug shell's word for it.
    pub fn word(self) -> &'static str {
        match self {
            Kill::Stop => "stop",
            Kill::Panic => "panic",
            Kill::PanicInBlocking => "panic-blocking",
            Kill::PanicInReply => "panic-reply",
            Kill::PanicInTask => "panic-task",
        }
    }

    /// The kill the debug shell's word names.
    pub fn from_word(word: &str) -> Option<Kill> {
        [
            Kill::Stop,
            Kill::Panic,
            Kill::PanicInBlocking,
            Kill::PanicInReply,
            Kill::PanicInTask,
        ]
        .into_iter()
        .find(|k| k.word() == word)
    }
}

/// Implements [`Probe`] and [`Kill`] for an actor type with a `Context`.
#[macro_export]
macro_rules! supervised_controls {
    ($actor:ty) => {
        impl ::actix::Handler<$crate::supervision::Probe> for $actor {
            type Result = ();
            fn handle(&mut self, _: $crate::supervision::Probe, _: &mut Self::Context) {
                $crate::supervision::probe_answered();
            }
        }

        impl ::actix::Handler<$crate::supervision::Kill> for $actor {
            type Result = ::actix::ResponseFuture<()>;
            fn handle(
                &mut self,
                kill: $crate::supervision::Kill,
                ctx: &mut Self::Context,
            ) -> Self::Result {
                use $crate::supervision::Kill;
                $crate::supervision::handled();
                match kill {
                    Kill::Stop => ::actix::ActorContext::stop(ctx),
                    Kill::Panic => panic!("killed on request (debug shell)"),
                    Kill::PanicInBlocking => {
                        let me = ::actix::AsyncContext::address(ctx).recipient();
                        return Box::pin(async move {
                            let restart = move || {
                                let _ = me.try_send(Kill::Stop);
                            };
                            let _ = $crate::panics::run_blocking(restart, || {
                                panic!("killed on request in a blocking job (debug shell)")
                            })
                            .await;
                        });
                    }
                    Kill::PanicInReply => {
                        return Box::pin(async {
                            panic!("killed on request in a reply future (debug shell)")
                        });
                    }
                    Kill::PanicInTask => {
                        ::actix::spawn(async {
                            panic!("killed on request in a task of its own (debug shell)")
                        });
                    }
                }
                Box::pin(async {})
            }
        }
    };
}

/// The short-lived actors of a node (transfers, peer sessions): started
/// under supervision, registered by name so the debug shell lists and
/// kills them like the top-level ones, forgotten once they end. Cloning
/// shares the book.
#[derive(Clone, Debug, Default)]
pub struct ActorBook(Arc<Mutex<Vec<Listed>>>);

/// One actor in an [`ActorBook`].
#[derive(Clone, Debug)]
pub struct Listed {
    /// Its name, e.g. `transfer-1a2b3c4d`.
    pub name: String,
    /// The actor it is drawn under: the top-level actor that started it
    /// (`office` for a transfer), or on a server the office above an
    /// office (`office-hq`; `directory` for a top office).
    pub parent: String,
    /// What supervision knows of it.
    pub health: Arc<Health>,
    /// How to kill it (and whether it is still there).
    pub kill: Recipient<Kill>,
    /// How to probe it, for its mailbox depth.
    pub probe: Recipient<Probe>,
}

impl ActorBook {
    /// Starts an actor of `kind` named `name` under supervision and lists
    /// it under `parent`, the top-level actor that started it.
    pub fn start<A, F>(
        &self,
        kind: &'static str,
        name: String,
        parent: impl Into<String>,
        f: F,
    ) -> Addr<A>
    where
        A: Supervised + Actor<Context = Context<A>> + Handler<Kill> + Handler<Probe>,
        F: FnOnce(&mut Context<A>) -> A + 'static,
    {
        let (addr, health) = start(kind, f);
        self.list(name, parent.into(), health, &addr);
        addr
    }

    /// Starts an actor as [`ActorBook::start`] does, on the arbiter `on`
    /// (another thread), or on the current one if `on` is `None`.
    pub fn start_in<A, F>(
        &self,
        on: Option<&ArbiterHandle>,
        kind: &'static str,
        name: String,
        parent: impl Into<String>,
        f: F,
    ) -> Addr<A>
    where
        A: Supervised + Actor<Context = Context<A>> + Handler<Kill> + Handler<Probe>,
        F: FnOnce(&mut Context<A>) -> A + Send + 'static,
    {
        let (addr, health) = match on {
            Some(arbiter) => start_in(arbiter, kind, f),
            None => start(kind, f),
        };
        self.list(name, parent.into(), health, &addr);
        addr
    }

    fn list<A>(&self, name: String, parent: String, health: Arc<Health>, addr: &Addr<A>)
    where
        A: Actor + Handler<Kill> + Handler<Probe>,
        A::Context: actix::dev::ToEnvelope<A, Kill> + actix::dev::ToEnvelope<A, Probe>,
    {
        let mut listed = crate::lock_unpoisoned(&self.0);
        listed.retain(|l| l.kill.connected());
        listed.push(Listed {
            name,
            parent,
            health,
            kill: addr.clone().recipient(),
            probe: addr.clone().recipient(),
        });
    }

    /// Draws the actor `name` under `parent` from now on (an office whose
    /// place in the tree changed with a topology import).
    pub fn reparent(&self, name: &str, parent: String) {
        let mut listed = crate::lock_unpoisoned(&self.0);
        if let Some(l) = listed.iter_mut().find(|l| l.name == name) {
            l.parent = parent;
        }
    }

    /// The actors still running.
    pub fn listed(&self) -> Vec<Listed> {
        let mut listed = crate::lock_unpoisoned(&self.0);
        listed.retain(|l| l.kill.connected());
        listed.clone()
    }
}

/// Starts an actor of `kind` under panic-catching supervision on the
/// current arbiter.
pub fn start<A, F>(kind: &'static str, f: F) -> (Addr<A>, Arc<Health>)
where
    A: Supervised + Actor<Context = Context<A>>,
    F: FnOnce(&mut Context<A>) -> A + 'static,
{
    let mut ctx = Context::new();
    let act = f(&mut ctx);
    let addr = ctx.address();
    let health = Arc::new(Health::new(kind));
    actix::spawn(guarded(ctx.into_future(act), health.clone()));
    (addr, health)
}

/// Starts an actor of `kind` under panic-catching supervision on the
/// arbiter `on` (another thread): the address is known at once, and the
/// actor is made and run there.
pub fn start_in<A, F>(on: &ArbiterHandle, kind: &'static str, f: F) -> (Addr<A>, Arc<Health>)
where
    A: Supervised + Actor<Context = Context<A>>,
    F: FnOnce(&mut Context<A>) -> A + Send + 'static,
{
    // actix's default mailbox capacity; `started` may set another.
    let (tx, rx) = actix::dev::channel::channel(16);
    let health = Arc::new(Health::new(kind));
    let watched = health.clone();
    let spawned = on.spawn_fn(move || {
        let mut ctx = Context::with_receiver(rx);
        let act = f(&mut ctx);
        actix::spawn(guarded(ctx.into_future(act), watched));
    });
    if !spawned {
        tracing::error!(actor = kind, "the arbiter to start an actor on is gone");
    }
    (Addr::new(tx), health)
}

fn guarded<A>(fut: ContextFut<A, Context<A>>, health: Arc<Health>) -> Guarded<A>
where
    A: Supervised + Actor<Context = Context<A>>,
{
    Guarded {
        fut,
        health,
        recent: Vec::new(),
        backoff: None,
    }
}

struct Guarded<A>
where
    A: Supervised + Actor<Context = Context<A>>,
{
    fut: ContextFut<A, Context<A>>,
    health: Arc<Health>,
    recent: Vec<Instant>,
    backoff: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<A> Guarded<A>
where
    A: Supervised + Actor<Context = Context<A>>,
{
    /// The actor stopped or panicked: arms the backoff, or gives it up.
    /// False when it is given up.
    fn down(&mut self, cause: String) -> bool {
        let now = crate::clock::now();
        self.recent
            .retain(|t| now.duration_since(*t) < RESTART_WINDOW);
        self.recent.push(now);
        let kind = self.health.kind;
        if self.recent.len() > MAX_RESTARTS {
            tracing::error!(actor = kind, %cause, restarts = self.health.restarts(), "actor failed too often; giving it up");
            self.health.gave_up.store(true, Ordering::Relaxed);
            return false;
        }
        let exponent = u32::try_from(self.recent.len() - 1)
            .unwrap_or(u32::MAX)
            .min(16);
        let delay = FIRST_BACKOFF.saturating_mul(1 << exponent).min(MAX_BACKOFF);
        tracing::warn!(actor = kind, %cause, backoff_ms = delay.as_millis(), "actor down; restarting");
        *crate::lock_unpoisoned(&self.health.last_cause) = Some(cause);
        self.backoff = Some(Box::pin(tokio::time::sleep(delay)));
        true
    }
}

impl<A> Future for Guarded<A>
where
    A: Supervised + Actor<Context = Context<A>>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            if let Some(backoff) = this.backoff.as_mut() {
                if backoff.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.backoff = None;
                if !this.fut.restart() {
                    return Poll::Ready(()); // every address is gone
                }
                this.health.restarts.fetch_add(1, Ordering::Relaxed);
            }
            let polled = {
                let _current = Polling::enter(&this.health);
                catch_unwind(AssertUnwindSafe(|| Pin::new(&mut this.fut).poll(cx)))
            };
            match polled {
                Ok(Poll::Pending) => {
                    let capacity = this.fut.ctx().parts().capacity();
                    this.health.capacity.store(capacity, Ordering::Relaxed);
                    return Poll::Pending;
                }
                Ok(Poll::Ready(())) => {
                    // Stopped: restarted at once, as actix's Supervisor does,
                    // unless every address is gone (a normal end).
                    if !this.fut.restart() {
                        return Poll::Ready(());
                    }
                    if !this.down("stopped".to_owned()) {
                        return Poll::Ready(());
                    }
                    this.backoff = None;
                    this.health.restarts.fetch_add(1, Ordering::Relaxed);
                }
                Err(payload) => {
                    crate::panics::handled();
                    let cause = format!(
                        "panicked: {}",
                        crate::panics::panic_message(payload.as_ref())
                    );
                    if !this.down(cause) {
                        return Poll::Ready(());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
