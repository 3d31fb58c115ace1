//! Kubernetes' path to skiff: containerd 1.6's CRI plugin driven by a CRI v1
//! client, as the kubelet drives it, once with skiff's shim (handler `skiff`)
//! and once with containerd's runc v2 shim running skiff (`runc-skiff`). A pod
//! on a CNI bridge, containers created, started, exec'd into, logging, two of
//! them talking over the pod's shared network namespace, stopped and removed;
//! then nothing may be left: shims, processes, mounts, cgroups, netns, veths,
//! CNI state, iptables rules, and after the harness is gone the bridge.

use std::collections::HashMap;
use std::fs;
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    Container, ContainerConfig, ContainerMetadata, ContainerState, ContainerStatus,
    ContainerStatusRequest, CreateContainerRequest, ExecSyncRequest, ExecSyncResponse, ImageSpec,
    ImageStatusRequest, LinuxPodSandboxConfig, ListContainersRequest, ListPodSandboxRequest,
    PodSandbox, PodSandboxConfig, PodSandboxMetadata, PodSandboxState, PodSandboxStatus,
    PodSandboxStatusRequest, RemoveContainerRequest, RemovePodSandboxRequest, RunPodSandboxRequest,
    StartContainerRequest, StatusRequest, StopContainerRequest, StopPodSandboxRequest,
};
use skiff_integration::client::Client;
use skiff_integration::containerd::text;
use skiff_integration::cri::{link_exists, CriContainerd, HANDLER_RUNC, HANDLER_SHIM};
use skiff_integration::image::PAUSE_REF;
use skiff_integration::{cgroup_dirs_at, pid_alive};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// How long any one wait may take before the test gives up (a deadline for a
/// hung case, never the verdict of a healthy one).
const PATIENCE: Duration = Duration::from_secs(30);

