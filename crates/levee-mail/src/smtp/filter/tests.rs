//! The submission filter fed whole and split scripts, against a model
//! backend that reads the session as Postfix does (a model, since these
//! check every split of the input; the real Postfix runs in
//! `crates/levee/tests/mail_postfix.rs`).

use proptest::prelude::*;

use super::{EHLO_LINE_MAX, Filter, FilterError, Refused, Sink};

#[derive(Debug, Default)]
struct Out {
    backend: Vec<u8>,
    client: Vec<u8>,
    refused: Vec<Refused>,
}

impl Sink for Out {
    fn backend(&mut self, bytes: &[u8]) {
        self.backend.extend_from_slice(bytes);
    }
    fn client(&mut self, bytes: &[u8]) {
        self.client.extend_from_slice(bytes);
    }
    fn refused(&mut self, what: Refused) {
        self.refused.push(what);
    }
}

const EHLO_REPLY: &[u8] = b"250-backend\r\n250-XCLIENT NAME ADDR\r\n250-PIPELINING\r\n250-xforward name\r\n250 STARTTLS\r\n";
const EHLO_SEEN: &[u8] = b"250-backend\r\n250 PIPELINING\r\n";

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Mode {
    #[default]
    Commands,
    Content,
    Chunk(u64),
}

/// A backend as Postfix reads a session: lines end at LF, the verb follows
/// any white space; `DATA` alone gets 354 (with more, 501), content ends at
/// a line of `.` and CRs; `BDAT n` skips n bytes; other commands get
/// `250 N`, numbered. A proxy-trust command is a breach.
#[derive(Debug, Default)]
struct Backend {
    line: Vec<u8>,
    mode: Mode,
    others: u32,
    breaches: Vec<String>,
}

impl Backend {
    fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for &b in bytes {
            match self.mode {
                Mode::Chunk(n) => {
                    self.mode = if n == 1 {
                        out.extend_from_slice(b"250 chunk\r\n");
                        Mode::Commands
                    } else {
                        Mode::Chunk(n - 1)
                    };
                }
                Mode::Content => {
                    self.line.push(b);
                    if b == b'\n' {
                        let mut l = &self.line[..self.line.len() - 1];
                        while let Some(s) = l.strip_suffix(b"\r") {
                            l = s;
                        }
                        if l == b"." {
                            self.mode = Mode::Commands;
                            out.extend_from_slice(b"250 queued\r\n");
                        }
                        self.line.clear();
                    }
                }
                Mode::Commands => {
                    self.line.push(b);
                    if b == b'\n' {
                        let line = std::mem::take(&mut self.line);
                        self.command(&line, &mut out);
                    }
                }
            }
        }
        out
    }

    fn command(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let text = String::from_utf8_lossy(line).into_owned();
        let words: Vec<&str> = text.split_ascii_whitespace().collect();
        let verb = words.first().copied().unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "XCLIENT" | "XFORWARD" | "STARTTLS" | "AUTH" => {
                self.breaches.push(text.clone());
                out.extend_from_slice(b"220 breach\r\n");
            }
            "DATA" if words.len() == 1 => {
                self.mode = Mode::Content;
                out.extend_from_slice(b"354 go\r\n");
            }
            "DATA" => out.extend_from_slice(b"501 syntax\r\n"),
            "EHLO" => out.extend_from_slice(EHLO_REPLY),
            "BDAT" => match words.get(1).and_then(|n| n.parse::<u64>().ok()) {
                Some(0) => out.extend_from_slice(b"250 chunk\r\n"),
                Some(n) => self.mode = Mode::Chunk(n),
                None => out.extend_from_slice(b"501 syntax\r\n"),
            },
            _ => {
                self.others += 1;
                out.extend_from_slice(format!("250 {}\r\n", self.others).as_bytes());
            }
        }
    }
}

