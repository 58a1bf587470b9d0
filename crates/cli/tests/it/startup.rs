//! Start-up of every command that opens the store, against the real executable: the same
//! settings as `serve` (environment included), the store flags in either position,
//! read-only listings that leave the database untouched, and private data files.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use tempfile::TempDir;
use wristband_testkit::http::Client;
use wristband_testkit::process::ServiceProcess;

const PASSWORD: &str = "correct horse battery staple";

/// A temporary directory with a cheap-Argon2 config file and a `data` directory path.
struct Setup {
    dir: TempDir,
    config: String,
    data: PathBuf,
}

impl Setup {
    fn new(settings: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("wristband.toml");
        fs::write(
            &config,
            format!(
                "alg = \"ES256\"\n{settings}\n[argon2]\nmemory_kib = 1024\niterations = 1\nparallelism = 1\n"
            ),
        )
        .unwrap();
        Setup {
            config: config.to_string_lossy().into_owned(),
            data: dir.path().join("data"),
            dir,
        }
    }

    fn data(&self) -> &str {
        self.data.to_str().unwrap()
    }

    fn db(&self) -> PathBuf {
        self.data.join("wristband.db")
    }
}

/// Runs the binary with `args`, these environment variables and `stdin`.
fn run<A: AsRef<std::ffi::OsStr>>(
    args: &[A],
    envs: &[(&str, &str)],
    stdin: Option<&str>,
) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wristband"))
        .args(args)
        .envs(envs.iter().copied())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        writeln!(input, "{text}").unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `user add NAME --password-stdin` on the setup's store.
fn user_add(s: &Setup, name: &str) -> Output {
    run(
        &[
            "user",
            "--config",
            &s.config,
            "--data-dir",
            s.data(),
            "add",
            name,
            "--password-stdin",
        ],
        &[],
        Some(PASSWORD),
    )
}

fn add_user(s: &Setup, name: &str) {
    let out = ok(&user_add(s, name));
    assert!(out.contains(&format!("added {name}")), "{out}");
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file in the data directory: its bytes and modification time.
fn snapshot(dir: &Path) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                (fs::read(e.path()).unwrap(), meta.modified().unwrap()),
            )
        })
        .collect()
}

/// `user add` with no terminal to prompt on (a new session, stdin a pipe) says to use
/// `--password-stdin` instead of only echoing the OS error.
#[test]
fn user_add_without_a_terminal_points_to_password_stdin() {
    let s = Setup::new("");
    // setsid: a new session has no controlling terminal, even when the tests run in one.
    let o = Command::new("setsid")
        .args([env!("CARGO_BIN_EXE_wristband"), "user", "add", "dora"])
        .args(["--config", &s.config, "--data-dir", s.data()])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("use --password-stdin"), "{err}");
    // With it, the same command works.
    add_user(&s, "dora");
}

#[test]
fn store_flags_go_before_or_after_the_subcommand_for_every_group() {
    let s = Setup::new("");
    let store = ["--config", &s.config, "--data-dir", s.data()];
    // user: add with the flags after the subcommand, list with them before and after.
    let mut args = vec!["user", "add", "bob", "--password-stdin"];
    args.extend_from_slice(&store);
    ok(&run(&args, &[], Some(PASSWORD)));
    for before in [true, false] {
        for (group, sub) in [
            ("user", &["list"][..]),
            ("client", &["list"][..]),
            ("keys", &["list"][..]),
            ("sessions", &["revoke", "no-such-session"][..]),
        ] {
            let mut args = vec![group];
            if before {
                args.extend_from_slice(&store);
                args.extend_from_slice(sub);
            } else {
                args.extend_from_slice(sub);
                args.extend_from_slice(&store);
            }
            let o = run(&args, &[], None);
            if group == "sessions" {
                // Reached the store: the session is unknown, not the flags.
                assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
                assert!(
                    stderr(&o).contains("no live session no-such-session"),
                    "{args:?}: {}",
                    stderr(&o)
                );
            } else {
                let out = ok(&run(&args, &[], None));
                if group == "user" {
                    assert!(out.contains("bob"), "{args:?}: {out}");
                }
            }
        }
    }
    // The master key file too, in both positions, for a command that needs it.
    let master = s.data.join("master.key");
    let master = master.to_str().unwrap();
    for args in [
        vec!["keys", "--master-key-file", master, "list"],
        vec!["keys", "list", "--master-key-file", master],
    ] {
        let mut args = args;
        args.extend_from_slice(&store);
        ok(&run(&args, &[], None));
    }
    // And the database URL.
    let url = format!("sqlite:{}", s.db().display());
    for args in [
        vec!["user", "--database", &url, "list"],
        vec!["user", "list", "--database", &url],
    ] {
        let mut args = args;
        args.extend_from_slice(&["--config", &s.config]);
        assert!(ok(&run(&args, &[], None)).contains("bob"));
    }
}

