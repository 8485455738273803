//! Closing a user's logged-in sessions on request, when their mailbox moves
//! to another backend (control API: `POST /mail/users/NAME/close`). New
//! logins already go where the auth service or the reloaded user map says;
//! this ends the sessions still open on the old backend. In a fleet the
//! request goes to every member on the bus ([`close_user_everywhere`]),
//! and each applies the same rules to its own sessions ([`close_user`]).
//!
//! The relay does not parse what it relays, so it judges the moment from
//! the backend's side of the stream: a session is closed, after the
//! protocol's closing line, at the first of
//!
//! - a **command boundary**: the backend's last bytes ended a line that
//!   completes an answer ([`Goodbye::answer_ends`]: an IMAP tagged status,
//!   a POP3 status or end of a listing, a final SMTP reply), the client has
//!   sent nothing since, nothing is unsent, and nothing moved for
//!   [`SETTLE`] (so a long answer that happened to pause on such a line
//!   is not cut);
//! - a **quiet moment**: the backend's last bytes ended any line (an IMAP
//!   client in IDLE, an untagged update) and nothing moved for [`QUIET`];
//! - the end of the listener's `move_grace` after the request: then at
//!   once, whatever is in flight.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::Waker;
use std::time::Duration;

use tokio::time::Instant;

/// How long a session must be still, after a line from the backend, before
/// it is closed.
pub const QUIET: Duration = Duration::from_millis(300);
/// How long a session must be still after a complete answer before it is
/// closed: long enough for the rest of a response written in pieces, short
/// enough to fall between the commands of a client that sends one every
/// 100 ms.
pub const SETTLE: Duration = Duration::from_millis(50);

/// What a protocol says when its session is closed for a move, and how the
/// relay recognises the end of an answer.
#[derive(Debug)]
pub struct Goodbye {
    /// The closing line (`* BYE …`, `-ERR [SYS/TEMP] …`, `421 …`).
    pub line: &'static [u8],
    /// Whether this complete line (without its CRLF), sent by the backend,
    /// ends its answer to a command.
    pub answer_ends: fn(&[u8]) -> bool,
}

pub const IMAP: Goodbye = Goodbye {
    line: b"* BYE Your mailbox has moved; please log in again\r\n",
    answer_ends: imap_answer_ends,
};

pub const POP3: Goodbye = Goodbye {
    line: b"-ERR [SYS/TEMP] Your mailbox has moved; please log in again\r\n",
    answer_ends: pop3_answer_ends,
};

pub const SMTP: Goodbye = Goodbye {
    line: b"421 4.3.0 Your mailbox has moved; please log in again\r\n",
    answer_ends: smtp_answer_ends,
};

/// IMAP: a tagged status response, `TAG OK|NO|BAD …` (untagged `*` lines
/// and `+` continuations do not end a command).
fn imap_answer_ends(line: &[u8]) -> bool {
    let mut words = line.splitn(3, |&b| b == b' ');
    let (Some(tag), Some(status)) = (words.next(), words.next()) else {
        return false;
    };
    let tag_ok = !tag.is_empty()
        && !matches!(tag[0], b'*' | b'+')
        && tag.iter().all(|b| (0x21..0x7f).contains(b));
    tag_ok
        && [&b"OK"[..], b"NO", b"BAD"]
            .iter()
            .any(|s| status.eq_ignore_ascii_case(s))
}

/// POP3: a status line, or the `.` that ends a multi-line answer (a body
/// line that is only a dot is sent as `..`).
fn pop3_answer_ends(line: &[u8]) -> bool {
    line == b"." || line.starts_with(b"+OK") || line.starts_with(b"-ERR")
}

/// SMTP: the last line of a reply (`250 …`, not `250-…`) that is final:
/// 2xx, 4xx or 5xx (a `354` waits for the message).
fn smtp_answer_ends(line: &[u8]) -> bool {
    line.len() >= 3
        && matches!(line[0], b'2' | b'4' | b'5')
        && line[1..3].iter().all(u8::is_ascii_digit)
        && line.get(3).is_none_or(|&b| b == b' ')
}

/// One logged-in session's close request, shared with the registry.
#[derive(Debug)]
pub struct Kick {
    user: Box<[u8]>,
    /// When the close was asked for ([`encode`]); [`NOT_ASKED`] until then.
    /// A word rather than a lock: the relay reads it at every wake-up.
    asked: AtomicI64,
    waker: Mutex<Option<Waker>>,
}

const NOT_ASKED: i64 = i64::MIN;

/// What request times are counted from.
fn epoch() -> std::time::Instant {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

/// `t` as signed nanoseconds from [`epoch`] (tokio's clock, which tests
/// pause, may read earlier than the epoch).
fn encode(t: Instant) -> i64 {
    let (t, e) = (t.into_std(), epoch());
    let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    match t.checked_duration_since(e) {
        Some(d) => nanos(d),
        None => -nanos(e.duration_since(t)),
    }
}

fn decode(n: i64) -> Instant {
    let d = Duration::from_nanos(n.unsigned_abs());
    let e = epoch();
    let t = if n >= 0 {
        e.checked_add(d)
    } else {
        e.checked_sub(d)
    };
    Instant::from_std(t.unwrap_or(e))
}

type Registry = HashMap<Box<[u8]>, Vec<Weak<Kick>>>;

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

/// A session's registration; leaves the registry when dropped.
#[derive(Debug)]
pub struct Handle(Arc<Kick>);

impl Handle {
    /// When a close was first asked for, if it was.
    pub fn asked_at(&self) -> Option<Instant> {
        match self.0.asked.load(Ordering::Acquire) {
            NOT_ASKED => None,
            n => Some(decode(n)),
        }
    }

    /// Whether a close was asked for.
    pub fn requested(&self) -> bool {
        self.0.asked.load(Ordering::Acquire) != NOT_ASKED
    }

    /// Remembers the relay's waker so a request wakes it.
    pub fn watch(&self, waker: &Waker) {
        if let Ok(mut w) = self.0.waker.lock()
            && !w.as_ref().is_some_and(|w| w.will_wake(waker))
        {
            *w = Some(waker.clone());
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let Ok(mut r) = registry().lock() else { return };
        if let Some(list) = r.get_mut(&self.0.user) {
            list.retain(|w| {
                w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), Arc::as_ptr(&self.0))
            });
            if list.is_empty() {
                r.remove(&self.0.user);
            }
        }
    }
}

