//! What a run found: [`Report`] with its [`Latency`] summaries and CPU and memory
//! readings, printed as the human summary ([`fmt::Display`], here) or as one JSON
//! object ([`Report::to_json`], in `json`).

use std::fmt;

use hdrhistogram::Histogram;

use crate::options::{CycleKind, Target};
use crate::verify::Property;

mod json;

/// A latency histogram in microseconds: 1 us to 1 hour, 3 significant digits; values
/// beyond saturate.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Latency percentiles in microseconds, from an HDR histogram (3 significant digits).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Latency {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// 99.99th percentile.
    pub p9999: u64,
    /// Largest sample.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

impl Latency {
    /// Summarise a histogram of microseconds.
    pub fn from_histogram(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            p9999: h.value_at_quantile(0.9999),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

/// loadgen's own CPU use during the run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CpuUsage {
    /// User CPU seconds of the whole process.
    pub user_s: f64,
    /// System CPU seconds of the whole process.
    pub sys_s: f64,
    /// (user + sys) / wall time, in percent of one core.
    pub percent: f64,
    /// Each poll-loop thread's CPU time over its own wall time, in percent of one core.
    /// A value near 100 means that thread, not the server, may have been the limit.
    pub thread_percent: Vec<f64>,
    /// Cores available to this process.
    pub cores: usize,
}

/// The server process's memory and CPU (`--server-pid`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerUsage {
    /// Its pid.
    pub pid: u32,
    /// `VmRSS` at the end of the run, KiB.
    pub rss_kb: u64,
    /// `VmHWM` (peak RSS) at the end of the run, KiB.
    pub peak_rss_kb: u64,
    /// User + system CPU seconds it used during the run.
    pub cpu_s: f64,
    /// Its CPU microseconds per completed cycle (0 when no cycle completed).
    pub cpu_us_per_cycle: f64,
}

/// What `--chaos` did: how many times each misbehaviour happened, and how it ended.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChaosCounts {
    /// `--chaos`: the fraction of cycles chosen to misbehave.
    pub rate: f64,
    /// Cycles that chose a misbehaviour (some find no occasion: a CANCEL planned for a
    /// wait that was granted at once is not sent).
    pub chosen: u64,
    /// Connections closed by loadgen while one of their requests waited.
    pub close_waiting: u64,
    /// Connections closed by loadgen while holding.
    pub close_holding: u64,
    /// Of those closes, the ones that shut the writing side and read until the server
    /// closed, so that `INSPECT` could check the holds were dropped.
    pub close_confirmed: u64,
    /// Connections opened again after a close.
    pub reconnects: u64,
    /// `INSPECT`s after a confirmed close, looking for a hold of the closed connection.
    pub probes: u64,
    /// Requests left unanswered because loadgen closed their connection (exempt from
    /// exactly-once).
    pub closed_pending: u64,
    /// `CANCEL`s sent for a pending wait.
    pub cancel: u64,
    /// Waits that a `CANCEL` ended (`CANCELLED`, then `OK 1`).
    pub cancelled: u64,
    /// `CANCEL`s that found nothing waiting: the grant or `TIMEOUT` crossed them.
    pub cancel_crossed: u64,
    /// `RESET`s sent while holding.
    pub reset: u64,
    /// Waits that a `RESET` ended (`CANCELLED` before its `OK`).
    pub reset_cancelled: u64,
    /// Holds released by `RESET`s, as their replies counted them.
    pub reset_released: u64,
    /// `EXTEND`s sent while holding.
    pub extend: u64,
    /// `EXTEND`s answered `OK`.
    pub extended: u64,
    /// Leases taken to be let run out whose `EXPIRED` arrived.
    pub expire: u64,
    /// Cycles that used `SHARE max=` on a semaphore name (lock mode).
    pub share: u64,
}

impl ChaosCounts {
    /// All zero, at `rate`.
    pub fn new(rate: f64) -> ChaosCounts {
        ChaosCounts {
            rate,
            ..ChaosCounts::default()
        }
    }

