//! The live area of tty progress, as BuildKit's tty display has it: step lines scroll up
//! as usual, and below them the last lines of each running command's output are redrawn
//! in place (cursor up over the old area, clear to the end of the screen, draw again), one
//! row per line cut to the terminal's width so the row count stays exact. When a command
//! ends its rows go; a failed step prints what it kept of its output.
//!
//! The methods return the bytes to write, so the rendering is testable without a terminal.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write;

/// Rows of output shown per running command.
pub const TAIL_ROWS: usize = 6;
/// Lines kept per step, shown when it fails.
const KEEP_LINES: usize = 100;
/// Characters kept per line.
const KEEP_CHARS: usize = 1024;

#[derive(Debug)]
pub struct Screen {
    /// Running commands by step number.
    tails: BTreeMap<usize, Tail>,
    /// Output kept from finished commands of steps not finished yet.
    kept: HashMap<usize, VecDeque<String>>,
    /// Rows of the live area on the terminal now.
    drawn: usize,
    /// The terminal's columns.
    pub width: usize,
}

#[derive(Debug, Default)]
struct Tail {
    lines: VecDeque<String>,
    /// The line being written (no newline yet).
    partial: Vec<u8>,
}

impl Tail {
    fn push(&mut self, line: String) {
        if self.lines.len() == KEEP_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }
}

impl Screen {
    pub fn new(width: usize) -> Screen {
        Screen {
            tails: BTreeMap::new(),
            kept: HashMap::new(),
            drawn: 0,
            width,
        }
    }

    /// A line above the live area.
    pub fn line(&mut self, text: &str) -> String {
        let mut out = self.clear();
        out.push_str(text);
        out.push('\n');
        self.draw(&mut out);
        out
    }

    /// Output of step `step`'s command; its tail shows from the first output on.
    pub fn output(&mut self, step: usize, bytes: &[u8]) -> String {
        let tail = self.tails.entry(step).or_default();
        for &b in bytes {
            if b == b'\n' {
                let line = clean(&tail.partial);
                tail.partial.clear();
                tail.push(line);
            } else if tail.partial.len() < KEEP_CHARS * 4 {
                tail.partial.push(b);
            }
        }
        let mut out = self.clear();
        self.draw(&mut out);
        out
    }

    /// Step `step`'s command ended: its rows go, its output is kept for [`Screen::end`].
    pub fn close(&mut self, step: usize) -> String {
        let mut out = self.clear();
        if let Some(mut tail) = self.tails.remove(&step) {
            if !tail.partial.is_empty() {
                let line = clean(&tail.partial);
                tail.push(line);
            }
            let kept = self.kept.entry(step).or_default();
            for line in tail.lines {
                if kept.len() == KEEP_LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        }
        self.draw(&mut out);
        out
    }

    /// Step `step` is over: a failed one (`failed`) prints the output it kept, as
    /// `#N line`, before `text`; then `text` as a line.
    pub fn end(&mut self, step: usize, failed: bool, text: &str) -> String {
        let kept = self.kept.remove(&step).unwrap_or_default();
        self.tails.remove(&step);
        let mut out = self.clear();
        if failed {
            for line in kept {
                let _ = writeln!(out, "#{step} {line}");
            }
        }
        out.push_str(text);
        out.push('\n');
        self.draw(&mut out);
        out
    }

    /// Moves the cursor back over the live area and clears it.
    fn clear(&mut self) -> String {
        let out = match self.drawn {
            0 => String::new(),
            n => format!("\x1b[{n}A\r\x1b[J"),
        };
        self.drawn = 0;
        out
    }

    fn draw(&mut self, out: &mut String) {
        let width = self.width.max(20);
        for (step, tail) in &self.tails {
            let partial = (!tail.partial.is_empty()).then(|| clean(&tail.partial));
            let shown = tail.lines.len() + usize::from(partial.is_some());
            let skip = shown.saturating_sub(TAIL_ROWS);
            let rows = tail.lines.iter().cloned().chain(partial).skip(skip);
            for row in rows {
                let prefix = format!("#{step} > ");
                let room = width.saturating_sub(prefix.chars().count() + 1);
                let text: String = row.chars().take(room).collect();
                let _ = writeln!(out, "\x1b[2m{prefix}{text}\x1b[0m");
                self.drawn += 1;
            }
        }
    }
}

/// A line of command output made safe to draw: what follows the last carriage return
/// (progress bars redraw their line that way), escape sequences and other control
/// characters dropped, tabs as spaces, cut to `KEEP_CHARS`.
fn clean(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.rsplit('\r').next().unwrap_or_default();
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                // CSI: ESC [ parameters, then a final byte in @..~; other escapes: one char.
                if chars.next_if_eq(&'[').is_some() {
                    while chars.next().is_some_and(|c| !('@'..='~').contains(&c)) {}
                } else {
                    chars.next();
                }
            }
            '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
        if out.len() >= KEEP_CHARS {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_shows_the_last_rows_and_redraws_in_place() {
        let mut s = Screen::new(80);
        let first = s.output(3, b"one\ntwo\npart");
        assert_eq!(
            first,
            "\x1b[2m#3 > one\x1b[0m\n\x1b[2m#3 > two\x1b[0m\n\x1b[2m#3 > part\x1b[0m\n"
        );
        let text: String = (1..=10).map(|i| format!("l{i}\n")).collect();
        let next = s.output(3, text.as_bytes());
        // Back over the 3 rows drawn, then the last 6 lines.
        assert!(next.starts_with("\x1b[3A\r\x1b[J"), "{next:?}");
        let rows: Vec<&str> = next.lines().collect();
        assert_eq!(rows.len(), TAIL_ROWS);
        assert!(rows[0].ends_with("#3 > l5\x1b[0m"), "{rows:?}");
        assert!(rows[5].ends_with("#3 > l10\x1b[0m"), "{rows:?}");

        // A step line goes above the live area, which is drawn again below it.
        let line = s.line("#4 [stage-0 3/3] COPY a b");
        assert!(line.starts_with("\x1b[6A\r\x1b[J#4 [stage-0 3/3] COPY a b\n"));
        assert_eq!(line.matches("#3 > ").count(), TAIL_ROWS);

        // Closed: the rows go.
        assert_eq!(s.close(3), "\x1b[6A\r\x1b[J");
        assert_eq!(s.line("x"), "x\n");
    }

    #[test]
    fn a_failed_step_prints_its_output() {
        let mut s = Screen::new(80);
        s.output(2, b"a\nb\nlast words");
        s.close(2);
        assert_eq!(
            s.end(2, true, "#2 ERROR: exit 1"),
            "#2 a\n#2 b\n#2 last words\n#2 ERROR: exit 1\n"
        );
        s.output(5, b"quiet\n");
        s.close(5);
        assert_eq!(s.end(5, false, "#5 DONE 0.1s"), "#5 DONE 0.1s\n");
    }

    #[test]
    fn rows_are_cleaned_and_cut_to_the_width() {
        assert_eq!(clean(b"10%\r50%\r100% done"), "100% done");
        assert_eq!(clean(b"\x1b[1;31mred\x1b[0m\tx\x07"), "red x");
        let mut s = Screen::new(20);
        let out = s.output(1, "é".repeat(50).as_bytes());
        let row = out.trim_end_matches('\n');
        let shown = row
            .trim_start_matches("\x1b[2m#1 > ")
            .trim_end_matches("\x1b[0m");
        assert_eq!(shown.chars().count(), 20 - "#1 > ".len() - 1);
    }
}
