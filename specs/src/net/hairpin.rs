//! Hairpin mode on the ports of our bridges, so a container reaches its own
//! published port through a host address.
//!
//! The packet of such a connection enters the bridge from the container's
//! veth and, after netavark's DNAT, must leave through that same veth. With
//! `br_netfilter` active (`net.bridge.bridge-nf-call-iptables = 1`, built
//! into this machine's kernel) the DNAT happens at the bridge and the frame
//! is bridged back out of the port it came from, which a bridge port only
//! does with hairpin mode on; netavark 1.4 leaves it off, so that connection
//! timed out here. Setting it on the veths of our own bridges (netavark's
//! veths, gone with them) changes nothing on the host.

use std::fs;
use std::io;
use std::path::Path;

use super::error::NetError;

/// Turns hairpin mode on for every port of `bridge` that has it off.
pub(crate) fn enable(bridge: &str) -> Result<(), NetError> {
    let brif = Path::new("/sys/class/net").join(bridge).join("brif");
    let entries = match fs::read_dir(&brif) {
        Ok(e) => e,
        // No bridge (an internal network's bridge is still one; this is a race with teardown).
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(NetError::io("listing the ports of", &brif)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(NetError::io("listing the ports of", &brif))?;
        let knob = entry.path().join("hairpin_mode");
        match fs::read_to_string(&knob) {
            Ok(v) if v.trim() == "1" => continue,
            Ok(_) => {}
            // The port left meanwhile.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(NetError::io("reading", &knob)(e)),
        }
        match fs::write(&knob, b"1") {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(NetError::io("writing 1 to", &knob)(e)),
        }
    }
    Ok(())
}
