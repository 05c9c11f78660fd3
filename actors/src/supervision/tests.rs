//! Tests of `supervision`.

use super::*;

#[derive(Default)]
struct Counter {
    handled: u32,
    starts: Arc<AtomicU32>,
}

impl Actor for Counter {
    type Context = Context<Self>;
    fn started(&mut self, _: &mut Context<Self>) {
        self.starts.fetch_add(1, Ordering::Relaxed);
    }
}

impl Supervised for Counter {}

crate::supervised_controls!(Counter);

#[derive(Message)]
#[rtype(result = "u32")]
enum Poke {
    Count,
    Stop,
    Panic,
}

impl Handler<Poke> for Counter {
    type Result = u32;
    fn handle(&mut self, poke: Poke, ctx: &mut Context<Self>) -> u32 {
        handled();
        match poke {
            Poke::Count => {
                self.handled += 1;
                self.handled
            }
            Poke::Stop => {
                ctx.stop();
                0
            }
            Poke::Panic => panic!("poked to death"),
        }
    }
}

fn run<T: 'static>(test: impl Future<Output = T> + 'static) -> T {
    System::new().block_on(test)
}

#[test]
fn messages_are_counted_and_a_probe_measures_the_messages_ahead_of_it() {
    let health = run(async {
        let (addr, health) = start("counter", |_| Counter::default());
        for _ in 0..5 {
            addr.do_send(Poke::Count);
        }
        health.mark_probe();
        addr.send(Probe).await.unwrap();
        assert_eq!(addr.send(Poke::Count).await.unwrap(), 6);
        health
    });
    assert_eq!(health.mailbox_depth(), 5, "five were queued ahead");
    assert_eq!(health.messages_handled(), 7, "six pokes and the probe");
}

#[test]
fn a_panicking_actor_is_restarted_in_place_and_keeps_its_state_and_address() {
    let (count, health) = run(async {
        let starts = Arc::new(AtomicU32::new(0));
        let s = starts.clone();
        let (addr, health) = start("counter", move |_| Counter {
            handled: 0,
            starts: s,
        });
        assert_eq!(addr.send(Poke::Count).await.unwrap(), 1);
        assert!(
            addr.send(Poke::Panic).await.is_err(),
            "the panicking call gets no answer"
        );
        let count = addr.send(Poke::Count).await.unwrap();
        assert_eq!(starts.load(Ordering::Relaxed), 2, "started again");
        (count, health)
    });
    assert_eq!(count, 2, "same address, same struct");
    assert_eq!(health.restarts(), 1);
    assert_eq!(
        health.last_cause().as_deref(),
        Some("panicked: poked to death")
    );
    assert_eq!(health.kind(), "counter");
    assert_eq!(
        health.mailbox_capacity(),
        16,
        "actix's default, read from the context"
    );
}

#[test]
fn a_stopped_actor_is_restarted_too() {
    let health = run(async {
        let (addr, health) = start("counter", |_| Counter::default());
        addr.send(Poke::Stop).await.unwrap();
        assert_eq!(addr.send(Poke::Count).await.unwrap(), 1);
        health
    });
    assert_eq!(health.restarts(), 1);
    assert_eq!(health.last_cause().as_deref(), Some("stopped"));
}

#[test]
fn an_actor_that_keeps_failing_is_given_up_and_its_mailbox_closes() {
    let (connected, health) = run(async {
        let (addr, health) = start("counter", |_| Counter::default());
        for _ in 0..=MAX_RESTARTS {
            let _ = addr.send(Poke::Panic).await;
        }
        tokio::time::sleep(MAX_BACKOFF).await;
        (addr.connected(), health)
    });
    assert!(!connected, "given up: escalated to the node supervisor");
    assert!(health.gave_up());
    assert_eq!(health.restarts(), u32::try_from(MAX_RESTARTS).unwrap());
}

/// Panics in `started`: on every start.
struct CrashLoop(Arc<AtomicU32>);

impl Actor for CrashLoop {
    type Context = Context<Self>;
    fn started(&mut self, _: &mut Context<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
        panic!("broken at start");
    }
}

impl Supervised for CrashLoop {}

#[test]
fn a_crash_loop_backs_off_and_escalates_instead_of_spinning() {
    let starts = Arc::new(AtomicU32::new(0));
    let counted = starts.clone();
    let begun = Instant::now();
    let cpu_before = cpu_time();
    let health = run(async move {
        let (addr, health) = start("crash-loop", move |_| CrashLoop(counted));
        while addr.connected() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        health
    });
    let took = begun.elapsed();
    assert!(health.gave_up());
    assert_eq!(
        starts.load(Ordering::Relaxed),
        u32::try_from(MAX_RESTARTS).unwrap() + 1
    );
    // Backoffs of 50, 100, 200, 400 and 800 ms come first.
    assert!(
        took >= Duration::from_millis(1500),
        "gave up after {took:?}"
    );
    let cpu = cpu_time() - cpu_before;
    assert!(cpu < took / 2, "the loop spun: {cpu:?} of CPU in {took:?}");
}

/// CPU time this thread (which runs the actor) has used, from /proc.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // Linux reports in USER_HZ, 100 per second on every mainstream build.
    Duration::from_millis(ticks * 10)
}
