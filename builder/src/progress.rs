//! BuildKit-style progress: `#N [stage i/n] INSTRUCTION`, then `#N DONE 0.1s` (or
//! `#N CACHED`, `#N ERROR: ...`), on stderr. In plain mode a RUN's output lines appear as
//! `#N 0.123 line`; otherwise they stream to stderr as they are.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::Stdio;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::options::ProgressMode;

#[derive(Debug)]
pub struct Progress {
    mode: ProgressMode,
    next: usize,
}

/// A step being shown.
#[derive(Debug, Clone)]
pub struct Step {
    pub number: usize,
    started: Instant,
    mode: ProgressMode,
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
        Progress { mode, next: 1 }
    }

    pub fn start(&mut self, label: &str, text: &str) -> Step {
        let number = self.next;
        self.next += 1;
        line(&format!("#{number} [{label}] {text}"));
        Step {
            number,
            started: Instant::now(),
            mode: self.mode,
        }
    }

    pub fn note(&mut self, text: &str) {
        let number = self.next;
        self.next += 1;
        line(&format!("#{number} {text}"));
        line(&format!("#{number} DONE 0.0s"));
    }
}

impl Step {
    /// The stdout and stderr for a command this step runs.
    pub fn command_output(&self) -> std::io::Result<CommandOutput> {
        if self.mode != ProgressMode::Plain {
            let err = std::io::stderr().as_fd().try_clone_to_owned()?;
            return Ok(CommandOutput {
                stdout: Stdio::from(err),
                stderr: Stdio::inherit(),
                relay: None,
            });
        }
        let (read, write): (OwnedFd, OwnedFd) = nix::unistd::pipe()?;
        let write2 = write.try_clone()?;
        let number = self.number;
        let started = self.started;
        let relay = std::thread::spawn(move || {
            for chunk in BufReader::new(File::from(read)).split(b'\n') {
                let Ok(chunk) = chunk else { break };
                let text = String::from_utf8_lossy(&chunk);
                line(&format!(
                    "#{number} {:.3} {text}",
                    started.elapsed().as_secs_f64()
                ));
            }
        });
        Ok(CommandOutput {
            stdout: Stdio::from(write),
            stderr: Stdio::from(write2),
            relay: Some(relay),
        })
    }

    pub fn done(&self) {
        line(&format!(
            "#{} DONE {:.1}s",
            self.number,
            self.started.elapsed().as_secs_f64()
        ));
    }

    /// The step's result came from the build cache.
    pub fn cached(&self) {
        line(&format!("#{} CACHED", self.number));
    }

    pub fn error(&self, message: &str) {
        line(&format!("#{} ERROR: {message}", self.number));
    }
}

fn line(text: &str) {
    let mut err = std::io::stderr().lock();
    // Progress is best effort: a closed stderr must not fail the build.
    let _ = writeln!(err, "{text}");
}
