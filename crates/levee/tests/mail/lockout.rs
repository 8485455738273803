//! Failed logins lock a user out from one address only, a per-user
//! ceiling slows rather than refuses, and parallel attempts are counted
//! exactly: nginx's `auth_http` service counts what reaches it.

use super::fixtures::*;
use crate::support::*;

/// levee with one IMAP listener asking `auth` (nginx, alice:secret), with
/// `extra` settings in `[listener.mail]`.
fn levee_with(auth: &Nginx, extra: &str) -> (Levee, u16) {
    let setup = LeveeSetup::new();
    let port = setup.port;
    let config = format!(
        "[[listener]]\naddress = \"127.0.0.1:{port}\"\nprotocol = \"imap\"\n[listener.mail]\nauth_http = \"http://127.0.0.1:{}/auth\"\nauth_fail_delay = \"0s\"\nauth_negative_ttl = \"0s\"\n{extra}",
        auth.port()
    );
    (setup.start(&config), port)
}

fn auth_requests(auth: &Nginx) -> usize {
    auth.settled_entries()
        .iter()
        .filter(|e| e.get("uri") == "/auth")
        .count()
}

/// The issue: failures for alice from anywhere locked her out everywhere,
/// and 40 parallel wrong passwords let 8 reach the auth service against a
/// limit of 5. Now exactly 5 are asked, and alice still logs in from her
/// own address.
#[test]
fn a_guesser_locks_out_only_himself_and_parallel_guesses_are_counted_exactly() {
    let alice = Dovecot::start(&[("alice", "secret")]);
    let auth = auth_service(alice.imap_port, alice.imap_port, free_port());
    let (_levee, port) = levee_with(&auth, "max_auth_failures = 5\n");
    let r = client("lockout", port);
    assert_eq!(r["others"], "[]", "{r:?}");
    assert_eq!(r["refused"], "40", "{r:?}");
    // From the guesser's address, even the right password is refused,
    // and alice at hers is not locked out.
    assert!(r["same_address"].contains("AUTHENTICATIONFAILED"), "{r:?}");
    // Asked: the limit's 5 guesses and alice's own login; not the 35 other
    // guesses, nor the right password from the guesser's address.
    assert_eq!(
        auth_requests(&auth),
        6,
        "the auth service was asked past the limit"
    );
    assert_eq!(r["other_address"], "OK", "{r:?}");
}

/// Past `max_user_auth_failures` across addresses, alice's logins are
/// slowed to one a second, not refused.
#[test]
fn past_the_user_ceiling_logins_are_slowed_not_refused() {
    let alice = Dovecot::start(&[("alice", "secret")]);
    let auth = auth_service(alice.imap_port, alice.imap_port, free_port());
    let (levee, port) = levee_with(&auth, "max_user_auth_failures = 4\n");
    let r = client("slowed", port);
    for n in 0..4 {
        assert!(
            r[&format!("wrong_{n}")].contains("AUTHENTICATIONFAILED"),
            "{r:?}"
        );
    }
    assert_eq!(r["right"], "OK,OK", "{r:?}");
    // The second waited its turn: at least a second after the first.
    assert!(ms(&r["right_ms"]) >= 1000, "{r:?}");
    assert!(
        levee.wait_stderr("mail login slowed", std::time::Duration::from_secs(5))
            || levee.stdout().contains("mail login slowed")
    );
}
