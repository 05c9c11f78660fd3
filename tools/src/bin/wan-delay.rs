//! Adds a fixed delay to every packet an iptables `NFQUEUE` rule hands it,
//! for the testbed's WAN links: this kernel has no `netem`. It holds each
//! packet's verdict for `--delay-ms`, then accepts it; packets leave in the
//! order they came (the delay is the same for all, so FIFO is exact).
//!
//! Run one per router namespace (`ip netns exec NS wan-delay --queue 0
//! --delay-ms 30`), with `iptables -t mangle -A POSTROUTING -o WAN -j NFQUEUE
//! --queue-num 0` in the same namespace. If it dies, the rule drops every
//! packet (no `--queue-bypass`), so a dead delay program cannot go unseen:
//! the testbed checks it is alive and fails the run otherwise.
//!
//! Only packet metadata is copied to user space (copy range 0), so the cost
//! per packet is one netlink message each way.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use clap::Parser;

/// Longest sleep while packets wait: the delay's granularity.
const TICK: Duration = Duration::from_micros(500);
/// Packets the kernel queues for us before it drops.
const QUEUE_MAX: u32 = 65_536;

/// Holds every packet of an NFQUEUE queue for a fixed delay, then accepts it.
#[derive(Parser)]
struct Args {
    /// The NFQUEUE queue number.
    #[arg(long = "queue", default_value_t = 0)]
    queue_num: u16,
    /// The delay added to every packet.
    #[arg(long, default_value_t = 30)]
    delay_ms: u64,
}

fn main() {
    let Args {
        queue_num,
        delay_ms,
    } = branchline_tools::parse_args::<Args>();
    let delay = Duration::from_millis(delay_ms);
    if let Err(e) = run(queue_num, delay) {
        eprintln!("wan-delay: queue {queue_num}: {e}");
        std::process::exit(1);
    }
}

fn run(queue_num: u16, delay: Duration) -> std::io::Result<()> {
    let mut queue = nfq::Queue::open()?;
    queue.bind(queue_num)?;
    queue.set_copy_range(queue_num, 0)?;
    queue.set_queue_max_len(queue_num, QUEUE_MAX)?;
    queue.set_nonblocking(true);
    eprintln!("wan-delay: queue {queue_num}, {} ms", delay.as_millis());
    let mut held: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
    loop {
        let mut got = false;
        loop {
            match queue.recv() {
                Ok(mut msg) => {
                    msg.set_verdict(nfq::Verdict::Accept);
                    held.push_back((Instant::now() + delay, msg));
                    got = true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        let now = Instant::now();
        while held.front().is_some_and(|(due, _)| *due <= now) {
            let (_, msg) = held.pop_front().expect("checked");
            queue.verdict(msg)?;
        }
        if !got {
            let wait = held.front().map_or(TICK, |(due, _)| {
                due.saturating_duration_since(now).min(TICK)
            });
            std::thread::sleep(wait);
        }
    }
}
