//! End-to-end builds with the real skiff-build and skiff binaries on a busybox base image
//! the tests make themselves (an OCI layout passed with --build-context).

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use skiff_integration::{bin, default_spec};
use skiff_specs::media_type::{Compression, OCI_LAYER_TAR_GZIP, OCI_LAYER_TAR_ZSTD};
use skiff_specs::{Image, ImageConfig, Overrides, Store};
use tempfile::TempDir;

mod common;
use common::{make_busybox_layout, steps_with, unmount_below};

/// A test's directories: the base image layout, the store, the context; all removed on drop.
struct Fixture {
    dir: TempDir,
    /// The OCI runtime skiff-build runs RUN steps with.
    runtime: PathBuf,
}

impl Fixture {
    fn new() -> Result<Fixture> {
        let dir = tempfile::Builder::new()
            .prefix("skiff-build-test-")
            .tempdir()?;
        let f = Fixture {
            dir,
            runtime: bin("skiff"),
        };
        fs::create_dir_all(f.context())?;
        fs::create_dir_all(f.path("tmp"))?;
        f.make_base()?;
        Ok(f)
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn context(&self) -> PathBuf {
        self.path("context")
    }

    fn store(&self) -> Result<Store> {
        Ok(Store::open(self.path("store"))?)
    }

    /// busybox as an OCI layout at `base`, named `latest`.
    fn make_base(&self) -> Result<()> {
        make_busybox_layout(&self.path("base"), self.dir.path())
    }

    fn write(&self, rel: &str, content: &str) -> Result<()> {
        let p = self.context().join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(p, content)?;
        Ok(())
    }

    /// Runs skiff-build on the context with `args` before it; fails with its output.
    /// Returns the progress (stderr).
    fn build(&self, args: &[&str]) -> Result<String> {
        Ok(self.build_env(args, &[])?.1)
    }

    /// Like `build` with extra environment; returns (stdout, stderr).
    fn build_env(&self, args: &[&str], env: &[(&str, &str)]) -> Result<(String, String)> {
        let out = self.command(args).envs(env.iter().copied()).output()?;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            bail!("skiff-build {args:?} failed: {stderr}");
        }
        Ok((String::from_utf8_lossy(&out.stdout).into_owned(), stderr))
    }

    /// Starts a build with `args` and SIGKILLs it once a RUN has printed `started`:
    /// (the builder's pid, the progress it printed until then).
    fn kill_when_started(&self, args: &[&str]) -> Result<(u32, String)> {
        use std::io::BufRead;
        let mut child = self
            .command(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let pid = child.id();
        let stderr = child.stderr.take().context("stderr")?;
        let mut seen = String::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line?;
            seen.push_str(&line);
            seen.push('\n');
            if line.ends_with(" started") {
                break;
            }
        }
        child.kill()?;
        child.wait()?;
        Ok((pid, seen))
    }

    /// The skiff-build command line for this fixture.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("skiff-build"));
        cmd
            // The builder's work dir (and its overlay mounts) inside ours, for Drop.
            .env("TMPDIR", self.path("tmp"))
            .arg("--store")
            .arg(self.path("store"))
            .arg("--runtime")
            .arg(&self.runtime)
            .args(["--progress", "plain", "--build-context"])
            .arg(format!(
                "busybox=oci-layout://{}:latest",
                self.path("base").display()
            ))
            .args(args)
            .arg(self.context());
        cmd
    }

    fn image(&self, name: &str) -> Result<Image> {
        Ok(Image::load_host(&self.store()?, name)?)
    }

    /// Entries of layer `i` (from the top when negative) as (path, type, mode, uid, data).
    fn layer(&self, image: &Image, i: isize) -> Result<Vec<Entry>> {
        let layers = &image.manifest.layers;
        let at = if i < 0 { layers.len() as isize + i } else { i };
        let desc = usize::try_from(at)
            .ok()
            .and_then(|i| layers.get(i))
            .context("no such layer")?;
        let store = self.store()?;
        let compression =
            Compression::of_layer(&desc.media_type).context("not a layer media type")?;
        let mut archive = tar::Archive::new(compression.decompress(store.open_blob(desc)?)?);
        let mut out = Vec::new();
        for e in archive.entries()? {
            let mut e = e?;
            let mut data = String::new();
            if e.header().entry_type().is_file() {
                e.read_to_string(&mut data)?;
            }
            out.push(Entry {
                path: e.path()?.to_string_lossy().into_owned(),
                kind: e.header().entry_type(),
                mode: e.header().mode()?,
                uid: e.header().uid()?,
                data,
            });
        }
        Ok(out)
    }

    /// Runs the image `name` with skiff: its rootfs from --output type=local (built again,
    /// all from the store), its process from the image config.
    fn run_image(&self, rootfs: &Path, config: &ImageConfig) -> Result<String> {
        let bundle = self.path("bundle");
        fs::create_dir_all(&bundle)?;
        let rc = skiff_specs::runtime_config(config, rootfs, &Overrides::default())?;
        let mut spec = default_spec(&["true"]);
        spec["process"]["args"] = serde_json::to_value(&rc.process.args)?;
        spec["process"]["env"] = serde_json::to_value(&rc.process.env)?;
        spec["process"]["cwd"] = serde_json::to_value(&rc.process.cwd)?;
        spec["root"]["path"] = serde_json::to_value(rootfs)?;
        fs::write(bundle.join("config.json"), spec.to_string())?;
        let out = Command::new(bin("skiff"))
            .arg("--root")
            .arg(self.path("state"))
            .args(["run", "--bundle"])
            .arg(&bundle)
            .arg(self.container_id())
            .output()?;
        if !out.status.success() {
            bail!(
                "skiff run failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Fixture {
    fn container_id(&self) -> String {
        let name = self
            .dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        format!("build-test-{}", name.unwrap_or_default())
    }
}

impl Drop for Fixture {
    /// Whatever a failed or killed build or run left: the container, overlay mounts.
    fn drop(&mut self) {
        let _ = Command::new(bin("skiff"))
            .arg("--root")
            .arg(self.path("state"))
            .args(["delete", "--force"])
            .arg(self.container_id())
            .stderr(std::process::Stdio::null())
            .status();
        unmount_below(self.dir.path());
    }
}

#[derive(Debug)]
struct Entry {
    path: String,
    kind: tar::EntryType,
    mode: u32,
    uid: u64,
    data: String,
}

fn find<'a>(entries: &'a [Entry], path: &str) -> Option<&'a Entry> {
    entries
        .iter()
        .find(|e| e.path.trim_end_matches('/') == path)
}

