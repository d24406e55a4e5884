//! Fencing tokens: the storage refuses a write carrying an older token than one it has
//! already seen, so a client that lost its lock (a long pause, an expired lease) cannot
//! overwrite the work of the next holder.
//!
//! ```sh
//! cargo run -p lockbox-client --example fencing -- 127.0.0.1:7654
//! ```

use lockbox_client::{Client, Error};
use std::sync::Mutex;
use std::time::Duration;

/// A stand-in for the protected storage: it remembers the highest token it accepted.
#[derive(Default)]
struct Storage {
    highest_token: Mutex<u64>,
    value: Mutex<String>,
}

impl Storage {
    fn write(&self, token: u64, value: &str) -> Result<(), String> {
        let mut highest = self.highest_token.lock().unwrap();
        if token < *highest {
            return Err(format!("token {token} is older than {}: refused", *highest));
        }
        *highest = token;
        *self.value.lock().unwrap() = value.to_string();
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7654".into());
    let storage = Storage::default();
    let slow = Client::connect(addr.clone()).await?;
    let fast = Client::connect(addr).await?;

    // The slow client takes the lock with a short lease, then stalls past it.
    let stale = slow.lock("file:report").hold(200).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!("slow client's lease: {:?}", stale.is_lost());

    // Meanwhile another client gets the lock and writes with its newer token.
    let fresh = fast.lock("file:report").wait(2000).await?;
    storage
        .write(fresh.token(), "written by the new holder")
        .unwrap();

    // The slow client wakes up and tries to write: the storage refuses it.
    match storage.write(stale.token(), "stale write") {
        Ok(()) => println!("stale write accepted (should not happen)"),
        Err(e) => println!("stale write refused: {e}"),
    }
    println!("storage holds: {}", storage.value.lock().unwrap());
    fresh.release().await
}
