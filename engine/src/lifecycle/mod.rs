//! A container's life as the engine drives it: create (record, writable
//! layer), start (rootfs mount, network, files, volumes, spec, monitor),
//! stop (signal, grace period, KILL), teardown (what start set up, once the
//! container stopped for good) and remove.

mod create;
mod network;
mod ports;
mod remove;
mod start;
mod stop;
mod teardown;

pub use create::{create, create_record, sweep_incomplete};
pub use network::{attachment, networks};
pub use ports::resolve_ports;
pub use remove::{finish_pending, finish_removal, remove, remove_deferred, VolumePolicy};
pub use start::start;
pub use stop::{parse_signal, stop, wait_exit};
pub use teardown::{refresh, teardown};

/// The host ports a started container publishes.
pub fn attachment_ports(c: &crate::container::Container) -> Vec<skiff_specs::net::PortMapping> {
    attachment(c).map(|a| a.ports).unwrap_or_default()
}
