//! IMAP parser tests: commands, literals (synchronizing and LITERAL+),
//! refusals and what they discard, and every split of the input.

use super::*;
use proptest::prelude::*;

const LIMITS: Limits = Limits {
    max_literal: 64,
    max_line: 1024,
};

/// Drives the parser as a connection would: bytes arrive in `chunks`, a
/// continuation is "sent" when asked for. Returns the commands and the
/// number of continuations.
fn drive(chunks: &[&[u8]]) -> (Vec<Result<Tagged, Refusal>>, usize) {
    let mut buf = Vec::new();
    let mut acked = 0;
    let mut continuations = 0;
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match parse(&buf, acked, &LIMITS) {
                Ok(Next::Incomplete) => break,
                Ok(Next::Continue { at }) => {
                    assert!(at > acked, "continuation asked twice");
                    acked = at;
                    continuations += 1;
                }
                Ok(Next::Command(t, n)) => {
                    out.push(Ok(t));
                    buf.drain(..n);
                    acked = 0;
                }
                Err(r) => match r.discard {
                    Discard::Bytes(n) => {
                        out.push(Err(r));
                        buf.drain(..n);
                        acked = 0;
                    }
                    Discard::NeedMore => break,
                    Discard::Close => {
                        out.push(Err(r));
                        return (out, continuations);
                    }
                },
            }
        }
    }
    (out, continuations)
}

/// `AUTHENTICATE PLAIN` with this initial response.
fn plain(initial: Option<&[u8]>) -> Command {
    Command::Authenticate {
        mechanism: b"PLAIN".to_vec(),
        initial: initial.map(<[u8]>::to_vec),
    }
}

fn one(input: &[u8]) -> Tagged {
    let (mut out, _) = drive(&[input]);
    assert_eq!(out.len(), 1, "{out:?}");
    out.remove(0).expect("a command")
}

#[test]
fn simple_commands() {
    assert_eq!(one(b"a1 CAPABILITY\r\n").command, Command::Capability);
    assert_eq!(one(b"a2 noop\r\n").command, Command::Noop);
    assert_eq!(one(b"a3 LOGOUT\r\n").command, Command::Logout);
    assert_eq!(one(b"a4 StartTLS\r\n").command, Command::StartTls);
    assert_eq!(one(b"a1 CAPABILITY\r\n").tag, b"a1");
}

#[test]
fn login_with_atoms_quoted_strings_and_literals() {
    let login = |u: &[u8], p: &[u8]| Command::Login {
        user: u.to_vec(),
        pass: p.to_vec(),
    };
    assert_eq!(
        one(b"a LOGIN alice secret\r\n").command,
        login(b"alice", b"secret")
    );
    assert_eq!(
        one(b"a LOGIN \"al ice\" \"p\\\"w\\\\d\"\r\n").command,
        login(b"al ice", b"p\"w\\d")
    );
    let (out, continuations) = drive(&[b"a LOGIN {5}\r\n", b"alice {6}\r\n", b"se\r\net\r\n"]);
    assert_eq!(continuations, 2);
    assert_eq!(
        out[0].as_ref().expect("ok").command,
        login(b"alice", b"se\r\net")
    );
    let (out, continuations) = drive(&[b"a LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n"]);
    assert_eq!(continuations, 0);
    assert_eq!(
        out[0].as_ref().expect("ok").command,
        login(b"alice", b"secret")
    );
}

#[test]
fn authenticate_with_and_without_initial_response() {
    assert_eq!(one(b"a AUTHENTICATE plain\r\n").command, plain(None));
    assert_eq!(
        one(b"a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n").command,
        plain(Some(b"AGFsaWNlAHNlY3JldA=="))
    );
    assert_eq!(
        one(b"a AUTHENTICATE PLAIN =\r\n").command,
        plain(Some(b"="))
    );
}

#[test]
fn id_lists() {
    assert_eq!(one(b"a ID NIL\r\n").command, Command::Id(vec![]));
    assert_eq!(
        one(b"a ID (\"name\" \"imaplib\" \"version\" NIL)\r\n").command,
        Command::Id(vec![
            (b"name".to_vec(), Some(b"imaplib".to_vec())),
            (b"version".to_vec(), None)
        ])
    );
}

#[test]
fn every_split_gives_the_same_commands() {
    let input: &[u8] =
        b"a1 ID (\"name\" {3+}\r\nfoo)\r\na2 LOGIN {5}\r\nalice \"x y\"\r\na3 NOOP\r\n";
    let (whole, _) = drive(&[input]);
    assert_eq!(whole.len(), 3);
    for split in 1..input.len() {
        let (parts, _) = drive(&[&input[..split], &input[split..]]);
        assert_eq!(parts, whole, "split at {split}");
    }
}

