//! BuildKit-style progress: `#N [stage i/n] INSTRUCTION`, then `#N DONE 0.1s` (or
//! `#N CACHED`, `#N ERROR: ...`), on stderr. In plain mode a RUN's output lines appear as
//! `#N 0.123 line`; in tty mode the last lines of each running command are redrawn in place
//! below the step lines ([`screen`]), and a failed step prints the output it kept.

mod screen;

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::options::ProgressMode;
use screen::Screen;

#[derive(Debug)]
pub struct Progress {
    out: Out,
    next: usize,
}

/// A step being shown.
#[derive(Debug, Clone)]
pub struct Step {
    pub number: usize,
    started: Instant,
    out: Out,
}

/// Where progress goes: straight to stderr (plain), or through the tty live area.
#[derive(Debug, Clone)]
struct Out {
    screen: Option<Arc<Mutex<Screen>>>,
}

impl Out {
    /// Runs `f` on the live area (tty mode) and writes what it drew; false in plain mode.
    fn with_screen(&self, f: impl FnOnce(&mut Screen) -> String) -> bool {
        let Some(screen) = &self.screen else {
            return false;
        };
        let mut screen = screen.lock().unwrap_or_else(PoisonError::into_inner);
        screen.width = terminal_width();
        let text = f(&mut screen);
        // Written under the lock, so draws never interleave.
        write_err(&text);
        true
    }

    fn line(&self, text: &str) {
        if !self.with_screen(|s| s.line(text)) {
            write_err(&format!("{text}\n"));
        }
    }

    /// The last line of step `step`: in tty mode a failed step's kept output comes first.
    fn end(&self, step: usize, failed: bool, text: &str) {
        if !self.with_screen(|s| s.end(step, failed, text)) {
            write_err(&format!("{text}\n"));
        }
    }
}

/// Where a command's stdout and stderr go, and the thread relaying them.
#[derive(Debug)]
pub struct CommandOutput {
    pub stdout: Stdio,
    pub stderr: Stdio,
    relay: Option<JoinHandle<()>>,
}

impl CommandOutput {
    /// Waits until everything the command wrote is shown. Call after the command exited and
    /// the Command holding the Stdio ends was dropped.
    pub fn finish(self) {
        if let Some(relay) = self.relay {
            let _ = relay.join();
        }
    }
}

impl Progress {
    pub fn new(mode: ProgressMode) -> Self {
        let screen = match mode {
            ProgressMode::Plain => None,
            ProgressMode::Tty => Some(Arc::new(Mutex::new(Screen::new(terminal_width())))),
        };
        Progress {
            out: Out { screen },
            next: 1,
        }
    }

    pub fn start(&mut self, label: &str, text: &str) -> Step {
        let number = self.next;
        self.next += 1;
        self.out.line(&format!("#{number} [{label}] {text}"));
        Step {
            number,
            started: Instant::now(),
            out: self.out.clone(),
        }
    }

    pub fn note(&mut self, text: &str) {
        let number = self.next;
        self.next += 1;
        self.out.line(&format!("#{number} {text}"));
        self.out.line(&format!("#{number} DONE 0.0s"));
    }
}

impl Step {
    /// The stdout and stderr for a command this step runs: a pipe whose lines a thread
    /// shows, timed in plain mode, in the live tail in tty mode.
    pub fn command_output(&self) -> std::io::Result<CommandOutput> {
        let (read, write): (OwnedFd, OwnedFd) = nix::unistd::pipe()?;
        let write2 = write.try_clone()?;
        let number = self.number;
        let relay = match &self.out.screen {
            None => {
                let started = self.started;
                let out = self.out.clone();
                std::thread::spawn(move || {
                    for chunk in BufReader::new(File::from(read)).split(b'\n') {
                        let Ok(chunk) = chunk else { break };
                        let text = String::from_utf8_lossy(&chunk);
                        out.line(&format!(
                            "#{number} {:.3} {text}",
                            started.elapsed().as_secs_f64()
                        ));
                    }
                })
            }
            Some(_) => {
                let out = self.out.clone();
                std::thread::spawn(move || {
                    let mut input = File::from(read);
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = input.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        out.with_screen(|s| s.output(number, &buf[..n]));
                    }
                    out.with_screen(|s| s.close(number));
                })
            }
        };
        Ok(CommandOutput {
            stdout: Stdio::from(write),
            stderr: Stdio::from(write2),
            relay: Some(relay),
        })
    }

    pub fn done(&self) {
        let text = format!(
            "#{} DONE {:.1}s",
            self.number,
            self.started.elapsed().as_secs_f64()
        );
        self.out.end(self.number, false, &text);
    }

    /// The step's result came from the build cache.
    pub fn cached(&self) {
        self.out
            .end(self.number, false, &format!("#{} CACHED", self.number));
    }

    pub fn error(&self, message: &str) {
        let text = format!("#{} ERROR: {message}", self.number);
        self.out.end(self.number, true, &text);
    }
}

fn write_err(text: &str) {
    let mut err = std::io::stderr().lock();
    // Progress is best effort: a closed stderr must not fail the build.
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// Columns of the terminal on stderr; 80 when it is not one.
fn terminal_width() -> usize {
    let stderr = std::io::stderr();
    let fd = stderr.as_fd();
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into `size`, which outlives the call; the fd is
    // borrowed from stderr for the duration.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
    if rc == 0 && size.ws_col > 0 {
        usize::from(size.ws_col)
    } else {
        80
    }
}
