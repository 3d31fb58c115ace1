//! Loading whole projects from engine/tests/compose_fixtures/.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/compose_fixtures"
    ))
}

/// Options for a fixture directory: it is the working directory, HOME is
/// fixed, and `env` is the shell.
fn opts(dir: &str, env: &[(&str, &str)]) -> LoadOptions {
    let mut environment: BTreeMap<String, String> =
        [("HOME".to_owned(), "/home/tester".to_owned())].into();
    for (k, v) in env {
        environment.insert((*k).to_owned(), (*v).to_owned());
    }
    LoadOptions {
        cwd: Some(fixtures().join(dir)),
        environment,
        ..LoadOptions::default()
    }
}

fn with_files(mut o: LoadOptions, files: &[&str]) -> LoadOptions {
    o.files = files.iter().map(PathBuf::from).collect();
    o
}

fn load_ok(o: &LoadOptions) -> Project {
    match load(o) {
        Ok(p) => p,
        Err(e) => panic!("load failed: {e}"),
    }
}

fn svc<'a>(p: &'a Project, name: &str) -> &'a Service {
    p.service(name)
        .unwrap_or_else(|| panic!("no service {name} in {:?}", names(p)))
}

fn names(p: &Project) -> Vec<String> {
    p.services.iter().map(|s| s.name.clone()).collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn env_of(s: &Service) -> BTreeMap<String, Option<String>> {
    s.environment.clone()
}

fn some(v: &str) -> Option<String> {
    Some(v.to_owned())
}

fn invalid(file: &str, env: &[(&str, &str)]) -> String {
    let o = with_files(opts("invalid", env), &[file]);
    match load(&o) {
        Ok(_) => panic!("{file} loaded but must not"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn basic_project() {
    let p = load_ok(&opts(
        "basic",
        &[("FROM_SHELL", "shell"), ("MODE", "shell-mode")],
    ));
    let dir = fixtures().join("basic");
    assert_eq!(p.name, "basic");
    assert_eq!(p.working_dir, dir);
    assert_eq!(p.compose_files, vec![dir.join("compose.yaml")]);
    assert_eq!(names(&p), strings(&["web", "db", "cache", "worker"]));

    let web = svc(&p, "web");
    assert_eq!(web.image.as_deref(), Some("nginx:1.25"));
    assert_eq!(web.command, Some(strings(&["nginx", "-g", "daemon off;"])));
    assert_eq!(web.entrypoint, Some(strings(&["/docker-entrypoint.sh"])));
    let env = env_of(web);
    // The shell wins over .env; `environment` wins over env_file.
    assert_eq!(env["MODE"], some("shell-mode"));
    assert_eq!(env["FROM_SHELL"], some("shell"));
    assert_eq!(env["UNSET_VAR"], None);
    assert_eq!(env["LITERAL"], some("$HOME"));
    assert_eq!(env["WEB_ONLY"], some("1"));
    assert_eq!(env["QUOTED"], some("a b"));

    let ports: Vec<(Option<&str>, u16, Option<&str>, &str)> = web
        .ports
        .iter()
        .map(|p| {
            (
                p.host_ip.as_deref(),
                p.target,
                p.published.as_deref(),
                p.protocol.as_str(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        [
            (None, 80, Some("8080"), "tcp"),
            (Some("127.0.0.1"), 443, Some("8443"), "tcp"),
            (None, 9000, Some("9000-9005"), "udp"),
        ]
    );
    assert_eq!(web.expose, strings(&["3000", "4000-4002/udp"]));

    let vols: Vec<(&str, Option<&str>, &str, bool)> = web
        .volumes
        .iter()
        .map(|v| {
            (
                v.kind.as_str(),
                v.source.as_deref(),
                v.target.as_str(),
                v.read_only,
            )
        })
        .collect();
    let conf = dir.join("conf").display().to_string();
    assert_eq!(
        vols,
        [
            ("volume", Some("static"), "/usr/share/nginx/html", true),
            ("bind", Some(conf.as_str()), "/etc/nginx/conf.d", false),
            ("bind", Some("/home/tester/cache"), "/cache", false),
            ("tmpfs", None, "/run/tmp", false),
        ]
    );
    assert_eq!(
        web.volumes[3].tmpfs.as_ref().and_then(|t| t.size),
        Some(16 << 20)
    );
    assert_eq!(web.tmpfs, strings(&["/tmp"]));

    assert_eq!(web.networks["front"].aliases, strings(&["www"]));
    assert_eq!(
        web.networks["front"].ipv4_address.as_deref(),
        Some("172.28.0.10")
    );
    assert_eq!(web.networks["back"], ServiceNetwork::default());
    assert_eq!(
        web.depends_on["db"],
        Dependency {
            condition: DependencyCondition::Healthy,
            restart: true,
            required: true
        }
    );
    assert!(!web.depends_on["cache"].required);

    let hc = web.healthcheck.as_ref().expect("healthcheck");
    assert_eq!(
        hc.test,
        strings(&["CMD-SHELL", "curl -f http://localhost/ || exit 1"])
    );
    assert_eq!(hc.interval_ns, Some(30_000_000_000));
    assert_eq!(hc.timeout_ns, Some(5_000_000_000));
    assert_eq!(hc.retries, Some(3));
    assert_eq!(hc.start_period_ns, Some(60_000_000_000));
    assert_eq!(hc.start_interval_ns, Some(2_000_000_000));

    assert_eq!(web.restart.as_deref(), Some("unless-stopped"));
    assert_eq!(web.replicas, 2);
    assert_eq!(web.mem_limit, Some(512 << 20));
    assert_eq!(web.mem_reservation, Some(128 << 20));
    assert_eq!(web.cpus, Some(0.5));
    assert_eq!(web.pids_limit, Some(100));
    assert_eq!(web.hostname.as_deref(), Some("web"));
    assert_eq!(web.user.as_deref(), Some("1000:1000"));
    assert_eq!(web.working_dir.as_deref(), Some("/srv"));
    assert_eq!(web.labels["com.example.tier"], "frontend");
    assert_eq!(web.stop_signal.as_deref(), Some("SIGQUIT"));
    assert_eq!(web.stop_grace_period_ns, Some(90_000_000_000));
    assert_eq!(web.init, Some(true));
    assert!(web.read_only);
    assert_eq!(web.cap_add, strings(&["NET_ADMIN"]));
    assert_eq!(web.cap_drop, strings(&["ALL"]));
    assert_eq!(web.security_opt, strings(&["no-new-privileges:true"]));
    assert_eq!(
        web.ulimits["nofile"],
        Ulimit {
            soft: 1024,
            hard: 4096
        }
    );
    assert_eq!(
        web.ulimits["nproc"],
        Ulimit {
            soft: 512,
            hard: 512
        }
    );
    assert_eq!(
        web.extra_hosts,
        strings(&["host.docker.internal:host-gateway", "db.local:10.0.0.5"])
    );
    assert_eq!(web.dns, strings(&["1.1.1.1"]));
    assert_eq!(web.sysctls["net.core.somaxconn"], "1024");
    assert_eq!(web.shm_size, Some(64 << 20));
    assert_eq!(
        web.secrets,
        vec![
            ServiceFile {
                source: "db_password".into(),
                target: "/run/secrets/db_password".into(),
                uid: None,
                gid: None,
                mode: None
            },
            ServiceFile {
                source: "api_key".into(),
                target: "/run/secrets/api.key".into(),
                uid: None,
                gid: None,
                mode: Some(0o400)
            },
        ]
    );
    assert_eq!(web.configs[0].target, "/etc/nginx/nginx.conf");
    assert_eq!(web.pull_policy.as_deref(), Some("missing"));

    let db = svc(&p, "db");
    assert_eq!(env_of(db)["PGPORT"], some("5432"));
    assert_eq!(
        db.healthcheck.as_ref().map(|h| h.test.clone()),
        Some(strings(&["CMD", "pg_isready"]))
    );
    let cache = svc(&p, "cache");
    assert_eq!(cache.network_mode.as_deref(), Some("service:db"));
    assert!(cache.networks.is_empty());

    let worker = svc(&p, "worker");
    let build = worker.build.as_ref().expect("build");
    assert_eq!(build.context, dir.join("worker").display().to_string());
    assert_eq!(build.dockerfile.as_deref(), Some("Dockerfile.dev"));
    assert_eq!(build.target.as_deref(), Some("dev"));
    assert_eq!(build.args["VERSION"], some("1.2"));
    assert_eq!(build.args["FROM_SHELL"], some("shell"));
    assert_eq!(build.args["NOT_SET_ANYWHERE"], None);
    assert_eq!(worker.mem_limit, Some(1 << 30));
    assert_eq!(worker.cpus, Some(2.0));
    assert_eq!(
        worker
            .logging
            .as_ref()
            .map(|l| l.options["max-size"].as_str()),
        Some("10m")
    );
    // No networks declared: the project's default network.
    assert_eq!(worker.networks.keys().collect::<Vec<_>>(), ["default"]);

    // Names as docker compose gives them.
    assert_eq!(p.network_name("default"), "basic_default");
    assert_eq!(p.network_name("front"), "basic_front");
    assert_eq!(p.network_name("outside"), "shared-net");
    assert!(p.networks["back"].internal);
    assert!(p.networks["outside"].external);
    assert_eq!(p.volume_name("static"), "basic_static");
    assert_eq!(p.volume_name("ext"), "ext");
    assert_eq!(p.volumes["dbdata"].labels["com.example.backup"], "yes");
    assert_eq!(
        p.secrets["db_password"].file,
        Some(dir.join("secrets/db_password.txt"))
    );
    assert_eq!(p.secrets["api_key"].value.as_deref(), Some("secret key"));
    assert_eq!(
        p.configs["nginx_conf"].file,
        Some(dir.join("conf/nginx.conf"))
    );
    assert_eq!(p.container_name(web, 2), "basic-web-2");
    assert_eq!(p.image_name(worker), "basic-worker");
    let labels = p.container_labels(web, 1);
    assert_eq!(labels["com.docker.compose.project"], "basic");
    assert_eq!(labels["com.docker.compose.service"], "web");
    assert_eq!(labels["com.docker.compose.container-number"], "1");
    assert_eq!(labels["com.docker.compose.config-hash"], config_hash(web));
    assert_eq!(labels["com.example.tier"], "frontend");
}

#[test]
fn dependency_order() {
    let p = load_ok(&opts("basic", &[]));
    assert_eq!(
        p.dependency_order(&[], false).expect("order"),
        strings(&["db", "cache", "web", "worker"])
    );
    assert_eq!(
        p.dependency_order(&strings(&["web"]), false)
            .expect("order"),
        strings(&["web"])
    );
    assert_eq!(
        p.dependency_order(&strings(&["web"]), true).expect("order"),
        strings(&["db", "cache", "web"])
    );
    assert_eq!(
        p.dependency_order(&strings(&["cache"]), true)
            .expect("order"),
        strings(&["db", "cache"])
    );
    assert_eq!(
        p.dependency_order(&strings(&["nope"]), true)
            .expect_err("must fail")
            .to_string(),
        "no such service: nope"
    );
}

#[test]
fn project_name_precedence() {
    let p = load_ok(&opts("basic", &[("PROJECT", "from-var")]));
    assert_eq!(p.name, "from-var");
    let p = load_ok(&opts("basic", &[("COMPOSE_PROJECT_NAME", "from-env")]));
    assert_eq!(p.name, "from-env");
    let mut o = opts("basic", &[("COMPOSE_PROJECT_NAME", "from-env")]);
    o.project_name = Some("flag".into());
    let p = load_ok(&o);
    assert_eq!(p.name, "flag");
    assert_eq!(p.network_name("front"), "flag_front");
    // Without any name, the directory's, normalised.
    let p = load_ok(&opts("merge", &[]));
    assert_eq!(p.name, "merge");
    let mut o = opts("merge", &[]);
    o.project_name = Some("Bad Name".into());
    assert!(load(&o)
        .expect_err("must fail")
        .to_string()
        .contains("invalid project name \"Bad Name\""));
    assert_eq!(normalize_project_name("My_App.v2-"), "my_appv2-");
    assert_eq!(normalize_project_name("--x"), "x");
}

#[test]
fn interpolation_forms_and_dotenv() {
    let p = load_ok(&opts("interpolation", &[("SET", "value")]));
    let env = env_of(svc(&p, "probe"));
    let get = |k: &str| {
        env.get(k)
            .cloned()
            .flatten()
            .unwrap_or_else(|| format!("<{k} unset>"))
    };
    assert_eq!(get("PLAIN"), "value");
    assert_eq!(get("BRACED"), "value");
    assert_eq!(get("SOFT_DEFAULT"), "soft");
    assert_eq!(get("HARD_DEFAULT"), "");
    assert_eq!(get("UNSET_HARD"), "hard");
    assert_eq!(get("ALT"), "alt");
    assert_eq!(get("ALT_EMPTY"), "");
    assert_eq!(get("ALT_SET_EMPTY"), "alt");
    assert_eq!(get("NESTED"), "value");
    assert_eq!(get("ESCAPED"), "$SET and ${SET}");
    assert_eq!(get("FROM_DOTENV"), "double quoted # not a comment");
    assert_eq!(get("MULTI"), "line one\nline two");
    assert_eq!(get("SINGLE"), "$SET stays");
    assert_eq!(get("HASH"), "value#kept");
    assert_eq!(get("EXPORTED"), "yes");
    assert_eq!(get("REQUIRED"), "value");
    assert_eq!(get("BLANK"), "");
    // Interpolated strings are typed by the field: "yes" is a boolean, "3" a number.
    assert!(svc(&p, "probe").read_only);
    assert_eq!(svc(&p, "probe").replicas, 3);
    assert!(p
        .warnings
        .iter()
        .any(|w| w == "The \"NOPE\" variable is not set. Defaulting to a blank string."));
}

#[test]
fn env_file_option_replaces_dotenv() {
    let mut o = opts("interpolation", &[("SET", "value")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = dir.path().join("extra.env");
    std::fs::write(&extra, "QUOTED='from --env-file'\nREPLICAS=5\n").expect("write");
    o.env_files = vec![extra];
    let p = load_ok(&o);
    let env = env_of(svc(&p, "probe"));
    assert_eq!(env["FROM_DOTENV"], some("from --env-file"));
    // .env is not read when --env-file is given (docker compose's rule).
    assert_eq!(env["MULTI"], some(""));
    assert_eq!(svc(&p, "probe").replicas, 5);
}

#[test]
fn required_variable_error() {
    assert_eq!(
        invalid("required-variable.yaml", &[]),
        "required-variable.yaml: services.web.image: required variable TAG is missing a value: set TAG to the release to deploy"
    );
    let o = with_files(
        opts("invalid", &[("TAG", "1.0")]),
        &["required-variable.yaml"],
    );
    assert_eq!(svc(&load_ok(&o), "web").image.as_deref(), Some("nginx:1.0"));
}

#[test]
fn merge_of_two_files() {
    let p = load_ok(&with_files(
        opts("merge", &[]),
        &["compose.yaml", "prod.yaml"],
    ));
    let dir = fixtures().join("merge");
    let web = svc(&p, "web");
    assert_eq!(web.image.as_deref(), Some("example/web:2.0"));
    assert_eq!(web.command, Some(strings(&["serve", "--port", "8000"])));
    assert_eq!(
        web.environment,
        [("A", "1"), ("B", "20"), ("C", "30")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), some(v)))
            .collect()
    );
    let ports: Vec<(u16, Option<&str>)> = web
        .ports
        .iter()
        .map(|p| (p.target, p.published.as_deref()))
        .collect();
    assert_eq!(ports, [(80, Some("8080")), (443, None), (90, Some("9090"))]);
    let vols: Vec<(Option<&str>, &str, bool)> = web
        .volumes
        .iter()
        .map(|v| (v.source.as_deref(), v.target.as_str(), v.read_only))
        .collect();
    let logs = dir.join("logs").display().to_string();
    assert_eq!(
        vols,
        [
            (Some("other"), "/data", true),
            (Some(logs.as_str()), "/var/log/web", false)
        ]
    );
    assert_eq!(web.labels["tier"], "back");
    assert_eq!(web.labels["extra"], "yes");
    assert_eq!(web.dns, strings(&["1.1.1.1", "8.8.8.8"]));
    let db = svc(&p, "db");
    assert_eq!(db.image.as_deref(), Some("postgres:16"));
    assert_eq!(names(&p), strings(&["web", "db", "metrics"]));
    assert_eq!(p.volumes["other"].labels["kind"], "prod");
    assert_eq!(p.volume_name("data"), "merge_data");
    // The override file of the search is not read when -f is given.
    assert!(!env_of(web).contains_key("DEBUG"));
}

#[test]
fn discovery_and_override_file() {
    let p = load_ok(&opts("merge", &[]));
    let dir = fixtures().join("merge");
    assert_eq!(
        p.compose_files,
        vec![dir.join("compose.yaml"), dir.join("compose.override.yaml")]
    );
    assert_eq!(env_of(svc(&p, "web"))["DEBUG"], some("true"));
    // From a subdirectory the nearest parent with a compose file is used.
    let p = load_ok(&opts("discovery/nested/deeper", &[]));
    assert_eq!(
        p.compose_files,
        vec![fixtures().join("discovery/docker-compose.yml")]
    );
    assert_eq!(p.name, "discovery");
    assert_eq!(names(&p), strings(&["found"]));
    // COMPOSE_FILE names the files when -f does not.
    let p = load_ok(&opts(
        "merge",
        &[("COMPOSE_FILE", "compose.yaml:prod.yaml")],
    ));
    assert_eq!(svc(&p, "web").image.as_deref(), Some("example/web:2.0"));
}

#[test]
fn extends_same_and_other_file() {
    let p = load_ok(&opts("extends", &[]));
    let dir = fixtures().join("extends");
    let cli = svc(&p, "cli");
    assert_eq!(cli.image.as_deref(), Some("busybox:1.36"));
    assert_eq!(cli.user.as_deref(), Some("root"));
    assert_eq!(env_of(cli)["TZ"], some("utc"));
    assert_eq!(env_of(cli)["PORT"], some("8080"));
    assert_eq!(cli.volumes.len(), 1);
    assert_eq!(cli.volumes[0].source.as_deref(), Some("cli-volume"));
    assert!(cli.volumes[0].read_only);
    assert_eq!(
        cli.security_opt,
        strings(&["label:role:ROLE", "label:user:USER"])
    );

    let web = svc(&p, "web");
    let common = dir.join("common");
    assert_eq!(
        web.build.as_ref().map(|b| b.context.clone()),
        Some(common.join("app").display().to_string())
    );
    assert_eq!(
        web.volumes[0].source,
        Some(common.join("static").display().to_string())
    );
    assert_eq!(env_of(web)["WEBAPP"], some("yes"));
    assert_eq!(env_of(web)["FROM"], some("common"));
    let ports: Vec<(u16, Option<&str>)> = web
        .ports
        .iter()
        .map(|p| (p.target, p.published.as_deref()))
        .collect();
    assert_eq!(ports, [(80, None), (80, Some("8000"))]);
    assert_eq!(
        invalid("extends-cycle.yaml", &[]),
        "extends-cycle.yaml: services.a.extends: extends cycle: a -> b -> c -> a"
    );
}

#[test]
fn include_sub_project() {
    let p = load_ok(&opts("include", &[]));
    let dir = fixtures().join("include");
    assert_eq!(names(&p), strings(&["app", "db"]));
    assert_eq!(svc(&p, "app").image.as_deref(), Some("app:main"));
    let db = svc(&p, "db");
    assert_eq!(db.image.as_deref(), Some("postgres:16"));
    // The including project's variables win over the included .env.
    assert_eq!(env_of(db)["SEEN_TAG"], some("main"));
    // Relative paths of the included file are its own.
    assert_eq!(
        db.volumes[1].source,
        Some(dir.join("sub/init").display().to_string())
    );
    assert_eq!(p.volume_name("dbdata"), "include_dbdata");
    assert_eq!(
        p.dependency_order(&strings(&["app"]), true).expect("order"),
        strings(&["db", "app"])
    );
    let err = invalid("include-conflict.yaml", &[]);
    assert!(
        err.starts_with("include-conflict.yaml: include[0]: services.db from include-conflict-sub.yaml conflicts"),
        "{err}"
    );
}

#[test]
fn profiles() {
    let load_with = |profiles: &[&str], named: &[&str]| {
        let mut o = opts("profiles", &[]);
        o.profiles = strings(profiles);
        o.services = strings(named);
        load(&o).map(|p| names(&p))
    };
    assert_eq!(load_with(&[], &[]), Ok(strings(&["foo"])));
    assert_eq!(
        load_with(&["test"], &[]),
        Ok(strings(&["foo", "bar", "baz"]))
    );
    assert_eq!(
        load_with(&["test", "debug"], &[]),
        Ok(strings(&["foo", "bar", "baz", "zot"]))
    );
    assert_eq!(
        load_with(&["*"], &[]),
        Ok(strings(&["foo", "bar", "baz", "zot"]))
    );
    // Naming a service enables its profiles.
    assert_eq!(
        load_with(&[], &["bar"]),
        Ok(strings(&["foo", "bar", "baz"]))
    );
    assert_eq!(
        load_with(&[], &["baz"]),
        Ok(strings(&["foo", "bar", "baz"]))
    );
    assert_eq!(
        load_with(&["test"], &["zot"]),
        Ok(strings(&["foo", "bar", "baz", "zot"]))
    );
    let err = load_with(&["debug"], &[])
        .expect_err("must fail")
        .to_string();
    assert_eq!(
        err,
        "compose.yaml: services.zot.depends_on: service \"bar\" is required but disabled by its profiles; enable it with --profile test"
    );
    assert!(load_with(&[], &["zot"]).is_err());
    assert_eq!(
        load_with(&[], &["nope"])
            .expect_err("must fail")
            .to_string(),
        "no such service: nope"
    );
    let p = load_ok(&opts("profiles", &[("COMPOSE_PROFILES", "test")]));
    assert_eq!(names(&p), strings(&["foo", "bar", "baz"]));
    assert_eq!(p.disabled_services, strings(&["zot"]));
}

#[test]
fn anchors_merge_keys_and_extensions() {
    let p = load_ok(&opts("anchors", &[]));
    assert_eq!(names(&p), strings(&["api", "worker"]));
    let api = svc(&p, "api");
    assert_eq!(api.restart.as_deref(), Some("always"));
    assert_eq!(api.mem_limit, Some(256 << 20));
    assert_eq!(env_of(api)["LOG_LEVEL"], some("debug"));
    assert_eq!(env_of(api)["REGION"], some("eu"));
    assert_eq!(api.labels["team"], "core");
    let worker = svc(&p, "worker");
    assert_eq!(worker.restart.as_deref(), Some("on-failure:3"));
    assert_eq!(env_of(worker)["LOG_LEVEL"], some("info"));
}

#[test]
fn invalid_files_name_file_service_and_field() {
    let o = opts("invalid/bad-port", &[]);
    assert_eq!(
        load(&o).expect_err("must fail").to_string(),
        "compose.yaml: services.web.ports[0]: invalid port \"80:80:80:80\""
    );
    assert_eq!(
        invalid("unknown-field.yaml", &[]),
        "unknown-field.yaml: services.web.imagee: unknown field \"imagee\""
    );
    assert_eq!(
        invalid("unsupported-field.yaml", &[]),
        "unsupported-field.yaml: services.web.devices: \"devices\" is not supported by skiffctl"
    );
    assert_eq!(
        invalid("wrong-type.yaml", &[]),
        "wrong-type.yaml: services.web.read_only: must be a boolean, not \"sometimes\""
    );
    assert_eq!(
        invalid("wrong-type-list.yaml", &[]),
        "wrong-type-list.yaml: services.web.cap_add: must be a list, not a string"
    );
    assert_eq!(
        invalid("unknown-dependency.yaml", &[]),
        "unknown-dependency.yaml: services.web.depends_on: depends on undefined service \"db\""
    );
    assert_eq!(
        invalid("cycle.yaml", &[]),
        "cycle.yaml: services.a.depends_on: dependency cycle: a -> b -> c -> a"
    );
    let err = invalid("platform.yaml", &[]);
    assert!(
        err.starts_with(
            "platform.yaml: services.web.platform: platform \"windows/amd64\" is not supported"
        ),
        "{err}"
    );
    assert_eq!(
        invalid("undefined-volume.yaml", &[]),
        "undefined-volume.yaml: services.web.volumes[0]: undefined volume \"data\": declare it under the top-level volumes"
    );
    assert_eq!(
        invalid("bad-duration.yaml", &[]),
        "bad-duration.yaml: services.web.healthcheck.interval: invalid duration \"10\": missing unit (ns, us, ms, s, m or h)"
    );
    assert_eq!(
        invalid("no-image.yaml", &[]),
        "no-image.yaml: services.web: a service needs an image or a build section"
    );
    let missing = load(&with_files(opts("invalid", &[]), &["nope.yaml"])).expect_err("must fail");
    assert_eq!(missing.to_string(), "compose file nope.yaml: no such file");
}

#[test]
fn no_compose_file_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = LoadOptions {
        cwd: Some(dir.path().to_path_buf()),
        ..LoadOptions::default()
    };
    let err = load(&o).expect_err("must fail").to_string();
    assert!(err.starts_with("no configuration file provided"), "{err}");
}

/// Loads `yaml` written into a temporary project directory.
fn load_text(yaml: &str, env: &[(&str, &str)]) -> Result<Project, ComposeError> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("compose.yaml"), yaml).expect("write");
    let mut o = opts("basic", env);
    o.cwd = Some(dir.path().to_path_buf());
    o.project_name = Some("t".into());
    load(&o)
}

fn round_trip(p: &Project, env: &[(&str, &str)], profiles: &[&str]) -> Project {
    let out = p.to_yaml();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, &out).expect("write");
    let mut o = opts("basic", env);
    o.files = vec![file];
    o.project_directory = Some(p.working_dir.clone());
    o.profiles = strings(profiles);
    match load(&o) {
        Ok(again) => again,
        Err(e) => panic!("config output does not load: {e}\n{out}"),
    }
}

fn same_model(a: &Project, b: &Project) {
    assert_eq!(a.name, b.name);
    assert_eq!(a.working_dir, b.working_dir);
    assert_eq!(a.services, b.services);
    assert_eq!(a.networks, b.networks);
    assert_eq!(a.volumes, b.volumes);
    assert_eq!(a.secrets, b.secrets);
    assert_eq!(a.configs, b.configs);
}

#[test]
fn config_output_round_trips() {
    let env = [("FROM_SHELL", "shell"), ("API_KEY", "k$y")];
    let p = load_ok(&opts("basic", &env));
    same_model(&p, &round_trip(&p, &env, &[]));
    for dir in ["extends", "include", "anchors", "merge"] {
        let p = load_ok(&opts(dir, &[]));
        same_model(&p, &round_trip(&p, &[], &[]));
    }
    let p = load_ok(&opts("interpolation", &[("SET", "$weird ${value}")]));
    assert_eq!(env_of(svc(&p, "probe"))["PLAIN"], some("$weird ${value}"));
    same_model(&p, &round_trip(&p, &[], &[]));
    let mut o = opts("profiles", &[]);
    o.profiles = strings(&["test"]);
    let p = load_ok(&o);
    same_model(&p, &round_trip(&p, &[], &["test"]));
}

#[test]
fn config_output_looks_like_docker_compose() {
    let p = load_ok(&opts("basic", &[]));
    let out = p.to_yaml();
    assert!(out.starts_with("name: basic\nservices:\n  web:\n"), "{out}");
    for expected in [
        "      published: '8080'\n",
        "      protocol: tcp\n",
        "    - type: bind\n",
        "      bind:\n        create_host_path: true\n",
        "      default: null\n",
        "  default:\n    name: basic_default\n",
        "    stop_grace_period: 1m30s\n",
        "      interval: 30s\n",
        "      LITERAL: $$HOME\n",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert!(
        !out.contains("x-note") && !out.contains("x-ignored"),
        "{out}"
    );
}

#[test]
fn config_hash_follows_the_resolved_config() {
    let base = "services:\n  web:\n    image: nginx:1\n    environment: {A: '1'}\n    ports: ['80:80']\n  db:\n    image: pg\n";
    let hash = |yaml: &str, env: &[(&str, &str)]| {
        let p = load_text(yaml, env).expect("loads");
        config_hash(svc(&p, "web"))
    };
    let h = hash(base, &[]);
    assert_eq!(h.len(), 64);
    assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
    // Same config, written differently: same hash.
    assert_eq!(
        h,
        hash("# a comment\nservices:\n  db: {image: pg}\n  web:\n    ports: [{target: 80, published: '80'}]\n    environment: [A=1]\n    image: 'nginx:${V:-1}'\n", &[])
    );
    // Another service's change, replicas and depends_on do not change it.
    assert_eq!(h, hash(&base.replace("image: pg", "image: mysql"), &[]));
    assert_eq!(
        h,
        hash(
            &base.replace(
                "image: nginx:1\n",
                "image: nginx:1\n    scale: 3\n    depends_on: [db]\n    pull_policy: always\n"
            ),
            &[]
        )
    );
    // Any change of the resolved config does.
    let changed = [
        base.replace("nginx:1", "nginx:2"),
        base.replace("A: '1'", "A: '2'"),
        base.replace("'80:80'", "'81:80'"),
        base.replace("image: nginx:1\n", "image: nginx:1\n    read_only: true\n"),
        base.replace("image: nginx:1\n", "image: nginx:1\n    command: [a]\n"),
    ];
    for c in &changed {
        assert_ne!(h, hash(c, &[]), "{c}");
    }
    // A variable's new value changes it too.
    let templated = "services:\n  web:\n    image: nginx:${TAG}\n";
    assert_ne!(
        hash(templated, &[("TAG", "1")]),
        hash(templated, &[("TAG", "2")])
    );
}

#[test]
fn merge_tags_reset_and_override() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        std::fs::write(dir.path().join(name), text).expect("write");
    };
    write(
        "compose.yaml",
        "services:\n  app:\n    image: myapp\n    ports: ['8080:80']\n    environment: {FOO: BAR, KEEP: '1'}\n",
    );
    write(
        "override.yaml",
        "services:\n  app:\n    ports: !override ['8443:443']\n    environment:\n      FOO: !reset null\n",
    );
    let mut o = opts("basic", &[]);
    o.cwd = Some(dir.path().to_path_buf());
    o.project_name = Some("t".into());
    o.files = vec![
        PathBuf::from("compose.yaml"),
        PathBuf::from("override.yaml"),
    ];
    let p = load_ok(&o);
    let app = svc(&p, "app");
    assert_eq!(app.ports.len(), 1);
    assert_eq!(app.ports[0].target, 443);
    assert!(!app.environment.contains_key("FOO"));
    assert_eq!(app.environment["KEEP"], some("1"));
}

#[test]
fn small_semantics() {
    let p = |yaml: &str| load_text(yaml, &[]).map_err(|e| e.to_string());
    // container_name and replicas exclude each other.
    let err = p("services:\n  a:\n    image: x\n    container_name: fixed\n    scale: 2\n")
        .expect_err("must fail");
    assert!(
        err.contains("container_name cannot have 2 replicas"),
        "{err}"
    );
    // scale and deploy.replicas must agree.
    let err = p("services:\n  a:\n    image: x\n    scale: 2\n    deploy: {replicas: 3}\n")
        .expect_err("must fail");
    assert!(
        err.contains("services.a.deploy.replicas: 3 differs from scale (2)"),
        "{err}"
    );
    // network_mode and networks exclude each other.
    let err = p("services:\n  a:\n    image: x\n    network_mode: host\n    networks: [n]\nnetworks: {n: {}}\n").expect_err("must fail");
    assert!(
        err.contains("network_mode and networks cannot both be set"),
        "{err}"
    );
    // An undefined network.
    let err = p("services:\n  a:\n    image: x\n    networks: [n]\n").expect_err("must fail");
    assert!(
        err.contains("services.a.networks.n: undefined network \"n\""),
        "{err}"
    );
    // deploy.restart_policy becomes restart; ignored swarm fields are warnings.
    let proj = p("services:\n  a:\n    image: x\n    deploy:\n      restart_policy: {condition: on-failure, max_attempts: 2}\n      placement: {constraints: [x]}\n").expect("ok");
    assert_eq!(proj.services[0].restart.as_deref(), Some("on-failure:2"));
    assert!(
        proj.warnings
            .iter()
            .any(|w| w.contains("services.a.deploy.placement")),
        "{:?}",
        proj.warnings
    );
    // healthcheck disable and NONE.
    let proj = p("services:\n  a:\n    image: x\n    healthcheck: {test: [NONE]}\n  b:\n    image: x\n    healthcheck: {disable: true}\n").expect("ok");
    assert!(proj
        .services
        .iter()
        .all(|s| s.healthcheck.as_ref().is_some_and(|h| h.disable)));
    // Reserved labels.
    let err = p("services:\n  a:\n    image: x\n    labels: [com.docker.compose.project=x]\n")
        .expect_err("must fail");
    assert!(err.contains("reserved"), "{err}");
    // An optional dependency on an undefined service is dropped with a warning.
    let proj = p("services:\n  a:\n    image: x\n    depends_on: {gone: {condition: service_started, required: false}}\n").expect("ok");
    assert!(proj.services[0].depends_on.is_empty());
    assert!(proj.warnings.iter().any(|w| w.contains("\"gone\"")));
    // `version` is obsolete: a warning.
    let proj = p("version: '3.8'\nservices:\n  a:\n    image: x\n").expect("ok");
    assert!(proj
        .warnings
        .iter()
        .any(|w| w.contains("`version` is obsolete")));
    // Logging drivers other than json-file are refused.
    let err =
        p("services:\n  a:\n    image: x\n    logging: {driver: syslog}\n").expect_err("must fail");
    assert!(err.contains("services.a.logging.driver"), "{err}");
    // Build fields we do not implement are named.
    let err =
        p("services:\n  a:\n    build: {context: ., ssh: [default]}\n").expect_err("must fail");
    assert!(
        err.contains("services.a.build.ssh: \"ssh\" is not supported by skiffctl"),
        "{err}"
    );
    // A build without a context builds the project directory.
    let proj = p("services:\n  a:\n    build: {dockerfile: Containerfile}\n").expect("ok");
    assert_eq!(
        proj.services[0].build.as_ref().map(|b| b.context.clone()),
        Some(proj.working_dir.display().to_string())
    );
    // entrypoint: '' clears the image's.
    let proj =
        p("services:\n  a:\n    image: x\n    entrypoint: ''\n    command: []\n").expect("ok");
    assert_eq!(proj.services[0].entrypoint, Some(Vec::new()));
    assert_eq!(proj.services[0].command, Some(Vec::new()));
    // A host platform is accepted.
    let host = format!(
        "services:\n  a:\n    image: x\n    platform: linux/{}\n",
        super::service::host_arch()
    );
    assert!(p(&host).is_ok());
}

#[test]
fn home_and_relative_paths() {
    let p = load_ok(&opts("basic", &[]));
    let web = svc(&p, "web");
    assert!(web
        .volumes
        .iter()
        .any(|v| v.source.as_deref() == Some("/home/tester/cache")));
    // --project-directory moves where relative paths point.
    let mut o = opts("merge", &[]);
    o.files = vec![fixtures().join("merge/compose.yaml")];
    o.project_directory = Some(PathBuf::from("/elsewhere"));
    let p = load_ok(&o);
    let logs = &svc(&p, "web").volumes[1];
    assert_eq!(logs.source.as_deref(), Some("/elsewhere/logs"));
    assert_eq!(p.working_dir, Path::new("/elsewhere"));
    assert_eq!(p.name, "elsewhere");
}

#[test]
fn errors_in_an_override_file_name_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  web:\n    image: nginx\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("override.yaml"),
        "services:\n  web:\n    imagee: typo\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("bad-port.yaml"),
        "services:\n  web:\n    ports: [\"1:2:3:4\"]\n",
    )
    .expect("write");
    let mut o = opts("basic", &[]);
    o.cwd = Some(dir.path().to_path_buf());
    o.project_name = Some("t".into());
    o.files = vec![
        PathBuf::from("compose.yaml"),
        PathBuf::from("override.yaml"),
    ];
    assert_eq!(
        load(&o).expect_err("must fail").to_string(),
        "override.yaml: services.web.imagee: unknown field \"imagee\""
    );
    o.files = vec![
        PathBuf::from("compose.yaml"),
        PathBuf::from("bad-port.yaml"),
    ];
    assert_eq!(
        load(&o).expect_err("must fail").to_string(),
        "bad-port.yaml: services.web.ports[0]: invalid port \"1:2:3:4\""
    );
}

#[test]
fn project_serialises_like_config() {
    let p = load_ok(&opts("anchors", &[]));
    let json = serde_json::to_value(&p).expect("json");
    assert_eq!(json["name"], "anchors");
    assert_eq!(json["services"]["api"]["environment"]["LOG_LEVEL"], "debug");
    assert_eq!(
        json["services"]["api"]["networks"]["default"],
        serde_json::Value::Null
    );
    assert_eq!(json["networks"]["default"]["name"], "anchors_default");
}
