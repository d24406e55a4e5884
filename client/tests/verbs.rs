//! Every verb through the async client, client-side validation, AUTH and NAME.

mod common;

use common::{start, start_with, Raw};
use lockbox::config::Config;
use lockbox_client::proto::Request;
use lockbox_client::{Client, ConnectOptions, Error, Lost, Mode, Reply};

#[tokio::test]
async fn every_verb() {
    let addr = start();
    let c = Client::connect(&addr).await.unwrap();
    let other = Client::connect(&addr).await.unwrap();

    // PING
    c.ping().await.unwrap();

    // NAME, WHOAMI
    c.set_name("verbs-test").await.unwrap();
    let me = c.whoami().await.unwrap();
    assert_eq!(me.name, "verbs-test");
    assert!(me.addr.starts_with("127.0.0.1:"), "{me:?}");

    // LOCK (exclusive): INSPECT shows the hold with its token and owner.
    let g = c.lock("v:a").wait(1000).hold(60_000).await.unwrap();
    assert_eq!(g.name(), "v:a");
    assert_eq!(g.holders(), None);
    let info = other.inspect("v:a").await.unwrap();
    assert_eq!(info.mode, Mode::Exclusive);
    assert_eq!(info.holders, 1);
    assert_eq!(info.token, Some(g.token()));
    assert_eq!(info.owner.as_deref(), Some("verbs-test"));
    // Busy: wait=0 times out, queue=0 is queue_full.
    assert!(matches!(
        other.lock("v:a").wait(0).await,
        Err(Error::Timeout)
    ));
    assert!(matches!(
        other.lock("v:a").queue(0).await,
        Err(Error::QueueFull(_))
    ));

    // EXTEND through the guard and through the client.
    g.extend(30_000).await.unwrap();
    c.extend("v:a", g.token(), 30_000).await.unwrap();
    assert!(matches!(
        other.extend("v:a", g.token(), 10).await,
        Err(Error::NotHeld(_))
    ));

    // SHARE, with and without max; holders counted.
    let s1 = c.share("v:s").max(2).await.unwrap();
    let s2 = other.share("v:s").max(2).await.unwrap();
    assert_eq!(s1.holders(), Some(1));
    assert_eq!(s2.holders(), Some(2));
    assert!(s2.token() > s1.token(), "tokens increase");
    assert!(matches!(
        other.share("v:s").max(2).wait(0).await,
        Err(Error::Timeout)
    ));
    let s3 = other.share("v:s").wait(0).await.unwrap();
    assert_eq!(s3.holders(), Some(3));
    let info = c.inspect("v:s").await.unwrap();
    assert_eq!((info.mode, info.holders), (Mode::Shared, 3));

    // LIST with and without a prefix.
    let all = c.list(None).await.unwrap();
    let names: Vec<&str> = all.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["v:a", "v:s"]);
    assert_eq!(c.list(Some("v:s")).await.unwrap().len(), 1);
    assert!(c.list(Some("zzz")).await.unwrap().is_empty());

    // CLIENTS sees both connections and their holds.
    let clients = c.clients().await.unwrap();
    let mine = clients.iter().find(|ci| ci.name == "verbs-test").unwrap();
    assert_eq!(mine.holds, 2);
    assert_eq!(clients.len(), 2);

    // STATS
    let st = c.stats().await.unwrap();
    assert_eq!(st.get("holds"), Some(4));
    assert!(st.get("cmd_share").unwrap() >= 4);

    // UNLOCK by token (a detached guard) and without a token; token_required.
    let t = s3.detach();
    other.unlock("v:s", Some(t)).await.unwrap();
    assert!(matches!(
        other.unlock("v:s", Some(t)).await,
        Err(Error::NotHeld(_))
    ));
    drop(s2);
    let a = other.share("v:s").await.unwrap().detach();
    let b = other.share("v:s").await.unwrap().detach();
    assert!(matches!(
        other.unlock("v:s", None).await,
        Err(Error::TokenRequired(_))
    ));
    other.unlock("v:s", Some(a)).await.unwrap();
    other.unlock("v:s", None).await.unwrap();
    let _ = b;

    // Guard::release is UNLOCK with the token.
    s1.release().await.unwrap();
    assert_eq!(c.inspect("v:s").await.unwrap().mode, Mode::Free);

    // CANCEL: nothing waits under that id.
    assert!(matches!(
        c.cancel("no-such-id").await,
        Err(Error::NotWaiting(_))
    ));

    // RESET: releases the hold and cancels a wait of this connection; the guard
    // learns it was reset, the waiter that it was cancelled.
    let waiter = {
        let c = c.clone();
        tokio::spawn(async move { c.lock("v:a").await })
    };
    common_wait_for_waiters(&other, "v:a", 1).await;
    assert_eq!(c.reset().await.unwrap(), (1, 1));
    assert!(matches!(waiter.await.unwrap(), Err(Error::Cancelled)));
    assert_eq!(g.is_lost(), Some(Lost::Reset));
    assert_eq!(g.lost().await, Lost::Reset);
    assert!(matches!(g.release().await, Err(Error::NotHeld(_))));

    // AUTH on an open server answers OK.
    c.auth("anything").await.unwrap();

    // The raw request API: a grant is not guarded.
    let r = c
        .request(Request::lock("v:raw").wait(0).into())
        .await
        .unwrap();
    let Reply::Granted(grant) = r else {
        panic!("{r:?}")
    };
    c.unlock("v:raw", Some(grant.token)).await.unwrap();

    // QUIT: the server closes; the next request reconnects.
    let held = c.lock("v:q").await.unwrap();
    c.quit().await.unwrap();
    assert_eq!(held.lost().await, Lost::ConnectionLost);
    c.ping().await.unwrap();
    assert_eq!(
        c.whoami().await.unwrap().name,
        c.whoami().await.unwrap().addr
    );
    assert_eq!(other.inspect("v:q").await.unwrap().mode, Mode::Free);
}

