//! How fast a download may pull across the link into its office: plain
//! state machines that take `now` as an argument.
//!
//! - [`ledbat`]: the background protocol's delay-based congestion
//!   controller.
//! - [`delay`]: queuing delay from RTT samples (RFC 6817's estimate).
//! - [`busy`]: the busy pause of the link into the office.
//! - [`token_bucket`]: pacing a pull across a rate-capped office link.

pub mod busy;
pub mod delay;
pub mod ledbat;
pub mod token_bucket;
