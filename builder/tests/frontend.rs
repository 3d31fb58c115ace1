//! Table-driven tests of the Dockerfile frontend: Dockerfiles to typed instructions, every
//! error with its line and column, variable expansion and scoping, stage checks, and
//! .dockerignore matching.

use std::collections::BTreeMap;
use std::time::Duration;

use skiff_builder::frontend::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn s(x: &str) -> String {
    x.to_string()
}

fn from(base: &str, platform: Option<&str>, name: Option<&str>) -> Instruction {
    Instruction::From(FromImage {
        base: s(base),
        platform: platform.map(s),
        stage_name: name.map(s),
    })
}

fn sh(x: &str) -> CommandLine {
    CommandLine::Shell(s(x))
}

fn exec(argv: &[&str]) -> CommandLine {
    CommandLine::Exec(argv.iter().map(|a| s(a)).collect())
}

fn run(command: CommandLine) -> Run {
    Run {
        command,
        heredocs: vec![],
        mounts: vec![],
        mount_specs: vec![],
        network: None,
        security: None,
    }
}

fn files(srcs: &[&str], dest: &str) -> FileCopy {
    FileCopy {
        sources: srcs.iter().map(|p| Source::Path(s(p))).collect(),
        dest: s(dest),
        chown: None,
        chmod: None,
        link: false,
        excludes: vec![],
    }
}

fn copy(files: FileCopy) -> Instruction {
    Instruction::Copy(Copy {
        files,
        from: None,
        parents: false,
    })
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: s(k),
        value: s(v),
    }
}

fn doc(name: &str, content: &str, expand: bool, chomp: bool) -> Heredoc {
    Heredoc {
        name: s(name),
        content: s(content),
        expand,
        chomp,
        fd: None,
    }
}

fn arg(decls: &[(&str, Option<&str>)]) -> Instruction {
    Instruction::Arg(Arg {
        args: decls
            .iter()
            .map(|(n, d)| ArgDecl {
                name: s(n),
                default: d.map(s),
            })
            .collect(),
    })
}

fn words(ws: &[&str]) -> Vec<String> {
    ws.iter().map(|w| s(w)).collect()
}

/// A case name, Dockerfile text and the instructions it must parse to (global ARGs and FROMs
/// included).
type ParseCase = (&'static str, &'static str, Vec<Instruction>);