async fn common_wait_for_waiters(c: &Client, name: &str, n: u64) {
    for _ in 0..2000 {
        if c.inspect(name).await.unwrap().waiters == n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("{name} never had {n} waiters");
}

#[tokio::test]
async fn validation_errors_are_caught_before_sending() {
    let addr = start();
    let c = Client::connect(&addr).await.unwrap();
    let mut raw = Raw::connect(&addr);
    let before = raw.stat("bytes_in");
    let long = "x".repeat(256);
    for bad in ["", "with space", "tab\t", "nl\n", "del\x7f", long.as_str()] {
        assert!(
            matches!(c.lock(bad).await, Err(Error::BadName(_))),
            "lock {bad:?}"
        );
        assert!(matches!(c.share(bad).await, Err(Error::BadName(_))));
        assert!(matches!(c.inspect(bad).await, Err(Error::BadName(_))));
        assert!(matches!(c.unlock(bad, None).await, Err(Error::BadName(_))));
        assert!(matches!(c.extend(bad, 1, 1).await, Err(Error::BadName(_))));
    }
    assert!(matches!(
        c.share("q").max(0).await,
        Err(Error::BadOption(_))
    ));
    assert!(matches!(c.lock("q").max(2).await, Err(Error::BadOption(_))));
    assert!(matches!(
        c.lock("q").keep_alive(true).await,
        Err(Error::BadOption(_))
    ));
    // A lease too short to renew with a round trip in between.
    let short = lockbox_client::MIN_KEEP_ALIVE_HOLD_MS - 1;
    assert!(matches!(
        c.lock("q").hold(short).keep_alive(true).await,
        Err(Error::BadOption(_))
    ));
    assert!(matches!(
        c.set_name(&"n".repeat(65)).await,
        Err(Error::BadName(_))
    ));
    assert!(matches!(
        c.cancel("bad id").await,
        Err(Error::BadRequest(_))
    ));
    assert!(matches!(
        c.auth("two words").await,
        Err(Error::BadRequest(_))
    ));
    assert!(matches!(c.list(Some("a b")).await, Err(Error::BadName(_))));
    // Nothing of that reached the server: only the raw client's own STATS line.
    let after = raw.stat("bytes_in");
    assert_eq!(after - before, "s STATS\n".len() as u64);
    // The longest valid name and a UTF-8 name work.
    let g = c.lock("x".repeat(255)).wait(0).await.unwrap();
    let u = c.lock("verrou:été").wait(0).await.unwrap();
    assert!(u.token() > g.token());
}

fn auth_config(secret: &str) -> Config {
    let dir = std::env::temp_dir().join(format!(
        "lockbox-client-auth-{}-{}",
        std::process::id(),
        secret
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("secret");
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    Config {
        auth_file: Some(path),
        ..Config::default()
    }
}

#[tokio::test]
async fn auth_right_and_wrong() {
    let addr = start_with(auth_config("right-secret"));
    // Right secret: everything works, and NAME is applied after it.
    let opts = ConnectOptions::new().auth("right-secret").name("authed");
    let c = Client::connect_with(&addr, opts).await.unwrap();
    let g = c.lock("a:1").wait(0).await.unwrap();
    assert_eq!(c.whoami().await.unwrap().name, "authed");
    g.release().await.unwrap();

    // Wrong secret: connect fails with AuthFailed.
    let bad = Client::connect_with(&addr, ConnectOptions::new().auth("wrong")).await;
    assert!(matches!(bad, Err(Error::AuthFailed(_))), "{bad:?}");

    // No secret: connecting works (PING is allowed), locking says auth_required.
    let none = Client::connect(&addr).await.unwrap();
    assert!(matches!(
        none.lock("a:1").await,
        Err(Error::AuthRequired(_))
    ));
    // AUTH later on the same connection unlocks it.
    none.auth("right-secret").await.unwrap();
    none.lock("a:1")
        .wait(0)
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
}

#[tokio::test]
async fn connect_errors() {
    // Nothing listens on a freshly closed port: refused, not a hang.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = Client::connect(format!("127.0.0.1:{port}")).await;
    assert!(matches!(r, Err(Error::Io(_))), "{r:?}");
    // A listener that never answers the handshake: connect timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let opts = ConnectOptions::new().connect_timeout(std::time::Duration::from_millis(200));
    let r = Client::connect_with(&addr, opts).await;
    assert!(matches!(r, Err(Error::ConnectTimeout(_))), "{r:?}");
    // A bad client name is refused before connecting.
    let r = Client::connect_with(&addr, ConnectOptions::new().name("a b")).await;
    assert!(matches!(r, Err(Error::BadName(_))), "{r:?}");
}