/// Runs `input` through a filter (the client pipelining all of it, in
/// reads of `splits` bytes in turn) with the model backend answering in
/// pieces of `reply_split` bytes; what each side got. Panics if the client
/// waits for a reply that never comes.
fn drive(
    chunking: bool,
    input: &[u8],
    splits: &[usize],
    reply_split: usize,
) -> (Out, Backend, Filter) {
    let mut filter = Filter::new(chunking, Vec::new());
    let mut out = Out::default();
    let mut backend = Backend::default();
    let (mut pos, mut read, mut seen) = (0, 0, 0);
    loop {
        let mut moved = false;
        if filter.resume(&mut out) {
            moved = true;
        } else if !filter.waiting() && pos < input.len() {
            let n = splits
                .get(read % splits.len().max(1))
                .copied()
                .unwrap_or(input.len())
                .clamp(1, input.len() - pos);
            read += 1;
            filter.client_bytes(&input[pos..pos + n], &mut out);
            pos += n;
            moved = true;
        }
        let replies = backend.feed(&out.backend[seen..]);
        seen = out.backend.len();
        for piece in replies.chunks(reply_split.max(1)) {
            filter.backend_bytes(piece, &mut out).expect("filter");
            moved = true;
        }
        if !moved {
            assert!(
                !filter.waiting() && !filter.has_held(),
                "stuck waiting: {filter:?}"
            );
            return (out, backend, filter);
        }
    }
}

