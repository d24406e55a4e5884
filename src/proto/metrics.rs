//! The metrics endpoint: a minimal HTTP/1.1 responder on its own listener
//! (`--metrics-listen`) that answers `GET /metrics` with every counter, level and
//! histogram in the Prometheus text exposition format (version 0.0.4).
//!
//! It is one more codec of the poll loop: a scrape is a connection like any other
//! (counted against `--max-connections`, its reply bounded by `--output-limit`), and
//! reads the same engine and totals as `STATS`, at the moment it is handled.
//!
//! - The request head (request line and headers) is parsed by `httparse`; the body, if
//!   any, is ignored. One request per connection: every response carries
//!   `Connection: close` and the connection is closed once it is written.
//! - `GET` or `HEAD` of [`PATH`] (a query string is ignored) gets `200` with the metrics;
//!   any other path `404`; another method on [`PATH`] `405`; a head that is not HTTP
//!   `400`; a head over [`MAX_HEAD`] bytes or [`MAX_HEADERS`] headers `431`.
//!
//! # Invariants
//! - A connection buffers at most [`MAX_HEAD`] bytes plus one read before it is answered
//!   and closed: a slow or hostile scraper costs what any client costs.
//! - Every response is complete (status line, `Content-Length`, body) and is the last
//!   thing written to its connection.

use super::{push_u64, Ctx, Progress, Protocol, Totals, Wire};
use crate::engine::{Engine, Event};
use crate::histogram::Histogram;

/// The one path served.
pub const PATH: &[u8] = b"/metrics";
/// Longest request head (request line and headers) accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// Most headers accepted in a request.
pub const MAX_HEADERS: usize = 32;
/// The exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Sent (best effort) to a scraper refused by `--max-connections`.
pub const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Length: 21\r\nConnection: close\r\n\r\n\
too many connections\n";

/// Per-connection state of the metrics codec (none: one request per connection).
#[derive(Debug, Default)]
pub struct Session;

impl Session {
    /// A session for a new connection.
    pub fn new() -> Self {
        Session
    }
}

/// How a request head was judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// 200 with the metrics (without the body for `HEAD`).
    Metrics { head_only: bool },
    /// 404.
    NotFound,
    /// 405.
    MethodNotAllowed,
    /// 400.
    BadRequest,
    /// 431.
    TooLarge,
}

/// Judges the buffered input: `None` while the head is incomplete and within limits.
fn judge(input: &[u8]) -> Option<Answer> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(input) {
        Ok(httparse::Status::Complete(n)) if n > MAX_HEAD => Some(Answer::TooLarge),
        Ok(httparse::Status::Complete(_)) => {
            let path = req.path.unwrap_or("").as_bytes();
            let path = path.split(|&b| b == b'?').next().unwrap_or(b"");
            if path != PATH {
                return Some(Answer::NotFound);
            }
            Some(match req.method {
                Some("GET") => Answer::Metrics { head_only: false },
                Some("HEAD") => Answer::Metrics { head_only: true },
                _ => Answer::MethodNotAllowed,
            })
        }
        Ok(httparse::Status::Partial) if input.len() > MAX_HEAD => Some(Answer::TooLarge),
        Ok(httparse::Status::Partial) => None,
        Err(httparse::Error::TooManyHeaders) => Some(Answer::TooLarge),
        Err(_) => Some(Answer::BadRequest),
    }
}

