//! The POP3 and SMTP pre-login parsers and SASL decoding never panic and
//! never claim bytes they were not given.
#![no_main]

use levee_mail::{Parsed, pop3, sasl, smtp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for max in [255, pop3::DEFAULT_MAX_LINE] {
        match pop3::parse(data, max) {
            Ok(Parsed::Complete(_, n)) => assert!(n > 0 && n <= data.len().min(max)),
            Err((_, Some(n))) => assert!(n > 0 && n <= data.len()),
            _ => {}
        }
    }
    match smtp::parse(data) {
        Ok(Parsed::Complete(_, n)) | Err((_, Some(n))) => assert!(n > 0 && n <= data.len()),
        _ => {}
    }
    if let Ok(sasl::Response::Data(message)) = sasl::response(data) {
        let _ = sasl::plain(&message);
    }
});
