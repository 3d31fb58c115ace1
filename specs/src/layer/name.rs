//! Entry names of a layer tar, as bytes (names need not be UTF-8): cleaned to components
//! below the layer's root, and told apart as files, OCI whiteouts and opaque markers.

/// What an entry's last name component makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Name<'a> {
    /// An ordinary file, directory, link or device.
    Plain(&'a [u8]),
    /// `.wh.NAME`: NAME is deleted from the layers below.
    Whiteout(&'a [u8]),
    /// `.wh..wh..opq`: the directory hides everything the layers below have in it.
    Opaque,
    /// Other `.wh..wh.` names (AUFS bookkeeping such as `.wh..wh.plnk`): ignored.
    Meta,
    /// `.wh.` with nothing, `.` or `..` after it.
    BadWhiteout,
}

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const META_PREFIX: &[u8] = b".wh..wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";

/// `name` as components below the root: `/`, `.` and empty parts dropped, `..` taken
/// lexically and never above the root (as `/..` is `/`). Symlinks among the components
/// are resolved later, inside the root too.
pub(super) fn components(name: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    for part in name.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            _ => out.push(part),
        }
    }
    out
}

/// What the last component `last` names.
pub(super) fn classify(last: &[u8]) -> Name<'_> {
    if last == OPAQUE {
        return Name::Opaque;
    }
    if last.starts_with(META_PREFIX) {
        return Name::Meta;
    }
    match last.strip_prefix(WHITEOUT_PREFIX) {
        Some(b"" | b"." | b"..") => Name::BadWhiteout,
        Some(hidden) => Name::Whiteout(hidden),
        None => Name::Plain(last),
    }
}

/// Joins components with `/` (a path relative to the root).
pub(super) fn join(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_below_the_root() {
        let cases: [(&[u8], &[&[u8]]); 8] = [
            (b"a/b", &[b"a", b"b"]),
            (b"./a//b/", &[b"a", b"b"]),
            (b"/etc/passwd", &[b"etc", b"passwd"]),
            (b"../x", &[b"x"]),
            (b"../../../../etc/shadow", &[b"etc", b"shadow"]),
            (b"a/../../b", &[b"b"]),
            (b"./", &[]),
            (b"caf\xe9/\xff", &[b"caf\xe9", b"\xff"]),
        ];
        for (name, want) in cases {
            assert_eq!(components(name), want, "{}", String::from_utf8_lossy(name));
        }
        assert_eq!(join(&[b"a", b"b\xff"]), b"a/b\xff");
    }

    #[test]
    fn whiteouts() {
        assert_eq!(classify(b".wh..wh..opq"), Name::Opaque);
        assert_eq!(classify(b".wh..wh.plnk"), Name::Meta);
        assert_eq!(classify(b".wh.hosts"), Name::Whiteout(b"hosts"));
        assert_eq!(classify(b".wh..profile"), Name::Whiteout(b".profile"));
        assert_eq!(classify(b".wh..."), Name::BadWhiteout);
        assert_eq!(classify(b".wh."), Name::BadWhiteout);
        assert_eq!(classify(b"hosts"), Name::Plain(b"hosts"));
        assert_eq!(classify(b".whx"), Name::Plain(b".whx"));
    }
}
