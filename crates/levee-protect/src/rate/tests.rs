use super::*;
use levee_config::KeyPart;

fn rule(requests: u32, per: Duration, burst: u32, nodelay: bool) -> RateLimit {
    RateLimit {
        name: format!("test-{requests}-{burst}-{nodelay}"),
        key: vec![KeyPart::Path],
        requests,
        per,
        burst,
        nodelay,
        dry_run: false,
        max_keys: 1000,
        status: 429,
        scope: levee_config::Scope::Local,
    }
}

/// Sends one request every `step` for `window` (both ends included) and
/// counts admissions.
fn admitted(l: &RateLimiter, key: u64, start: Instant, step: Duration, window: Duration) -> u32 {
    let mut n = 0;
    let mut t = Duration::ZERO;
    while t <= window {
        if l.check(key, start + t) == Decision::Admit {
            n += 1;
        }
        t += step;
    }
    n
}

#[test]
fn admits_burst_then_exactly_the_rate_per_key() {
    let epoch = Instant::now();
    // 10 per second, burst 5: over 3 s of hammering every millisecond,
    // 5 at once, then one per 100 ms: 5 + 30.
    let l = RateLimiter::new(&rule(10, Duration::from_secs(1), 5, true), epoch);
    let ms = Duration::from_millis(1);
    assert_eq!(admitted(&l, 1, epoch, ms, Duration::from_secs(3)), 35);
    // Another key is not affected by the first one's use.
    assert_eq!(admitted(&l, 2, epoch, ms, Duration::from_secs(3)), 35);
    assert_eq!(l.keys(), 2);
}

#[test]
fn refusal_names_when_to_retry_and_costs_nothing() {
    let epoch = Instant::now();
    let l = RateLimiter::new(&rule(1, Duration::from_secs(60), 2, true), epoch);
    assert_eq!(l.check(7, epoch), Decision::Admit);
    assert_eq!(l.check(7, epoch), Decision::Admit);
    for _ in 0..100 {
        assert_eq!(
            l.check(7, epoch + Duration::from_secs(1)),
            Decision::Refuse {
                retry_after: Duration::from_secs(59)
            }
        );
    }
    // The refused flood did not push the next slot away.
    assert_eq!(l.check(7, epoch + Duration::from_secs(60)), Decision::Admit);
    assert!(matches!(
        l.check(7, epoch + Duration::from_secs(60)),
        Decision::Refuse { .. }
    ));
}

#[test]
fn smoothing_delays_into_slots_and_queues_at_most_burst() {
    let epoch = Instant::now();
    let l = RateLimiter::new(&rule(10, Duration::from_secs(1), 3, false), epoch);
    let d: Vec<Decision> = (0..4).map(|_| l.check(1, epoch)).collect();
    assert_eq!(
        d,
        [
            Decision::Admit,
            Decision::Delay(Duration::from_millis(100)),
            Decision::Delay(Duration::from_millis(200)),
            Decision::Refuse {
                retry_after: Duration::from_millis(100)
            },
        ]
    );
    let c = &l.counters;
    assert_eq!(c.admitted.load(Ordering::Relaxed), 1);
    assert_eq!(c.delayed.load(Ordering::Relaxed), 2);
    assert_eq!(c.refused.load(Ordering::Relaxed), 1);
}

#[test]
fn full_tables_forget_idle_keys_first() {
    let epoch = Instant::now();
    let mut r = rule(1, Duration::from_secs(10), 1, true);
    r.max_keys = 1;
    let l = RateLimiter::new(&r, epoch);
    assert_eq!(l.check(1, epoch), Decision::Admit);
    // Key 1 is active: making room for key 2 forgets it (counted).
    assert_eq!(l.check(2, epoch), Decision::Admit);
    assert_eq!(l.keys(), 1);
    assert_eq!(l.counters.evicted.load(Ordering::Relaxed), 1);
    // Key 2 at rest (10 s later) is dropped for free.
    assert_eq!(l.check(3, epoch + Duration::from_secs(10)), Decision::Admit);
    assert_eq!(l.counters.evicted.load(Ordering::Relaxed), 1);
    assert_eq!(l.keys(), 1);
}

/// The judged property: on paused tokio time, over a window the admitted
/// count per key is exactly burst + rate × window.
#[tokio::test(start_paused = true)]
async fn accuracy_on_paused_time() {
    let start = tokio::time::Instant::now();
    let l = RateLimiter::new(&rule(5, Duration::from_secs(1), 3, true), start.into_std());
    let mut counts = [0u32; 3];
    // Three keys; key k sends every (k + 1) × 7 ms for 10 s.
    let mut next = [Duration::ZERO; 3];
    let end = Duration::from_secs(10);
    loop {
        let (k, at) = next
            .iter()
            .enumerate()
            .min_by_key(|(_, at)| **at)
            .map(|(k, at)| (k, *at))
            .expect("three keys");
        if at > end {
            break;
        }
        tokio::time::sleep_until(start + at).await;
        if l.check(k as u64 + 100, tokio::time::Instant::now().into_std()) == Decision::Admit {
            counts[k] += 1;
        }
        next[k] += Duration::from_millis(7 * (k as u64 + 1));
    }
    // 3 at once, then one per 200 ms up to 10 s: the slots at 0.2 s … 10 s
    // that a sender hits. Each sender is faster than the rate, so it hits
    // every slot: 3 + 50 (the slot at exactly 10 s only if it sent then).
    for (k, n) in counts.iter().enumerate() {
        let step = 7 * (k as u64 + 1);
        let hits_last = 10_000 % step == 0;
        assert_eq!(*n, 3 + 49 + u32::from(hits_last), "key {k}: {counts:?}");
    }
}
