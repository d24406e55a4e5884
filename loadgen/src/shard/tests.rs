//! The prefix router agrees with the rendezvous function; distribution and stability.
//! (The function's known vectors are tested where it lives, in `lockbox_client::shard`.)

use super::*;

#[test]
fn rendezvous_ties_go_to_lower_index() {
    // The same address twice scores equally: the first one wins.
    assert_eq!(rendezvous_route(&["h:1", "h:1"], b"x"), Some(0));
}

#[test]
fn prefix_router_matches_rendezvous_route() {
    let servers: Vec<String> = (0..5).map(|i| format!("127.0.0.1:{}", 7000 + i)).collect();
    let router = PrefixRouter::new(&servers, b"lg:");
    for n in 0..2000u64 {
        let name = format!("lg:{n}");
        assert_eq!(
            Some(router.route(n.to_string().as_bytes())),
            rendezvous_route(&servers, name.as_bytes())
        );
    }
    assert_eq!(PrefixRouter::new(&["only:1"], b"lg:").route(b"7"), 0);
}

#[test]
fn rendezvous_distribution_and_stability() {
    let three = ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"];
    let four = [
        "127.0.0.1:7001",
        "127.0.0.1:7002",
        "127.0.0.1:7003",
        "127.0.0.1:7004",
    ];
    let n = 30_000;
    let mut counts = [0usize; 4];
    let mut moved_elsewhere = 0;
    for i in 0..n {
        let name = format!("lg:{i}");
        let a = rendezvous_route(&three, name.as_bytes()).unwrap();
        let b = rendezvous_route(&four, name.as_bytes()).unwrap();
        counts[b] += 1;
        // Adding a server only moves names to the new server.
        if a != b && b != 3 {
            moved_elsewhere += 1;
        }
    }
    assert_eq!(moved_elsewhere, 0);
    for (i, &c) in counts.iter().enumerate() {
        let share = c as f64 / n as f64;
        assert!((0.23..0.27).contains(&share), "server {i} got {share}");
    }
    // Two adjacent ports: the case plain FNV-1a gets wrong (43/57).
    let two = ["127.0.0.1:7654", "127.0.0.1:7655"];
    let first = (0..n)
        .filter(|i| rendezvous_route(&two, format!("lg:{i}").as_bytes()) == Some(0))
        .count();
    let share = first as f64 / n as f64;
    assert!((0.48..0.52).contains(&share), "two servers split {share}");
}
