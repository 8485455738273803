//! The guard's counting rules, on explicit instants (the ledger) and on
//! real threads racing for the same reservation.

use super::*;

const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));
const WINDOW: Duration = Duration::from_secs(300);
const RULES: Rules = Rules {
    pair_limit: 3,
    user_ceiling: 0,
    window: WINDOW,
};

/// One attempt that fails at `now`: reserved, then settled as a failure.
fn fail(guard: &Guard, ip: IpAddr, user: &[u8], rules: Rules, now: Instant) -> Admission {
    let keys = guard.keys(ip, user);
    let admission = guard.ledger.reserve_now(keys, rules, now);
    if matches!(admission, Admission::Ask { .. }) {
        guard.ledger.settle_now(keys, Outcome::Failed, rules, now);
    }
    admission
}

fn reserve(guard: &Guard, ip: IpAddr, user: &[u8], rules: Rules, now: Instant) -> Admission {
    guard.ledger.reserve_now(guard.keys(ip, user), rules, now)
}

fn asked(address_failures: u32) -> Admission {
    Admission::Ask {
        wait: Duration::ZERO,
        address_failures,
    }
}

/// The issue: failures for a user from anywhere locked that user out
/// everywhere. Now they lock out that user from that address only.
#[test]
fn failures_block_the_user_at_that_address_only() {
    let g: Guard = Guard::default();
    let t0 = Instant::now();
    for n in 0..3 {
        assert_eq!(fail(&g, IP, b"alice", RULES, t0), asked(n));
    }
    assert_eq!(
        reserve(&g, IP, b"alice", RULES, t0),
        Admission::Blocked {
            address_failures: 3
        }
    );
    // alice at her own address, and bob at the attacker's, are still asked.
    assert_eq!(reserve(&g, OTHER, b"alice", RULES, t0), asked(0));
    assert_eq!(reserve(&g, IP, b"bob", RULES, t0), asked(3));
    // The window ends; so does the block. A limit of 0 is no limit.
    assert_eq!(reserve(&g, IP, b"alice", RULES, t0 + WINDOW), asked(0));
    let off = Rules {
        pair_limit: 0,
        ..RULES
    };
    assert!(matches!(
        reserve(&g, IP, b"alice", off, t0),
        Admission::Ask { .. }
    ));
}

#[test]
fn a_right_password_forgets_the_pairs_failures() {
    let g: Guard = Guard::default();
    let t0 = Instant::now();
    fail(&g, IP, b"alice", RULES, t0);
    fail(&g, IP, b"alice", RULES, t0);
    let keys = g.keys(IP, b"alice");
    assert!(matches!(
        g.ledger.reserve_now(keys, RULES, t0),
        Admission::Ask { .. }
    ));
    g.ledger.settle_now(keys, Outcome::Succeeded, RULES, t0);
    for _ in 0..3 {
        assert!(matches!(
            fail(&g, IP, b"alice", RULES, t0),
            Admission::Ask { .. }
        ));
    }
    assert!(matches!(
        reserve(&g, IP, b"alice", RULES, t0),
        Admission::Blocked { .. }
    ));
}

/// The issue: 40 parallel wrong passwords let 8 reach the auth service
/// against a limit of 5. Reservations count, so exactly 5 are asked.
#[test]
fn parallel_attempts_reserve_exactly_the_limit() {
    let g: Arc<Guard> = Arc::new(Guard::default());
    let rules = Rules {
        pair_limit: 5,
        ..RULES
    };
    let start = Arc::new(std::sync::Barrier::new(40));
    let threads: Vec<_> = (0..40)
        .map(|_| {
            let (g, start) = (g.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let keys = g.keys(IP, b"alice");
                let admission = g.ledger.reserve_now(keys, rules, Instant::now());
                let asked = matches!(admission, Admission::Ask { .. });
                if asked {
                    // The auth service takes a moment; everyone else is deciding meanwhile.
                    std::thread::sleep(Duration::from_millis(20));
                    g.ledger
                        .settle_now(keys, Outcome::Failed, rules, Instant::now());
                }
                asked
            })
        })
        .collect();
    let asked = threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .filter(|&a| a)
        .count();
    assert_eq!(asked, 5);
}

