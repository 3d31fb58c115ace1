//! The command line containerd gives a shim: Go-style flags (`-name value`,
//! `-name=value`, `--name value`) followed by an action.

use thiserror::Error;

pub const USAGE: &str = "\
Usage: containerd-shim-skiff-v2 [FLAGS] [start|delete]

containerd's shim v2 for skiff; containerd runs it for runtime io.containerd.skiff.v2.

Actions:
  start    start (or reuse) a shim server for the container in the current
           directory (the bundle) and print its address
  delete   clean up a container whose shim is gone: `skiff delete --force`,
           unmount the rootfs, print the exit as a protobuf DeleteResponse
  (none)   be the shim server; `start` runs this with the listener on fd 3

Flags:
  -namespace NS          containerd namespace of the container
  -id ID                 container id
  -address PATH          containerd's gRPC socket
  -publish-binary PATH   containerd binary (events go over TTRPC_ADDRESS instead)
  -bundle DIR            bundle directory (delete; default: the current directory)
  -socket ADDR           address to serve on (default: the listener on fd 3)
  -debug                 verbose logs
  -info                  print a containerd.types.RuntimeInfo protobuf (name,
                         version, the runtime options read from stdin as a
                         protobuf Any, the runtime's `features` JSON) and exit
  -v                     print the version
  -h, -help              print this help

Environment: TTRPC_ADDRESS (containerd's ttrpc socket, for events),
MAX_SHIM_VERSION (3 from containerd 2.x: start prints version 3 bootstrap JSON).

Runtime options (runc's BinaryName and Root, from the create request's options
or the JSON file named by --runtime-config-path) choose the runtime binary and
its state root; the defaults are `skiff` next to this binary or on PATH, and
/run/containerd/skiff.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Delete,
    Serve,
    Version,
    Info,
    Help,
}

#[derive(Debug, Clone)]
pub struct Flags {
    pub namespace: String,
    pub id: String,
    pub address: String,
    pub publish_binary: String,
    pub bundle: Option<String>,
    pub socket: Option<String>,
    pub debug: bool,
    pub action: Action,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FlagError {
    #[error("flag -{0} needs a value")]
    MissingValue(String),
    #[error("unknown flag -{0}")]
    Unknown(String),
    #[error("unknown action {0:?} (want start or delete)")]
    UnknownAction(String),
    #[error("flag -{0} is required for {1}")]
    Required(&'static str, &'static str),
}

impl Flags {
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, FlagError> {
        let mut f = Flags {
            namespace: String::new(),
            id: String::new(),
            address: String::new(),
            publish_binary: String::new(),
            bundle: None,
            socket: None,
            debug: false,
            action: Action::Serve,
        };
        let mut args = args.into_iter();
        let mut action = None;
        while let Some(arg) = args.next() {
            let Some(flag) = arg.strip_prefix('-') else {
                action = Some(arg);
                continue;
            };
            let flag = flag.strip_prefix('-').unwrap_or(flag);
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (flag.to_string(), None),
            };
            match name.as_str() {
                "debug" => f.debug = inline.is_none_or(|v| v != "false"),
                "v" | "version" => f.action = Action::Version,
                "h" | "help" => f.action = Action::Help,
                "info" => f.action = Action::Info,
                "namespace" | "id" | "address" | "publish-binary" | "bundle" | "socket" => {
                    let value = match inline {
                        Some(v) => v,
                        None => args
                            .next()
                            .ok_or_else(|| FlagError::MissingValue(name.clone()))?,
                    };
                    match name.as_str() {
                        "namespace" => f.namespace = value,
                        "id" => f.id = value,
                        "address" => f.address = value,
                        "publish-binary" => f.publish_binary = value,
                        "bundle" => f.bundle = Some(value),
                        _ => f.socket = Some(value),
                    }
                }
                _ => return Err(FlagError::Unknown(name)),
            }
        }
        if matches!(f.action, Action::Version | Action::Info | Action::Help) {
            return Ok(f);
        }
        f.action = match action.as_deref() {
            None => Action::Serve,
            Some("start") => Action::Start,
            Some("delete") => Action::Delete,
            Some(other) => return Err(FlagError::UnknownAction(other.to_string())),
        };
        let what = match f.action {
            Action::Start => "start",
            Action::Delete => "delete",
            _ => "the server",
        };
        if f.namespace.is_empty() {
            return Err(FlagError::Required("namespace", what));
        }
        if f.id.is_empty() {
            return Err(FlagError::Required("id", what));
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Flags, FlagError> {
        Flags::parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn containerd_start_line() -> Result<(), FlagError> {
        let f =
            parse("-namespace ns -address /a.sock -publish-binary /bin/ctd -id c1 -debug start")?;
        assert_eq!(f.action, Action::Start);
        assert_eq!((f.namespace.as_str(), f.id.as_str()), ("ns", "c1"));
        assert_eq!(f.address, "/a.sock");
        assert!(f.debug);
        Ok(())
    }

    #[test]
    fn delete_with_bundle_and_equals() -> Result<(), FlagError> {
        let f = parse("--namespace=ns -id=c1 -bundle /b delete")?;
        assert_eq!(f.action, Action::Delete);
        assert_eq!(f.bundle.as_deref(), Some("/b"));
        Ok(())
    }

    #[test]
    fn info_needs_no_namespace() -> Result<(), FlagError> {
        assert_eq!(parse("-info")?.action, Action::Info);
        assert_eq!(parse("-debug --info")?.action, Action::Info);
        Ok(())
    }

    #[test]
    fn bad_lines() {
        assert_eq!(
            parse("-id").err(),
            Some(FlagError::MissingValue("id".into()))
        );
        assert_eq!(
            parse("-frob x").err(),
            Some(FlagError::Unknown("frob".into()))
        );
        assert_eq!(
            parse("-namespace n -id i stop").err(),
            Some(FlagError::UnknownAction("stop".into()))
        );
        assert_eq!(
            parse("-id i start").map(|f| f.action).err(),
            Some(FlagError::Required("namespace", "start"))
        );
    }
}
