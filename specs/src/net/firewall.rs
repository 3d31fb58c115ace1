//! What we do with iptables ourselves: read netavark's port forwards (for
//! the "port is already allocated" check across stores and podman), keep
//! networks isolated from each other, and remove netavark's host-wide chains
//! once nothing uses them.
//!
//! netavark 1.4 (iptables driver) creates, besides per-network chains that its
//! teardown removes with the network's last container, chains shared by all
//! its users that it never removes: `filter` NETAVARK_FORWARD (jumped to from
//! FORWARD), NETAVARK_ISOLATION_1/2 (left empty), and `nat`
//! NETAVARK-HOSTPORT-DNAT (from PREROUTING and OUTPUT), -MASQ (from
//! POSTROUTING) and -SETMARK. When a disconnect leaves them without any
//! network's rules, [`Iptables::prune_netavark_chains`] deletes them in one
//! iptables-restore transaction per table. A transaction is all or nothing:
//! if another netavark (podman's, another store's) added a rule or a
//! reference meanwhile, deleting a non-empty or referenced chain fails and
//! nothing changes.
//!
//! Isolation: each network with the `isolate` option adds its DROP rules to
//! NETAVARK_ISOLATION_1/2, which work only while FORWARD jumps to
//! NETAVARK_ISOLATION_1 ahead of its jump to NETAVARK_FORWARD (whose
//! per-subnet ACCEPT rules would let the traffic through). netavark 1.4's
//! setup inserts that jump (`-I FORWARD 1 -j NETAVARK_ISOLATION_1`, if
//! missing) but its teardown deletes it whenever a network loses its last
//! container, although other networks (another store's, or the same
//! store's) still have rules there: from then until the next setup anywhere
//! on the host, containers of different networks reach each other.
//! [`Iptables::keep_isolation`] therefore keeps a jump of our own, told
//! apart by its comment so that netavark never deletes it, first in FORWARD
//! while NETAVARK_ISOLATION_1 holds rules, and removes it when it holds none.
//! It runs after every netavark setup and teardown in the same hold of the
//! host lock, so the jump is in place before any teardown can take
//! netavark's away.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::error::NetError;
use super::ports::Protocol;

const FILTER_SHARED: [&str; 3] = [
    "NETAVARK_FORWARD",
    "NETAVARK_ISOLATION_1",
    "NETAVARK_ISOLATION_2",
];
/// Chains that hold per-network rules while any network is set up; the
/// others are netavark's fixed scaffolding (flushed when pruned).
const CONTENT_CHAINS: [&str; 4] = [
    "NETAVARK_FORWARD",
    "NETAVARK_ISOLATION_1",
    "NETAVARK_ISOLATION_2",
    "NETAVARK-HOSTPORT-DNAT",
];
const ISOLATION_1: &str = "NETAVARK_ISOLATION_1";
/// The comment of our jump to NETAVARK_ISOLATION_1: netavark deletes its own
/// (`-j NETAVARK_ISOLATION_1` without a match), never this one.
const ISOLATION_COMMENT: &str = "skiff: isolation of netavark networks";
const NAT_SHARED: [&str; 3] = [
    "NETAVARK-HOSTPORT-DNAT",
    "NETAVARK-HOSTPORT-MASQ",
    "NETAVARK-HOSTPORT-SETMARK",
];

/// A host port forwarded by a netavark DNAT rule.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Forward {
    pub protocol: Protocol,
    pub first: u16,
    pub last: u16,
    pub host_ip: Option<IpAddr>,
    pub chain: String,
}

/// The iptables programs (iptables, iptables-save, iptables-restore of one directory).
#[derive(Clone, Debug)]
pub(crate) struct Iptables {
    save: PathBuf,
    restore: PathBuf,
}

/// One table of `iptables-save`: chain names and rules (`-A ...` lines).
#[derive(Default, Debug)]
pub(crate) struct Table {
    pub chains: BTreeSet<String>,
    pub rules: Vec<String>,
}

