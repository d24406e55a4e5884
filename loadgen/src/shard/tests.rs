//! Known vectors, distribution and stability of the rendezvous hash.

use super::*;

#[test]
fn fnv_known_vectors() {
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    assert_eq!(fnv1a64_extend(fnv1a64(b"foo"), b"bar"), fnv1a64(b"foobar"));
    assert_eq!(fmix64(0), 0);
}

#[test]
fn rendezvous_known_vectors() {
    // Computed independently (Python) from the definition in the crate docs.
    let v: &[(&str, &[u8], u64)] = &[
        ("127.0.0.1:7001", b"", 0xa63bfbff87ef688c),
        ("127.0.0.1:7001", b"a", 0x47f07d38ab897fa1),
        ("127.0.0.1:7001", b"lg:0", 0x44c20e1aab9887ca),
        ("127.0.0.1:7001", b"jobs:42", 0x91cca51fa2e3ac99),
        ("127.0.0.1:7001", "été".as_bytes(), 0xed30aa2cc65c01ee),
        ("127.0.0.1:7002", b"", 0xacd3d7c1b369d34f),
        ("127.0.0.1:7002", b"a", 0x0940320f3a8fea68),
        ("127.0.0.1:7002", b"lg:0", 0x912161898369f58e),
        ("127.0.0.1:7002", b"jobs:42", 0x0fa2407e4a910973),
        ("127.0.0.1:7002", "été".as_bytes(), 0xfd486a78c1f7e70a),
        ("127.0.0.1:7003", b"", 0xb9ce5fed59d440c4),
        ("127.0.0.1:7003", b"a", 0x0e7df7455d545417),
        ("127.0.0.1:7003", b"lg:0", 0xe9f91e111cddfe73),
        ("127.0.0.1:7003", b"jobs:42", 0x710a99e1a2dc830d),
        ("127.0.0.1:7003", "été".as_bytes(), 0xe1058a63343b0baa),
    ];
    for &(server, name, want) in v {
        assert_eq!(
            rendezvous_score(server, name),
            want,
            "score({server}, {:?})",
            String::from_utf8_lossy(name)
        );
    }
    let servers = ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"];
    // Winners follow from the scores above.
    assert_eq!(rendezvous_route(&servers, b""), Some(2));
    assert_eq!(rendezvous_route(&servers, b"a"), Some(0));
    assert_eq!(rendezvous_route(&servers, b"lg:0"), Some(2));
    assert_eq!(rendezvous_route(&servers, b"jobs:42"), Some(0));
    assert_eq!(rendezvous_route(&servers, "été".as_bytes()), Some(1));
    assert_eq!(rendezvous_route::<&str>(&[], b"x"), None);
    assert_eq!(rendezvous_route(&["only:1"], b"x"), Some(0));
}

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