fn parse_cases() -> Result<Vec<ParseCase>, String> {
    Ok(vec![
        (
            "comments and continuations across comment and empty lines",
            "FROM alpine\n# a comment\nRUN apk add \\\n  # not part of the command\n\n  curl \\\n  git\n  # trailing comment\n",
            vec![from("alpine", None, None), Instruction::Run(run(sh("apk add   curl   git")))],
        ),
        (
            "keywords are case-insensitive; # inside a line is not a comment",
            "from alpine\nrun echo # not a comment\n",
            vec![from("alpine", None, None), Instruction::Run(run(sh("echo # not a comment")))],
        ),
        (
            "CRLF line endings and a byte order mark",
            "\u{feff}FROM a\r\nRUN x \\\r\n  y\r\n",
            vec![from("a", None, None), Instruction::Run(run(sh("x   y")))],
        ),
        (
            "exec and shell forms",
            "FROM a\nCMD [\"a\", \"b c\"]\nCMD echo hi\nENTRYPOINT [\"/bin/x\"]\nENTRYPOINT x y\nRUN [\"sh\", \"-c\", \"true\"]\nCMD [not json\nCMD []\nENTRYPOINT\n",
            vec![
                from("a", None, None),
                Instruction::Cmd(exec(&["a", "b c"])),
                Instruction::Cmd(sh("echo hi")),
                Instruction::Entrypoint(exec(&["/bin/x"])),
                Instruction::Entrypoint(sh("x y")),
                Instruction::Run(run(exec(&["sh", "-c", "true"]))),
                Instruction::Cmd(sh("[not json")),
                Instruction::Cmd(exec(&[])),
                Instruction::Entrypoint(exec(&[])),
            ],
        ),
        (
            "global ARGs, FROM with platform, AS, stage reference and scratch",
            "ARG BASE=alpine\nARG TAG\nFROM --platform=$BUILDPLATFORM ${BASE}:${TAG:-3} AS Build\nFROM build\nFROM scratch as final\n",
            vec![
                arg(&[("BASE", Some("alpine"))]),
                arg(&[("TAG", None)]),
                from("${BASE}:${TAG:-3}", Some("$BUILDPLATFORM"), Some("build")),
                from("build", None, None),
                from("scratch", None, Some("final")),
            ],
        ),
        (
            "RUN heredoc as the whole command",
            "FROM a\nRUN <<EOF\necho hi\n  indented\nEOF\nCMD x\n",
            vec![
                from("a", None, None),
                Instruction::Run(Run {
                    heredocs: vec![doc("EOF", "echo hi\n  indented\n", true, false)],
                    ..run(sh("<<EOF"))
                }),
                Instruction::Cmd(sh("x")),
            ],
        ),
        (
            "heredoc bodies start after the last continuation line",
            "FROM a\nRUN cat <<EOF \\\n  > /file\nhello\nEOF\n",
            vec![
                from("a", None, None),
                Instruction::Run(Run {
                    heredocs: vec![doc("EOF", "hello\n", true, false)],
                    ..run(sh("cat <<EOF   > /file"))
                }),
            ],
        ),
        (
            "several heredocs on one line, <<- strips tabs, quoted delimiter disables expansion, fd",
            "FROM a\nRUN <<-A cat - 3<<'B' > /out\n\tone\n\t\ttwo\n\tA\n$keep\n\tB\nB\n",
            vec![
                from("a", None, None),
                Instruction::Run(Run {
                    heredocs: vec![
                        doc("A", "one\ntwo\n", true, true),
                        Heredoc {
                            fd: Some(3),
                            ..doc("B", "$keep\n\tB\n", false, false)
                        },
                    ],
                    ..run(sh("<<-A cat - 3<<'B' > /out"))
                }),
            ],
        ),
        (
            "COPY from heredocs and paths",
            "FROM a\nCOPY --chmod=755 <<run.sh conf/ <<\"EOT\" /app/\n#!/bin/sh\necho $HOME\nrun.sh\nraw $X\nEOT\n",
            vec![
                from("a", None, None),
                copy(FileCopy {
                    sources: vec![
                        Source::Heredoc(doc("run.sh", "#!/bin/sh\necho $HOME\n", true, false)),
                        Source::Path(s("conf/")),
                        Source::Heredoc(doc("EOT", "raw $X\n", false, false)),
                    ],
                    chmod: Some(s("755")),
                    ..files(&[], "/app/")
                }),
            ],
        ),
        (
            "RUN mounts, network and security",
            "FROM a\nRUN --mount=type=cache,target=/root/.cache,id=pip,sharing=locked,uid=1000,mode=0700 \\\n    --mount=type=secret,id=tok,required=true \\\n    --network=none --security=insecure make\n",
            vec![
                from("a", None, None),
                Instruction::Run(Run {
                    mounts: vec![
                        Mount {
                            kind: MountType::Cache,
                            target: Some(s("/root/.cache")),
                            source: None,
                            from: None,
                            id: Some(s("pip")),
                            sharing: Some(Sharing::Locked),
                            mode: Some(0o700),
                            uid: Some(1000),
                            gid: None,
                            readonly: false,
                            required: false,
                            size: None,
                            env: None,
                        },
                        Mount {
                            kind: MountType::Secret,
                            target: None,
                            source: None,
                            from: None,
                            id: Some(s("tok")),
                            sharing: None,
                            mode: None,
                            uid: None,
                            gid: None,
                            readonly: true,
                            required: true,
                            size: None,
                            env: None,
                        },
                    ],
                    mount_specs: words(&[
                        "type=cache,target=/root/.cache,id=pip,sharing=locked,uid=1000,mode=0700",
                        "type=secret,id=tok,required=true",
                    ]),
                    network: Some(Network::None),
                    security: Some(Security::Insecure),
                    ..run(sh("make"))
                }),
            ],
        ),
        (
            "bind and tmpfs mounts, quoted flag value, default network",
            "FROM a\nRUN --mount=type=bind,from=build,source=/out,target=/in,rw --mount=\"type=tmpfs,target=/t,size=1m\" --network=default ls /in\n",
            vec![
                from("a", None, None),
                Instruction::Run(Run {
                    mounts: vec![
                        Mount::parse("type=bind,from=build,source=/out,target=/in,rw")?,
                        Mount::parse("type=tmpfs,target=/t,size=1m")?,
                    ],
                    mount_specs: words(&[
                        "type=bind,from=build,source=/out,target=/in,rw",
                        "type=tmpfs,target=/t,size=1m",
                    ]),
                    network: Some(Network::Default),
                    ..run(sh("ls /in"))
                }),
            ],
        ),
        (
            "COPY flags: --from --chown --chmod --link --exclude (repeated) --parents",
            "FROM a\nCOPY --from=build --chown=app:app --chmod=0644 --link --exclude=*.md --exclude=tmp --parents a b /dst/\nCOPY --link=false x y\nCOPY [\"a b\", \"/c d/\"]\nCOPY -- --odd /x\n",
            vec![
                from("a", None, None),
                Instruction::Copy(Copy {
                    files: FileCopy {
                        chown: Some(s("app:app")),
                        chmod: Some(s("0644")),
                        link: true,
                        excludes: words(&["*.md", "tmp"]),
                        ..files(&["a", "b"], "/dst/")
                    },
                    from: Some(s("build")),
                    parents: true,
                }),
                copy(files(&["x"], "y")),
                copy(files(&["a b"], "/c d/")),
                copy(files(&["--odd"], "/x")),
            ],
        ),
        (
            "ADD flags: --checksum --keep-git-dir --link --chown --exclude",
            "FROM a\nADD --checksum=sha256:abc --keep-git-dir=true --link --chown=1:2 --exclude=.git https://x/y.tar.gz /z/\nADD app.tar.gz /opt/\n",
            vec![
                from("a", None, None),
                Instruction::Add(Add {
                    files: FileCopy {
                        chown: Some(s("1:2")),
                        link: true,
                        excludes: words(&[".git"]),
                        ..files(&["https://x/y.tar.gz"], "/z/")
                    },
                    checksum: Some(s("sha256:abc")),
                    keep_git_dir: true,
                }),
                Instruction::Add(Add {
                    files: files(&["app.tar.gz"], "/opt/"),
                    checksum: None,
                    keep_git_dir: false,
                }),
            ],
        ),
        (
            "ENV in both forms, quotes and escapes kept for expansion",
            "FROM a\nENV A=1 B=\"two words\" C=three\\ words\nENV LEGACY value with  spaces\nENV D=\n",
            vec![
                from("a", None, None),
                Instruction::Env(vec![
                    kv("A", "1"),
                    kv("B", "\"two words\""),
                    kv("C", "three\\ words"),
                ]),
                Instruction::Env(vec![kv("LEGACY", "value with  spaces")]),
                Instruction::Env(vec![kv("D", "")]),
            ],
        ),
        (
            "ARG with and without defaults, several per line",
            "FROM a\nARG A B=2 C=\"x y\"\nARG D\n",
            vec![
                from("a", None, None),
                arg(&[("A", None), ("B", Some("2")), ("C", Some("\"x y\""))]),
                arg(&[("D", None)]),
            ],
        ),
        (
            "LABEL in both forms",
            "FROM a\nLABEL a=b \"c d\"=e\nLABEL k v w\n",
            vec![
                from("a", None, None),
                Instruction::Label(vec![kv("a", "b"), kv("\"c d\"", "e")]),
                Instruction::Label(vec![kv("k", "v w")]),
            ],
        ),
        (
            "EXPOSE, VOLUME, WORKDIR, USER, SHELL, STOPSIGNAL, MAINTAINER",
            "FROM a\nEXPOSE 80 53/udp 8000-8010/tcp $PORT\nVOLUME [\"/a\", \"/b\"]\nVOLUME /c /d\nWORKDIR /my app\nUSER app:staff\nSHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\nSTOPSIGNAL SIGTERM\nMAINTAINER Jane <jane@example.com>\n",
            vec![
                from("a", None, None),
                Instruction::Expose(words(&["80", "53/udp", "8000-8010/tcp", "$PORT"])),
                Instruction::Volume(words(&["/a", "/b"])),
                Instruction::Volume(words(&["/c", "/d"])),
                Instruction::Workdir(s("/my app")),
                Instruction::User(s("app:staff")),
                Instruction::Shell(words(&["/bin/bash", "-o", "pipefail", "-c"])),
                Instruction::StopSignal(s("SIGTERM")),
                Instruction::Maintainer(s("Jane <jane@example.com>")),
            ],
        ),
        (
            "HEALTHCHECK with every option, exec form, NONE",
            "FROM a\nHEALTHCHECK --interval=30s --timeout=5s --start-period=1m30s --start-interval=500ms --retries=3 CMD curl -f http://localhost/\nHEALTHCHECK cmd [\"true\"]\nHEALTHCHECK --interval=0s CMD x\nHEALTHCHECK NONE\n",
            vec![
                from("a", None, None),
                Instruction::Healthcheck(Healthcheck::Check(HealthcheckCmd {
                    command: sh("curl -f http://localhost/"),
                    interval: Some(Duration::from_secs(30)),
                    timeout: Some(Duration::from_secs(5)),
                    start_period: Some(Duration::from_secs(90)),
                    start_interval: Some(Duration::from_millis(500)),
                    retries: Some(3),
                })),
                Instruction::Healthcheck(Healthcheck::Check(HealthcheckCmd {
                    command: exec(&["true"]),
                    interval: None,
                    timeout: None,
                    start_period: None,
                    start_interval: None,
                    retries: None,
                })),
                Instruction::Healthcheck(Healthcheck::Check(HealthcheckCmd {
                    command: sh("x"),
                    interval: None,
                    timeout: None,
                    start_period: None,
                    start_interval: None,
                    retries: None,
                })),
                Instruction::Healthcheck(Healthcheck::None),
            ],
        ),
        (
            "ONBUILD wraps an instruction, heredocs included",
            "FROM a\nONBUILD RUN echo hi\nonbuild COPY --chown=1 . /src\nONBUILD RUN <<EOF\necho x\nEOF\n",
            vec![
                from("a", None, None),
                Instruction::Onbuild(Onbuild {
                    expression: s("RUN echo hi"),
                    trigger: Box::new(Instruction::Run(run(sh("echo hi")))),
                }),
                Instruction::Onbuild(Onbuild {
                    expression: s("COPY --chown=1 . /src"),
                    trigger: Box::new(copy(FileCopy {
                        chown: Some(s("1")),
                        ..files(&["."], "/src")
                    })),
                }),
                Instruction::Onbuild(Onbuild {
                    expression: s("RUN <<EOF\necho x\nEOF"),
                    trigger: Box::new(Instruction::Run(Run {
                        heredocs: vec![doc("EOF", "echo x\n", true, false)],
                        ..run(sh("<<EOF"))
                    })),
                }),
            ],
        ),
        (
            "escape directive: backtick continues lines, backslash is literal",
            "# escape=`\nFROM a\nRUN dir C:\\ `\n  /b\nENV P=\"C:\\x `\"q`\"\"\n",
            vec![
                from("a", None, None),
                Instruction::Run(run(sh("dir C:\\   /b"))),
                Instruction::Env(vec![kv("P", "\"C:\\x `\"q`\"\"")]),
            ],
        ),
    ])
}

