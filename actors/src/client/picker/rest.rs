//! A source's rest after failures in a row: doubled for each, up to
//! [`MAX_REST`]; a success ends it.

use std::time::{Duration, Instant};

use super::MAX_REST;

/// Failures in a row and the rest they earned.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Rest {
    pub(super) failures: u32,
    pub(super) until: Option<Instant>,
}

impl Rest {
    pub(super) fn failed(&mut self, now: Instant, base: Duration) {
        self.failures += 1;
        let factor = 1u32 << (self.failures - 1).min(10);
        self.until = Some(now + base.saturating_mul(factor).min(MAX_REST));
    }

    pub(super) fn succeeded(&mut self) {
        *self = Rest::default();
    }

    pub(super) fn resting(&self, now: Instant) -> bool {
        self.until.is_some_and(|t| t > now)
    }
}
