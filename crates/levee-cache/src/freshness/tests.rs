use super::*;

fn stored(cc: &str) -> Stored {
    Stored {
        status: 200,
        request_time: 1000,
        response_time: 1000,
        date: Some(1000),
        age: 0,
        expires: None,
        last_modified: None,
        directives: Response::parse(&[cc.as_bytes()]),
    }
}

const H: Heuristic = Heuristic {
    fraction: 0.1,
    max: 86_400,
};

#[test]
fn lifetime_precedence() {
    let mut s = stored("max-age=60, s-maxage=120");
    s.expires = Some(Expires::At(5000));
    assert_eq!(s.lifetime(H), 120);
    s.directives.s_maxage = None;
    assert_eq!(s.lifetime(H), 60);
    s.directives.max_age = None;
    assert_eq!(s.lifetime(H), 4000);
    s.expires = Some(Expires::Invalid);
    assert_eq!(s.lifetime(H), 0, "an invalid Expires means already expired");
}

#[test]
fn heuristic_only_for_heuristic_statuses() {
    let mut s = stored("");
    s.last_modified = Some(0);
    assert_eq!(s.lifetime(H), 100, "10% of 1000 s");
    s.status = 302;
    assert_eq!(s.lifetime(H), 0);
    s.directives.public = true;
    assert_eq!(s.lifetime(H), 100);
    s.status = 200;
    s.last_modified = Some(0);
    s.date = Some(10_000_000);
    assert_eq!(s.lifetime(H), 86_400, "capped");
}

#[test]
fn age_honours_upstream_age_and_delays() {
    let mut s = stored("max-age=60");
    s.request_time = 995;
    s.response_time = 1000;
    s.age = 30;
    s.date = Some(990);
    assert_eq!(
        s.initial_age(),
        35,
        "Age 30 + 5 s response delay beats 10 s apparent age"
    );
    assert_eq!(s.current_age(1010), 45);
    assert_eq!(decide(&s, &Request::default(), 1020, H), Use::Fresh);
    assert_eq!(decide(&s, &Request::default(), 1025, H), Use::Revalidate);
}

#[test]
fn request_directives_tighten_or_loosen() {
    let s = stored("max-age=60");
    let req = |t: &str| Request::parse(&[t.as_bytes()]);
    assert_eq!(decide(&s, &req(""), 1030, H), Use::Fresh);
    assert_eq!(decide(&s, &req("max-age=10"), 1030, H), Use::Revalidate);
    assert_eq!(decide(&s, &req("min-fresh=40"), 1030, H), Use::Revalidate);
    assert_eq!(decide(&s, &req("no-cache"), 1001, H), Use::Revalidate);
    assert_eq!(decide(&s, &req("max-stale=30"), 1080, H), Use::StaleAllowed);
    assert_eq!(decide(&s, &req("max-stale=10"), 1080, H), Use::Revalidate);
    assert_eq!(decide(&s, &req("max-stale"), 99_999, H), Use::StaleAllowed);
}

#[test]
fn no_cache_and_revalidation_directives() {
    assert_eq!(
        decide(
            &stored("max-age=60, no-cache"),
            &Request::default(),
            1001,
            H
        ),
        Use::Revalidate
    );
    let s = stored("max-age=60, must-revalidate, stale-while-revalidate=100");
    let req = Request::parse(&[b"max-stale"]);
    assert_eq!(
        decide(&s, &req, 1070, H),
        Use::Revalidate,
        "must-revalidate forbids stale"
    );
    assert!(!usable_on_error(&s, 1070, H, 1000));
    let s = stored("max-age=60, proxy-revalidate");
    assert_eq!(decide(&s, &req, 1070, H), Use::Revalidate);
}

#[test]
fn stale_while_revalidate_and_if_error() {
    let s = stored("max-age=60, stale-while-revalidate=30, stale-if-error=100");
    assert_eq!(
        decide(&s, &Request::default(), 1080, H),
        Use::StaleWhileRevalidate
    );
    assert_eq!(decide(&s, &Request::default(), 1100, H), Use::Revalidate);
    assert!(usable_on_error(&s, 1150, H, 0));
    assert!(!usable_on_error(&s, 1170, H, 0));
    assert!(
        usable_on_error(&stored("max-age=60"), 1170, H, 600),
        "route allowance when servers are down"
    );
    assert!(!usable_on_error(&stored("max-age=60"), 1170, H, 0));
}

#[test]
fn http_dates() {
    assert_eq!(
        http_date(Some(b"Thu, 01 Jan 1970 00:16:40 GMT")),
        Some(Some(1000))
    );
    assert_eq!(http_date(Some(b"0")), Some(None));
    assert_eq!(http_date(None), None);
}
