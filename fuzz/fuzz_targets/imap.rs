//! The IMAP pre-login parser never panics, never claims bytes it was not
//! given, and asks for each continuation once.
#![no_main]

use levee_mail::imap::{Discard, Limits, Next, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let mut acked = 0;
    for _ in 0..64 {
        match parse(data, acked, &limits) {
            Ok(Next::Continue { at }) => {
                assert!(at > acked && at <= data.len());
                acked = at;
            }
            Ok(Next::Command(_, n)) => {
                assert!(n <= data.len());
                return;
            }
            Err(r) => {
                if let Discard::Bytes(n) = r.discard {
                    assert!(n > 0 && n <= data.len());
                }
                return;
            }
            Ok(Next::Incomplete) => return,
        }
    }
    panic!("continuations without end");
});