#[test]
fn single_stage_copy_env_cmd() -> Result<()> {
    let f = Fixture::new()?;
    f.write(
        "Dockerfile",
        "FROM busybox\n\
         ENV GREETING=hello\n\
         WORKDIR /app\n\
         COPY hello.txt data ./\n\
         COPY --chmod=0600 --chown=65534:65534 hello.txt /secret.txt\n\
         LABEL org.example.name=app\n\
         EXPOSE 8080 53/udp\n\
         CMD [\"sh\", \"-c\", \"cat hello.txt sub/x.txt; echo $GREETING\"]\n",
    )?;
    f.write("hello.txt", "hello from the context\n")?;
    f.write("data/sub/x.txt", "x\n")?;
    f.write("data/ignored.log", "nope\n")?;
    f.write(".dockerignore", "data/*.log\n")?;
    let out = f.path("out.tar");
    let docker = f.path("docker.tar");
    let local = f.path("rootfs");
    let progress = f.build(&[
        "-t",
        "test/app",
        "--label",
        "org.example.build=ci",
        "--output",
        &format!("type=oci,dest={}", out.display()),
        "--output",
        &format!("type=local,dest={}", local.display()),
        "--output",
        &format!("type=docker,dest={}", docker.display()),
    ])?;
    assert!(
        progress.contains("#1 [stage-0 1/8] FROM busybox"),
        "{progress}"
    );
    assert!(progress.contains("DONE"), "{progress}");

    let image = f.image("test/app")?;
    let config = image.config.container_config();
    assert_eq!(
        config.env,
        Some(vec![
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
            "GREETING=hello".to_string()
        ])
    );
    assert_eq!(config.working_dir.as_deref(), Some("/app"));
    assert_eq!(
        config.cmd,
        Some(vec![
            "sh".into(),
            "-c".into(),
            "cat hello.txt sub/x.txt; echo $GREETING".into()
        ])
    );
    let labels = config.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("org.example.name").map(String::as_str),
        Some("app")
    );
    assert_eq!(
        labels.get("org.example.build").map(String::as_str),
        Some("ci")
    );
    let ports: Vec<String> = config
        .exposed_ports
        .clone()
        .unwrap_or_default()
        .into_keys()
        .collect();
    assert_eq!(ports, vec!["53/udp".to_string(), "8080/tcp".to_string()]);
    // base + WORKDIR + 2 COPY layers; ENV, LABEL, EXPOSE, CMD are empty layers.
    assert_eq!(image.manifest.layers.len(), 4);
    assert_eq!(image.config.rootfs.diff_ids.len(), 4);
    let history = image.config.history.clone().unwrap_or_default();
    assert_eq!(history.len(), 7);
    assert_eq!(history.iter().filter(|h| h.is_empty_layer()).count(), 4);

    let copy = f.layer(&image, -2)?;
    let paths: Vec<&str> = copy.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        vec!["app/", "app/hello.txt", "app/sub/", "app/sub/x.txt"],
        "{copy:?}"
    );
    let hello = find(&copy, "app/hello.txt").context("hello.txt")?;
    assert_eq!(hello.data, "hello from the context\n");
    assert_eq!(hello.kind, tar::EntryType::Regular);
    assert_eq!(hello.uid, 0);
    let secret = f.layer(&image, -1)?;
    let s = find(&secret, "secret.txt").context("secret.txt")?;
    assert_eq!((s.mode, s.uid), (0o600, 65534));

    if Path::new("/usr/bin/skopeo").exists() {
        for source in [
            format!("oci-archive:{}", out.display()),
            format!("docker-archive:{}", docker.display()),
        ] {
            let inspect = Command::new("skopeo")
                .arg("inspect")
                .arg(&source)
                .output()?;
            assert!(
                inspect.status.success(),
                "skopeo inspect {source}: {}",
                String::from_utf8_lossy(&inspect.stderr)
            );
        }
    }
    if Path::new("/usr/bin/podman").exists() {
        // A private podman storage (vfs: no mounts), removed with the fixture.
        let load = Command::new("podman")
            .arg("--root")
            .arg(f.path("podman-root"))
            .arg("--runroot")
            .arg(f.path("podman-run"))
            .args(["--storage-driver", "vfs", "load", "-i"])
            .arg(&docker)
            .output()?;
        let stdout = String::from_utf8_lossy(&load.stdout);
        assert!(
            load.status.success() && stdout.contains("test/app:latest"),
            "podman load: {stdout} {}",
            String::from_utf8_lossy(&load.stderr)
        );
    }
    if Path::new("/usr/bin/umoci").exists() {
        // umoci 0.4.7 reads no zstd layers: give it a gzip build of the same image.
        let gzip_out = f.path("gzip.tar");
        f.build(&[
            "-t",
            "test/app",
            "--compression",
            "gzip",
            "--output",
            &format!("type=oci,dest={}", gzip_out.display()),
        ])?;
        let layout = f.path("layout");
        fs::create_dir_all(&layout)?;
        tar::Archive::new(File::open(&gzip_out)?).unpack(&layout)?;
        let bundle = f.path("umoci-bundle");
        let unpack = Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:latest", layout.display()))
            .arg(&bundle)
            .output()?;
        assert!(
            unpack.status.success(),
            "umoci unpack: {}",
            String::from_utf8_lossy(&unpack.stderr)
        );
        assert_eq!(
            fs::read_to_string(bundle.join("rootfs/app/hello.txt"))?,
            "hello from the context\n"
        );
    }
    let output = f.run_image(&local, &image.config)?;
    assert_eq!(output, "hello from the context\nx\nhello\n");
    Ok(())
}

