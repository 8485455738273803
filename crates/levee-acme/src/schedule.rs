//! When to renew, and when to try again after a failure. Pure functions of
//! the times given (no clock is read here), so tests say exactly when.
//!
//! - Renewal is due at two thirds of the lifetime (with 90-day
//!   certificates, 30 days before expiry), or `renew_before` the expiry
//!   when configured, whichever the operator chose; the CA's renewal
//!   information (ARI, RFC 9773) may move it earlier, never later.
//! - A failed attempt is retried after a backoff that doubles from
//!   [`RETRY_FIRST`] up to [`RETRY_MAX`], with up to a quarter of jitter so
//!   a fleet or many names do not retry in step; and never later than a
//!   quarter of the time left, so a long backoff cannot outlast the
//!   certificate in use.

use std::time::{Duration, SystemTime};

use crate::keys::CertInfo;

pub const RETRY_FIRST: Duration = Duration::from_secs(30);
pub const RETRY_MAX: Duration = Duration::from_secs(6 * 3600);
/// The shortest wait between two attempts for one name, whatever the rest says.
pub const RETRY_MIN: Duration = Duration::from_secs(5);

/// When the certificate described by `info` should be renewed.
/// `renew_before`: the configured window; `ari`: the CA's suggested
/// window (start, end) and a number in [0, 1) to pick a point inside it.
pub fn renew_at(
    info: &CertInfo,
    renew_before: Option<Duration>,
    ari: Option<(SystemTime, SystemTime, f64)>,
) -> SystemTime {
    let lifetime = info.lifetime();
    let by_config = match renew_before {
        Some(before) if before < lifetime => info.not_after - before,
        // A window longer than the lifetime: renew as soon as issued would
        // loop; take it as "as early as sensible", a tenth in.
        Some(_) => info.not_before + lifetime / 10,
        None => info.not_before + lifetime * 2 / 3,
    };
    match ari {
        Some((start, end, pick)) if end >= start => {
            let span = end.duration_since(start).unwrap_or_default();
            let point = start + span.mul_f64(pick.clamp(0.0, 1.0));
            point.min(by_config)
        }
        _ => by_config,
    }
}

/// How long to wait after the `failures`-th failure in a row (1-based);
/// `jitter` in [0, 1); `left`: how long the certificate in use still has.
pub fn backoff(failures: u32, jitter: f64, left: Option<Duration>) -> Duration {
    let doubled = RETRY_FIRST.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    let base = doubled.min(RETRY_MAX);
    let with_jitter = base + base.mul_f64(jitter.clamp(0.0, 1.0) / 4.0);
    let capped = match left {
        Some(left) => with_jitter.min(left / 4),
        None => with_jitter,
    };
    capped.max(RETRY_MIN)
}

/// A number in [0, 1) from the system's random source.
pub fn random_unit() -> f64 {
    let mut b = [0u8; 8];
    // On failure the zeros give no jitter, which is still correct.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn info(days: u32) -> CertInfo {
        CertInfo {
            not_before: UNIX_EPOCH + DAY * 1000,
            not_after: UNIX_EPOCH + DAY * (1000 + days),
            issuer: "t".into(),
            names: vec![],
            serial: "01".into(),
            ari_id: None,
        }
    }

    #[test]
    fn two_thirds_of_the_lifetime_by_default() {
        let i = info(90);
        assert_eq!(renew_at(&i, None, None), i.not_before + DAY * 60);
    }

    #[test]
    fn a_configured_window_counts_back_from_expiry() {
        let i = info(90);
        assert_eq!(renew_at(&i, Some(DAY * 10), None), i.not_after - DAY * 10);
        // Longer than the lifetime: not at once (that would loop).
        assert_eq!(renew_at(&i, Some(DAY * 100), None), i.not_before + DAY * 9);
    }

    #[test]
    fn ari_moves_renewal_earlier_never_later() {
        let i = info(90);
        let early = (i.not_before + DAY * 5, i.not_before + DAY * 7, 0.5);
        assert_eq!(renew_at(&i, None, Some(early)), i.not_before + DAY * 6);
        let late = (i.not_before + DAY * 80, i.not_before + DAY * 85, 0.0);
        assert_eq!(renew_at(&i, None, Some(late)), i.not_before + DAY * 60);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        assert_eq!(backoff(1, 0.0, None), RETRY_FIRST);
        assert_eq!(backoff(2, 0.0, None), RETRY_FIRST * 2);
        assert_eq!(
            backoff(3, 0.99, None),
            (RETRY_FIRST * 4).mul_f64(1.0 + 0.99 / 4.0)
        );
        assert_eq!(backoff(40, 0.0, None), RETRY_MAX);
        // Never beyond a quarter of the time left, never below the minimum.
        assert_eq!(backoff(20, 0.0, Some(DAY)), DAY / 4);
        assert_eq!(backoff(1, 0.0, Some(Duration::from_secs(1))), RETRY_MIN);
    }

    #[test]
    fn random_unit_is_in_range() {
        for _ in 0..100 {
            let r = random_unit();
            assert!((0.0..1.0).contains(&r));
        }
    }
}