/// A CRI v1 client on containerd's socket, with a runtime of its own to run
/// the calls from these synchronous tests.
struct Cri {
    rt: tokio::runtime::Runtime,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

/// A pod made by `Cri::run_pod`: CreateContainer wants its config again.
struct Pod {
    id: String,
    config: PodSandboxConfig,
}

impl Cri {
    fn connect(socket: &Path) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let path = socket.to_path_buf();
        // The URI is a placeholder: every connection goes to the unix socket.
        let endpoint = Endpoint::from_static("http://localhost").timeout(Duration::from_secs(60));
        let connect = endpoint.connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }));
        let channel = rt
            .block_on(connect)
            .with_context(|| format!("cannot connect to {}", socket.display()))?;
        Ok(Self {
            rt,
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
        })
    }

    /// Runs one call to completion; the error names the call.
    fn call<T>(
        &self,
        what: &str,
        f: impl Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T> {
        self.rt
            .block_on(f)
            .map(tonic::Response::into_inner)
            .map_err(|s| anyhow!("CRI {what}: {:?}: {}", s.code(), s.message()))
    }

    /// Waits for the runtime and the pod network (CNI config loaded) to be ready.
    fn wait_ready(&self) -> Result<()> {
        poll("CRI RuntimeReady and NetworkReady", || {
            let st = self.call(
                "Status",
                self.runtime
                    .clone()
                    .status(StatusRequest { verbose: false }),
            )?;
            let conditions = st.status.map(|s| s.conditions).unwrap_or_default();
            let ready = |t: &str| conditions.iter().any(|c| c.r#type == t && c.status);
            Ok((ready("RuntimeReady") && ready("NetworkReady")).then_some(()))
        })
    }

    /// Waits for the CRI's image store to hold `image` (ctr imports it; the
    /// CRI learns of it from containerd's image events).
    fn wait_image(&self, image: &str) -> Result<()> {
        poll(&format!("image {image} in the CRI"), || {
            let req = ImageStatusRequest {
                image: Some(image_spec(image)),
                verbose: false,
            };
            let st = self.call("ImageStatus", self.images.clone().image_status(req))?;
            Ok(st.image.map(|_| ()))
        })
    }

    /// RunPodSandbox with `handler`: its containers' cgroups go below the
    /// harness's private parent, their logs into its temp dir.
    fn run_pod(&self, c: &CriContainerd, handler: &str, name: &str) -> Result<Pod> {
        let config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.into(),
                uid: format!("{name}-uid"),
                namespace: "skiff-it".into(),
                attempt: 0,
            }),
            hostname: name.into(),
            log_directory: c.log_dir(name)?.display().to_string(),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: format!("/{}", c.cgroup_parent),
                ..Default::default()
            }),
            ..Default::default()
        };
        let req = RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.into(),
        };
        let id = self
            .call("RunPodSandbox", self.runtime.clone().run_pod_sandbox(req))?
            .pod_sandbox_id;
        Ok(Pod { id, config })
    }

    fn pod_status(&self, pod: &Pod) -> Result<PodSandboxStatus> {
        Ok(self.pod_status_verbose(pod)?.0)
    }

    /// PodSandboxStatus with the verbose info (its JSON has the pid).
    fn pod_status_verbose(&self, pod: &Pod) -> Result<(PodSandboxStatus, HashMap<String, String>)> {
        let req = PodSandboxStatusRequest {
            pod_sandbox_id: pod.id.clone(),
            verbose: true,
        };
        let resp = self.call(
            "PodSandboxStatus",
            self.runtime.clone().pod_sandbox_status(req),
        )?;
        let status = resp.status.context("PodSandboxStatus without a status")?;
        Ok((status, resp.info))
    }

    /// The pid of the pod's sandbox (pause) process.
    fn pod_pid(&self, pod: &Pod) -> Result<i32> {
        info_pid(&self.pod_status_verbose(pod)?.1)
    }

    /// CreateContainer of the busybox image running `command`, logging to
    /// NAME.log in the pod's log directory.
    fn create(&self, pod: &Pod, name: &str, image: &str, command: &[&str]) -> Result<String> {
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(image_spec(image)),
            command: command.iter().map(|s| s.to_string()).collect(),
            log_path: format!("{name}.log"),
            ..Default::default()
        };
        let req = CreateContainerRequest {
            pod_sandbox_id: pod.id.clone(),
            config: Some(config),
            sandbox_config: Some(pod.config.clone()),
        };
        Ok(self
            .call(
                "CreateContainer",
                self.runtime.clone().create_container(req),
            )?
            .container_id)
    }

    fn start(&self, id: &str) -> Result<()> {
        let req = StartContainerRequest {
            container_id: id.into(),
        };
        self.call("StartContainer", self.runtime.clone().start_container(req))?;
        Ok(())
    }

    fn exec_sync(&self, id: &str, cmd: &[&str]) -> Result<ExecSyncResponse> {
        let req = ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: PATIENCE.as_secs() as i64,
        };
        self.call("ExecSync", self.runtime.clone().exec_sync(req))
    }

    /// ContainerStatus with the verbose info (its JSON has the pid).
    fn status(&self, id: &str) -> Result<(ContainerStatus, HashMap<String, String>)> {
        let req = ContainerStatusRequest {
            container_id: id.into(),
            verbose: true,
        };
        let resp = self.call(
            "ContainerStatus",
            self.runtime.clone().container_status(req),
        )?;
        let status = resp.status.context("ContainerStatus without a status")?;
        Ok((status, resp.info))
    }

    fn wait_state(&self, id: &str, want: ContainerState) -> Result<ContainerStatus> {
        poll(&format!("container {id} to be {want:?}"), || {
            let (st, _) = self.status(id)?;
            Ok((st.state == want as i32).then_some(st))
        })
    }

    /// The pid of a running container's init, from the verbose status.
    fn pid(&self, id: &str) -> Result<i32> {
        info_pid(&self.status(id)?.1)
    }

    fn stop(&self, id: &str) -> Result<()> {
        let req = StopContainerRequest {
            container_id: id.into(),
            timeout: PATIENCE.as_secs() as i64,
        };
        self.call("StopContainer", self.runtime.clone().stop_container(req))?;
        Ok(())
    }

    fn remove(&self, id: &str) -> Result<()> {
        let req = RemoveContainerRequest {
            container_id: id.into(),
        };
        self.call(
            "RemoveContainer",
            self.runtime.clone().remove_container(req),
        )?;
        Ok(())
    }

    fn stop_pod(&self, pod: &Pod) -> Result<()> {
        let req = StopPodSandboxRequest {
            pod_sandbox_id: pod.id.clone(),
        };
        self.call("StopPodSandbox", self.runtime.clone().stop_pod_sandbox(req))?;
        Ok(())
    }

    fn remove_pod(&self, pod: &Pod) -> Result<()> {
        let req = RemovePodSandboxRequest {
            pod_sandbox_id: pod.id.clone(),
        };
        self.call(
            "RemovePodSandbox",
            self.runtime.clone().remove_pod_sandbox(req),
        )?;
        Ok(())
    }

    fn pods(&self) -> Result<Vec<PodSandbox>> {
        let req = ListPodSandboxRequest { filter: None };
        Ok(self
            .call("ListPodSandbox", self.runtime.clone().list_pod_sandbox(req))?
            .items)
    }

    fn containers(&self) -> Result<Vec<Container>> {
        let req = ListContainersRequest { filter: None };
        Ok(self
            .call("ListContainers", self.runtime.clone().list_containers(req))?
            .containers)
    }

    /// The (stream, message) lines of a container's CRI log file.
    fn log(&self, id: &str) -> Result<Vec<(String, String)>> {
        let (st, _) = self.status(id)?;
        let text = fs::read_to_string(&st.log_path)
            .with_context(|| format!("cannot read the log {}", st.log_path))?;
        // TIMESTAMP STREAM TAG MESSAGE, TAG F for a full line.
        Ok(text
            .lines()
            .filter_map(|l| {
                let mut parts = l.splitn(4, ' ');
                let (_, stream, _, msg) =
                    (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
                Some((stream.to_owned(), msg.to_owned()))
            })
            .collect())
    }

    /// Waits until container `id`'s log has each of `want` (stream, line).
    fn wait_log(&self, id: &str, want: &[(&str, &str)]) -> Result<Vec<(String, String)>> {
        let mut last = Vec::new();
        let found = poll(&format!("log lines {want:?} of {id}"), || {
            last = self.log(id)?;
            let has = |(s, m): &(&str, &str)| last.iter().any(|(ls, lm)| ls == s && lm == m);
            Ok(want.iter().all(has).then(|| last.clone()))
        });
        found.map_err(|e| anyhow!("{e}; the log: {last:?}"))
    }
}

