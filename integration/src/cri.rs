//! A private containerd 1.6 with its CRI plugin, for driving skiff the way the
//! kubelet does (the CRI client itself lives in tests/cri.rs). Two runtime
//! handlers: `skiff` is skiff's own shim, `runc-skiff` the stock runc v2 shim
//! with skiff as its BinaryName; both reach skiff through the harness's
//! logging wrapper and keep its state in the private root. Pods get a CNI
//! bridge network of their own: a bridge named after the test, IPAM state in
//! the temp dir, and no gateway address and no masquerading, so the host gets
//! no route and no iptables rule from it. Drop stops containerd and what it
//! ran (the containerd harness), then deletes the bridge, its veths and the
//! CNI cache entries of the network.

use std::fs;
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::containerd::Containerd;
use crate::image::{busybox_archive, pause_archive, IMAGE_REF, PAUSE_REF};
use crate::shim::SHIM;
use crate::{bin, mounts_under, wait_until};

/// The runtime handler served by containerd-shim-skiff-v2.
pub const HANDLER_SHIM: &str = "skiff";
/// The runtime handler served by containerd's runc v2 shim running skiff.
pub const HANDLER_RUNC: &str = "runc-skiff";
/// Where Debian's containernetworking-plugins puts the CNI plugins.
const CNI_BIN_DIR: &str = "/usr/lib/cni";
/// libcni's result cache; containerd 1.6 does not let a config move it.
const CNI_CACHE: &str = "/var/lib/cni/results";

pub struct CriContainerd {
    // Dropped first: containers, shims and containerd go before the network.
    ctd: Containerd,
    net: Network,
}

impl Deref for CriContainerd {
    type Target = Containerd;
    fn deref(&self) -> &Containerd {
        &self.ctd
    }
}

impl DerefMut for CriContainerd {
    fn deref_mut(&mut self) -> &mut Containerd {
        &mut self.ctd
    }
}

impl CriContainerd {
    /// Starts containerd with CRI and imports the busybox and pause images
    /// into the CRI's namespace.
    pub fn start() -> Result<Self> {
        let shim = bin(SHIM);
        if !shim.exists() {
            bail!("{} is missing: cargo build -p skiff-shim", shim.display());
        }
        for plugin in ["bridge", "host-local", "loopback"] {
            if !Path::new(CNI_BIN_DIR).join(plugin).exists() {
                bail!("{CNI_BIN_DIR}/{plugin} is missing: apt-get install containernetworking-plugins");
            }
        }
        let subnet = next_subnet();
        let setup = |dir: &Path, _: &str| write_setup(dir, &subnet);
        let ctd = Containerd::start_configured(true, Some(&setup))?;
        let net = Network::new(ctd.tmp.path(), &subnet);
        let c = Self { ctd, net };
        c.import_archive(&busybox_archive()?, IMAGE_REF)?;
        c.import_archive(&pause_archive()?, PAUSE_REF)?;
        Ok(c)
    }