/// Past the user's ceiling (across addresses), attempts are not refused but
/// take turns, one per SLOW_INTERVAL; past MAX_DELAY of queue, "try later".
#[test]
fn past_the_user_ceiling_attempts_are_slowed_not_refused() {
    let g: Guard = Guard::default();
    let t0 = Instant::now();
    let rules = Rules {
        pair_limit: 2,
        user_ceiling: 4,
        window: WINDOW,
    };
    // Four addresses fail once each: alice is at her ceiling.
    for i in 0..4u8 {
        let ip = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, i));
        assert!(matches!(
            fail(&g, ip, b"alice", rules, t0),
            Admission::Ask { .. }
        ));
    }
    // Her own address is below its pair limit: asked, after waiting a turn.
    let turns: Vec<Admission> = (0..3)
        .map(|_| {
            reserve(
                &g,
                OTHER,
                b"alice",
                Rules {
                    pair_limit: 0,
                    ..rules
                },
                t0,
            )
        })
        .collect();
    let waits: Vec<Duration> = turns
        .iter()
        .map(|a| match a {
            Admission::Ask { wait, .. } => *wait,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(waits, [Duration::ZERO, SLOW_INTERVAL, SLOW_INTERVAL * 2]);
    // Others are untouched.
    assert_eq!(reserve(&g, OTHER, b"bob", rules, t0), asked(0));
    // A queue longer than MAX_DELAY: try again later.
    let many = Rules {
        pair_limit: 0,
        ..rules
    };
    let busy = (0..40)
        .map(|_| reserve(&g, OTHER, b"alice", many, t0))
        .filter(|a| *a == Admission::Busy)
        .count();
    assert!(busy > 0 && busy < 40, "{busy} of 40 told to try later");
}

#[test]
fn an_unsettled_ticket_gives_its_place_back() {
    let g: Guard = Guard::default();
    let rules = Rules {
        pair_limit: 1,
        ..RULES
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let ticket = g.admit(IP, b"alice", rules).await.expect("admitted");
        assert!(matches!(
            g.admit(IP, b"alice", rules).await,
            Err(Refusal::Blocked { .. })
        ));
        drop(ticket);
        let ticket = g.admit(IP, b"alice", rules).await.expect("admitted again");
        ticket.settle(Outcome::Failed);
        assert!(g.admit(IP, b"alice", rules).await.is_err());
    });
}

#[test]
fn the_refusal_delay_grows_with_the_address_failures() {
    let base = Duration::from_secs(1);
    assert_eq!(delay(base, 0), base);
    assert_eq!(delay(base, 3), base * 3);
    assert_eq!(delay(base, 1000), MAX_DELAY);
    assert_eq!(delay(Duration::from_secs(60), 2), Duration::from_secs(60));
}

#[test]
fn sessions_per_user_are_capped_and_given_back() {
    let g: Guard = Guard::default();
    let a = g.open_session(b"alice", 2).expect("first");
    let _b = g.open_session(b"alice", 2).expect("second");
    assert!(g.open_session(b"alice", 2).is_none());
    assert!(g.open_session(b"bob", 2).is_some());
    drop(a);
    assert!(g.open_session(b"alice", 2).is_some());
    assert!(g.open_session(b"alice", 0).is_some(), "0 is no limit");
}

/// The issue: each spelling of a user name (`Alice`, ` alice`) had counts
/// of its own, so a guesser got `max_auth_failures` guesses per spelling
/// against an auth service that ignores case.
#[test]
fn every_spelling_of_a_user_is_counted_as_one() {
    let g: Guard = Guard::default();
    let now = Instant::now();
    for user in [&b"alice"[..], b"Alice", b" ALICE"] {
        assert!(matches!(
            fail(&g, IP, user, RULES, now),
            Admission::Ask { .. }
        ));
    }
    assert!(matches!(
        reserve(&g, IP, b"aLiCe\t", RULES, now),
        Admission::Blocked { .. }
    ));
    let one = g.open_session(b"alice", 1).expect("a first session");
    assert!(
        g.open_session(b"ALICE", 1).is_none(),
        "a second, spelt otherwise"
    );
    drop(one);
}