#[test]
fn run_writes_and_deletes() -> Result<()> {
    let f = Fixture::new()?;
    f.write(
        "Dockerfile",
        "FROM busybox\n\
         RUN echo built > /built.txt && ln /built.txt /hard.txt && rm /etc/hosts \\\n\
             && rm -rf /home && mkdir /home && touch /home/new && echo \"step output\"\n\
         RUN true\n\
         ENTRYPOINT [\"sh\", \"-c\"]\n\
         CMD [\"cat /built.txt; test -e /etc/hosts || echo hosts gone\"]\n",
    )?;
    let local = f.path("rootfs");
    let progress = f.build(&[
        "-t",
        "run-test",
        "-o",
        &format!("type=local,dest={}", local.display()),
    ])?;
    assert!(progress.contains("RUN echo built"), "{progress}");
    // Plain progress shows RUN output as `#N SECONDS line`.
    assert!(
        progress
            .lines()
            .any(|l| l.starts_with("#2 ") && l.ends_with(" step output")),
        "{progress}"
    );
    let image = f.image("run-test")?;
    assert_eq!(image.manifest.layers.len(), 2, "RUN true makes no layer");
    let layer = f.layer(&image, -1)?;
    let built = find(&layer, "built.txt").context("built.txt")?;
    assert_eq!(built.data, "built\n");
    let wh = find(&layer, "etc/.wh.hosts").context("whiteout for /etc/hosts")?;
    assert_eq!(wh.kind, tar::EntryType::Regular);
    let hard = find(&layer, "hard.txt").context("hard.txt")?;
    assert_eq!(hard.kind, tar::EntryType::Link);
    assert!(find(&layer, "home/.wh..wh..opq").is_some(), "{layer:?}");
    assert!(find(&layer, "home/new").is_some(), "{layer:?}");
    assert!(!local.join("etc/hosts").exists());
    let output = f.run_image(&local, &image.config)?;
    assert_eq!(output, "built\nhosts gone\n");
    Ok(())
}

#[test]
fn failing_run_fails_the_build() -> Result<()> {
    let f = Fixture::new()?;
    f.write("Dockerfile", "FROM busybox\nRUN echo oops >&2; exit 3\n")?;
    let err = f.build(&[]).err().context("the build should fail")?;
    let msg = format!("{err:#}");
    assert!(msg.contains("exit code 3"), "{msg}");
    assert!(msg.contains("oops"), "{msg}");
    Ok(())
}

#[test]
fn multi_stage_copy_from() -> Result<()> {
    let f = Fixture::new()?;
    f.write(
        "Dockerfile",
        "FROM busybox AS build\n\
         RUN mkdir /out && echo artifact > /out/app.txt && ln -s app.txt /out/link\n\
         FROM busybox AS unused\n\
         RUN exit 1\n\
         FROM scratch\n\
         COPY --from=build /out/ /srv/\n\
         COPY --from=build /bin/busybox /bin/busybox\n\
         CMD [\"/bin/busybox\", \"cat\", \"/srv/link\"]\n",
    )?;
    let local = f.path("rootfs");
    f.build(&[
        "-t",
        "multi",
        "-o",
        &format!("type=local,dest={}", local.display()),
    ])?;
    let image = f.image("multi")?;
    assert_eq!(image.manifest.layers.len(), 2);
    let first = f.layer(&image, 0)?;
    let link = find(&first, "srv/link").context("srv/link")?;
    assert_eq!(link.kind, tar::EntryType::Symlink);
    assert_eq!(
        find(&first, "srv/app.txt").context("app.txt")?.data,
        "artifact\n"
    );
    let output = f.run_image(&local, &image.config)?;
    assert_eq!(output, "artifact\n");

    // --target builds only what the target needs.
    f.build(&["-t", "only-build", "--target", "build"])?;
    let image = f.image("only-build")?;
    assert_eq!(image.manifest.layers.len(), 2);
    Ok(())
}

#[test]
fn bad_input_is_reported() -> Result<()> {
    let f = Fixture::new()?;
    f.write("Dockerfile", "FROM busybox\nCOPY missing.txt /\n")?;
    let err = format!("{:#}", f.build(&[]).err().context("should fail")?);
    assert!(err.contains("missing.txt: not found"), "{err}");
    f.write("Dockerfile", "FROM busybox\nCOPY ../../etc/passwd /x\n")?;
    let err = format!("{:#}", f.build(&[]).err().context("should fail")?);
    assert!(err.contains("not found"), "{err}");
    let err = format!(
        "{:#}",
        f.build(&["--platform", "linux/s390x"])
            .err()
            .context("should fail")?
    );
    assert!(err.contains("only the host platform"), "{err}");
    let mut f2 = File::create(f.context().join("Dockerfile"))?;
    std::io::Write::write_all(&mut f2, b"FROM busybox\nFROBNICATE x\n")?;
    let err = format!("{:#}", f.build(&[]).err().context("should fail")?);
    assert!(err.contains("Dockerfile:2"), "{err}");
    Ok(())
}

#[test]
fn config_instructions() -> Result<()> {
    let f = Fixture::new()?;
    f.write(
        "Dockerfile",
        "FROM busybox\n\
         USER nobody\n\
         WORKDIR /work\n\
         RUN id -u > /tmp/uid\n\
         USER root\n\
         SHELL [\"/bin/sh\", \"-ec\"]\n\
         VOLUME /data\n\
         STOPSIGNAL SIGINT\n\
         HEALTHCHECK --interval=5s --retries=2 CMD wget -q localhost\n\
         ONBUILD RUN echo child\n\
         ENTRYPOINT [\"/bin/sh\"]\n",
    )?;
    f.build(&["-t", "config"])?;
    let image = f.image("config")?;
    let c = image.config.container_config();
    // ENTRYPOINT drops the CMD inherited from the base.
    assert_eq!(c.cmd, None);
    assert_eq!(c.entrypoint, Some(vec!["/bin/sh".to_string()]));
    assert_eq!(c.user.as_deref(), Some("root"));
    let volumes: Vec<String> = c.volumes.clone().unwrap_or_default().into_keys().collect();
    assert_eq!(volumes, vec!["/data".to_string()]);
    assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
    let hc = c.healthcheck.clone().context("healthcheck")?;
    assert_eq!(
        hc.test,
        Some(vec![
            "CMD-SHELL".to_string(),
            "wget -q localhost".to_string()
        ])
    );
    assert_eq!((hc.interval, hc.retries), (Some(5_000_000_000), Some(2)));
    assert_eq!(c.on_build, Some(vec!["RUN echo child".to_string()]));
    assert_eq!(
        c.shell,
        Some(vec!["/bin/sh".to_string(), "-ec".to_string()])
    );
    let workdir = f.layer(&image, -2)?;
    let work = find(&workdir, "work").context("work")?;
    assert_eq!(work.uid, 65534, "WORKDIR is created owned by USER");
    let layer = f.layer(&image, -1)?;
    let uid = find(&layer, "tmp/uid").context("tmp/uid")?;
    assert_eq!(uid.data, "65534\n");
    Ok(())
}

