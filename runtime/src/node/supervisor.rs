//! The node supervisor: the root of a node's actors. Every top-level actor
//! runs under `branchline_actors::supervision`, which restarts it in place
//! when it stops or panics, with backoff, and gives it up when it fails
//! too often. The node supervisor checks its children every second; when
//! one was given up (its mailbox closed) it logs which and stops the node
//! with exit code 70, so the process supervisor (systemd `Restart=always`)
//! starts a fresh runtime: failures escalate from actor to node to process.
//! It also answers which actors the node runs, with their restarts, and
//! probes each through its own mailbox every check (the watchdog): an
//! actor that does not answer within [`PROBE_DEADLINE`] is flagged stuck.
//! The debug shell's `kill` goes through it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use branchline_actors::supervision::{ActorBook, Health, Kill, Probe};
use branchline_actors::wire::ActorView;

/// Exit code of a node whose actor died (EX_SOFTWARE).
pub const ACTOR_DIED_EXIT: u8 = 70;

/// A node stopped because one of its actors died; the binary exits with
/// [`ACTOR_DIED_EXIT`].
#[derive(Debug, thiserror::Error)]
#[error("an actor died and the node stopped (the log above names it)")]
pub struct ActorDied;

/// How long an actor has to answer a probe.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(2);

type ProbeFuture = Pin<Box<dyn Future<Output = bool>>>;

/// One supervised child: a name, its health, and ways to check, probe and
/// kill it.
pub struct Child {
    name: &'static str,
    health: Arc<Health>,
    alive: Box<dyn Fn() -> bool>,
    probe: Box<dyn Fn() -> ProbeFuture>,
    kill: Box<dyn Fn(Kill) -> bool>,
    /// The last probe: answered, and in how long.
    last_probe: Option<(bool, Duration)>,
    probing: bool,
}

impl Child {
    /// Watches the actor behind `addr`.
    pub fn of<A>(name: &'static str, (addr, health): &(Addr<A>, Arc<Health>)) -> Self
    where
        A: Actor + Handler<Probe> + Handler<Kill>,
        A::Context: actix::dev::ToEnvelope<A, Probe> + actix::dev::ToEnvelope<A, Kill>,
    {
        let (a1, a2, a3) = (addr.clone(), addr.clone(), addr.clone());
        let marks = health.clone();
        Child {
            name,
            health: health.clone(),
            alive: Box::new(move || a1.connected()),
            probe: Box::new(move || {
                marks.mark_probe();
                let answer = a2.send(Probe);
                Box::pin(async move {
                    matches!(
                        tokio::time::timeout(PROBE_DEADLINE, answer).await,
                        Ok(Ok(()))
                    )
                })
            }),
            kill: Box::new(move |how| a3.try_send(how).is_ok()),
            last_probe: None,
            probing: false,
        }
    }
}

/// The node supervisor actor.
pub struct NodeSupervisor {
    children: Vec<Child>,
    book: ActorBook,
    every: Duration,
    /// Unhandled panics seen at the last check ([`panics::unhandled`]).
    ///
    /// [`panics::unhandled`]: branchline_actors::panics::unhandled
    unhandled_seen: Option<(u64, String)>,
}

impl NodeSupervisor {
    /// Supervises `children`, checking them every `every`; also lists and
    /// kills the short-lived actors in `book` (which end without taking
    /// the node with them).
    pub fn new(children: Vec<Child>, book: ActorBook, every: Duration) -> Self {
        NodeSupervisor {
            children,
            book,
            every,
            unhandled_seen: None,
        }
    }

    /// Probes every child not already being probed, and every listed
    /// short-lived actor (for its mailbox depth only).
    fn probe(&mut self, ctx: &mut Context<Self>) {
        for listed in self.book.listed() {
            listed.health.mark_probe();
            let _ = listed.probe.try_send(Probe);
        }
        let mut asked = Vec::new();
        for (i, child) in self.children.iter_mut().enumerate() {
            if child.probing || !(child.alive)() {
                continue;
            }
            child.probing = true;
            asked.push((i, Instant::now(), (child.probe)()));
        }
        for (i, at, answer) in asked {
            ctx.spawn(answer.into_actor(self).map(move |answered, this, _| {
                let child = &mut this.children[i];
                child.probing = false;
                if !answered && child.last_probe.is_none_or(|(ok, _)| ok) {
                    tracing::warn!(
                        actor = child.name,
                        deadline_s = PROBE_DEADLINE.as_secs(),
                        "actor did not answer its probe: stuck?"
                    );
                }
                child.last_probe = Some((answered, at.elapsed()));
            }));
        }
    }