impl Wire for Session {
    /// Answers the request once its head is complete (or refused), then closes.
    fn decode(&mut self, input: &[u8], cx: &mut Ctx) -> Progress {
        let Some(answer) = judge(input) else {
            return Progress::Incomplete;
        };
        let (status, extra, body): (&str, &str, &[u8]) = match answer {
            Answer::Metrics { head_only } => {
                let start = cx.out.len();
                write_metrics(cx.engine, cx.stats, cx.now, cx.out);
                let len = cx.out.len() - start;
                let mut head = Vec::with_capacity(160);
                head.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Type: ");
                head.extend_from_slice(CONTENT_TYPE.as_bytes());
                head.extend_from_slice(b"\r\nContent-Length: ");
                push_u64(&mut head, len as u64);
                head.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
                if head_only {
                    cx.out.truncate(start);
                }
                cx.out.splice(start..start, head);
                return Progress::Close(input.len());
            }
            Answer::NotFound => ("404 Not Found", "", b"not found: try GET /metrics\n"),
            Answer::MethodNotAllowed => (
                "405 Method Not Allowed",
                "Allow: GET, HEAD\r\n",
                b"method not allowed: try GET /metrics\n",
            ),
            Answer::BadRequest => {
                cx.stats.errors_total += 1;
                ("400 Bad Request", "", b"bad request\n")
            }
            Answer::TooLarge => {
                cx.stats.errors_total += 1;
                (
                    "431 Request Header Fields Too Large",
                    "",
                    b"request head too large\n",
                )
            }
        };
        log::debug!(
            "metrics {}: {status}",
            super::Peer::of(cx.engine, cx.client)
        );
        let out = &mut *cx.out;
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status.as_bytes());
        out.extend_from_slice(b"\r\nContent-Type: text/plain; charset=utf-8\r\n");
        out.extend_from_slice(extra.as_bytes());
        out.extend_from_slice(b"Content-Length: ");
        push_u64(out, body.len() as u64);
        out.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
        out.extend_from_slice(body);
        Progress::Close(input.len())
    }

    /// The engine never addresses events to a scraper (it takes no locks).
    fn encode_event(&mut self, _event: &Event, _engine: &Engine, _out: &mut Vec<u8>) {}
}

