//! The compose file model: compose files (and their `.env`, `-f` overrides,
//! `extends` and `include`) loaded into one resolved, typed and checked
//! [`Project`], as `docker compose` v2 would see it. Nothing here runs a
//! container; `skiffctl compose` builds on this.
//!
//! The pipeline (see `load.rs`): read YAML, resolve `<<` merge keys,
//! interpolate `${VAR}`s per file, bring each file's union-typed fields into
//! one canonical shape with relative paths made absolute (`normalize.rs`),
//! resolve `extends`, merge the `-f` files, add `include`d projects, pick the
//! services of the active profiles, then parse into typed structs and check
//! cross references.

mod bytes;
mod dotenv;
mod duration;
mod error;
mod extends;
mod hash;
mod include;
mod interpolate;
mod load;
mod merge;
mod model;
mod normalize;
mod output;
mod paths;
mod ports;
mod profiles;
mod project;
mod reader;
mod resources;
mod service;
mod shellwords;
mod validate;
mod volumes;
mod yaml;

#[cfg(test)]
mod tests;

// The model's public surface; the engine names only the types it needs, so
// a re-export it does not use yet is not a warning.
#[allow(unused_imports)]
pub use self::{
    error::ComposeError,
    hash::config_hash,
    load::{load, LoadOptions},
    model::{
        Build, BuildSecret, ConfigDef, Dependency, DependencyCondition, Healthcheck, Ipam,
        IpamPool, Logging, NetworkDef, Port, Project, SecretDef, Service, ServiceFile,
        ServiceNetwork, ServiceVolume, Ulimit, VolumeBind, VolumeDef, VolumeOptions, VolumeTmpfs,
    },
    project::normalize_project_name,
};