#[test]
fn dockerfiles_parse_to_instructions() -> TestResult {
    for (name, src, want) in parse_cases()? {
        let df = parse("Dockerfile", src).map_err(|e| format!("{name}: {e}"))?;
        let got: Vec<Instruction> = df.instructions().into_iter().map(|l| l.value).collect();
        assert_eq!(got, want, "{name}");
    }
    Ok(())
}

#[test]
fn run_heredocs_become_commands() -> TestResult {
    let src = "FROM a\nRUN <<EOF\necho one\nEOF\nRUN <<-py\n\t#!/usr/bin/env python3\n\tprint(1)\n\tpy\nRUN cat <<A > /x && cat <<B\na\nA\nb\nB\nRUN [\"ls\", \"/\"]\nRUN plain\n";
    let df = parse("Dockerfile", src)?;
    let got: Vec<RunCommand> = df.stages[0]
        .instructions
        .iter()
        .filter_map(|i| match &i.value {
            Instruction::Run(r) => Some(r.to_command()),
            _ => None,
        })
        .collect();
    assert_eq!(
        got,
        [
            RunCommand::Shell(s("echo one\n")),
            RunCommand::Script {
                path: s("/dev/pipes/py"),
                content: s("#!/usr/bin/env python3\nprint(1)\n")
            },
            RunCommand::Shell(s("cat <<A > /x && cat <<B\na\nA\nb\nB")),
            RunCommand::Exec(words(&["ls", "/"])),
            RunCommand::Shell(s("plain")),
        ]
    );
    Ok(())
}

#[test]
fn add_takes_heredocs_too() -> TestResult {
    let df = parse(
        "Dockerfile",
        "FROM a\nADD --chmod=600 <<key.pem /etc/\nsecret\nkey.pem\n",
    )?;
    let want = Instruction::Add(Add {
        files: FileCopy {
            sources: vec![Source::Heredoc(doc("key.pem", "secret\n", true, false))],
            chmod: Some(s("600")),
            ..files(&[], "/etc/")
        },
        checksum: None,
        keep_git_dir: false,
    });
    assert_eq!(df.stages[0].instructions[0].value, want);
    Ok(())
}

#[test]
fn directives_are_recorded() -> TestResult {
    let df = parse(
        "Dockerfile",
        "# syntax=docker/dockerfile:1.7\n#check=skip=JSONArgsRecommended;error=true\n# escape=`\n\n# escape=\\\nFROM a\n",
    )?;
    assert_eq!(
        df.directives.syntax.as_deref(),
        Some("docker/dockerfile:1.7")
    );
    assert_eq!(df.escape(), '`');
    assert_eq!(
        df.directives.check,
        Some(CheckDirective {
            skip: vec![s("JSONArgsRecommended")],
            error: true
        })
    );
    // A directive after a blank line is a comment.
    let df = parse("Dockerfile", "\n# escape=`\nFROM a\n")?;
    assert_eq!(df.escape(), '\\');
    Ok(())
}

