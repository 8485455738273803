//! The IMAP conformance run. No IMAP conformance tool is packaged in Debian,
//! so `mail/conformance.py` scripts session sets with raw sockets and
//! Python's imaplib: literals (synchronizing, LITERAL+, LITERAL- sizes)
//! before and after login, IDLE, APPEND of large messages, FETCH of BODY[]
//! partials, UID commands, SEARCH with charsets and literal strings, and
//! pipelining. Each script runs directly against Dovecot, then through
//! levee to the same Dovecot, and the two transcripts (every response, tag
//! and state) must be identical, save for levee's documented differences
//! before login (docs/config.md, "IMAP as the backend speaks it"), which
//! the script normalises away.

mod support;

#[path = "mail/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;

use support::*;

/// A Dovecot with alice, and levee routing alice to it.
struct Pair {
    dovecot: Dovecot,
    _levee: Levee,
    levee_port: u16,
}

fn pair() -> Pair {
    let dovecot = Dovecot::start(&[("alice", "secret")]);
    let setup = LeveeSetup::new();
    let levee_port = setup.port;
    let users = setup.dir.join("users");
    std::fs::write(&users, format!("alice 127.0.0.1:{}\n", dovecot.imap_port)).expect("map");
    let config = format!(
        "[[listener]]\naddress = \"127.0.0.1:{levee_port}\"\nprotocol = \"imap\"\n[listener.mail]\nuser_map = \"{}\"\nauth_fail_delay = \"0s\"\n",
        users.display()
    );
    Pair {
        dovecot,
        _levee: setup.start(&config),
        levee_port,
    }
}

fn transcript(scenario: &str, port: u16, dovecot: u16) -> Vec<String> {
    let args = [port.to_string(), dovecot.to_string()];
    fixtures::script_output("conformance.py", scenario, &args)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Runs `scenario` against Dovecot and through levee; asserts the
/// transcripts are the same and hold each of `expect`.
fn conforms(scenario: &str, expect: &[&str]) -> Vec<String> {
    let p = pair();
    let dovecot = p.dovecot.imap_port;
    let direct = transcript(scenario, dovecot, dovecot);
    let proxied = transcript(scenario, p.levee_port, dovecot);
    if let Some(i) = (0..direct.len().max(proxied.len())).find(|&i| direct.get(i) != proxied.get(i))
    {
        let from = i.saturating_sub(5);
        panic!(
            "{scenario}: through levee differs from Dovecot at line {i}\n--- Dovecot\n{}\n--- levee\n{}",
            direct[from..direct.len().min(i + 5)].join("\n"),
            proxied[from..proxied.len().min(i + 5)].join("\n"),
        );
    }
    let text = direct.join("\n");
    assert!(!text.contains("error:"), "{scenario} stopped:\n{text}");
    for e in expect {
        assert!(text.contains(e), "{scenario}: no {e:?} in\n{text}");
    }
    direct
}

/// The spacing: `a LOGIN alice  {6}`, as imaplib writes it for an
/// empty argument before a literal, refused by levee before (BAD).
#[test]
fn literals_before_login_and_imaplib_spacing() {
    let t = conforms(
        "login_literals",
        &[
            "C: a LOGIN alice  {6}",
            "imaplib LOGIN alice  {6}: OK",
            "imaplib SELECT INBOX: OK",
        ],
    );
    assert_eq!(t.iter().filter(|l| *l == "state: authenticated").count(), 4);
}

/// The 31,808-byte ID, refused before by levee ("command too long").
#[test]
fn the_largest_id_rfc_2971_allows() {
    conforms(
        "large_id",
        &["S: i OK\nstate: not-authenticated", "S: j OK ID completed."],
    );
}

#[test]
fn literals_after_login() {
    conforms(
        "literals_after_login",
        &[
            "S: c OK",
            "S: a1 OK",
            "S: a2 OK",
            "S: a3 OK [APPENDUID N 3]",
        ],
    );
}

#[test]
fn append_of_large_messages() {
    let t = conforms("append_large", &["S: a1 OK", "S: a2 OK", "S: f OK"]);
    // What was appended (both literals) is what is fetched back.
    let sent: Vec<&str> = t
        .iter()
        .filter(|l| l.starts_with("C: "))
        .flat_map(|l| l.split('{').skip(1))
        .filter_map(|s| s.split_once('}').map(|(inner, _)| inner))
        .filter(|inner| inner.contains(" sha256="))
        .collect();
    assert_eq!(sent.len(), 2, "{t:?}");
    for literal in sent {
        let fetched = format!("BODY[] {{{literal}}}");
        assert!(t.iter().any(|l| l.contains(&fetched)), "{fetched}");
    }
}

#[test]
fn fetch_of_body_partials() {
    conforms(
        "fetch_partial",
        &["S: f0 OK", "BINARY[1]<5> {10}'of message'", "S: f9 OK"],
    );
}

#[test]
fn uid_commands() {
    conforms(
        "uid_commands",
        &[
            "S: u7 OK Move completed.",
            "S: u8 OK",
            "S: u12 BAD",
            "MESSAGES 2",
        ],
    );
}

#[test]
fn search_with_charsets_and_literals() {
    conforms(
        "search_charsets",
        &["S: s1 OK", "S: s3 OK", "S: s5 NO [BADCHARSET]", "S: s6 OK"],
    );
}

#[test]
fn idle() {
    conforms(
        "idle",
        &["S: + idling", "S: * 1 EXISTS", "S: i OK Idle completed."],
    );
}

#[test]
fn pipelining() {
    conforms(
        "pipelining",
        &[
            "S: p3 OK",
            "S: p7 OK",
            "S: q19 OK",
            "S: q20 OK Logout completed.",
        ],
    );
}

/// imaplib asks CAPABILITY before it logs in, after which Dovecot announces
/// the post-login capabilities untagged; levee now asks the backend too,
/// so the client sees the same.
#[test]
fn an_imaplib_session() {
    conforms(
        "imaplib_session",
        &["login: OK ['Logged in']", "close: OK", "logout: BYE"],
    );
}
