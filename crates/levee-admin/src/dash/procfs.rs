//! The process's own CPU time, memory and descriptors, read from `/proc`
//! once a second by the dashboard's sampler. The parsers take text and do
//! no I/O; [`Process::read`] does the reading. Off Linux every figure is 0.

/// Linux reports CPU times in `/proc` in USER_HZ, which is 100 on every
/// architecture levee builds for (it is fixed by the kernel ABI, unlike
/// the kernel's own HZ).
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Process {
    /// User and system CPU time since start, in seconds.
    pub cpu_seconds: f64,
    /// Resident memory, in bytes.
    pub rss_bytes: u64,
    /// Open descriptors.
    pub fds: u64,
    /// The soft limit on descriptors (`None`: unlimited or unknown).
    pub fd_limit: Option<u64>,
}

impl Process {
    pub fn read() -> Process {
        let text = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        Process {
            cpu_seconds: cpu_seconds(&text("/proc/self/stat")).unwrap_or(0.0),
            rss_bytes: rss_bytes(&text("/proc/self/status")).unwrap_or(0),
            fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64),
            fd_limit: fd_limit(&text("/proc/self/limits")),
        }
    }
}

/// utime + stime of `/proc/self/stat`, in seconds. The command name (field
/// 2) is in parentheses and may hold spaces, so fields are counted after
/// its closing parenthesis.
pub fn cpu_seconds(stat: &str) -> Option<f64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_ascii_whitespace();
    // After the name: state is field 3, utime 14, stime 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

/// `VmRSS:   1234 kB` of `/proc/self/status`, in bytes.
pub fn rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_ascii_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The soft `Max open files` of `/proc/self/limits`.
pub fn fd_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat = "4242 (levee (w) x) S 1 4242 4242 0 -1 4194560 1 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(cpu_seconds(stat), Some(3.0));
        assert_eq!(cpu_seconds("garbage"), None);
        assert_eq!(
            rss_bytes("Name:\tlevee\nVmRSS:\t  2048 kB\n"),
            Some(2 << 20)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(fd_limit(limits), Some(1024));
        assert_eq!(fd_limit("Max open files unlimited unlimited files"), None);
    }

    #[test]
    fn reads_this_process() {
        let p = Process::read();
        assert!(p.rss_bytes > 0 && p.fds > 0, "{p:?}");
    }
}
