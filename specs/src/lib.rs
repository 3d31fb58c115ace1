//! Shared contracts between skiff's programs. The OCI image format lives here
//! once the builder and registry issues land; for now it holds the runtime
//! defaults that more than one program needs.

/// Default state directory of the `skiff` runtime (runc uses /run/runc).
pub const DEFAULT_RUNTIME_ROOT: &str = "/run/skiff";