#[test]
fn add_extracts_zstd_xz_and_bzip2_archives() -> Result<()> {
    use std::io::Write;
    let f = Fixture::new()?;
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_cksum();
    tar.append_data(&mut h, "in/x.txt", &b"xxx\n"[..])?;
    let tar = tar.into_inner()?;
    fs::write(
        f.context().join("a.tar.zst"),
        zstd::encode_all(&tar[..], 3)?,
    )?;
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(&tar)?;
    fs::write(f.context().join("b.tar.xz"), xz.finish()?)?;
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    bz.write_all(&tar)?;
    // No telling file name: the magic bytes decide.
    fs::write(f.context().join("c.blob"), bz.finish()?)?;
    f.write(
        "Dockerfile",
        "FROM busybox\nADD a.tar.zst /zst/\nADD b.tar.xz /xz/\nADD c.blob /bz2/\n",
    )?;
    f.build(&["-t", "archives"])?;
    let image = f.image("archives")?;
    for (layer, path) in [
        (-3, "zst/in/x.txt"),
        (-2, "xz/in/x.txt"),
        (-1, "bz2/in/x.txt"),
    ] {
        let entries = f.layer(&image, layer)?;
        let e = find(&entries, path).with_context(|| path.to_owned())?;
        assert_eq!(e.data, "xxx\n", "{path}");
    }
    Ok(())
}

#[test]
fn add_archives_heredocs_wildcards() -> Result<()> {
    let f = Fixture::new()?;
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        File::create(f.context().join("files.tar.gz"))?,
        flate2::Compression::default(),
    ));
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o640);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_cksum();
    tar.append_data(&mut h, "pkg/a.txt", &b"aaa\n"[..])?;
    tar.into_inner()?.finish()?;
    f.write("one.txt", "1\n")?;
    f.write("two.txt", "2\n")?;
    f.write("three.md", "3\n")?;
    f.write(
        "Dockerfile",
        "FROM busybox\n\
         ENV NAME=there\n\
         ADD files.tar.gz /opt/\n\
         COPY <<EOF /etc/motd\n\
         hi $NAME\n\
         EOF\n\
         RUN <<EOF\n\
         echo heredoc > /heredoc.txt\n\
         EOF\n\
         COPY *.txt /txt/\n\
         COPY --link --chown=7:8 one.txt /etc/linked.txt\n",
    )?;
    f.build(&["-t", "add"])?;
    let image = f.image("add")?;
    let add = f.layer(&image, -5)?;
    let a = find(&add, "opt/pkg/a.txt").context("opt/pkg/a.txt")?;
    assert_eq!((a.data.as_str(), a.mode), ("aaa\n", 0o640));
    assert_eq!(
        find(&f.layer(&image, -4)?, "etc/motd")
            .context("motd")?
            .data,
        "hi there\n"
    );
    let run = f.layer(&image, -3)?;
    assert_eq!(
        find(&run, "heredoc.txt").context("heredoc.txt")?.data,
        "heredoc\n"
    );
    // --link: a layer of its own, with the parent directories it needs.
    let linked = f.layer(&image, -1)?;
    let paths: Vec<&str> = linked.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, vec!["etc/", "etc/linked.txt"]);
    assert_eq!(find(&linked, "etc/linked.txt").context("linked")?.uid, 7);
    let txt = f.layer(&image, -2)?;
    let paths: Vec<&str> = txt.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, vec!["txt/", "txt/one.txt", "txt/two.txt"]);
    Ok(())
}

#[test]
fn source_date_epoch_reproduces() -> Result<()> {
    let f = Fixture::new()?;
    f.write(
        "Dockerfile",
        "FROM busybox\nCOPY a.txt /\nRUN echo x > /x\nCMD [\"true\"]\n",
    )?;
    f.write("a.txt", "a\n")?;
    let env = [("SOURCE_DATE_EPOCH", "1700000000")];
    let (first, _) = f.build_env(&["-t", "one"], &env)?;
    let (second, _) = f.build_env(&["-t", "two"], &env)?;
    assert!(first.trim().starts_with("sha256:"), "{first}");
    assert_eq!(first, second);
    let image = f.image("one")?;
    assert_eq!(
        image.config.created.as_deref(),
        Some("2023-11-14T22:13:20Z")
    );
    let (third, _) = f.build_env(&["-t", "three"], &[])?;
    assert_ne!(
        first, third,
        "without SOURCE_DATE_EPOCH the timestamps differ"
    );
    Ok(())
}

#[test]
fn runc_runs_steps_too() -> Result<()> {
    let runc = Path::new("/usr/sbin/runc");
    if !runc.exists() {
        eprintln!("runc is not installed; skipping");
        return Ok(());
    }
    let mut f = Fixture::new()?;
    f.runtime = runc.to_path_buf();
    f.write(
        "Dockerfile",
        "FROM busybox\nWORKDIR /w\nRUN echo via-runc > out.txt && rm /etc/group\n",
    )?;
    f.build(&["-t", "runc"])?;
    let image = f.image("runc")?;
    let layer = f.layer(&image, -1)?;
    assert_eq!(
        find(&layer, "w/out.txt").context("w/out.txt")?.data,
        "via-runc\n"
    );
    assert!(find(&layer, "etc/.wh.group").is_some(), "{layer:?}");
    Ok(())
}

#[test]
fn onbuild_triggers_run_in_the_child() -> Result<()> {
    let f = Fixture::new()?;
    f.write(
        "Dockerfile",
        "FROM busybox AS parent\n\
         ONBUILD RUN echo triggered > /onbuild.txt\n\
         FROM parent\n\
         RUN cat /onbuild.txt > /copy.txt\n",
    )?;
    let progress = f.build(&["-t", "child"])?;
    assert!(
        progress.contains("ONBUILD RUN echo triggered"),
        "{progress}"
    );
    let image = f.image("child")?;
    assert_eq!(image.config.container_config().on_build, None);
    let last = f.layer(&image, -1)?;
    assert_eq!(
        find(&last, "copy.txt").context("copy.txt")?.data,
        "triggered\n"
    );
    Ok(())
}

