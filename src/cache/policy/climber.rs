//! The hill climber that sizes the admission window (Caffeine's adaptive
//! W-TinyLFU): it measures the hit rate over each sample period and keeps
//! moving the window's share in the direction that raised it, reversing when
//! the hit rate fell, with a step that decays while the hit rate is steady and
//! restarts at full size when it jumps (a workload change).
//!
//! The climber only proposes adjustments (in weight units); the policy moves
//! the nodes.

/// How the climber steps. One set of constants in the cache; the replay tests
/// try others.
#[derive(Clone, Copy, Debug)]
pub(super) struct Steps {
    /// Requests per sample period, per entry of capacity.
    pub(super) sample_per_entry: f64,
    /// The full step, as a share of capacity.
    pub(super) step_share: f64,
    /// A hit-rate change (absolute, as a fraction) at least this big restarts
    /// the step at full size.
    pub(super) restart_threshold: f64,
    /// Each steady period multiplies the step by this.
    pub(super) decay: f64,
}

/// Caffeine's constants: a period of 10 requests per entry, steps of 6.25%
/// of capacity, restart on a 5-point change, decay 0.98.
pub(super) const CAFFEINE: Steps = Steps {
    sample_per_entry: 10.0,
    step_share: 0.0625,
    restart_threshold: 0.05,
    decay: 0.98,
};

#[derive(Debug)]
pub(super) struct Climber {
    steps: Steps,
    /// Full step size, in weight units.
    full_step: f64,
    /// Requests per sample period.
    sample: u64,
    hits: u64,
    misses: u64,
    /// Hit rate of the previous period.
    previous_rate: f64,
    /// The next adjustment's magnitude and sign (negative: shrink the window).
    step: f64,
}

impl Climber {
    /// A climber for a cache of `capacity` weight units holding about
    /// `entries` entries. The first step shrinks the window (as Caffeine's).
    pub(super) fn new(capacity: u64, entries: u64, steps: Steps) -> Climber {
        let full_step = steps.step_share * capacity as f64;
        Climber {
            steps,
            full_step,
            sample: ((steps.sample_per_entry * entries as f64) as u64).max(1),
            hits: 0,
            misses: 0,
            previous_rate: 0.0,
            step: -full_step,
        }
    }

    /// The sample period follows the number of entries the cache holds.
    pub(super) fn resize(&mut self, entries: u64) {
        self.sample = ((self.steps.sample_per_entry * entries as f64) as u64).max(1);
    }

    pub(super) fn record_hit(&mut self) {
        self.hits += 1;
    }

    pub(super) fn record_miss(&mut self) {
        self.misses += 1;
    }

    /// Forgets the current period (while the cache is filling, its hit rate
    /// says nothing about the window).
    pub(super) fn restart_period(&mut self) {
        self.hits = 0;
        self.misses = 0;
        self.previous_rate = 0.0;
    }

    /// At the end of a sample period, the change to make to the window's
    /// maximum (weight units, positive to grow it); else 0.
    pub(super) fn adjustment(&mut self) -> i64 {
        let requests = self.hits + self.misses;
        if requests < self.sample {
            return 0;
        }
        let rate = self.hits as f64 / requests as f64;
        let change = rate - self.previous_rate;
        let amount = if change >= 0.0 { self.step } else { -self.step };
        self.step = if change.abs() >= self.steps.restart_threshold {
            self.full_step.copysign(amount)
        } else {
            self.steps.decay * amount
        };
        self.previous_rate = rate;
        self.hits = 0;
        self.misses = 0;
        amount as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period(climber: &mut Climber, hits: u64, misses: u64) -> i64 {
        for _ in 0..hits {
            climber.record_hit();
        }
        for _ in 0..misses {
            climber.record_miss();
        }
        climber.adjustment()
    }

    #[test]
    fn steps_once_per_period_and_follows_the_hit_rate() {
        let mut climber = Climber::new(1000, 1000, CAFFEINE);
        assert_eq!(period(&mut climber, 10, 10), 0, "period not over");
        // 9,980 more requests end the first period: hit rate 0.5, up from 0:
        // keep the initial direction (shrink) at full step.
        assert_eq!(period(&mut climber, 4990, 4990), -62);
        // Hit rate fell 10 points: reverse, full step again.
        assert_eq!(period(&mut climber, 4000, 6000), 62);
        // Steady (+0.1 points): keep going, the step decays.
        assert_eq!(period(&mut climber, 4010, 5990), 62);
        assert_eq!(period(&mut climber, 4010, 5990), 61);
        // A small fall: reverse with the decayed step.
        assert_eq!(period(&mut climber, 4000, 6000), -60);
    }
}