/// The pid in a verbose status's info JSON.
fn info_pid(info: &HashMap<String, String>) -> Result<i32> {
    let json = info.get("info").context("no verbose info")?;
    let v: serde_json::Value = serde_json::from_str(json)?;
    let pid = v["pid"].as_i64().context("no pid in the verbose info")?;
    Ok(i32::try_from(pid)?)
}

fn image_spec(image: &str) -> ImageSpec {
    ImageSpec {
        image: image.into(),
        ..Default::default()
    }
}

/// Calls `f` every 50 ms until it yields a value; fails after PATIENCE.
fn poll<T>(what: &str, mut f: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {PATIENCE:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts a CRI containerd, waits for it and its images, runs `case`, checks
/// that nothing is left, and after the harness is gone that neither its
/// bridge nor its cgroup parent remains. A failure carries skiff's calls and
/// containerd's log.
fn run_case(case: impl FnOnce(&CriContainerd, &Cri) -> Result<()>) -> Result<()> {
    let c = CriContainerd::start()?;
    let bridge = c.network().bridge.clone();
    let parent = c.cgroup_parent.clone();
    let outcome = Cri::connect(&c.socket).and_then(|cri| {
        cri.wait_ready()?;
        cri.wait_image(c.image())?;
        cri.wait_image(PAUSE_REF)?;
        case(&c, &cri)?;
        if !cri.pods()?.is_empty() || !cri.containers()?.is_empty() {
            bail!(
                "the CRI still lists pods {:?} or containers {:?}",
                cri.pods()?,
                cri.containers()?
            );
        }
        c.assert_clean_soon()
    });
    if let Err(e) = outcome {
        bail!(
            "{e:#}\nskiff calls:\n{}\ncontainerd log:\n{}",
            c.calls(),
            c.log()
        );
    }
    drop(c);
    if link_exists(&bridge) {
        bail!("the bridge {bridge} is still there");
    }
    let cgroups = cgroup_dirs_at(&parent);
    if !cgroups.is_empty() {
        bail!("the pods' cgroup parent is still there: {cgroups:?}");
    }
    Ok(())
}

/// The server: an httpd on the pod's loopback, a TERM trap that logs and
/// exits 0 (so StopContainer's SIGTERM reaching init shows in the exit code).
const SERVER: &str = "trap 'echo server stopping; exit 0' TERM; \
    mkdir -p /www && echo hello from the server > /www/index.html; \
    httpd -f -p 127.0.0.1:8080 -h /www & \
    echo server up; echo server warning >&2; wait";

/// The client: its network namespace, then the server's page fetched over
/// 127.0.0.1 (retried until httpd listens; the test's deadline bounds it).
const CLIENT: &str = "readlink /proc/self/ns/net; \
    until wget -q -O - http://127.0.0.1:8080/index.html; do sleep 0.1; done";

/// RunPodSandbox → two containers in the pod (create, start, exec, logs, the
/// shared network namespace) → StopContainer/RemoveContainer →
/// StopPodSandbox/RemovePodSandbox, with runtime handler `handler`, whose
/// shim program is `shim`.
fn pod_lifecycle(handler: &str, shim: &str) -> Result<()> {
    run_case(|c, cri| {
        let pod = cri.run_pod(c, handler, "web")?;
        let st = cri.pod_status(&pod)?;
        let ip = st.network.map(|n| n.ip).unwrap_or_default();
        let subnet = &c.network().subnet;
        let prefix = subnet
            .rsplit_once('.')
            .map_or(String::new(), |(n, _)| format!("{n}."));
        if st.state != PodSandboxState::SandboxReady as i32 || !ip.starts_with(&prefix) {
            bail!(
                "pod state {}, ip {ip:?} (want ready, in {subnet})",
                st.state
            );
        }
        let shims = c.shim_programs();
        if shims != [shim] {
            bail!("the pod's shims are {shims:?}, want one {shim}");
        }
        // What the leftover checks look for is there while the pod runs: a
        // veth on the bridge, the netns, the CNI cache entries (eth0 and lo).
        let (veths, netns, cache) = (
            c.network().veths()?,
            c.pod_netns(),
            c.network().cache_entries(),
        );
        if veths.len() != 1 || netns.len() != 1 || cache.len() != 2 {
            bail!("the running pod has veths {veths:?}, netns {netns:?}, CNI cache {cache:?}");
        }

        let server = cri.create(&pod, "server", c.image(), &["sh", "-c", SERVER])?;
        cri.wait_state(&server, ContainerState::ContainerCreated)?;
        cri.start(&server)?;
        cri.wait_state(&server, ContainerState::ContainerRunning)?;
        let pids = vec![cri.pod_pid(&pod)?, cri.pid(&server)?];

        let out = cri.exec_sync(&server, &["sh", "-c", "echo out; echo err >&2; exit 3"])?;
        if (text(&out.stdout), text(&out.stderr), out.exit_code)
            != ("out\n".into(), "err\n".into(), 3)
        {
            bail!("ExecSync: {out:?}, want stdout out, stderr err, exit code 3");
        }
        let out = cri.exec_sync(&server, &["ip", "-o", "-4", "addr", "show", "dev", "eth0"])?;
        if out.exit_code != 0 || !text(&out.stdout).contains(&format!("inet {ip}/")) {
            bail!("the pod's eth0 in the container: {out:?}, want {ip}");
        }
        let netns = cri.exec_sync(&server, &["readlink", "/proc/self/ns/net"])?;
        let netns = text(&netns.stdout).trim().to_owned();
        if !netns.starts_with("net:[") {
            bail!("readlink /proc/self/ns/net in the server: {netns:?}");
        }
        cri.wait_log(
            &server,
            &[("stdout", "server up"), ("stderr", "server warning")],
        )?;

        // The client runs to completion; its log shows both sides.
        let client = cri.create(&pod, "client", c.image(), &["sh", "-c", CLIENT])?;
        cri.start(&client)?;
        let done = cri.wait_state(&client, ContainerState::ContainerExited)?;
        if done.exit_code != 0 {
            bail!(
                "the client exited with {}: {:?}",
                done.exit_code,
                cri.log(&client)?
            );
        }
        cri.wait_log(
            &client,
            &[
                ("stdout", netns.as_str()),
                ("stdout", "hello from the server"),
            ],
        )?;

        // StopContainer: SIGTERM to the server's init, which exits 0.
        cri.stop(&server)?;
        let st = cri.wait_state(&server, ContainerState::ContainerExited)?;
        if st.exit_code != 0 {
            bail!("the stopped server exited with {} (want 0)", st.exit_code);
        }
        cri.wait_log(&server, &[("stdout", "server stopping")])?;
        cri.stop(&client)?;
        cri.remove(&server)?;
        cri.remove(&client)?;

        cri.stop_pod(&pod)?;
        let st = cri.pod_status(&pod)?;
        if st.state != PodSandboxState::SandboxNotready as i32 {
            bail!("the stopped pod's state is {}", st.state);
        }
        cri.remove_pod(&pod)?;
        let alive: Vec<i32> = pids.into_iter().filter(|p| pid_alive(*p)).collect();
        if !alive.is_empty() {
            bail!("container processes still alive: {alive:?}");
        }
        let calls = [
            "create --bundle".to_owned(),
            format!("start {}", pod.id),
            format!("start {server}"),
            "exec --process".to_owned(),
            format!("delete {server}"),
            format!("delete {}", pod.id),
        ];
        c.assert_called(&calls.iter().map(String::as_str).collect::<Vec<_>>())
    })
}

#[test]
fn pod_lifecycle_with_skiff_shim() -> Result<()> {
    pod_lifecycle(HANDLER_SHIM, "containerd-shim-skiff-v2")
}

#[test]
fn pod_lifecycle_with_runc_shim_running_skiff() -> Result<()> {
    pod_lifecycle(HANDLER_RUNC, "containerd-shim-runc-v2")
}

/// CreateContainer then RemoveContainer without StartContainer, in a pod of
/// each handler: the container goes, the pod is unaffected. (containerd 1.6's
/// CRI makes the task only in StartContainer, so the runtime never sees this
/// container; a later CRI that creates it earlier gets the same checks.)
#[test]
fn created_container_removed_without_start() -> Result<()> {
    run_case(|c, cri| {
        for handler in [HANDLER_SHIM, HANDLER_RUNC] {
            let pod = cri.run_pod(c, handler, &format!("idle-{handler}"))?;
            let id = cri.create(&pod, "never-started", c.image(), &["sleep", "1000"])?;
            cri.wait_state(&id, ContainerState::ContainerCreated)?;
            cri.remove(&id)?;
            if cri.status(&id).is_ok() {
                bail!("container {id} still has a status after RemoveContainer");
            }
            if cri.pod_status(&pod)?.state != PodSandboxState::SandboxReady as i32 {
                bail!("the pod is not ready after removing its container");
            }
            cri.stop_pod(&pod)?;
            cri.remove_pod(&pod)?;
        }
        Ok(())
    })
}