    fn check(&mut self) {
        // A panic no supervision handled (a reply future, a task of its
        // own, a thread): seen at two checks in a row, so one that is being
        // handled right now is not mistaken for it.
        let unhandled = branchline_actors::panics::unhandled();
        if let (Some((count, last)), Some(_)) = (&unhandled, &self.unhandled_seen) {
            tracing::error!(
                panics = count,
                last = %last,
                "a panic outside any actor's supervision (in a reply future, a task of its own or a thread); stopping the node so its process supervisor restarts it"
            );
            System::current().stop_with_code(i32::from(ACTOR_DIED_EXIT));
            return;
        }
        self.unhandled_seen = unhandled;
        let dead: Vec<&str> = self
            .children
            .iter()
            .filter(|c| !(c.alive)())
            .map(|c| c.name)
            .collect();
        if !dead.is_empty() {
            tracing::error!(
                actors = %dead.join(", "),
                "actor given up after failing too often; stopping the node so its process supervisor restarts it"
            );
            System::current().stop_with_code(i32::from(ACTOR_DIED_EXIT));
        }
    }
}

impl Actor for NodeSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.every, |this, ctx| {
            this.check();
            this.probe(ctx);
        });
    }
}

/// The node's top-level actors, for status.
#[derive(Debug, Message)]
#[rtype(result = "Vec<ActorView>")]
pub struct ListActors;

impl Handler<ListActors> for NodeSupervisor {
    type Result = MessageResult<ListActors>;

    fn handle(&mut self, _: ListActors, _: &mut Context<Self>) -> Self::Result {
        let listed = self.book.listed().into_iter().map(|l| {
            let parent = Some(l.parent.clone());
            view(l.name, parent, &l.health, l.kill.connected(), None)
        });
        MessageResult(
            self.children
                .iter()
                .map(|c| {
                    view(
                        c.name.to_owned(),
                        None,
                        &c.health,
                        (c.alive)(),
                        c.last_probe,
                    )
                })
                .chain(listed)
                .collect(),
        )
    }
}

/// What status shows of one actor: `last_probe` is the watchdog's last
/// answer and its latency (top-level actors only).
fn view(
    name: String,
    parent: Option<String>,
    health: &Health,
    alive: bool,
    last_probe: Option<(bool, Duration)>,
) -> ActorView {
    ActorView {
        name,
        parent,
        kind: health.kind().to_owned(),
        alive,
        restarts: health.restarts(),
        last_cause: health.last_cause(),
        uptime_secs: health.uptime().as_secs(),
        answered_probe: last_probe.map(|(ok, _)| ok),
        probe_ms: last_probe.map(|(_, took)| u64::try_from(took.as_millis()).unwrap_or(u64::MAX)),
        mailbox_capacity: health.mailbox_capacity() as u64,
        mailbox_depth: health.mailbox_depth(),
        messages_handled: health.messages_handled(),
        note: health.note(),
    }
}

/// Why an actor could not be killed.
#[derive(Debug, thiserror::Error)]
pub enum KillError {
    /// No actor has that name.
    #[error("no actor `{name}` (actors: {})", known.join(", "))]
    NoSuchActor {
        /// The name asked for.
        name: String,
        /// The names there are.
        known: Vec<String>,
    },
    /// The actor's mailbox is full or closed.
    #[error("`{name}` did not take the request ({why})")]
    NotTaken {
        /// The actor.
        name: String,
        /// Why.
        why: String,
    },
}

/// Makes a top-level actor stop or panic (the debug shell's `kill`).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), KillError>")]
pub struct KillActor {
    /// The actor's name, as `actors` lists it.
    pub name: String,
    /// Stop or panic.
    pub how: Kill,
}

