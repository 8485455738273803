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
    }
}

const SLOW: Duration = Duration::from_secs(20);

#[test]
fn consecutive_failures_eject_and_a_success_resets_the_count() {
    let t0 = Instant::now();
    let s = ServerState::new(t0);
    assert_eq!(s.record_failure(t0, &policy()), None);
    assert_eq!(s.record_failure(t0, &policy()), None);
    s.record_success();
    assert_eq!(s.record_failure(t0, &policy()), None);
    assert_eq!(s.record_failure(t0, &policy()), None);
    assert!(s.usable(t0));
    assert_eq!(
        s.record_failure(t0, &policy()),
        Some(Duration::from_secs(10))
    );
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
            ejected = s.record_failure(now, &policy());
        }
        let period = ejected.expect("three failures eject");
        periods.push(period.as_secs());
        // Failures while ejected (requests that were in flight) change nothing.
        assert_eq!(s.record_failure(now, &policy()), None);
        now += period;
    }
    assert_eq!(periods, [10, 20, 40, 60, 60]);
    // A success after the ejection starts the backoff over.
    s.record_success();
    for _ in 0..2 {
        s.record_failure(now, &policy());
    }
    assert_eq!(
        s.record_failure(now, &policy()),
        Some(Duration::from_secs(10))
    );
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
        assert_eq!(s.record_failure(t0, &off), None);
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
        s.record_failure(t0, &policy());
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
