//! The chunked decoder never panics, never claims bytes it was not given,
//! and decodes the same body (and drops the same trailers) whatever the
//! read boundaries.
#![no_main]

use levee_http::h1::ChunkedDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut whole = ChunkedDecoder::default();
    let one = whole.feed(data);
    if let Ok(fed) = &one {
        assert!(fed.consumed <= data.len());
    }
    if data.len() > 1 {
        let split = usize::from(data[0]) % data.len();
        let mut parts = ChunkedDecoder::default();
        let first = parts.feed(&data[..split]);
        if let Ok(first) = &first
            && !first.done
        {
            // Only a partial trailer line is held back, to be fed again.
            assert!(first.consumed <= split);
            let second = parts.feed(&data[first.consumed..]);
            assert_eq!(one.is_ok(), second.is_ok(), "split at {split}");
            if let (Ok(one), Ok(second)) = (&one, &second) {
                assert_eq!(one.done, second.done);
                assert_eq!(one.consumed, first.consumed + second.consumed);
                assert_eq!(whole.data_len, parts.data_len);
                assert_eq!(one.skip.len(), first.skip.len() + second.skip.len());
            }
        }
    }
});
