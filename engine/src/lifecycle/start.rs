//! `start`: everything a created or stopped container needs to run, then
//! the monitor's create and start. Whatever fails on the way is undone.

use std::fs;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use skiff_specs::monitor::{HealthConfig, LogConfig, MonitorConfig, MonitorState, Status};
use skiff_specs::Image;

use crate::container::record::{Container, MountKind};
use crate::container::{status, ContainerDir};
use crate::engine::Engine;
use crate::lock;
use crate::monitor::Stdio3;
use crate::spec::{self, ResolvedMount};

/// One monitor process serves all of an engine's containers (its socket
/// name derives from the engine's run dir too): about 180 kB each instead of
/// 410 kB with a monitor per container.
const MONITOR_GROUP: &str = "skiffctl";

/// Where `--init`'s static init lives on the host (Debian's tini-static).
const INIT_BINARIES: [&str; 2] = ["/usr/bin/tini-static", "/usr/bin/tini"];

/// Starts `c` (already locked by the caller). A running container is left
/// as it is.
pub fn start(engine: &Engine, c: &mut Container) -> Result<()> {
    let dir = engine.containers.dir(&c.id);
    let st = status::current(&dir);
    if status::is_running(&st) {
        return Ok(());
    }
    // Leftovers of the previous run (a stopped container's network, mount).
    super::teardown(engine, c)?;
    let result = set_up_and_run(engine, c, &dir);
    if let Err(e) = &result {
        let _ = super::teardown(engine, c);
        let failed = MonitorState {
            status: if st.status == Status::Created {
                Status::Created
            } else {
                Status::Exited
            },
            exit_code: if st.status == Status::Created { 0 } else { 128 },
            error: format!("{e:#}"),
            ..st
        };
        let _ = failed.write(&dir.state());
    }
    result
}

fn set_up_and_run(engine: &Engine, c: &mut Container, dir: &ContainerDir) -> Result<()> {
    let t0 = std::time::Instant::now();
    let name = c.name.clone();
    let step = |what: &str| tracing::debug!("start {name}: {what} at {:?}", t0.elapsed());
    let store = engine.store()?;
    let image = Image::load(&store, &c.manifest, &skiff_specs::Platform::host())
        .with_context(|| format!("the image of container {} ({})", c.name, c.image))?;

    // The network first: a port that is taken stops the start before
    // anything else exists (the engine lock keeps two starts from taking
    // the same port).
    let netns = {
        let _engine_lock = lock::engine(&engine.layout.locks())?;
        let netns = super::network::connect(engine, c, dir)?;
        engine.containers.save(c)?;
        netns
    };

    step("network");
    let lowers = crate::snapshots::open(engine)?.prepare(&store, &c.manifest)?;
    let rootfs = dir.rootfs();
    fs::create_dir_all(&rootfs)?;
    skiff_specs::snapshots::mount_overlay(&lowers, Some(&dir.upper()), Some(&dir.work()), &rootfs)
        .with_context(|| format!("cannot mount the root filesystem of {}", c.name))?;
    c.active.rootfs_mounted = true;
    engine.containers.save(c)?;

    step("rootfs mounted");
    super::network::write_files(engine, c, dir)?;
    let mounts = resolve_mounts(engine, c, &rootfs)?;
    let init = if c.host.init {
        Some(
            INIT_BINARIES
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file())
                .context("--init needs tini (apt-get install tini)")?,
        )
    } else {
        None
    };
    let spec = spec::build(&spec::Inputs {
        container: c,
        image: &image.config,
        rootfs: &rootfs,
        dir,
        netns,
        mounts,
        init,
        monitor_group: MONITOR_GROUP.to_owned(),
    })?;
    let bundle = dir.bundle();
    fs::write(
        bundle.join("config.json"),
        serde_json::to_vec_pretty(&spec)?,
    )
    .with_context(|| format!("cannot write {}", bundle.join("config.json").display()))?;

    let _ = fs::remove_file(dir.stop_marker());
    let mut on_exit = vec![engine.exe.display().to_string()];
    on_exit.extend(engine.root_args());
    on_exit.extend(["container-cleanup".to_owned(), c.id.clone()]);
    let config = MonitorConfig {
        state: dir.state(),
        log: Some(LogConfig {
            path: dir.log(&c.id),
            max_size: c.host.log_max_size,
            max_file: c.host.log_max_file.max(1),
        }),
        health: health_config(c),
        restart: c.host.restart.clone(),
        stop_marker: dir.stop_marker(),
        on_exit,
    };
    config
        .write(&bundle)
        .with_context(|| format!("cannot write {}", bundle.display()))?;

    let stdin = if c.config.open_stdin {
        let fifo = dir.stdin_fifo();
        if !fifo.exists() {
            nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
                .with_context(|| format!("cannot make {}", fifo.display()))?;
        }
        fifo.display().to_string()
    } else {
        String::new()
    };
    let stdio = Stdio3 {
        stdin,
        stdout: String::new(),
        stderr: String::new(),
        terminal: c.config.tty,
    };
    // The engine's containers share one monitor; one that is just exiting
    // (its last container gone) refuses the create: a new one is started.
    let create = || -> Result<crate::monitor::Monitor> {
        let m = engine.monitor.start(&bundle, &c.id)?;
        m.create(&engine.monitor, &bundle, &stdio)?;
        Ok(m)
    };
    step("spec written");
    let m = match create() {
        Ok(m) => m,
        Err(first) => {
            tracing::debug!("monitor create failed, retrying once: {first:#}");
            std::thread::sleep(std::time::Duration::from_millis(50));
            create()?
        }
    };
    step("monitor created the container");
    if let Err(e) = m.start("") {
        let _ = m.delete("");
        return Err(e);
    }
    Ok(())
}