#[tokio::test]
async fn admin_commands_read_the_environment_like_serve() {
    let s = Setup::new("revocation_feed_public = true");
    add_user(&s, "bob");
    let store = ["--config", &s.config, "--data-dir", s.data()];
    let mut args = vec!["user"];
    args.extend_from_slice(&store);
    args.extend_from_slice(&["disable", "bob"]);
    ok(&run(&args, &[("WRISTBAND_ACCESS_TTL", "60m")], None));

    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(&store);
    let auth = ServiceProcess::spawn_with_env(
        Path::new(env!("CARGO_BIN_EXE_wristband")),
        &args,
        &[("WRISTBAND_ACCESS_TTL", "60m")],
    )
    .await;
    let r = Client::new().get(&auth.url("/v1/revocations"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let feed = r.json();
    let records = feed["revocations"].as_array().unwrap();
    let sub = records
        .iter()
        .find(|r| r["kind"] == "sub")
        .unwrap_or_else(|| panic!("no user revocation in {feed}"));
    // `before`: the time of the disable.
    let before = sub["before"].as_u64().unwrap();
    let expires = sub["expires_at"].as_u64().unwrap();
    assert!(
        expires >= before + 3600,
        "the record expires {}s after the disable, before a 60-minute token does",
        expires.saturating_sub(before)
    );
    auth.terminate().await;
}

#[tokio::test]
async fn read_only_commands_leave_the_database_untouched() {
    // Rotation due two seconds after a key starts to sign.
    let s = Setup::new("jwks_max_age = \"1s\"\nkey_prepublish = \"1s\"\nkey_rotation = \"2s\"");
    let store = ["--config", &s.config, "--data-dir", s.data()];
    add_user(&s, "bob");
    let with = |first: &[&'static str]| -> Vec<String> {
        // The store flags where every version took them: after `keys SUB`, after `user`.
        let (group, sub) = first.split_at(if first[0] == "keys" { 2 } else { 1 });
        group
            .iter()
            .chain(store.iter())
            .chain(sub.iter())
            .map(|a| (*a).to_owned())
            .collect()
    };
    ok(&run(
        &with(&["client", "add", "api", "--kind", "resource-server"]),
        &[],
        None,
    ));
    let first = ok(&run(&with(&["keys", "rotate", "--immediate"]), &[], None));
    let files = snapshot(&s.data);
    // `keys list` again and again until well past the rotation time of the key just
    // activated (2 s): it never rotates.
    let listed = ok(&run(&with(&["keys", "list"]), &[], None));
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(
            ok(&run(&with(&["keys", "list"]), &[], None)),
            listed,
            "keys list rotated"
        );
    }

    assert!(files.contains_key("wristband.db"), "{:?}", files.keys());
    let users = ok(&run(&with(&["user", "list"]), &[], None));
    assert!(users.contains("bob"), "{users}");
    let clients = ok(&run(&with(&["client", "list"]), &[], None));
    assert!(clients.contains("api"), "{clients}");
    let keys = ok(&run(&with(&["keys", "list"]), &[], None));
    let again = ok(&run(&with(&["keys", "list"]), &[], None));
    assert_eq!(keys, again, "keys list changed the keys");
    assert!(!keys.contains("next"), "keys list rotated: {keys}");
    let current: Vec<&str> = first.lines().filter(|l| l.contains(" current ")).collect();
    assert_eq!(current.len(), 1, "{first}");
    assert!(keys.contains(current[0]), "{first}\n---\n{keys}");
    let after = snapshot(&s.data);
    // The database, its WAL, the master key: byte for byte, mtimes included. Not the
    // `-shm` file: it is the WAL's shared-memory index, which every SQLite reader updates
    // (and creates, with an empty WAL, when the last writer removed them); it holds no data.
    for (name, (bytes, _)) in &after {
        if !files.contains_key(name) {
            assert!(
                name.ends_with("-shm") || (name.ends_with("-wal") && bytes.is_empty()),
                "a read-only command created {name} ({} bytes)",
                bytes.len()
            );
        }
    }
    let changed: Vec<&String> = files
        .keys()
        .filter(|name| !name.ends_with("-shm") && files.get(*name) != after.get(*name))
        .collect();
    assert!(
        changed.is_empty(),
        "a read-only command changed {changed:?} in the data directory"
    );

    // A writing command runs the schedule: the rotation was indeed due.
    let backup = s.dir.path().join("backup.json");
    let out = ok(&run(
        &[
            with(&["keys", "export", "--out"]),
            vec![backup.display().to_string()],
        ]
        .concat(),
        &[],
        None,
    ));
    assert!(out.starts_with("published: "), "{out}");
    let keys = ok(&run(&with(&["keys", "list"]), &[], None));
    assert!(keys.contains(" next "), "{keys}");
}

#[test]
fn a_read_only_command_refuses_a_schema_older_than_the_binary() {
    let s = Setup::new("");
    fs::create_dir(&s.data).unwrap();
    fs::set_permissions(&s.data, fs::Permissions::from_mode(0o700)).unwrap();
    // An empty file is an empty SQLite database: no tables, no migrations.
    fs::write(s.db(), b"").unwrap();
    fs::set_permissions(s.db(), fs::Permissions::from_mode(0o600)).unwrap();
    for group in ["user", "client", "keys"] {
        let store = ["--config", &s.config, "--data-dir", s.data()];
        let args = if group == "keys" {
            [&[group, "list"][..], &store].concat()
        } else {
            [&[group][..], &store, &["list"]].concat()
        };
        let o = run(&args, &[], None);
        assert_eq!(o.status.code(), Some(2), "{group}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("older than this version of wristband"),
            "{group}: {}",
            stderr(&o)
        );
        assert_eq!(
            fs::read(s.db()).unwrap(),
            b"",
            "{group} wrote to the database"
        );
    }
}

/// Loosens the data directory and database the way a 022 umask and someone else's
/// `mkdir` would.
fn loosen(s: &Setup) {
    fs::set_permissions(&s.data, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(s.db(), fs::Permissions::from_mode(0o644)).unwrap();
}

#[tokio::test]
async fn the_data_directory_and_database_files_are_private() {
    let s = Setup::new("");
    fs::create_dir(&s.data).unwrap();
    fs::write(s.db(), b"").unwrap();
    loosen(&s);

    // An admin command tightens both, and says so.
    let o = user_add(&s, "bob");
    ok(&o);
    assert!(stderr(&o).contains("tightened"), "{}", stderr(&o));
    assert_eq!(mode(&s.data), 0o700);
    for entry in fs::read_dir(&s.data).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }

    // So does `serve`, and the WAL and shared-memory files it keeps open are private too.
    loosen(&s);
    let auth = ServiceProcess::spawn(
        Path::new(env!("CARGO_BIN_EXE_wristband")),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            &s.config,
            "--data-dir",
            s.data(),
        ],
    )
    .await;
    assert_eq!(mode(&s.data), 0o700);
    for name in [
        "wristband.db",
        "wristband.db-wal",
        "wristband.db-shm",
        "master.key",
    ] {
        assert_eq!(mode(&s.data.join(name)), 0o600, "{name}");
    }
    assert!(
        auth.logs().iter().any(|l| l.contains("tightened")),
        "{:?}",
        auth.logs()
    );
    auth.terminate().await;

    // A fresh data directory is created private.
    let fresh = Setup::new("");
    add_user(&fresh, "carol");
    assert_eq!(mode(&fresh.data), 0o700);
    assert_eq!(mode(&fresh.db()), 0o600);
}

