//! The report's text and JSON forms on a fixed sample.

use super::json::json_f64;
use super::*;

fn sample_report() -> Report {
    let mut h = new_histogram();
    for v in 1..=1000u64 {
        h.record(v).unwrap();
    }
    Report {
        target: Target::Lockbox,
        mode: CycleKind::Lock,
        servers: vec!["127.0.0.1:7654".into(), "a\"b:1".into()],
        clients: 50,
        pipeline: 1,
        threads: 1,
        locks: 10,
        work_ms: 0,
        wait_ms: None,
        hold_ms: Some(5),
        max: None,
        id_len: None,
        seed: 1,
        verify: true,
        chaos: None,
        checks: Property::ALL
            .iter()
            .map(|&p| Check {
                property: p,
                checked: 100 + p.index() as u64,
                violations: 0,
            })
            .collect(),
        elapsed_s: 1.0,
        total_s: 1.25,
        cycles: 1000,
        window_cycles: 990,
        cycles_per_sec: 990.0,
        per_server_cycles: vec![600, 400],
        timeouts: 1,
        errors: 2,
        expired: 3,
        unanswered: 0,
        lost_clients: 0,
        violations: 0,
        hit_timeout: false,
        acquire: Latency::from_histogram(&h),
        release: Latency::default(),
        timeout_lateness: Latency::default(),
        cpu: Some(CpuUsage {
            user_s: 0.5,
            sys_s: 0.25,
            percent: 60.0,
            thread_percent: vec![60.0],
            cores: 2,
        }),
        server: None,
        violation_samples: vec!["line\none".into()],
        violation_samples_omitted: 0,
        error_samples: vec!["e1".into(), "e2".into()],
        error_samples_omitted: 7,
    }
}

#[test]
fn latency_from_histogram() {
    let r = sample_report();
    assert_eq!(r.acquire.count, 1000);
    assert!((499..=501).contains(&r.acquire.p50));
    assert!((989..=991).contains(&r.acquire.p99));
    assert_eq!(r.acquire.max, 1000);
    assert_eq!(
        Latency::from_histogram(&new_histogram()),
        Latency::default()
    );
}

#[test]
fn latency_tail_percentiles() {
    // 1..=100,000 µs once each: the 99.9th and 99.99th percentiles are distinct values
    // near 99,900 and 99,990 (3 significant digits: within 0.1%).
    let mut h = new_histogram();
    for v in 1..=100_000u64 {
        h.record(v).unwrap();
    }
    let l = Latency::from_histogram(&h);
    assert!((99_800..=100_000).contains(&l.p999), "{l:?}");
    assert!((99_890..=100_100).contains(&l.p9999), "{l:?}");
    assert!(
        l.p99 < l.p999 && l.p999 < l.p9999 && l.p9999 <= l.max,
        "{l:?}"
    );
    let j = sample_report().to_json();
    assert!(j.contains(r#""p999":999,"p9999":1000,"max":1000"#), "{j}");
}

#[test]
fn report_json_shape() {
    let j = sample_report().to_json();
    assert!(j.starts_with('{') && j.ends_with('}'));
    assert!(!j.contains('\n'));
    for key in [
        "\"target\":\"lockbox\"",
        "\"mode\":\"lock\"",
        "\"servers\":[\"127.0.0.1:7654\",\"a\\\"b:1\"]",
        "\"cycles\":1000",
        "\"cycles_per_sec\":990",
        "\"per_server_cycles\":[600,400]",
        "\"wait_ms\":null",
        "\"hold_ms\":5",
        "\"violations\":0",
        "\"verify\":true",
        "\"acquire_us\":{\"count\":1000,\"p50\":",
        "\"release_us\":{\"count\":0,",
        "\"loadgen_cpu\":{\"user_s\":0.5,\"sys_s\":0.25,\"percent\":60,\"thread_percent\":[60],\"cores\":2}",
        "\"server\":null",
        "\"violation_samples\":[\"line\\none\"]",
        "\"error_samples\":[\"e1\",\"e2\"]",
        "\"violation_samples_omitted\":0",
        "\"error_samples_omitted\":7",
        "\"total_s\":1.25",
        "\"checks\":{\"exclusion\":{\"checked\":100,\"violations\":0},\"shared_max\":",
        "\"protocol\":{\"checked\":106,\"violations\":0}}",
        "\"chaos\":null",
        "\"id_len\":null",
    ] {
        assert!(j.contains(key), "missing {key} in {j}");
    }
    // Balanced braces and brackets outside strings.
    let (mut depth, mut in_str, mut esc) = (0i32, false, false);
    for c in j.chars() {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, '\\') => esc = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            _ => {}
        }
        assert!(depth >= 0);
    }
    assert_eq!(depth, 0);
    assert!(!in_str);
}