/// docker's health check (durations in ns; zero means docker's default).
fn health_config(c: &Container) -> Option<HealthConfig> {
    let hc = c.config.healthcheck.as_ref()?;
    let test = hc.test.clone()?;
    let ns = |v: Option<i64>, default: u64| match v {
        Some(n) if n > 0 => n as u64,
        _ => default,
    };
    Some(HealthConfig {
        test,
        interval_ns: ns(hc.interval, HealthConfig::DEFAULT_INTERVAL_NS),
        timeout_ns: ns(hc.timeout, HealthConfig::DEFAULT_TIMEOUT_NS),
        start_period_ns: ns(hc.start_period, 0),
        start_interval_ns: ns(hc.start_interval, 0),
        retries: match hc.retries {
            Some(r) if r > 0 => r as u32,
            _ => HealthConfig::DEFAULT_RETRIES,
        },
    })
}

/// Volume names become host directories (made, and filled from the image
/// the first time); bind sources must exist.
fn resolve_mounts(
    engine: &Engine,
    c: &mut Container,
    rootfs: &std::path::Path,
) -> Result<Vec<ResolvedMount>> {
    let mut out = Vec::new();
    let mut changed = false;
    for m in c.host.mounts.iter_mut() {
        let source = match m.kind {
            MountKind::Tmpfs => PathBuf::new(),
            MountKind::Bind => {
                let p = PathBuf::from(&m.source);
                if !p.exists() {
                    bail!(
                        "invalid mount config for type \"bind\": bind source path does not exist: {}",
                        m.source
                    );
                }
                p
            }
            MountKind::Volume => {
                let anonymous = m.source.is_empty();
                if anonymous {
                    // An anonymous volume gets a name once and keeps it.
                    m.source = crate::ids::new_id()?;
                    changed = true;
                }
                let v = engine
                    .volumes
                    .create(&m.source, Default::default(), anonymous)?;
                if !v.populated {
                    if !m.no_copy {
                        crate::volumes::copy_up(rootfs, &m.target, &v.mountpoint).with_context(
                            || format!("cannot fill volume {} from the image", m.source),
                        )?;
                    }
                    engine.volumes.set_populated(&m.source)?;
                }
                v.mountpoint
            }
        };
        out.push(ResolvedMount {
            kind: m.kind,
            source,
            target: m.target.clone(),
            read_only: m.read_only,
            tmpfs_options: m.tmpfs_options.clone(),
        });
    }
    if changed {
        engine.containers.save(c)?;
    }
    Ok(out)
}