fn whole(input: &[u8]) -> (Out, Backend, Filter) {
    drive(true, input, &[], 64)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn proxy_commands_never_reach_the_backend_in_any_spelling() {
    for (line, what) in [
        (&b"XCLIENT LOGIN=bob\r\n"[..], Refused::Xclient),
        (b"xclient login=bob\r\n", Refused::Xclient),
        (b"   XcLiEnT LOGIN=bob\r\n", Refused::Xclient),
        (b"\tXCLIENT\tLOGIN=bob\r\n", Refused::Xclient),
        (b"\x0b\rXCLIENT LOGIN=bob\n", Refused::Xclient),
        (b"\0XCLIENT LOGIN=bob\r\n", Refused::Xclient),
        (b"XCLIENT\r\n", Refused::Xclient),
        (b"XCLIENT:LOGIN=bob\r\n", Refused::Xclient),
        (b"XFORWARD ADDR=6.6.6.6\r\n", Refused::Xforward),
        (b" xforward\tNAME=spoofed\n", Refused::Xforward),
        (b"STARTTLS\r\n", Refused::StartTls),
        (b"AUTH PLAIN AGJvYgBodW50ZXIy\r\n", Refused::Auth),
    ] {
        let mut input = b"NOOP\r\n".to_vec();
        input.extend_from_slice(line);
        input.extend_from_slice(b"NOOP\r\n");
        let (out, backend, filter) = whole(&input);
        assert_eq!(text(&out.backend), "NOOP\r\nNOOP\r\n", "{}", text(line));
        assert!(backend.breaches.is_empty());
        assert_eq!(out.refused, [what]);
        assert_eq!(filter.refused(), 1);
        let mut expected = b"250 1\r\n".to_vec();
        expected.extend_from_slice(what.reply());
        expected.extend_from_slice(b"250 2\r\n");
        assert_eq!(text(&out.client), text(&expected), "{}", text(line));
    }
}

#[test]
fn other_commands_pass_byte_for_byte() {
    let input: &[u8] = b"MAIL FROM:<a@b> SIZE=10\r\nrcpt to:<c@d>\nXCLIENTS x\r\nX-CLIENT LOGIN=bob\r\nAUTHX\r\n\r\n  NOOP\r\nVRFY \xff\xfe\r\n";
    let (out, backend, _) = whole(input);
    assert_eq!(out.backend, input);
    assert!(out.refused.is_empty());
    assert_eq!(backend.others, 8);
    assert!(text(&out.client).ends_with("250 8\r\n"));
}

/// Pipelined: the refusal comes after the replies to the commands before
/// it and before those after it.
#[test]
fn a_refusal_takes_its_place_among_pipelined_replies() {
    let input =
        b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nXCLIENT LOGIN=bob\r\nRCPT TO:<e@f>\r\nNOOP\r\n";
    for reply_split in [1, 3, 64] {
        let (out, _, _) = drive(true, input, &[7, 100], reply_split);
        assert_eq!(
            text(&out.client),
            "250 1\r\n250 2\r\n550 5.7.0 Command not permitted\r\n250 3\r\n250 4\r\n"
        );
    }
}

/// The issue's second hole: with DATA refused, what a pipelining client
/// sent as content is commands to the backend, and must be read as such.
#[test]
fn content_behind_a_refused_data_is_read_as_commands() {
    let input = b"DATA now\r\nXCLIENT LOGIN=bob\r\n.\r\n";
    let (out, backend, _) = whole(input);
    assert!(backend.breaches.is_empty(), "{:?}", backend.breaches);
    assert_eq!(text(&out.backend), "DATA now\r\n.\r\n");
    assert_eq!(
        text(&out.client),
        "501 syntax\r\n550 5.7.0 Command not permitted\r\n250 1\r\n"
    );
}

/// Accepted, the same bytes are content and reach the backend unchanged,
/// though the client sent them before the 354.
#[test]
fn message_content_is_never_read_as_commands() {
    let input: &[u8] =
        b"DATA\r\nSubject: x\r\n\r\nXCLIENT LOGIN=bob\r\nAUTH PLAIN x\r\n..\r\n.x\r\n.\r\nNOOP\r\n";
    for split in 1..input.len() {
        let (out, backend, _) = drive(true, input, &[split], 2);
        assert_eq!(out.backend, input, "split {split}");
        assert!(out.refused.is_empty());
        assert!(backend.breaches.is_empty());
        assert_eq!(text(&out.client), "354 go\r\n250 queued\r\n250 1\r\n");
    }
}

/// Content ends where Postfix ends it: at `\n.\n` and `.\r\r\n` too, so
/// what follows is a command, and refused.
#[test]
fn content_ends_at_the_earliest_end_a_backend_takes() {
    for end in [&b"\n.\n"[..], b"\r\n.\r\r\n", b"\r\n.\n", b"\n.\r\n"] {
        let mut input = b"DATA\r\nhi".to_vec();
        input.extend_from_slice(end);
        input.extend_from_slice(b"XCLIENT LOGIN=bob\r\n");
        let (out, backend, _) = whole(&input);
        assert!(backend.breaches.is_empty(), "{}", text(end));
        assert_eq!(out.refused, [Refused::Xclient], "{}", text(end));
        assert!(text(&out.client).ends_with("250 queued\r\n550 5.7.0 Command not permitted\r\n"));
    }
    // Not ends: a dot-stuffed line, a dot after a bare CR, a dot and more.
    let input = b"DATA\r\nhi\r\n..\r\nx\r.\r\n. \r\n.\0\r\nXCLIENT LOGIN=bob\r\n.\r\n";
    let (out, backend, _) = whole(input);
    assert_eq!(out.backend, input);
    assert!(backend.breaches.is_empty());
}

#[test]
fn a_bdat_chunk_is_skipped_exactly() {
    let input = b"BDAT 21\r\nXCLIENT LOGIN=bob\r\n\r\nbdat 0 last\r\nXCLIENT LOGIN=bob\r\n";
    let (out, backend, _) = whole(input);
    assert!(backend.breaches.is_empty());
    assert_eq!(
        text(&out.backend),
        "BDAT 21\r\nXCLIENT LOGIN=bob\r\n\r\nbdat 0 last\r\n"
    );
    assert_eq!(
        text(&out.client),
        "250 chunk\r\n250 chunk\r\n550 5.7.0 Command not permitted\r\n"
    );
}

/// Backends disagree on these (Postfix skips after `BDAT\t5`, Dovecot
/// does not), so levee answers them and the backend never sees one.
#[test]
fn a_bdat_line_not_strictly_formed_is_refused() {
    for line in [
        &b"BDAT\t5\r\n"[..],
        b" BDAT 5\r\n",
        b"BDAT  5\r\n",
        b"BDAT 5 X\r\n",
        b"BDAT 5\n",
        b"BDAT +5\r\n",
        b"BDAT\r\n",
        b"BDAT 5 LAST \r\n",
        b"BDAT 123456789012345678901\r\n",
        b"BDAT 99999999999999999999\r\n",
    ] {
        let mut input = line.to_vec();
        input.extend_from_slice(b"NOOP\r\n");
        let (out, _, _) = whole(&input);
        assert_eq!(text(&out.backend), "NOOP\r\n", "{}", text(line));
        assert_eq!(out.refused, [Refused::Bdat]);
        assert_eq!(
            text(&out.client),
            "501 5.5.4 Syntax: BDAT count [LAST]\r\n250 1\r\n"
        );
    }
}

/// Without CHUNKING a backend skips nothing after BDAT (Postfix answers
/// 521 and closes), so neither does levee.
#[test]
fn without_chunking_bdat_is_an_ordinary_command() {
    let input = b"BDAT\t19\r\nXCLIENT LOGIN=bob\r\n";
    let mut filter = Filter::new(false, Vec::new());
    let mut out = Out::default();
    filter.client_bytes(input, &mut out);
    assert_eq!(text(&out.backend), "BDAT\t19\r\n");
    assert_eq!(out.refused, [Refused::Xclient]);
}

#[test]
fn the_ehlo_reply_loses_what_levee_refuses() {
    for split in 1..EHLO_REPLY.len() {
        let (out, _, filter) = drive(true, b"NOOP\r\nEHLO x\r\nNOOP\r\n", &[], split);
        assert_eq!(
            text(&out.client),
            format!("250 1\r\n{}250 2\r\n", text(EHLO_SEEN)),
            "reply split {split}"
        );
        assert!(filter.down.ehlo.is_none());
    }
    // Only the EHLO's reply: the same lines in another reply pass.
    let mut filter = Filter::new(true, Vec::new());
    let mut out = Out::default();
    filter.client_bytes(b"HELP\r\n", &mut out);
    filter
        .backend_bytes(b"214-XCLIENT is levee's\r\n214 STARTTLS too\r\n", &mut out)
        .expect("filter");
    assert_eq!(
        text(&out.client),
        "214-XCLIENT is levee's\r\n214 STARTTLS too\r\n"
    );
    // An EHLO reply line too long to hold ends the session.
    let mut filter = Filter::new(true, Vec::new());
    filter.client_bytes(b"EHLO x\r\n", &mut out);
    let long = format!("250-{}\r\n", "x".repeat(EHLO_LINE_MAX));
    assert_eq!(
        filter.backend_bytes(long.as_bytes(), &mut out),
        Err(FilterError::EhloLineTooLong)
    );
}

/// What the client pipelined behind its AUTH, read during login, goes
/// through the filter first.
#[test]
fn bytes_pipelined_behind_auth_are_filtered_too() {
    let mut filter = Filter::new(true, b"XCLIENT LOGIN=bob\r\nNOOP\r\n".to_vec());
    let mut out = Out::default();
    filter.client_bytes(b"RSET\r\n", &mut out);
    assert!(out.backend.is_empty(), "held behind the leftover");
    assert!(filter.resume(&mut out));
    assert_eq!(text(&out.backend), "NOOP\r\nRSET\r\n");
    assert_eq!(text(&out.client), "550 5.7.0 Command not permitted\r\n");
}

#[test]
fn a_verb_must_start_within_head_max_bytes() {
    let mut input = vec![b' '; super::HEAD_MAX];
    input.extend_from_slice(b"XCLIENT LOGIN=bob\r\nNOOP\r\n");
    for split in [1, 10, 63, 64, 65, 200] {
        let (out, _, _) = drive(true, &input, &[split], 64);
        assert_eq!(text(&out.backend), "NOOP\r\n", "split {split}");
        assert_eq!(out.refused, [Refused::Unframed]);
    }
    // Within it, blanks are the line's and pass with it.
    let input = format!("{}NOOP\r\n", " ".repeat(super::HEAD_MAX - 1));
    let (out, _, _) = drive(true, input.as_bytes(), &[5], 64);
    assert_eq!(text(&out.backend), input);
}

/// While the client waits, the filter holds at most what one read brought;
/// idle, it holds nothing.
#[test]
fn held_bytes_are_bounded_and_freed() {
    let mut filter = Filter::new(true, Vec::new());
    let mut out = Out::default();
    let read = b"MAIL FROM:<a@b>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n";
    filter.client_bytes(read, &mut out);
    assert!(filter.waiting());
    assert_eq!(filter.held, b"Subject: x\r\n\r\nhi\r\n.\r\n");
    filter
        .backend_bytes(b"250 ok\r\n", &mut out)
        .expect("filter");
    assert!(filter.waiting(), "DATA's reply is the one that tells");
    filter
        .backend_bytes(b"354 go\r\n", &mut out)
        .expect("filter");
    assert!(filter.resume(&mut out));
    filter
        .backend_bytes(b"250 queued\r\n", &mut out)
        .expect("filter");
    assert_eq!(out.backend, read);
    assert!(!filter.waiting());
    assert_eq!(filter.held.capacity(), 0);
    assert_eq!(filter.head.capacity(), 0);
    assert!(filter.down.ehlo.is_none());
    // A line's start split across reads is held only until its verb shows.
    filter.client_bytes(b"XCL", &mut out);
    assert!(filter.head.capacity() > 0);
    filter.client_bytes(b"IENT LOGIN=bob\r\n", &mut out);
    assert_eq!(filter.head.capacity(), 0);
}

#[test]
fn every_split_gives_the_same_bytes() {
    let input: &[u8] = b"EHLO x\r\nMAIL FROM:<a@b>\r\n  xclient LOGIN=bob\r\nDATA\r\nXCLIENT\r\n..\r\n.\r\nBDAT 7 LAST\r\nAUTH\r\nXFORWARD NAME=x\n";
    let (reference, _, _) = whole(input);
    for a in 1..input.len() {
        for b in [1, 2, 5, 9, 64] {
            let (out, backend, _) = drive(true, input, &[a, b], b);
            assert_eq!(out.backend, reference.backend, "splits {a},{b}");
            assert_eq!(out.client, reference.client, "splits {a},{b}");
            assert!(backend.breaches.is_empty());
        }
    }
}

/// A piece of a generated session: its bytes, what the backend must get,
/// and what the client must hear.
#[derive(Debug, Clone)]
struct Piece {
    sent: Vec<u8>,
    passed: bool,
    /// `None` for a command the model numbers (`250 N`).
    heard: Option<Vec<u8>>,
}

fn refused_piece() -> impl Strategy<Value = Piece> {
    let verb = prop::sample::select(vec![
        ("XCLIENT", Refused::Xclient),
        ("XFORWARD", Refused::Xforward),
        ("STARTTLS", Refused::StartTls),
        ("AUTH", Refused::Auth),
    ]);
    (
        verb,
        "[ \t\r\x0b]{0,3}",
        any::<u8>(),
        "([ \t][ -~]{0,20})?",
        any::<bool>(),
    )
        .prop_map(|((verb, what), blanks, case, args, crlf)| {
            let verb: String = verb
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if case >> (i % 8) & 1 == 1 {
                        c.to_ascii_lowercase()
                    } else {
                        c
                    }
                })
                .collect();
            let end = if crlf { "\r\n" } else { "\n" };
            Piece {
                sent: format!("{blanks}{verb}{args}{end}").into_bytes(),
                passed: false,
                heard: Some(what.reply().to_vec()),
            }
        })
}

