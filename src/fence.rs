//! Fencing tokens: one strictly increasing `u64` per grant, also across restarts.
//!
//! Without a state file the counter starts at the wall clock in nanoseconds since the
//! Unix epoch: a restarted instance continues above every token it issued before, as
//! long as the clock did not go back (and it issued fewer than one token per
//! nanosecond of uptime).
//!
//! With a state file (`--state-file`) the guarantee survives crashes and a clock that
//! goes back: before the counter passes the end of its current *reservation*, the next
//! reservation (`RESERVATION` tokens ahead) is written to a temporary file next to the
//! state file, fsynced, renamed over the state file and the directory fsynced. On start
//! the counter begins at the larger of the clock and the recorded reservation end, so it
//! is above every token any earlier run can have issued. A crash loses at most the
//! unused rest of one reservation (a gap in the sequence, never a repeat). The write
//! blocks the poll loop once per `RESERVATION` grants (about a millisecond on a local
//! disk).
//!
//! # Invariants
//! - Every value returned by [`Fence::issue`] is greater than every value returned
//!   before by this fence, and (with a state file) by every earlier run that used the
//!   same file. Two processes using one state file *at the same time* is a
//!   misconfiguration this module does not detect.
//! - The temporary file is `<state file name>.<pid>.tmp` in the state file's directory
//!   ([`temp_path`]): unique to the state file and to the process. Instances whose state
//!   files share a directory (`fence.7001`, `fence.7002`) never write each other's
//!   temporary file, and a state file named `x.tmp` is never its own temporary file (it
//!   is never truncated in place). A crash between the write and the rename can leave
//!   the temporary file behind; it is never read and may be deleted.
//! - The token space never runs out during a run. A run starts only if at least
//!   [`MIN_HEADROOM`] (2^60) tokens remain above its first token; otherwise startup fails
//!   with a message (the binary exits with status 2). At one grant per nanosecond, far
//!   faster than the poll loop can grant, 2^60 tokens last over 36 years of uptime.
//!   Checking for only a reservation's worth would not be enough: a run that starts with
//!   one and a half reservations left passes that check and reaches the end of the space
//!   after 1.5 million grants, seconds at full load. `issue` still checks for the end (a
//!   fence built with [`Fence::starting_at`] skips the startup check): rather than hand
//!   out a repeated token or panic, it logs an error and exits the process with status 2,
//!   and a restart with the same state file refuses to start with the same message, so
//!   the server never serves with broken fencing.
//!
//! # State file format
//! One line: `lockbox-fence 1 <reservation-end>\n` (decimal). Anything else is corrupt
//! and stops startup.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Tokens reserved per state-file write.
pub const RESERVATION: u64 = 1_000_000;
/// Tokens that must remain above a run's first token for it to start (2^60).
pub const MIN_HEADROOM: u64 = 1 << 60;
/// Exit status when the token space runs out at runtime (the same as a refused start).
const EXIT_EXHAUSTED: i32 = 2;
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
    /// A counter whose first token is `first`, with no state file and no headroom check
    /// (for tests and callers that chose `first` themselves).
    pub fn starting_at(first: u64) -> Self {
        Fence {
            next: first.max(1),
            reserved_end: u64::MAX,
            state: None,
        }
    }

    /// A counter seeded from the wall clock (nanoseconds since the Unix epoch).
    ///
    /// An error if fewer than [`MIN_HEADROOM`] tokens remain above the clock (a clock
    /// set past the year 2500).
    pub fn from_wall_clock() -> Result<Self, String> {
        let now = wall_clock_ns();
        check_headroom(now).map_err(|left| {
            format!(
                "fencing tokens would start at the clock, {now} ns since 1970, where only \
                 {left} of the 64-bit token space remain (at least {MIN_HEADROOM} needed): \
                 check the system clock"
            )
        })?;
        Ok(Fence::starting_at(now))
    }

    /// A counter backed by the state file at `path`, with the clock reading `now_ns`.
    ///
    /// A missing file is created. An unreadable or corrupt one is an error: starting
    /// anyway could repeat tokens. So is a first token with fewer than [`MIN_HEADROOM`]
    /// tokens above it; the file is then left as it is.
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
        check_headroom(first).map_err(|left| {
            format!(
                "fencing token space nearly exhausted: state file {} records {recorded}, so \
                 tokens would start at {first} with only {left} left (at least {MIN_HEADROOM} \
                 needed); start with a new state file only if every store that checks these \
                 tokens is reset too",
                path.display()
            )
        })?;
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
    ///
    /// Never returns a repeated token: at the end of the token space (unreachable after
    /// the startup headroom check, see the module's invariants) it exits the process.
    #[inline]
    pub fn issue(&mut self) -> u64 {
        if self.next >= self.reserved_end {
            self.extend_reservation();
        }
        let t = self.next;
        match t.checked_add(1) {
            Some(next) => self.next = next,
            None => exhausted(),
        }
        t
    }

    /// Reserves the next block of tokens (the slow path of [`Fence::issue`], once per
    /// reservation).
    #[cold]
    fn extend_reservation(&mut self) {
        if let Err(e) = self.reserve() {
            // Keep serving: tokens still increase within this run; only the
            // guarantee across a crash with a clock step back is weakened.
            log::error!("cannot extend the fencing-token reservation: {e}");
            self.reserved_end = self.next.saturating_add(RESERVATION);
        }
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
        let tmp = temp_path(path);
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

/// The temporary file a reservation is written to before it is renamed over `state`:
/// `<state file name>.<pid>.tmp` in the same directory (a rename must not cross file
/// systems), so it is unique to the state file and to this process.
pub fn temp_path(state: &Path) -> PathBuf {
    let mut name = state.file_name().map(OsString::from).unwrap_or_default();
    name.push(format!(".{}.tmp", std::process::id()));
    state.with_file_name(name)
}

/// `Ok` if at least [`MIN_HEADROOM`] tokens remain above `first`, else how many do.
fn check_headroom(first: u64) -> Result<(), u64> {
    match u64::MAX - first {
        left if left >= MIN_HEADROOM => Ok(()),
        left => Err(left),
    }
}

/// The end of the token space: no token is left that is greater than the last one.
#[cold]
fn exhausted() -> ! {
    log::error!(
        "fencing token space exhausted: stopping rather than repeat a token (a restart \
         refuses to start until the state file is replaced)"
    );
    std::process::exit(EXIT_EXHAUSTED)
}

fn parse_state(text: &str) -> Option<u64> {
    let digits = text.strip_prefix(MAGIC)?.strip_suffix('\n')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Nanoseconds since the Unix epoch (0 if the clock is before it, `u64::MAX` past 2554).
pub fn wall_clock_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lockbox-fence-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn scratch(name: &str) -> PathBuf {
        scratch_dir(name).join("state")
    }

    fn recorded(path: &Path) -> u64 {
        parse_state(&fs::read_to_string(path).unwrap()).unwrap()
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

    #[test]
    fn temp_file_is_unique_to_the_state_file_and_the_process() {
        let pid = std::process::id();
        let a = temp_path(Path::new("/var/lib/lockbox/fence.7001"));
        let b = temp_path(Path::new("/var/lib/lockbox/fence.7002"));
        assert_eq!(
            a,
            PathBuf::from(format!("/var/lib/lockbox/fence.7001.{pid}.tmp"))
        );
        assert_ne!(a, b);
        // A state file named like a temporary file is not its own temporary file.
        let x = Path::new("x.tmp");
        assert_eq!(temp_path(x), PathBuf::from(format!("x.tmp.{pid}.tmp")));
        assert_ne!(temp_path(x), x);
        // Same directory: the rename never crosses file systems.
        assert_eq!(temp_path(x).parent(), x.parent());
    }

    /// Two instances whose state files share a directory, extending their reservations
    /// at the same time. With a shared temporary file one renamed the other's
    /// reservation over its own file, and a restart with the clock set back then issued
    /// tokens below its last one.
    #[test]
    fn two_state_files_in_one_directory_stay_apart() {
        const ROUNDS: usize = 150;
        let dir = scratch_dir("pair");
        let paths = [dir.join("fence.7001"), dir.join("fence.7002")];
        // Far apart, the higher one first, so a file holding the other's reservation
        // makes its restart go backwards.
        let starts = [1u64 << 50, 1u64 << 40];
        // Both start first (one after the other), then extend at the same time.
        let fences: Vec<_> = paths
            .iter()
            .zip(starts)
            .map(|(path, start)| (path.clone(), Fence::with_state_file(path, start).unwrap()))
            .collect();
        let runs: Vec<_> = fences
            .into_iter()
            .map(|(path, mut f)| {
                std::thread::spawn(move || {
                    let mut last = 0;
                    for _ in 0..ROUNDS {
                        // As if the whole reservation had been issued: the next grant
                        // writes a new one.
                        f.next = f.reserved_end;
                        let t = f.issue();
                        assert!(t > last, "{}: {t} after {last}", path.display());
                        last = t;
                        assert_eq!(
                            recorded(&path),
                            f.reserved_end,
                            "{} holds another reservation than its own",
                            path.display()
                        );
                    }
                    drop(f); // a crash: nothing is written on the way out
                    let mut g = Fence::with_state_file(&path, 1).unwrap(); // clock set back
                    let first = g.issue();
                    assert!(
                        first > last,
                        "{}: restart issued {first} <= {last}",
                        path.display()
                    );
                })
            })
            .collect();
        for r in runs {
            r.join().unwrap();
        }
        let mut left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["fence.7001", "fence.7002"],
            "temporary files left behind"
        );
    }

    #[test]
    fn state_file_named_tmp_is_written_through_a_separate_file() {
        let path = scratch_dir("tmpname").join("x.tmp");
        let mut f = Fence::with_state_file(&path, 100).unwrap();
        f.next = f.reserved_end;
        let t = f.issue();
        assert_eq!(t, 100 + RESERVATION);
        assert_eq!(recorded(&path), 100 + 2 * RESERVATION);
        assert!(!temp_path(&path).exists());
    }

    #[test]
    fn too_little_token_space_refuses_to_start_and_leaves_the_file() {
        let path = scratch("exhausted");
        for end in [
            u64::MAX,
            u64::MAX - 2,
            u64::MAX - RESERVATION,
            u64::MAX - MIN_HEADROOM + 1,
        ] {
            let line = format!("{MAGIC}{end}\n");
            fs::write(&path, &line).unwrap();
            let err = Fence::with_state_file(&path, 1).unwrap_err();
            assert!(
                err.contains("exhausted") && err.contains(&end.to_string()),
                "{err}"
            );
            assert!(!err.contains('\n'), "one line: {err:?}");
            assert_eq!(fs::read_to_string(&path).unwrap(), line, "file rewritten");
        }
        // Exactly the headroom left: starts, and the first token is the recorded end.
        let end = u64::MAX - MIN_HEADROOM;
        fs::write(&path, format!("{MAGIC}{end}\n")).unwrap();
        let mut f = Fence::with_state_file(&path, 1).unwrap();
        assert_eq!((f.issue(), f.issue()), (end, end + 1));
        // The clock is checked the same way.
        assert!(check_headroom(u64::MAX - MIN_HEADROOM).is_ok());
        assert_eq!(check_headroom(u64::MAX - 5), Err(5));
        assert!(Fence::from_wall_clock().is_ok());
    }
}
