//! The HTTP/1 request and response head parsers never panic, and agree with
//! themselves when the same bytes arrive split in two reads.
#![no_main]

use levee_http::h1::{HeadLimits, Parsed, parse_request, parse_response};
use libfuzzer_sys::fuzz_target;

const LIMITS: HeadLimits = HeadLimits {
    max_request_line: 8192,
    max_header_bytes: 32 * 1024,
    max_headers: 100,
};

fuzz_target!(|data: &[u8]| {
    let whole = parse_request(data, 0, &LIMITS);
    let _ = parse_response(data, 64 * 1024, false);
    if data.len() > 1 {
        let split = usize::from(data[0]) % data.len();
        // Parsing a prefix first and then the whole with the prefix marked as
        // searched must give the same answer as parsing the whole at once.
        if let Ok(Parsed::Incomplete) = parse_request(&data[..split], 0, &LIMITS) {
            let again = parse_request(data, split, &LIMITS);
            assert_eq!(format!("{whole:?}"), format!("{again:?}"));
        }
    }
    if let Ok(Parsed::Complete(parts, len)) = whole {
        assert!(len <= data.len());
        let head = parts.into_head(bytes::Bytes::copy_from_slice(&data[..len]));
        let _ = (head.uri(), head.path(), head.host_name());
    }
});