#[test]
fn run_mounts_cache_bind_tmpfs() -> Result<()> {
    let f = Fixture::new()?;
    f.write("hello.txt", "hello via bind\n")?;
    f.write(
        "Dockerfile",
        "FROM busybox AS tools\n\
         RUN mkdir /out && echo tool > /out/t.txt\n\
         FROM busybox\n\
         RUN --mount=type=cache,target=/var/cache/app,sharing=locked \\\n\
             echo run >> /var/cache/app/log && wc -l < /var/cache/app/log > /count\n\
         RUN --mount=type=bind,source=hello.txt,target=/mnt/h.txt \\\n\
             --mount=type=bind,from=tools,source=/out,target=/tools \\\n\
             --mount=type=tmpfs,target=/scratch \\\n\
             cat /mnt/h.txt /tools/t.txt > /copied && touch /scratch/x && ls /scratch > /ls\n",
    )?;
    f.build(&["-t", "mounts1"])?;
    // Unchanged, the RUN would be CACHED: --no-cache runs it again.
    f.build(&["-t", "mounts2", "--no-cache"])?;
    let first = f.image("mounts1")?;
    let second = f.image("mounts2")?;
    let count = |image: &Image| -> Result<String> {
        let layer = f.layer(image, -2)?;
        Ok(find(&layer, "count")
            .context("count")?
            .data
            .trim()
            .to_owned())
    };
    assert_eq!(count(&first)?, "1");
    assert_eq!(
        count(&second)?,
        "2",
        "the cache mount keeps its content across builds"
    );
    let cache_layer = f.layer(&second, -2)?;
    assert!(
        !cache_layer.iter().any(|e| e.path.starts_with("var/cache")),
        "mount stubs stay out of the layer: {cache_layer:?}"
    );
    let layer = f.layer(&second, -1)?;
    assert_eq!(
        find(&layer, "copied").context("copied")?.data,
        "hello via bind\ntool\n"
    );
    assert_eq!(find(&layer, "ls").context("ls")?.data, "x\n");
    let paths: Vec<&str> = layer.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, vec!["copied", "ls"], "no mount stubs: {paths:?}");
    Ok(())
}

#[test]
fn secrets_are_mounted_not_stored() -> Result<()> {
    let f = Fixture::new()?;
    let secret = f.path("token");
    fs::write(&secret, "s3cret")?;
    f.write(
        "Dockerfile",
        "FROM busybox\n\
         RUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /len\n\
         RUN --mount=type=secret,id=tok,env=TOK test \"$TOK\" = s3cret && echo ok > /env-ok\n\
         RUN --mount=type=secret,id=absent true\n",
    )?;
    f.build(&[
        "-t",
        "secret",
        "--secret",
        &format!("id=tok,src={}", secret.display()),
    ])?;
    let image = f.image("secret")?;
    let len = f.layer(&image, 1)?;
    assert_eq!(find(&len, "len").context("len")?.data.trim(), "6");
    let paths: Vec<&str> = len.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, vec!["len"], "no /run/secrets stub: {paths:?}");
    let env_ok = f.layer(&image, 2)?;
    assert!(find(&env_ok, "env-ok").is_some(), "{env_ok:?}");
    let config = image.config.container_config();
    assert!(!format!("{config:?}").contains("s3cret"));
    // A required secret that was not given fails the build.
    f.write(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=secret,id=tok,required true\n",
    )?;
    let err = format!("{:#}", f.build(&[]).err().context("should fail")?);
    assert!(err.contains("secret tok is required"), "{err}");
    Ok(())
}

fn mounts_below(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .filter(|m| m.starts_with(&prefix))
        .collect()
}

#[test]
fn killed_build_is_swept_and_rebuilt() -> Result<()> {
    let f = Fixture::new()?;
    f.write("a.txt", "a\n")?;
    f.write(
        "Dockerfile",
        "FROM busybox\nCOPY a.txt /\nRUN echo started && sleep 30\n",
    )?;
    let (pid, seen) = f.kill_when_started(&["-t", "killed"])?;
    assert!(seen.contains(" started"), "the RUN never started: {seen}");
    let tmp = f.path("tmp");
    let stale = |tmp: &Path| -> Result<Vec<String>> {
        Ok(fs::read_dir(tmp)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&format!("skiff-build-{pid}-")))
            .collect())
    };
    assert_eq!(stale(&tmp)?.len(), 1, "the killed build left its work dir");
    assert!(!mounts_below(&tmp).is_empty(), "and its overlay mounts");

    f.write(
        "Dockerfile",
        "FROM busybox\nCOPY a.txt /\nRUN echo again > /again\n",
    )?;
    let progress = f.build(&["-t", "after"])?;
    assert!(progress.contains("removing the work dir"), "{progress}");
    assert!(stale(&tmp)?.is_empty(), "swept");
    assert!(mounts_below(&tmp).is_empty(), "{:?}", mounts_below(&tmp));
    let image = f.image("after")?;
    assert!(find(&f.layer(&image, -1)?, "again").is_some());
    Ok(())
}

#[test]
fn independent_stages_run_concurrently() -> Result<()> {
    let f = Fixture::new()?;
    // Each stage waits (up to 10 s) for the other's marker in a shared cache mount: run one
    // after the other, the first would give up.
    let wait_for = |me: &str, other: &str| {
        format!(
            "RUN --mount=type=cache,id=sync,target=/sync touch /sync/{me} && \\\n\
             for i in $(seq 100); do [ -e /sync/{other} ] && exit 0; sleep 0.1; done; exit 1\n"
        )
    };
    f.write(
        "Dockerfile",
        &format!(
            "FROM busybox AS a\n{}FROM busybox AS b\n{}FROM scratch\n\
             COPY --from=a /bin/busybox /a\nCOPY --from=b /bin/busybox /b\n",
            wait_for("a", "b"),
            wait_for("b", "a")
        ),
    )?;
    f.build(&["-t", "parallel"])?;
    let image = f.image("parallel")?;
    assert_eq!(image.manifest.layers.len(), 2);
    Ok(())
}

