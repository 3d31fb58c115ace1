//! Helpers of the networking tests (they need root): a private store per
//! test, containers (namespace + attachment) that clean up on drop,
//! servers and clients inside namespaces, a small DNS client, and checks
//! that nothing a test made is left on the host.
//!
//! Every test uses its own state and run directories; subnets come from
//! the store's allocator, whose host-wide claims keep parallel tests (and
//! other stores) apart. Verdicts never depend on timing: positive checks
//! poll up to a generous deadline, negative ones (isolation) are made only
//! after the same path was shown to work from elsewhere.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};
use skiff_specs::net::{
    AttachRequest, Attachment, CreateOptions, NetConfig, NetError, Netns, Network, NetworkRequest,
    Networks, PortMapping, Protocol,
};

/// How long a positive check may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// A private store; removes its networks (and the netns dir) when dropped.
pub struct Env {
    pub tmp: tempfile::TempDir,
    pub nets: Networks,
    pub run_dir: PathBuf,
    pub state_dir: PathBuf,
    made: Mutex<Vec<String>>,
}

impl Env {
    pub fn new() -> Env {
        let tmp = tempfile::Builder::new()
            .prefix("skiff-net-test-")
            .tempdir()
            .expect("tempdir");
        let state_dir = tmp.path().join("state");
        let run_dir = tmp.path().join("run");
        let cfg =
            NetConfig::discover(&state_dir, &run_dir).expect("netavark, aardvark-dns, iptables");
        let nets = Networks::open(cfg).expect("open store");
        let state_dir = nets.config().state_dir.clone();
        Env {
            tmp,
            nets,
            run_dir,
            state_dir,
            made: Mutex::new(Vec::new()),
        }
    }

    /// A user network with an auto-allocated subnet.
    pub fn network(&self, name: &str) -> Network {
        self.network_with(name, &CreateOptions::default())
    }

    pub fn network_with(&self, name: &str, opts: &CreateOptions) -> Network {
        let net = self.nets.create(name, opts).expect("create network");
        self.made.lock().expect("lock").push(net.id.clone());
        net
    }

    /// A namespace `id` attached to `networks` (name, aliases) with `ports`.
    pub fn container(
        &self,
        id: &str,
        networks: &[(&Network, &[&str])],
        ports: &[PortMapping],
    ) -> Container<'_> {
        self.try_container(id, networks, ports).expect("connect")
    }

    pub fn try_container(
        &self,
        id: &str,
        networks: &[(&Network, &[&str])],
        ports: &[PortMapping],
    ) -> Result<Container<'_>, NetError> {
        let ns = Netns::create(&self.run_dir, id).expect("netns");
        let mut c = Container {
            env: self,
            id: id.to_string(),
            ns: Some(ns),
            att: None,
        };
        let req = AttachRequest {
            container_id: id.to_string(),
            container_name: format!("{id}-name"),
            netns: c.path(),
            networks: networks
                .iter()
                .map(|(n, aliases)| NetworkRequest {
                    network: n.name.clone(),
                    aliases: aliases.iter().map(|a| a.to_string()).collect(),
                    static_ip: None,
                })
                .collect(),
            ports: ports.to_vec(),
        };
        c.att = Some(self.nets.connect(&req)?);
        Ok(c)
    }
}

impl Drop for Env {
    /// Removes the networks made through [`Env::network`]. A default network
    /// a test made keeps its subnet claim, which turns stale with the temp
    /// dir and is dropped by the next store that looks at claims.
    fn drop(&mut self) {
        for id in self.made.lock().map(|m| m.clone()).unwrap_or_default() {
            let _ = self.nets.remove(&id);
        }
    }
}

/// A network namespace with its attachment; disconnects and removes itself on drop.
pub struct Container<'a> {
    env: &'a Env,
    pub id: String,
    pub ns: Option<Netns>,
    pub att: Option<Attachment>,
}

impl Container<'_> {
    pub fn path(&self) -> PathBuf {
        self.ns
            .as_ref()
            .map(|n| n.path.clone())
            .unwrap_or_else(|| self.env.run_dir.join("netns").join(&self.id))
    }

    pub fn att(&self) -> &Attachment {
        self.att.as_ref().expect("attached")
    }

    pub fn ip(&self) -> Ipv4Addr {
        self.att().interfaces[0].ip
    }

    pub fn gateway(&self) -> Ipv4Addr {
        self.att().interfaces[0].gateway
    }

    /// Disconnect and remove the namespace now, reporting errors.
    pub fn stop(&mut self) -> Result<(), NetError> {
        let path = self.path();
        if let Some(att) = self.att.take() {
            self.env.nets.disconnect(&att, &path)?;
        }
        if let Some(ns) = self.ns.take() {
            ns.remove()?;
        }
        Ok(())
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// An attachment that is disconnected on drop (also when a test panics).
pub struct AttGuard<'a> {
    nets: &'a Networks,
    pub att: Option<Attachment>,
    netns: PathBuf,
}

