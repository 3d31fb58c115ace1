//! Resolving an image's `User` (`uid[:gid]`, `name[:group]`, or a mix)
//! against the image's own /etc/passwd and /etc/group, with runc's rules:
//! a numeric uid need not exist; a name must; the primary group defaults to
//! the passwd entry's (else 0); supplementary groups are those listing the
//! user by name, unless a group was given explicitly.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::rootfs::open_in_root;

/// Larger passwd or group files are refused (hostile image).
const MAX_DB_SIZE: u64 = 16 << 20;

/// Errors resolving a user; each names the spec and the file involved.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user {spec:?}: no user {name:?} in {}", file.display())]
    NoSuchUser {
        spec: String,
        name: String,
        file: PathBuf,
    },
    #[error("user {spec:?}: no group {name:?} in {}", file.display())]
    NoSuchGroup {
        spec: String,
        name: String,
        file: PathBuf,
    },
    #[error("user {spec:?}: {id} is not a valid id (0 to 4294967294)")]
    BadId { spec: String, id: String },
    #[error("user {spec:?}: reading {}: {source}", file.display())]
    Io {
        spec: String,
        file: PathBuf,
        source: io::Error,
    },
}

/// The ids a container process runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// Home directory from passwd, if the user has an entry.
    pub home: Option<String>,
}

#[derive(Debug)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

#[derive(Debug)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Reads `/etc/<file>` inside the rootfs; a missing file reads as empty.
fn read_db(rootfs: &Path, file: &str, spec: &str) -> Result<String, UserError> {
    let inner = format!("/etc/{file}");
    let io_err = |source| UserError::Io {
        spec: spec.to_owned(),
        file: rootfs.join(&inner[1..]),
        source,
    };
    let handle = match open_in_root(rootfs, &inner) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(io_err(e)),
    };
    let mut bytes = Vec::new();
    handle
        .take(MAX_DB_SIZE)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_owned(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_owned(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(GroupEntry {
                name: f[0].to_owned(),
                gid: f[2].parse().ok()?,
                members: f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect()
}

fn parse_id(spec: &str, s: &str) -> Result<Option<u32>, UserError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match s.parse::<u32>() {
        Ok(id) if id != u32::MAX => Ok(Some(id)),
        _ => Err(UserError::BadId {
            spec: spec.to_owned(),
            id: s.to_owned(),
        }),
    }
}

/// Resolves `spec` (empty means root) inside `rootfs`.
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<ResolvedUser, UserError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g).filter(|g| !g.is_empty())),
        None => (spec, None),
    };
    // A missing /etc/passwd is normal; a missing rootfs is the caller's error.
    if let Err(source) = std::fs::read_dir(rootfs) {
        return Err(UserError::Io {
            spec: spec.to_owned(),
            file: rootfs.to_owned(),
            source,
        });
    }
    let passwd = parse_passwd(&read_db(rootfs, "passwd", spec)?);
    let numeric_uid = if user_part.is_empty() {
        Some(0)
    } else {
        parse_id(spec, user_part)?
    };
    let entry = match numeric_uid {
        Some(uid) => passwd.iter().find(|e| e.uid == uid),
        None => Some(passwd.iter().find(|e| e.name == user_part).ok_or_else(|| {
            UserError::NoSuchUser {
                spec: spec.to_owned(),
                name: user_part.to_owned(),
                file: rootfs.join("etc/passwd"),
            }
        })?),
    };
    let uid = numeric_uid.or(entry.map(|e| e.uid)).unwrap_or(0);
    let mut gid = entry.map_or(0, |e| e.gid);
    let home = entry.map(|e| e.home.clone());

    let needs_groups = group_part.is_some() || entry.is_some();
    let groups = if needs_groups {
        parse_group(&read_db(rootfs, "group", spec)?)
    } else {
        Vec::new()
    };
    let mut additional_gids = Vec::new();
    match group_part {
        Some(group) => {
            gid = match parse_id(spec, group)? {
                Some(id) => id,
                None => groups
                    .iter()
                    .find(|g| g.name == group)
                    .map(|g| g.gid)
                    .ok_or_else(|| UserError::NoSuchGroup {
                        spec: spec.to_owned(),
                        name: group.to_owned(),
                        file: rootfs.join("etc/group"),
                    })?,
            };
        }
        None => {
            if let Some(entry) = entry {
                for g in &groups {
                    if g.members.contains(&entry.name) && !additional_gids.contains(&g.gid) {
                        additional_gids.push(g.gid);
                    }
                }
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> anyhow::Result<tempfile::TempDir> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("etc"))?;
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\n\
             # comment\n\
             broken line\n\
             app:x:1000:1001:App:/home/app:/bin/sh\n\
             nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )?;
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\n\
             app:x:1001:\n\
             audio:x:29:app,other\n\
             video:x:44:other,app\n\
             staff:x:50:\n",
        )?;
        Ok(dir)
    }

    #[test]
    fn resolves_like_runc() -> anyhow::Result<()> {
        let dir = rootfs()?;
        let r = |spec: &str| resolve_user(dir.path(), spec);
        let root = r("")?;
        assert_eq!(
            (root.uid, root.gid, root.home.as_deref()),
            (0, 0, Some("/root"))
        );
        let app = r("app")?;
        assert_eq!((app.uid, app.gid), (1000, 1001));
        assert_eq!(app.additional_gids, [29, 44]);
        assert_eq!(app.home.as_deref(), Some("/home/app"));
        // A uid with an entry gets its group; without one, gid 0.
        assert_eq!(r("1000")?.gid, 1001);
        let unknown = r("4242")?;
        assert_eq!((unknown.uid, unknown.gid, unknown.home), (4242, 0, None));
        // An explicit group replaces primary and supplementary groups.
        let explicit = r("app:staff")?;
        assert_eq!((explicit.uid, explicit.gid), (1000, 50));
        assert!(explicit.additional_gids.is_empty());
        assert_eq!(r("app:7")?.gid, 7);
        assert_eq!(r("4242:4343")?.gid, 4343);
        Ok(())
    }

    #[test]
    fn errors_name_the_problem() -> anyhow::Result<()> {
        let dir = rootfs()?;
        let err = |spec: &str| {
            resolve_user(dir.path(), spec)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let e = err("ghost");
        assert!(e.contains("\"ghost\"") && e.contains("etc/passwd"), "{e}");
        let e = err("app:ghosts");
        assert!(
            e.contains("no group \"ghosts\"") && e.contains("etc/group"),
            "{e}"
        );
        assert!(err("4294967295").contains("not a valid id"));
        assert!(err("99999999999").contains("not a valid id"));
        Ok(())
    }

    #[test]
    fn image_without_etc() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let r = resolve_user(dir.path(), "1:2")?;
        assert_eq!((r.uid, r.gid), (1, 2));
        assert!(resolve_user(dir.path(), "app").is_err());
        let gone = dir.path().join("nope");
        let err = resolve_user(&gone, "0").err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("nope")));
        Ok(())
    }

    #[test]
    fn passwd_symlinked_to_the_host_is_not_read() -> anyhow::Result<()> {
        let host = tempfile::tempdir()?;
        std::fs::write(host.path().join("passwd"), "hostonly:x:7:7::/:/bin/sh\n")?;
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("etc"))?;
        std::os::unix::fs::symlink(host.path().join("passwd"), dir.path().join("etc/passwd"))?;
        let err = resolve_user(dir.path(), "hostonly").err();
        assert!(matches!(err, Some(UserError::NoSuchUser { .. })), "{err:?}");
        Ok(())
    }
}