#[test]
fn a_failing_stage_stops_the_build() -> Result<()> {
    let f = Fixture::new()?;
    f.write(
        "Dockerfile",
        "FROM busybox AS bad\nRUN exit 7\nFROM busybox AS good\nRUN true\n\
         FROM scratch\nCOPY --from=bad /bin/busybox /a\nCOPY --from=good /bin/busybox /b\n",
    )?;
    let err = format!("{:#}", f.build(&[]).err().context("should fail")?);
    assert!(
        err.contains("exit code 7"),
        "the failing stage is reported: {err}"
    );
    Ok(())
}

#[test]
fn copy_exclude_and_parents() -> Result<()> {
    let f = Fixture::new()?;
    for (p, c) in [
        ("src/a.txt", "a"),
        ("src/b.log", "b"),
        ("src/sub/c.log", "c"),
        ("src/sub/d.txt", "d"),
    ] {
        f.write(p, c)?;
    }
    f.write(
        "Dockerfile",
        "FROM scratch\nCOPY --exclude=*.log --exclude=**/*.log src /app/\n\
         COPY --parents src/sub/d.txt src/a.txt /kept/\n",
    )?;
    f.build(&["-t", "exclude"])?;
    let image = f.image("exclude")?;
    let layer = f.layer(&image, -2)?;
    let paths: Vec<&str> = layer.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        vec!["app/", "app/a.txt", "app/sub/", "app/sub/d.txt"]
    );
    // --parents keeps the source paths.
    let layer = f.layer(&image, -1)?;
    let paths: Vec<&str> = layer.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "kept/",
            "kept/src/",
            "kept/src/a.txt",
            "kept/src/sub/",
            "kept/src/sub/d.txt"
        ]
    );
    Ok(())
}

fn ran(progress: &str) -> Vec<String> {
    steps_with(progress, "DONE")
        .into_iter()
        .filter(|s| !s.starts_with("FROM ") && !s.starts_with("ENV ") && !s.starts_with("ARG "))
        .collect()
}

fn touch(args: &[&str]) -> Result<()> {
    let status = Command::new("touch").args(args).status()?;
    if !status.success() {
        bail!("touch {args:?} failed");
    }
    Ok(())
}

const EPOCH: [(&str, &str); 1] = [("SOURCE_DATE_EPOCH", "1700000000")];