    /// The counts with their names (the JSON keys), in report order; the rate is not
    /// among them.
    pub fn fields(&self) -> [(&'static str, u64); 17] {
        [
            ("chosen", self.chosen),
            ("close_waiting", self.close_waiting),
            ("close_holding", self.close_holding),
            ("close_confirmed", self.close_confirmed),
            ("reconnects", self.reconnects),
            ("probes", self.probes),
            ("closed_pending", self.closed_pending),
            ("cancel", self.cancel),
            ("cancelled", self.cancelled),
            ("cancel_crossed", self.cancel_crossed),
            ("reset", self.reset),
            ("reset_cancelled", self.reset_cancelled),
            ("reset_released", self.reset_released),
            ("extend", self.extend),
            ("extended", self.extended),
            ("expire", self.expire),
            ("share", self.share),
        ]
    }

    /// Add another loop's counts (the rate stays).
    pub(crate) fn add(&mut self, o: &ChaosCounts) {
        self.chosen += o.chosen;
        self.close_waiting += o.close_waiting;
        self.close_holding += o.close_holding;
        self.close_confirmed += o.close_confirmed;
        self.reconnects += o.reconnects;
        self.probes += o.probes;
        self.closed_pending += o.closed_pending;
        self.cancel += o.cancel;
        self.cancelled += o.cancelled;
        self.cancel_crossed += o.cancel_crossed;
        self.reset += o.reset;
        self.reset_cancelled += o.reset_cancelled;
        self.reset_released += o.reset_released;
        self.extend += o.extend;
        self.extended += o.extended;
        self.expire += o.expire;
        self.share += o.share;
    }
}

/// One verified property: how many times it was checked and how many violations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// The property (see [`Property`]).
    pub property: Property,
    /// Observations checked against it.
    pub checked: u64,
    /// Violations of it found.
    pub violations: u64,
}

/// The result of a run. Printing it ([`fmt::Display`]) gives the human summary.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// Server kind.
    pub target: Target,
    /// Cycle kind.
    pub mode: CycleKind,
    /// Server addresses as given.
    pub servers: Vec<String>,
    /// Logical clients.
    pub clients: usize,
    /// Cycles outstanding per client.
    pub pipeline: usize,
    /// Poll-loop threads.
    pub threads: usize,
    /// Distinct lock names.
    pub locks: u64,
    /// Hold time before unlock, ms.
    pub work_ms: u64,
    /// `wait=` option.
    pub wait_ms: Option<u64>,
    /// `hold=` option (Redis: the PX actually used).
    pub hold_ms: Option<u64>,
    /// `max=` option.
    pub max: Option<u64>,
    /// `--id-len`: the length of every request id, when set.
    pub id_len: Option<usize>,
    /// PRNG seed.
    pub seed: u64,
    /// Whether `--verify` checks ran.
    pub verify: bool,
    /// What `--chaos` did (`None` without it).
    pub chaos: Option<ChaosCounts>,
    /// With `--verify`: each property, checked how often, violated how often (the
    /// violations add up to `violations`). Empty without `--verify`.
    pub checks: Vec<Check>,
    /// Seconds from the start of the load to the stop (end of `--duration`, the last of
    /// `--cycles`, or the end of the run): the window `cycles_per_sec` is measured over.
    pub elapsed_s: f64,
    /// Seconds of the whole run, from connect to the end of the drain.
    pub total_s: f64,
    /// Completed cycles, drain included.
    pub cycles: u64,
    /// Completed cycles within the measurement window.
    pub window_cycles: u64,
    /// `window_cycles / elapsed_s`.
    pub cycles_per_sec: f64,
    /// Completed cycles per server, in `servers` order.
    pub per_server_cycles: Vec<u64>,
    /// Acquires that ended with `TIMEOUT` (Redis: retries ran out of `--wait`).
    pub timeouts: u64,
    /// `ERR` replies, lost connections (one per pending request) and, without `--verify`,
    /// protocol anomalies.
    pub errors: u64,
    /// Holds that the server expired (`EXPIRED` events; Redis: release found the key gone).
    pub expired: u64,
    /// Requests still unanswered at the end of the run.
    pub unanswered: u64,
    /// Clients whose connection the server closed (or that failed) during the run.
    /// The binary exits 1 when this is not 0.
    pub lost_clients: u64,
    /// `--verify` violations (see the crate documentation).
    pub violations: u64,
    /// Whether `--timeout` cut the run short.
    pub hit_timeout: bool,
    /// Acquire latency (request sent to grant; Redis: first `SET` to `OK`); ping: round trip.
    pub acquire: Latency,
    /// Release latency (`UNLOCK` / `EVAL` sent to its reply).
    pub release: Latency,
    /// lockbox `TIMEOUT` replies: time from request to reply minus `--wait` (timer
    /// lateness as seen by the client, including one round trip). Empty for Redis.
    pub timeout_lateness: Latency,
    /// loadgen's CPU use (Linux /proc; `None` elsewhere).
    pub cpu: Option<CpuUsage>,
    /// The server's memory and CPU, with `--server-pid`.
    pub server: Option<ServerUsage>,
    /// Evidence for the first violations (at most 50).
    pub violation_samples: Vec<String>,
    /// Violations whose evidence was left out of `violation_samples` (the sample limit
    /// was reached).
    pub violation_samples_omitted: u64,
    /// The first error messages (at most 50).
    pub error_samples: Vec<String>,
    /// Error messages left out of `error_samples` (the sample limit was reached).
    pub error_samples_omitted: u64,
}

