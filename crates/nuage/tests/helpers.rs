//! Starting real servers for tests, and talking to them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clap::Parser;
use serde_json::{Value, json};
use sqlx::Connection;

pub const NUAGE: &str = env!("CARGO_BIN_EXE_nuage");

/// A PEM of the admin URL of a PostgreSQL server, when the suite runs on it.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("NUAGE_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A fresh, empty metadata database for one test: a new PostgreSQL database
/// when the suite runs on PostgreSQL, else a SQLite file in `dir`.
pub async fn fresh_database(dir: &Path) -> String {
    match postgres_admin_url() {
        Some(admin) => {
            let name = format!("nuage_test_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("connect to the test PostgreSQL server");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create a test database");
            let (base, _) = admin
                .rsplit_once('/')
                .expect("the admin URL names a database");
            drop_when_this_process_ends(&admin, &name);
            format!("{base}/{name}")
        }
        None => format!("sqlite://{}?mode=rwc", dir.join("shared.db").display()),
    }
}

/// Drops the database `name` once this test's process has ended (nextest
/// runs each test in a process of its own), whatever the test did with it:
/// a watcher process waits for this one, then drops it with `psql`. A
/// suite's thousands of databases would otherwise fill the disk.
fn drop_when_this_process_ends(admin: &str, name: &str) {
    let watcher = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
         psql \"$1\" -qc 'DROP DATABASE IF EXISTS {name} WITH (FORCE)'",
        pid = std::process::id()
    );
    // The watcher outlives this process on purpose; init reaps it.
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .args(["-c", &watcher, "sh", admin])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the test database's watcher");
}

/// A running server, stopped when dropped: in this test's process (the
/// default) or as a `nuage serve` process of its own.
pub struct TestApp {
    pub console: String,
    pub api: String,
    pub s3: String,
    /// The website listener.
    pub web: String,
    pub root_token: String,
    pub database_url: String,
    pub data_dir: PathBuf,
    pub http: reqwest::Client,
    server: Server,
    _dir: Option<tempfile::TempDir>,
}

/// Where a test's server runs.
enum Server {
    /// `nuage serve`, a child process: for what only a process shows (its
    /// exit, a signal, a crash point, its memory).
    Process(Child),
    /// `Application::build` on a runtime of its own in this process, stopped
    /// by the sender.
    InProcess {
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        thread: Option<std::thread::JoinHandle<()>>,
    },
}

/// How to start a server.
pub struct Spawn {
    pub database_url: Option<String>,
    pub master_key_file: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub root_token: Option<String>,
    /// Settings as `NUAGE_…` environment variables (in-process servers read
    /// them as the same layer).
    pub env: Vec<(String, String)>,
    /// `nuage serve`'s flags.
    pub args: Vec<String>,
    /// The platform's clock, frozen at this instant (ms since the epoch)
    /// from before the server starts: for tests that play a history at known
    /// times, so that nothing acts on the real date first.
    pub clock: Option<i64>,
    /// Runs `nuage serve` as a process of its own instead of in the test's
    /// process: for start-up, signals, crash points and memory.
    pub process: bool,
}

impl Default for Spawn {
    fn default() -> Self {
        Self {
            database_url: None,
            master_key_file: None,
            data_dir: None,
            root_token: Some(random_root_token()),
            env: vec![],
            args: vec![],
            clock: None,
            process: false,
        }
    }
}

/// The real time, in ms since the epoch: where a test freezes a server's
/// clock before moving it on.
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

pub fn random_root_token() -> String {
    format!("nuage_root{}", uuid::Uuid::new_v4().simple())
}

pub async fn spawn_app() -> TestApp {
    spawn(Spawn::default()).await
}

/// A server whose clock is frozen at `at` (ms since the epoch) from before it
/// starts: what a test that plays a history at known times uses.
pub async fn spawn_at(at: i64) -> TestApp {
    spawn(Spawn {
        clock: Some(at),
        ..Spawn::default()
    })
    .await
}

