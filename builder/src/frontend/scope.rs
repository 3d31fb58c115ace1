//! Which variables an instruction sees. Global ARGs (before the first FROM) plus the
//! predefined platform ARGs are visible in FROM lines. Inside a stage the variables are the
//! base image's environment, the stage's ENVs, and the ARGs the stage declares: an ARG takes
//! its `--build-arg` value, else its default, else (declared without a default) the global
//! ARG's value. ENV and ARG apply in file order; the later one wins.

use std::collections::BTreeMap;
use std::fmt;

use super::error::ExpandError;
use super::expand::{Expander, Lookup};
use super::instruction::{Dockerfile, FromImage, Instruction};

/// `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The machine the builder runs on, in OCI terms (`linux/amd64`, `linux/arm64`, ...).
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "powerpc64" => ("ppc64", None),
            "loongarch64" => ("loong64", None),
            "mips64" if cfg!(target_endian = "little") => ("mips64le", None),
            other => (other, None),
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            arch: arch.to_string(),
            variant: variant.map(String::from),
        }
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let valid = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        match parts.as_slice() {
            [os, arch] if valid(os) && valid(arch) => Ok(Platform {
                os: os.to_ascii_lowercase(),
                arch: arch.to_ascii_lowercase(),
                variant: None,
            }),
            [os, arch, variant] if valid(os) && valid(arch) && valid(variant) => Ok(Platform {
                os: os.to_ascii_lowercase(),
                arch: arch.to_ascii_lowercase(),
                variant: Some(variant.to_ascii_lowercase()),
            }),
            _ => Err(format!(
                "invalid platform {s:?}: expected os/arch or os/arch/variant"
            )),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The predefined platform ARGs.
pub fn platform_args(build: &Platform, target: &Platform) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for (prefix, p) in [("BUILD", build), ("TARGET", target)] {
        m.insert(format!("{prefix}PLATFORM"), p.to_string());
        m.insert(format!("{prefix}OS"), p.os.clone());
        m.insert(format!("{prefix}ARCH"), p.arch.clone());
        m.insert(
            format!("{prefix}VARIANT"),
            p.variant.clone().unwrap_or_default(),
        );
    }
    m
}

/// The global (meta) ARG values: predefined platform ARGs, then the ARGs before the first
/// FROM, each with its `--build-arg` value or its default expanded with the ones before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalArgs {
    values: BTreeMap<String, String>,
    build_args: BTreeMap<String, String>,
}

impl GlobalArgs {
    pub fn new(
        df: &Dockerfile,
        build_args: &BTreeMap<String, String>,
        build: &Platform,
        target: &Platform,
    ) -> Result<Self, ExpandError> {
        let mut values = platform_args(build, target);
        let ex = Expander::new(df.escape());
        for decl in df.global_args.iter().flat_map(|a| a.args.iter()) {
            if let Some(v) = build_args.get(&decl.name) {
                values.insert(decl.name.clone(), v.clone());
            } else if let Some(d) = &decl.default {
                let v = ex.word(d, &values)?;
                values.insert(decl.name.clone(), v);
            }
        }
        Ok(GlobalArgs {
            values,
            build_args: build_args.clone(),
        })
    }

    /// Global ARGs for building on and for this machine.
    pub fn host(
        df: &Dockerfile,
        build_args: &BTreeMap<String, String>,
    ) -> Result<Self, ExpandError> {
        let host = Platform::host();
        GlobalArgs::new(df, build_args, &host, &host)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn build_args(&self) -> &BTreeMap<String, String> {
        &self.build_args
    }

    /// A FROM line's base and platform, expanded with the global ARGs.
    pub fn expand_from(
        &self,
        from: &FromImage,
        escape: char,
    ) -> Result<(String, Option<String>), ExpandError> {
        let ex = Expander::new(escape);
        let base = ex.word(&from.base, self)?;
        if base.is_empty() {
            return Err(ExpandError::new(
                0,
                format!("base name ({}) should not be blank", from.base),
            ));
        }
        let platform = from
            .platform
            .as_ref()
            .map(|p| ex.word(p, self))
            .transpose()?;
        Ok((base, platform))
    }
}

impl Lookup for GlobalArgs {
    fn lookup(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned()
    }
}

/// The variables of one stage as its instructions are applied in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageVars {
    /// What expansion and RUN see: environment and ARG values, in first-set order.
    vars: Vec<(String, String)>,
    /// ENV only: the image config's Env.
    env: Vec<(String, String)>,
    /// Declared ARGs with their values (None: declared without any value).
    args: Vec<(String, Option<String>)>,
}

