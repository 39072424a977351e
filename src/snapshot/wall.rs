//! Expiry across a restart: a cache measures TTLs on its monotonic [`Clock`],
//! whose readings mean nothing to another process, so a snapshot stores each
//! deadline as absolute wall-clock time (unix milliseconds). A save reads both
//! clocks once and converts `deadline -> wall_now + (deadline - clock_now)`; a
//! load converts back the same way against its own clocks.
//!
//! A manual clock (tests) has a wall time of its own: a fixed origin plus its
//! reading. Maps that share a manual clock then agree on wall time too, and a
//! test moves the clock between a save and a load to make entries expire in
//! between, deterministically.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::clock::Clock;

/// The wall time (unix ms) a manual clock reads at zero: 2020-01-01T00:00:00Z.
pub(crate) const MANUAL_WALL_ORIGIN_MS: u64 = 1_577_836_800_000;

const NANOS_PER_MS: u64 = 1_000_000;

/// One reading of both clocks, the pair every conversion of a save or a load
/// is made against.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Now {
    /// The cache clock's reading, in nanoseconds.
    pub(crate) clock_ns: u64,
    /// Wall-clock time in unix milliseconds (at least 1).
    pub(crate) wall_ms: u64,
}

impl Now {
    /// Reads `clock` and the wall clock.
    pub(crate) fn read(clock: &Clock) -> Now {
        let clock_ns = clock.now_nanos();
        let wall_ms = if clock.is_manual() {
            MANUAL_WALL_ORIGIN_MS.saturating_add(clock_ns / NANOS_PER_MS)
        } else {
            // A system clock set before 1970 reads as the epoch.
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        };
        Now {
            clock_ns,
            wall_ms: wall_ms.max(1),
        }
    }

    /// The wall-clock expiry of an entry whose deadline is `deadline_ns` on the
    /// cache's clock: `None` if it has expired already. The remaining time is
    /// rounded up to a whole millisecond, so a live entry never comes back
    /// expired by the rounding (it may live up to 1 ms longer).
    pub(crate) fn expires_at(&self, deadline_ns: u64) -> Option<u64> {
        if deadline_ns <= self.clock_ns {
            return None;
        }
        let remaining_ms = (deadline_ns - self.clock_ns).div_ceil(NANOS_PER_MS);
        Some(self.wall_ms.saturating_add(remaining_ms))
    }

    /// The deadline on the cache's clock of a record that expires at wall time
    /// `expires_at_ms` (not 0): `None` if that time has passed.
    pub(crate) fn deadline(&self, expires_at_ms: u64) -> Option<u64> {
        if expires_at_ms <= self.wall_ms {
            return None;
        }
        let remaining_ns = (expires_at_ms - self.wall_ms).saturating_mul(NANOS_PER_MS);
        Some(self.clock_ns.saturating_add(remaining_ns))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_survives_the_round_trip_to_the_millisecond() {
        let clock = Clock::manual();
        clock.advance(std::time::Duration::from_millis(5)).unwrap();
        let now = Now::read(&clock);
        assert_eq!(now.wall_ms, MANUAL_WALL_ORIGIN_MS + 5);
        // 2.5 ms left: rounded up to 3.
        let expires = now.expires_at(now.clock_ns + 2_500_000).unwrap();
        assert_eq!(expires, now.wall_ms + 3);
        assert_eq!(now.deadline(expires), Some(now.clock_ns + 3_000_000));
        assert_eq!(now.expires_at(now.clock_ns), None);
        assert_eq!(now.deadline(now.wall_ms), None);
        let far = now.wall_ms + (u64::MAX - now.clock_ns).div_ceil(NANOS_PER_MS);
        assert_eq!(now.expires_at(u64::MAX), Some(far));
        assert_eq!(now.deadline(u64::MAX), Some(u64::MAX));
    }
}
