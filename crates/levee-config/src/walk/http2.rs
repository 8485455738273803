//! `[http2]`.

use crate::error::Sink;
use crate::model::Http2;
use crate::tree::{Fields, Item};

pub(crate) const HTTP2_KEYS: &[&str] = &[
    "max_concurrent_streams",
    "max_header_list_size",
    "initial_stream_window",
    "initial_connection_window",
    "max_frame_size",
    "max_pending_resets",
    "max_error_resets",
];

/// The largest flow-control window RFC 9113 allows.
const MAX_WINDOW: u64 = (1 << 31) - 1;

pub(crate) fn http2(sink: &mut Sink<'_>, item: &Item<'_, '_>) -> Http2 {
    let mut h = Http2::default();
    let Some(fields) = Fields::of(sink, item, HTTP2_KEYS) else {
        return h;
    };
    let size_in = |sink: &mut Sink<'_>, i: &Item<'_, '_>, min: u64, max: u64| {
        let n = i.size(sink)?;
        if (min..=max).contains(&n) {
            return u32::try_from(n).ok();
        }
        i.error(sink, format!("must be between {min} and {max} bytes"));
        None
    };
    let int = |sink: &mut Sink<'_>, key: &str, min: u64| {
        fields
            .get(key)
            .and_then(|i| i.int_in(sink, min, u64::from(u32::MAX)))
            .and_then(|n| u32::try_from(n).ok())
    };
    if let Some(n) = int(sink, "max_concurrent_streams", 1) {
        h.max_concurrent_streams = n;
    }
    if let Some(n) = int(sink, "max_pending_resets", 1) {
        h.max_pending_resets = n;
    }
    if let Some(n) = int(sink, "max_error_resets", 1) {
        h.max_error_resets = n;
    }
    if let Some(n) = fields
        .get("max_header_list_size")
        .and_then(|i| size_in(sink, i, 1024, 16 << 20))
    {
        h.max_header_list_size = n;
    }
    if let Some(n) = fields
        .get("initial_stream_window")
        .and_then(|i| size_in(sink, i, 1, MAX_WINDOW))
    {
        h.initial_stream_window = n;
    }
    if let Some(n) = fields
        .get("initial_connection_window")
        .and_then(|i| size_in(sink, i, 65_535, MAX_WINDOW))
    {
        h.initial_connection_window = n;
    }
    // RFC 9113 §6.5.2: between 2^14 and 2^24 - 1.
    if let Some(n) = fields
        .get("max_frame_size")
        .and_then(|i| size_in(sink, i, 16_384, (1 << 24) - 1))
    {
        h.max_frame_size = n;
    }
    h
}

#[cfg(test)]
mod tests {
    use crate::tests::{errors_of, ok};

    #[test]
    fn http2_limits_default_and_are_checked() {
        let base = "[[listener]]\naddress = \"127.0.0.1:80\"\n[[route]]\nrespond = \"hi\"\n";
        assert_eq!(ok(base).http2.max_concurrent_streams, 128);
        let c = ok(&format!(
            "{base}[http2]\nmax_concurrent_streams = 8\nmax_header_list_size = \"16k\"\n"
        ));
        assert_eq!(c.http2.max_concurrent_streams, 8);
        assert_eq!(c.http2.max_header_list_size, 16 * 1024);
        // Written out and read back, the same limits.
        let again = ok(&crate::to_toml(&c));
        assert_eq!(again.http2, c.http2);
        let e = errors_of(&format!("{base}[http2]\nmax_frame_size = 100\n"));
        assert!(
            e[0].contains("http2.max_frame_size: must be between"),
            "{e:?}"
        );
    }
}
