//! Joining the cluster: how a device gets its certificate without anyone
//! copying files to it.
//!
//! The server makes its cluster CA on first start ([`ca`]) and hands out
//! join tokens ([`token`]: a secret, the CA's fingerprint and the server's
//! address), kept on the server until they expire ([`tokens`]). A client
//! started with `--join TOKEN` ([`client`]) dials the server, accepts it
//! only if its certificate chains to the CA the token names (pinning: no
//! trust on first use), proves it holds the token's secret, and gets a
//! certificate for a key it made itself; from then on every connection is
//! mutual TLS under that CA. The private key never leaves the device.
//!
//! - [`token`]: the token's text form, parsed and printed (no I/O).
//! - [`tokens`]: the server's store of live tokens, in its sled.
//! - [`ca`]: the server's own CA: made at first start, signs joiners.
//! - [`client`]: the client side: join, and find the identity it got.

pub mod ca;
pub mod client;
pub mod token;
pub mod tokens;