impl Handler<KillActor> for NodeSupervisor {
    type Result = Result<(), KillError>;

    fn handle(&mut self, msg: KillActor, _: &mut Context<Self>) -> Self::Result {
        if let Some(listed) = self.book.listed().into_iter().find(|l| l.name == msg.name) {
            tracing::warn!(actor = %listed.name, how = ?msg.how, "killing an actor on request");
            return listed
                .kill
                .try_send(msg.how)
                .map_err(|e| KillError::NotTaken {
                    name: msg.name,
                    why: e.to_string(),
                });
        }
        let child = self
            .children
            .iter()
            .find(|c| c.name == msg.name)
            .ok_or_else(|| KillError::NoSuchActor {
                name: msg.name.clone(),
                known: self
                    .children
                    .iter()
                    .map(|c| c.name.to_owned())
                    .chain(self.book.listed().into_iter().map(|l| l.name))
                    .collect(),
            })?;
        tracing::warn!(actor = child.name, how = ?msg.how, "killing an actor on request");
        if (child.kill)(msg.how) {
            Ok(())
        } else {
            Err(KillError::NotTaken {
                name: msg.name,
                why: "mailbox full or closed".to_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use branchline_actors::supervision::{self, MAX_RESTARTS};

    use super::*;

    struct Fragile;

    impl Actor for Fragile {
        type Context = Context<Self>;
    }

    impl Supervised for Fragile {}

    branchline_actors::supervised_controls!(Fragile);

    #[derive(Message)]
    #[rtype(result = "()")]
    enum Hit {
        Stop,
        Panic,
    }

    impl Handler<Hit> for Fragile {
        type Result = ();

        fn handle(&mut self, hit: Hit, ctx: &mut Context<Self>) {
            match hit {
                Hit::Stop => ctx.stop(),
                Hit::Panic => panic!("fragile actor hit"),
            }
        }
    }

    /// Runs a node with one fragile child, sends it `hits` and returns how
    /// the node ended (None: still running after 7 s) and what the
    /// supervisor said about the child.
    fn node_after(hits: Vec<Hit>) -> (Option<i32>, Vec<ActorView>) {
        let system = actix_rt::System::new();
        let (tx, rx) = std::sync::mpsc::channel();
        system.block_on(async move {
            let child = supervision::start("fragile", |_| Fragile);
            let watched = Child::of("fragile", &child);
            let root = NodeSupervisor::new(
                vec![watched],
                ActorBook::default(),
                Duration::from_millis(50),
            )
            .start();
            for hit in hits {
                let _ = child.0.send(hit).await;
            }
            actix_rt::spawn(async move {
                actix_rt::time::sleep(Duration::from_millis(500)).await;
                let _ = tx.send(root.send(ListActors).await.unwrap_or_default());
                actix_rt::time::sleep(Duration::from_secs(7)).await;
                System::current().stop_with_code(-1);
            });
        });
        let code = match system.run_with_code() {
            Ok(-1) => None,
            Ok(code) => Some(code),
            Err(e) => panic!("system failed: {e}"),
        };
        (code, rx.try_recv().unwrap_or_default())
    }

    #[test]
    fn given_a_child_that_stops_or_panics_then_it_is_restarted_and_counted() {
        let (code, actors) = node_after(vec![Hit::Stop, Hit::Panic]);
        assert_eq!(code, None, "the node runs on");
        assert_eq!(actors.len(), 1);
        assert_eq!((actors[0].alive, actors[0].restarts), (true, 2));
        assert_eq!(
            actors[0].answered_probe,
            Some(true),
            "the watchdog's probe was answered"
        );
        assert_eq!(
            actors[0].last_cause.as_deref(),
            Some("panicked: fragile actor hit")
        );
    }

    #[test]
    fn given_a_child_that_keeps_panicking_then_the_node_stops_with_the_actor_died_code() {
        let hits = (0..=MAX_RESTARTS).map(|_| Hit::Panic).collect();
        assert_eq!(node_after(hits).0, Some(i32::from(ACTOR_DIED_EXIT)));
    }
}
