//! The PROXY protocol parser never panics, never claims more bytes than it
//! was given, and gives the same answer for every prefix split of a header.
#![no_main]

use levee_http::proxy_protocol::{Parsed, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let whole = parse(data);
    if let Ok(Parsed::Complete(h)) = whole {
        assert!(h.len <= data.len());
        // Any longer input gives the same header: what follows is not read.
        let mut more = data.to_vec();
        more.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(parse(&more), whole);
        // A proper prefix of a header is incomplete.
        if h.len > 0 {
            assert_eq!(parse(&data[..h.len - 1]), Ok(Parsed::Incomplete));
        }
    }
});
