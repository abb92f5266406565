//! Retry delays for webhook and email deliveries.
//!
//! The nominal delay after the `n`-th failed attempt is `base * 5^(n-1)`, capped at 24 hours.
//! With the default base of 5 s that gives 5 s, 25 s, 2.1 min, 10.4 min, 52 min, 4.3 h and
//! 21.7 h: 27.1 h in all, so eight attempts span 13.6 to 27.1 hours (20 on average) once jitter
//! is applied — about a day, long enough to ride out a receiver's outage.
//!
//! The actual delay is drawn uniformly between 50 % and 100 % of nominal ("equal jitter"), so
//! deliveries that failed together do not retry together, yet none retries much sooner than
//! planned.

use std::time::Duration;

use rand::Rng;

/// Default base delay (the first retry's nominal delay).
pub const DEFAULT_BASE: Duration = Duration::from_secs(5);

/// Default number of attempts (including the first) before a delivery is dead-lettered.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;

/// Growth factor between consecutive nominal delays.
pub const MULTIPLIER: f64 = 5.0;

/// Upper bound on any delay.
pub const MAX_DELAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Smallest fraction of the nominal delay that jitter may produce.
const MIN_JITTER: f64 = 0.5;

/// Nominal (jitter-free) delay before the retry that follows failed attempt number `attempt`.
///
/// `attempt` counts from 1 (the first delivery attempt); 0 is treated as 1.
pub fn nominal_delay(base: Duration, attempt: u32) -> Duration {
    let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
    let secs = base.as_secs_f64() * MULTIPLIER.powi(exponent);
    // Infinity or NaN (huge exponents) fail the conversion and fall back to the cap.
    Duration::try_from_secs_f64(secs)
        .unwrap_or(MAX_DELAY)
        .min(MAX_DELAY)
}

/// Delay before the retry that follows failed attempt number `attempt`, with equal jitter.
pub fn next_delay(base: Duration, attempt: u32) -> Duration {
    let fraction = rand::thread_rng().gen_range(MIN_JITTER..=1.0);
    jittered(nominal_delay(base, attempt), fraction)
}

fn jittered(nominal: Duration, fraction: f64) -> Duration {
    nominal.mul_f64(fraction.clamp(MIN_JITTER, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nominal_schedule_matches_the_documentation() {
        let secs: Vec<f64> = (1..=8)
            .map(|n| nominal_delay(DEFAULT_BASE, n).as_secs_f64())
            .collect();
        let expected = [5.0, 25.0, 125.0, 625.0, 3125.0, 15625.0, 78125.0, 86400.0];
        for (got, want) in secs.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "got {got}, want {want}");
        }
    }

    #[test]
    fn default_schedule_spans_about_a_day() {
        let total: Duration = (1..DEFAULT_MAX_ATTEMPTS)
            .map(|n| nominal_delay(DEFAULT_BASE, n))
            .sum();
        let hours = total.as_secs_f64() / 3600.0;
        // 27.1 h nominal: between 13.6 and 27.1 h once jittered, 20 h on average.
        assert!((26.0..=28.0).contains(&hours), "total {hours} h");
    }

    #[test]
    fn nominal_grows_monotonically_until_the_cap() {
        let mut previous = Duration::ZERO;
        for attempt in 1..=40 {
            let d = nominal_delay(DEFAULT_BASE, attempt);
            assert!(d >= previous, "attempt {attempt} shrank");
            assert!(d <= MAX_DELAY);
            if previous < MAX_DELAY {
                assert!(d > previous, "attempt {attempt} did not grow");
            }
            previous = d;
        }
        assert_eq!(previous, MAX_DELAY);
    }

    #[test]
    fn attempt_zero_is_the_first_attempt() {
        assert_eq!(nominal_delay(DEFAULT_BASE, 0), DEFAULT_BASE);
        assert_eq!(nominal_delay(DEFAULT_BASE, 1), DEFAULT_BASE);
    }

    #[test]
    fn extreme_inputs_hit_the_cap_without_panicking() {
        assert_eq!(nominal_delay(DEFAULT_BASE, u32::MAX), MAX_DELAY);
        assert_eq!(nominal_delay(Duration::MAX, 1), MAX_DELAY);
        assert_eq!(nominal_delay(Duration::from_secs(48 * 3600), 1), MAX_DELAY);
        assert_eq!(nominal_delay(Duration::ZERO, 5), Duration::ZERO);
        assert!(next_delay(Duration::MAX, u32::MAX) <= MAX_DELAY);
    }

    #[test]
    fn jitter_stays_between_half_and_full_nominal() {
        for attempt in 1..=10 {
            let nominal = nominal_delay(DEFAULT_BASE, attempt);
            for _ in 0..200 {
                let d = next_delay(DEFAULT_BASE, attempt);
                assert!(
                    d >= nominal / 2,
                    "attempt {attempt}: {d:?} < half of {nominal:?}"
                );
                assert!(d <= nominal, "attempt {attempt}: {d:?} > {nominal:?}");
            }
        }
    }

    #[test]
    fn jitter_actually_spreads() {
        let samples: Vec<Duration> = (0..100).map(|_| next_delay(DEFAULT_BASE, 4)).collect();
        let min = samples.iter().min().unwrap();
        let max = samples.iter().max().unwrap();
        assert!(max > min);
    }

    #[test]
    fn jitter_bounds_are_exact() {
        let nominal = Duration::from_secs(100);
        assert_eq!(jittered(nominal, 0.5), Duration::from_secs(50));
        assert_eq!(jittered(nominal, 1.0), nominal);
        assert_eq!(jittered(nominal, 0.0), Duration::from_secs(50));
        assert_eq!(jittered(nominal, 2.0), nominal);
    }
}
