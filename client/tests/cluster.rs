//! Sharding over three real servers.

mod common;

use common::{start, Raw};
use lockbox_client::shard::rendezvous_route;
use lockbox_client::{Cluster, Mode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_name_goes_to_exactly_its_server() {
    let servers: Vec<String> = (0..3).map(|_| start()).collect();
    let cluster = Cluster::connect(servers.clone()).await.unwrap();
    assert_eq!(cluster.servers(), &servers[..]);
    let names: Vec<String> = (0..60).map(|i| format!("shard:{i}")).collect();
    let mut guards = Vec::new();
    for n in &names {
        guards.push(cluster.lock(n.as_str()).wait(1000).await.unwrap());
    }
    let mut raws: Vec<Raw> = servers.iter().map(|s| Raw::connect(s)).collect();
    let mut used = [0; 3];
    for (n, g) in names.iter().zip(&guards) {
        let want = rendezvous_route(&servers, n.as_bytes()).unwrap();
        assert_eq!(cluster.route(n), want);
        used[want] += 1;
        for (i, raw) in raws.iter_mut().enumerate() {
            let info = raw.inspect(n);
            if i == want {
                assert!(
                    info.contains(&format!("token={}", g.token())),
                    "{n} on server {i}: {info}"
                );
            } else {
                assert!(
                    info.starts_with("mode=free"),
                    "{n} also on server {i}: {info}"
                );
            }
        }
    }
    assert!(used.iter().all(|&u| u > 0), "every server used: {used:?}");
    drop(guards);
    // Shared locks route the same way.
    let s = cluster.share("shard:0").max(2).await.unwrap();
    let i = cluster.route("shard:0");
    let info = cluster.clients()[i].inspect("shard:0").await.unwrap();
    assert_eq!((info.mode, info.holders), (Mode::Shared, 1));
    assert_eq!(s.holders(), Some(1));
}

#[test]
fn thirty_thousand_names_spread_within_ten_percent() {
    // Three real server addresses, as a cluster would be configured.
    let servers: Vec<String> = (0..3).map(|_| start()).collect();
    let mut counts = [0u32; 3];
    for i in 0..30_000 {
        let name = format!("orders:{i}");
        counts[rendezvous_route(&servers, name.as_bytes()).unwrap()] += 1;
    }
    for c in counts {
        assert!(
            (9_000..=11_000).contains(&c),
            "not within 10% of 10,000 each: {counts:?} over {servers:?}"
        );
    }
}

#[tokio::test]
async fn empty_cluster_is_an_error() {
    let r = Cluster::connect(Vec::<String>::new()).await;
    assert!(r.is_err());
}