/// Starts a server and waits until it listens.
pub async fn spawn(options: Spawn) -> TestApp {
    let (dir, data_dir) = match options.data_dir.clone() {
        Some(d) => (None, d),
        None => {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("data");
            (Some(dir), path)
        }
    };
    std::fs::create_dir_all(&data_dir).expect("data dir");
    let database_url = match options.database_url.clone() {
        Some(u) => u,
        None => fresh_database(&data_dir).await,
    };
    let mut env = vec![
        ("NUAGE_DATABASE__URL".to_owned(), database_url.clone()),
        // Tests bill the months they play by hand; one turns the schedule on.
        ("NUAGE_BILLING__AUTOMATIC".to_owned(), "false".to_owned()),
    ];
    env.extend(options.env.iter().cloned());
    let mut args: Vec<String> = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--s3-listen",
        "127.0.0.1:0",
        "--website-listen",
        "127.0.0.1:0",
        "--data-dir",
    ]
    .map(String::from)
    .into();
    args.push(data_dir.display().to_string());
    args.extend(options.args.iter().cloned());
    if let Some(key) = &options.master_key_file {
        args.extend(["--master-key-file".to_owned(), key.display().to_string()]);
    }
    let (addresses, server) = if options.process {
        start_process(&options, &data_dir, &env, &args).await
    } else {
        start_in_process(&options, &data_dir, &env, &args).await
    };
    let root_token = options.root_token.unwrap_or_else(|| {
        std::fs::read_to_string(data_dir.join("root-token"))
            .expect("root-token file")
            .trim()
            .to_owned()
    });
    TestApp {
        console: addresses["console"].as_str().expect("console").to_owned(),
        api: addresses["api"].as_str().expect("api").to_owned(),
        s3: addresses["s3"].as_str().expect("s3").to_owned(),
        web: addresses["web"].as_str().expect("web").to_owned(),
        root_token,
        database_url,
        data_dir,
        http: reqwest::Client::new(),
        server,
        _dir: dir,
    }
}

/// `nuage serve` as a child process; its addresses from its first line.
async fn start_process(
    options: &Spawn,
    data_dir: &Path,
    env: &[(String, String)],
    args: &[String],
) -> (Value, Server) {
    let mut command = Command::new(NUAGE);
    command
        .args(args)
        .env_remove("NUAGE_TEST_DATABASE_URL")
        .env("RUST_LOG", "info,sqlx=warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(data_dir.join("server.log")).expect("log file"));
    match &options.root_token {
        Some(t) => command.env("NUAGE_ROOT_TOKEN", t),
        None => command.env_remove("NUAGE_ROOT_TOKEN"),
    };
    match options.clock {
        Some(at) => command.env("NUAGE_TEST_CLOCK_MS", at.to_string()),
        None => command.env_remove("NUAGE_TEST_CLOCK_MS"),
    };
    let mut child = command.spawn().expect("start nuage serve");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    });
    let line = tokio::time::timeout(Duration::from_secs(120), line)
        .await
        .ok()
        .and_then(|r| r.ok())
        .and_then(|r| r.ok())
        .unwrap_or_default();
    match serde_json::from_str(&line) {
        Ok(addresses) => (addresses, Server::Process(child)),
        Err(_) => {
            let _ = child.kill();
            let log = std::fs::read_to_string(data_dir.join("server.log")).unwrap_or_default();
            panic!("the server did not announce its addresses; its log:\n{log}");
        }
    }
}

