//! The /proc parsers on known file contents, and one live read.

use super::*;

#[test]
fn proc_parsers() {
    let stat = "1234 (my (odd) prog) S 1 2 3 4 5 6 7 8 9 10 250 130 0 0 20 0 1 0";
    assert_eq!(parse_stat_cpu(stat), Some((2.5, 1.3)));
    let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
    assert_eq!(parse_status_kb(status), Some((1024, 2048)));
    assert_eq!(parse_status_kb("Name: x\n"), None);
    assert!(read_cpu_secs("/proc/self/stat").is_some());
}
