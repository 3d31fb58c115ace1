//! BuildKit-style progress: `#N [stage i/n] INSTRUCTION`, then `#N DONE 0.1s` (or
//! `#N CACHED`, `#N ERROR: ...`), on stderr.

use std::io::Write;
use std::time::Instant;

use crate::options::ProgressMode;

#[derive(Debug)]
pub struct Progress {
    #[allow(dead_code)]
    mode: ProgressMode,
    next: usize,
}

/// A step being shown.
#[derive(Debug)]
pub struct Step {
    pub number: usize,
    started: Instant,
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
    pub fn done(&self) {
        line(&format!(
            "#{} DONE {:.1}s",
            self.number,
            self.started.elapsed().as_secs_f64()
        ));
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
