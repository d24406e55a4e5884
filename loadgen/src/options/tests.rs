//! Parsing of every flag, the defaults, and the one-line errors for bad input.

use super::*;

fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

fn parse(s: &str) -> Result<Options, UsageError> {
    parse_args(&args(s))
}

fn err(s: &str) -> String {
    match parse(s) {
        Err(UsageError::Invalid(m)) => m,
        other => panic!("expected an error for '{s}', got {other:?}"),
    }
}

#[test]
fn parse_defaults() {
    let o = parse("").unwrap();
    assert_eq!(o, Options::default());
    assert_eq!(o.servers, vec!["127.0.0.1:7654"]);
    assert_eq!(o.duration, Some(Duration::from_secs(10)));
    assert_eq!(o.timeout, Duration::from_secs(50));
    let r = parse("--target redis").unwrap();
    assert_eq!(r.servers, vec!["127.0.0.1:6379"]);
    assert_eq!(r.target, Target::Redis);
}

#[test]
fn parse_full() {
    let o = parse(
        "--server 127.0.0.1:1,127.0.0.1:2 --server [::1]:3 --mode share --max 3 \
         --clients 7 --pipeline 4 --threads 2 --locks 5 --work-ms 2 --wait 100 \
         --hold 5000 --cycles 1000 --duration 1.5 --drain-s 2 --timeout-s 9 \
         --seed 42 --verify --json --quiet --server-pid 1 --prefix x: --retry-ms 3",
    )
    .unwrap();
    assert_eq!(o.servers, vec!["127.0.0.1:1", "127.0.0.1:2", "[::1]:3"]);
    assert_eq!(o.mode, CycleKind::Share);
    assert_eq!(o.max, Some(3));
    assert_eq!((o.clients, o.pipeline, o.threads, o.locks), (7, 4, 2, 5));
    assert_eq!(
        (o.work_ms, o.wait_ms, o.hold_ms),
        (2, Some(100), Some(5000))
    );
    assert_eq!(o.cycles, Some(1000));
    assert_eq!(o.duration, Some(Duration::from_millis(1500)));
    assert_eq!(o.drain, Duration::from_secs(2));
    assert_eq!(o.timeout, Duration::from_secs(9));
    assert_eq!((o.seed, o.retry_ms), (42, 3));
    assert!(o.verify && o.json && o.quiet);
    assert_eq!(o.server_pid, Some(1));
    assert_eq!(o.prefix, "x:");
    // Cycles alone: no duration, 300 s bound.
    let c = parse("--cycles 10").unwrap();
    assert_eq!(c.duration, None);
    assert_eq!(c.timeout, Duration::from_secs(300));
    // Threads are capped by clients.
    assert_eq!(parse("--clients 2 --threads 8").unwrap().threads, 2);
    assert_eq!(parse("--mode PING").unwrap().mode, CycleKind::Ping);
}

#[test]
fn parse_help() {
    assert_eq!(parse("--help"), Err(UsageError::Help));
    assert_eq!(parse("-h"), Err(UsageError::Help));
    assert!(usage().contains("--verify"));
}

#[test]
fn parse_errors() {
    assert!(err("--clients 0").contains("--clients"));
    assert!(err("--clients x").contains("not a whole number"));
    assert!(err("--clients -1").contains("--clients"));
    assert!(err("--pipeline 0").contains("--pipeline"));
    assert!(err("--locks 0").contains("--locks"));
    assert!(err("--mode write").contains("--mode"));
    assert!(err("--target memcached").contains("--target"));
    assert!(err("--server nope").contains("HOST:PORT"));
    assert!(err("--server 127.0.0.1:0").contains("HOST:PORT"));
    assert!(err("--server 127.0.0.1:99999").contains("HOST:PORT"));
    assert!(err("--server a:1,,b:2").contains("empty"));
    assert!(err("--server a:1 --server a:1").contains("twice"));
    assert!(err("--max 3").contains("share"));
    assert!(err("--mode share --max 0").contains("--max"));
    assert!(err("--target redis --mode share").contains("redis"));
    assert!(err("--target redis --hold 0").contains("PX"));
    assert!(err("--mode ping --work-ms 3").contains("ping"));
    assert!(err("--duration 0").contains("--duration"));
    assert!(err("--duration abc").contains("seconds"));
    assert!(err("--duration inf").contains("--duration"));
    assert!(err("--wait 4294967296").contains("--wait"));
    assert!(err("--bogus").to_lowercase().contains("bogus"));
    // Flag errors are one lowercase line naming the flag with its dashes.
    assert_eq!(err("--bogus"), "--bogus: unknown flag");
    assert_eq!(err("-x"), "-x: unknown flag");
    assert_eq!(err("--clients"), "--clients: needs a value");
    assert_eq!(
        err("--clients 1 --clients 2"),
        "--clients: given more than once"
    );
    assert_eq!(
        err("--clients 0"),
        "--clients: 0 is out of range (1 to 1000000)"
    );
    assert_eq!(parse("--version"), Err(UsageError::Version));
    assert_eq!(parse("-V"), Err(UsageError::Version));
    assert!(err("--clients").to_lowercase().contains("clients"));
    assert!(err("--clients 1 --clients 2").contains("clients"));
    assert!(err("stray").contains("unexpected argument"));
    assert!(err("--clients 1000000 --pipeline 100").contains("in flight"));
    assert!(err("--prefix a\tb").contains("--prefix") || parse("--prefix a\tb").is_err());
}

#[test]
fn parse_chaos() {
    assert_eq!(parse("").unwrap().chaos, None);
    assert_eq!(parse("--chaos 0.05").unwrap().chaos, Some(0.05));
    assert_eq!(parse("--chaos 1").unwrap().chaos, Some(1.0));
    assert_eq!(
        parse("--chaos 0.1 --mode share --max 2").unwrap().chaos,
        Some(0.1)
    );
    for bad in ["0", "-0.1", "1.5", "nan", "inf", "x", "5%"] {
        let e = err(&format!("--chaos {bad}"));
        assert!(e.starts_with("--chaos: "), "{bad}: {e}");
    }
    assert!(err("--chaos 0").contains("above 0 and at most 1"));
    let e = err("--target redis --chaos 0.1");
    assert!(e.contains("--chaos needs --target lockbox"), "{e}");
    assert!(err("--mode ping --chaos 0.1").contains("--mode lock or share"));
}

#[test]
fn parse_id_len() {
    assert_eq!(parse("").unwrap().id_len, None);
    assert_eq!(parse("--id-len 1").unwrap().id_len, Some(1));
    assert_eq!(parse("--id-len 32").unwrap().id_len, Some(32));
    assert_eq!(parse("--mode ping --id-len 23").unwrap().id_len, Some(23));
    assert_eq!(err("--id-len 0"), "--id-len: 0 is out of range (1 to 32)");
    assert_eq!(err("--id-len 33"), "--id-len: 33 is out of range (1 to 32)");
    let e = err("--target redis --id-len 32");
    assert!(e.contains("--id-len needs --target lockbox"), "{e}");
    assert!(usage().contains("--id-len N"));
}
