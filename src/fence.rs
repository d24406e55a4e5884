//! Fencing tokens: one strictly increasing `u64` per grant, also across restarts.
//!
//! Without a state file the counter starts at the wall clock in nanoseconds since the
//! Unix epoch: a restarted instance continues above every token it issued before, as
//! long as the clock did not go back (and it issued fewer than one token per
//! nanosecond of uptime).
//!
//! With a state file (`--state-file`) the guarantee survives crashes and a clock that
//! goes back: before the counter passes the end of its current *reservation*, the next
//! reservation (`RESERVATION` tokens ahead) is written to a temporary file, fsynced,
//! renamed over the state file and the directory fsynced. On start the counter begins
//! at the larger of the clock and the recorded reservation end, so it is above every
//! token any earlier run can have issued. A crash loses at most the unused rest of one
//! reservation (a gap in the sequence, never a repeat). The write blocks the poll loop
//! once per `RESERVATION` grants (about a millisecond on a local disk).
//!
//! # Invariant
//! Every value returned by [`Fence::issue`] is greater than every value returned before
//! by this fence, and — with a state file — by every fence that used the same file.
//!
//! # State file format
//! One line: `lockbox-fence 1 <reservation-end>\n` (decimal). Anything else is corrupt
//! and stops startup.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Tokens reserved per state-file write.
pub const RESERVATION: u64 = 1_000_000;
const MAGIC: &str = "lockbox-fence 1 ";

/// The token counter.
#[derive(Debug)]
pub struct Fence {
    next: u64,
    /// First token not covered by the persisted reservation (`u64::MAX` without a file).
    reserved_end: u64,
    state: Option<PathBuf>,
}

impl Fence {
    /// A counter whose first token is `first`, with no state file.
    pub fn starting_at(first: u64) -> Self {
        Fence {
            next: first.max(1),
            reserved_end: u64::MAX,
            state: None,
        }
    }

    /// A counter seeded from the wall clock (nanoseconds since the Unix epoch).
    pub fn from_wall_clock() -> Self {
        Fence::starting_at(wall_clock_ns())
    }

    /// A counter backed by the state file at `path`, with the clock reading `now_ns`.
    ///
    /// A missing file is created. An unreadable or corrupt one is an error: starting
    /// anyway could repeat tokens.
    pub fn with_state_file(path: &Path, now_ns: u64) -> Result<Self, String> {
        let recorded = match fs::read_to_string(path) {
            Ok(text) => parse_state(&text).ok_or_else(|| {
                format!(
                    "state file {} is corrupt (expected '{MAGIC}<number>')",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(format!("cannot read state file {}: {e}", path.display())),
        };
        let first = now_ns.max(recorded).max(1);
        let mut fence = Fence {
            next: first,
            reserved_end: first,
            state: Some(path.to_path_buf()),
        };
        fence
            .reserve()
            .map_err(|e| format!("cannot write state file {}: {e}", path.display()))?;
        Ok(fence)
    }

    /// The next token; strictly greater than every earlier one.
    pub fn issue(&mut self) -> u64 {
        if self.next >= self.reserved_end {
            if let Err(e) = self.reserve() {
                // Keep serving: tokens still increase within this run; only the
                // guarantee across a crash with a clock step back is weakened.
                log::error!("cannot extend the fencing-token reservation: {e}");
                self.reserved_end = self.next.saturating_add(RESERVATION);
            }
        }
        let t = self.next;
        self.next = t.checked_add(1).expect("fencing token space exhausted");
        t
    }

    /// The token the next grant will get.
    pub fn peek(&self) -> u64 {
        self.next
    }

    /// Persists `next + RESERVATION` as the new reservation end.
    fn reserve(&mut self) -> io::Result<()> {
        let Some(path) = &self.state else {
            return Ok(());
        };
        let end = self.next.saturating_add(RESERVATION);
        let tmp = path.with_extension("tmp");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(format!("{MAGIC}{end}\n").as_bytes())?;
            f.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(dir)?.sync_all()?;
        self.reserved_end = end;
        Ok(())
    }
}

fn parse_state(text: &str) -> Option<u64> {
    let digits = text.strip_prefix(MAGIC)?.strip_suffix('\n')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Nanoseconds since the Unix epoch (0 if the clock is before it).
pub fn wall_clock_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lockbox-fence-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir.join("state")
    }

    #[test]
    fn increases_without_file() {
        let mut f = Fence::starting_at(10);
        let (a, b) = (f.issue(), f.issue());
        assert_eq!((a, b), (10, 11));
        assert_eq!(f.peek(), 12);
    }

    #[test]
    fn restart_with_clock_set_back_stays_above() {
        let path = scratch("back");
        let mut f = Fence::with_state_file(&path, 5_000_000).unwrap();
        let mut last = 0;
        for _ in 0..(2 * RESERVATION + 10) {
            let t = f.issue();
            assert!(t > last);
            last = t;
        }
        drop(f); // a crash: no orderly shutdown is needed
                 // The clock went back to 1: the new run must still start above `last`.
        let mut g = Fence::with_state_file(&path, 1).unwrap();
        let first = g.issue();
        assert!(first > last, "restart issued {first} <= {last}");
        // And the clock ahead of the file wins when it is larger.
        drop(g);
        let mut h = Fence::with_state_file(&path, u64::MAX / 2).unwrap();
        assert_eq!(h.issue(), u64::MAX / 2);
    }

    #[test]
    fn missing_file_is_created_corrupt_file_refused() {
        let path = scratch("corrupt");
        Fence::with_state_file(&path, 42).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{MAGIC}{}\n", 42 + RESERVATION));
        for bad in [
            "",
            "garbage\n",
            "lockbox-fence 1 12x\n",
            "lockbox-fence 1 12",
            "lockbox-fence 2 5\n",
        ] {
            fs::write(&path, bad).unwrap();
            let err = Fence::with_state_file(&path, 1).unwrap_err();
            assert!(err.contains("corrupt"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn unreadable_path_is_an_error() {
        let path = scratch("dir");
        fs::create_dir_all(&path).unwrap(); // a directory where the file should be
        assert!(Fence::with_state_file(&path, 1).is_err());
    }
}