#[cfg(target_os = "linux")]
#[test]
fn serve_refuses_a_data_directory_it_cannot_make_private() {
    // The kernel refuses every mode change under /proc/sys, even to root; the directory
    // is 0555.
    let s = Setup::new("");
    let o = run(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            &s.config,
            "--data-dir",
            "/proc/sys",
        ],
        &[],
        None,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("/proc/sys") && err.contains("cannot restrict"),
        "{err}"
    );
}

#[tokio::test]
async fn read_only_listings_on_postgresql_write_nothing() {
    use wristband_server::store::{PgStore, Store};
    use wristband_testkit::postgres;

    let test = "read_only_listings_on_postgresql";
    let schema = postgres::schema_name(test);
    let store = match PgStore::connect_with_schema(&postgres::url(), &schema).await {
        Ok(store) => store,
        Err(e) => {
            postgres::not_run(test, &e);
            return;
        }
    };
    let base = postgres::url();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let s = Setup::new("");
    let db = ["--config", &s.config, "--database", &url];
    let mut args = vec!["user"];
    args.extend_from_slice(&db);
    args.extend_from_slice(&["add", "bob", "--password-stdin"]);
    ok(&run(&args, &[], Some(PASSWORD)));
    // No key yet: a command that ran the key schedule would create one.
    assert!(store.list_keys().await.unwrap().is_empty());
    for group in ["user", "client", "keys"] {
        let mut args = vec![group, "list"];
        args.extend_from_slice(&db);
        let out = ok(&run(&args, &[], None));
        if group == "user" {
            assert!(out.contains("bob"), "{out}");
        }
    }
    assert!(
        store.list_keys().await.unwrap().is_empty(),
        "keys list created a key"
    );
    assert!(
        !s.data.exists(),
        "listing on PostgreSQL created the data directory"
    );
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn a_second_serve_on_the_same_sqlite_database_is_refused() {
    let s = Setup::new("");
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--config",
        &s.config,
        "--data-dir",
        s.data(),
    ];
    let first = ServiceProcess::spawn(Path::new(env!("CARGO_BIN_EXE_wristband")), &args).await;
    let second = run(&args, &[], None);
    assert_eq!(second.status.code(), Some(2), "{}", stderr(&second));
    let err = stderr(&second);
    assert!(err.contains("another wristband serve is using"), "{err}");
    assert!(err.contains(&s.db().display().to_string()), "{err}");
    // The first one still serves, and once it has stopped the database is free again.
    let r = Client::new().get(&first.url("/healthz"), &[]).await;
    assert_eq!(r.status, 200);
    first.terminate().await;
    let again = ServiceProcess::spawn(Path::new(env!("CARGO_BIN_EXE_wristband")), &args).await;
    again.terminate().await;
}

