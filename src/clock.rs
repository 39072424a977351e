//! The clock that per-entry time-to-live is measured against.
//!
//! A map reads its clock only when an entry can expire: on a write that gives
//! the entry a TTL, and on a read that finds an entry flagged with a deadline.
//! Entries without a TTL never look at the clock. Tests inject a [`Clock::manual`]
//! clock and move it forward instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a map's "now" comes from: the monotonic system clock (the default), or
/// a manual clock that only moves when told to (for tests).
///
/// Cloning a clock shares it: advancing a manual clock moves it for every map
/// made with a clone of it.
///
/// ```
/// use std::time::Duration;
/// let clock = mapcache::Clock::manual();
/// let map = mapcache::Map::new(mapcache::Config { clock: clock.clone(), ..Default::default() })?;
/// map.insert_with_ttl(b"k", b"v", Duration::from_secs(10))?;
/// clock.advance(Duration::from_secs(9));
/// assert!(map.get(b"k")?.is_some());
/// clock.advance(Duration::from_secs(1));
/// assert!(map.get(b"k")?.is_none()); // expired
/// # Ok::<(), mapcache::Error>(())
/// ```
#[derive(Clone)]
pub struct Clock(Arc<Source>);

enum Source {
    /// Nanoseconds since `origin`.
    System { origin: Instant },
    /// Nanoseconds since the clock was made, moved by [`Clock::advance`].
    Manual { now: AtomicU64 },
}

impl Clock {
    /// The monotonic system clock (`std::time::Instant`).
    pub fn system() -> Clock {
        Clock(Arc::new(Source::System {
            origin: Instant::now(),
        }))
    }

    /// The furthest a manual clock moves: 2^63 - 1 ns, about 292 years. A
    /// deadline is the clock's reading plus a TTL, saturating at 2^64 - 1 ns,
    /// beyond the end, so an entry written at any reading, the end included,
    /// lives its TTL or until the end: it is never born expired. (The clock
    /// used to saturate at 2^64 - 1 ns itself, where every TTL entry written
    /// was expired at once.)
    pub const MANUAL_END: Duration = Duration::from_nanos(u64::MAX / 2);

    /// A clock that starts at zero and moves only by [`Clock::advance`].
    ///
    /// For snapshots, whose expiries are wall-clock times, a manual clock's
    /// wall time is 2020-01-01T00:00:00Z plus its reading, whatever the date:
    /// a snapshot saved by a map on a manual clock and loaded by another on a
    /// manual clock expires its entries as those clocks move (the time between
    /// is how far the loader's clock has moved past the saver's); records of a
    /// snapshot saved on the system clock lie years in a manual clock's future.
    pub fn manual() -> Clock {
        Clock(Arc::new(Source::Manual {
            now: AtomicU64::new(0),
        }))
    }

    /// Moves a manual clock forward by `by`, saturating at
    /// [`Clock::MANUAL_END`] (a move past it, `Duration::MAX` for one, moves
    /// the clock to the end). Fails with [`crate::Error::InvalidArgument`] on
    /// the system clock, which cannot be moved.
    pub fn advance(&self, by: Duration) -> crate::Result<()> {
        match &*self.0 {
            Source::Manual { now } => {
                let end = u64::try_from(Clock::MANUAL_END.as_nanos()).expect("2^63 - 1");
                let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
                let _ = now.fetch_update(Ordering::Release, Ordering::Relaxed, |t| {
                    Some(t.saturating_add(by).min(end))
                });
                Ok(())
            }
            Source::System { .. } => Err(crate::Error::InvalidArgument(
                "the system clock cannot be advanced; make the map with Clock::manual()".into(),
            )),
        }
    }

    /// Whether this is a manual clock.
    pub fn is_manual(&self) -> bool {
        matches!(&*self.0, Source::Manual { .. })
    }

    /// Time since the clock's origin.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.now_nanos())
    }

    /// Nanoseconds since the clock's origin; never 0 for the system clock's
    /// reads after its creation instant, and monotonic.
    #[inline]
    pub(crate) fn now_nanos(&self) -> u64 {
        match &*self.0 {
            Source::System { origin } => {
                u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
            }
            Source::Manual { now } => now.load(Ordering::Acquire),
        }
    }

    /// The deadline of an entry written now with time-to-live `ttl` (nanoseconds
    /// since the origin, saturating; an entry expires once `now >= deadline`).
    #[inline]
    pub(crate) fn deadline(&self, ttl: Duration) -> u64 {
        let ttl = u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX);
        self.now_nanos().saturating_add(ttl)
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::system()
    }
}

/// Two clocks are equal when they are the same clock (clones of one another).
impl PartialEq for Clock {
    fn eq(&self, other: &Clock) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Clock {}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.0 {
            Source::System { .. } => f.write_str("Clock::system()"),
            Source::Manual { now } => write!(
                f,
                "Clock::manual() at {:?}",
                Duration::from_nanos(now.load(Ordering::Relaxed))
            ),
        }
    }
}
