//! From logical lines to typed instructions and stages. Each instruction's arguments are read
//! the way BuildKit reads them (JSON or shell form, blank-split or shell-word-split), and
//! everything that will be expanded later is syntax-checked now so mistakes point at a column.

use super::directives;
use super::duration::parse_go_duration;
use super::error::ParseError;
use super::expand::Expander;
use super::flags::{self, Kind, RawFlag, Spec, Values};
use super::heredoc;
use super::instruction::*;
use super::lexer::{self, Loc, LogicalLine};
use super::mount::Mount;
use super::suggest;
use super::words::{split_blanks, split_words};

/// Parses Dockerfile text. `file` is the name errors carry.
pub fn parse(file: &str, text: &str) -> Result<Dockerfile, ParseError> {
    let lines = lexer::physical_lines(text);
    let p = Parser {
        file,
        lines: &lines,
        escape: '\\',
    };
    let directives = directives::parse(&lines).map_err(|(idx, at, msg)| {
        let line = lines.get(idx).copied().unwrap_or_default();
        p.error(
            Loc {
                line: idx + 1,
                col: line[..at.min(line.len())].chars().count() + 1,
            },
            msg,
        )
    })?;
    let p = Parser {
        escape: directives.escape,
        ..p
    };
    let logical = lexer::lex(&lines, p.escape).map_err(|(loc, msg)| p.error(loc, msg))?;

    let mut df = Dockerfile {
        file: file.to_string(),
        directives,
        global_args: Vec::new(),
        stages: Vec::new(),
    };
    for ll in &logical {
        let Parsed {
            inst,
            name_at,
            from_at,
        } = p.instruction(ll, 0)?;
        let kw = p.keyword_at(ll, 0);
        let span = Span {
            start_line: ll.start_line,
            end_line: ll.end_line,
            column: ll.loc(kw).col,
        };
        let source = ll.text.trim().to_string();
        match inst {
            Instruction::From(from) => {
                if let Some(n) = &from.stage_name {
                    if let Some(prev) = df.stage_by_name(n) {
                        return Err(p.at(
                            ll,
                            name_at.unwrap_or(kw),
                            format!(
                                "duplicate stage name {n:?}: already used on line {}",
                                prev.from.span.start_line
                            ),
                        ));
                    }
                }
                df.stages.push(Stage {
                    index: df.stages.len(),
                    name: from.stage_name.clone(),
                    from: Located {
                        value: from,
                        span,
                        source,
                    },
                    instructions: Vec::new(),
                });
            }
            Instruction::Arg(arg) if df.stages.is_empty() => df.global_args.push(Located {
                value: arg,
                span,
                source,
            }),
            other => {
                let Some(stage) = df.stages.last_mut() else {
                    return Err(p.at(
                        ll,
                        kw,
                        format!(
                            "{} before the first FROM: only ARG may come before FROM",
                            other.keyword()
                        ),
                    ));
                };
                if refers_to_itself(stage, &other) {
                    return Err(p.at(
                        ll,
                        from_at.unwrap_or(kw),
                        format!(
                            "{} refers to its own stage; a stage cannot read from itself",
                            other.keyword()
                        ),
                    ));
                }
                stage.instructions.push(Located {
                    value: other,
                    span,
                    source,
                });
            }
        }
    }
    if df.stages.is_empty() {
        let loc = logical.last().map_or(Loc { line: 1, col: 1 }, |l| Loc {
            line: l.start_line,
            col: 1,
        });
        let msg = if logical.is_empty() {
            "the Dockerfile has no instructions"
        } else {
            "the Dockerfile has no FROM instruction, so no stage to build"
        };
        return Err(p.error(loc, msg.to_string()));
    }
    Ok(df)
}

/// Whether `COPY --from` or `RUN --mount=from=` names the stage it is in.
fn refers_to_itself(stage: &Stage, inst: &Instruction) -> bool {
    let own = |r: &str| {
        r == stage.index.to_string()
            || stage.name.as_deref() == Some(r.to_ascii_lowercase().as_str())
    };
    match inst {
        Instruction::Copy(c) => c.from.as_deref().is_some_and(own),
        Instruction::Run(r) => r.mounts.iter().any(|m| m.from.as_deref().is_some_and(own)),
        _ => false,
    }
}

