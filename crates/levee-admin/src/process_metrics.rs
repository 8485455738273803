//! `levee_build_info` and the `process_*` metrics Prometheus' own client
//! libraries export (same names and units, so dashboards made for them
//! work): CPU time, memory, descriptors and start time, read from `/proc`
//! when scraped.

use std::fmt::Write;

use crate::dash::procfs::stat_fields;

/// Appends the families; a value `/proc` does not give is left out.
pub(crate) fn render(out: &mut String) {
    let _ = writeln!(
        out,
        "# HELP levee_build_info levee's version; the value is always 1.\n\
         # TYPE levee_build_info gauge\n\
         levee_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    let fields = stat.as_deref().and_then(stat_fields);
    let ticks = rustix::param::clock_ticks_per_second().max(1) as f64;
    if let Some(f) = &fields {
        let cpu = (f.utime + f.stime) as f64 / ticks;
        family(
            out,
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent in seconds.",
            cpu,
        );
        family(
            out,
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            f.vsize as f64,
        );
        let page = rustix::param::page_size() as f64;
        family(
            out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            f.rss_pages as f64 * page,
        );
        if let Some(boot) = boot_time() {
            let start = boot as f64 + f.starttime as f64 / ticks;
            family(
                out,
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since the Unix epoch in seconds.",
                start,
            );
        }
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        // The directory's own descriptor, open while it is read, is not counted.
        let open = dir.count().saturating_sub(1);
        family(
            out,
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            open as f64,
        );
    }
    if let Ok(limit) = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .ok_or(())
    {
        family(
            out,
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            limit as f64,
        );
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// Seconds since the epoch at boot (`btime` in `/proc/stat`).
fn boot_time() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_its_families() {
        let mut out = String::new();
        render(&mut out);
        for name in [
            "levee_build_info{version=",
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_start_time_seconds ",
            "process_open_fds ",
            "process_max_fds ",
        ] {
            assert!(out.contains(name), "no {name} in\n{out}");
        }
    }
}