#[test]
fn serve_on_a_port_in_use_names_the_address_once_and_creates_nothing() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let s = Setup::new("");
    let o = run(
        &[
            "serve",
            "--listen",
            &addr,
            "--config",
            &s.config,
            "--data-dir",
            s.data(),
        ],
        &[],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains(&format!("cannot listen on {addr}")), "{line}");
    assert!(line.contains("--listen"), "{line}");
    let cause = "(os error 98)";
    assert_eq!(
        line.matches(cause).count(),
        1,
        "the cause is said once: {line}"
    );
    assert!(!s.data.exists(), "no data directory is left behind");
}

#[test]
fn admin_commands_refuse_a_missing_store_and_user_add_says_it_creates_one() {
    let s = Setup::new("");
    let store = ["--config", &s.config, "--data-dir", s.data()];
    for cmd in [
        vec!["user", "disable", "bob"],
        vec!["client", "add", "orders", "--kind", "service"],
        vec!["keys", "rotate"],
    ] {
        let mut args = vec![cmd[0]];
        args.extend_from_slice(&store);
        args.extend_from_slice(&cmd[1..]);
        let o = run(&args, &[], None);
        assert_eq!(o.status.code(), Some(2), "{cmd:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("no database at"),
            "{cmd:?}: {}",
            stderr(&o)
        );
        assert!(!s.db().exists(), "{cmd:?} created no database");
    }
    let o = user_add(&s, "bob");
    ok(&o);
    assert!(
        stderr(&o).contains(&format!(
            "notice: creating a new store at {}",
            s.db().display()
        )),
        "{}",
        stderr(&o)
    );
    // The second time there is nothing to announce.
    let o = user_add(&s, "carol");
    ok(&o);
    assert!(!stderr(&o).contains("notice"), "{}", stderr(&o));
}

