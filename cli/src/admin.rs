//! The admin commands: `inspect`, `list`, `clients`, `stats`, `ping`.
//!
//! # Invariants
//! - `inspect` asks the one server a lock name is routed to; the others ask every
//!   server. A server that cannot be reached gets its one-line error on stderr, the
//!   others are still shown, and the exit status is that error's.
//! - JSON output carries fencing tokens as decimal strings: they are 64-bit and many
//!   JSON tools keep numbers as doubles, which would change them.

use lockbox_client::{Client, Stats};
use serde_json::{json, Map, Value};
use std::time::Duration;
use tokio::time::Instant;

use crate::conn::Ctx;
use crate::exit::{self, Fail};
use crate::out::{key_values, print, print_json, warn, Align, Table};

/// `stats --watch` repeats its header every this many lines.
const WATCH_HEADER_EVERY: u64 = 20;
/// The counters `stats --watch` shows as levels: (STATS key, column title, JSON key).
const LEVELS: [(&str, &str, &str); 4] = [
    ("locks", "LOCKS", "locks"),
    ("holds", "HOLDS", "holds"),
    ("waiters", "WAITERS", "waiters"),
    ("connections", "CONNS", "connections"),
];
/// The counters `stats --watch` shows as rates per second.
const RATES: [(&str, &str, &str); 5] = [
    ("grants_total", "GRANTS/S", "grants_per_s"),
    // Lock requests that queued: contention (0 from a server without the counter).
    ("waits_total", "WAITS/S", "waits_per_s"),
    ("timeouts_total", "TIMEOUTS/S", "timeouts_per_s"),
    ("expired_total", "EXPIRED/S", "expired_per_s"),
    ("errors_total", "ERRORS/S", "errors_per_s"),
];
/// Width of a `stats --watch` column.
const WATCH_COL: usize = 10;

/// The clients of the reachable servers, with their addresses; reports the others.
/// Fails only when no server can be reached.
async fn connect_all(ctx: &Ctx) -> Result<(Vec<(String, Client)>, u8), Fail> {
    let mut ok = Vec::new();
    let mut status = exit::OK;
    let mut last = None;
    for (server, r) in ctx.servers.iter().zip(ctx.connect_all().await) {
        match r {
            Ok(c) => ok.push((server.clone(), c)),
            Err(f) => {
                if status == exit::OK {
                    status = f.code;
                }
                if let Some(prev) = last.replace(f) {
                    warn(&prev.msg);
                }
            }
        }
    }
    match last {
        Some(f) if ok.is_empty() => Err(Fail::new(status, f.msg)),
        Some(f) => {
            warn(&f.msg);
            Ok((ok, status))
        }
        None => Ok((ok, status)),
    }
}

/// `inspect NAME`.
pub async fn inspect(ctx: &Ctx, name: &str) -> Result<u8, Fail> {
    lockbox_client::proto::check_name(name).map_err(|e| Fail::new(exit::USAGE, e.to_string()))?;
    let server = ctx.route(name);
    let client = ctx.connect(server).await?;
    let i = client
        .inspect(name)
        .await
        .map_err(|e| Fail::server(server, &e))?;
    if ctx.json {
        print_json(&json!({
            "name": name,
            "server": server,
            "mode": i.mode.as_str(),
            "holders": i.holders,
            "waiters": i.waiters,
            "token": i.token.map(|t| t.to_string()),
            "owner": i.owner,
        }))?;
    } else {
        let mut rows = vec![
            ("name", name.to_string()),
            ("server", server.to_string()),
            ("mode", i.mode.as_str().to_string()),
            ("holders", i.holders.to_string()),
            ("waiters", i.waiters.to_string()),
        ];
        if let Some(t) = i.token {
            rows.push(("token", t.to_string()));
        }
        if let Some(o) = i.owner {
            rows.push(("owner", o));
        }
        print(&key_values(&rows))?;
    }
    Ok(exit::OK)
}