/// The server as `nuage serve` builds it (the same configuration layers,
/// `Application::build`), on a runtime and threads of its own in this
/// process, logging to `DATA_DIR/server.log`.
async fn start_in_process(
    options: &Spawn,
    data_dir: &Path,
    env: &[(String, String)],
    args: &[String],
) -> (Value, Server) {
    let nuage::cli::Command::Serve(serve) = nuage::cli::Cli::try_parse_from(
        std::iter::once("nuage".to_owned()).chain(args.iter().cloned()),
    )
    .expect("serve's flags")
    .command
    else {
        unreachable!("a serve command")
    };
    // The environment layer, then the flags over it.
    let mut layers = json!({});
    for (name, value) in env {
        let Some(path) = name.strip_prefix("NUAGE_") else {
            continue;
        };
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.clone()));
        let mut at = &mut layers;
        for part in path.to_ascii_lowercase().split("__") {
            at = at
                .as_object_mut()
                .expect("a table")
                .entry(part)
                .or_insert_with(|| json!({}));
        }
        *at = value;
    }
    merge(&mut layers, serve.overrides());
    let config = nuage::config::Config::load(serve.config.as_deref(), &layers)
        .expect("a valid configuration");
    nuage::telemetry::metrics();
    let hooks = nuage::hooks::Hooks::frozen_at(options.clock);
    let root_token = options.root_token.clone();
    let log = std::fs::File::create(data_dir.join("server.log")).expect("log file");
    let (ready, addresses) = tokio::sync::oneshot::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        log_panics();
        let logs = tracing::Dispatch::new(
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("info,sqlx=warn"))
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(log))
                .finish(),
        );
        let _logs = tracing::dispatcher::set_default(&logs);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&logs)))
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            match nuage::server::Application::build_with_hooks(config, root_token, hooks).await {
                Err(e) => {
                    let _ = ready.send(Err(format!("{e:#}")));
                }
                Ok(app) => {
                    let _ = ready.send(Ok(serde_json::to_value(app.addresses()).expect("JSON")));
                    let stopped = async {
                        let _ = stopped.await;
                    };
                    if let Err(e) = app.run_until(stopped, Duration::from_secs(2)).await {
                        tracing::error!("{e:#}");
                    }
                }
            }
        });
    });
    match addresses.await {
        Ok(Ok(addresses)) => (
            addresses,
            Server::InProcess {
                stop: Some(stop),
                thread: Some(thread),
            },
        ),
        Ok(Err(e)) => panic!("the server did not start: {e}"),
        Err(_) => {
            let _ = thread.join();
            panic!("the server's thread ended before it listened")
        }
    }
}

/// Deep-merges `over` into `into`, leaving what `over` leaves unset.
fn merge(into: &mut Value, over: Value) {
    match (into, over) {
        (Value::Object(into), Value::Object(over)) => {
            for (key, value) in over {
                if value.is_null() {
                    continue;
                }
                merge(into.entry(key).or_insert(Value::Null), value);
            }
        }
        (into, over) => *into = over,
    }
}

/// A panic on a server's thread goes to its log, as a process's stderr
/// would have it.
fn log_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            tracing::error!("panicked: {info}");
            previous(info);
        }));
    });
}

impl Drop for TestApp {
    fn drop(&mut self) {
        match &mut self.server {
            Server::Process(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Server::InProcess { stop, thread } => {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
                if let Some(thread) = thread.take() {
                    let _ = thread.join();
                }
            }
        }
    }
}

/// The value of a cookie the response sets.
pub fn set_cookie_value(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            c.strip_prefix(&format!("{name}="))
                .map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
        })
}

