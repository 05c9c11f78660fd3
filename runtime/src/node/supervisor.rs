//! The node supervisor: the root of a node's actors. Each child runs under
//! `actix::Supervisor`, which restarts an actor that stops. A panic is not
//! restarted by actix: the actor is dropped and its mailbox closes. The
//! node supervisor checks its children every second and, when one is gone,
//! logs which and stops the node with a non-zero exit code, so the process
//! supervisor (systemd `Restart=always`) starts a fresh runtime. Restarting
//! a panicked actor in place, with backoff and counts, is B3's.

use std::time::Duration;

use actix::prelude::*;

/// Exit code of a node whose actor died (EX_SOFTWARE).
pub const ACTOR_DIED_EXIT: u8 = 70;

/// A node stopped because one of its actors died; the binary exits with
/// [`ACTOR_DIED_EXIT`].
#[derive(Debug, thiserror::Error)]
#[error("an actor died and the node stopped (the log above names it)")]
pub struct ActorDied;

/// One supervised child: a name and a check that its mailbox is open.
pub struct Child {
    name: &'static str,
    alive: Box<dyn Fn() -> bool>,
}

impl Child {
    /// Watches the actor behind `addr`.
    pub fn of<A: Actor>(name: &'static str, addr: &Addr<A>) -> Self {
        let addr = addr.clone();
        Child {
            name,
            alive: Box::new(move || addr.connected()),
        }
    }
}

/// The node supervisor actor.
pub struct NodeSupervisor {
    children: Vec<Child>,
    every: Duration,
}

impl NodeSupervisor {
    /// Supervises `children`, checking them every `every`.
    pub fn new(children: Vec<Child>, every: Duration) -> Self {
        NodeSupervisor { children, every }
    }

    fn check(&mut self) {
        let dead: Vec<&str> = self
            .children
            .iter()
            .filter(|c| !(c.alive)())
            .map(|c| c.name)
            .collect();
        if !dead.is_empty() {
            tracing::error!(
                actors = %dead.join(", "),
                "actor died (panicked or could not restart); stopping the node so its process supervisor restarts it"
            );
            System::current().stop_with_code(i32::from(ACTOR_DIED_EXIT));
        }
    }
}

impl Actor for NodeSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.every, |this, _| this.check());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fragile;

    impl Actor for Fragile {
        type Context = Context<Self>;
    }

    impl Supervised for Fragile {}

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
    /// the node ended (None: still running after 2 s).
    fn node_after(hits: Vec<Hit>) -> Option<i32> {
        let system = actix_rt::System::new();
        system.block_on(async move {
            let child = Supervisor::start(|_| Fragile);
            let watched = Child::of("fragile", &child);
            NodeSupervisor::new(vec![watched], Duration::from_millis(50)).start();
            for hit in hits {
                let _ = child.send(hit).await;
            }
            actix_rt::spawn(async {
                actix_rt::time::sleep(Duration::from_secs(2)).await;
                System::current().stop_with_code(-1);
            });
        });
        match system.run_with_code() {
            Ok(-1) => None,
            Ok(code) => Some(code),
            Err(e) => panic!("system failed: {e}"),
        }
    }

    #[test]
    fn given_a_child_that_stops_then_actix_restarts_it_and_the_node_runs_on() {
        assert_eq!(node_after(vec![Hit::Stop, Hit::Stop]), None);
    }

    #[test]
    fn given_a_child_that_panics_then_the_node_stops_with_the_actor_died_code() {
        assert_eq!(
            node_after(vec![Hit::Panic]),
            Some(i32::from(ACTOR_DIED_EXIT))
        );
    }
}