/// `list [PREFIX]`.
pub async fn list(ctx: &Ctx, prefix: Option<&str>) -> Result<u8, Fail> {
    if let Some(p) = prefix {
        if !lockbox_client::proto::valid_name(p.as_bytes(), lockbox_client::proto::MAX_NAME) {
            return Err(Fail::new(
                exit::USAGE,
                format!("prefix {p:?} cannot start a lock name (no spaces or control characters, at most 255 bytes)"),
            ));
        }
    }
    let (clients, mut status) = connect_all(ctx).await?;
    let mut rows = Vec::new();
    for (server, c) in &clients {
        match c.list(prefix).await {
            Ok(l) => rows.extend(l.into_iter().map(|r| (server.as_str(), r))),
            Err(e) => status = report(status, Fail::server(server, &e)),
        }
    }
    rows.sort_by(|a, b| a.1.name.as_bytes().cmp(b.1.name.as_bytes()));
    if ctx.json {
        let v: Vec<Value> = rows
            .iter()
            .map(|(s, r)| {
                json!({"name": r.name, "server": s, "mode": r.mode.as_str(),
                       "holders": r.holders, "waiters": r.waiters})
            })
            .collect();
        print_json(&Value::Array(v))?;
    } else {
        let many = ctx.servers.len() > 1;
        let mut head = vec![
            ("NAME", Align::Left),
            ("MODE", Align::Left),
            ("HOLDERS", Align::Right),
            ("WAITERS", Align::Right),
        ];
        if many {
            head.push(("SERVER", Align::Left));
        }
        let mut t = Table::new(&head);
        for (s, r) in rows {
            let mut cells = vec![
                r.name,
                r.mode.as_str().to_string(),
                r.holders.to_string(),
                r.waiters.to_string(),
            ];
            if many {
                cells.push(s.to_string());
            }
            t.row(cells);
        }
        print(&t.render())?;
    }
    Ok(status)
}

/// `clients`.
pub async fn clients(ctx: &Ctx) -> Result<u8, Fail> {
    let (clients, mut status) = connect_all(ctx).await?;
    let mut rows = Vec::new();
    for (server, c) in &clients {
        match c.clients().await {
            Ok(l) => rows.extend(l.into_iter().map(|r| (server.as_str(), r))),
            Err(e) => status = report(status, Fail::server(server, &e)),
        }
    }
    if ctx.json {
        let v: Vec<Value> = rows
            .iter()
            .map(|(s, r)| {
                json!({"server": s, "addr": r.addr, "name": r.name,
                       "holds": r.holds, "waits": r.waits})
            })
            .collect();
        print_json(&Value::Array(v))?;
    } else {
        let many = ctx.servers.len() > 1;
        let mut head = vec![
            ("ADDR", Align::Left),
            ("NAME", Align::Left),
            ("HOLDS", Align::Right),
            ("WAITS", Align::Right),
        ];
        if many {
            head.push(("SERVER", Align::Left));
        }
        let mut t = Table::new(&head);
        for (s, r) in rows {
            let mut cells = vec![r.addr, r.name, r.holds.to_string(), r.waits.to_string()];
            if many {
                cells.push(s.to_string());
            }
            t.row(cells);
        }
        print(&t.render())?;
    }
    Ok(status)
}

/// Prints a per-server failure; the first one decides the exit status.
fn report(status: u8, f: Fail) -> u8 {
    warn(&f.msg);
    if status == exit::OK {
        f.code
    } else {
        status
    }
}

/// `stats [--watch DUR [--count N]]`.
pub async fn stats(ctx: &Ctx, watch: Option<Duration>, count: Option<u64>) -> Result<u8, Fail> {
    match watch {
        None => stats_once(ctx).await,
        Some(every) => stats_watch(ctx, every, count).await,
    }
}

/// A STATS value in JSON: a number when it is one, else a string.
fn stat_json(v: &str) -> Value {
    v.parse::<u64>().map_or_else(|_| json!(v), |n| json!(n))
}

async fn stats_once(ctx: &Ctx) -> Result<u8, Fail> {
    let (clients, mut status) = connect_all(ctx).await?;
    let mut all: Vec<(&str, Stats)> = Vec::new();
    for (server, c) in &clients {
        match c.stats().await {
            Ok(s) => all.push((server, s)),
            Err(e) => status = report(status, Fail::server(server, &e)),
        }
    }
    if ctx.json {
        let v: Vec<Value> = all
            .iter()
            .map(|(server, s)| {
                let m: Map<String, Value> = s
                    .rows
                    .iter()
                    .map(|(k, v)| (k.clone(), stat_json(v)))
                    .collect();
                json!({"server": server, "stats": m})
            })
            .collect();
        print_json(&Value::Array(v))?;
    } else {
        let mut keys: Vec<&str> = Vec::new();
        for (_, s) in &all {
            for (k, _) in &s.rows {
                if !keys.contains(&k.as_str()) {
                    keys.push(k);
                }
            }
        }
        let mut head = vec![("STAT", Align::Left)];
        head.extend(all.iter().map(|(server, _)| (*server, Align::Right)));
        let mut t = Table::new(&head);
        for k in keys {
            let mut cells = vec![k.to_string()];
            cells.extend(
                all.iter()
                    .map(|(_, s)| s.value(k).unwrap_or("-").to_string()),
            );
            t.row(cells);
        }
        print(&t.render())?;
    }
    Ok(status)
}

