use super::*;

#[tokio::test(start_paused = true)]
async fn one_lead_many_waiters() {
    let flights = Flights::new();
    let Join::Lead(lead) = flights.join(b"k", 0) else {
        panic!("first miss leads")
    };
    let waiters: Vec<Waiter> = (0..10)
        .map(|_| match flights.join(b"k", 0) {
            Join::Wait(w) => w,
            other => panic!("expected a waiter, got {other:?}"),
        })
        .collect();
    assert!(matches!(flights.join(b"other", 0), Join::Lead(_)));
    let all = tokio::spawn(async move {
        let mut out = Vec::new();
        for w in waiters {
            out.push(w.wait(Duration::from_secs(5)).await);
        }
        out
    });
    tokio::task::yield_now().await;
    lead.land(Landing::Stored, 0, 10);
    let landed = all.await.unwrap();
    assert!(landed.iter().all(|l| *l == Landing::Stored));
    assert_eq!(flights.in_flight(), 0);
    assert!(matches!(flights.join(b"k", 0), Join::Lead(_)));
}

#[tokio::test(start_paused = true)]
async fn bounded_wait() {
    let flights = Flights::new();
    let _lead = flights.join(b"k", 0);
    let Join::Wait(w) = flights.join(b"k", 0) else {
        panic!("second miss waits")
    };
    let started = tokio::time::Instant::now();
    assert_eq!(w.wait(Duration::from_secs(3)).await, Landing::Pending);
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn uncacheable_is_remembered() {
    let flights = Flights::new();
    let Join::Lead(lead) = flights.join(b"k", 100) else {
        panic!()
    };
    let Join::Wait(w) = flights.join(b"k", 100) else {
        panic!()
    };
    lead.land(Landing::Uncacheable, 100, 30);
    assert_eq!(w.wait(Duration::from_secs(5)).await, Landing::Uncacheable);
    assert!(matches!(flights.join(b"k", 120), Join::Pass));
    assert!(matches!(flights.join(b"k", 130), Join::Lead(_)));
}

#[tokio::test(start_paused = true)]
async fn dropped_lead_releases_waiters() {
    let flights = Flights::new();
    let lead = flights.join(b"k", 0);
    let Join::Wait(w) = flights.join(b"k", 0) else {
        panic!()
    };
    drop(lead);
    assert_eq!(w.wait(Duration::from_secs(5)).await, Landing::Failed);
}

#[tokio::test(start_paused = true)]
async fn wait_for_never_leads() {
    let flights = Flights::new();
    assert!(flights.wait_for(b"k").is_none());
    let Join::Lead(lead) = flights.join(b"k", 0) else {
        panic!()
    };
    let waiter = flights.wait_for(b"k").expect("a flight to wait for");
    lead.land(Landing::Stored, 0, 0);
    assert_eq!(waiter.wait(Duration::from_secs(1)).await, Landing::Stored);
    assert!(flights.wait_for(b"k").is_none());
}