    /// The busybox image containers run.
    pub fn image(&self) -> &'static str {
        IMAGE_REF
    }

    pub fn network(&self) -> &Network {
        &self.net
    }

    /// A directory for the logs of pod `pod` (the CRI makes the files).
    pub fn log_dir(&self, pod: &str) -> Result<PathBuf> {
        let dir = self.tmp.path().join("logs").join(pod);
        fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// The pods' network namespaces: the CRI mounts them in its state dir
    /// (netns_mounts_under_state_dir).
    pub fn pod_netns(&self) -> Vec<PathBuf> {
        let dir = self
            .tmp
            .path()
            .join("state/io.containerd.grpc.v1.cri/netns");
        fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect()
    }

    /// What the containerd harness finds, plus any mount under the private
    /// root, pod network namespace, veth on the bridge, CNI cache entry or
    /// iptables rule of the network.
    pub fn leftovers(&self) -> Result<Vec<String>> {
        let mut left = self.ctd.leftovers()?;
        left.extend(mounts_under(&self.tmp.path().join("root")));
        for ns in self.pod_netns() {
            left.push(format!("netns {}", ns.display()));
        }
        left.extend(self.net.leftovers()?);
        Ok(left)
    }

    /// Waits for the shims to exit (after the last container of theirs is
    /// deleted), then fails when anything is left.
    pub fn assert_clean_soon(&self) -> Result<()> {
        let _ = wait_until(10, "the shims to exit", || self.shims().is_empty());
        let left = self.leftovers()?;
        if !left.is_empty() {
            bail!(
                "CRI pods left behind: {left:?}\ncontainerd log:\n{}",
                self.log()
            );
        }
        Ok(())
    }

    /// The program names of the running shims of this containerd.
    pub fn shim_programs(&self) -> Vec<String> {
        self.shims()
            .iter()
            .filter_map(|pid| {
                let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                let arg0 = cmdline.split(|b| *b == 0).next()?;
                let arg0 = String::from_utf8_lossy(arg0);
                Some(arg0.rsplit('/').next().unwrap_or_default().to_owned())
            })
            .collect()
    }
}

/// A third octet for the next network's subnet, so that parallel tests (and
/// other test processes) give their pods different addresses. Nothing on the
/// host routes to these subnets: the bridge has no address.
fn next_subnet() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = (std::process::id() + NEXT.fetch_add(1, Ordering::Relaxed)) % 250;
    format!("10.213.{n}.0/24")
}

/// Writes the shim link, the skiff shim's options and the CNI config into
/// `dir`, and returns the CRI plugin's section of config.toml.
fn write_setup(dir: &Path, subnet: &str) -> Result<String> {
    let shim = bin(SHIM);
    symlink(&shim, dir.join("bin").join(SHIM)).context("cannot link the shim")?;
    // CRI hands a runtime that is not runc its options as a path
    // (runtimeoptions.v1.Options); the shim reads runc's keys from it.
    let shim_options = dir.join("cri-shim-options.json");
    let opts = json!({
        "BinaryName": dir.join("bin/skiff"),
        "Root": dir.join("runc"),
    });
    fs::write(&shim_options, opts.to_string())?;

    let net = Network::new(dir, subnet);
    let conf_dir = dir.join("cni");
    fs::create_dir_all(&conf_dir)?;
    // The loopback interface is CRI's own business (go-cni's built-in lo
    // network, with the loopback plugin from bin_dir); the conflist is the
    // pod's eth0 on the bridge.
    let conflist = json!({
        "cniVersion": "0.4.0",
        "name": net.name,
        "plugins": [{
            "type": "bridge",
            "bridge": net.bridge,
            "isGateway": false,
            "ipMasq": false,
            "hairpinMode": false,
            "ipam": {
                "type": "host-local",
                "dataDir": dir.join("cni-ipam"),
                "ranges": [[{"subnet": subnet}]]
            }
        }]
    });
    fs::write(
        conf_dir.join(format!("10-{}.conflist", net.name)),
        serde_json::to_vec_pretty(&conflist)?,
    )?;

    let cri = r#"[plugins."io.containerd.grpc.v1.cri"]"#;
    let runtimes = r#"[plugins."io.containerd.grpc.v1.cri".containerd.runtimes"#;
    Ok(format!(
        r#"
{cri}
  sandbox_image = "{PAUSE_REF}"
  # Without CAP_SYS_RESOURCE a container may not get a lower oom_score_adj
  # than containerd's.
  restrict_oom_score_adj = true
  enable_selinux = false
  # Pod netns mounts in the private state dir, not /var/run/netns.
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{conf_dir}"
    max_conf_num = 1

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "{HANDLER_SHIM}"

  {runtimes}.{HANDLER_SHIM}]
    runtime_type = "{RUNTIME}"
  {runtimes}.{HANDLER_SHIM}.options]
    ConfigPath = "{shim_options}"

  {runtimes}.{HANDLER_RUNC}]
    runtime_type = "io.containerd.runc.v2"
  {runtimes}.{HANDLER_RUNC}.options]
    BinaryName = "{dir}/bin/skiff"
    Root = "{dir}/runc"