impl TestApp {
    /// Signs in to the console as a browser does (the CSRF cookie and field,
    /// the password) and returns the session cookie's value.
    pub async fn console_session(&self, email: &str) -> String {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let login = client
            .get(format!("{}/login", self.console))
            .send()
            .await
            .expect("login page");
        let csrf = set_cookie_value(&login, "nuage_csrf").expect("a CSRF cookie on the login page");
        let response = client
            .post(format!("{}/login", self.console))
            .header("cookie", format!("nuage_csrf={csrf}"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("next", "/"),
                ("email", email),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .expect("login");
        assert!(
            response.status().is_redirection(),
            "signed in: {}",
            response.status()
        );
        set_cookie_value(&response, "nuage_session").expect("a session cookie")
    }

    /// The HTML of a console page as a browser signed in with `session`
    /// sees it, in English.
    pub async fn console_page(&self, session: &str, path: &str) -> String {
        self.http
            .get(format!("{}{path}", self.console))
            .header("cookie", format!("nuage_session={session}"))
            .header("accept-language", "en")
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("html")
    }

    /// Posts a console form as a browser signed in with `session` does,
    /// with the CSRF token of the page `page` and `fields`, in English;
    /// redirects are not followed.
    pub async fn console_post(
        &self,
        session: &str,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let html = self.console_page(session, page).await;
        let csrf = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a CSRF field")
            .to_owned();
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
            .post(format!("{}{action}", self.console))
            .header("cookie", format!("nuage_session={session}"))
            .header("accept-language", "en")
            .form(&form)
            .send()
            .await
            .expect("posted")
    }

    /// Signs in to the console as `email` and returns a page's HTML.
    pub async fn console_page_as(&self, email: &str, path: &str) -> String {
        let session = self.console_session(email).await;
        self.console_page(&session, path).await
    }

    /// Creates an operator's account with the command line, as an operator
    /// does (its password: `PASSWORD`).
    pub fn create_operator(&self, email: &str) {
        let made = self.cli(
            &[
                "admin",
                "user",
                "create",
                "--operator",
                "--email",
                email,
                "--password-stdin",
            ],
            Some(PASSWORD),
        );
        assert_eq!(made.code, 0, "{}", made.stderr);
    }

    /// What `restart`-style helpers need of a stopped server: its database
    /// and root token (no process).
    pub fn placeholder(database_url: &str, root_token: &str) -> PlaceholderApp {
        PlaceholderApp {
            database_url: database_url.to_owned(),
            root_token: root_token.to_owned(),
        }
    }

    /// The server's process (a server spawned with `process: true`).
    fn child(&mut self) -> &mut Child {
        match &mut self.server {
            Server::Process(child) => child,
            Server::InProcess { .. } => {
                panic!("this server runs in the test's process: spawn it with `process: true`")
            }
        }
    }

    pub fn pid(&mut self) -> u32 {
        self.child().id()
    }

    /// Waits for the process to exit by itself, up to a limit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child().try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("server.log")).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    /// A request to the API with a bearer token.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn root(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.call(method, path, &self.root_token.clone(), body)
            .await
    }

    /// Creates an organisation as the operator.
    pub async fn create_org(&self, name: &str) -> String {
        let (status, org) = self
            .root(
                reqwest::Method::POST,
                "/orgs",
                Some(json!({"name": name, "kind": "company"})),
            )
            .await;
        assert_eq!(status, 201, "{org}");
        org["id"].as_str().expect("id").to_owned()
    }

    /// Fills in the legal identity invoices need of every organisation
    /// (SIRET, address, legal form, share capital, RCS), and gives those
    /// that have none a VAT number, so that billing runs issue their
    /// invoices rather than hold them.
    pub async fn complete_identities(&self) {
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/orgs?limit=500&cursor={c}"),
                None => "/orgs?limit=500".to_owned(),
            };
            let (status, page) = self.root(reqwest::Method::GET, &path, None).await;
            assert_eq!(status, 200, "{page}");
            for org in page["items"].as_array().expect("orgs") {
                let id = org["id"].as_str().expect("id");
                let country = org["country"].as_str().unwrap_or("FR");
                if org["vat_number"].is_null() && country == "FR" && org["kind"] != "person" {
                    let (status, body) = self
                        .root(
                            reqwest::Method::PUT,
                            &format!("/orgs/{id}/tax"),
                            Some(json!({"vat_number": "FR76411050487"})),
                        )
                        .await;
                    assert_eq!(status, 200, "{body}");
                }
                let (postcode, city) = if country == "FR" {
                    ("75002", "Paris")
                } else {
                    ("10115", "Berlin")
                };
                let (status, body) = self
                    .root(
                        reqwest::Method::PUT,
                        &format!("/orgs/{id}/legal-identity"),
                        Some(json!({
                            "siret": if country == "FR" { Some("73282932000074") } else { None },
                            "address": {"line1": "1 rue de la Paix", "postcode": postcode,
                                        "city": city, "country": country},
                            "legal_form": "SAS", "share_capital": "10000", "rcs": "RCS Paris",
                        })),
                    )
                    .await;
                assert_eq!(status, 200, "{body}");
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
    }

    /// Creates a user in an organisation and signs them in; returns (user id, token).
    pub async fn create_user(&self, org: &str, email: &str, role: &str) -> (String, String) {
        let (status, user) = self
            .root(
                reqwest::Method::POST,
                "/users",
                Some(json!({"org_id": org, "email": email, "password": PASSWORD, "role": role})),
            )
            .await;
        assert_eq!(status, 201, "{user}");
        let token = self.token_for(email, None).await;
        (user["id"].as_str().expect("id").to_owned(), token)
    }

    pub async fn token_for(&self, email: &str, totp: Option<&str>) -> String {
        let response = self
            .http
            .post(self.url("/auth/token"))
            .json(&json!({"email": email, "password": PASSWORD, "totp_code": totp, "name": "test"}))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status().as_u16(), 201);
        let body: Value = response.json().await.expect("json");
        body["secret"].as_str().expect("secret").to_owned()
    }

