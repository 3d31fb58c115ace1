//! The typed form of a parsed Dockerfile. Values are as written (after quote handling that
//! the parser itself does, such as JSON strings); variable expansion happens later, per
//! stage, through `Instruction::expanded`.

use std::ops::Deref;
use std::time::Duration;

use super::directives::Directives;
use super::heredoc::Heredoc;
use super::mount::Mount;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The name errors use (`Dockerfile` unless the caller said otherwise).
    pub file: String,
    pub directives: Directives,
    /// `ARG`s before the first `FROM`: the global (meta) args, usable in `FROM` lines and
    /// inherited by a stage that re-declares them.
    pub global_args: Vec<Located<Arg>>,
    pub stages: Vec<Stage>,
}

impl Dockerfile {
    /// The escape character from the `# escape=` directive.
    pub fn escape(&self) -> char {
        self.directives.escape
    }

    /// The stage with this name (stage names are case-insensitive).
    pub fn stage_by_name(&self, name: &str) -> Option<&Stage> {
        let lower = name.to_ascii_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
    }

    /// Every instruction in file order: global ARGs, then each stage's FROM and body.
    pub fn instructions(&self) -> Vec<Located<Instruction>> {
        let mut out: Vec<Located<Instruction>> = self
            .global_args
            .iter()
            .map(|a| a.clone().map(Instruction::Arg))
            .collect();
        for stage in &self.stages {
            out.push(stage.from.clone().map(Instruction::From));
            out.extend(stage.instructions.iter().cloned());
        }
        out
    }
}

/// One build stage: a FROM and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Position among the stages, what `COPY --from=N` refers to.
    pub index: usize,
    /// The `AS` name, lowercased.
    pub name: Option<String>,
    pub from: Located<FromImage>,
    pub instructions: Vec<Located<Instruction>>,
}

/// Where an instruction is in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First physical line (the keyword's).
    pub start_line: usize,
    /// Last physical line, continuation lines and heredoc bodies included.
    pub end_line: usize,
    /// Column of the keyword.
    pub column: usize,
}

/// A value with its place in the Dockerfile and its source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub span: Span,
    /// The instruction as written, continuation lines joined (heredoc bodies not included).
    pub source: String,
}

impl<T> Located<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Located<U> {
        Located {
            value: f(self.value),
            span: self.span,
            source: self.source,
        }
    }
}

impl<T> Deref for Located<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// Every Dockerfile instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    From(FromImage),
    Run(Run),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    Copy(Copy),
    Add(Add),
    Env(Vec<KeyValue>),
    Arg(Arg),
    Label(Vec<KeyValue>),
    /// Port specs as written (`80`, `53/udp`, `8000-8010/tcp`, `$PORT`).
    Expose(Vec<String>),
    Volume(Vec<String>),
    Workdir(String),
    /// `user[:group]` as written; see [`split_user`].
    User(String),
    /// The shell for shell-form commands; JSON form only.
    Shell(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    Onbuild(Onbuild),
    Maintainer(String),
}

impl Instruction {
    /// The keyword in upper case.
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::From(_) => "FROM",
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Copy(_) => "COPY",
            Instruction::Add(_) => "ADD",
            Instruction::Env(_) => "ENV",
            Instruction::Arg(_) => "ARG",
            Instruction::Label(_) => "LABEL",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Volume(_) => "VOLUME",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::User(_) => "USER",
            Instruction::Shell(_) => "SHELL",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// `FROM [--platform=P] image [AS name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromImage {
    /// The base as written: an image reference, `scratch`, or an earlier stage's name; expanded
    /// with the global ARGs.
    pub base: String,
    pub platform: Option<String>,
    /// The `AS` name, lowercased.
    pub stage_name: Option<String>,
}

/// Exec form (JSON array) or shell form (run through the stage's SHELL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    Exec(Vec<String>),
    Shell(String),
}

