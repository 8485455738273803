//! Drained members: taken out of the fleet's DNS answers at once while they
//! keep serving (`levee ctl fleet drain NAME`, docs/dns.md).
//!
//! The set lives in the hash `{NAME}:drained` (instance → milliseconds
//! when drained), so every member reads the same; the bus carries each
//! change at once, and every heartbeat reads the hash again in case a
//! message was missed. The hash always holds the field `!` (not a valid
//! instance name): a hash without it is one Redis lost (restarted empty,
//! or a replica promoted without it), and the first member to notice writes
//! back the set it last read, so a drain survives that.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::FleetError;
use crate::link::Link;

/// The marker field of a hash Redis has not lost.
const MARKER: &str = "!";

/// Reads the drained set; when the hash is gone, first writes `known`
/// (the set this member last read) back.
const READ: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], '!', '1')
  for i = 1, #ARGV do
    redis.call('HSET', KEYS[1], ARGV[i], '0')
  end
end
return redis.call('HKEYS', KEYS[1])
";

/// Drains (`ARGV[2]` a time) or undrains (`ARGV[2]` empty) `ARGV[1]`.
const SET: &str = r"
redis.call('HSET', KEYS[1], '!', '1')
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 1
";

pub fn key(fleet: &str) -> String {
    format!("{{{fleet}}}:drained")
}

/// The drained members, repairing a hash Redis lost with `known`.
pub async fn read(
    link: &Link,
    fleet: &str,
    known: &BTreeSet<String>,
) -> Result<BTreeSet<String>, FleetError> {
    let script = redis::Script::new(READ);
    let mut call = script.prepare_invoke();
    call.key(key(fleet));
    for name in known {
        call.arg(name);
    }
    let names: Vec<String> = link
        .run_within(patient(link), |mut conn| async move {
            call.invoke_async(&mut conn).await
        })
        .await?;
    Ok(names.into_iter().filter(|n| n != MARKER).collect())
}

/// Records `instance` as drained or not.
pub async fn set(
    link: &Link,
    fleet: &str,
    instance: &str,
    drained: bool,
) -> Result<(), FleetError> {
    let script = redis::Script::new(SET);
    let mut call = script.prepare_invoke();
    let stamp = if drained {
        crate::unix_ms(std::time::SystemTime::now()).to_string()
    } else {
        String::new()
    };
    call.key(key(fleet)).arg(instance).arg(stamp);
    link.run_within(patient(link), |mut conn| async move {
        call.invoke_async::<i64>(&mut conn).await
    })
    .await
    .map(|_| ())
}

/// No request waits on these: give Redis a second, as heartbeats do.
fn patient(link: &Link) -> Duration {
    link.timeout().max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_marker_is_no_instance_name() {
        // Instance names are letters, digits, `-`, `_` and `.` (walk/fleet.rs).
        assert!(
            !super::MARKER
                .bytes()
                .any(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        );
        assert_eq!(super::key("shop"), "{shop}:drained");
    }
}
