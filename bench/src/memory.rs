//! Resident memory of a process from `/proc/<pid>/status`: now (`VmRSS`) and its peak so far
//! (`VmHWM`, the high-water mark), in KiB.

use serde::Serialize;

/// One process's memory at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryRow {
    pub process: String,
    /// When it was read (`idle after start`, `after the 64-connection getcode run`, ...).
    pub when: String,
    /// Resident now, KiB.
    pub rss_kib: u64,
    /// Highest resident so far, KiB.
    pub peak_kib: u64,
}

/// `(VmRSS, VmHWM)` in KiB from the text of `/proc/<pid>/status`.
pub fn parse_status(status: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse::<u64>()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// `process` (pid `pid`) read now, labelled `when`; `None` when it is gone.
pub fn read(process: &str, pid: u32, when: &str) -> Option<MemoryRow> {
    let (rss_kib, peak_kib) =
        parse_status(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)?;
    Some(MemoryRow {
        process: process.to_owned(),
        when: when.to_owned(),
        rss_kib,
        peak_kib,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_resident_and_peak() {
        let status =
            "Name:\tmain-app\nVmPeak:\t  900000 kB\nVmHWM:\t   11264 kB\nVmRSS:\t    8192 kB\n";
        assert_eq!(parse_status(status), Some((8192, 11264)));
        assert_eq!(parse_status("Name:\tx\n"), None);
        let own = read("bench", std::process::id(), "now").unwrap();
        assert!(own.rss_kib > 0 && own.peak_kib >= own.rss_kib);
    }
}