#[test]
fn report_display() {
    let text = sample_report().to_string();
    // Each label is the JSON key of the value it shows.
    assert!(text.contains("window_cycles       990 in 1.00 s (elapsed_s) = 990 cycles_per_sec"));
    assert!(text.contains("cycles              1000 in 1.25 s (total_s"));
    assert!(text.contains("acquire_us          p50"));
    assert!(text.contains("per_server_cycles   127.0.0.1:7654=600"));
    assert!(text.contains("lost_clients 0"));
    assert!(text.contains("violations          0"));
    assert!(text.contains("violation_samples   line"));
    // Left-out samples are counted, not silently dropped.
    assert!(text.contains("error_samples       e2\n"));
    assert!(text.contains(
        "error_samples       ... and 7 more like these, left out (the first 2 are shown)"
    ));
    assert!(!text.contains("more like these, left out (the first 1"));
    assert!(text.starts_with("lockbox lock: clients 50, pipeline 1, threads 1, locks 10, work_ms 0, wait_ms -, hold_ms 5\n"), "{text}");
    let mut ids = sample_report();
    ids.id_len = Some(32);
    assert!(ids
        .to_string()
        .lines()
        .next()
        .unwrap()
        .ends_with(", id_len 32"));
    assert!(ids.to_json().contains("\"id_len\":32,"));
    let mut late = sample_report();
    late.timeout_lateness = late.acquire.clone();
    assert!(late.to_string().contains("timeout_lateness_us p50"));
}

#[test]
fn chaos_counts_in_both_forms() {
    let mut r = sample_report();
    let mut c = ChaosCounts::new(0.05);
    c.add(&ChaosCounts {
        cancel: 7,
        cancelled: 5,
        cancel_crossed: 2,
        probes: 3,
        share: 11,
        ..ChaosCounts::default()
    });
    c.add(&ChaosCounts {
        cancel: 1,
        ..ChaosCounts::new(0.9)
    });
    assert_eq!((c.rate, c.cancel, c.share), (0.05, 8, 11));
    r.chaos = Some(c);
    let j = r.to_json();
    assert!(
        j.contains("\"chaos\":{\"rate\":0.05,\"chosen\":0,\"close_waiting\":0,"),
        "{j}"
    );
    assert!(j.contains("\"cancel\":8,\"cancelled\":5,\"cancel_crossed\":2,"));
    assert!(j.contains("\"share\":11}"));
    let text = r.to_string();
    assert!(
        text.contains("chaos               rate 0.05  chosen 0"),
        "{text}"
    );
    assert!(text.contains("cancel 8"), "{text}");
    assert!(text.contains("checks              (checked/violations) exclusion 100/0"));
    // Long lines wrap under the value column.
    for line in text.lines() {
        assert!(line.len() <= LABEL + VALUE_WIDTH, "too long: {line}");
    }
    assert!(text.contains("\n                    "), "{text}");
}

#[test]
fn json_numbers() {
    assert_eq!(json_f64(1.0), "1");
    assert_eq!(json_f64(0.0), "0");
    assert_eq!(json_f64(12.3456), "12.346");
    assert_eq!(json_f64(f64::NAN), "null");
    assert_eq!(json_f64(100.0), "100");
}