"#,
        RUNTIME = crate::shim::RUNTIME,
        conf_dir = conf_dir.display(),
        shim_options = shim_options.display(),
        dir = dir.display(),
    ))
}

/// The CNI network of one CRI containerd, named after its temp dir. Dropping
/// it deletes the bridge, any veth still on it and the CNI cache entries of
/// its pods.
pub struct Network {
    /// The CNI network name.
    pub name: String,
    /// The bridge device (at most 15 bytes: "skcri" and the dir's random part).
    pub bridge: String,
    pub subnet: String,
    /// The containerd's temp dir, where its pods' netns live.
    dir: String,
}

impl Network {
    fn new(dir: &Path, subnet: &str) -> Self {
        let tag = dir.file_name().unwrap_or_default().to_string_lossy();
        let random = tag.rsplit('-').next().unwrap_or_default();
        Self {
            name: format!("skiff-cri-{random}"),
            bridge: format!("skcri{random}"),
            subnet: subnet.to_owned(),
            dir: dir.display().to_string(),
        }
    }

    /// The interfaces enslaved to the bridge (the host ends of pod veths).
    pub fn veths(&self) -> Result<Vec<String>> {
        if !link_exists(&self.bridge) {
            return Ok(Vec::new());
        }
        let out = Command::new("ip")
            .args(["-o", "link", "show", "master", &self.bridge])
            .stdin(Stdio::null())
            .output()
            .context("cannot run ip (apt-get install iproute2)")?;
        if !out.status.success() {
            bail!(
                "ip link show master {}: {}",
                self.bridge,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // "7: vethabc@if2: <...> ..." -> "vethabc"
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_owned())
            .collect())
    }

    /// The CNI cache files of this containerd's pods: the bridge network's
    /// and CRI's loopback network's, whose results name the pod's netns.
    pub fn cache_entries(&self) -> Vec<PathBuf> {
        let sandbox = format!("\"sandbox\":\"{}/", self.dir);
        fs::read_dir(CNI_CACHE)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| fs::read_to_string(p).is_ok_and(|t| t.contains(&sandbox)))
            .collect()
    }

    /// iptables rules that name the bridge, the network or its subnet.
    fn iptables_rules(&self) -> Result<Vec<String>> {
        let out = Command::new("iptables-save")
            .stdin(Stdio::null())
            .output()
            .context("cannot run iptables-save (apt-get install iptables)")?;
        if !out.status.success() {
            bail!("iptables-save: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| {
                [&self.bridge, &self.name, &self.subnet]
                    .iter()
                    .any(|n| l.contains(n.as_str()))
            })
            .map(|l| format!("iptables {l}"))
            .collect())
    }

    /// Pod attachments still on the network: veths, cache entries, rules.
    /// The bridge itself stays until Drop, as CNI leaves it with any runtime.
    pub fn leftovers(&self) -> Result<Vec<String>> {
        let mut left: Vec<String> = self
            .veths()?
            .into_iter()
            .map(|v| format!("veth {v} on {}", self.bridge))
            .collect();
        left.extend(
            self.cache_entries()
                .iter()
                .map(|p| format!("CNI cache {}", p.display())),
        );
        left.extend(self.iptables_rules()?);
        Ok(left)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for veth in self.veths().unwrap_or_default() {
            let _ = ip_link_delete(&veth);
        }
        if link_exists(&self.bridge) {
            let _ = ip_link_delete(&self.bridge);
        }
        for p in self.cache_entries() {
            let _ = fs::remove_file(p);
        }
    }
}

/// Whether a network interface named `name` exists in the host's namespace.
pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

fn ip_link_delete(name: &str) -> Result<()> {
    let out = Command::new("ip")
        .args(["link", "delete", name])
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        bail!(
            "ip link delete {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
