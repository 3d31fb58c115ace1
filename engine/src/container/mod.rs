//! Containers: the engine's record of each, where its files live, and its
//! status as docker reports it.

pub mod record;
pub mod status;
pub mod store;

pub use record::Container;
pub use store::{ContainerDir, ContainerStore};