fn piece() -> impl Strategy<Value = Piece> {
    let command = prop::sample::select(vec![
        "MAIL FROM:<a@b>\r\n",
        "rcpt to:<c@d>\r\n",
        "NOOP\r\n",
        "  noop\r\n",
        "RSET\n",
        "\r\n",
        "XCLIENTS x\r\n",
        "DATAX\r\n",
        "X-CLIENT LOGIN=bob\r\n",
    ])
    .prop_map(|c| Piece {
        sent: c.as_bytes().to_vec(),
        passed: true,
        heard: None,
    });
    let bad_bdat = prop::sample::select(vec!["BDAT\t5\r\n", " BDAT 5\r\n", "BDAT 5 X\r\n"])
        .prop_map(|c| Piece {
            sent: c.as_bytes().to_vec(),
            passed: false,
            heard: Some(Refused::Bdat.reply().to_vec()),
        });
    let content_line = prop_oneof![
        "[^\n]{0,30}",
        Just("XCLIENT LOGIN=bob".to_owned()),
        Just(".".to_owned()),
        Just(".\r".to_owned()),
        Just("AUTH PLAIN x".to_owned()),
    ];
    let data = prop::collection::vec(content_line, 0..5).prop_map(|lines| {
        let mut sent = b"DATA\r\n".to_vec();
        for l in lines {
            // Dot-stuffed, as a client sends content (RFC 5321 4.5.2).
            if l.starts_with('.') {
                sent.push(b'.');
            }
            sent.extend_from_slice(l.as_bytes());
            sent.extend_from_slice(b"\r\n");
        }
        sent.extend_from_slice(b".\r\n");
        Piece {
            sent,
            passed: true,
            heard: Some(b"354 go\r\n250 queued\r\n".to_vec()),
        }
    });
    let bdat = (
        prop::collection::vec(any::<u8>(), 0..40),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(chunk, last, lower)| {
            let verb = if lower { "bdat" } else { "BDAT" };
            let last = if last { " LAST" } else { "" };
            let mut sent = format!("{verb} {}{last}\r\n", chunk.len()).into_bytes();
            sent.extend_from_slice(&chunk);
            Piece {
                sent,
                passed: true,
                heard: Some(b"250 chunk\r\n".to_vec()),
            }
        });
    prop_oneof![
        3 => command,
        3 => refused_piece(),
        1 => bad_bdat,
        2 => data,
        2 => bdat,
        1 => Just(Piece { sent: b"EHLO x\r\n".to_vec(), passed: true, heard: Some(EHLO_SEEN.to_vec()) }),
        1 => Just(Piece { sent: b"DATA now\r\n".to_vec(), passed: true, heard: Some(b"501 syntax\r\n".to_vec()) }),
    ]
}