/// One metric family's `# HELP` and `# TYPE` lines.
fn family(out: &mut Vec<u8>, name: &str, kind: &str, help: &str) {
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(help.as_bytes());
    out.extend_from_slice(b"\n# TYPE ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(kind.as_bytes());
    out.push(b'\n');
}

/// Appends a label value, escaped as the format wants (`\\`, `\"`, `\n`).
fn push_label_value(out: &mut Vec<u8>, value: &str) {
    for &b in value.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

/// `name{k="v",...} ` (no braces without labels), ready for the value.
fn sample_start(out: &mut Vec<u8>, name: &str, labels: &[(&str, &str)]) {
    out.extend_from_slice(name.as_bytes());
    if !labels.is_empty() {
        out.push(b'{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"=\"");
            push_label_value(out, v);
            out.push(b'"');
        }
        out.push(b'}');
    }
    out.push(b' ');
}

/// One sample line with an integer value.
fn sample(out: &mut Vec<u8>, name: &str, labels: &[(&str, &str)], value: u64) {
    sample_start(out, name, labels);
    push_u64(out, value);
    out.push(b'\n');
}

/// Milliseconds as seconds in the shortest decimal form (`0.001`, `0.25`, `2.5`, `300`).
/// Microseconds as seconds in shortest form (`1500` -> `0.0015`).
fn push_seconds_us(out: &mut Vec<u8>, us: u64) {
    push_u64(out, us / 1_000_000);
    let mut frac = us % 1_000_000;
    if frac != 0 {
        let mut digits = [b'0'; 6];
        for d in digits.iter_mut().rev() {
            *d = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
        let keep = 6 - digits.iter().rev().take_while(|&&d| d == b'0').count();
        out.push(b'.');
        out.extend_from_slice(&digits[..keep]);
    }
}

fn push_seconds(out: &mut Vec<u8>, ms: u64) {
    push_u64(out, ms / 1000);
    let frac = ms % 1000;
    if frac != 0 {
        let digits = [
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ];
        // frac > 0, so a non-zero digit stops the trimming.
        let mut keep = 3;
        while digits[keep - 1] == b'0' {
            keep -= 1;
        }
        out.push(b'.');
        out.extend_from_slice(&digits[..keep]);
    }
}

/// A family with one unlabelled sample.
fn single(out: &mut Vec<u8>, name: &str, kind: &str, help: &str, value: u64) {
    family(out, name, kind, help);
    sample(out, name, &[], value);
}

/// A family with one sample per protocol.
fn per_protocol(out: &mut Vec<u8>, name: &str, kind: &str, help: &str, values: &[u64]) {
    family(out, name, kind, help);
    for p in Protocol::ALL {
        sample(out, name, &[("protocol", p.as_str())], values[p as usize]);
    }
}

/// A histogram of millisecond durations, shown in seconds.
fn histogram(out: &mut Vec<u8>, name: &str, help: &str, h: &Histogram) {
    histogram_of(
        out,
        name,
        help,
        h.cumulative(),
        (h.count(), h.sum_ms()),
        push_seconds,
    );
}

/// A histogram family from its cumulative `(bound, count)` buckets, `(count, sum)` and
/// the writer of a bound or sum in seconds.
fn histogram_of(
    out: &mut Vec<u8>,
    name: &str,
    help: &str,
    cumulative: impl Iterator<Item = (u64, u64)>,
    (count, sum): (u64, u64),
    seconds: fn(&mut Vec<u8>, u64),
) {
    family(out, name, "histogram", help);
    let line = |suffix: &str, le: Option<u64>, value: u64, out: &mut Vec<u8>| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(suffix.as_bytes());
        match le {
            Some(bound) => {
                out.extend_from_slice(b"{le=\"");
                seconds(out, bound);
                out.extend_from_slice(b"\"} ");
            }
            None if suffix == "_bucket" => out.extend_from_slice(b"{le=\"+Inf\"} "),
            None => out.push(b' '),
        }
        push_u64(out, value);
        out.push(b'\n');
    };
    for (bound, n) in cumulative {
        line("_bucket", Some(bound), n, out);
    }
    line("_bucket", None, count, out);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"_sum ");
    seconds(out, sum);
    out.push(b'\n');
    line("_count", None, count, out);
}

/// Writes every metric in the text exposition format: the `STATS` counters and levels,
/// per protocol where they differ, the refusal counters and the three histograms.
pub fn write_metrics(engine: &Engine, stats: &Totals, now: u64, out: &mut Vec<u8>) {
    let c = engine.counters();
    let (_, locks, holds, waiters) = engine.gauges();
    family(
        out,
        "lockbox_build_info",
        "gauge",
        "Always 1; the labels name the version and the git commit of the running binary.",
    );
    sample(
        out,
        "lockbox_build_info",
        &[
            ("version", env!("CARGO_PKG_VERSION")),
            ("commit", crate::config::GIT_COMMIT),
        ],
        1,
    );
    single(
        out,
        "lockbox_pid",
        "gauge",
        "Process id of the server.",
        u64::from(std::process::id()),
    );
    family(
        out,
        "lockbox_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
    );
    sample_start(out, "lockbox_uptime_seconds", &[]);
    push_seconds(out, engine.uptime(now));
    out.push(b'\n');
    per_protocol(
        out,
        "lockbox_connections_open",
        "gauge",
        "Open connections, per listener protocol.",
        &stats.open_connections,
    );
    per_protocol(
        out,
        "lockbox_connections_total",
        "counter",
        "Connections accepted, per listener protocol (refused ones not included).",
        &stats.connections_total,
    );
    per_protocol(
        out,
        "lockbox_requests_total",
        "counter",
        "Requests read (lines, frames or HTTP requests), per listener protocol.",
        &stats.requests_total,
    );
    let levels = [
        ("lockbox_locks", "Locks with holds or waiters.", locks),
        ("lockbox_holds", "Holds (granted requests).", holds),
        ("lockbox_waiters", "Requests waiting for a lock.", waiters),
    ];
    for (name, help, v) in levels {
        single(out, name, "gauge", help, v as u64);
    }
    let counters = [
        (
            "lockbox_grants_total",
            "Grants, immediate and after a wait.",
            c.grants_total,
        ),
        (
            "lockbox_waits_total",
            "Lock requests that queued behind holds or earlier waiters instead of being granted or refused at once.",
            c.waits_total,
        ),
        (
            "lockbox_timeouts_total",
            "Waits that ran out, including wait=0 tries that found the lock busy.",
            c.timeouts_total,
        ),
        (
            "lockbox_expired_total",
            "Holds taken back at their hold deadline.",
            c.expired_total,
        ),
        (
            "lockbox_released_on_disconnect_total",
            "Holds released because their connection closed.",
            c.released_on_disconnect_total,
        ),
        (
            "lockbox_errors_total",
            "Error replies sent.",
            stats.errors_total,
        ),
        (
            "lockbox_bytes_in_total",
            "Bytes read from clients.",
            stats.bytes_in,
        ),
        (
            "lockbox_bytes_out_total",
            "Bytes written to clients.",
            stats.bytes_out,
        ),
        (
            "lockbox_refused_connections_total",
            "Connections refused at --max-connections.",
            stats.refused_connections_total,
        ),
        (
            "lockbox_limit_refusals_total",
            "Lock requests refused by a limit: --max-pending, --max-claims, detached holds.",
            c.limit_refusals_total,
        ),
        (
            "lockbox_auth_failures_total",
            "AUTH requests with a wrong secret.",
            stats.auth_failures_total,
        ),
        (
            "lockbox_auth_timeouts_total",
            "Connections closed by --auth-timeout before they authenticated.",
            stats.auth_timeouts_total,
        ),
    ];
    for (name, help, v) in counters {
        single(out, name, "counter", help, v);
    }
    let name = "lockbox_native_commands_total";
    family(
        out,
        name,
        "counter",
        "Native protocol requests that parsed, per verb.",
    );
    for v in super::native::Verb::ALL {
        sample(
            out,
            name,
            &[("verb", v.as_str())],
            stats.native_commands[v as usize],
        );
    }
    histogram(
        out,
        "lockbox_grant_wait_seconds",
        "Time from request to grant, of every grant (immediate grants count as 0).",
        engine.grant_wait(),
    );
    histogram(
        out,
        "lockbox_hold_duration_seconds",
        "Time from grant to release, expiry or disconnect, of every hold that ended.",
        engine.hold_duration(),
    );
    let late = engine.timer_lateness();
    histogram_of(
        out,
        "lockbox_timer_lateness_seconds",
        "How late each wait or hold deadline fired: fire time minus deadline.",
        late.cumulative(),
        (late.count(), late.sum_us()),
        push_seconds_us,
    );
}

#[cfg(test)]
mod tests {
    use super::{judge, push_seconds, push_seconds_us, Answer, MAX_HEAD, MAX_HEADERS};

    #[test]
    fn seconds_in_shortest_form() {
        for (ms, s) in [
            (0, "0"),
            (1, "0.001"),
            (10, "0.01"),
            (25, "0.025"),
            (250, "0.25"),
            (1_000, "1"),
            (2_500, "2.5"),
            (300_000, "300"),
            (61_234, "61.234"),
        ] {
            let mut v = Vec::new();
            push_seconds(&mut v, ms);
            assert_eq!(String::from_utf8(v).unwrap(), s, "{ms} ms");
        }
    }

    #[test]
    fn microseconds_as_seconds_in_shortest_form() {
        for (us, s) in [
            (0, "0"),
            (1, "0.000001"),
            (10, "0.00001"),
            (250, "0.00025"),
            (1_000, "0.001"),
            (1_500, "0.0015"),
            (1_000_000, "1"),
            (2_500_001, "2.500001"),
        ] {
            let mut v = Vec::new();
            push_seconds_us(&mut v, us);
            assert_eq!(String::from_utf8(v).unwrap(), s, "{us} us");
        }
    }

    #[test]
    fn requests_are_judged_by_method_and_path() {
        let m = Some(Answer::Metrics { head_only: false });
        assert_eq!(judge(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), m);
        assert_eq!(judge(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"), m);
        assert_eq!(
            judge(b"HEAD /metrics HTTP/1.1\r\n\r\n"),
            Some(Answer::Metrics { head_only: true })
        );
        assert_eq!(judge(b"GET / HTTP/1.1\r\n\r\n"), Some(Answer::NotFound));
        assert_eq!(
            judge(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Some(Answer::MethodNotAllowed)
        );
        assert_eq!(judge(b"GET /metrics HTTP/1.1\r\nHost"), None);
        assert_eq!(judge(b"GET /metr"), None);
        assert_eq!(
            judge(b"\x16\x03\x01\x02\x00\x01\x00"),
            Some(Answer::BadRequest)
        );
        assert_eq!(judge(b"a1 LOCK x\n"), Some(Answer::BadRequest));
    }

    #[test]
    fn heads_are_bounded() {
        let mut long = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_HEAD + 1, b'a');
        assert_eq!(judge(&long), Some(Answer::TooLarge));
        let mut many = b"GET /metrics HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(judge(&many), Some(Answer::TooLarge));
    }
}