/// One `stats --watch` sample: every counter summed over the servers.
struct Sample {
    at: Instant,
    sum: Vec<(String, u64)>,
}

impl Sample {
    fn get(&self, key: &str) -> u64 {
        self.sum
            .iter()
            .find(|(k, _)| k == key)
            .map_or(0, |(_, v)| *v)
    }
}

async fn sample(clients: &[(String, Client)]) -> Result<Sample, Fail> {
    let mut sum: Vec<(String, u64)> = Vec::new();
    for (server, c) in clients {
        let s = c.stats().await.map_err(|e| Fail::server(server, &e))?;
        // Only numbers add up (`version` and the like are not sampled).
        for (k, v) in s.rows {
            let Ok(v) = v.parse::<u64>() else { continue };
            match sum.iter_mut().find(|(x, _)| *x == k) {
                Some((_, acc)) => *acc = acc.saturating_add(v),
                None => sum.push((k, v)),
            }
        }
    }
    Ok(Sample {
        at: Instant::now(),
        sum,
    })
}

/// Requests per second: the sum of every `cmd_<verb>` counter.
fn requests(s: &Sample) -> u64 {
    s.sum
        .iter()
        .filter(|(k, _)| k.starts_with("cmd_"))
        .map(|(_, v)| *v)
        .sum()
}