#[test]
fn spans_and_stages() -> TestResult {
    let src =
        "ARG V=1\nFROM a AS one\n  RUN x \\\n    y\nCOPY <<EOF /f\nbody\nEOF\nFROM one\nCMD z\n";
    let df = parse("Dockerfile", src)?;
    assert_eq!(df.global_args.len(), 1);
    assert_eq!(df.stages.len(), 2);
    assert_eq!(df.stages[0].name.as_deref(), Some("one"));
    assert_eq!(df.stages[1].index, 1);
    let spans: Vec<(usize, usize, usize)> = df
        .instructions()
        .iter()
        .map(|l| (l.span.start_line, l.span.end_line, l.span.column))
        .collect();
    assert_eq!(
        spans,
        [
            (1, 1, 1),
            (2, 2, 1),
            (3, 4, 3),
            (5, 7, 1),
            (8, 8, 1),
            (9, 9, 1)
        ]
    );
    assert_eq!(df.stages[0].instructions[0].source, "RUN x     y");
    assert_eq!(df.stage_by_name("ONE").map(|s| s.index), Some(0));
    Ok(())
}

/// Dockerfile text, then the error's line, column and message.
const ERRORS: &[(&str, usize, usize, &str)] = &[
    ("", 1, 1, "the Dockerfile has no instructions"),
    ("# only a comment\nARG A\n", 2, 1, "the Dockerfile has no FROM instruction, so no stage to build"),
    ("FROM a\nFORM b\n", 2, 1, "unknown instruction: FORM (did you mean FROM?)"),
    ("FROM a\n  RUNN x\n", 2, 3, "unknown instruction: RUNN (did you mean RUN?)"),
    ("FROM a\nBOGUS\n", 2, 1, "unknown instruction: BOGUS"),
    ("RUN x\nFROM a\n", 1, 1, "RUN before the first FROM: only ARG may come before FROM"),
    ("FROM a\nCOPY --chmown=1 a b\n", 2, 6, "unknown flag: chmown (did you mean chown?)"),
    ("FROM a\nENV --x=1 A=b\n", 2, 5, "unknown flag: x"),
    ("FROM a\nADD --from=x a b\n", 2, 5, "unknown flag: from"),
    ("FROM a\nCOPY --checksum=x a b\n", 2, 6, "unknown flag: checksum"),
    ("FROM a\nCOPY --from=a --from=b x y\n", 2, 15, "duplicate flag specified: from"),
    ("FROM a\nCOPY --chown a b\n", 2, 6, "missing a value on flag: chown"),
    ("FROM a\nCOPY --link=yes a b\n", 2, 6, "expecting boolean value for flag link, not: yes"),
    ("FROM a\nCOPY --chmod=999 a b\n", 2, 6, "invalid chmod parameter: '999'. it should be octal string and between 0 and 07777"),
    ("FROM a\nRUN --mount=\"type=cache x\n", 2, 13, "unterminated quote in flag --mount=\"type=cache x"),
    ("FROM a\nRUN --mount=type=nfs,target=/x true\n", 2, 5, "unsupported mount type \"nfs\""),
    ("FROM a\nRUN \\\n  --mount=type=cache true\n", 3, 3, "cache mount requires a target"),
    ("FROM a\nRUN --mount=type=cache,target=${X true\n", 2, 5, "syntax error: missing '}': ${X"),
    ("FROM a\nRUN --network=bridge true\n", 2, 5, "unsupported network mode \"bridge\": use default, none or host"),
    ("FROM a\nRUN --security=root true\n", 2, 5, "unsupported security mode \"root\": use sandbox or insecure"),
    ("FROM a\nRUN\n", 2, 1, "RUN requires at least one argument"),
    ("FROM a\nRUN [\"a\", true]\n", 2, 5, "when using JSON array syntax, arrays must be comprised of strings only"),
    ("FROM a\nRUN cat <<EOF\nhello\n", 2, 9, "unterminated heredoc: no line \"EOF\" ends it"),
    ("FROM a\nRUN \\\n  cat <<-END\n\tx\n  END\n", 3, 7, "unterminated heredoc: no line \"END\" ends it"),
    ("FROM a\nCOPY <<A <<B /d\na\nA\n", 2, 10, "unterminated heredoc: no line \"B\" ends it"),
    ("FROM a\nRUN cat <<'EOF\nx\n", 2, 11, "unterminated quote in heredoc delimiter"),
    ("FROM a\nENV A=\"x\n", 2, 7, "unexpected end of statement while looking for matching double-quote"),
    ("FROM a\nLABEL a='b c\n", 2, 9, "unexpected end of statement while looking for matching single-quote"),
    ("FROM a\nLABEL ünï=\"x\n", 2, 11, "unexpected end of statement while looking for matching double-quote"),
    ("FROM a\nCOPY \"a b\" /x\n", 2, 6, "unexpected end of statement while looking for matching double-quote"),
    ("FROM a\nWORKDIR ${}\n", 2, 9, "syntax error: bad substitution"),
    ("FROM a\nUSER ${name\n", 2, 6, "syntax error: missing '}'"),
    ("FROM a\nEXPOSE 80 ${P:x}\n", 2, 11, "unsupported modifier (:x) in substitution"),
    ("FROM a\nSHELL /bin/sh -c\n", 2, 7, "SHELL requires the arguments to be in JSON form, like SHELL [\"/bin/sh\", \"-c\"]"),
    ("FROM a\nSHELL [\"/bin/sh\", 1]\n", 2, 7, "when using JSON array syntax, arrays must be comprised of strings only"),
    ("FROM a\nSHELL []\n", 2, 1, "SHELL requires at least one argument"),
    ("FROM a\nCOPY onlyone\n", 2, 1, "COPY requires at least two arguments, but only one was provided. Destination could not be determined"),
    ("FROM a\nCOPY x <<EOF\nbody\nEOF\n", 2, 8, "COPY cannot accept a heredoc as a destination"),
    ("FROM a b\n", 1, 1, "FROM requires either one or three arguments"),
    ("FROM a FOR b\n", 1, 8, "FROM expects AS before the stage name, found \"FOR\""),
    ("FROM a AS 1st\n", 1, 11, "invalid name for build stage: \"1st\", name can't start with a number or contain symbols"),
    ("FROM a AS x\nFROM b AS X\n", 2, 11, "duplicate stage name \"x\": already used on line 1"),
    ("FROM ${BASE\n", 1, 6, "syntax error: missing '}'"),
    ("FROM a AS build\nCOPY --from=build x y\n", 2, 6, "COPY refers to its own stage; a stage cannot read from itself"),
    ("FROM a\nFROM b\nCOPY --from=1 x y\n", 3, 6, "COPY refers to its own stage; a stage cannot read from itself"),
    ("FROM a AS b\nRUN --mount=from=B,target=/b true\n", 2, 5, "RUN refers to its own stage; a stage cannot read from itself"),
    ("FROM a\nENV A=1 B\n", 2, 9, "Syntax error - can't find = in \"B\". Must be of the form: name=value"),
    ("FROM a\nENV A\n", 2, 1, "ENV must have two arguments"),
    ("FROM a\nENV =x\n", 2, 5, "ENV names can not be blank"),
    ("FROM a\nLABEL\n", 2, 1, "LABEL requires at least one argument"),
    ("FROM a\nARG =x\n", 2, 5, "ARG names can not be blank"),
    ("FROM a\nARG\n", 2, 1, "ARG requires at least one argument"),
    ("FROM a\nEXPOSE 80/xtp\n", 2, 8, "invalid protocol \"xtp\" in port \"80/xtp\""),
    ("FROM a\nEXPOSE\n", 2, 1, "EXPOSE requires at least one argument"),
    ("FROM a\nVOLUME [\"/a\", \" \"]\n", 2, 8, "VOLUME specified can not be an empty string"),
    ("FROM a\nWORKDIR\n", 2, 1, "WORKDIR requires exactly one argument"),
    ("FROM a\nUSER\n", 2, 1, "USER requires exactly one argument"),
    ("FROM a\nSTOPSIGNAL SIGNOPE\n", 2, 12, "invalid signal: SIGNOPE"),
    ("FROM a\nMAINTAINER\n", 2, 1, "MAINTAINER requires exactly one argument"),
    ("FROM a\nHEALTHCHECK --interval=5s RUN x\n", 2, 27, "Unknown type \"RUN\" in HEALTHCHECK (try CMD)"),
    ("FROM a\nHEALTHCHECK --interval=5 CMD x\n", 2, 13, "time: missing unit in duration \"5\""),
    ("FROM a\nHEALTHCHECK --timeout=10us CMD x\n", 2, 13, "Interval \"timeout\" cannot be less than 1ms"),
    ("FROM a\nHEALTHCHECK --retries=-1 CMD x\n", 2, 13, "--retries cannot be negative (-1)"),
    ("FROM a\nHEALTHCHECK --retires=1 CMD x\n", 2, 13, "unknown flag: retires (did you mean retries?)"),
    ("FROM a\nHEALTHCHECK NONE x\n", 2, 18, "HEALTHCHECK NONE takes no arguments"),
    ("FROM a\nHEALTHCHECK CMD\n", 2, 13, "Missing command after HEALTHCHECK CMD"),
    ("FROM a\nHEALTHCHECK\n", 2, 1, "HEALTHCHECK requires at least one argument"),
    ("FROM a\nONBUILD ONBUILD RUN x\n", 2, 9, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("FROM a\nONBUILD FROM b\n", 2, 9, "FROM isn't allowed as an ONBUILD trigger"),
    ("FROM a\nONBUILD maintainer me\n", 2, 9, "MAINTAINER isn't allowed as an ONBUILD trigger"),
    ("FROM a\nONBUILD COPY --bogus a b\n", 2, 14, "unknown flag: bogus"),
    ("FROM a\nONBUILD\n", 2, 1, "ONBUILD requires at least one argument"),
    ("# escape=x\nFROM a\n", 1, 10, "invalid escape token 'x' does not match ` or \\"),
    ("# escape=`\n  #  ESCAPE = \\\nFROM a\n", 2, 6, "only one escape parser directive can be used"),
    ("# check=foo=1\nFROM a\n", 1, 9, "unknown check option \"foo\""),
];

#[test]
fn errors_point_at_line_and_column() {
    for &(src, line, column, message) in ERRORS {
        match parse("Dockerfile", src) {
            Ok(_) => panic!("{src:?} parsed, want {line}:{column}: {message}"),
            Err(e) => assert_eq!(
                (e.line, e.column, e.message.as_str()),
                (line, column, message),
                "{src:?}"
            ),
        }
    }
}

#[test]
fn error_display_shows_the_line_and_a_caret() {
    let err = parse("build/Dockerfile.app", "FROM a\n\tCOPY --lnk a b\n").err();
    let text = err.map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(
        text,
        "build/Dockerfile.app:2:7: unknown flag: lnk (did you mean link?)\n    \tCOPY --lnk a b\n    \t     ^"
    );
}

#[test]
fn stage_checks() -> TestResult {
    let ok = "FROM a AS one\nFROM one AS two\nCOPY --from=one /x /x\nCOPY --from=0 /y /y\nCOPY --from=alpine:3 /z /z\nRUN --mount=from=one,target=/m true\n";
    check_stages(&parse("Dockerfile", ok)?)?;
    let cases: &[(&str, usize, usize, &str)] = &[
        (
            "FROM a AS one\nCOPY --from=two /x /y\nFROM one AS two\n",
            3,
            1,
            "circular dependency detected on stage: one (one -> two -> one)",
        ),
        (
            "FROM a AS x\nRUN --mount=from=y,target=/y true\nFROM a AS y\n  COPY --from=x a b\n",
            4,
            3,
            "circular dependency detected on stage: x (x -> y -> x)",
        ),
        (
            "FROM a\nCOPY --from=1 /x /x\nFROM b\nCOPY --from=0 /x /x\n",
            4,
            1,
            "circular dependency detected on stage: stage 0 (stage 0 -> stage 1 -> stage 0)",
        ),
        (
            "FROM a\nCOPY --from=3 x y\n",
            2,
            1,
            "invalid stage index 3: the Dockerfile has 1 stage(s), numbered from 0",
        ),
        (
            "ARG B=one\nFROM a AS one\nCOPY --from=two x y\nFROM ${B} AS two\n",
            4,
            1,
            "circular dependency detected on stage: one (one -> two -> one)",
        ),
    ];
    for &(src, line, column, message) in cases {
        let df = parse("Dockerfile", src)?;
        match check_stages(&df) {
            Ok(()) => panic!("{src:?} passed the stage check, want {message}"),
            Err(e) => assert_eq!(
                (e.line, e.column, e.message.as_str()),
                (line, column, message),
                "{src:?}"
            ),
        }
    }
    Ok(())
}

#[test]
fn stage_references_resolve() -> TestResult {
    let df = parse("Dockerfile", "FROM later\nFROM a AS Later\nFROM later\n")?;
    // FROM sees only earlier stages; --from sees them all.
    assert_eq!(resolve_from(&df, 0, "later"), StageRef::Image(s("later")));
    assert_eq!(resolve_from(&df, 2, "later"), StageRef::Stage(1));
    assert_eq!(resolve_copy_from(&df, "LATER"), Ok(StageRef::Stage(1)));
    assert_eq!(resolve_copy_from(&df, "2"), Ok(StageRef::Stage(2)));
    assert_eq!(
        resolve_copy_from(&df, "busybox"),
        Ok(StageRef::Image(s("busybox")))
    );
    assert!(resolve_copy_from(&df, "-1").is_err());
    Ok(())
}

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (s(k), s(v))).collect()
}

