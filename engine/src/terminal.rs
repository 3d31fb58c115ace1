//! The user's terminal during `run -it`, `attach` and `exec -it`: raw mode
//! (restored on drop, also on errors) and its size.

use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::termios::{self, SetArg, Termios};

#[derive(Debug)]
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Puts stdin's terminal in raw mode; None when stdin is not a terminal.
    pub fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        let fd = stdin.as_fd();
        let saved = termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let stdin = std::io::stdin();
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// Columns and rows of the terminal on `fd`.
pub fn size(fd: BorrowedFd<'_>) -> Option<(u32, u32)> {
    use std::os::fd::AsRawFd;
    // SAFETY: winsize is plain data; TIOCGWINSZ fills it and `ws` outlives the call.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: as above; the descriptor is borrowed for the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_col > 0).then(|| (u32::from(ws.ws_col), u32::from(ws.ws_row)))
}