async fn stats_watch(ctx: &Ctx, every: Duration, count: Option<u64>) -> Result<u8, Fail> {
    let clients = ctx.connect_all().await;
    let mut ok = Vec::new();
    for (server, r) in ctx.servers.iter().zip(clients) {
        ok.push((server.clone(), r?));
    }
    let every = every.max(Duration::from_millis(1));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut prev: Option<Sample> = None;
    let mut line = 0u64;
    while count.is_none_or(|n| line < n) {
        tick.tick().await;
        let now = sample(&ok).await?;
        let secs = prev
            .as_ref()
            .map(|p| now.at.duration_since(p.at).as_secs_f64())
            .filter(|s| *s > 0.0);
        let rate = |cur: u64, old: u64| secs.map(|s| cur.saturating_sub(old) as f64 / s);
        let rates: Vec<Option<f64>> = RATES
            .iter()
            .map(|(k, _, _)| rate(now.get(k), prev.as_ref().map_or(0, |p| p.get(k))))
            .chain(std::iter::once(rate(
                requests(&now),
                prev.as_ref().map_or(0, requests),
            )))
            .collect();
        if ctx.json {
            let mut m = Map::new();
            for (k, _, j) in LEVELS {
                m.insert(j.to_string(), json!(now.get(k)));
            }
            for ((_, _, j), r) in RATES.iter().zip(&rates) {
                m.insert(j.to_string(), json!(r.map(round1)));
            }
            m.insert(
                "requests_per_s".into(),
                json!(rates[RATES.len()].map(round1)),
            );
            print_json(&Value::Object(m))?;
        } else {
            let mut text = String::new();
            if line.is_multiple_of(WATCH_HEADER_EVERY) {
                let titles = LEVELS
                    .iter()
                    .map(|(_, t, _)| *t)
                    .chain(RATES.iter().map(|(_, t, _)| *t))
                    .chain(["REQS/S"]);
                text.push_str(&watch_line(titles.map(str::to_string)));
            }
            let cells = LEVELS.iter().map(|(k, _, _)| now.get(k).to_string()).chain(
                rates
                    .iter()
                    .map(|r| r.map_or("-".to_string(), |v| format!("{v:.1}"))),
            );
            text.push_str(&watch_line(cells));
            print(&text)?;
        }
        prev = Some(now);
        line += 1;
    }
    Ok(exit::OK)
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn watch_line(cells: impl Iterator<Item = String>) -> String {
    let mut s = cells
        .map(|c| format!("{c:>WATCH_COL$}"))
        .collect::<Vec<_>>()
        .join(" ");
    s.push('\n');
    s
}

/// Latency summary of one server, in milliseconds.
#[derive(Debug, PartialEq)]
struct Latency {
    count: usize,
    min: f64,
    avg: f64,
    p99: f64,
    max: f64,
}

fn summarize(samples: &[Duration]) -> Option<Latency> {
    if samples.is_empty() {
        return None;
    }
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let n = ms.len();
    // Nearest rank: the smallest sample with at least 99% of the samples at or below it.
    let rank = (n * 99).div_ceil(100).max(1);
    Some(Latency {
        count: n,
        min: ms[0],
        avg: ms.iter().sum::<f64>() / n as f64,
        p99: ms[rank - 1],
        max: ms[n - 1],
    })
}

/// `ping [--count N] [--interval DUR]`.
pub async fn ping(ctx: &Ctx, count: u64, interval: Duration) -> Result<u8, Fail> {
    let (clients, mut status) = connect_all(ctx).await?;
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); clients.len()];
    let mut failed: Vec<bool> = vec![false; clients.len()];
    let mut stop = crate::signals::Signals::new()?;
    {
        let rounds = async {
            let mut round = 0u64;
            while count == 0 || round < count {
                if round > 0 {
                    tokio::time::sleep(interval).await;
                }
                for (i, (server, c)) in clients.iter().enumerate() {
                    if failed[i] {
                        continue;
                    }
                    let t = Instant::now();
                    match c.ping().await {
                        Ok(()) => samples[i].push(t.elapsed()),
                        Err(e) => {
                            status = report(status, Fail::server(server, &e));
                            failed[i] = true;
                        }
                    }
                }
                if failed.iter().all(|f| *f) {
                    break;
                }
                round += 1;
            }
        };
        tokio::select! {
            () = rounds => {}
            _ = stop.recv() => {}
        }
    }
    let lat: Vec<Option<Latency>> = samples.iter().map(|s| summarize(s)).collect();
    if ctx.json {
        let v: Vec<Value> = clients
            .iter()
            .zip(&lat)
            .map(|((server, _), l)| match l {
                Some(l) => json!({"server": server, "count": l.count,
                    "min_ms": round3(l.min), "avg_ms": round3(l.avg),
                    "p99_ms": round3(l.p99), "max_ms": round3(l.max)}),
                None => json!({"server": server, "count": 0,
                    "min_ms": null, "avg_ms": null, "p99_ms": null, "max_ms": null}),
            })
            .collect();
        print_json(&Value::Array(v))?;
    } else {
        let mut t = Table::new(&[
            ("SERVER", Align::Left),
            ("PINGS", Align::Right),
            ("MIN ms", Align::Right),
            ("AVG ms", Align::Right),
            ("P99 ms", Align::Right),
            ("MAX ms", Align::Right),
        ]);
        for ((server, _), l) in clients.iter().zip(&lat) {
            let f = |v: f64| format!("{v:.3}");
            t.row(match l {
                Some(l) => vec![
                    server.clone(),
                    l.count.to_string(),
                    f(l.min),
                    f(l.avg),
                    f(l.p99),
                    f(l.max),
                ],
                None => vec![
                    server.clone(),
                    "0".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                ],
            });
        }
        print(&t.render())?;
    }
    Ok(status)
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_summary() {
        assert_eq!(summarize(&[]), None);
        let ms = |v: &[u64]| {
            v.iter()
                .map(|m| Duration::from_millis(*m))
                .collect::<Vec<_>>()
        };
        let l = summarize(&ms(&[3, 1, 2])).unwrap();
        assert_eq!(
            (l.count, l.min, l.avg, l.p99, l.max),
            (3, 1.0, 2.0, 3.0, 3.0)
        );
        // 100 samples 1..=100: p99 is the 99th.
        let l = summarize(&ms(&(1..=100).collect::<Vec<_>>())).unwrap();
        assert_eq!((l.p99, l.max), (99.0, 100.0));
        // 1000 samples with 11 outliers: p99 is an outlier.
        let mut v = vec![1u64; 989];
        v.extend([50; 11]);
        assert_eq!(summarize(&ms(&v)).unwrap().p99, 50.0);
        let l = summarize(&ms(&[7])).unwrap();
        assert_eq!((l.min, l.p99, l.max), (7.0, 7.0, 7.0));
    }

    #[test]
    fn watch_lines_are_fixed_width() {
        let l = watch_line(["LOCKS".to_string(), "1".to_string()].into_iter());
        assert_eq!(l, format!("{:>10} {:>10}\n", "LOCKS", "1"));
    }
}