/// The expansion of a word, or the error's offset and message.
type Expected = Result<&'static str, (usize, &'static str)>;

/// Word, escape character, then what it expands to.
const EXPANSIONS: &[(&str, char, Expected)] = &[
    ("$A", '\\', Ok("a")),
    ("${A}b", '\\', Ok("ab")),
    ("$A_b", '\\', Ok("")),
    ("${A}_b", '\\', Ok("a_b")),
    ("x$", '\\', Ok("x$")),
    ("$1x", '\\', Ok("x")),
    ("${U:-def}", '\\', Ok("def")),
    ("${E:-def}", '\\', Ok("def")),
    ("${E-def}", '\\', Ok("")),
    ("${U-def}", '\\', Ok("def")),
    ("${A:+alt}", '\\', Ok("alt")),
    ("${E:+alt}", '\\', Ok("")),
    ("${E+alt}", '\\', Ok("alt")),
    ("${U+alt}", '\\', Ok("")),
    ("${U:-$A$A}", '\\', Ok("aa")),
    ("${U:-\"q $A\"}", '\\', Ok("q a")),
    ("'$A'", '\\', Ok("$A")),
    ("\"$A\"", '\\', Ok("a")),
    ("\\$A", '\\', Ok("$A")),
    ("\"\\$A \\\" \\x\"", '\\', Ok("$A \" \\x")),
    ("a\\ b", '\\', Ok("a b")),
    ("'it''s'", '\\', Ok("its")),
    ("trailing\\", '\\', Ok("trailing")),
    ("C:\\dir `$A", '`', Ok("C:\\dir $A")),
    ("\"`\"\"", '`', Ok("\"")),
    ("${S#*/}", '\\', Ok("b/c.tar.gz")),
    ("${S##*/}", '\\', Ok("c.tar.gz")),
    ("${S%.*}", '\\', Ok("a/b/c.tar")),
    ("${S%%.*}", '\\', Ok("a/b/c")),
    ("${S/\\//-}", '\\', Ok("a-b/c.tar.gz")),
    ("${S//\\//-}", '\\', Ok("a-b-c.tar.gz")),
    ("${U:?}", '\\', Err((0, "U: is not allowed to be unset"))),
    ("x${E:?must be set}", '\\', Err((1, "E: must be set"))),
    ("${E?}", '\\', Ok("")),
    (
        "ab'cd",
        '\\',
        Err((
            2,
            "unexpected end of statement while looking for matching single-quote",
        )),
    ),
    (
        "a\"b",
        '\\',
        Err((
            1,
            "unexpected end of statement while looking for matching double-quote",
        )),
    ),
    ("${A", '\\', Err((0, "syntax error: missing '}'"))),
    ("${A:-x", '\\', Err((0, "syntax error: missing '}'"))),
    ("x${}", '\\', Err((1, "syntax error: bad substitution"))),
    ("${:a}", '\\', Err((0, "syntax error: bad substitution"))),
    (
        "${A!}",
        '\\',
        Err((0, "unsupported modifier (!) in substitution")),
    ),
];

