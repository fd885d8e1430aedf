//! Test harness: the built `stackctl` binary, emulator processes on loopback, stack workspaces.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_stackctl");

/// The example stack at the repository root, and the schema file it references.
pub const EXAMPLE_STACK: &str = include_str!("../../stack.toml");
pub const EXAMPLE_SCHEMA: &str = include_str!("../../schemas/orders.json");
/// The example's `build` directories: its services' and its job's workers.
pub const EXAMPLE_BUILDS: [&str; 4] = [
    "workers/task-worker",
    "workers/webhook-relay",
    "workers/crm-proxy",
    "workers/shopify-ingest",
];

/// The secret canary: a Secret Manager version value every emulator holds (an unowned secret
/// `stackctl-canary` in each test project). No stackctl output, saved plan or workspace file of
/// any test may contain it; [`Run`]s and [`Workspace`]s check.
pub const SECRET_CANARY: &str = "canary-5f1d0e9b-never-print-me";

/// Standard base64 with padding (Secret Manager payloads).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Fails the test when `text` (what stackctl wrote, or a file it left) holds the canary.
#[track_caller]
pub fn assert_no_canary(what: &str, text: &str) {
    assert!(
        !text.contains(SECRET_CANARY),
        "the secret canary leaked into {what}:\n{text}"
    );
}

/// A `stackctl emulator` process with its own state dir; killed on drop.
pub struct Emulator {
    child: Child,
    pub url: String,
    /// Kept alive (and removed) with the process.
    _state_dir: tempfile::TempDir,
}

impl Emulator {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(env: &[(&str, &str)]) -> Self {
        let state_dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(state_dir, env)
    }

    pub fn start_in(state_dir: tempfile::TempDir, env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.args(["emulator", "--port", "0", "--state-dir"])
            .arg(state_dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn stackctl emulator");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        let emulator = Self {
            child,
            url,
            _state_dir: state_dir,
        };
        emulator.plant_secret_canary();
        emulator
    }