/// `RUN [--mount=...]... [--network=...] [--security=...] command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub command: CommandLine,
    /// Heredoc bodies in the order their markers appear in the command.
    pub heredocs: Vec<Heredoc>,
    /// The mounts, parsed from `mount_specs` before variable expansion.
    pub mounts: Vec<Mount>,
    /// The `--mount` values as written; they are expanded at build time.
    pub mount_specs: Vec<String>,
    pub network: Option<Network>,
    pub security: Option<Security>,
}

/// What a RUN executes once its heredocs are applied, the way BuildKit does it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunCommand {
    /// Exec form: this argv as is.
    Exec(Vec<String>),
    /// Run this text with the stage's SHELL (`/bin/sh -c TEXT`).
    Shell(String),
    /// The command is a single heredoc starting with `#!`: put `content` at `path`
    /// (mode 0755, read-only) and run `path` with the stage's SHELL.
    Script { path: String, content: String },
}

impl Run {
    /// The command with heredocs applied: a command that is a single heredoc runs its body
    /// (as a script file when it starts with `#!`); otherwise the bodies are appended, each
    /// followed by its delimiter, for the shell to read as heredocs.
    pub fn to_command(&self) -> RunCommand {
        let line = match &self.command {
            CommandLine::Exec(argv) => return RunCommand::Exec(argv.clone()),
            CommandLine::Shell(line) => line,
        };
        let Some(first) = self.heredocs.first() else {
            return RunCommand::Shell(line.clone());
        };
        if matches!(super::heredoc::parse_marker(line), Ok(Some(_))) {
            if first.content.starts_with("#!") {
                return RunCommand::Script {
                    path: format!("/dev/pipes/{}", first.name),
                    content: first.content.clone(),
                };
            }
            return RunCommand::Shell(first.content.clone());
        }
        let mut full = line.clone();
        for doc in &self.heredocs {
            full.push('\n');
            full.push_str(&doc.content);
            full.push_str(&doc.name);
        }
        RunCommand::Shell(full)
    }
}

/// `RUN --network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Default,
    None,
    Host,
}

/// `RUN --security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Sandbox,
    Insecure,
}

/// A COPY/ADD source: a path (or URL, for ADD) or an inline heredoc file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Path(String),
    Heredoc(Heredoc),
}

/// What COPY and ADD share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCopy {
    pub sources: Vec<Source>,
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    /// `--exclude` patterns, in order.
    pub excludes: Vec<String>,
}

/// `COPY [--from=stage|image] [--parents] ... src... dest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub files: FileCopy,
    /// `--from` as written: a stage name, a stage index, or an image reference.
    pub from: Option<String>,
    pub parents: bool,
}

/// `ADD [--checksum=...] [--keep-git-dir] ... src... dest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    pub files: FileCopy,
    pub checksum: Option<String>,
    pub keep_git_dir: bool,
}

/// A `key=value` of ENV or LABEL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// `ARG name[=default] ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    pub args: Vec<ArgDecl>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [options] CMD command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    None,
    Check(HealthcheckCmd),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthcheckCmd {
    pub command: CommandLine,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u32>,
}

impl HealthcheckCmd {
    /// The image config's `Healthcheck.Test`: `["CMD", argv...]` or `["CMD-SHELL", line]`.
    pub fn test(&self) -> Vec<String> {
        match &self.command {
            CommandLine::Exec(argv) => std::iter::once("CMD".to_string())
                .chain(argv.iter().cloned())
                .collect(),
            CommandLine::Shell(line) => vec!["CMD-SHELL".to_string(), line.clone()],
        }
    }
}

/// `ONBUILD instruction`: stored as text for the image config, parsed to check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onbuild {
    /// The trigger as the image config records it (heredoc bodies appended).
    pub expression: String,
    pub trigger: Box<Instruction>,
}

/// Splits `user[:group]`.
pub fn split_user(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    }
}

