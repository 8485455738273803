use super::*;
use levee_config::Scope;
use std::hash::Hasher;

/// A fleet member whose Redis (port 1) never answers: every decision is
/// the fallback's.
fn fleet(name: &str) -> Arc<Fleet> {
    let text = format!(
        "[[listener]]\naddress = \"127.0.0.1:80\"\n[[route]]\nrespond = \"x\"\n\
         [fleet]\nname = \"{name}\"\ninstance = \"i\"\nredis = \"redis://127.0.0.1:1\"\n"
    );
    let config = levee_config::parse(&text, std::path::Path::new("t.toml")).expect("valid");
    let settings = levee_fleet::Settings::load(config.fleet.as_ref().expect("fleet"), "t".as_ref())
        .expect("no files to read");
    let f = Fleet::start(settings, Default::default(), Box::new(Default::default))
        .expect("fleet thread");
    f.assume_live(3);
    f
}

/// Rule counters are per name and process-wide, so each test names its own.
fn rule(name: &str, requests: u32, per: Duration, burst: u32) -> RateLimit {
    RateLimit {
        name: name.to_owned(),
        key: vec![levee_config::KeyPart::Path],
        requests,
        per,
        burst,
        nodelay: true,
        dry_run: false,
        max_keys: 1000,
        status: 429,
        scope: Scope::Fleet,
    }
}

fn limiter(f: &Arc<Fleet>, r: &RateLimit) -> RateLimiter {
    let mut l = RateLimiter::new(r, Instant::now());
    l.fleet = Some(FleetLimit::new(f.clone(), r));
    l
}

async fn admitted(l: &RateLimiter, key: u64, n: u32) -> u32 {
    let mut a = 0;
    for _ in 0..n {
        if l.decide(key, Instant::now()).await == Decision::Admit {
            a += 1;
        }
    }
    a
}

#[tokio::test]
async fn without_redis_each_member_admits_its_share() {
    let f = fleet("share");
    let l = limiter(&f, &rule("share", 30, Duration::from_secs(3600), 30));
    // 30 per hour shared by 3 live members: 10 here.
    assert_eq!(admitted(&l, 7, 20).await, 10);
    assert_eq!(l.counters.fallback.load(Ordering::Relaxed), 20);
    assert_eq!(l.counters.refused.load(Ordering::Relaxed), 10);
    // Another key has its own share.
    assert_eq!(admitted(&l, 8, 20).await, 10);
    f.stop(Duration::ZERO);
}

#[tokio::test]
async fn the_fallback_starts_from_what_redis_last_said() {
    let f = fleet("seed");
    let r = rule("seed", 30, Duration::from_secs(3600), 30);
    let l = limiter(&f, &r);
    let part = l.fleet.as_ref().expect("fleet part");
    // Redis said the key had 6 of its 30 in use: this member's share of
    // the other 24 is 8.
    let t = l.t(Instant::now());
    lock(part.shard(5)).entry(5).or_default().fleet_tat = t + 6 * l.interval;
    assert_eq!(admitted(&l, 5, 20).await, 8);
    f.stop(Duration::ZERO);
}

#[tokio::test]
async fn what_was_admitted_alone_is_charged_once() {
    let f = fleet("debts");
    let r = rule("debts", 30, Duration::from_secs(3600), 30);
    let l = limiter(&f, &r);
    assert_eq!(admitted(&l, 9, 4).await, 4);
    let mut takes = Vec::new();
    l.drain_debts(&mut takes);
    assert_eq!(takes.len(), 1, "{takes:?}");
    let t = &takes[0];
    assert!(t.charge);
    assert_eq!(t.want, 4);
    assert_eq!(t.interval_us, 120_000_000);
    assert_eq!(t.tolerance_us, 29 * 120_000_000);
    assert_eq!(t.key, format!("{{debts}}:rl:{}:{:016x}", r.name, 9));
    let mut again = Vec::new();
    l.drain_debts(&mut again);
    assert!(again.is_empty(), "charged twice: {again:?}");
    f.stop(Duration::ZERO);
}

#[test]
fn members_of_a_fleet_hash_keys_alike() {
    let r = rule("hash", 10, Duration::from_secs(1), 10);
    let (a, b, other) = (fleet("same"), fleet("same"), fleet("other"));
    let hash = |f: &Arc<Fleet>| {
        let mut h = FleetLimit::new(f.clone(), &r).hasher();
        h.write(b"code=SPRING");
        h.finish()
    };
    assert_eq!(hash(&a), hash(&b));
    assert_ne!(hash(&a), hash(&other));
    for f in [a, b, other] {
        f.stop(Duration::ZERO);
    }
}

#[test]
fn leases_stay_within_one_percent_of_the_limit() {
    let f = fleet("slices");
    // 100 per window shared by 3: no lease (a slice would be under 2).
    let promo = rule("small", 100, Duration::from_secs(60), 100);
    assert_eq!(FleetLimit::new(f.clone(), &promo).slice(&promo), None);
    // 1,000,000 per second: 1 % is 10,000, a third of it per member.
    let big = rule("big", 1_000_000, Duration::from_secs(1), 1_000_000);
    assert_eq!(FleetLimit::new(f.clone(), &big).slice(&big), Some(3333));
    let mut smoothing = big.clone();
    smoothing.nodelay = false;
    assert_eq!(
        FleetLimit::new(f.clone(), &smoothing).slice(&smoothing),
        None
    );
    f.stop(Duration::ZERO);
}
