//! CPU and memory readings from Linux `/proc`: loadgen's own CPU time (process and
//! poll-loop thread) and, with `--server-pid`, the server's RSS, peak RSS and CPU time.
//! Elsewhere than Linux the CPU readings are `None` (the report leaves them out) and
//! `--server-pid` is refused as unreadable.

/// Clock ticks per second of /proc's utime/stime (USER_HZ, 100 on Linux everywhere).
const USER_HZ: f64 = 100.0;

/// (user, system) CPU seconds from a /proc `stat` file.
pub(crate) fn read_cpu_secs(path: &str) -> Option<(f64, f64)> {
    let s = std::fs::read_to_string(path).ok()?;
    parse_stat_cpu(&s)
}

fn parse_stat_cpu(s: &str) -> Option<(f64, f64)> {
    // Fields after the command name in parentheses: state is field 3, utime 14, stime 15.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ut: u64 = f.get(11)?.parse().ok()?;
    let st: u64 = f.get(12)?.parse().ok()?;
    Some((ut as f64 / USER_HZ, st as f64 / USER_HZ))
}

/// (VmRSS, VmHWM) in KiB from /proc/PID/status.
pub(crate) fn read_status_kb(pid: u32) -> Result<(u64, u64), String> {
    let path = format!("/proc/{pid}/status");
    let s = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    parse_status_kb(&s).ok_or_else(|| format!("{path} has no VmRSS/VmHWM (a kernel thread?)"))
}

fn parse_status_kb(s: &str) -> Option<(u64, u64)> {
    let field = |key: &str| -> Option<u64> {
        let line = s.lines().find(|l| l.starts_with(key))?;
        line[key.len()..].split_whitespace().next()?.parse().ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// User + system CPU seconds used between two readings of [`read_cpu_secs`] (never
/// negative); `None` when either is missing.
pub(crate) fn cpu_secs_between(a: Option<(f64, f64)>, b: Option<(f64, f64)>) -> Option<f64> {
    let ((u0, s0), (u1, s1)) = (a?, b?);
    Some(((u1 + s1) - (u0 + s0)).max(0.0))
}

#[cfg(test)]
mod tests;