proptest! {
    /// A pipelined session of any commands, content and chunks, in reads of
    /// any sizes: the backend gets the client's bytes less the refused
    /// lines, never a proxy command, and the client hears every reply in
    /// the order it asked.
    #[test]
    fn only_refused_lines_change(
        pieces in prop::collection::vec(piece(), 0..12),
        splits in prop::collection::vec(1usize..40, 1..6),
        reply_split in 1usize..30,
    ) {
        let sent: Vec<u8> = pieces.iter().flat_map(|p| p.sent.clone()).collect();
        let passed: Vec<u8> = pieces.iter().filter(|p| p.passed).flat_map(|p| p.sent.clone()).collect();
        let mut heard = Vec::new();
        let mut n = 0;
        for p in &pieces {
            match &p.heard {
                Some(h) => heard.extend_from_slice(h),
                None => {
                    n += 1;
                    heard.extend_from_slice(format!("250 {n}\r\n").as_bytes());
                }
            }
        }
        let (out, backend, filter) = drive(true, &sent, &splits, reply_split);
        prop_assert_eq!(&out.backend, &passed);
        prop_assert!(backend.breaches.is_empty(), "{:?}", backend.breaches);
        prop_assert_eq!(&out.client, &heard);
        prop_assert_eq!(filter.held.capacity(), 0);
        prop_assert_eq!(filter.head.capacity(), 0);
    }

    /// Whatever the bytes, the filter never panics, never sends a byte it
    /// was not given, and gives the same bytes however the input is split.
    #[test]
    fn any_bytes_split_anywhere(input in prop::collection::vec(any::<u8>(), 0..200), split in 1usize..200) {
        let (reference, _, _) = drive(true, &input, &[], 7);
        let (out, _, _) = drive(true, &input, &[split], 7);
        prop_assert_eq!(&out.backend, &reference.backend);
        prop_assert_eq!(&out.client, &reference.client);
        prop_assert!(out.backend.len() <= input.len());
    }
}
