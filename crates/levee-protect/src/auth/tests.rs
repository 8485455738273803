//! Basic auth: the file, the credentials, the queue and its caches.
use super::*;

#[test]
fn base64() {
    assert_eq!(
        base64_decode(b"YWxpY2U6czNjcmV0").as_deref(),
        Some(&b"alice:s3cret"[..])
    );
    assert_eq!(base64_decode(b"YQ==").as_deref(), Some(&b"a"[..]));
    assert_eq!(base64_decode(b"YWI=").as_deref(), Some(&b"ab"[..]));
    assert_eq!(base64_decode(b"Y").as_deref(), None);
    assert_eq!(base64_decode(b"Y!==").as_deref(), None);
    assert_eq!(
        basic_credentials(b"basic YWxpY2U6czNjcmV0").as_deref(),
        Some(&b"alice:s3cret"[..])
    );
    assert_eq!(basic_credentials(b"Bearer YWxpY2U6czNjcmV0"), None);
}

/// The queue is process-wide: tests that fill it must not overlap with
/// tests that need a place in it.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn header(s: &str) -> String {
    format!("Basic {}", encode(s))
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn staff() -> BasicAuth {
    let alice = bcrypt::hash("s3cret", 4).expect("hash");
    let bob = bcrypt::hash("hunter2", 4).expect("hash");
    let file = format!("# staff\nalice:{alice}\nbob:{bob}\n\n");
    BasicAuth::parse(&file, "t", "r").expect("valid file")
}

#[tokio::test]
async fn bcrypt_file_checks_users_and_passwords() {
    let _serial = SERIAL.lock().await;
    let auth = staff();
    assert_eq!(auth.challenge, "Basic realm=\"r\", charset=\"UTF-8\"");
    let (me, now) = (ip("192.0.2.1"), Instant::now());
    let auth = &auth;
    let check = |s: &str| {
        let h = header(s);
        async move { auth.check(Some(h.as_bytes()), me, now).await }
    };
    assert_eq!(check("alice:s3cret").await, Checked::Valid);
    // Remembered: the second check needs no bcrypt.
    assert_eq!(check("alice:s3cret").await, Checked::Valid);
    assert_eq!(check("alice:wrong").await, Checked::Invalid);
    assert_eq!(check("carol:s3cret").await, Checked::Invalid);
    assert_eq!(check("bob:hunter2").await, Checked::Valid);
    assert_eq!(
        auth.check(Some(b"Basic !!!"), me, now).await,
        Checked::Invalid
    );
    assert_eq!(auth.check(None, me, now).await, Checked::Invalid);
}

/// Holds `n` places in the queue for `client`.
fn hold(client: &str, n: usize) -> Vec<Ticket> {
    (0..n)
        .map(|_| Ticket::take(ip(client)).unwrap_or_else(|s| panic!("no place: {s}")))
        .collect()
}

#[tokio::test]
async fn a_client_over_its_share_waits_not_the_others() {
    let _serial = SERIAL.lock().await;
    let auth = staff();
    let now = Instant::now();
    // 198.51.100.7 already has its share being hashed.
    let flood = hold("198.51.100.7", PER_CLIENT);
    let auth = &auth;
    let from = |client: &str, creds: &str| {
        let (client, h) = (ip(client), header(creds));
        async move { auth.check(Some(h.as_bytes()), client, now).await }
    };
    assert_eq!(
        from("198.51.100.7", "alice:guess1").await,
        Checked::Busy { status: 429 }
    );
    // The same /64 is the same client over IPv6; another address is not.
    let v6 = hold("2001:db8::1", PER_CLIENT);
    assert_eq!(
        from("2001:db8::ffff", "alice:guess2").await,
        Checked::Busy { status: 429 }
    );
    assert_eq!(from("2001:db8:0:1::1", "bob:hunter2").await, Checked::Valid);
    assert_eq!(from("203.0.113.9", "alice:s3cret").await, Checked::Valid);
    drop((flood, v6));
    // Places are given back.
    assert_eq!(from("198.51.100.7", "alice:guess1").await, Checked::Invalid);
}

#[tokio::test]
async fn a_full_queue_is_503_for_everyone() {
    let _serial = SERIAL.lock().await;
    let auth = staff();
    let held: Vec<Ticket> = (0..QUEUED)
        .flat_map(|i| hold(&format!("10.0.{}.{}", i / 250, i % 250 + 1), 1))
        .collect();
    let busy = auth
        .check(
            Some(header("bob:hunter2").as_bytes()),
            ip("192.0.2.50"),
            Instant::now(),
        )
        .await;
    assert_eq!(busy, Checked::Busy { status: 503 });
    drop(held);
    assert!(lock(queue()).by_client.is_empty(), "every place given back");
}

#[tokio::test]
async fn repeated_wrong_and_right_credentials_cost_no_hashing() {
    let _serial = SERIAL.lock().await;
    let auth = staff();
    let me = ip("192.0.2.2");
    let now = Instant::now();
    let check = |creds: &str, at: Instant| {
        let h = header(creds);
        let auth = &auth;
        async move { auth.check(Some(h.as_bytes()), me, at).await }
    };
    assert_eq!(check("alice:wrong", now).await, Checked::Invalid);
    assert_eq!(check("alice:s3cret", now).await, Checked::Valid);
    // With this client's share taken, only what needs no hashing passes.
    let held = hold("192.0.2.2", PER_CLIENT);
    assert_eq!(check("alice:wrong", now).await, Checked::Invalid);
    assert_eq!(check("alice:s3cret", now).await, Checked::Valid);
    // A wrong attempt does not stand in the way of the right password…
    assert_eq!(check("bob:wrong", now).await, Checked::Busy { status: 429 });
    // …and the refusal is remembered only for a while.
    let later = now + NEGATIVE_TTL + Duration::from_secs(1);
    assert_eq!(
        check("alice:wrong", later).await,
        Checked::Busy { status: 429 }
    );
    drop(held);
}

#[tokio::test]
async fn parallel_requests_with_the_same_credentials_share_one_check() {
    let _serial = SERIAL.lock().await;
    let auth = staff();
    let now = Instant::now();
    let h = header("alice:s3cret");
    // A browser's page load: more requests at once than the client's share.
    let checks = (0..4 * PER_CLIENT).map(|_| auth.check(Some(h.as_bytes()), ip("192.0.2.3"), now));
    let all = futures_join(checks).await;
    assert!(all.iter().all(|c| *c == Checked::Valid), "{all:?}");
}

/// Polls every future to its end in this task.
async fn futures_join<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set: Vec<_> = futures.map(|f| Some(Box::pin(f))).collect();
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, result) in set.iter_mut().zip(out.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *result = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

#[test]
fn other_hashes_are_refused_at_load() {
    for line in ["bob:{SHA}abc", "bob:$apr1$x$y", "bob"] {
        assert!(BasicAuth::parse(line, "t", "r").is_err(), "{line}");
    }
}

fn encode(s: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(3) {
        let mut b = [0u8; 3];
        b[..chunk.len()].copy_from_slice(chunk);
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
