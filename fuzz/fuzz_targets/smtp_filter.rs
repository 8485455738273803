//! The submission filter (levee-mail `smtp::filter`) never panics, never
//! lets a proxy command (XCLIENT, XFORWARD, STARTTLS, AUTH) reach the
//! backend, never sends the backend a byte it was not given, never leaves
//! the client waiting once the backend has answered all it was sent, and
//! gives both sides the same bytes whatever the read boundaries.
#![no_main]

use levee_mail::smtp::filter::{Filter, Sink};
use libfuzzer_sys::fuzz_target;

#[derive(Default)]
struct Out {
    backend: Vec<u8>,
    client: Vec<u8>,
}

impl Sink for Out {
    fn backend(&mut self, bytes: &[u8]) {
        self.backend.extend_from_slice(bytes);
    }
    fn client(&mut self, bytes: &[u8]) {
        self.client.extend_from_slice(bytes);
    }
}

/// A backend answering each command once, reading the session as Postfix
/// does: lines end at LF, the verb follows any white space, `DATA` alone
/// gets 354 and content to a line of `.` and CRs, `BDAT n` skips n bytes.
#[derive(Default)]
struct Backend {
    line: Vec<u8>,
    content: bool,
    chunk: u64,
}

impl Backend {
    fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.chunk > 0 {
                self.chunk -= 1;
                if self.chunk == 0 {
                    out.extend_from_slice(b"250 chunk\r\n");
                }
                continue;
            }
            self.line.push(b);
            if b != b'\n' {
                continue;
            }
            let line = std::mem::take(&mut self.line);
            if self.content {
                let mut l = &line[..line.len() - 1];
                while let Some(s) = l.strip_suffix(b"\r") {
                    l = s;
                }
                if l == b"." {
                    self.content = false;
                    out.extend_from_slice(b"250 queued\r\n");
                }
                continue;
            }
            let words: Vec<&[u8]> = line
                .split(|b| b.is_ascii_whitespace() || *b == 0x0b)
                .filter(|w| !w.is_empty())
                .collect();
            let verb = words.first().copied().unwrap_or_default();
            let is = |name: &[u8]| verb.eq_ignore_ascii_case(name);
            assert!(
                !(is(b"XCLIENT") || is(b"XFORWARD") || is(b"STARTTLS") || is(b"AUTH")),
                "reached the backend: {line:?}"
            );
            if is(b"DATA") && words.len() == 1 {
                self.content = true;
                out.extend_from_slice(b"354 go\r\n");
            } else if is(b"EHLO") {
                out.extend_from_slice(b"250-b\r\n250-XCLIENT ADDR\r\n250 STARTTLS\r\n");
            } else if let (true, Some(n)) = (
                is(b"BDAT"),
                words
                    .get(1)
                    .and_then(|n| std::str::from_utf8(n).ok()?.parse::<u64>().ok()),
            ) {
                self.chunk = n;
                if n == 0 {
                    out.extend_from_slice(b"250 chunk\r\n");
                }
            } else {
                out.extend_from_slice(b"250 ok\r\n");
            }
        }
        out
    }
}

/// The client sends `input` in reads of `split` bytes, pipelining all it
/// can; the backend answers as it reads.
fn run(input: &[u8], split: usize) -> Out {
    let mut filter = Filter::new(true, Vec::new());
    let mut out = Out::default();
    let mut backend = Backend::default();
    let (mut pos, mut seen) = (0, 0);
    loop {
        let mut moved = filter.resume(&mut out);
        if !moved && !filter.waiting() && pos < input.len() {
            let n = split.clamp(1, input.len() - pos);
            filter.client_bytes(&input[pos..pos + n], &mut out);
            pos += n;
            moved = true;
        }
        let replies = backend.feed(&out.backend[seen..]);
        seen = out.backend.len();
        if !replies.is_empty() {
            filter
                .backend_bytes(&replies, &mut out)
                .expect("short reply lines");
            moved = true;
        }
        if !moved {
            assert!(!filter.waiting() && !filter.has_held(), "left waiting");
            return out;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let whole = run(input, usize::MAX);
    assert!(whole.backend.len() <= input.len());
    let parts = run(input, usize::from(split));
    assert_eq!(whole.backend, parts.backend);
    assert_eq!(whole.client, parts.client);
});