#[test]
fn expansion() {
    let v = vars(&[("A", "a"), ("E", ""), ("S", "a/b/c.tar.gz")]);
    for &(word, escape, want) in EXPANSIONS {
        let got = Expander::new(escape).word(word, &v);
        let got = got.as_deref().map_err(|e| (e.offset, e.message.as_str()));
        assert_eq!(got, want, "{word:?}");
    }
}

#[test]
fn expansion_into_words_and_matches() -> TestResult {
    let v = vars(&[("A", "x  y"), ("E", "")]);
    assert_eq!(
        expand_words("$A \"$A\" '' $E z", &v)?,
        ["x", "y", "x  y", "z"]
    );
    let e = Expander::default().process("${A} $U ${E:-d}", &v)?;
    assert_eq!(e.value, "x  y  d");
    assert_eq!(e.matched.iter().collect::<Vec<_>>(), ["A", "E"]);
    assert_eq!(e.unmatched.iter().collect::<Vec<_>>(), ["U"]);
    assert_eq!(
        expand("$A", &|n: &str| (n == "A").then(|| s("closure")))?,
        "closure"
    );
    Ok(())
}

/// Instruction text in a stage, then the instruction BuildKit would see after expansion.
#[test]
fn instructions_expand_where_buildkit_expands() -> TestResult {
    let v = vars(&[
        ("D", "/app"),
        ("U", "app"),
        ("P", "8080"),
        ("SIG", "SIGINT"),
        ("V", "1.2"),
    ]);
    let cases: Vec<(&str, Instruction)> = vec![
        (
            "ADD --chown=$U --checksum=sha256:$V https://x/$V.tgz $D/",
            Instruction::Add(Add {
                files: FileCopy {
                    chown: Some(s("app")),
                    ..files(&["https://x/1.2.tgz"], "/app/")
                },
                checksum: Some(s("sha256:1.2")),
                keep_git_dir: false,
            }),
        ),
        (
            "COPY --chmod=${M:-644} --exclude=$V [\"$D/a\", \"${D}b\"]",
            {
                // A JSON-form COPY: flags first, then the array.
                copy(FileCopy {
                    chmod: Some(s("644")),
                    excludes: words(&["1.2"]),
                    ..files(&["/app/a"], "/appb")
                })
            },
        ),
        (
            "ENV A=$D B=\"$U x\"",
            Instruction::Env(vec![kv("A", "/app"), kv("B", "app x")]),
        ),
        (
            "ENV ${U}_HOME $D",
            Instruction::Env(vec![kv("app_HOME", "/app")]),
        ),
        (
            "LABEL version=$V \"$U\"=yes",
            Instruction::Label(vec![kv("version", "1.2"), kv("app", "yes")]),
        ),
        (
            "EXPOSE $P ${P}/udp",
            Instruction::Expose(words(&["8080", "8080/udp"])),
        ),
        ("VOLUME $D/data", Instruction::Volume(words(&["/app/data"]))),
        ("WORKDIR $D", Instruction::Workdir(s("/app"))),
        ("USER $U:$U", Instruction::User(s("app:app"))),
        ("STOPSIGNAL $SIG", Instruction::StopSignal(s("SIGINT"))),
        ("RUN echo $D", Instruction::Run(run(sh("echo $D")))),
        ("CMD echo $D", Instruction::Cmd(sh("echo $D"))),
        (
            "ENTRYPOINT [\"$D\"]",
            Instruction::Entrypoint(exec(&["$D"])),
        ),
        ("SHELL [\"$D\"]", Instruction::Shell(words(&["$D"]))),
        (
            "ONBUILD WORKDIR $D",
            Instruction::Onbuild(Onbuild {
                expression: s("WORKDIR $D"),
                trigger: Box::new(Instruction::Workdir(s("$D"))),
            }),
        ),
    ];
    for (line, want) in cases {
        let df = parse("Dockerfile", &format!("FROM a\n{line}\n"))?;
        let got = df.stages[0].instructions[0].expanded_in(&df.file, df.escape(), &v)?;
        assert_eq!(got, want, "{line}");
    }
    // An expansion error is reported at the instruction.
    let df = parse("Dockerfile", "FROM a\n  WORKDIR ${D:?no workdir}\n")?;
    let err = df.stages[0].instructions[0]
        .expanded_in(&df.file, df.escape(), &vars(&[]))
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("Dockerfile:2:3: WORKDIR: D: no workdir\n      WORKDIR ${D:?no workdir}\n      ^")
    );
    Ok(())
}