#[test]
fn cache_reuses_unchanged_steps_and_sees_every_edit() -> Result<()> {
    let f = Fixture::new()?;
    f.write("a.txt", "a\n")?;
    f.write("dir/b.txt", "bbbb\n")?;
    f.write("dir/ignored.log", "x\n")?;
    f.write(".dockerignore", "dir/*.log\n")?;
    f.write(
        "Dockerfile",
        "FROM busybox\nCOPY a.txt /\nRUN echo ran > /ran\nCOPY dir /dir\n\
         RUN cat /dir/b.txt > /copy\nWORKDIR /w\n",
    )?;
    let (first, progress) = f.build_env(&["-t", "c"], &EPOCH)?;
    assert_eq!(ran(&progress).len(), 5, "{progress}");
    assert!(steps_with(&progress, "CACHED").is_empty(), "{progress}");

    // Nothing changed: every step CACHED, the same image.
    let (second, progress) = f.build_env(&["-t", "c"], &EPOCH)?;
    assert_eq!(first, second);
    assert_eq!(steps_with(&progress, "CACHED").len(), 5, "{progress}");
    assert!(ran(&progress).is_empty(), "{progress}");

    // One file edited: rebuilt from the COPY that reads it.
    let b = f.context().join("dir/b.txt");
    let reference = f.path("ref");
    fs::write(&b, "BBBB\n")?;
    let progress = f.build_env(&["-t", "c"], &EPOCH)?.1;
    assert_eq!(
        steps_with(&progress, "CACHED"),
        ["COPY a.txt /", "RUN echo ran > /ran"],
        "{progress}"
    );
    assert_eq!(
        ran(&progress),
        ["COPY dir /dir", "RUN cat /dir/b.txt > /copy", "WORKDIR /w"]
    );
    let image = f.image("c")?;
    assert_eq!(
        find(&f.layer(&image, -2)?, "copy").context("copy")?.data,
        "BBBB\n"
    );

    // Same size, same mtime: still seen.
    touch(&["-r", &b.to_string_lossy(), &reference.to_string_lossy()])?;
    fs::write(&b, "CCCC\n")?;
    touch(&["-r", &reference.to_string_lossy(), &b.to_string_lossy()])?;
    assert_eq!(
        fs::metadata(&b)?.modified()?,
        fs::metadata(&reference)?.modified()?
    );
    let progress = f.build_env(&["-t", "c"], &EPOCH)?.1;
    assert_eq!(ran(&progress).len(), 3, "{progress}");
    let image = f.image("c")?;
    assert_eq!(
        find(&f.layer(&image, -2)?, "copy").context("copy")?.data,
        "CCCC\n"
    );

    // A new mtime alone, or a change to an ignored file: all CACHED.
    touch(&["-d", "2001-01-01", &b.to_string_lossy()])?;
    f.write("dir/ignored.log", "changed\n")?;
    let progress = f.build_env(&["-t", "c"], &EPOCH)?.1;
    assert!(ran(&progress).is_empty(), "{progress}");

    // A mode change is an edit.
    fs::set_permissions(&b, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let progress = f.build_env(&["-t", "c"], &EPOCH)?.1;
    assert_eq!(ran(&progress).len(), 3, "{progress}");

    // A build arg the RUN reads is part of its key; --no-cache runs everything.
    f.write("Dockerfile", "FROM busybox\nARG V\nRUN echo $V > /v\n")?;
    f.build(&["-t", "v", "--build-arg", "V=1"])?;
    let progress = f.build(&["-t", "v", "--build-arg", "V=2"])?;
    assert_eq!(ran(&progress), ["RUN echo $V > /v"], "{progress}");
    assert_eq!(
        find(&f.layer(&f.image("v")?, -1)?, "v").context("v")?.data,
        "2\n"
    );
    let progress = f.build(&["-t", "v", "--build-arg", "V=2", "--no-cache"])?;
    assert_eq!(ran(&progress), ["RUN echo $V > /v"], "{progress}");
    Ok(())
}

#[test]
fn concurrent_builds_share_the_cache() -> Result<()> {
    let f = Fixture::new()?;
    f.write("a.txt", "a\n")?;
    f.write(
        "Dockerfile",
        "FROM busybox\nCOPY a.txt /\nRUN echo one > /one\nRUN echo two > /two\n",
    )?;
    let spawn = |tag: &str| {
        f.command(&["-t", tag])
            .envs(EPOCH)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
    };
    let (a, b) = (spawn("a")?, spawn("b")?);
    let (a, b) = (a.wait_with_output()?, b.wait_with_output()?);
    for out in [&a, &b] {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(a.stdout, b.stdout);
    let (digest, progress) = f.build_env(&["-t", "c"], &EPOCH)?;
    assert_eq!(digest.as_bytes(), a.stdout);
    assert!(ran(&progress).is_empty(), "{progress}");
    Ok(())
}

#[test]
fn killed_during_run_then_rebuilt_from_the_cache() -> Result<()> {
    let f = Fixture::new()?;
    f.write("a.txt", "a\n")?;
    f.write(
        "Dockerfile",
        "FROM busybox\nCOPY a.txt /\nRUN echo started && sleep 1 && echo x > /x\n",
    )?;
    f.kill_when_started(&["-t", "k"])?;
    let progress = f.build(&["-t", "k"])?;
    assert_eq!(
        steps_with(&progress, "CACHED"),
        ["COPY a.txt /"],
        "{progress}"
    );
    let image = f.image("k")?;
    assert!(find(&f.layer(&image, -1)?, "x").is_some());
    Ok(())
}

#[test]
fn prune_drops_the_cache() -> Result<()> {
    let f = Fixture::new()?;
    f.write("a.txt", "a\n")?;
    f.write(
        "Dockerfile",
        "FROM busybox\nCOPY a.txt /\nRUN echo x > /x\n",
    )?;
    f.build(&["-t", "p"])?;
    // A partial download an interrupted pull left goes too.
    let ingest = f.path("store").join(skiff_specs::registry::INGEST_DIR);
    fs::create_dir_all(&ingest)?;
    fs::write(ingest.join("sha256-00.partial"), "half a blob")?;
    let out = Command::new(bin("skiff-build"))
        .arg("prune")
        .arg("--store")
        .arg(f.path("store"))
        .output()?;
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.starts_with("removed 2 cache entries, 1 context stat caches"),
        "{report}"
    );
    assert!(
        report.contains("; 1 partial downloads (11 bytes)"),
        "{report}"
    );
    assert!(!f.path("build-cache/entries").read_dir()?.any(|_| true));
    assert!(!ingest.read_dir()?.any(|_| true));
    let progress = f.build(&["-t", "p"])?;
    assert!(steps_with(&progress, "CACHED").is_empty(), "{progress}");
    assert_eq!(ran(&progress).len(), 2, "{progress}");

    // Entries whose layers the store lost (the image removed, then gc) are misses.
    let store = f.store()?;
    for image in store.list()? {
        if let Some(name) = image.name {
            store.remove(&name)?;
        }
    }
    assert!(!store.gc()?.removed_blobs.is_empty());
    let progress = f.build(&["-t", "p"])?;
    assert_eq!(ran(&progress).len(), 2, "{progress}");
    assert!(f.image("p").is_ok());
    Ok(())
}

#[test]
fn run_bind_of_the_context_is_keyed_by_its_content() -> Result<()> {
    let f = Fixture::new()?;
    f.write("data/f", "one\n")?;
    f.write(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=bind,source=data,target=/d cat /d/f > /out\n",
    )?;
    f.build(&["-t", "b"])?;
    let progress = f.build(&["-t", "b"])?;
    assert!(ran(&progress).is_empty(), "{progress}");
    f.write("data/f", "two\n")?;
    let progress = f.build(&["-t", "b"])?;
    assert_eq!(ran(&progress).len(), 1, "{progress}");
    // All cached, then the rootfs as a local output: the cached layers are unpacked for it.
    let dest = f.path("rootfs");
    let dest_arg = format!("type=local,dest={}", dest.display());
    let progress = f.build(&["-t", "b", "--output", &dest_arg])?;
    assert!(ran(&progress).is_empty(), "{progress}");
    assert_eq!(fs::read_to_string(dest.join("out"))?, "two\n");
    assert!(dest.join("bin/busybox").exists());
    Ok(())
}

#[test]
fn copy_from_a_cached_stage() -> Result<()> {
    let f = Fixture::new()?;
    f.write("b.txt", "one\n")?;
    f.write(
        "Dockerfile",
        "FROM busybox AS a\nRUN echo built > /artifact\n\
         FROM busybox\nCOPY b.txt /\nCOPY --from=a /artifact /artifact\n",
    )?;
    f.build(&["-t", "m"])?;
    f.write("b.txt", "two\n")?;
    let progress = f.build(&["-t", "m"])?;
    assert_eq!(
        steps_with(&progress, "CACHED"),
        ["RUN echo built > /artifact"],
        "{progress}"
    );
    let image = f.image("m")?;
    assert_eq!(
        find(&f.layer(&image, -1)?, "artifact")
            .context("artifact")?
            .data,
        "built\n"
    );
    // The stage's content is part of the key: a change there reruns the COPY --from.
    f.write(
        "Dockerfile",
        "FROM busybox AS a\nRUN echo changed > /artifact\n\
         FROM busybox\nCOPY b.txt /\nCOPY --from=a /artifact /artifact\n",
    )?;
    let progress = f.build(&["-t", "m"])?;
    assert_eq!(
        steps_with(&progress, "CACHED"),
        ["COPY b.txt /"],
        "{progress}"
    );
    let image = f.image("m")?;
    assert_eq!(
        find(&f.layer(&image, -1)?, "artifact")
            .context("artifact")?
            .data,
        "changed\n"
    );
    Ok(())
}

/// The first bytes of each layer of the `docker save` archive `path`, in manifest order.
fn docker_layer_heads(path: &Path) -> Result<Vec<Vec<u8>>> {
    let mut files = std::collections::HashMap::new();
    for e in tar::Archive::new(File::open(path)?).entries()? {
        let mut e = e?;
        let name = e.path()?.to_string_lossy().into_owned();
        let mut head = Vec::new();
        if name == "manifest.json" {
            e.read_to_end(&mut head)?;
        } else {
            e.by_ref().take(4).read_to_end(&mut head)?;
        }
        files.insert(name, head);
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(files.get("manifest.json").context("manifest.json")?)?;
    let layers = manifest[0]["Layers"].as_array().context("Layers")?;
    layers
        .iter()
        .map(|l| {
            let name = l.as_str().context("layer path")?;
            files.get(name).cloned().context("layer file missing")
        })
        .collect()
}

#[test]
fn layers_are_zstd_by_default_gzip_on_request_and_in_docker_archives() -> Result<()> {
    let f = Fixture::new()?;
    f.write(
        "Dockerfile",
        "FROM busybox\n\
         COPY big.txt /big.txt\n\
         RUN echo ran >/ran.txt\n\
         CMD [\"sh\", \"-c\", \"wc -c </big.txt; cat /ran.txt\"]\n",
    )?;
    f.write("big.txt", &"compressible ".repeat(10_000))?;
    let docker = f.path("docker.tar");
    let local = f.path("rootfs");
    let epoch = [("SOURCE_DATE_EPOCH", "1700000000")];
    f.build_env(
        &[
            "-t",
            "test/zstd",
            "--output",
            &format!("type=docker,dest={}", docker.display()),
            "--output",
            &format!("type=local,dest={}", local.display()),
        ],
        &epoch,
    )?;
    let zstd = f.image("test/zstd")?;
    let own: Vec<&str> = zstd.manifest.layers[1..]
        .iter()
        .map(|l| l.media_type.as_str())
        .collect();
    assert_eq!(own, [OCI_LAYER_TAR_ZSTD; 2]);
    let copied = f.layer(&zstd, 1)?;
    assert_eq!(
        find(&copied, "big.txt").context("big.txt")?.data.len(),
        130_000
    );
    // The local output unpacks the zstd layers from the store; the image runs.
    assert_eq!(f.run_image(&local, &zstd.config)?, "130000\nran\n");
    // The docker archive has gzip layers although the store has zstd (and plain tar) ones.
    let heads = docker_layer_heads(&docker)?;
    assert_eq!(heads.len(), 3);
    for head in heads {
        assert_eq!(Compression::sniff(&head), Compression::Gzip, "{head:?}");
    }

    // gzip: the cached zstd results do not stand in; the diff_ids are the same.
    f.build_env(
        &[
            "-t",
            "test/gzip",
            "--compression",
            "gzip",
            "--compression-level",
            "1",
        ],
        &epoch,
    )?;
    let gzip = f.image("test/gzip")?;
    let own: Vec<&str> = gzip.manifest.layers[1..]
        .iter()
        .map(|l| l.media_type.as_str())
        .collect();
    assert_eq!(own, [OCI_LAYER_TAR_GZIP; 2]);
    assert_eq!(gzip.config.rootfs.diff_ids, zstd.config.rootfs.diff_ids);
    assert_ne!(gzip.manifest.layers, zstd.manifest.layers);

    // Levels are checked against the algorithm's range before anything runs.
    for (args, message) in [
        (
            &["--compression-level", "23"][..],
            "--compression-level: 23 is not a zstd level (use -7 to 22)",
        ),
        (
            &["--compression", "gzip", "--compression-level", "10"][..],
            "--compression-level: 10 is not a gzip level (use 0 to 9)",
        ),
        (&["--compression", "lz4"][..], "lz4"),
    ] {
        let out = f.command(args).output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(message),
            "{args:?}: {stderr}"
        );
    }
    f.build(&["--compression-level", "-7"])?;
    f.build(&["--compression", "gzip", "--compression-level", "9"])?;
    Ok(())
}

#[test]
fn fully_cached_rebuild_is_the_same_image_without_source_date_epoch() -> Result<()> {
    let f = Fixture::new()?;
    f.write("a.txt", "a\n")?;
    f.write(
        "Dockerfile",
        "FROM busybox\nENV A=1\nCOPY a.txt /\nRUN echo x > /x\nLABEL l=1\nCMD [\"true\"]\n",
    )?;
    let (first, _) = f.build_env(&["-t", "one"], &[])?;
    let (second, progress) = f.build_env(&["-t", "two"], &[])?;
    assert_eq!(steps_with(&progress, "CACHED").len(), 2, "{progress}");
    assert_eq!(first, second, "{progress}");

    // Every history entry has the time its step first ran; the image is as old as the last.
    let config = f.image("two")?.config;
    let history = config.history.clone().unwrap_or_default();
    assert_eq!(history.len(), 5);
    let times: Vec<_> = history.iter().map(|h| h.created.clone()).collect();
    assert!(times.iter().all(Option::is_some), "{times:?}");
    assert_eq!(config.created, times[4]);

    // An edit reruns the COPY and what follows: a new time, a new image.
    f.write("a.txt", "b\n")?;
    let (third, progress) = f.build_env(&["-t", "three"], &[])?;
    assert!(steps_with(&progress, "CACHED").is_empty(), "{progress}");
    assert_ne!(first, third);
    let newer = f.image("three")?.config.created;
    assert!(newer > config.created, "{newer:?} {:?}", config.created);
    Ok(())
}

#[test]
fn a_full_memory_scratch_builds_again_on_disk() -> Result<()> {
    let f = Fixture::new()?;
    f.write("a.txt", "a\n")?;
    f.write(
        "Dockerfile",
        "FROM busybox\nCOPY a.txt /\nRUN dd if=/dev/zero of=/big bs=1M count=24 2>/dev/null\n",
    )?;
    // 16 MiB of tmpfs cannot hold the 24 MiB the RUN writes (nor the unpacked base).
    let progress = f.build(&["--scratch-memory", "16M", "-t", "big"])?;
    assert!(
        progress.contains("the in-memory scratch space filled up"),
        "{progress}"
    );
    // The second try reused what the first finished.
    assert!(
        steps_with(&progress, "CACHED").contains(&"COPY a.txt /".to_owned()),
        "{progress}"
    );
    let image = f.image("big")?;
    assert!(find(&f.layer(&image, -1)?, "big").is_some());
    // On disk from the start: no retry.
    let progress = f.build(&["--scratch-memory", "0", "--no-cache", "-t", "big"])?;
    assert!(!progress.contains("filled up"), "{progress}");
    let out = f.command(&["--scratch-memory", "lots"]).output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--scratch-memory"), "{err}");
    Ok(())
}
