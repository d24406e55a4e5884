//! Lock a job so only one worker runs it, with a lease kept alive while working.
//!
//! ```sh
//! cargo run -p lockbox-client --example lock_job -- 127.0.0.1:7654
//! ```

use lockbox_client::{Client, ConnectOptions, Error};
use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7654".into());
    let client = Client::connect_with(addr, ConnectOptions::new().name("job-worker")).await?;

    // Wait up to 2 s; a 10 s lease that the client extends every ~3.3 s while we work,
    // so if this process dies the job is free again within 10 s.
    let guard = match client
        .lock("jobs:42")
        .wait(2000)
        .hold(10_000)
        .keep_alive(true)
        .await
    {
        Ok(g) => g,
        Err(Error::Timeout) => {
            println!("jobs:42 is being run by another worker");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    println!("running jobs:42 (token {})", guard.token());

    // Do the work, but stop if the lock is lost (lease expired, connection died).
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(500)) => println!("job done"),
        why = guard.lost() => {
            println!("lost the lock ({why:?}): abandoning the job");
            return Ok(());
        }
    }
    guard.release().await
}
