//! Running the runtime binary for a container: through the reaper, with the
//! runtime's logged error in failures.

use super::*;

impl Service {
    /// Runs a runtime command whose stdio the caller set; errors carry the
    /// runtime's last logged error.
    pub(super) fn run_with_stdio(&self, rt: &Runtime, mut cmd: Command) -> anyhow::Result<()> {
        let (child, since) = self
            .reaper
            .spawn(&mut cmd)
            .with_context(|| format!("cannot run {}", rt.binary.display()))?;
        // Our copies of the container's pipe ends must close now.
        drop(cmd);
        let exit = self.reaper.wait(child.id() as i32, since);
        if exit.status != 0 {
            let why = rt
                .last_error()
                .unwrap_or_else(|| format!("exit status {}", exit.status));
            anyhow::bail!("{} failed: {why}", rt.binary.display());
        }
        Ok(())
    }

    /// Runs a runtime command, returning its stdout.
    pub(super) fn run(
        &self,
        rt: &Runtime,
        mut cmd: Command,
        input: Option<&[u8]>,
    ) -> anyhow::Result<Vec<u8>> {
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let (mut child, since) = self
            .reaper
            .spawn(&mut cmd)
            .with_context(|| format!("cannot run {}", rt.binary.display()))?;
        drop(cmd);
        if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
            let _ = stdin.write_all(data);
        }
        let mut out = Vec::new();
        let mut err = Vec::new();
        if let Some(mut s) = child.stdout.take() {
            let _ = s.read_to_end(&mut out);
        }
        if let Some(mut s) = child.stderr.take() {
            let _ = s.read_to_end(&mut err);
        }
        let exit = self.reaper.wait(child.id() as i32, since);
        if exit.status != 0 {
            let why = rt.last_error().unwrap_or_else(|| {
                let e = String::from_utf8_lossy(&err).trim().to_string();
                if e.is_empty() {
                    format!("exit status {}", exit.status)
                } else {
                    e
                }
            });
            anyhow::bail!("{} failed: {why}", rt.binary.display());
        }
        Ok(out)
    }

    /// A fresh file name in the bundle for an exec's spec or pid file.
    pub(super) fn scratch(&self, bundle: &Path, what: &str) -> PathBuf {
        let n = self.next_file.fetch_add(1, Ordering::Relaxed);
        bundle.join(format!(".skiff-shim-{n}.{what}"))
    }
}

/// The pid the runtime wrote with --pid-file.
pub(super) fn read_pid(path: &Path) -> anyhow::Result<i32> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("the runtime wrote no pid file {}", path.display()))?;
    text.trim()
        .parse()
        .with_context(|| format!("{} holds no pid: {text:?}", path.display()))
}