/// OpenID Connect clients from the command line: `client add --kind web|public` with its
/// addresses, `client list` showing them, `client update` replacing them, and a refused
/// address a clear error with exit status 2 that registers nothing.
#[test]
fn oidc_clients_are_added_listed_updated_and_bad_addresses_refused() {
    let s = Setup::new("");
    ok(&user_add(&s, "bob"));
    let with = |sub: &[&str]| -> Vec<String> {
        ["client", "--config", &s.config, "--data-dir", s.data()]
            .iter()
            .chain(sub.iter())
            .map(|a| (*a).to_owned())
            .collect()
    };
    let web = ok(&run(
        &with(&[
            "add",
            "wiki",
            "--kind",
            "web",
            "--redirect-uri",
            "https://wiki.example.com/cb",
            "--post-logout-redirect-uri",
            "https://wiki.example.com/",
            "--backchannel-logout-uri",
            "https://wiki.example.com/bc",
            "--scope",
            "openid",
            "--json",
        ]),
        &[],
        None,
    ));
    let web: serde_json::Value = serde_json::from_str(web.trim()).unwrap();
    assert!(
        web["client_secret"].as_str().is_some_and(|s| s.len() >= 32),
        "{web}"
    );
    let public = ok(&run(
        &with(&[
            "add",
            "phone",
            "--kind",
            "public",
            "--redirect-uri",
            "com.example.phone:/cb",
            "--redirect-uri",
            "http://127.0.0.1/cb",
            "--json",
        ]),
        &[],
        None,
    ));
    let public: serde_json::Value = serde_json::from_str(public.trim()).unwrap();
    assert!(public["client_id"].is_string(), "{public}");
    assert!(
        public.get("client_secret").is_none(),
        "a public client has no secret: {public}"
    );

    let list = ok(&run(&with(&["list"]), &[], None));
    for line in [
        "redirect-uri:             https://wiki.example.com/cb",
        "post-logout-redirect-uri: https://wiki.example.com/",
        "backchannel-logout-uri:   https://wiki.example.com/bc",
        "redirect-uri:             com.example.phone:/cb",
        "redirect-uri:             http://127.0.0.1/cb",
        "third-party",
    ] {
        assert!(list.contains(line), "{line:?} not in:\n{list}");
    }

    ok(&run(
        &with(&[
            "update",
            "wiki",
            "--redirect-uri",
            "https://wiki.example.com/oidc/cb",
            "--first-party",
        ]),
        &[],
        None,
    ));
    let list = ok(&run(&with(&["list"]), &[], None));
    assert!(list.contains("https://wiki.example.com/oidc/cb"), "{list}");
    assert!(
        !list.contains("redirect-uri:             https://wiki.example.com/cb\n"),
        "{list}"
    );
    assert!(list.contains("first-party"), "{list}");

    // Refused: plain http off loopback, a fragment, a private-use scheme for a web client,
    // a user name in the address. Nothing is registered.
    for (i, bad) in [
        "http://wiki.example.com/cb",
        "https://wiki.example.com/cb#frag",
        "com.example.app:/cb",
        "https://user@wiki.example.com/cb",
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("bad{i}");
        let o = run(
            &with(&["add", &name, "--kind", "web", "--redirect-uri", bad]),
            &[],
            None,
        );
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains("redirect"), "{bad}: {}", stderr(&o));
        let list = ok(&run(&with(&["list"]), &[], None));
        assert!(!list.contains(&name), "{bad} registered:\n{list}");
    }
}