impl<'a> AttGuard<'a> {
    pub fn new(nets: &'a Networks, att: Attachment, netns: PathBuf) -> AttGuard<'a> {
        AttGuard {
            nets,
            att: Some(att),
            netns,
        }
    }

    pub fn att(&self) -> &Attachment {
        self.att.as_ref().expect("attached")
    }

    pub fn disconnect(mut self) -> Result<(), NetError> {
        match self.att.take() {
            Some(att) => self.nets.disconnect(&att, &self.netns),
            None => Ok(()),
        }
    }
}

impl Drop for AttGuard<'_> {
    fn drop(&mut self) {
        if let Some(att) = self.att.take() {
            let _ = self.nets.disconnect(&att, &self.netns);
        }
    }
}

/// A namespace file that is removed on drop (also when a test panics).
pub struct NsGuard(pub Option<Netns>);

impl NsGuard {
    pub fn new(run_dir: &Path, id: &str) -> NsGuard {
        NsGuard(Some(Netns::create(run_dir, id).expect("netns")))
    }

    pub fn path(&self) -> PathBuf {
        self.0.as_ref().expect("netns").path.clone()
    }

    pub fn remove(mut self) -> Result<(), NetError> {
        self.0.take().map_or(Ok(()), Netns::remove)
    }
}

impl Drop for NsGuard {
    fn drop(&mut self) {
        if let Some(ns) = self.0.take() {
            let _ = ns.remove();
        }
    }
}

/// Removes the namespace file at a path on drop, if still there (a test
/// that drives `Netns` itself and may panic before removing it).
pub struct NsCleanup(pub PathBuf);

impl Drop for NsCleanup {
    fn drop(&mut self) {
        let _ = Netns {
            path: self.0.clone(),
        }
        .remove();
    }
}

/// Runs `f` in a thread inside the namespace (or on the host for `None`).
pub fn in_netns<R: Send>(ns: Option<&Path>, f: impl FnOnce() -> R + Send) -> R {
    let Some(ns) = ns else { return f() };
    let file = File::open(ns).expect("open netns");
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("netns thread")
    })
}

/// A TCP or UDP server in a namespace: answers `<name> <peer ip>`.
pub struct Server {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn tcp(ns: Option<&Path>, addr: SocketAddr, name: &str) -> Server {
        let listener = in_netns(ns, || TcpListener::bind(addr)).expect("bind tcp server");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let name = name.to_string();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, peer)) => {
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.write_all(format!("{name} {}", peer.ip()).as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Server {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    pub fn udp(ns: Option<&Path>, addr: SocketAddr, name: &str) -> Server {
        let sock = in_netns(ns, || UdpSocket::bind(addr)).expect("bind udp server");
        let addr = sock.local_addr().expect("addr");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let name = name.to_string();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !flag.load(Ordering::Relaxed) {
                if let Ok((_, peer)) = sock.recv_from(&mut buf) {
                    let _ = sock.send_to(format!("{name} {}", peer.ip()).as_bytes(), peer);
                }
            }
        });
        Server {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One TCP request from `ns`: the server's answer.
pub fn tcp_get(ns: Option<&Path>, addr: SocketAddr, timeout: Duration) -> io::Result<String> {
    in_netns(ns, || {
        let mut conn = TcpStream::connect_timeout(&addr, timeout)?;
        conn.set_read_timeout(Some(timeout))?;
        let mut out = String::new();
        conn.read_to_string(&mut out)?;
        if out.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "empty answer"));
        }
        Ok(out)
    })
}

/// One UDP request from `ns`: the server's answer.
pub fn udp_get(ns: Option<&Path>, addr: SocketAddr, timeout: Duration) -> io::Result<String> {
    in_netns(ns, || {
        let sock = UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0))?;
        sock.set_read_timeout(Some(timeout))?;
        sock.send_to(b"ping", addr)?;
        let mut buf = [0u8; 512];
        let (n, _) = sock.recv_from(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    })
}