#[test]
fn refusals_discard_exactly_the_command() {
    // Unknown command: the line is dropped, the next command is read.
    let (out, _) = drive(&[b"a SELECT INBOX\r\nb NOOP\r\n"]);
    let refusal = out[0].as_ref().expect_err("refused");
    assert_eq!(refusal.tag.as_deref(), Some(&b"a"[..]));
    assert!(matches!(refusal.error, ImapError::UnknownCommand(_)));
    assert_eq!(out[1].as_ref().expect("ok").command, Command::Noop);

    // A refused line with a LITERAL+ literal: its data is consumed, never
    // read as a command.
    let (out, _) = drive(&[b"a XYZZY {13+}\r\nb LOGOUT\r\nx\r\n\r\nc NOOP\r\n"]);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out[0].is_err());
    assert_eq!(out[1].as_ref().expect("ok").tag, b"c");

    // A synchronizing literal on a refused line: the client waits for a
    // continuation it never gets, so the command ends at the line's end.
    let (out, continuations) = drive(&[b"a XYZZY {5}\r\nb NOOP\r\n"]);
    assert_eq!(continuations, 0);
    assert_eq!(out[1].as_ref().expect("ok").tag, b"b");
}

#[test]
fn literal_size_is_bounded() {
    // Synchronizing: refused without a continuation; the line is dropped.
    let (out, continuations) = drive(&[b"a LOGIN {65}\r\nb NOOP\r\n"]);
    assert_eq!(continuations, 0);
    assert_eq!(
        out[0].as_ref().expect_err("refused").error,
        ImapError::LiteralTooLarge
    );
    assert_eq!(out[1].as_ref().expect("ok").tag, b"b");
    // LITERAL+: its data follows regardless and cannot be skipped safely: close.
    let (out, _) = drive(&[b"a LOGIN {65+}\r\n"]);
    assert_eq!(
        out[0].as_ref().expect_err("refused").discard,
        Discard::Close
    );
}

