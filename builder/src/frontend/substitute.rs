//! Variable expansion of whole instructions, in exactly the fields BuildKit expands:
//! ADD, COPY (sources, destination, --chown, --chmod, --checksum, --exclude, unquoted heredoc
//! bodies), ENV and LABEL (keys and values), ARG defaults, EXPOSE, FROM (base and
//! --platform, with the global ARGs), STOPSIGNAL, USER, VOLUME, WORKDIR and RUN's --mount
//! values. Commands of RUN, CMD, ENTRYPOINT, HEALTHCHECK and ONBUILD triggers are left alone:
//! the shell expands those at run time.

use super::error::{ExpandError, ParseError};
use super::expand::{Expander, Lookup};
use super::instruction::*;
use super::mount::Mount;

impl Instruction {
    /// A copy of the instruction with its expandable fields expanded.
    pub fn expanded(
        &self,
        escape: char,
        vars: &(impl Lookup + ?Sized),
    ) -> Result<Instruction, ExpandError> {
        let ex = Expander::new(escape);
        let word = |w: &String| ex.word(w, vars);
        let opt = |w: &Option<String>| w.as_ref().map(word).transpose();
        let all = |ws: &[String]| ws.iter().map(word).collect::<Result<Vec<_>, _>>();
        let pairs = |kvs: &[KeyValue]| {
            kvs.iter()
                .map(|kv| {
                    Ok(KeyValue {
                        key: word(&kv.key)?,
                        value: word(&kv.value)?,
                    })
                })
                .collect::<Result<Vec<_>, ExpandError>>()
        };
        let files = |f: &FileCopy| -> Result<FileCopy, ExpandError> {
            let sources = f
                .sources
                .iter()
                .map(|s| match s {
                    Source::Path(p) => Ok(Source::Path(word(p)?)),
                    Source::Heredoc(h) if h.expand => {
                        let mut h = h.clone();
                        h.content = Expander::heredoc_body().word(&h.content, vars)?;
                        Ok(Source::Heredoc(h))
                    }
                    Source::Heredoc(h) => Ok(Source::Heredoc(h.clone())),
                })
                .collect::<Result<Vec<_>, ExpandError>>()?;
            Ok(FileCopy {
                sources,
                dest: word(&f.dest)?,
                chown: opt(&f.chown)?,
                chmod: opt(&f.chmod)?,
                link: f.link,
                excludes: all(&f.excludes)?,
            })
        };
        Ok(match self {
            Instruction::From(f) => Instruction::From(FromImage {
                base: word(&f.base)?,
                platform: opt(&f.platform)?,
                stage_name: f.stage_name.clone(),
            }),
            Instruction::Run(r) => {
                let expand_value = |v: &str| ex.word(v, vars).map_err(|e| e.message);
                let mounts = r
                    .mount_specs
                    .iter()
                    .map(|spec| Mount::parse_with(spec, &expand_value))
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(|e| ExpandError::new(0, e))?;
                Instruction::Run(Run {
                    mounts,
                    ..r.clone()
                })
            }
            Instruction::Copy(c) => Instruction::Copy(Copy {
                files: files(&c.files)?,
                from: c.from.clone(),
                parents: c.parents,
            }),
            Instruction::Add(a) => Instruction::Add(Add {
                files: files(&a.files)?,
                checksum: opt(&a.checksum)?,
                keep_git_dir: a.keep_git_dir,
            }),
            Instruction::Env(kvs) => Instruction::Env(pairs(kvs)?),
            Instruction::Label(kvs) => Instruction::Label(pairs(kvs)?),
            Instruction::Arg(a) => Instruction::Arg(Arg {
                args: a
                    .args
                    .iter()
                    .map(|d| {
                        Ok(ArgDecl {
                            name: d.name.clone(),
                            default: opt(&d.default)?,
                        })
                    })
                    .collect::<Result<Vec<_>, ExpandError>>()?,
            }),
            Instruction::Expose(ports) => Instruction::Expose(all(ports)?),
            Instruction::Volume(paths) => Instruction::Volume(all(paths)?),
            Instruction::Workdir(p) => Instruction::Workdir(word(p)?),
            Instruction::User(u) => Instruction::User(word(u)?),
            Instruction::StopSignal(s) => Instruction::StopSignal(word(s)?),
            other => other.clone(),
        })
    }
}

impl<T> Located<T> {
    /// The first line of the source, indented to its column, for error display.
    pub(crate) fn display_line(&self) -> String {
        let first = self.source.lines().next().unwrap_or_default();
        format!("{}{first}", " ".repeat(self.span.column.saturating_sub(1)))
    }
}

impl Located<Instruction> {
    /// [`Instruction::expanded`] with errors placed at the instruction, as
    /// `FILE:LINE:COL: failed to expand ...`.
    pub fn expanded_in(
        &self,
        file: &str,
        escape: char,
        vars: &(impl Lookup + ?Sized),
    ) -> Result<Instruction, ParseError> {
        self.value.expanded(escape, vars).map_err(|e| ParseError {
            file: file.to_string(),
            line: self.span.start_line,
            column: self.span.column,
            message: format!("{}: {}", self.value.keyword(), e.message),
            source_line: self.display_line(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn vars() -> BTreeMap<String, String> {
        [
            ("D", "/app"),
            ("U", "1000"),
            ("P", "8080"),
            ("CACHE", "/root/.cache"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn first(src: &str) -> Result<Instruction, ParseError> {
        let df = super::super::parse("Dockerfile", src)?;
        let stage = &df.stages[0];
        Ok(stage.instructions.first().map_or_else(
            || Instruction::From(stage.from.value.clone()),
            |i| i.value.clone(),
        ))
    }

    #[test]
    fn expands_what_buildkit_expands() -> Result<(), Box<dyn std::error::Error>> {
        let v = vars();
        let copy = first("FROM a\nCOPY --chown=$U:$U src/ ${D}/\n")?.expanded('\\', &v)?;
        let Instruction::Copy(c) = copy else {
            return Err("not a COPY".into());
        };
        assert_eq!(c.files.chown.as_deref(), Some("1000:1000"));
        assert_eq!(c.files.dest, "/app/");
        let run =
            first("FROM a\nRUN --mount=type=cache,target=$CACHE echo $D\n")?.expanded('\\', &v)?;
        let Instruction::Run(r) = run else {
            return Err("not a RUN".into());
        };
        assert_eq!(r.mounts[0].target.as_deref(), Some("/root/.cache"));
        assert_eq!(r.command, CommandLine::Shell("echo $D".into()));
        assert_eq!(
            first("FROM a\nEXPOSE $P/udp\n")?.expanded('\\', &v)?,
            Instruction::Expose(vec!["8080/udp".into()])
        );
        assert_eq!(
            first("FROM a\nCMD echo $D\n")?.expanded('\\', &v)?,
            Instruction::Cmd(CommandLine::Shell("echo $D".into()))
        );
        Ok(())
    }

    #[test]
    fn heredoc_bodies_expand_unless_quoted() -> Result<(), Box<dyn std::error::Error>> {
        let v = vars();
        let src = "FROM a\nCOPY <<A <<'B' /dst/\n\"$D\"\nA\n$D\nB\n";
        let Instruction::Copy(c) = first(src)?.expanded('\\', &v)? else {
            return Err("not a COPY".into());
        };
        let bodies: Vec<String> = c
            .files
            .sources
            .iter()
            .filter_map(|s| match s {
                Source::Heredoc(h) => Some(h.content.clone()),
                Source::Path(_) => None,
            })
            .collect();
        assert_eq!(bodies, ["\"/app\"\n", "$D\n"]);
        Ok(())
    }
}