/// Calls `f` until it succeeds or [`DEADLINE`] passes.
pub fn poll<T, E: std::fmt::Display>(what: &str, mut f: impl FnMut() -> Result<T, E>) -> T {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if start.elapsed() > DEADLINE => {
                panic!("{what}: still failing after {DEADLINE:?}: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Polls a TCP request until it answers.
pub fn reach_tcp(ns: Option<&Path>, addr: SocketAddr) -> String {
    poll(&format!("tcp {addr} from {ns:?}"), || {
        tcp_get(ns, addr, Duration::from_secs(2))
    })
}

pub fn reach_udp(ns: Option<&Path>, addr: SocketAddr) -> String {
    poll(&format!("udp {addr} from {ns:?}"), || {
        udp_get(ns, addr, Duration::from_millis(500))
    })
}

/// An A query to `server:53` from inside `ns`: the addresses of the answer.
pub fn dns_a(ns: &Path, server: Ipv4Addr, name: &str) -> io::Result<Vec<Ipv4Addr>> {
    static NEXT_ID: AtomicU32 = AtomicU32::new(1);
    let id = (NEXT_ID.fetch_add(1, Ordering::Relaxed) as u16) ^ (std::process::id() as u16);
    let mut query = Vec::new();
    query.extend_from_slice(&id.to_be_bytes());
    query.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD, one question
    for label in name.split('.') {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]); // root, type A, class IN
    in_netns(Some(ns), || {
        let sock = UdpSocket::bind("0.0.0.0:0")?;
        sock.set_read_timeout(Some(Duration::from_secs(1)))?;
        sock.connect((server, 53))?;
        sock.send(&query)?;
        let mut buf = [0u8; 1500];
        let n = sock.recv(&mut buf)?;
        parse_a_answers(&buf[..n], id)
    })
}

fn parse_a_answers(msg: &[u8], id: u16) -> io::Result<Vec<Ipv4Addr>> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    if msg.len() < 12 || u16::from_be_bytes([msg[0], msg[1]]) != id {
        return Err(bad("not our answer"));
    }
    let rcode = msg[3] & 0x0f;
    if rcode != 0 {
        return Err(bad(&format!("rcode {rcode}")));
    }
    let qd = u16::from_be_bytes([msg[4], msg[5]]);
    let an = u16::from_be_bytes([msg[6], msg[7]]);
    let mut at = 12;
    let skip_name = |mut at: usize| -> io::Result<usize> {
        loop {
            let len = *msg.get(at).ok_or_else(|| bad("short name"))? as usize;
            if len == 0 {
                return Ok(at + 1);
            }
            if len & 0xc0 == 0xc0 {
                return Ok(at + 2);
            }
            at += len + 1;
        }
    };
    for _ in 0..qd {
        at = skip_name(at)? + 4;
    }
    let mut out = Vec::new();
    for _ in 0..an {
        at = skip_name(at)?;
        let field = |i: usize| msg.get(at + i).copied().ok_or_else(|| bad("short record"));
        let rtype = u16::from_be_bytes([field(0)?, field(1)?]);
        let rdlen = u16::from_be_bytes([field(8)?, field(9)?]) as usize;
        let data = msg
            .get(at + 10..at + 10 + rdlen)
            .ok_or_else(|| bad("short data"))?;
        if rtype == 1 && rdlen == 4 {
            out.push(Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        at += 10 + rdlen;
    }
    if out.is_empty() {
        return Err(bad("no A record"));
    }
    Ok(out)
}

/// The host's address on its default route's interface.
pub fn primary_ipv4() -> Ipv4Addr {
    let routes = fs::read_to_string("/proc/net/route").expect("routes");
    let iface = routes
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 7 && f[1] == "00000000" && f[7] == "00000000")
        .map(|f| f[0].to_string());
    let addrs: Vec<(String, Ipv4Addr)> = nix::ifaddrs::getifaddrs()
        .expect("getifaddrs")
        .filter_map(|a| {
            let ip = a.address.as_ref()?.as_sockaddr_in()?.ip();
            Some((a.interface_name.clone(), ip))
        })
        .filter(|(name, ip)| !ip.is_loopback() && !name.starts_with("sk-"))
        .collect();
    addrs
        .iter()
        .find(|(name, _)| Some(name) == iface.as_ref())
        .or_else(|| addrs.first())
        .map(|(_, ip)| *ip)
        .expect("a non-loopback IPv4 address on the host")
}

/// A port the kernel considers free on the host now.
pub fn free_port(protocol: Protocol) -> u16 {
    match protocol {
        Protocol::Tcp => TcpListener::bind("0.0.0.0:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port(),
        Protocol::Udp => UdpSocket::bind("0.0.0.0:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port(),
    }
}

pub fn publish(host_port: u16, container_port: u16, protocol: Protocol) -> PortMapping {
    PortMapping {
        host_ip: None,
        host_port,
        container_port,
        protocol,
    }
}

pub fn sock(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip), port)
}

/// iptables-save of filter and nat, rule and chain lines.
pub fn iptables_lines() -> Vec<String> {
    let mut lines = Vec::new();
    for table in ["filter", "nat"] {
        let out = Command::new("iptables-save")
            .args(["-t", table])
            .output()
            .expect("iptables-save");
        assert!(out.status.success(), "iptables-save -t {table} failed");
        lines.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.starts_with('-') || l.starts_with(':'))
                .map(|l| format!("{table}: {l}")),
        );
    }
    lines
}