fn set(list: &mut Vec<(String, String)>, key: &str, value: &str) {
    match list.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value.to_string(),
        None => list.push((key.to_string(), value.to_string())),
    }
}

impl StageVars {
    pub fn new() -> Self {
        StageVars::default()
    }

    /// Starts from a base image's config Env (`KEY=value` strings).
    pub fn from_image_env<S: AsRef<str>>(env: &[S]) -> Self {
        let mut vars = StageVars::new();
        for e in env {
            let (k, v) = e.as_ref().split_once('=').unwrap_or((e.as_ref(), ""));
            vars.set_env(k, v);
        }
        vars
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        set(&mut self.vars, key, value);
        set(&mut self.env, key, value);
    }

    /// Declares an ARG whose default (if any) is already expanded.
    pub fn declare_arg(&mut self, name: &str, default: Option<&str>, globals: &GlobalArgs) {
        let value = globals
            .build_args
            .get(name)
            .cloned()
            .or_else(|| default.map(String::from))
            .or_else(|| globals.get(name).map(String::from));
        if let Some(v) = &value {
            set(&mut self.vars, name, v);
        }
        match self.args.iter_mut().find(|(k, _)| k == name) {
            Some(entry) => entry.1 = value,
            None => self.args.push((name.to_string(), value)),
        }
    }

    /// Applies an ENV or ARG instruction (others change nothing). ENV expands all its pairs
    /// with the variables from before it; ARG expands each default in turn.
    pub fn apply(
        &mut self,
        inst: &Instruction,
        globals: &GlobalArgs,
        escape: char,
    ) -> Result<(), ExpandError> {
        let ex = Expander::new(escape);
        match inst {
            Instruction::Env(pairs) => {
                let expanded = pairs
                    .iter()
                    .map(|kv| Ok((ex.word(&kv.key, &*self)?, ex.word(&kv.value, &*self)?)))
                    .collect::<Result<Vec<_>, ExpandError>>()?;
                for (k, v) in expanded {
                    self.set_env(&k, &v);
                }
            }
            Instruction::Arg(arg) => {
                for decl in &arg.args {
                    let default = match &decl.default {
                        Some(d) if !globals.build_args.contains_key(&decl.name) => {
                            Some(ex.word(d, &*self)?)
                        }
                        _ => None,
                    };
                    self.declare_arg(&decl.name, default.as_deref(), globals);
                }
            }
            _ => {}
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// ENV variables, for the image config.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Everything a RUN sees: environment plus ARG values.
    pub fn run_env(&self) -> &[(String, String)] {
        &self.vars
    }

    /// The ARGs declared so far with their values.
    pub fn args(&self) -> &[(String, Option<String>)] {
        &self.args
    }
}

impl Lookup for StageVars {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).map(String::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        assert_eq!(
            Platform::parse("linux/arm/v7").map(|p| p.to_string()),
            Ok("linux/arm/v7".to_string())
        );
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//x").is_err());
        let host = Platform::host();
        assert_eq!(host.os, "linux");
        assert!(!host.arch.is_empty());
        let args = platform_args(&host, &host);
        assert_eq!(args.get("TARGETPLATFORM"), Some(&host.to_string()));
        assert_eq!(args.get("BUILDARCH"), Some(&host.arch));
    }
}