#[test]
fn syntax_errors() {
    for bad in [
        &b"+a NOOP\r\n"[..],
        b"a  NOOP\r\n",
        b"a NOOP extra\r\n",
        b"a LOGIN alice\r\n",
        b"a LOGIN \"unterminated\r\n",
        b"a ID (\"a\")\r\n",
    ] {
        let (out, _) = drive(&[bad]);
        assert!(
            matches!(out.first(), Some(Err(_))),
            "{:?}: {out:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let (out, _) = drive(&[b"+a NOOP\r\n"]);
    assert_eq!(out[0].as_ref().expect_err("refused").tag, None);
}

/// Python's imaplib writes `LOGIN alice  {7}` for an empty argument before
/// a literal; Dovecot and nginx take any run of spaces between arguments.
#[test]
fn runs_of_spaces_between_arguments_are_accepted() {
    let login = |u: &[u8], p: &[u8]| Command::Login {
        user: u.to_vec(),
        pass: p.to_vec(),
    };
    let input: &[u8] = b"a LOGIN alice  {7}\r\npassw0d\r\nb NOOP  \r\n";
    let (whole, continuations) = drive(&[&input[..20], &input[20..]]);
    assert_eq!(continuations, 1, "the literal is asked for");
    assert_eq!(whole.len(), 2, "{whole:?}");
    assert_eq!(
        whole[0].as_ref().expect("ok").command,
        login(b"alice", b"passw0d")
    );
    assert_eq!(whole[1].as_ref().expect("ok").command, Command::Noop);
    for split in 1..input.len() {
        let (parts, _) = drive(&[&input[..split], &input[split..]]);
        assert_eq!(parts, whole, "split at {split}");
    }
    assert_eq!(
        one(b"a LOGIN   \"al ice\"   secret   \r\n").command,
        login(b"al ice", b"secret")
    );
    assert_eq!(
        one(b"a AUTHENTICATE  PLAIN   AGFsaWNlAHNlY3JldA==  \r\n").command,
        plain(Some(b"AGFsaWNlAHNlY3JldA=="))
    );
    assert_eq!(one(b"a AUTHENTICATE PLAIN \r\n").command, plain(None));
    assert_eq!(
        one(b"a ID (  \"name\"   \"x\"  \"os\" NIL )\r\n").command,
        Command::Id(vec![
            (b"name".to_vec(), Some(b"x".to_vec())),
            (b"os".to_vec(), None)
        ])
    );
    assert_eq!(one(b"a ID  NIL \r\n").command, Command::Id(vec![]));
}

/// Liberal spacing leaves literals as strict as before: the `{n}` must be
/// followed by its CRLF at once, and the literal's data is never a command.
#[test]
fn spacing_does_not_loosen_literals() {
    // A space inside or after the size: refused, no continuation given.
    for bad in [&b"a LOGIN alice {7 }\r\n"[..], b"a LOGIN alice { 7}\r\n"] {
        let (out, continuations) = drive(&[bad, b"b NOOP\r\n"]);
        assert_eq!(continuations, 0, "{:?}", String::from_utf8_lossy(bad));
        assert!(out[0].is_err(), "{out:?}");
        assert_eq!(out[1].as_ref().expect("ok").command, Command::Noop);
    }
    // Spaces between `}` and CRLF: not a literal, for the client either.
    let (out, continuations) = drive(&[b"a LOGIN alice {5}  \r\nb NOOP\r\n"]);
    assert_eq!(continuations, 0);
    assert!(out[0].is_err(), "{out:?}");
    assert_eq!(out[1].as_ref().expect("ok").tag, b"b");
    // A refused command's LITERAL+ data after padded arguments is skipped.
    let (out, _) = drive(&[b"a XYZZY   x  {13+}\r\nb LOGOUT\r\nx\r\n\r\nc NOOP\r\n"]);
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[1].as_ref().expect("ok").tag, b"c");
    // Between the tag and the command name exactly one space, as Dovecot.
    let (out, _) = drive(&[b"a  NOOP\r\n"]);
    assert!(out[0].is_err());
}

/// The line limit counts a command's text; literal data is counted apart:
/// each literal up to `max_literal`, all of them together up to `max_line`.
#[test]
fn literal_data_is_counted_apart_from_the_line() {
    let limits = Limits {
        max_literal: 60,
        max_line: 100,
    };
    let parse_all = |input: &[u8]| {
        let mut acked = 0;
        loop {
            match parse(input, acked, &limits) {
                Ok(Next::Continue { at }) => acked = at,
                other => return other,
            }
        }
    };
    // 2 × 60 bytes of literal data + a short line: over 100 bytes, accepted.
    let mut two = b"a LOGIN {60+}\r\n".to_vec();
    two.extend_from_slice(&[b'u'; 60]);
    two.extend_from_slice(b" {40+}\r\n");
    two.extend_from_slice(&[b'p'; 40]);
    two.extend_from_slice(b"\r\n");
    assert!(two.len() > 100);
    assert!(matches!(parse_all(&two), Ok(Next::Command(..))));
    // Arriving piece by piece, it is never "too long" either.
    for end in 1..two.len() {
        assert!(parse_all(&two[..end]).is_ok(), "refused at {end} bytes");
    }
    // Literals together over max_line: refused (LITERAL+ cannot be skipped: close).
    let mut many = b"a ID (".to_vec();
    for i in 0..3 {
        many.extend_from_slice(format!("\"f{i}\" {{40+}}\r\n").as_bytes());
        many.extend_from_slice(&[b'v'; 40]);
        many.push(b' ');
    }
    let refusal = parse_all(&many).expect_err("over the literal total");
    assert_eq!(refusal.error, ImapError::LiteralTooLarge);
    assert_eq!(refusal.discard, Discard::Close);
    // The text alone over max_line: too long, as before.
    let long = format!("a LOGIN {} x\r\n", "u".repeat(120));
    let refusal = parse_all(&long.as_bytes()[..110]).expect_err("too long");
    assert_eq!(refusal.error, ImapError::TooLong);
}

#[test]
fn overlong_commands_close() {
    let long = vec![b'a'; 2000];
    assert_eq!(
        parse(&long, 0, &LIMITS).expect_err("too long").discard,
        Discard::Close
    );
}

proptest! {
    #[test]
    fn never_panics_and_never_overreads(input in proptest::collection::vec(any::<u8>(), 0..300), acked in 0usize..300) {
        match parse(&input, acked, &LIMITS) {
            Ok(Next::Command(_, n)) => prop_assert!(n <= input.len()),
            Ok(Next::Continue { at }) => prop_assert!(at <= input.len()),
            Err(Refusal { discard: Discard::Bytes(n), .. }) => prop_assert!(n > 0 && n <= input.len()),
            _ => {}
        }
    }

    #[test]
    fn command_shaped_input_never_panics(
        tag in "[a-z0-9]{1,4}",
        verb in "(LOGIN|AUTHENTICATE|ID|NOOP|CAPABILITY|X)",
        args in proptest::collection::vec("(\\{[0-9]{1,3}\\+?\\}\r\n|\"[ -~]{0,5}\"|[a-z]{1,5}|\\(|\\)|NIL| )", 0..8),
    ) {
        let text = format!("{tag} {verb} {}\r\n", args.concat());
        let _ = drive(&[text.as_bytes()]);
    }
}