    /// Opens a connection to the server's metadata database, as someone with
    /// database access (and nothing else) could.
    pub async fn database(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        sqlx::AnyConnection::connect(&self.database_url)
            .await
            .expect("connect to the metadata database")
    }

    /// Runs the command-line client against this server.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> CliOutput {
        run_cli(&self.console, &self.root_token, args, stdin)
    }
}

pub const PASSWORD: &str = "correct horse battery staple";

pub struct CliOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|_| panic!("not JSON: {} / {}", self.stdout, self.stderr))
    }
}

pub fn run_cli(server: &str, token: &str, args: &[&str], stdin: Option<&str>) -> CliOutput {
    use std::io::Write;
    let mut child = Command::new(NUAGE)
        .args(["--server", server, "--token", token])
        .args(args)
        .env_remove("NUAGE_CLI_SERVER")
        .env_remove("NUAGE_CLI_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nuage");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wait");
    CliOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// Writes a master key file (mode 0600) that several nodes will share.
pub fn write_master_key(path: &Path) {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let key: String = (0..2)
        .map(|_| uuid::Uuid::new_v4().simple().to_string())
        .collect();
    options
        .open(path)
        .expect("key file")
        .write_all(key.as_bytes())
        .expect("write key");
}

/// Runs a command that is expected to exit by itself (e.g. a server that must
/// refuse to start), killing it and failing the test if it is still running
/// after a minute.
pub fn output_within_a_minute(command: &mut Command) -> std::process::Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "the command did not exit by itself: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The database and root token of a server that is not running.
pub struct PlaceholderApp {
    pub database_url: String,
    pub root_token: String,
}

/// An organisation's S3 credentials on a test server.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub org: String,
    pub access_key_id: String,
    pub secret: String,
}

