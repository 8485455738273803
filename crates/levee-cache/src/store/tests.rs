use super::*;
use crate::body::{BodyCopy, SEGMENT};
use crate::policy::Head;
use bytes::Bytes;

fn object(body: usize, tags: &[&str]) -> Entry {
    let head = Head::plain([(&b"Content-Type"[..], &b"text/plain"[..])].into_iter());
    Entry::Object(Arc::new(Object {
        status: 200,
        visible: head.visible,
        head: head.lines,
        body: Body::from(Bytes::from(vec![b'x'; body])),
        meta: Stored {
            status: 200,
            ..Stored::default()
        },
        tags: tags.iter().map(|t| Box::from(*t)).collect(),
    }))
}

#[test]
fn bounded_in_bytes() {
    let store = Memory::new(256 * 1024, 64 * 1024);
    for i in 0..200 {
        assert!(store.put(format!("http://h/{i}").into_bytes(), object(4096, &[])));
    }
    assert!(store.bytes() <= 256 * 1024, "{} bytes", store.bytes());
    assert!(store.len() < 200);
    assert!(store.evictions() > 0);
}

#[test]
fn object_cap() {
    let store = Memory::new(1 << 20, 8 * 1024);
    assert!(!store.put(b"http://h/big".to_vec(), object(8 * 1024, &[])));
    assert!(store.get(b"http://h/big").is_none());
    assert!(store.put(b"http://h/small".to_vec(), object(1024, &[])));
    assert!(store.get(b"http://h/small").is_some());
}

/// A scan of one-off URLs must not flush objects that are being used.
#[test]
fn scan_resistant() {
    let store = Memory::new(512 * 1024, 64 * 1024);
    let hot: Vec<Vec<u8>> = (0..20)
        .map(|i| format!("http://h/hot{i}").into_bytes())
        .collect();
    for k in &hot {
        store.put(k.clone(), object(4096, &[]));
    }
    for round in 0..50 {
        for k in &hot {
            let _ = store.get(k);
        }
        for j in 0..20 {
            store.put(
                format!("http://h/scan{round}-{j}").into_bytes(),
                object(4096, &[]),
            );
        }
    }
    let kept = hot.iter().filter(|k| store.get(k).is_some()).count();
    assert!(
        kept >= 18,
        "only {kept} of 20 hot objects survived the scan"
    );
}

#[test]
fn purges() {
    let store = Memory::new(1 << 20, 1 << 20);
    store.put(b"http://h/a".to_vec(), object(10, &["t1"]));
    store.put(
        variant_key(b"http://h/a", b"accept-encoding=gzip\0"),
        object(10, &[]),
    );
    store.put(b"http://h/ab".to_vec(), object(10, &["t2"]));
    store.put(b"http://h/b\0h:x=1".to_vec(), object(10, &["t1"]));
    assert_eq!(store.purge(&|k, _| key_is_url(k, b"http://h/a")), 2);
    assert!(store.get(b"http://h/ab").is_some());
    let tagged = |_: &[u8], tags: &[Box<str>]| tags.iter().any(|t| &**t == "t1");
    assert_eq!(store.purge(&tagged), 1);
    assert_eq!(store.purge(&|k, _| k.starts_with(b"http://h/")), 1);
    assert!(store.is_empty());
}

#[test]
fn fields_round_trip_through_the_head() {
    let fields: [(&[u8], &[u8]); 2] = [(b"ETag", b"\"x\""), (b"Cache-Control", b"max-age=5")];
    let Entry::Object(base) = object(1, &[]) else {
        panic!()
    };
    let head = Head::plain(fields.into_iter());
    let o = Object {
        head: head.lines,
        visible: head.visible,
        ..Object::clone(&base)
    };
    assert_eq!(o.fields().collect::<Vec<_>>(), fields);
    assert_eq!(o.field("etag"), Some(&b"\"x\""[..]));
    assert_eq!(o.field("vary"), None);
    assert_eq!(o.visible_head(), &o.head[..]);
}

/// What misses are copying counts in the capacity: the store keeps to its
/// share, so stored plus in flight never passes `max_size`.
#[test]
fn copies_in_flight_count_in_the_capacity() {
    let capacity = 1 << 20;
    let store = Memory::new(capacity, 64 * 1024);
    let budget = store.in_flight();
    assert_eq!(budget.limit(), capacity / 8);
    let mut copy = BodyCopy::new(64 * 1024, None, budget);
    copy.push(&[0; 1000]);
    assert_eq!(store.bytes(), SEGMENT as u64);
    for i in 0..400 {
        store.put(format!("http://h/{i}").into_bytes(), object(4096, &[]));
    }
    assert!(store.bytes() <= capacity, "{} bytes", store.bytes());
    assert!(store.bytes() > capacity / 2, "{} bytes", store.bytes());
    drop(copy);
    assert!(store.bytes() <= capacity - capacity / 8);
}

/// The weight counts what an object really holds, at least its body,
/// head and key.
#[test]
fn weight_covers_the_object() {
    let Entry::Object(o) = object(10240, &["t"]) else {
        panic!()
    };
    let key = b"http://h/x";
    let weight = Entry::Object(o.clone()).weight(key);
    let held = o.body.len() + o.head.len() as u64 + key.len() as u64;
    assert!(weight > held + std::mem::size_of::<Object>() as u64);
    assert!(weight < held + 1024, "{weight}");
}
/// An object with its `Arc` counts fits the allocator's 256-byte class:
/// the next class up (mimalloc's 320-byte one measured 395 bytes a block
/// with page overhead) would cost about 100 bytes more per stored object.
#[test]
fn object_fits_its_size_class() {
    let arc_counts = 2 * std::mem::size_of::<usize>();
    assert!(std::mem::size_of::<Object>() + arc_counts <= 256);
}

/// RFC 9111 §4: one response per key (and variant), the newer replacing
/// the older, so the one used is always the most recent.
#[test]
fn a_newer_response_replaces_the_stored_one() {
    let store = Memory::new(1 << 20, 1 << 20);
    store.put(b"http://h/a".to_vec(), object(10, &["old"]));
    store.put(b"http://h/a".to_vec(), object(20, &["new"]));
    assert_eq!(store.len(), 1);
    let Some(Entry::Object(o)) = store.get(b"http://h/a") else {
        panic!("stored")
    };
    assert_eq!((o.body.len(), &*o.tags[0]), (20, "new"));
}