const INSTRUCTIONS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

struct Parser<'a> {
    file: &'a str,
    lines: &'a [&'a str],
    escape: char,
}

/// An instruction plus offsets that only the caller can judge (stage name, `--from`).
struct Parsed {
    inst: Instruction,
    name_at: Option<usize>,
    from_at: Option<usize>,
}

fn plain(inst: Instruction) -> Parsed {
    Parsed {
        inst,
        name_at: None,
        from_at: None,
    }
}

/// The arguments of one instruction.
struct Args<'a> {
    ll: &'a LogicalLine,
    keyword: String,
    kw_at: usize,
    flags: Vec<RawFlag>,
    /// Arguments after the flags, trimmed.
    text: &'a str,
    /// Offset of `text` in the logical line.
    at: usize,
}

enum Json {
    Strings(Vec<String>),
    NotStrings,
    No,
}

fn json_array(text: &str) -> Json {
    if !text.starts_with('[') {
        return Json::No;
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(text) {
        Err(_) => Json::No,
        Ok(items) => {
            let strings: Option<Vec<String>> = items
                .into_iter()
                .map(|v| match v {
                    serde_json::Value::String(s) => Some(s),
                    _ => None,
                })
                .collect();
            strings.map_or(Json::NotStrings, Json::Strings)
        }
    }
}

const NOT_STRINGS: &str = "when using JSON array syntax, arrays must be comprised of strings only";

impl Parser<'_> {
    fn error(&self, loc: Loc, message: String) -> ParseError {
        ParseError {
            file: self.file.to_string(),
            line: loc.line,
            column: loc.col,
            message,
            source_line: self
                .lines
                .get(loc.line.wrapping_sub(1))
                .copied()
                .unwrap_or_default()
                .to_string(),
        }
    }

    fn at(&self, ll: &LogicalLine, offset: usize, message: String) -> ParseError {
        self.error(ll.loc(offset), message)
    }

    fn keyword_at(&self, ll: &LogicalLine, start: usize) -> usize {
        let rest = &ll.text[start..];
        start + (rest.len() - rest.trim_start().len())
    }

    fn expander(&self) -> Expander {
        Expander::new(self.escape)
    }

    /// Checks that a word that will be expanded later is well formed.
    fn check(&self, ll: &LogicalLine, word: &str, at: usize) -> Result<(), ParseError> {
        self.expander()
            .check(word)
            .map_err(|e| self.at(ll, at + e.offset, e.message))
    }

    /// Same, for words whose offsets inside the line are not exact (JSON strings).
    fn check_all(&self, a: &Args, words: &[(String, usize)]) -> Result<(), ParseError> {
        for (w, at) in words {
            self.expander()
                .check(w)
                .map_err(|e| self.at(a.ll, *at, format!("{}: {}", e.message, w)))?;
        }
        Ok(())
    }

    fn flags(&self, a: &Args, spec: &Spec) -> Result<Values, ParseError> {
        flags::parse(&a.flags, spec).map_err(|(at, msg)| self.at(a.ll, at, msg))
    }

    fn fail<T>(&self, a: &Args, at: usize, msg: impl Into<String>) -> Result<T, ParseError> {
        Err(self.at(a.ll, at, msg.into()))
    }

    /// Parses the instruction that starts at `start` of the logical line.
    fn instruction(&self, ll: &LogicalLine, start: usize) -> Result<Parsed, ParseError> {
        let kw_at = self.keyword_at(ll, start);
        let rest = &ll.text[kw_at..];
        let kw_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let keyword = rest[..kw_len].to_string();
        let after = kw_at + kw_len;
        let (flags, rel) =
            flags::extract(&ll.text[after..], after).map_err(|(at, msg)| self.at(ll, at, msg))?;
        let at = after + rel;
        let a = Args {
            ll,
            keyword: keyword.to_ascii_uppercase(),
            kw_at,
            flags,
            text: ll.text[at..].trim_end(),
            at,
        };
        let inst = match a.keyword.as_str() {
            "FROM" => return self.from(&a),
            "RUN" => return self.run(&a),
            "CMD" => Instruction::Cmd(self.command_line(&a, true)?),
            "ENTRYPOINT" => Instruction::Entrypoint(self.command_line(&a, true)?),
            "COPY" | "ADD" => return self.copy(&a),
            "ENV" => Instruction::Env(self.key_values(&a)?),
            "LABEL" => Instruction::Label(self.key_values(&a)?),
            "ARG" => self.arg(&a)?,
            "EXPOSE" => self.expose(&a)?,
            "VOLUME" => self.volume(&a)?,
            "WORKDIR" => Instruction::Workdir(self.single(&a)?),
            "USER" => Instruction::User(self.single(&a)?),
            "STOPSIGNAL" => {
                let sig = self.single(&a)?;
                if !sig.contains('$') {
                    parse_signal(&sig).map_err(|e| self.at(ll, a.at, e))?;
                }
                Instruction::StopSignal(sig)
            }
            "MAINTAINER" => {
                self.flags(&a, &[])?;
                if a.text.is_empty() {
                    return self.fail(&a, a.kw_at, "MAINTAINER requires exactly one argument");
                }
                Instruction::Maintainer(a.text.to_string())
            }
            "SHELL" => self.shell(&a)?,
            "HEALTHCHECK" => self.healthcheck(&a)?,
            "ONBUILD" => self.onbuild(&a)?,
            _ => {
                return self.fail(
                    &a,
                    kw_at,
                    format!(
                        "unknown instruction: {keyword}{}",
                        suggest::hint(&keyword, &INSTRUCTIONS)
                    ),
                )
            }
        };
        Ok(plain(inst))
    }

    fn from(&self, a: &Args) -> Result<Parsed, ParseError> {
        let flags = self.flags(a, &[("platform", Kind::Str)])?;
        let words = split_blanks(a.text, a.at);
        let (base, base_at) = match words.as_slice() {
            [(b, at)] | [(b, at), _, _] => (b.clone(), *at),
            _ => return self.fail(a, a.kw_at, "FROM requires either one or three arguments"),
        };
        let mut name_at = None;
        let stage_name = match words.as_slice() {
            [_, (as_kw, as_at), (name, at)] => {
                if !as_kw.eq_ignore_ascii_case("as") {
                    return self.fail(
                        a,
                        *as_at,
                        format!("FROM expects AS before the stage name, found {as_kw:?}"),
                    );
                }
                let lower = name.to_ascii_lowercase();
                let valid = lower.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && lower
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
                if !valid {
                    return self.fail(
                        a,
                        *at,
                        format!("invalid name for build stage: {name:?}, name can't start with a number or contain symbols"),
                    );
                }
                name_at = Some(*at);
                Some(lower)
            }
            _ => None,
        };
        self.check(a.ll, &base, base_at)?;
        let platform = flags.string("platform");
        if let Some(p) = &platform {
            self.check_all(a, &[(p.clone(), flags.offset("platform").unwrap_or(a.at))])?;
        }
        Ok(Parsed {
            inst: Instruction::From(FromImage {
                base,
                platform,
                stage_name,
            }),
            name_at,
            from_at: None,
        })
    }

    /// JSON (exec) or shell form. `empty_ok`: CMD and ENTRYPOINT may be empty.
    fn command_line(&self, a: &Args, empty_ok: bool) -> Result<CommandLine, ParseError> {
        if a.keyword != "RUN" {
            self.flags(a, &[])?;
        }
        if a.text.is_empty() {
            if empty_ok {
                return Ok(CommandLine::Exec(Vec::new()));
            }
            return self.fail(
                a,
                a.kw_at,
                format!("{} requires at least one argument", a.keyword),
            );
        }
        match json_array(a.text) {
            Json::Strings(argv) => Ok(CommandLine::Exec(argv)),
            Json::NotStrings => self.fail(a, a.at, NOT_STRINGS),
            Json::No => Ok(CommandLine::Shell(a.text.to_string())),
        }
    }

    fn run(&self, a: &Args) -> Result<Parsed, ParseError> {
        let flags = self.flags(
            a,
            &[
                ("mount", Kind::Strs),
                ("network", Kind::Str),
                ("security", Kind::Str),
            ],
        )?;
        let mount_specs = flags.strings("mount");
        let mount_flags: Vec<&RawFlag> = a
            .flags
            .iter()
            .filter(|f| f.text.starts_with("--mount="))
            .collect();
        let mut mounts = Vec::new();
        let mut from_at = None;
        for (i, spec) in mount_specs.iter().enumerate() {
            let at = mount_flags.get(i).map_or(a.at, |f| f.offset);
            let check = |v: &str| {
                self.expander()
                    .check(v)
                    .map(|_| v.to_string())
                    .map_err(|e| format!("{}: {v}", e.message))
            };
            let m = Mount::parse_with(spec, &check).map_err(|e| self.at(a.ll, at, e))?;
            if m.from.is_some() {
                from_at.get_or_insert(at);
            }
            mounts.push(m);
        }
        let network = match flags.string("network") {
            None => None,
            Some(n) => Some(match n.as_str() {
                "default" => Network::Default,
                "none" => Network::None,
                "host" => Network::Host,
                _ => {
                    return self.fail(
                        a,
                        flags.offset("network").unwrap_or(a.at),
                        format!("unsupported network mode {n:?}: use default, none or host"),
                    )
                }
            }),
        };
        let security = match flags.string("security") {
            None => None,
            Some(s) => Some(match s.as_str() {
                "sandbox" => Security::Sandbox,
                "insecure" => Security::Insecure,
                _ => {
                    return self.fail(
                        a,
                        flags.offset("security").unwrap_or(a.at),
                        format!("unsupported security mode {s:?}: use sandbox or insecure"),
                    )
                }
            }),
        };
        let command = self.command_line(a, false)?;
        Ok(Parsed {
            inst: Instruction::Run(Run {
                command,
                heredocs: a.ll.heredocs.clone(),
                mounts,
                mount_specs,
                network,
                security,
            }),
            name_at: None,
            from_at,
        })
    }

    fn copy(&self, a: &Args) -> Result<Parsed, ParseError> {
        let is_add = a.keyword == "ADD";
        const COPY: &Spec = &[
            ("from", Kind::Str),
            ("chown", Kind::Str),
            ("chmod", Kind::Str),
            ("link", Kind::Bool),
            ("parents", Kind::Bool),
            ("exclude", Kind::Strs),
        ];
        const ADD: &Spec = &[
            ("chown", Kind::Str),
            ("chmod", Kind::Str),
            ("link", Kind::Bool),
            ("keep-git-dir", Kind::Bool),
            ("checksum", Kind::Str),
            ("exclude", Kind::Strs),
        ];
        let flags = self.flags(a, if is_add { ADD } else { COPY })?;
        let (words, exact) = match json_array(a.text) {
            Json::Strings(v) => (v.into_iter().map(|w| (w, a.at)).collect(), false),
            Json::NotStrings => return self.fail(a, a.at, NOT_STRINGS),
            Json::No => (split_blanks(a.text, a.at), true),
        };
        let Some(((dest, dest_at), srcs)) = words.split_last() else {
            return self.fail(a, a.kw_at, format!("{} requires at least two arguments, but only one was provided. Destination could not be determined", a.keyword));
        };
        if srcs.is_empty() {
            return self.fail(a, a.kw_at, format!("{} requires at least two arguments, but only one was provided. Destination could not be determined", a.keyword));
        }
        let marker =
            |w: &str, at: usize| heredoc::parse_marker(w).map_err(|e| self.at(a.ll, at, e));
        if marker(dest, *dest_at)?.is_some() {
            return self.fail(
                a,
                *dest_at,
                format!("{} cannot accept a heredoc as a destination", a.keyword),
            );
        }
        let mut sources = Vec::new();
        for (w, at) in srcs {
            match marker(w, *at)? {
                Some(h) => {
                    let body = a.ll.heredocs.iter().find(|d| d.name == h.name);
                    sources.push(Source::Heredoc(body.cloned().unwrap_or(h)));
                }
                None => {
                    if exact {
                        self.check(a.ll, w, *at)?;
                    }
                    sources.push(Source::Path(w.clone()));
                }
            }
        }
        if exact {
            self.check(a.ll, dest, *dest_at)?;
        } else {
            let paths: Vec<(String, usize)> = words
                .iter()
                .filter(|(w, _)| !matches!(heredoc::parse_marker(w), Ok(Some(_))))
                .cloned()
                .collect();
            self.check_all(a, &paths)?;
        }
        let flag_word = |name: &str| -> Result<Option<String>, ParseError> {
            let v = flags.string(name);
            if let Some(v) = &v {
                self.check_all(a, &[(v.clone(), flags.offset(name).unwrap_or(a.at))])?;
            }
            Ok(v)
        };
        let chmod = flag_word("chmod")?;
        if let Some(m) = chmod.as_deref().filter(|m| !m.contains('$')) {
            if !u32::from_str_radix(m, 8).is_ok_and(|v| v <= 0o7777) {
                return self.fail(
                    a,
                    flags.offset("chmod").unwrap_or(a.at),
                    format!("invalid chmod parameter: '{m}'. it should be octal string and between 0 and 07777"),
                );
            }
        }
        let excludes = flags.strings("exclude");
        let at = flags.offset("exclude").unwrap_or(a.at);
        let ex: Vec<(String, usize)> = excludes.iter().map(|e| (e.clone(), at)).collect();
        self.check_all(a, &ex)?;
        let files = FileCopy {
            sources,
            dest: dest.clone(),
            chown: flag_word("chown")?,
            chmod,
            link: flags.bool("link"),
            excludes,
        };
        if is_add {
            return Ok(plain(Instruction::Add(Add {
                files,
                checksum: flag_word("checksum")?,
                keep_git_dir: flags.bool("keep-git-dir"),
            })));
        }
        let from = flags.string("from");
        if from.as_deref() == Some("") {
            return self.fail(
                a,
                flags.offset("from").unwrap_or(a.at),
                "COPY --from needs a stage name, a stage index or an image",
            );
        }
        Ok(Parsed {
            inst: Instruction::Copy(Copy {
                files,
                from,
                parents: flags.bool("parents"),
            }),
            name_at: None,
            from_at: flags.offset("from"),
        })
    }

    /// ENV and LABEL: `k=v k2=v2` or the legacy `k value with spaces`.
    fn key_values(&self, a: &Args) -> Result<Vec<KeyValue>, ParseError> {
        self.flags(a, &[])?;
        let kw = &a.keyword;
        let words = split_words(a.text, a.at, self.escape);
        let Some((first, _)) = words.first() else {
            return self.fail(a, a.kw_at, format!("{kw} requires at least one argument"));
        };
        let mut out = Vec::new();
        if !first.contains('=') {
            let blank = |c: char| matches!(c, ' ' | '\t' | '\u{b}' | '\u{c}' | '\r');
            let Some(split) = a.text.find(blank) else {
                return self.fail(a, a.kw_at, format!("{kw} must have two arguments"));
            };
            let key = &a.text[..split];
            let value_rel = a.text[split..]
                .find(|c: char| !blank(c))
                .map_or(a.text.len(), |i| split + i);
            let value = &a.text[value_rel..];
            self.check(a.ll, key, a.at)?;
            self.check(a.ll, value, a.at + value_rel)?;
            out.push(KeyValue {
                key: key.to_string(),
                value: value.to_string(),
            });
            return Ok(out);
        }
        for (word, at) in &words {
            let Some((key, value)) = word.split_once('=') else {
                return self.fail(
                    a,
                    *at,
                    format!(
                        "Syntax error - can't find = in {word:?}. Must be of the form: name=value"
                    ),
                );
            };
            if key.is_empty() {
                return self.fail(a, *at, format!("{kw} names can not be blank"));
            }
            self.check(a.ll, key, *at)?;
            self.check(a.ll, value, *at + key.len() + 1)?;
            out.push(KeyValue {
                key: key.to_string(),
                value: value.to_string(),
            });
        }
        Ok(out)
    }

    fn arg(&self, a: &Args) -> Result<Instruction, ParseError> {
        self.flags(a, &[])?;
        let words = split_words(a.text, a.at, self.escape);
        if words.is_empty() {
            return self.fail(a, a.kw_at, "ARG requires at least one argument");
        }
        let mut args = Vec::new();
        for (word, at) in &words {
            let (name, default) = match word.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (word.as_str(), None),
            };
            if name.is_empty() {
                return self.fail(a, *at, "ARG names can not be blank");
            }
            if let Some(v) = default {
                self.check(a.ll, v, *at + name.len() + 1)?;
            }
            args.push(ArgDecl {
                name: name.to_string(),
                default: default.map(String::from),
            });
        }
        Ok(Instruction::Arg(Arg { args }))
    }

    fn expose(&self, a: &Args) -> Result<Instruction, ParseError> {
        self.flags(a, &[])?;
        let words = split_blanks(a.text, a.at);
        if words.is_empty() {
            return self.fail(a, a.kw_at, "EXPOSE requires at least one argument");
        }
        for (w, at) in &words {
            self.check(a.ll, w, *at)?;
            if !w.contains('$') {
                PortSpec::parse(w).map_err(|e| self.at(a.ll, *at, e))?;
            }
        }
        Ok(Instruction::Expose(
            words.into_iter().map(|(w, _)| w).collect(),
        ))
    }

    fn volume(&self, a: &Args) -> Result<Instruction, ParseError> {
        self.flags(a, &[])?;
        let (words, exact) = match json_array(a.text) {
            Json::Strings(v) => (v.into_iter().map(|w| (w, a.at)).collect(), false),
            Json::NotStrings => return self.fail(a, a.at, NOT_STRINGS),
            Json::No => (split_blanks(a.text, a.at), true),
        };
        if words.is_empty() {
            return self.fail(a, a.kw_at, "VOLUME requires at least one argument");
        }
        for (w, at) in &words {
            if w.trim().is_empty() {
                return self.fail(a, *at, "VOLUME specified can not be an empty string");
            }
            if exact {
                self.check(a.ll, w, *at)?;
            }
        }
        if !exact {
            self.check_all(a, &words)?;
        }
        Ok(Instruction::Volume(
            words
                .into_iter()
                .map(|(w, _)| w.trim().to_string())
                .collect(),
        ))
    }

    /// WORKDIR, USER, STOPSIGNAL: the whole rest of the line is one argument.
    fn single(&self, a: &Args) -> Result<String, ParseError> {
        self.flags(a, &[])?;
        if a.text.is_empty() {
            return self.fail(
                a,
                a.kw_at,
                format!("{} requires exactly one argument", a.keyword),
            );
        }
        self.check(a.ll, a.text, a.at)?;
        Ok(a.text.to_string())
    }

    fn shell(&self, a: &Args) -> Result<Instruction, ParseError> {
        self.flags(a, &[])?;
        match json_array(a.text) {
            Json::Strings(v) if v.is_empty() => {
                self.fail(a, a.kw_at, "SHELL requires at least one argument")
            }
            Json::Strings(v) => Ok(Instruction::Shell(v)),
            Json::NotStrings => self.fail(a, a.at, NOT_STRINGS),
            Json::No if a.text.is_empty() => {
                self.fail(a, a.kw_at, "SHELL requires at least one argument")
            }
            Json::No => self.fail(
                a,
                a.at,
                "SHELL requires the arguments to be in JSON form, like SHELL [\"/bin/sh\", \"-c\"]",
            ),
        }
    }

    fn healthcheck(&self, a: &Args) -> Result<Instruction, ParseError> {
        const SPEC: &Spec = &[
            ("interval", Kind::Str),
            ("timeout", Kind::Str),
            ("start-period", Kind::Str),
            ("start-interval", Kind::Str),
            ("retries", Kind::Str),
        ];
        let flags = self.flags(a, SPEC)?;
        let typ_len = a.text.find(char::is_whitespace).unwrap_or(a.text.len());
        let typ = &a.text[..typ_len];
        let rest = a.text[typ_len..].trim_start();
        let rest_at = a.at + (a.text.len() - rest.len());
        if typ.is_empty() {
            return self.fail(a, a.kw_at, "HEALTHCHECK requires at least one argument");
        }
        if typ.eq_ignore_ascii_case("NONE") {
            if !rest.is_empty() {
                return self.fail(a, rest_at, "HEALTHCHECK NONE takes no arguments");
            }
            return Ok(Instruction::Healthcheck(Healthcheck::None));
        }
        if !typ.eq_ignore_ascii_case("CMD") {
            return self.fail(
                a,
                a.at,
                format!(
                    "Unknown type {:?} in HEALTHCHECK (try CMD)",
                    typ.to_ascii_uppercase()
                ),
            );
        }
        let command = match json_array(rest) {
            Json::Strings(v) if !v.is_empty() => CommandLine::Exec(v),
            Json::NotStrings => return self.fail(a, rest_at, NOT_STRINGS),
            Json::No if !rest.is_empty() => CommandLine::Shell(rest.to_string()),
            _ => return self.fail(a, a.at, "Missing command after HEALTHCHECK CMD"),
        };
        let duration = |name: &str| -> Result<Option<std::time::Duration>, ParseError> {
            let Some(v) = flags.string(name) else {
                return Ok(None);
            };
            let at = flags.offset(name).unwrap_or(a.at);
            let nanos = parse_go_duration(&v).map_err(|e| self.at(a.ll, at, e))?;
            if nanos == 0 {
                return Ok(None);
            }
            if nanos < 1_000_000 {
                return self.fail(a, at, format!("Interval {name:?} cannot be less than 1ms"));
            }
            Ok(Some(std::time::Duration::from_nanos(
                u64::try_from(nanos).unwrap_or(u64::MAX),
            )))
        };
        let retries = match flags.string("retries") {
            None => None,
            Some(v) => {
                let at = flags.offset("retries").unwrap_or(a.at);
                let n: i32 = v.parse().map_err(|_| {
                    self.at(
                        a.ll,
                        at,
                        format!("invalid --retries value {v:?}: not a number"),
                    )
                })?;
                if n < 0 {
                    return self.fail(a, at, format!("--retries cannot be negative ({n})"));
                }
                Some(n.unsigned_abs())
            }
        };
        Ok(Instruction::Healthcheck(Healthcheck::Check(
            HealthcheckCmd {
                command,
                interval: duration("interval")?,
                timeout: duration("timeout")?,
                start_period: duration("start-period")?,
                start_interval: duration("start-interval")?,
                retries,
            },
        )))
    }

    fn onbuild(&self, a: &Args) -> Result<Instruction, ParseError> {
        self.flags(a, &[])?;
        if a.text.is_empty() {
            return self.fail(a, a.kw_at, "ONBUILD requires at least one argument");
        }
        let trigger_kw = a
            .text
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        match trigger_kw.as_str() {
            "ONBUILD" => {
                return self.fail(
                    a,
                    a.at,
                    "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                )
            }
            "FROM" | "MAINTAINER" => {
                return self.fail(
                    a,
                    a.at,
                    format!("{trigger_kw} isn't allowed as an ONBUILD trigger"),
                )
            }
            _ => {}
        }
        let trigger = self.instruction(a.ll, a.at)?.inst;
        let mut expression = a.text.to_string();
        for doc in &a.ll.heredocs {
            expression.push('\n');
            expression.push_str(&doc.content);
            expression.push_str(&doc.name);
        }
        Ok(Instruction::Onbuild(Onbuild {
            expression,
            trigger: Box::new(trigger),
        }))
    }
}