#[test]
fn global_args_and_platform_args() -> TestResult {
    let df = parse(
        "Dockerfile",
        "ARG BASE=alpine\nARG TAG=${BASE}-3\nARG EMPTY\nFROM --platform=$BUILDPLATFORM $BASE:$TAG${EMPTY}\n",
    )?;
    let host = Platform::host();
    let g = GlobalArgs::host(&df, &BTreeMap::new())?;
    assert_eq!(
        g.expand_from(&df.stages[0].from, df.escape())?,
        (s("alpine:alpine-3"), Some(host.to_string()))
    );
    assert_eq!(g.get("EMPTY"), None);
    assert_eq!(g.get("TARGETOS"), Some("linux"));
    let g = GlobalArgs::host(&df, &vars(&[("BASE", "debian")]))?;
    assert_eq!(
        g.expand_from(&df.stages[0].from, df.escape())?.0,
        "debian:debian-3"
    );
    let arm = Platform::parse("linux/arm/v7")?;
    let g = GlobalArgs::new(&df, &BTreeMap::new(), &host, &arm)?;
    assert_eq!(g.get("TARGETPLATFORM"), Some("linux/arm/v7"));
    assert_eq!(g.get("TARGETVARIANT"), Some("v7"));
    assert_eq!(g.get("BUILDARCH"), Some(host.arch.as_str()));
    let df = parse("Dockerfile", "ARG B=\nFROM ${B}\n")?;
    let g = GlobalArgs::host(&df, &BTreeMap::new())?;
    assert!(g.expand_from(&df.stages[0].from, df.escape()).is_err());
    Ok(())
}

/// Applies a stage's instructions and returns the variable scope.
fn stage_scope(
    src: &str,
    build_args: &[(&str, &str)],
    base_env: &[&str],
) -> Result<StageVars, Box<dyn std::error::Error>> {
    let df = parse("Dockerfile", src)?;
    let globals = GlobalArgs::host(&df, &vars(build_args))?;
    let mut scope = StageVars::from_image_env(base_env);
    let Some(stage) = df.stages.last() else {
        return Err("no stage".into());
    };
    for inst in &stage.instructions {
        scope.apply(inst, &globals, df.escape())?;
    }
    Ok(scope)
}

#[test]
fn stage_scoping() -> TestResult {
    let src = "ARG V=global\nARG ONLYGLOBAL=g\nFROM x\nARG V\nARG D=default C=${D}2\nENV E=$V-$D\nARG TARGETARCH\nARG NOTSET\nENV V=env W=$V\n";
    let scope = stage_scope(src, &[], &["PATH=/bin"])?;
    let host = Platform::host();
    assert_eq!(scope.get("V"), Some("env"));
    assert_eq!(scope.get("W"), Some("global"));
    assert_eq!(scope.get("D"), Some("default"));
    assert_eq!(scope.get("C"), Some("default2"));
    assert_eq!(scope.get("E"), Some("global-default"));
    assert_eq!(scope.get("TARGETARCH"), Some(host.arch.as_str()));
    assert_eq!(scope.get("ONLYGLOBAL"), None);
    assert_eq!(scope.get("NOTSET"), None);
    assert_eq!(scope.get("PATH"), Some("/bin"));
    let env: Vec<(String, String)> = scope.env().to_vec();
    assert_eq!(
        env,
        [
            (s("PATH"), s("/bin")),
            (s("E"), s("global-default")),
            (s("V"), s("env")),
            (s("W"), s("global"))
        ]
    );
    assert_eq!(scope.args().len(), 5);

    // --build-arg beats defaults and globals; undeclared build args stay invisible.
    let scope = stage_scope(src, &[("D", "cli"), ("V", "cv"), ("FOO", "f")], &[])?;
    assert_eq!(scope.get("D"), Some("cli"));
    assert_eq!(scope.get("C"), Some("cli2"));
    assert_eq!(scope.get("W"), Some("cv"));
    assert_eq!(scope.get("FOO"), None);

    // An ARG after an ENV of the same name sets the value RUN and expansion see, not the image
    // config's Env; base image env is expanded in ENV.
    let scope = stage_scope(
        "ARG X=g\nFROM x\nENV X=env P=${PATH}:/opt\nARG X\n",
        &[],
        &["PATH=/bin"],
    )?;
    assert_eq!(scope.get("X"), Some("g"));
    assert_eq!(scope.get("P"), Some("/bin:/opt"));
    assert!(scope.env().contains(&(s("X"), s("env"))));
    assert!(scope.run_env().contains(&(s("X"), s("g"))));
    Ok(())
}

