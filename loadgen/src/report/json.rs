//! The report as one JSON object: a small writer for flat objects (keys in a fixed
//! order, strings escaped, floats to three decimals) and [`Report::to_json`]. The keys
//! are a contract: benchmark scripts read them.

use std::fmt::Write as _;

use super::{ChaosCounts, Check, CpuUsage, Latency, Report, ServerUsage};

impl Latency {
    fn json(&self) -> String {
        let mut j = JsonObj::new();
        j.u64("count", self.count)
            .u64("p50", self.p50)
            .u64("p90", self.p90)
            .u64("p99", self.p99)
            .u64("p999", self.p999)
            .u64("p9999", self.p9999)
            .u64("max", self.max)
            .f64("mean", self.mean);
        j.finish()
    }
}

impl CpuUsage {
    fn json(&self) -> String {
        let th: Vec<String> = self.thread_percent.iter().map(|p| json_f64(*p)).collect();
        let mut o = JsonObj::new();
        o.f64("user_s", self.user_s)
            .f64("sys_s", self.sys_s)
            .f64("percent", self.percent)
            .raw("thread_percent", &format!("[{}]", th.join(",")))
            .u64("cores", self.cores as u64);
        o.finish()
    }
}

impl ServerUsage {
    fn json(&self) -> String {
        let mut o = JsonObj::new();
        o.u64("pid", u64::from(self.pid))
            .u64("rss_kb", self.rss_kb)
            .u64("peak_rss_kb", self.peak_rss_kb)
            .f64("cpu_s", self.cpu_s)
            .f64("cpu_us_per_cycle", self.cpu_us_per_cycle);
        o.finish()
    }
}

impl ChaosCounts {
    fn json(&self) -> String {
        let mut o = JsonObj::new();
        o.f64("rate", self.rate);
        for (k, v) in self.fields() {
            o.u64(k, v);
        }
        o.finish()
    }
}

/// `{"exclusion":{"checked":n,"violations":m},...}`, or `null` without checks.
fn checks_json(checks: &[Check]) -> String {
    if checks.is_empty() {
        return "null".to_string();
    }
    let mut o = JsonObj::new();
    for c in checks {
        let mut one = JsonObj::new();
        one.u64("checked", c.checked)
            .u64("violations", c.violations);
        o.raw(c.property.as_str(), &one.finish());
    }
    o.finish()
}

/// `json`, or `null` when absent.
fn or_null(json: Option<String>) -> String {
    json.unwrap_or_else(|| "null".to_string())
}

/// A JSON object being written, one key after another.
struct JsonObj {
    buf: String,
    first: bool,
}

impl JsonObj {
    fn new() -> JsonObj {
        JsonObj {
            buf: String::from("{"),
            first: true,
        }
    }
    fn key(&mut self, k: &str) -> &mut String {
        if !self.first {
            self.buf.push(',');
        }
        self.first = false;
        json_str(&mut self.buf, k);
        self.buf.push(':');
        &mut self.buf
    }
    fn raw(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k).push_str(v);
        self
    }
    fn str(&mut self, k: &str, v: &str) -> &mut Self {
        let b = self.key(k);
        json_str(b, v);
        self
    }
    fn u64(&mut self, k: &str, v: u64) -> &mut Self {
        let _ = write!(self.key(k), "{v}");
        self
    }
    fn opt_u64(&mut self, k: &str, v: Option<u64>) -> &mut Self {
        match v {
            Some(v) => self.u64(k, v),
            None => self.raw(k, "null"),
        }
    }
    fn f64(&mut self, k: &str, v: f64) -> &mut Self {
        let s = json_f64(v);
        self.raw(k, &s)
    }
    fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.raw(k, if v { "true" } else { "false" })
    }
    fn strs(&mut self, k: &str, v: &[String]) -> &mut Self {
        let b = self.key(k);
        b.push('[');
        for (i, s) in v.iter().enumerate() {
            if i > 0 {
                b.push(',');
            }
            json_str(b, s);
        }
        b.push(']');
        self
    }
    fn finish(mut self) -> String {
        self.buf.push('}');
        self.buf
    }
}

pub(super) fn json_f64(v: f64) -> String {
    if v.is_finite() {
        // Three decimals are plenty for rates, seconds and percentages.
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        "null".to_string()
    }
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Report {
    /// One JSON object (one line, no trailing newline) with every field of the report.
    /// Latencies are objects `{count,p50,p90,p99,p999,p9999,max,mean}` in microseconds;
    /// absent options and unavailable measurements are `null`.
    pub fn to_json(&self) -> String {
        let mut j = JsonObj::new();
        j.str("target", self.target.as_str())
            .str("mode", self.mode.as_str())
            .strs("servers", &self.servers)
            .u64("clients", self.clients as u64)
            .u64("pipeline", self.pipeline as u64)
            .u64("threads", self.threads as u64)
            .u64("locks", self.locks)
            .u64("work_ms", self.work_ms)
            .opt_u64("wait_ms", self.wait_ms)
            .opt_u64("hold_ms", self.hold_ms)
            .opt_u64("max", self.max)
            .opt_u64("id_len", self.id_len.map(|n| n as u64))
            .u64("seed", self.seed)
            .bool("verify", self.verify)
            .f64("elapsed_s", self.elapsed_s)
            .f64("total_s", self.total_s)
            .u64("cycles", self.cycles)
            .u64("window_cycles", self.window_cycles)
            .f64("cycles_per_sec", self.cycles_per_sec);
        let per: Vec<String> = self.per_server_cycles.iter().map(u64::to_string).collect();
        j.raw("per_server_cycles", &format!("[{}]", per.join(",")))
            .u64("timeouts", self.timeouts)
            .u64("errors", self.errors)
            .u64("expired", self.expired)
            .u64("unanswered", self.unanswered)
            .u64("lost_clients", self.lost_clients)
            .u64("violations", self.violations)
            .raw("checks", &checks_json(&self.checks))
            .raw(
                "chaos",
                &or_null(self.chaos.as_ref().map(ChaosCounts::json)),
            )
            .bool("hit_timeout", self.hit_timeout)
            .raw("acquire_us", &self.acquire.json())
            .raw("release_us", &self.release.json())
            .raw("timeout_lateness_us", &self.timeout_lateness.json())
            .raw(
                "loadgen_cpu",
                &or_null(self.cpu.as_ref().map(CpuUsage::json)),
            )
            .raw(
                "server",
                &or_null(self.server.as_ref().map(ServerUsage::json)),
            );
        j.strs("violation_samples", &self.violation_samples)
            .strs("error_samples", &self.error_samples)
            .u64("violation_samples_omitted", self.violation_samples_omitted)
            .u64("error_samples_omitted", self.error_samples_omitted);
        j.finish()
    }
}