/// Registers a logged-in session of `user`.
pub fn register(user: &[u8]) -> Handle {
    epoch();
    let kick = Arc::new(Kick {
        user: user.into(),
        asked: AtomicI64::new(NOT_ASKED),
        waker: Mutex::new(None),
    });
    if let Ok(mut r) = registry().lock() {
        r.entry(user.into())
            .or_default()
            .push(Arc::downgrade(&kick));
    }
    Handle(kick)
}

/// Asks every logged-in session of `user` to close; returns how many there
/// are. A session asked before keeps its first request's time, so asking
/// again never extends its grace.
pub fn close_user(user: &[u8]) -> usize {
    let now = encode(Instant::now());
    let Ok(r) = registry().lock() else { return 0 };
    let mut n = 0;
    for kick in r.get(user).into_iter().flatten().filter_map(Weak::upgrade) {
        let _ = kick
            .asked
            .compare_exchange(NOT_ASKED, now, Ordering::AcqRel, Ordering::Acquire);
        if let Ok(w) = kick.waker.lock()
            && let Some(w) = w.as_ref()
        {
            w.wake_by_ref();
        }
        n += 1;
    }
    n
}

/// Where a close request went besides this member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// No `[fleet]`: this levee alone.
    Alone,
    /// Sent on the fleet's bus: every member closes the user's sessions.
    Fleet,
    /// In a fleet whose Redis is away: this member only.
    FleetUnreachable,
}

impl Reach {
    pub fn as_str(self) -> &'static str {
        match self {
            Reach::Alone => "this levee",
            Reach::Fleet => "every member",
            Reach::FleetUnreachable => "this member only: Redis is unreachable",
        }
    }
}

/// [`close_user`] here, at once, and on every other member of the fleet
/// (they hear it on the bus within a second and apply the same grace).
/// Returns this member's count, and where else the request went.
pub fn close_user_everywhere(user: &str) -> (usize, Reach) {
    let here = close_user(user.as_bytes());
    let reach = match levee_fleet::current() {
        None => Reach::Alone,
        Some(f) if f.is_up() => {
            f.publish(levee_fleet::bus::Message::CloseUser {
                user: user.to_owned(),
            });
            Reach::Fleet
        }
        Some(_) => Reach::FleetUnreachable,
    };
    (here, reach)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_reach_the_users_sessions_only_and_handles_leave() {
        let a = register(b"kick-test-alice");
        let b = register(b"kick-test-alice");
        let c = register(b"kick-test-bob");
        let before = Instant::now();
        assert_eq!(close_user(b"kick-test-alice"), 2);
        let asked = a.asked_at().expect("asked");
        assert!(asked >= before - Duration::from_millis(1) && asked <= Instant::now());
        assert!(b.requested() && !c.requested());
        // Asking again keeps the first time.
        std::thread::sleep(Duration::from_millis(5));
        close_user(b"kick-test-alice");
        assert_eq!(a.asked_at(), Some(asked));
        drop(a);
        drop(b);
        assert_eq!(close_user(b"kick-test-alice"), 0);
        assert!(
            registry()
                .lock()
                .expect("lock")
                .get(&b"kick-test-alice"[..])
                .is_none()
        );
        drop(c);
    }

    #[test]
    fn times_before_and_after_the_epoch_survive_the_round_trip() {
        let e = Instant::from_std(epoch());
        for t in [e, e + Duration::from_secs(3), e - Duration::from_millis(7)] {
            assert_eq!(decode(encode(t)), t);
        }
    }

    #[test]
    fn answers_end_on_final_lines_only() {
        let imap = IMAP.answer_ends;
        assert!(imap(b"a12 OK NOOP completed."));
        assert!(imap(b"A1 no [TRYCREATE] Mailbox doesn't exist"));
        assert!(imap(b"x BAD Error in IMAP command"));
        for not in [
            &b"* OK [UIDVALIDITY 1] Ok"[..],
            b"* 3 EXISTS",
            b"+ idling",
            b"+ OK",
            b"a12 OKAY",
            b"OK",
            b"",
        ] {
            assert!(!imap(not), "{}", String::from_utf8_lossy(not));
        }
        let pop3 = POP3.answer_ends;
        assert!(pop3(b"+OK 2 messages") && pop3(b"-ERR no such message") && pop3(b"."));
        assert!(!pop3(b"1 120") && !pop3(b"..") && !pop3(b"+ "));
        let smtp = SMTP.answer_ends;
        assert!(smtp(b"250 2.1.0 Ok") && smtp(b"550 5.1.1 No") && smtp(b"221"));
        assert!(!smtp(b"250-PIPELINING") && !smtp(b"354 End data with <CR><LF>.<CR><LF>"));
        assert!(!smtp(b"25") && !smtp(b"2a0 x"));
    }
}