    /// Puts the canary in a secret version of each project the tests use.
    fn plant_secret_canary(&self) {
        let data = base64(SECRET_CANARY.as_bytes());
        for project in ["test-project", "acme-shop-dev"] {
            let (status, body) = self.http(
                "POST",
                &format!("/v1/projects/{project}/secrets?secretId=stackctl-canary"),
                Some(r#"{"replication": {"automatic": {}}}"#),
            );
            // 409: planted before a restart on the same state dir.
            assert!(
                status == 200 || status == 409,
                "planting the canary secret: {body}"
            );
            let (status, body) = self.http(
                "POST",
                &format!("/v1/projects/{project}/secrets/stackctl-canary:addVersion"),
                Some(&format!(r#"{{"payload": {{"data": "{data}"}}}}"#)),
            );
            assert_eq!(status, 200, "planting the canary version: {body}");
        }
    }

    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    /// A raw HTTP/1.1 request to the emulator; returns (status, body).
    pub fn http(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        http(&self.addr(), method, path, body)
    }

    pub fn set_faults(&self, json: &str) {
        let (status, body) = self.http("POST", "/_emulator/faults", Some(json));
        assert_eq!(status, 200, "setting faults: {body}");
    }

    pub fn clear_faults(&self) {
        self.http("DELETE", "/_emulator/faults", None);
    }

    /// `(method, path)` of every API request since the last [`Emulator::clear_requests`].
    pub fn requests(&self) -> Vec<(String, String)> {
        let (_, body) = self.http("GET", "/_emulator/requests", None);
        let v: serde_json::Value = serde_json::from_str(&body).expect("requests JSON");
        let list = v
            .as_array()
            .cloned()
            .or_else(|| v["requests"].as_array().cloned())
            .unwrap_or_default();
        list.iter()
            .map(|r| {
                (
                    r["method"].as_str().unwrap_or_default().to_string(),
                    r["path"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    pub fn clear_requests(&self) {
        self.http("DELETE", "/_emulator/requests", None);
    }

    /// Kills the process (SIGKILL: no shutdown, no flush) and hands back its state dir.
    pub fn kill(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let placeholder = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self._state_dir, placeholder)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn http(addr: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    http_with(addr, method, path, &[], body)
}

/// [`http`] with extra request headers.
pub fn http_with(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to emulator");
    let body = body.unwrap_or("");
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// The outcome of one `stackctl` run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}, got {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// A folder with a stack.toml, where stackctl runs.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Drop for Workspace {
    /// Saved plans and every other file stackctl left in the workspace (but the `--local`
    /// emulator's own state, which is the cloud's) must not hold the canary.
    fn drop(&mut self) {
        fn scan(dir: &Path) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.ends_with(".stackctl/local") || path.ends_with("target") {
                    continue;
                }
                if path.is_dir() {
                    scan(&path);
                } else if let Ok(bytes) = std::fs::read(&path)
                    && !std::thread::panicking()
                {
                    assert_no_canary(
                        &path.display().to_string(),
                        &String::from_utf8_lossy(&bytes),
                    );
                }
            }
        }
        scan(self.dir.path());
    }
}

impl Workspace {
    pub fn new(stack: &str) -> Self {
        let ws = Self {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        ws.write(stack);
        ws
    }

    /// A folder with nothing in it yet (for `stackctl init`).
    pub fn empty() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// The repository's example: stack.toml and the files and directories it references
    /// (schemas/, and the `build` directory, which must exist; deploy tests copy the worker).
    pub fn example() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for build in EXAMPLE_BUILDS {
            std::fs::create_dir_all(dir.path().join(build)).expect("build dir");
        }
        let ws = Self { dir };
        ws.write(EXAMPLE_STACK);
        std::fs::create_dir_all(ws.path().join("schemas")).expect("schemas dir");
        std::fs::write(ws.path().join("schemas/orders.json"), EXAMPLE_SCHEMA).expect("schema file");
        ws
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self) -> PathBuf {
        self.dir.path().join("stack.toml")
    }

    pub fn write(&self, stack: &str) {
        std::fs::write(self.file(), stack).expect("write stack.toml");
    }

    /// Replaces `from` with `to` in stack.toml (the edit must apply).
    pub fn edit(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(self.file()).expect("read stack.toml");
        assert!(text.contains(from), "stack.toml has no {from:?}");
        self.write(&text.replacen(from, to, 1));
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(self.path())
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("STACKCTL_ENDPOINT")
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run stackctl");
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        };
        assert_no_canary(&format!("stdout of stackctl {args:?}"), &run.stdout);
        assert_no_canary(&format!("stderr of stackctl {args:?}"), &run.stderr);
        run
    }

    /// Runs against an emulator process with `--endpoint`.
    pub fn on(&self, emulator: &Emulator, args: &[&str]) -> Run {
        let mut full: Vec<&str> = args.to_vec();
        full.extend(["--endpoint", emulator.url.as_str()]);
        self.run(&full)
    }
}

/// Runs `stackctl ARGS` in `dir` inside a pseudo-terminal, typing each answer once its prompt
/// shows (answers in Python string escapes: `\\r` is Enter, `\\x1b[B` the down arrow); the
/// exit code and everything the terminal showed.
pub fn in_terminal(dir: &Path, dialog: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/pty_dialog.py");
    let out = Command::new(python())
        .arg(script)
        .args(dialog.iter().flat_map(|(prompt, answer)| [prompt, answer]))
        .arg("--")
        .arg(BIN)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("STACKCTL_ENDPOINT")
        .output()
        .expect("run the pty helper");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

/// A small stack used by most tests: one service, one queue targeting it.
pub fn basic_stack(stack_name: &str) -> String {
    format!(
        r#"[stack]
name = "{stack_name}"
project = "test-project"
region = "us-central1"

[service.worker]
image = "us-docker.pkg.dev/cloudrun/container/hello"
max_instances = 5
timeout = "60s"
env = {{ RUST_LOG = "info" }}

[queue.webhooks]
target = "service.worker"
path = "/tasks/webhook"
max_attempts = 10
min_backoff = "1s"
"#
    )
}

/// The field lines (`~ name = a -> b`) of a rendered plan.
pub fn field_lines(plan: &str) -> Vec<String> {
    plan.lines()
        .map(str::trim)
        .filter(|l| {
            l.len() > 2 && ["+ ", "~ ", "- "].iter().any(|p| l.starts_with(p)) && l.contains(" = ")
        })
        .map(String::from)
        .collect()
}

/// The Python interpreter with Google's client libraries (.ci/run makes the venv).
/// Runs `tests/conformance/SCRIPT` (one of Google's Python clients reading the emulator back)
/// with `--endpoint` and `args`, and parses the JSON it prints.
pub fn python_readback(script: &str, emulator: &Emulator, args: &[&str]) -> serde_json::Value {
    let path = format!("{}/tests/conformance/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(python())
        .arg(&path)
        .args(["--endpoint", &emulator.url])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(
        out.status.success(),
        "{script} failed (is the venv from scripts/test there?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{script} JSON: {e}"))
}

pub fn python() -> String {
    std::env::var("STACKCTL_PYTHON").unwrap_or_else(|_| {
        let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
        if Path::new(venv).exists() {
            venv.to_string()
        } else {
            "python3".to_string()
        }
    })
}

/// Runs `tests/conformance/SCRIPT ARGS...` with [`python`] and parses the JSON it prints.
pub fn conformance_script(script: &str, args: &[&str]) -> serde_json::Value {
    let path = format!("{}/tests/conformance/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(python())
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    assert!(
        out.status.success(),
        "{script} failed (is the venv from scripts/test there?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{script} printed no JSON ({e})"))
}

/// A tool a test needs. In CI (`CI` set) a missing tool fails the test loudly; elsewhere the
/// test is skipped with the reason printed.
pub fn require(what: &str, present: bool, install: &str) -> bool {
    if present {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{what} is missing in CI; .ci/run must install it: {install}");
    }
    eprintln!("SKIPPED: {what} is missing (install it with: {install})");
    false
}

/// Whether the musl target that `stackctl build` compiles for is installed.
pub fn musl_target_installed() -> bool {
    let Ok(out) = Command::new("rustc").args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Path::new(&sysroot)
        .join("lib/rustlib/x86_64-unknown-linux-musl/lib")
        .is_dir()
}

/// The std-only worker the tests build and deploy (`tests/fixtures/hello-worker`).
pub fn hello_worker_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hello-worker")
}

/// Copies the fixture worker crate (Cargo.toml and src/) into `dir`.
pub fn copy_worker(dir: &Path) {
    let source = hello_worker_source();
    std::fs::create_dir_all(dir.join("src")).expect("mkdir");
    std::fs::copy(source.join("Cargo.toml"), dir.join("Cargo.toml")).expect("copy Cargo.toml");
    std::fs::copy(source.join("src/main.rs"), dir.join("src/main.rs")).expect("copy main.rs");
}

/// Debian's `docker-registry` (CNCF distribution) on a loopback port, with a generated config
/// and its access log in a file; killed on drop.
pub struct Registry {
    child: Child,
    pub url: String,
    dir: tempfile::TempDir,
}

impl Registry {
    /// `None` (skipped) when docker-registry is not installed outside CI.
    pub fn start() -> Option<Self> {
        let installed = Command::new("docker-registry")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !require(
            "docker-registry (CNCF distribution)",
            installed,
            "apt-get install docker-registry",
        ) {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: test-only-not-secret\nhealth:\n  storagedriver:\n    enabled: false\n",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("registry.yml");
        std::fs::write(&config_path, config).expect("write registry config");
        let log = std::fs::File::create(dir.path().join("access.log")).expect("log file");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(log.try_clone().expect("log clone"))
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry");
        let registry = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        for _ in 0..100 {
            if TcpStream::connect(registry.addr()).is_ok() {
                let (status, _) = http(&registry.addr(), "GET", "/v2/", None);
                if status == 200 {
                    return Some(registry);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("docker-registry did not start:\n{}", registry.access_log());
    }

    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    /// Everything the registry logged (its access log: one line per request).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// Access-log lines of blob uploads (`POST|PATCH|PUT .../blobs/uploads/...`).
    pub fn upload_requests(&self) -> Vec<String> {
        self.access_log()
            .lines()
            .filter(|l| l.contains("/blobs/uploads"))
            .filter(|l| {
                ["\"POST ", "\"PATCH ", "\"PUT "]
                    .iter()
                    .any(|m| l.contains(m))
            })
            .map(str::to_string)
            .collect()
    }

    /// `Docker-Content-Digest` of a manifest, read with a plain HTTP HEAD.
    pub fn manifest_digest(&self, name: &str, reference: &str) -> Option<String> {
        let mut stream = TcpStream::connect(self.addr()).expect("connect to registry");
        write!(
            stream,
            "HEAD /v2/{name}/manifests/{reference} HTTP/1.1\r\nHost: {}\r\nAccept: application/vnd.oci.image.manifest.v1+json\r\nConnection: close\r\n\r\n",
            self.addr()
        )
        .expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        response.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("docker-content-digest")
                .then(|| v.trim().to_string())
        })
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Verifies an ID token the emulator signed with Google's own verifier (google-cloud-auth),
/// against the emulator's JWKS; `email` also checks the token's identity.
pub fn verify_local_id_token(
    emulator_url: &str,
    audience: &str,
    email: Option<&str>,
    token: &str,
) -> Result<std::collections::HashMap<String, serde_json::Value>, String> {
    let mut verifier =
        google_cloud_auth::credentials::idtoken::verifier::Builder::new([audience.to_string()])
            .with_jwks_url(format!("{emulator_url}/oauth2/v3/certs"));
    if let Some(email) = email {
        verifier = verifier.with_email(email);
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(verifier.build().verify(token))
        .map(|claims| claims.into_iter().collect())
        .map_err(|e| e.to_string())
}

/// `printf VALUE | stackctl secret set NAME --local`
pub fn set_secret_local(ws: &Workspace, name: &str, value: &str) -> String {
    set_secret_in(ws.path(), &[], name, value)
}

pub fn set_secret_in(dir: &Path, env: &[(&str, &str)], name: &str, value: &str) -> String {
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .args(["secret", "set", name, "--local"])
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn secret set");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(value.as_bytes())
        .expect("write value");
    let out = child.wait_with_output().expect("secret set");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains(value) && !stderr.contains(value),
        "the value is never printed"
    );
    stdout
}
