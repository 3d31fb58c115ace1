//! Where a container's cgroup lives in cgroupfs, for the few files skiff reads
//! itself (OOM notifications, cpuset statistics). The choice of hierarchy
//! follows libcgroups: legacy and hybrid hosts use the v1 controllers, only a
//! pure cgroup2 host uses the unified tree.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use libcgroups::common::{get_cgroup_setup, CgroupSetup, DEFAULT_CGROUP_ROOT};
use libcgroups::v1::util::get_subsystem_mount_point;
use libcgroups::v1::ControllerType;

/// A container cgroup's directory for one controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupDir {
    /// The controller's own v1 hierarchy.
    V1(PathBuf),
    /// The unified (cgroup2) directory, shared by all controllers.
    V2(PathBuf),
}

impl CgroupDir {
    pub fn path(&self) -> &Path {
        match self {
            CgroupDir::V1(p) | CgroupDir::V2(p) => p,
        }
    }
}

/// True when libcgroups drives this host through the unified hierarchy.
pub fn is_unified() -> Result<bool> {
    let setup = get_cgroup_setup().context("cannot detect the cgroup setup")?;
    Ok(matches!(setup, CgroupSetup::Unified))
}

/// The directory of `cgroup_path` (as in linux.cgroupsPath) for `controller`.
pub fn controller_dir(cgroup_path: &Path, controller: ControllerType) -> Result<CgroupDir> {
    let relative = cgroup_path.strip_prefix("/").unwrap_or(cgroup_path);
    if is_unified()? {
        return Ok(CgroupDir::V2(Path::new(DEFAULT_CGROUP_ROOT).join(relative)));
    }
    let mount = get_subsystem_mount_point(&controller)
        .with_context(|| format!("the cgroup v1 {controller} controller is not mounted"))?;
    Ok(CgroupDir::V1(mount.join(relative)))
}

/// Whether `cgroup_path` (cgroupfs form) has a directory in any hierarchy.
pub fn exists(cgroup_path: &Path) -> bool {
    let relative = cgroup_path.strip_prefix("/").unwrap_or(cgroup_path);
    if is_unified().unwrap_or(false) {
        return Path::new(DEFAULT_CGROUP_ROOT).join(relative).is_dir();
    }
    libcgroups::v1::util::list_subsystem_mount_points()
        .map(|points| points.iter().any(|m| m.join(relative).is_dir()))
        .unwrap_or(false)
}
