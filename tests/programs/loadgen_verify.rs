//! loadgen's `--verify` against a real server: mutual exclusion, increasing tokens,
//! semaphore caps and exactly-once replies, checked while load runs.

use lockbox::config::Config;
use lockbox::server::Server;

fn start() -> String {
    let cfg = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    let server = Server::bind(cfg).expect("bind");
    let addr = server.local_addr().to_string();
    std::thread::spawn(move || server.run());
    addr
}

fn verify(args: &[&str]) -> loadgen::Report {
    let addr = start();
    let mut all = vec![
        "--server",
        &addr,
        "--verify",
        "--quiet",
        "--duration",
        "1",
        "--timeout-s",
        "30",
    ];
    all.extend_from_slice(args);
    let opts = loadgen::parse_args(&all).expect("loadgen arguments");
    let r = loadgen::run(&opts).expect("loadgen run");
    assert_eq!(r.violations, 0, "violations: {:?}", r.violation_samples);
    assert_eq!(
        (r.errors, r.lost_clients, r.unanswered),
        (0, 0, 0),
        "errors: {:?}",
        r.error_samples
    );
    assert!(!r.hit_timeout, "run cut short by --timeout-s");
    // Cycles that completed, or ended by a deadline (an expired hold is not a cycle).
    assert!(
        r.cycles + r.expired + r.timeouts > 0,
        "no cycle ended at all"
    );
    r
}

#[test]
fn exclusive_contended_with_pipelining() {
    // Few names, many requests in flight: the FIFO queues are long and busy.
    let r = verify(&[
        "--mode",
        "lock",
        "--clients",
        "8",
        "--pipeline",
        "4",
        "--locks",
        "3",
        "--work-ms",
        "1",
    ]);
    assert!(r.cycles > 0, "no lock cycle completed");
}

#[test]
fn shared_with_a_semaphore_cap() {
    verify(&[
        "--mode",
        "share",
        "--max",
        "2",
        "--clients",
        "6",
        "--pipeline",
        "2",
        "--locks",
        "2",
    ]);
}

#[test]
fn holds_that_expire_and_waits_that_time_out() {
    let r = verify(&[
        "--mode",
        "lock",
        "--clients",
        "6",
        "--pipeline",
        "2",
        "--locks",
        "2",
        "--work-ms",
        "5",
        "--hold",
        "2",
        "--wait",
        "3",
    ]);
    assert!(
        r.expired + r.timeouts > 0,
        "the deadlines under test never fired"
    );
}

/// loadgen's Redis client (SET NX PX, retry, compare-and-delete EVAL) against
/// `--redis-listen`: the same checks, with expiry races from short key lifetimes.
#[test]
fn redis_target_against_the_redis_dialect() {
    let cfg = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        redis_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..Config::default()
    };
    let server = Server::bind(cfg).expect("bind");
    let addr = server
        .listener_addr(lockbox::proto::Protocol::Redis)
        .expect("a redis listener")
        .to_string();
    std::thread::spawn(move || server.run());
    for extra in [
        &[
            "--clients",
            "8",
            "--pipeline",
            "2",
            "--locks",
            "2",
            "--work-ms",
            "1",
            "--hold",
            "3",
            "--wait",
            "500",
        ][..],
        &["--clients", "8", "--pipeline", "4", "--locks", "1000"][..],
    ] {
        let mut args = vec![
            "--target",
            "redis",
            "--server",
            &addr,
            "--verify",
            "--quiet",
            "--duration",
            "0.8",
            "--timeout-s",
            "30",
        ];
        args.extend_from_slice(extra);
        let opts = loadgen::parse_args(&args).expect("loadgen arguments");
        let r = loadgen::run(&opts).expect("loadgen run");
        assert_eq!(r.violations, 0, "violations: {:?}", r.violation_samples);
        assert_eq!(
            (r.errors, r.lost_clients, r.unanswered),
            (0, 0, 0),
            "{:?}",
            r.error_samples
        );
        assert!(r.cycles > 20, "{r}");
    }
}
