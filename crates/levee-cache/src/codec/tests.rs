use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::policy::Head;

fn object() -> Object {
    let head = Head::plain(
        [
            (&b"Content-Type"[..], &b"text/plain"[..]),
            (b"ETag", b"\"x\""),
        ]
        .into_iter(),
    );
    Object {
        status: 203,
        visible: head.visible,
        head: head.lines,
        body: Default::default(),
        meta: Stored {
            status: 203,
            request_time: 1_700_000_000,
            response_time: 1_700_000_001,
            date: Some(1_699_999_999),
            age: 7,
            expires: Some(Expires::Invalid),
            last_modified: None,
            directives: Response {
                max_age: Some(60),
                s_maxage: None,
                no_cache: true,
                no_cache_fields: vec!["x-a".to_owned()].into(),
                private_fields: vec!["set-cookie".to_owned(), "x-b".to_owned()].into(),
                must_revalidate: true,
                stale_while_revalidate: Some(30),
                stale_if_error: Some(0),
                must_understand: true,
                ..Response::default()
            },
        },
        tags: vec![Box::from("red"), Box::from("blue")].into(),
    }
}

#[test]
fn an_object_header_round_trips() {
    let obj = object();
    let mut bytes = object_header(b"http://h/a\x01accept-encoding=gzip", &obj, 0);
    // The body length is patched in place once known.
    bytes[BODY_LEN_AT..BODY_LEN_AT + 8].copy_from_slice(&5u64.to_le_bytes());
    let header_bytes = bytes.len();
    bytes.extend_from_slice(b"hello");
    let h = decode(&bytes).expect("decodes");
    assert_eq!(h.key, b"http://h/a\x01accept-encoding=gzip");
    assert_eq!((h.len, h.body_len), (header_bytes, 5));
    assert_eq!(header_len(&bytes[..8]), Ok(header_bytes));
    let Decoded::Object(back) = h.entry else {
        panic!("an object")
    };
    assert_eq!(back.status, obj.status);
    assert_eq!(back.visible, obj.visible);
    assert_eq!(back.head, obj.head);
    assert_eq!(back.meta, obj.meta);
    assert_eq!(back.tags, obj.tags);
    let v = vary_header(b"k", &["accept-encoding".to_owned(), "cookie".to_owned()]);
    match decode(&v).expect("decodes").entry {
        Decoded::Vary(names) => assert_eq!(names, ["accept-encoding", "cookie"]),
        Decoded::Object(_) => panic!("a vary marker"),
    }
    let _ = Arc::new(back);
}

proptest! {
    /// A torn or damaged header never decodes: every truncation and every
    /// flipped bit (outside the body length, which readers check against
    /// the file's size) is refused, never a panic.
    #[test]
    fn damage_is_refused(cut in 0usize..400, bit in 0usize..3200) {
        let bytes = object_header(b"http://h/p", &object(), 3);
        let cut = cut.min(bytes.len() - 1);
        prop_assert_eq!(decode(&bytes[..cut]).map(|_| ()), Err(Bad));
        let at = bit / 8 % bytes.len();
        prop_assume!(!(BODY_LEN_AT..BODY_LEN_AT + 8).contains(&at));
        let mut flipped = bytes.clone();
        flipped[at] ^= 1 << (bit % 8);
        prop_assert_eq!(decode(&flipped).map(|_| ()), Err(Bad));
    }
}
