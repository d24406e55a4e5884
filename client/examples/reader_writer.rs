//! A read/write lock: readers share, a writer is exclusive, and a waiting writer is not
//! starved by new readers (the server's queue is FIFO for both kinds).
//!
//! ```sh
//! cargo run -p lockbox-client --example reader_writer -- 127.0.0.1:7654
//! ```

use lockbox_client::{Client, Error};
use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7654".into());
    let client = Client::connect(addr).await?;

    let r1 = client.share("config").await?;
    let r2 = client.share("config").await?;
    println!(
        "two readers: holders {:?} and {:?}",
        r1.holders(),
        r2.holders()
    );

    // The writer waits for both readers.
    let writer = tokio::spawn({
        let client = client.clone();
        async move {
            let w = client.lock("config").wait(5000).await?;
            println!("writer in (token {})", w.token());
            w.release().await
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let info = client.inspect("config").await?;
    println!("while the writer waits: {info:?}");
    // A new reader queues behind the waiting writer.
    let late_reader = tokio::spawn({
        let client = client.clone();
        async move {
            let r = client.share("config").wait(5000).await?;
            println!("late reader in after the writer (token {})", r.token());
            r.release().await
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    r1.release().await?;
    r2.release().await?;
    writer.await.expect("writer")?;
    late_reader.await.expect("reader")?;
    Ok(())
}
