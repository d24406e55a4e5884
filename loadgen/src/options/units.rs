//! Time values on the command line: every time flag takes `500ms` or `3s` (fractions
//! allowed, `1.5s`), and a plain number in the flag's own unit (milliseconds for
//! `--work`, `--wait`, `--hold` and `--retry`, seconds for `--duration`, `--drain` and
//! `--timeout`), so the spellings from before units were accepted mean what they meant.

use std::time::Duration;

/// The unit of a plain number given to a time flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Unit {
    Millis,
    Secs,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Millis => "milliseconds",
            Unit::Secs => "seconds",
        }
    }

    /// The unit's suffix, as ranges are printed.
    pub(super) fn suffix(self) -> &'static str {
        match self {
            Unit::Millis => "ms",
            Unit::Secs => "s",
        }
    }
}

/// Parse a time value; `plain` is the unit of a number without a suffix. The error is
/// the text after `--flag: `.
pub(super) fn parse_time(s: &str, plain: Unit) -> Result<Duration, String> {
    let t = s.trim();
    let (number, unit) = if let Some(n) = t.strip_suffix("ms") {
        (n, Unit::Millis)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, Unit::Secs)
    } else {
        (t, plain)
    };
    let bad = || {
        format!(
            "'{s}' is not a time (write 500ms or 3s; a plain number is {})",
            plain.name()
        )
    };
    let v: f64 = number.trim_end().parse().map_err(|_| bad())?;
    if !v.is_finite() || v < 0.0 {
        return Err(bad());
    }
    let secs = match unit {
        Unit::Millis => v / 1000.0,
        Unit::Secs => v,
    };
    Duration::try_from_secs_f64(secs).map_err(|_| bad())
}

/// A time value as whole milliseconds (the flags sent to the server as `wait=` and
/// `hold=` and the work and retry timers count in milliseconds).
pub(super) fn whole_millis(s: &str, d: Duration) -> Result<u64, String> {
    let ms = d.as_secs_f64() * 1000.0;
    let rounded = ms.round();
    if (ms - rounded).abs() > 1e-6 {
        return Err(format!("'{s}' is not a whole number of milliseconds"));
    }
    Ok(rounded as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        let ms = |v| Duration::from_millis(v);
        assert_eq!(parse_time("500ms", Unit::Secs), Ok(ms(500)));
        assert_eq!(parse_time("3s", Unit::Millis), Ok(ms(3000)));
        assert_eq!(parse_time("1.5s", Unit::Millis), Ok(ms(1500)));
        assert_eq!(parse_time("1.5", Unit::Secs), Ok(ms(1500)));
        assert_eq!(parse_time("250", Unit::Millis), Ok(ms(250)));
        assert_eq!(parse_time(" 2 ms", Unit::Secs), Ok(ms(2)));
        assert_eq!(parse_time("0", Unit::Secs), Ok(Duration::ZERO));
        for bad in ["", "ms", "s", "-1s", "3m", "inf", "NaN", "1e400", "3 sec"] {
            let e = parse_time(bad, Unit::Secs).unwrap_err();
            assert!(
                e.contains("not a time") && e.contains("seconds"),
                "{bad}: {e}"
            );
        }
        assert!(parse_time("x", Unit::Millis)
            .unwrap_err()
            .contains("milliseconds"));
    }

    #[test]
    fn whole_milliseconds() {
        let d = parse_time("0.003s", Unit::Millis).unwrap();
        assert_eq!(whole_millis("0.003s", d), Ok(3));
        let d = parse_time("1.5ms", Unit::Millis).unwrap();
        assert!(whole_millis("1.5ms", d)
            .unwrap_err()
            .contains("whole number"));
        let d = parse_time("4294967.295s", Unit::Millis).unwrap();
        assert_eq!(whole_millis("", d), Ok(4_294_967_295));
    }
}
