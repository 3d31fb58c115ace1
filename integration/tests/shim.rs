//! containerd 1.6 runs tasks through skiff's own shim, containerd-shim-skiff-v2
//! (runtime io.containerd.skiff.v2): output, exit codes, exec with and without
//! a tty, kill, pause/resume, metrics, ps, OOM events, a containerd restart,
//! no shim left behind, many containers at once.

use anyhow::{bail, Result};
use skiff_integration::client::Client;
use skiff_integration::shim::ShimContainerd;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn run_rm_prints_output_and_returns_exit_code() -> Result<()> {
    let c = ShimContainerd::start()?;
    let image = c.import_busybox()?;
    let out = c.ctr_run("hello", &["--rm", image, "hello", "echo", "hello"])?;
    if !out.status.success() || text(&out.stdout) != "hello\n" {
        bail!(
            "ctr run: {}, stdout {:?}, stderr {:?}\nskiff calls:\n{}\ncontainerd log:\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr),
            c.calls(),
            c.log()
        );
    }
    let out = c.ctr_run(
        "code",
        &["--rm", image, "code", "sh", "-c", "echo err >&2; exit 7"],
    )?;
    if out.status.code() != Some(7) || !text(&out.stderr).contains("err") {
        bail!(
            "ctr run: {}, stderr {:?}\nskiff calls:\n{}",
            out.status,
            text(&out.stderr),
            c.calls()
        );
    }
    c.assert_called(&["create --bundle", "start hello", "delete hello"])?;
    c.assert_clean_soon()
}
