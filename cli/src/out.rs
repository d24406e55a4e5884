//! Output: aligned tables for people, JSON lines for programs, and writing to stdout
//! without dying on a closed pipe (`lockbox-cli list | head -1`).

use std::io::Write;

use crate::exit::{Fail, SIGNAL_BASE};

/// SIGPIPE's number: a reader that went away ends the program as 128 + 13, silently,
/// as a shell reports a pipeline member killed by SIGPIPE.
const SIGPIPE: u8 = 13;

/// Writes `text` to stdout and flushes it.
pub fn print(text: &str) -> Result<(), Fail> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            Err(Fail::silent(SIGNAL_BASE + SIGPIPE))
        }
        Err(e) => Err(Fail::new(1, format!("cannot write to stdout: {e}"))),
    }
}

/// Writes `lockbox-cli: <msg>` on stderr (a closed stderr is ignored: nobody can read
/// the message anyway).
pub fn warn(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "lockbox-cli: {msg}");
}

/// One JSON value on a line of its own.
pub fn print_json(v: &serde_json::Value) -> Result<(), Fail> {
    print(&format!("{v}\n"))
}

/// How a column is aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    /// Text.
    Left,
    /// Numbers.
    Right,
}

/// A table with a header row; columns are two spaces apart, numbers right-aligned.
pub struct Table {
    head: Vec<(String, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles and alignments.
    pub fn new(head: &[(&str, Align)]) -> Table {
        Table {
            head: head.iter().map(|(h, a)| (h.to_string(), *a)).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (one cell per column).
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.head.len());
        self.rows.push(cells);
    }

    /// The table as text, a line per row, the header first.
    pub fn render(&self) -> String {
        let n = self.head.len();
        let mut width: Vec<usize> = self.head.iter().map(|(h, _)| h.chars().count()).collect();
        for r in &self.rows {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        let head: Vec<String> = self.head.iter().map(|(h, _)| h.clone()).collect();
        for r in std::iter::once(&head).chain(&self.rows) {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate() {
                let pad = width[i] - c.chars().count();
                if i > 0 {
                    line.push_str("  ");
                }
                match self.head[i].1 {
                    Align::Right => {
                        line.extend(std::iter::repeat_n(' ', pad));
                        line.push_str(c);
                    }
                    Align::Left => {
                        line.push_str(c);
                        if i + 1 < n {
                            line.extend(std::iter::repeat_n(' ', pad));
                        }
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `key  value` lines with the values aligned.
pub fn key_values(pairs: &[(&str, String)]) -> String {
    let w = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| format!("{k:<w$}  {v}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_text_left_and_numbers_right() {
        let mut t = Table::new(&[("NAME", Align::Left), ("HOLDERS", Align::Right)]);
        t.row(vec!["a".into(), "1".into()]);
        t.row(vec!["jobs:42".into(), "12345678".into()]);
        let want = [
            format!("NAME{}HOLDERS", " ".repeat(6)),
            format!("a{}1", " ".repeat(15)),
            "jobs:42  12345678".to_string(),
        ];
        assert_eq!(t.render(), want.map(|l| l + "\n").concat());
        let mut t = Table::new(&[("N", Align::Right), ("NAME", Align::Left)]);
        t.row(vec!["10".into(), "é".into()]);
        assert_eq!(t.render(), " N  NAME\n10  é\n");
    }

    #[test]
    fn key_value_lines() {
        assert_eq!(
            key_values(&[("mode", "free".into()), ("holders", "0".into())]),
            "mode     free\nholders  0\n"
        );
    }
}