impl TestApp {
    /// A new organisation with an S3 key.
    pub async fn tenant(&self, name: &str) -> Tenant {
        let org = self.create_org(name).await;
        let (status, body) = self
            .root(
                reqwest::Method::POST,
                &format!("/orgs/{org}/s3-keys"),
                Some(serde_json::json!({})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        Tenant {
            org,
            access_key_id: body["access_key_id"].as_str().expect("key id").to_owned(),
            secret: body["secret_access_key"]
                .as_str()
                .expect("secret")
                .to_owned(),
        }
    }

    /// An aws-sdk-s3 client for the tenant, path style, region us-east-1.
    pub fn s3_client(&self, tenant: &Tenant) -> aws_sdk_s3::Client {
        s3_client(&self.s3, &tenant.access_key_id, &tenant.secret)
    }

    /// Sets the server's frozen clock (a server spawned with `clock`, as
    /// `spawn_at` does) to `at`, in ms since the epoch.
    pub async fn set_clock(&self, at: i64) {
        let response = self
            .http
            .put(self.url("/test-clock"))
            .bearer_auth(&self.root_token)
            .json(&json!({ "now_ms": at }))
            .send()
            .await
            .expect("clock set");
        assert_eq!(response.status(), 204);
    }

    /// Runs a background job now, as an operator does (`POST
    /// /jobs/{name}/run`), after any run this node's own loop has under way;
    /// returns its outcome. Tests run a job instead of sleeping through its
    /// interval: the job has then run, whatever the machine's speed.
    pub async fn run_job(&self, name: &str) -> String {
        for _ in 0..200 {
            let (status, run) = self
                .root(reqwest::Method::POST, &format!("/jobs/{name}/run"), None)
                .await;
            assert_eq!(status, 200, "{run}");
            if run["ran"] == true {
                return run["outcome"].as_str().expect("outcome").to_owned();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the job {name} was never free to run");
    }

    /// Runs storage upkeep now (released blobs, orphans, uploads, lifecycle).
    pub async fn maintain(&self) -> Value {
        let (status, body) = self
            .root(reqwest::Method::POST, "/storage/maintenance", None)
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

pub fn s3_client(endpoint: &str, access_key_id: &str, secret: &str) -> aws_sdk_s3::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .force_path_style(true)
        .credentials_provider(aws_credential_types::Credentials::new(
            access_key_id,
            secret,
            None,
            None,
            "nuage-tests",
        ))
        .http_client(http)
        // One attempt: a test sees the server's first answer, and an error
        // it expects is not retried with back-off.
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Creates a bucket, which must succeed.
pub async fn create_bucket(s3: &aws_sdk_s3::Client, bucket: impl Into<String>) {
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("bucket created");
}

/// Puts an object, which must succeed.
pub async fn put(
    s3: &aws_sdk_s3::Client,
    bucket: impl Into<String>,
    key: impl Into<String>,
    body: aws_sdk_s3::primitives::ByteStream,
) -> aws_sdk_s3::operation::put_object::PutObjectOutput {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(body)
        .send()
        .await
        .expect("object put")
}

/// An object's content, which must be readable.
pub async fn get_bytes(
    s3: &aws_sdk_s3::Client,
    bucket: impl Into<String>,
    key: impl Into<String>,
) -> bytes::Bytes {
    s3.get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("object got")
        .body
        .collect()
        .await
        .expect("object read")
        .into_bytes()
}

/// The S3 error code of a failed SDK call.
pub fn s3_code<E, R>(
    result: Result<R, aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>>,
) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match result {
        Ok(r) => panic!("expected an S3 error, got {r:?}"),
        Err(e) => match e.as_service_error() {
            // A HEAD answer has no body: name its status instead.
            Some(service) => service.code().map(str::to_owned).unwrap_or_else(|| {
                let status = e.raw_response().map(|r| r.status().as_u16());
                format!("HTTP {}", status.unwrap_or_default())
            }),
            None => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                format!("(no service error: status {status:?}: {e:?})")
            }
        },
    }
}

/// The SigV4 headers (`authorization`, `x-amz-date`, `x-amz-content-sha256`)
/// of a request to `url` with these other headers and body; `None` when the
/// request cannot be signed (an unparsable URL).
pub fn sign_request(
    t: &Tenant,
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Option<Vec<(String, String)>> {
    use aws_sigv4::http_request::{
        PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
    };
    let host = url.split_once("://")?.1.split('/').next()?.to_owned();
    let mut all: Vec<(String, String)> = vec![("host".into(), host)];
    all.extend(headers.iter().cloned());
    let identity =
        aws_credential_types::Credentials::new(&t.access_key_id, &t.secret, None, None, "tests")
            .into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(std::time::SystemTime::now())
        .settings(settings)
        .build()
        .ok()?
        .into();
    let signable = SignableRequest::new(
        method,
        url.to_owned(),
        all.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .ok()?;
    let (instructions, _) = sign(signable, &params).ok()?.into_parts();
    Some(
        instructions
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}