/// One port or port range of EXPOSE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSpec {
    pub start: u16,
    pub end: u16,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl PortSpec {
    /// Parses `port[-port][/tcp|udp|sctp]` (protocol case-insensitive, default tcp).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (ports, proto) = match spec.split_once('/') {
            Some((p, proto)) => (p, proto),
            None => (spec, "tcp"),
        };
        let protocol = match proto.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            _ => return Err(format!("invalid protocol {proto:?} in port {spec:?}")),
        };
        let num = |s: &str| {
            s.parse::<u16>()
                .map_err(|_| format!("invalid port {spec:?}: {s:?} is not a port number"))
        };
        let (start, end) = match ports.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(ports)?, num(ports)?),
        };
        if end < start {
            return Err(format!("invalid port range {spec:?}: end is below start"));
        }
        Ok(PortSpec {
            start,
            end,
            protocol,
        })
    }

    /// The image config keys, one per port: `80/tcp`.
    pub fn keys(&self) -> Vec<String> {
        let proto = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        };
        (self.start..=self.end)
            .map(|p| format!("{p}/{proto}"))
            .collect()
    }
}

/// Parses a STOPSIGNAL value: a number, or a name with or without `SIG` (`SIGRTMIN+3` too).
pub fn parse_signal(spec: &str) -> Result<i32, String> {
    const NAMES: [(&str, i32); 31] = [
        ("HUP", 1),
        ("INT", 2),
        ("QUIT", 3),
        ("ILL", 4),
        ("TRAP", 5),
        ("ABRT", 6),
        ("IOT", 6),
        ("BUS", 7),
        ("FPE", 8),
        ("KILL", 9),
        ("USR1", 10),
        ("SEGV", 11),
        ("USR2", 12),
        ("PIPE", 13),
        ("ALRM", 14),
        ("TERM", 15),
        ("STKFLT", 16),
        ("CHLD", 17),
        ("CONT", 18),
        ("STOP", 19),
        ("TSTP", 20),
        ("TTIN", 21),
        ("TTOU", 22),
        ("URG", 23),
        ("XCPU", 24),
        ("XFSZ", 25),
        ("VTALRM", 26),
        ("PROF", 27),
        ("WINCH", 28),
        ("IO", 29),
        ("PWR", 30),
    ];
    const RTMIN: i32 = 34;
    const RTMAX: i32 = 64;
    let bad = || format!("invalid signal: {spec}");
    if let Ok(n) = spec.parse::<i32>() {
        return if (1..=RTMAX).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = spec.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = NAMES.iter().find(|(n, _)| *n == name) {
        return Ok(n);
    }
    let rt = |base: i32, rest: &str| -> Result<i32, String> {
        let n = match rest.chars().next() {
            None => base,
            Some('+') => base + rest[1..].parse::<i32>().map_err(|_| bad())?,
            Some('-') => base - rest[1..].parse::<i32>().map_err(|_| bad())?,
            Some(_) => return Err(bad()),
        };
        if (RTMIN..=RTMAX).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        }
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rt(RTMIN, rest);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return rt(RTMAX, rest);
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(
            PortSpec::parse("8000-8002/UDP").map(|p| p.keys()),
            Ok(vec![
                "8000/udp".into(),
                "8001/udp".into(),
                "8002/udp".into()
            ])
        );
        assert_eq!(
            PortSpec::parse("80").map(|p| p.keys()),
            Ok(vec!["80/tcp".into()])
        );
        assert!(PortSpec::parse("80/xtp").is_err());
        assert!(PortSpec::parse("http").is_err());
        assert!(PortSpec::parse("9-8").is_err());
    }

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGTERM"), Ok(15));
        assert_eq!(parse_signal("kill"), Ok(9));
        assert_eq!(parse_signal("3"), Ok(3));
        assert_eq!(parse_signal("SIGRTMIN+3"), Ok(37));
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("0").is_err());
    }

    #[test]
    fn users() {
        assert_eq!(split_user("app:staff"), ("app", Some("staff")));
        assert_eq!(split_user("1000"), ("1000", None));
    }
}
