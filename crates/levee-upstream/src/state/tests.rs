//! Passive ejection with exponential backoff, and slow start, on explicit
//! time (tokio `Instant`s built by hand; nothing sleeps).

use std::time::Duration;

use levee_config::PassiveHealth;
use tokio::time::Instant;

use super::*;

fn policy() -> PassiveHealth {
    PassiveHealth {
        max_fails: 3,
        fail_timeout: Duration::from_secs(10),
        max_ejection: Duration::from_secs(60),
        ..PassiveHealth::default()
    }
}

/// A failure the group's bound allows to eject: the ejection period if it did.
fn fail(s: &ServerState, now: Instant, policy: &PassiveHealth) -> Option<Duration> {
    match s.record_failure(now, policy, || true) {
        Failure::Ejected(period) => Some(period),
        _ => None,
    }
}

const SLOW: Duration = Duration::from_secs(20);

#[test]
fn consecutive_failures_eject_and_a_success_resets_the_count() {
    let t0 = Instant::now();
    let s = ServerState::new(t0);
    assert_eq!(fail(&s, t0, &policy()), None);
    assert_eq!(fail(&s, t0, &policy()), None);
    s.record_success();
    assert_eq!(fail(&s, t0, &policy()), None);
    assert_eq!(fail(&s, t0, &policy()), None);
    assert!(s.usable(t0));
    assert_eq!(fail(&s, t0, &policy()), Some(Duration::from_secs(10)));
    assert!(!s.usable(t0));
    assert_eq!(s.status(t0, SLOW), Status::Ejected);
    assert!(!s.usable(t0 + Duration::from_millis(9_999)));
    assert!(s.usable(t0 + Duration::from_secs(10)));
}

#[test]
fn ejections_back_off_exponentially_up_to_the_cap() {
    let t0 = Instant::now();
    let s = ServerState::new(t0);
    let mut now = t0;
    let mut periods = Vec::new();
    for _ in 0..5 {
        let mut ejected = None;
        for _ in 0..3 {
            ejected = fail(&s, now, &policy());
        }
        let period = ejected.expect("three failures eject");
        periods.push(period.as_secs());
        // Failures while ejected (requests that were in flight) change nothing.
        assert_eq!(fail(&s, now, &policy()), None);
        now += period;
    }
    assert_eq!(periods, [10, 20, 40, 60, 60]);
    // A success after the ejection starts the backoff over.
    s.record_success();
    for _ in 0..2 {
        fail(&s, now, &policy());
    }
    assert_eq!(fail(&s, now, &policy()), Some(Duration::from_secs(10)));
}

#[test]
fn a_failure_the_bound_refuses_keeps_the_server_and_starts_the_count_again() {
    let t0 = Instant::now();
    let s = ServerState::new(t0);
    let p = policy();
    assert_eq!(s.record_failure(t0, &p, || false), Failure::Counted);
    assert_eq!(s.record_failure(t0, &p, || false), Failure::Counted);
    assert_eq!(s.record_failure(t0, &p, || false), Failure::Kept);
    assert!(s.usable(t0));
    assert_eq!(s.record_failure(t0, &p, || true), Failure::Counted);
}

#[test]
fn max_fails_zero_never_ejects() {
    let t0 = Instant::now();
    let s = ServerState::new(t0);
    let off = PassiveHealth {
        max_fails: 0,
        ..policy()
    };
    for _ in 0..100 {
        assert_eq!(fail(&s, t0, &off), None);
    }
    assert!(s.usable(t0));
}

#[test]
fn slow_start_ramps_the_weight_after_an_ejection() {
    let t0 = Instant::now();
    let s = ServerState::new(t0);
    let full = 5 * WEIGHT_SCALE;
    assert_eq!(s.effective_weight(5, t0, SLOW), full);
    for _ in 0..3 {
        fail(&s, t0, &policy());
    }
    let back = t0 + Duration::from_secs(10);
    assert_eq!(s.effective_weight(5, back, SLOW), full / 10);
    assert_eq!(s.status(back, SLOW), Status::SlowStart);
    assert_eq!(
        s.effective_weight(5, back + Duration::from_secs(10), SLOW),
        full / 2
    );
    assert_eq!(
        s.effective_weight(5, back + Duration::from_secs(20), SLOW),
        full
    );
    assert_eq!(s.status(back + SLOW, SLOW), Status::Up);
    // Without slow start the weight is whole at once.
    assert_eq!(s.effective_weight(5, back, Duration::ZERO), full);
}

#[test]
fn coming_up_from_health_checks_starts_slow_start() {
    let t0 = Instant::now();
    let s = ServerState::new(t0);
    s.set_check_up(false, t0);
    assert!(!s.usable(t0));
    assert_eq!(s.status(t0, SLOW), Status::Down);
    let up = t0 + Duration::from_secs(30);
    s.set_check_up(true, up);
    assert!(s.usable(up));
    assert_eq!(s.effective_weight(1, up, SLOW), WEIGHT_SCALE / 10);
    assert_eq!(
        s.effective_weight(1, up + Duration::from_secs(5), SLOW),
        WEIGHT_SCALE / 4
    );
}

#[test]
fn operator_states_and_weight_override() {
    let t0 = Instant::now();
    let s = ServerState::new(t0);
    s.set_admin(AdminState::Draining);
    assert!(!s.usable(t0));
    assert!(!s.keeps_connections());
    assert_eq!(s.status(t0, SLOW), Status::Draining);
    s.set_admin(AdminState::Disabled);
    assert_eq!(s.status(t0, SLOW), Status::Disabled);
    s.set_admin(AdminState::Enabled);
    assert!(s.usable(t0));
    s.set_weight_override(Some(7));
    assert_eq!(s.effective_weight(1, t0, SLOW), 7 * WEIGHT_SCALE);
    s.set_weight_override(None);
    assert_eq!(s.effective_weight(1, t0, SLOW), WEIGHT_SCALE);
}

#[test]
fn leases_count_requests_in_flight() {
    let s = std::sync::Arc::new(ServerState::new(Instant::now()));
    let a = s.lease();
    let b = s.lease();
    assert_eq!(s.active(), 2);
    drop(a);
    assert_eq!(s.active(), 1);
    drop(b);
    assert_eq!(s.active(), 0);
}

#[test]
fn the_latency_estimate_halves_every_half_life_without_samples() {
    let t0 = Instant::now();
    let s = ServerState::new(t0);
    assert_eq!(s.ewma_us(t0), 0);
    s.observe_latency(Duration::from_millis(100), t0);
    assert_eq!(s.ewma_us(t0), 100_000);
    assert_eq!(s.ewma_us(t0 + LATENCY_HALF_LIFE), 50_000);
    assert_eq!(s.ewma_us(t0 + LATENCY_HALF_LIFE * 3), 12_500);
}

#[test]
fn a_recent_estimate_moves_an_eighth_an_old_one_gives_way_to_the_sample() {
    let t0 = Instant::now();
    let s = ServerState::new(t0);
    s.observe_latency(Duration::from_millis(80), t0);
    s.observe_latency(Duration::from_millis(0), t0);
    assert_eq!(s.ewma_us(t0), 70_000, "7/8 of 80 ms, plus 1/8 of 1 us");
    let later = t0 + LATENCY_HALF_LIFE * 20;
    s.observe_latency(Duration::from_millis(2), later);
    let e = s.ewma_us(later);
    assert!((2_000..2_100).contains(&e), "{e} us");
}
