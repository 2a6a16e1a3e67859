//! When to try a provider again: exponential backoff with full jitter, the server's own
//! `Retry-After` and rate-limit reset headers, a circuit breaker per provider, and the moving
//! average of time to first token that the `fastest` route sorts by. Pure state and arithmetic;
//! the caller passes the time in.

use std::time::{Duration, Instant, SystemTime};

/// The first retry waits up to this long; each further one doubles it, up to [`BACKOFF_CAP`].
pub const BACKOFF_BASE: Duration = Duration::from_millis(500);
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// A server asking for a longer pause than this is not waited for: the route falls back instead.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// Full jitter: a uniform draw (`unit` in [0, 1)) from zero to the exponential ceiling.
pub fn backoff(attempt: u32, unit: f64) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX))
        .min(BACKOFF_CAP);
    ceiling.mul_f64(unit.clamp(0.0, 1.0))
}

/// How long the server asked us to wait, from the headers it sends with 429 and 503:
/// `retry-after` (seconds or an HTTP date), `retry-after-ms`, OpenAI's
/// `x-ratelimit-reset-requests` / `-tokens` (`1s`, `6m0s`, `20ms`) and Anthropic's
/// `anthropic-ratelimit-*-reset` (an RFC 3339 time). The longest one wins.
pub fn retry_after(headers: &[(String, String)], now: SystemTime) -> Option<Duration> {
    let mut longest: Option<Duration> = None;
    let mut take = |d: Duration| longest = Some(longest.map_or(d, |l| l.max(d)));
    for (name, value) in headers {
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "retry-after" => {
                if let Ok(secs) = value.parse::<f64>() {
                    if secs.is_finite() && secs >= 0.0 {
                        take(Duration::from_secs_f64(secs.min(86_400.0)));
                    }
                } else if let Ok(at) = httpdate::parse_http_date(value) {
                    take(at.duration_since(now).unwrap_or_default());
                }
            }
            "retry-after-ms" => {
                if let Ok(ms) = value.parse::<f64>()
                    && ms.is_finite()
                    && ms >= 0.0
                {
                    take(Duration::from_secs_f64((ms / 1000.0).min(86_400.0)));
                }
            }
            "x-ratelimit-reset-requests" | "x-ratelimit-reset-tokens" => {
                if let Some(d) = go_duration(value) {
                    take(d);
                }
            }
            n if n.starts_with("anthropic-ratelimit-") && n.ends_with("-reset") => {
                if let Some(at) = rfc3339(value) {
                    take(at.duration_since(now).unwrap_or_default());
                }
            }
            _ => {}
        }
    }
    longest
}

/// `1h2m3.5s`, `250ms`, `6m0s`.
fn go_duration(text: &str) -> Option<Duration> {
    let mut total = 0.0f64;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += number * scale;
    }
    (total.is_finite() && total >= 0.0).then(|| Duration::from_secs_f64(total.min(86_400.0)))
}

/// `2026-11-25T05:38:17Z` (fractions and a `+00:00` offset accepted; other offsets applied).
fn rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &text[19..];
    let mut fraction = 0.0;
    if let Some(after) = rest.strip_prefix('.') {
        let end = after
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after.len());
        fraction = format!("0.{}", &after[..end]).parse().ok()?;
        rest = &after[end..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_secs_f64(fraction))
}

/// Consecutive failures that open the circuit.
pub const BREAKER_FAILURES: u32 = 5;
/// How long an open circuit refuses calls before letting one through to test the provider.
pub const BREAKER_COOLDOWN: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Refused,
    Normal,
    /// The one call let through a half-open circuit.
    Trial,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Circuit {
    Closed,
    /// Refusing calls until the cooldown ends.
    Open,
    /// One trial call is allowed through.
    HalfOpen,
}

/// Stops calling a provider that keeps failing, and tries it again after a cooldown.
#[derive(Debug)]
pub struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
    trial_in_flight: bool,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker::new()
    }
}

impl Breaker {
    pub fn new() -> Breaker {
        Breaker {
            failures: 0,
            open_until: None,
            trial_in_flight: false,
        }
    }

    pub fn state(&self, now: Instant) -> Circuit {
        match self.open_until {
            None => Circuit::Closed,
            Some(until) if now < until => Circuit::Open,
            Some(_) => Circuit::HalfOpen,
        }
    }

    /// Whether a call may go out now. In the half-open state only one trial call does.
    pub fn allow(&mut self, now: Instant) -> bool {
        self.admit(now) != Admission::Refused
    }