impl Table {
    pub(crate) fn parse(text: &str) -> Table {
        let mut table = Table::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(':') {
                if let Some(name) = rest.split_whitespace().next() {
                    table.chains.insert(name.to_string());
                }
            } else if line.starts_with("-A ") {
                table.rules.push(line.to_string());
            }
        }
        table
    }

    fn rules_of<'a>(&'a self, chain: &'a str) -> impl Iterator<Item = &'a String> + 'a {
        self.rules
            .iter()
            .filter(move |r| r.split_whitespace().nth(1) == Some(chain))
    }

    /// Rules of other chains that jump to `chain`.
    fn jumps_to<'a>(&'a self, chain: &'a str) -> impl Iterator<Item = &'a String> + 'a {
        self.rules
            .iter()
            .filter(move |r| jump_target(r) == Some(chain))
    }
}

/// The chain or target a rule jumps to (`-j X`).
fn jump_target(rule: &str) -> Option<&str> {
    let words: Vec<&str> = rule.split_whitespace().collect();
    words.windows(2).find(|w| w[0] == "-j").map(|w| w[1])
}

/// Whether a FORWARD rule is our jump to NETAVARK_ISOLATION_1.
fn is_isolation_jump(rule: &str) -> bool {
    jump_target(rule) == Some(ISOLATION_1)
        && rule.contains(&format!("--comment \"{ISOLATION_COMMENT}\""))
}

impl Iptables {
    /// The programs beside `iptables`.
    pub(crate) fn new(iptables: &Path) -> Iptables {
        let dir = iptables.parent().unwrap_or(Path::new("/usr/sbin"));
        Iptables {
            save: dir.join("iptables-save"),
            restore: dir.join("iptables-restore"),
        }
    }

