//! CPU seconds per process during a run: `utime + stime` from `/proc/<pid>/stat` before and
//! after. wrk's own CPU is this process's `cutime + cstime` (a waited-for child's time moves there).

use serde::Serialize;
use std::collections::BTreeMap;

/// `/proc` counts CPU time in USER_HZ ticks, which Linux fixes at 100 per second for user space.
const TICKS_PER_SECOND: f64 = 100.0;
/// The name wrk's CPU is reported under.
pub const WRK: &str = "wrk";

/// `(utime + stime, cutime + cstime)` in ticks from the text of `/proc/<pid>/stat`.
pub fn parse_stat(stat: &str) -> Option<(u64, u64)> {
    // The command name is in parentheses and may hold spaces: fields count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of the man page, so field n is fields[n - 3].
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some((field(14)? + field(15)?, field(16)? + field(17)?))
}

fn ticks(pid: u32) -> Option<(u64, u64)> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Named processes whose CPU is measured, and a reading of them.
#[derive(Debug, Clone)]
pub struct CpuWatch {
    processes: Vec<(String, u32)>,
}

/// One reading: ticks per name.
#[derive(Debug, Clone)]
pub struct CpuReading(BTreeMap<String, u64>);

/// CPU seconds one process used during a run.
#[derive(Debug, Clone, Serialize)]
pub struct CpuUse {
    /// The process (`main-app`, `azurite (node)`, `bench + devstack`, `wrk`, ...).
    pub process: String,
    /// CPU seconds used.
    pub cpu_seconds: f64,
    /// `cpu_seconds` per wall-clock second: 1.0 is one core busy.
    pub cores: f64,
}

impl CpuWatch {
    /// Watches `processes` (name, pid), this process (named `own_name`) and wrk.
    pub fn new(processes: Vec<(String, u32)>, own_name: &str) -> Self {
        let mut processes = processes;
        processes.push((own_name.to_owned(), std::process::id()));
        Self { processes }
    }

    /// Reads every process now.
    pub fn read(&self) -> CpuReading {
        let mut reading = BTreeMap::new();
        for (name, pid) in &self.processes {
            if let Some((own, children)) = ticks(*pid) {
                reading.insert(name.clone(), own);
                if *pid == std::process::id() {
                    reading.insert(WRK.to_owned(), children);
                }
            }
        }
        CpuReading(reading)
    }

    /// CPU used between `before` and `after`, over `wall_seconds`, in watch order then wrk.
    pub fn used(&self, before: &CpuReading, after: &CpuReading, wall_seconds: f64) -> Vec<CpuUse> {
        let names = self.processes.iter().map(|(n, _)| n.as_str()).chain([WRK]);
        names
            .filter_map(|name| {
                let ticks = after.0.get(name)?.checked_sub(*before.0.get(name)?)?;
                let cpu_seconds = ticks as f64 / TICKS_PER_SECOND;
                Some(CpuUse {
                    process: name.to_owned(),
                    cpu_seconds,
                    cores: cpu_seconds / wall_seconds.max(f64::EPSILON),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "4242 (node (azurite)) S 1 4242 4242 0 -1 4194560 9 0 0 0 \
                    250 50 7 3 20 0 11 0 100 0 0";
        assert_eq!(parse_stat(stat), Some((300, 10)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_can_be_read() {
        let watch = CpuWatch::new(Vec::new(), "bench");
        let reading = watch.read();
        assert!(reading.0.contains_key("bench"));
        assert!(reading.0.contains_key(WRK));
    }
}
