//! `[http2]`: what every HTTP/2 connection announces and enforces.

/// HTTP/2 limits; the defaults follow nginx where it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http2 {
    /// SETTINGS_MAX_CONCURRENT_STREAMS (nginx: 128).
    pub max_concurrent_streams: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE; it also bounds CONTINUATION frames.
    pub max_header_list_size: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE: what a client may send on a stream unread.
    pub initial_stream_window: u32,
    /// The connection's receive window.
    pub initial_connection_window: u32,
    /// SETTINGS_MAX_FRAME_SIZE.
    pub max_frame_size: u32,
    /// Streams a client may reset before levee has accepted them (rapid
    /// reset, CVE-2023-44487); past it, GOAWAY ENHANCE_YOUR_CALM.
    pub max_pending_resets: u32,
    /// Streams levee may reset for a client's errors; past it, GOAWAY.
    pub max_error_resets: u32,
}

impl Default for Http2 {
    fn default() -> Http2 {
        Http2 {
            max_concurrent_streams: 128,
            max_header_list_size: 32 * 1024,
            initial_stream_window: 64 * 1024,
            initial_connection_window: 1024 * 1024,
            max_frame_size: 16 * 1024,
            max_pending_resets: 20,
            max_error_resets: 1024,
        }
    }
}