/// Width of the label column of the summary; each label is the JSON key of the value
/// it shows.
const LABEL: usize = 20;

fn fmt_lat(f: &mut fmt::Formatter<'_>, label: &str, l: &Latency) -> fmt::Result {
    if l.count == 0 {
        return writeln!(f, "{label:<LABEL$}-");
    }
    let value = format!(
        "p50 {}  p90 {}  p99 {}  p99.9 {}  p99.99 {}  max {}  mean {:.1}  (n={})",
        l.p50, l.p90, l.p99, l.p999, l.p9999, l.max, l.mean, l.count
    );
    writeln!(f, "{label:<LABEL$}{}", fill(&value))
}

fn opt_ms(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// The sample lines under `label`, then how many were left out.
fn fmt_samples(
    f: &mut fmt::Formatter<'_>,
    label: &str,
    samples: &[String],
    omitted: u64,
) -> fmt::Result {
    for s in samples {
        writeln!(f, "{label:<LABEL$}{s}")?;
    }
    if omitted > 0 {
        writeln!(
            f,
            "{label:<LABEL$}... and {omitted} more like these, left out (the first {} are shown)",
            samples.len()
        )?;
    }
    Ok(())
}

/// Width of a summary line's value before it wraps.
const VALUE_WIDTH: usize = 72;

/// `text` wrapped at two spaces into lines of at most [`VALUE_WIDTH`], the next lines
/// indented under the value column.
fn fill(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for part in text.split("  ") {
        if !line.is_empty() && line.len() + 2 + part.len() > VALUE_WIDTH {
            out.push_str(&line);
            out.push('\n');
            out.push_str(&" ".repeat(LABEL));
            line.clear();
        }
        if !line.is_empty() {
            line.push_str("  ");
        }
        line.push_str(part);
    }
    out.push_str(&line);
    out
}

/// A poll-loop thread at or above this CPU percentage may have limited the run.
const THREAD_BUSY_PERCENT: f64 = 90.0;

impl fmt::Display for CpuUsage {
    /// The `loadgen CPU` line of the summary (and a note when a thread was busy).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let th: Vec<String> = self
            .thread_percent
            .iter()
            .map(|p| format!("{p:.0}%"))
            .collect();
        writeln!(
            f,
            "{:<LABEL$}{:.0}% of one core (user_s {:.2}, sys_s {:.2}, cores {}); thread_percent {}",
            "loadgen_cpu",
            self.percent,
            self.user_s,
            self.sys_s,
            self.cores,
            th.join(" ")
        )?;
        if self
            .thread_percent
            .iter()
            .any(|p| *p >= THREAD_BUSY_PERCENT)
        {
            writeln!(
                f,
                "{:<LABEL$}note: a loadgen thread was near 100% CPU, loadgen may have been the limit",
                ""
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for ServerUsage {
    /// The `server` line of the summary.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<LABEL$}pid {}: RSS {:.1} MiB, peak {:.1} MiB, cpu_s {:.2} = {:.2} cpu_us_per_cycle",
            "server",
            self.pid,
            self.rss_kb as f64 / 1024.0,
            self.peak_rss_kb as f64 / 1024.0,
            self.cpu_s,
            self.cpu_us_per_cycle
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} {}: clients {}, pipeline {}, threads {}, locks {}, work_ms {}, wait_ms {}, hold_ms {}{}{}",
            self.target.as_str(),
            self.mode.as_str(),
            self.clients,
            self.pipeline,
            self.threads,
            self.locks,
            self.work_ms,
            opt_ms(self.wait_ms),
            opt_ms(self.hold_ms),
            self.max.map_or(String::new(), |m| format!(", max {m}")),
            self.id_len.map_or(String::new(), |n| format!(", id_len {n}")),
        )?;
        writeln!(f, "{:<LABEL$}{}", "servers", self.servers.join(", "))?;
        writeln!(
            f,
            "{:<LABEL$}{} in {:.2} s (elapsed_s) = {:.0} cycles_per_sec",
            "window_cycles", self.window_cycles, self.elapsed_s, self.cycles_per_sec
        )?;
        writeln!(
            f,
            "{:<LABEL$}{} in {:.2} s (total_s, with connect and drain)",
            "cycles", self.cycles, self.total_s
        )?;
        if self.servers.len() > 1 {
            let per: Vec<String> = self
                .servers
                .iter()
                .zip(&self.per_server_cycles)
                .map(|(s, c)| format!("{s}={c}"))
                .collect();
            writeln!(f, "{:<LABEL$}{}", "per_server_cycles", per.join("  "))?;
        }
        fmt_lat(f, "acquire_us", &self.acquire)?;
        if self.mode != CycleKind::Ping {
            fmt_lat(f, "release_us", &self.release)?;
        }
        if self.timeout_lateness.count > 0 {
            fmt_lat(f, "timeout_lateness_us", &self.timeout_lateness)?;
        }
        writeln!(
            f,
            "{:<LABEL$}timeouts {}  errors {}  expired {}  unanswered {}  lost_clients {}{}",
            "outcomes",
            self.timeouts,
            self.errors,
            self.expired,
            self.unanswered,
            self.lost_clients,
            if self.hit_timeout {
                "  hit_timeout (run cut by --timeout)"
            } else {
                ""
            }
        )?;
        if let Some(c) = &self.chaos {
            let mut line = format!("rate {}", c.rate);
            for (k, v) in c.fields() {
                line.push_str(&format!("  {k} {v}"));
            }
            writeln!(f, "{:<LABEL$}{}", "chaos", fill(&line))?;
        }
        if !self.checks.is_empty() {
            let parts: Vec<String> = self
                .checks
                .iter()
                .map(|c| format!("{} {}/{}", c.property.as_str(), c.checked, c.violations))
                .collect();
            writeln!(
                f,
                "{:<LABEL$}{}",
                "checks",
                fill(&format!("(checked/violations) {}", parts.join("  ")))
            )?;
        }
        if let Some(c) = &self.cpu {
            write!(f, "{c}")?;
        }
        if let Some(s) = &self.server {
            write!(f, "{s}")?;
        }
        fmt_samples(
            f,
            "error_samples",
            &self.error_samples,
            self.error_samples_omitted,
        )?;
        if self.verify || self.violations > 0 {
            writeln!(f, "{:<LABEL$}{}", "violations", self.violations)?;
        }
        fmt_samples(
            f,
            "violation_samples",
            &self.violation_samples,
            self.violation_samples_omitted,
        )
    }
}

#[cfg(test)]
mod tests;