/// ifindex -> name of the host's interfaces.
pub fn links() -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/sys/class/net").expect("sysfs").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Ok(idx) = fs::read_to_string(entry.path().join("ifindex")) {
            if let Ok(idx) = idx.trim().parse() {
                out.push((idx, name));
            }
        }
    }
    out
}

/// What the networks of one test put on the host, seen while they were in
/// use, so that the test can check afterwards that all of it is gone: their
/// bridges, the host ends of their veths (by ifindex, never reused soon),
/// and iptables lines naming their subnets, bridges or netavark chains.
#[derive(Default, Debug)]
pub struct Traces {
    pub subnets: BTreeSet<String>,
    pub bridges: BTreeSet<String>,
    pub chains: BTreeSet<String>,
    pub veths: BTreeSet<u32>,
    pub run_dirs: BTreeSet<PathBuf>,
}

const SHARED_CHAINS: [&str; 6] = [
    "NETAVARK_FORWARD",
    "NETAVARK_ISOLATION_1",
    "NETAVARK_ISOLATION_2",
    "NETAVARK-HOSTPORT-DNAT",
    "NETAVARK-HOSTPORT-MASQ",
    "NETAVARK-HOSTPORT-SETMARK",
];

impl Traces {
    /// Records what `nets` (while containers are attached) and `env` show now.
    /// (Host ports are not tokens: a parallel test may publish the same port later.)
    pub fn observe(&mut self, env: &Env, nets: &[&Network]) {
        self.run_dirs.insert(env.run_dir.clone());
        for n in nets {
            if let Some(s) = n.subnet {
                self.subnets.insert(s.to_string());
            }
            if let Some(b) = &n.bridge {
                self.bridges.insert(b.clone());
                if let Ok(ports) = fs::read_dir(Path::new("/sys/class/net").join(b).join("brif")) {
                    for p in ports.flatten() {
                        let ifindex = Path::new("/sys/class/net")
                            .join(p.file_name())
                            .join("ifindex");
                        if let Some(idx) = fs::read_to_string(ifindex)
                            .ok()
                            .and_then(|s| s.trim().parse::<u32>().ok())
                        {
                            self.veths.insert(idx);
                        }
                    }
                }
            }
        }
        let tokens: Vec<String> = self.subnets.iter().chain(&self.bridges).cloned().collect();
        for line in iptables_lines() {
            if tokens.iter().any(|t| line.contains(t.as_str())) {
                for word in line.split_whitespace() {
                    if word.starts_with("NETAVARK") && !SHARED_CHAINS.contains(&word) {
                        self.chains.insert(word.to_string());
                    }
                }
            }
        }
    }

    /// What is still there (polling a while: a namespace, and so its veth,
    /// and aardvark-dns go asynchronously).
    pub fn assert_gone(&self) {
        poll("leftovers on the host", || {
            let left = self.leftovers();
            if left.is_empty() {
                Ok(())
            } else {
                Err(left.join("\n"))
            }
        })
    }

    pub fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        let tokens: Vec<&String> = self
            .subnets
            .iter()
            .chain(&self.bridges)
            .chain(&self.chains)
            .collect();
        for line in iptables_lines() {
            if line
                .split(|c: char| c.is_whitespace() || c == '"')
                .any(|w| tokens.iter().any(|t| w == t.as_str()))
            {
                left.push(format!("iptables: {line}"));
            }
        }
        for (idx, name) in links() {
            if self.veths.contains(&idx) || self.bridges.contains(&name) {
                left.push(format!("link {idx}: {name}"));
            }
        }
        for dir in &self.run_dirs {
            if let Ok(entries) = fs::read_dir(dir.join("netns")) {
                for e in entries.flatten() {
                    left.push(format!("netns file {}", e.path().display()));
                }
            }
            for pid in aardvark_pids(dir) {
                left.push(format!("aardvark-dns process {pid} of {}", dir.display()));
            }
        }
        left
    }
}

/// Running aardvark-dns processes whose configuration is under `run_dir`.
pub fn aardvark_pids(run_dir: &Path) -> Vec<u32> {
    let needle = run_dir.join("aardvark").display().to_string();
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").expect("proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmd) = fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains("aardvark-dns") && cmd.contains(&needle) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Serializes with every netavark run of every store (the host-wide lock).
pub fn host_lock() -> nix::fcntl::Flock<File> {
    let path = Path::new(skiff_specs::net::DEFAULT_HOST_DIR).join("lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .expect("host lock");
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).expect("flock")
}

/// A unique name for this process and call.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Guards a test-made host link; deletes it on drop.
pub struct HostLink(pub String);

impl Drop for HostLink {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "delete", &self.0])
            .output();
    }
}

/// Runs `ip` with `args` (in the caller's thread's namespace).
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub static SERIAL: Mutex<()> = Mutex::new(());