    /// Like [`Breaker::allow`], saying whether the call is the trial (whose end must be reported,
    /// or the slot released).
    pub fn admit(&mut self, now: Instant) -> Admission {
        match self.state(now) {
            Circuit::Closed => Admission::Normal,
            Circuit::Open => Admission::Refused,
            Circuit::HalfOpen if self.trial_in_flight => Admission::Refused,
            Circuit::HalfOpen => {
                self.trial_in_flight = true;
                Admission::Trial
            }
        }
    }

    pub fn success(&mut self) {
        self.failures = 0;
        self.open_until = None;
        self.trial_in_flight = false;
    }

    pub fn failure(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        let trial_failed = self.trial_in_flight;
        self.trial_in_flight = false;
        if trial_failed || self.failures >= BREAKER_FAILURES {
            self.open_until = Some(now + BREAKER_COOLDOWN);
        }
    }

    /// A call that ended without saying anything about the provider (cancelled).
    pub fn release(&mut self) {
        self.trial_in_flight = false;
    }
}

/// An exponentially weighted moving average (of time to first token, in milliseconds).
#[derive(Clone, Copy, Debug, Default)]
pub struct Ewma {
    value: Option<f64>,
}

impl Ewma {
    const ALPHA: f64 = 0.3;

    pub fn observe(&mut self, sample: f64) {
        self.value = Some(match self.value {
            None => sample,
            Some(v) => v + Self::ALPHA * (sample - v),
        });
    }

    pub fn get(&self) -> Option<f64> {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn backoff_is_full_jitter_under_a_growing_ceiling() {
        assert_eq!(backoff(0, 0.0), Duration::ZERO);
        assert_eq!(backoff(0, 1.0), Duration::from_millis(500));
        assert_eq!(backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(3, 0.5), Duration::from_secs(2));
        assert_eq!(backoff(10, 1.0), BACKOFF_CAP);
        assert_eq!(backoff(u32::MAX, 1.0), BACKOFF_CAP);
    }

    #[test]
    fn reads_every_kind_of_retry_header() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            retry_after(&h(&[("Retry-After", "2")]), now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&h(&[("retry-after-ms", "1500")]), now),
            Some(Duration::from_millis(1500))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(
            retry_after(&h(&[("retry-after", &later)]), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(
                &h(&[
                    ("x-ratelimit-reset-requests", "1m30s"),
                    ("x-ratelimit-reset-tokens", "250ms")
                ]),
                now
            ),
            Some(Duration::from_secs(90))
        );
        // 1_700_000_000 is 2023-11-14T22:13:20Z.
        assert_eq!(
            retry_after(
                &h(&[("anthropic-ratelimit-requests-reset", "2023-11-14T22:13:25Z")]),
                now
            ),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            retry_after(
                &h(&[(
                    "anthropic-ratelimit-tokens-reset",
                    "2023-11-14T23:13:26.5+01:00"
                )]),
                now
            ),
            Some(Duration::from_millis(6500))
        );
        assert_eq!(
            retry_after(&h(&[("retry-after", "soon"), ("x-other", "1")]), now),
            None
        );
        assert_eq!(retry_after(&h(&[("retry-after", "-3")]), now), None);
    }

    #[test]
    fn the_breaker_opens_cools_down_and_tests_once() {
        let t0 = Instant::now();
        let mut b = Breaker::new();
        for _ in 0..BREAKER_FAILURES - 1 {
            assert!(b.allow(t0));
            b.failure(t0);
        }
        assert_eq!(b.state(t0), Circuit::Closed);
        b.failure(t0);
        assert_eq!(b.state(t0), Circuit::Open);
        assert!(!b.allow(t0 + BREAKER_COOLDOWN / 2));
        let later = t0 + BREAKER_COOLDOWN;
        assert_eq!(b.state(later), Circuit::HalfOpen);
        assert!(b.allow(later));
        assert!(!b.allow(later), "only one trial call");
        b.failure(later);
        assert_eq!(b.state(later), Circuit::Open);
        let again = later + BREAKER_COOLDOWN;
        assert!(b.allow(again));
        b.success();
        assert_eq!(b.state(again), Circuit::Closed);
        assert!(b.allow(again) && b.allow(again));
    }

    #[test]
    fn ewma_moves_towards_samples() {
        let mut e = Ewma::default();
        assert_eq!(e.get(), None);
        e.observe(100.0);
        e.observe(200.0);
        assert_eq!(e.get(), Some(130.0));
    }
}
