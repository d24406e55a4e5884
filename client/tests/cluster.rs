//! Sharding over three real servers, one of them down in some tests.

mod common;

use common::{start, Proxy, Raw};
use lockbox_client::shard::rendezvous_route;
use lockbox_client::{Cluster, ConnectOptions, Error, Mode};
use std::time::Duration;

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

/// Options for servers that are down: fail fast.
fn quick() -> ConnectOptions {
    ConnectOptions::new()
        .connect_timeout(Duration::from_secs(2))
        .reconnect_attempts(2)
        .backoff(Duration::from_millis(10), Duration::from_millis(20))
}

/// A name routed to server `i` of `servers`.
fn name_on(servers: &[String], i: usize, tag: &str) -> String {
    (0..)
        .map(|n| format!("{tag}:{n}"))
        .find(|n| rendezvous_route(servers, n.as_bytes()) == Some(i))
        .unwrap()
}

fn is_connect_failure(e: &Error) -> bool {
    matches!(
        e,
        Error::Io(_) | Error::ConnectTimeout(_) | Error::ConnectionLost
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_server_fails_only_its_own_names() {
    let dead = 1;
    let servers = vec![start(), common::dead_addr(), start()];
    let cluster = Cluster::connect_with(servers.clone(), quick())
        .await
        .expect("a dead server does not fail the cluster");
    assert!(cluster.clients().iter().all(|c| !c.is_connected()), "lazy");
    for i in 0..3 {
        let name = name_on(&servers, i, "lazy");
        let r = cluster.lock(name.as_str()).wait(1000).await;
        if i == dead {
            let e = r.expect_err("a lock on the dead server");
            assert!(is_connect_failure(&e), "{e:?}");
            assert!(!cluster.clients()[i].is_connected());
        } else {
            let g = r.unwrap_or_else(|e| panic!("server {i} is up: {e:?}"));
            assert!(cluster.clients()[i].is_connected());
            let info = cluster.client_for(&name).inspect(&name).await.unwrap();
            assert_eq!(info.token, Some(g.token()));
            g.release().await.unwrap();
        }
    }
    assert!(!cluster.clients()[dead].is_connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_comes_back_is_connected_on_the_next_request() {
    let addr = start();
    let proxy = Proxy::start(&addr);
    proxy.refuse(true);
    let servers = vec![start(), proxy.addr.clone(), start()];
    let cluster = Cluster::connect_with(servers.clone(), quick())
        .await
        .unwrap();
    let name = name_on(&servers, 1, "back");
    let e = cluster.lock(name.as_str()).wait(0).await.unwrap_err();
    assert!(is_connect_failure(&e), "{e:?}");
    proxy.refuse(false);
    let g = cluster.lock(name.as_str()).wait(0).await.unwrap();
    assert!(Raw::connect(&addr)
        .inspect(&name)
        .contains(&format!("token={}", g.token())));
}

#[test]
fn blocking_cluster_routes_and_survives_a_dead_server() {
    let servers = vec![start(), start(), common::dead_addr()];
    let cluster =
        lockbox_client::blocking::Cluster::connect_with(servers.clone(), quick()).unwrap();
    assert_eq!(cluster.servers(), &servers[..]);
    let mut raws: Vec<Raw> = servers[..2].iter().map(|s| Raw::connect(s)).collect();
    // Many threads share the cluster.
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let cluster = cluster.clone();
            std::thread::spawn(move || {
                let mut tokens = Vec::new();
                for n in 0..10 {
                    let name = format!("bc:{t}:{n}");
                    let i = cluster.route(&name);
                    if i == 2 {
                        continue;
                    }
                    let g = cluster.lock(name.as_str()).wait(2000).acquire().unwrap();
                    tokens.push((name, i, g.detach()));
                }
                tokens
            })
        })
        .collect();
    for w in workers {
        for (name, i, token) in w.join().unwrap() {
            assert_eq!(i, rendezvous_route(&servers, name.as_bytes()).unwrap());
            assert!(raws[i].inspect(&name).contains(&format!("token={token}")));
        }
    }
    let dead = name_on(&servers, 2, "bc-dead");
    let e = cluster.lock(dead.as_str()).wait(0).acquire().unwrap_err();
    assert!(is_connect_failure(&e), "{e:?}");
    let live = name_on(&servers, 0, "bc-live");
    let s = cluster.share(live.as_str()).max(2).acquire().unwrap();
    assert_eq!(s.holders(), Some(1));
    assert_eq!(
        cluster.client_for(&live).inspect(&live).unwrap().mode,
        Mode::Shared
    );
}
