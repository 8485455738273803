use super::*;
use crate::policy::Head;
use bytes::Bytes;

fn object(body: &[u8]) -> Object {
    let head = Head::plain([(&b"ETag"[..], &b"\"v1\""[..])].into_iter());
    Object {
        status: 200,
        visible: head.visible,
        head: head.lines,
        body: Body::from(Bytes::copy_from_slice(body)),
        meta: Stored {
            status: 200,
            response_time: 1000,
            request_time: 1000,
            directives: crate::directives::Response {
                max_age: Some(60),
                stale_while_revalidate: Some(30),
                ..Default::default()
            },
            ..Stored::default()
        },
        tags: vec![Box::from("t")].into(),
    }
}

fn settings() -> Settings {
    Settings {
        max_object_size: 1024,
        timeout: Duration::from_millis(50),
        lock_lease: Duration::from_secs(10),
        lock_wait: Duration::from_secs(2),
        keep_stale: Duration::from_secs(10),
        memcached: Vec::new(),
    }
}

#[test]
fn values_decode_only_under_their_own_key() {
    let obj = object(b"body bytes");
    let mut bytes = codec::object_header(b"http://h/a", &obj, 10);
    bytes.extend_from_slice(b"body bytes");
    let Some(Entry::Object(back)) = decode(b"http://h/a", bytes.clone()) else {
        panic!("an object")
    };
    assert_eq!(back.body.to_vec().expect("memory"), b"body bytes");
    assert_eq!(back.meta, obj.meta);
    assert_eq!(&*back.tags, &*obj.tags);
    assert!(
        decode(b"http://h/b", bytes.clone()).is_none(),
        "a colliding key"
    );
    let short = bytes[..bytes.len() - 1].to_vec();
    assert!(decode(b"http://h/a", short).is_none(), "a short body");
    let marker = codec::vary_header(b"http://h/v", &["accept-encoding".into()]);
    assert!(
        matches!(decode(b"http://h/v", marker), Some(Entry::Vary(n)) if n[0] == "accept-encoding")
    );
}

#[test]
fn only_small_objects_in_memory_are_shared_and_they_expire_when_useless() {
    let shared = Shared::new(settings());
    assert!(shared.takes(&Entry::Object(Arc::new(object(&[0; 1024])))));
    assert!(!shared.takes(&Entry::Object(Arc::new(object(&[0; 1025])))));
    let obj = object(b"x");
    // 60 s fresh from 1000; the longest stale use is swr 30 s vs keep 10 s.
    assert_eq!(shared.ttl(&obj.meta, 1000), 90);
    assert_eq!(shared.ttl(&obj.meta, 1050), 40);
    assert_eq!(shared.ttl(&obj.meta, 5000), 30);
}

#[test]
fn keys_hash_stably_and_urls_cover_variants() {
    assert_eq!(hash(b"http://h/a"), hash(b"http://h/a"));
    assert_ne!(hash(b"http://h/a"), hash(b"http://h/b"));
    assert_eq!(hash(b"x").len(), 32);
    assert_eq!(url_of(b"http://h/a\x01accept-encoding=gzip"), b"http://h/a");
    assert_eq!(url_of(b"http://h/a\0h:x=1"), b"http://h/a");
    assert_eq!(url_of(b"http://h/a"), b"http://h/a");
    assert_eq!(
        Shared::value_key("shop", b"k"),
        format!("{{shop}}:c:{}", hash(b"k"))
    );
}
