//! A counted lock (semaphore): at most 3 of 10 tasks use a rate-limited API at once.
//!
//! ```sh
//! cargo run -p lockbox-client --example semaphore -- 127.0.0.1:7654
//! ```

use lockbox_client::{Client, Error};
use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7654".into());
    let client = Client::connect(addr).await?;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            // SHARE with max=3: granted only while fewer than 3 shared holds exist.
            let permit = client.share("api:quota").max(3).wait(30_000).await?;
            println!(
                "task {i}: in ({} of at most 3 holders at the grant)",
                permit.holders().unwrap_or(0)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            permit.release().await
        }));
    }
    for t in tasks {
        t.await.expect("task")?;
    }
    Ok(())
}