/// Ignore-file text, then paths and whether each is excluded.
const IGNORES: &[(&str, &[(&str, bool)])] = &[
    (
        "# comment\n*.md\n!README.md\n",
        &[
            ("a.md", true),
            ("README.md", false),
            ("docs/a.md", false),
            ("x", false),
            ("# comment", false),
        ],
    ),
    (
        "**/*.md",
        &[("a.md", true), ("docs/x/a.md", true), ("a.mdx", false)],
    ),
    (
        "/build\n./tmp/\n",
        &[
            ("build", true),
            ("build/x/y", true),
            ("tmp/a", true),
            ("src/build", false),
            ("./build/z", true),
        ],
    ),
    (
        "node_modules\n!node_modules/keep\n",
        &[
            ("node_modules/a", true),
            ("node_modules/keep", false),
            ("node_modules/keep/x", false),
        ],
    ),
    ("a?c", &[("abc", true), ("a/c", false), ("abbc", false)]),
    (
        "dir/**",
        &[
            ("dir/x", true),
            ("dir/x/y", true),
            ("dir", false),
            ("dirx", false),
        ],
    ),
    ("**", &[("a", true), ("a/b", true)]),
    (
        "a/**/b",
        &[("a/b", true), ("a/x/y/b", true), ("a/xb", false)],
    ),
    (
        "*\n!*.go\n",
        &[("main.go", false), ("x.txt", true), ("pkg/a.go", true)],
    ),
    (
        "*.txt\n!a.txt\na.txt\n",
        &[("a.txt", true), ("b.txt", true)],
    ),
    ("  #x  \n", &[("#x", true)]),
    (
        "[a-c].txt\n[^x]y\n",
        &[
            ("b.txt", true),
            ("d.txt", false),
            ("zy", true),
            ("xy", false),
        ],
    ),
    ("\\*lit\n", &[("*lit", true), ("alit", false)]),
    (
        "src/*/gen\n",
        &[
            ("src/a/gen/x.go", true),
            ("src/gen", false),
            ("src/a/b/gen", false),
        ],
    ),
    (
        "**/.git\n",
        &[(".git", true), ("sub/.git/HEAD", true), ("x.git", false)],
    ),
    (
        "a\n!a/b\na/b/c\n",
        &[("a/x", true), ("a/b/y", false), ("a/b/c/d", true)],
    ),
];

#[test]
fn dockerignore_matching() -> TestResult {
    for &(text, cases) in IGNORES {
        let ig = DockerIgnore::parse(".dockerignore", text)?;
        for &(path, want) in cases {
            assert_eq!(ig.is_excluded(path), want, "{text:?} on {path:?}");
        }
    }
    let ig = DockerIgnore::parse(".dockerignore", "# c\n./a/\n!/b\n\n")?;
    assert_eq!(ig.patterns(), ["a", "!b"]);
    assert!(ig.has_exceptions());
    Ok(())
}

#[test]
fn dockerignore_pruning() -> TestResult {
    // Patterns, directory, whether something below it may be re-included.
    let cases: &[(&str, &str, bool)] = &[
        ("node_modules\n!node_modules/keep\n", "node_modules", true),
        (
            "node_modules\n!node_modules/keep\n",
            "node_modules/other",
            false,
        ),
        ("build\n", "build", false),
        ("*\n!*.go\n", "pkg", false),
        ("**\n!**/*.go\n", "pkg", true),
        ("a\n!a/b/c\n", "a", true),
        ("a\n!a/b/c\n", "a/b", true),
        ("a\n!a/b/c\n", "a/x", false),
        ("a\n!a\n", "a/deep", true),
        ("x\n!*/keep\n", "x", true),
        ("x\n!*/keep\n", "x/y", false),
    ];
    for &(text, dir, want) in cases {
        let ig = DockerIgnore::parse(".dockerignore", text)?;
        assert_eq!(ig.may_include_below(dir), want, "{text:?} below {dir:?}");
    }
    Ok(())
}

#[test]
fn dockerignore_errors() {
    for (text, line, message) in [
        ("a\n!\n", 2, "illegal exclusion pattern"),
        ("ok\n\nx[\n", 3, "syntax error in pattern (unclosed [)"),
        ("x\\", 1, "syntax error in pattern (trailing \\)"),
    ] {
        match DockerIgnore::parse("ctx/.dockerignore", text) {
            Err(IgnoreError::Pattern {
                line: l,
                message: m,
                file,
                ..
            }) => {
                assert_eq!(
                    (l, m.as_str(), file.as_str()),
                    (line, message, "ctx/.dockerignore")
                );
            }
            other => panic!("{text:?}: want a pattern error, got {other:?}"),
        }
    }
}

#[test]
fn dockerignore_file_choice() -> TestResult {
    let ctx = tempfile::tempdir()?;
    let df_dir = ctx.path().join("build");
    std::fs::create_dir(&df_dir)?;
    let dockerfile = df_dir.join("app.Dockerfile");
    std::fs::write(&dockerfile, "FROM a\n")?;
    assert_eq!(find_dockerignore(ctx.path(), &dockerfile), None);
    let (ig, used) = DockerIgnore::load(ctx.path(), &dockerfile)?;
    assert!(ig.is_empty() && used.is_none());

    std::fs::write(ctx.path().join(".dockerignore"), "ctx-only\n")?;
    let (ig, used) = DockerIgnore::load(ctx.path(), &dockerfile)?;
    assert_eq!(used, Some(ctx.path().join(".dockerignore")));
    assert!(ig.is_excluded("ctx-only"));

    let specific = df_dir.join("app.Dockerfile.dockerignore");
    std::fs::write(&specific, "specific\n")?;
    let (ig, used) = DockerIgnore::load(ctx.path(), &dockerfile)?;
    assert_eq!(used, Some(specific));
    assert!(ig.is_excluded("specific") && !ig.is_excluded("ctx-only"));
    Ok(())
}