    pub(crate) fn save(&self, table: &str) -> Result<Table, NetError> {
        let args = ["-t", table];
        let out = Command::new(&self.save)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| command_error(&self.save, &args, e.to_string()))?;
        if !out.status.success() {
            return Err(command_error(
                &self.save,
                &args,
                failure_text(&out.stderr, out.status),
            ));
        }
        Ok(Table::parse(&String::from_utf8_lossy(&out.stdout)))
    }

    fn restore(&self, script: &str) -> Result<(), NetError> {
        let args = ["--noflush", "--wait"];
        let mut child = Command::new(&self.restore)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| command_error(&self.restore, &args, e.to_string()))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A write error shows again as the exit status below.
            let _ = stdin.write_all(script.as_bytes());
        }
        let out = child
            .wait_with_output()
            .map_err(|e| command_error(&self.restore, &args, e.to_string()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(command_error(
                &self.restore,
                &args,
                failure_text(&out.stderr, out.status),
            ))
        }
    }

    /// Host ports that netavark DNAT rules forward now (any store, podman).
    pub(crate) fn forwards(&self) -> Result<Vec<Forward>, NetError> {
        Ok(parse_forwards(&self.save("nat")?))
    }

    /// Puts our jump to NETAVARK_ISOLATION_1 first in FORWARD while that
    /// chain holds rules, and removes it when it holds none (see the module
    /// text). The caller holds the host lock.
    pub(crate) fn keep_isolation(&self) -> Result<(), NetError> {
        match isolation_script(&self.save("filter")?) {
            Some(script) => self.restore(&script),
            None => Ok(()),
        }
    }

    /// Deletes netavark's shared chains of each table where no network uses
    /// them any more (see the module text). Returns what it removed.
    pub(crate) fn prune_netavark_chains(&self) -> Result<Vec<String>, NetError> {
        let mut removed = Vec::new();
        for (table, shared) in [("filter", &FILTER_SHARED[..]), ("nat", &NAT_SHARED[..])] {
            let current = self.save(table)?;
            if let Some(script) = prune_script(table, &current, shared) {
                match self.restore(&script) {
                    Ok(()) => removed.extend(
                        shared
                            .iter()
                            .filter(|c| current.chains.contains(**c))
                            .map(|c| format!("{table}/{c}")),
                    ),
                    // Someone set a network up meanwhile: the chains are in use again.
                    Err(_)
                        if self
                            .save(table)
                            .is_ok_and(|t| prune_script(table, &t, shared).is_none()) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(removed)
    }
}

/// The iptables-restore script removing `shared` chains of `table`, or
/// `None` if they are absent or still in use (a rule in a content chain, or
/// another NETAVARK chain: a network's own).
pub(crate) fn prune_script(table: &str, current: &Table, shared: &[&str]) -> Option<String> {
    let present: Vec<&str> = shared
        .iter()
        .copied()
        .filter(|c| current.chains.contains(*c))
        .collect();
    if present.is_empty() {
        return None;
    }
    let foreign_netavark = current
        .chains
        .iter()
        .any(|c| c.starts_with("NETAVARK") && !shared.contains(&c.as_str()));
    let busy = present
        .iter()
        .any(|c| CONTENT_CHAINS.contains(c) && current.rules_of(c).next().is_some());
    if foreign_netavark || busy {
        return None;
    }
    let mut script = format!("*{table}\n");
    for chain in &present {
        for rule in current.jumps_to(chain) {
            let from = rule.split_whitespace().nth(1).unwrap_or_default();
            if !present.contains(&from) {
                script.push_str(&format!("-D{}\n", &rule[2..]));
            }
        }
    }
    for chain in &present {
        if !CONTENT_CHAINS.contains(chain) {
            script.push_str(&format!("-F {chain}\n"));
        }
    }
    for chain in &present {
        script.push_str(&format!("-X {chain}\n"));
    }
    script.push_str("COMMIT\n");
    Some(script)
}

/// The iptables-restore script that makes `filter`'s FORWARD chain jump to
/// NETAVARK_ISOLATION_1 through our rule, once and ahead of every jump to
/// NETAVARK_FORWARD, if that chain has rules; that removes our rule if it
/// has none. `None` when FORWARD is that way already.
pub(crate) fn isolation_script(filter: &Table) -> Option<String> {
    let forward: Vec<&String> = filter.rules_of("FORWARD").collect();
    let ours: Vec<usize> = (0..forward.len())
        .filter(|i| is_isolation_jump(forward[*i]))
        .collect();
    let needed = filter.rules_of(ISOLATION_1).next().is_some();
    let accept = forward
        .iter()
        .position(|r| jump_target(r) == Some("NETAVARK_FORWARD"));
    let settled = match (needed, ours.as_slice()) {
        (true, [one]) => accept.is_none_or(|a| *one < a),
        (false, []) => true,
        _ => false,
    };
    if settled {
        return None;
    }
    // One transaction: a misplaced jump is moved without a moment of none.
    let mut script = String::from("*filter\n");
    for i in &ours {
        script.push_str(&format!("-D{}\n", &forward[*i][2..]));
    }
    if needed {
        script.push_str(&format!(
            "-I FORWARD 1 -m comment --comment \"{ISOLATION_COMMENT}\" -j {ISOLATION_1}\n"
        ));
    }
    script.push_str("COMMIT\n");
    Some(script)
}

/// DNAT rules of netavark's per-network DNAT chains:
/// `-A NETAVARK-DN-X [-d IP/32] -p tcp -m tcp --dport N[:M] -j DNAT --to-destination ...`.
pub(crate) fn parse_forwards(nat: &Table) -> Vec<Forward> {
    let mut out = Vec::new();
    for rule in &nat.rules {
        let words: Vec<&str> = rule.split_whitespace().collect();
        let Some(chain) = words.get(1) else { continue };
        if !chain.starts_with("NETAVARK-DN-") || !words.windows(2).any(|w| w == ["-j", "DNAT"]) {
            continue;
        }
        let value = |flag: &str| words.windows(2).find(|w| w[0] == flag).map(|w| w[1]);
        let protocol = match value("-p") {
            Some("tcp") => Protocol::Tcp,
            Some("udp") => Protocol::Udp,
            _ => continue,
        };
        let Some(ports) = value("--dport").or_else(|| value("--destination-port")) else {
            continue;
        };
        let (first, last) = match ports.split_once(':') {
            Some((a, b)) => (a.parse().ok(), b.parse().ok()),
            None => (ports.parse().ok(), ports.parse().ok()),
        };
        let (Some(first), Some(last)) = (first, last) else {
            continue;
        };
        let host_ip = value("-d").and_then(|d| d.split('/').next()?.parse().ok());
        out.push(Forward {
            protocol,
            first,
            last,
            host_ip,
            chain: chain.to_string(),
        });
    }
    out
}

fn command_error(program: &Path, args: &[&str], message: String) -> NetError {
    NetError::Command {
        program: program.display().to_string(),
        args: args.join(" "),
        message,
    }
}

pub(crate) fn failure_text(stderr: &[u8], status: std::process::ExitStatus) -> String {
    let text = String::from_utf8_lossy(stderr).trim().to_string();
    if text.is_empty() {
        format!("failed ({status})")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILTER_IDLE: &str =
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
:NETAVARK_FORWARD - [0:0]\n:NETAVARK_ISOLATION_1 - [0:0]\n:NETAVARK_ISOLATION_2 - [0:0]\n\
-A FORWARD -m comment --comment \"netavark firewall plugin rules\" -j NETAVARK_FORWARD\nCOMMIT\n";

    const NAT_IDLE: &str = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
:NETAVARK-HOSTPORT-DNAT - [0:0]\n:NETAVARK-HOSTPORT-MASQ - [0:0]\n:NETAVARK-HOSTPORT-SETMARK - [0:0]\n\
-A PREROUTING -m addrtype --dst-type LOCAL -j NETAVARK-HOSTPORT-DNAT\n\
-A OUTPUT -m addrtype --dst-type LOCAL -j NETAVARK-HOSTPORT-DNAT\n\
-A POSTROUTING -j NETAVARK-HOSTPORT-MASQ\n\
-A NETAVARK-HOSTPORT-MASQ -m comment --comment \"netavark portfw masq mark\" -m mark --mark 0x2000/0x2000 -j MASQUERADE\n\
-A NETAVARK-HOSTPORT-SETMARK -j MARK --set-xmark 0x2000/0x2000\nCOMMIT\n";

    #[test]
    fn prune_idle_tables() {
        let filter =
            prune_script("filter", &Table::parse(FILTER_IDLE), &FILTER_SHARED).expect("idle");
        assert_eq!(
            filter,
            "*filter\n-D FORWARD -m comment --comment \"netavark firewall plugin rules\" -j NETAVARK_FORWARD\n\
-X NETAVARK_FORWARD\n-X NETAVARK_ISOLATION_1\n-X NETAVARK_ISOLATION_2\nCOMMIT\n"
        );
        let nat = prune_script("nat", &Table::parse(NAT_IDLE), &NAT_SHARED).expect("idle");
        assert_eq!(
            nat,
            "*nat\n-D PREROUTING -m addrtype --dst-type LOCAL -j NETAVARK-HOSTPORT-DNAT\n\
-D OUTPUT -m addrtype --dst-type LOCAL -j NETAVARK-HOSTPORT-DNAT\n\
-D POSTROUTING -j NETAVARK-HOSTPORT-MASQ\n\
-F NETAVARK-HOSTPORT-MASQ\n-F NETAVARK-HOSTPORT-SETMARK\n\
-X NETAVARK-HOSTPORT-DNAT\n-X NETAVARK-HOSTPORT-MASQ\n-X NETAVARK-HOSTPORT-SETMARK\nCOMMIT\n"
        );
        assert!(prune_script(
            "filter",
            &Table::parse("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n"),
            &FILTER_SHARED
        )
        .is_none());
    }

    #[test]
    fn busy_tables_are_kept() {
        let busy_filter = FILTER_IDLE.replace(
            "COMMIT",
            "-A NETAVARK_FORWARD -s 10.1.0.0/24 -j ACCEPT\nCOMMIT",
        );
        assert!(prune_script("filter", &Table::parse(&busy_filter), &FILTER_SHARED).is_none());
        let busy_nat = NAT_IDLE.replace(
            ":NETAVARK-HOSTPORT-DNAT",
            ":NETAVARK-1234 - [0:0]\n:NETAVARK-HOSTPORT-DNAT",
        );
        assert!(prune_script("nat", &Table::parse(&busy_nat), &NAT_SHARED).is_none());
    }

    /// A filter table in use by an isolated network, with `forward` as FORWARD.
    fn filter_in_use(forward: &[&str]) -> Table {
        let mut text = String::from(
            "*filter\n:FORWARD ACCEPT [0:0]\n:NETAVARK_FORWARD - [0:0]\n\
:NETAVARK_ISOLATION_1 - [0:0]\n:NETAVARK_ISOLATION_2 - [0:0]\n",
        );
        for rule in forward {
            text.push_str(&format!("-A FORWARD {rule}\n"));
        }
        text.push_str(
            "-A NETAVARK_FORWARD -s 10.1.0.0/24 -j ACCEPT\n\
-A NETAVARK_ISOLATION_1 -i sk-1 ! -o sk-1 -j NETAVARK_ISOLATION_2\n\
-A NETAVARK_ISOLATION_2 -o sk-1 -j DROP\nCOMMIT\n",
        );
        Table::parse(&text)
    }

    const NETAVARKS: &str = "-j NETAVARK_ISOLATION_1";
    const ACCEPTS: &str =
        "-m comment --comment \"netavark firewall plugin rules\" -j NETAVARK_FORWARD";
    const OURS: &str =
        "-m comment --comment \"skiff: isolation of netavark networks\" -j NETAVARK_ISOLATION_1";

    #[test]
    fn isolation_jump_is_added_first() {
        let insert = format!("*filter\n-I FORWARD 1 {OURS}\nCOMMIT\n");
        // netavark's teardown deleted its jump; then also with it there.
        for forward in [&[ACCEPTS][..], &[NETAVARKS, ACCEPTS]] {
            let script = isolation_script(&filter_in_use(forward));
            assert_eq!(script.as_deref(), Some(insert.as_str()), "{forward:?}");
        }
        for forward in [&[OURS, ACCEPTS][..], &[NETAVARKS, OURS, ACCEPTS], &[OURS]] {
            assert!(
                isolation_script(&filter_in_use(forward)).is_none(),
                "{forward:?}"
            );
        }
    }

    #[test]
    fn misplaced_or_doubled_isolation_jump_is_moved() {
        let moved = format!("*filter\n-D FORWARD {OURS}\n-I FORWARD 1 {OURS}\nCOMMIT\n");
        let script = isolation_script(&filter_in_use(&[ACCEPTS, OURS]));
        assert_eq!(script.as_deref(), Some(moved.as_str()));
        let twice =
            format!("*filter\n-D FORWARD {OURS}\n-D FORWARD {OURS}\n-I FORWARD 1 {OURS}\nCOMMIT\n");
        let script = isolation_script(&filter_in_use(&[OURS, OURS, ACCEPTS]));
        assert_eq!(script.as_deref(), Some(twice.as_str()));
    }

    #[test]
    fn isolation_jump_goes_with_the_last_isolated_network() {
        let idle_with_ours =
            FILTER_IDLE.replace("-A FORWARD", &format!("-A FORWARD {OURS}\n-A FORWARD"));
        let script = isolation_script(&Table::parse(&idle_with_ours));
        assert_eq!(
            script.as_deref(),
            Some(format!("*filter\n-D FORWARD {OURS}\nCOMMIT\n").as_str())
        );
        // Nothing to do without isolation rules and without our jump.
        assert!(isolation_script(&Table::parse(FILTER_IDLE)).is_none());
        assert!(
            isolation_script(&Table::parse("*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n")).is_none()
        );
        // Pruning an idle table deletes our jump with netavark's.
        let prune =
            prune_script("filter", &Table::parse(&idle_with_ours), &FILTER_SHARED).expect("idle");
        assert!(prune.contains(&format!("-D FORWARD {OURS}\n")), "{prune}");
    }

    #[test]
    fn forwards() {
        let nat = NAT_IDLE.replace(
            "COMMIT",
            ":NETAVARK-DN-ABC - [0:0]\n\
-A NETAVARK-DN-ABC -s 10.1.0.0/24 -p tcp -m tcp --dport 18080 -j NETAVARK-HOSTPORT-SETMARK\n\
-A NETAVARK-DN-ABC -p tcp -m tcp --dport 18080 -j DNAT --to-destination 10.1.0.2:80\n\
-A NETAVARK-DN-ABC -d 127.0.0.1/32 -p udp -m udp --dport 5000:5002 -j DNAT --to-destination 10.1.0.2:5000-5002\n\
COMMIT",
        );
        let found = parse_forwards(&Table::parse(&nat));
        assert_eq!(found.len(), 2);
        assert_eq!(
            (
                found[0].protocol,
                found[0].first,
                found[0].last,
                found[0].host_ip
            ),
            (Protocol::Tcp, 18080, 18080, None)
        );
        assert_eq!(found[1].protocol, Protocol::Udp);
        assert_eq!((found[1].first, found[1].last), (5000, 5002));
        assert_eq!(found[1].host_ip, Some("127.0.0.1".parse().expect("ip")));
    }
}
