//! Google's Firestore emulator for tests: started once per test binary on a free loopback port
//! (`gcloud emulators firestore start --host-port=127.0.0.1:PORT`), stopped when the test
//! process exits. Its absence fails the test with how to install it (CI installs it).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long the emulator (a JVM) may take to answer after it was started.
const STARTUP: Duration = Duration::from_secs(90);

/// A running Firestore emulator.
#[derive(Debug)]
pub struct FirestoreEmulator {
    /// `127.0.0.1:PORT`, as `FIRESTORE_EMULATOR_HOST` takes it.
    pub host: String,
    /// The watchdog shell: it outlives the test process only long enough to stop the emulator.
    _watchdog: std::process::Child,
}

impl FirestoreEmulator {
    /// The test binary's emulator, started on first use. Tests share it and keep apart by
    /// project id (the emulator keeps one database per project).
    pub fn shared() -> &'static FirestoreEmulator {
        static SHARED: OnceLock<FirestoreEmulator> = OnceLock::new();
        SHARED.get_or_init(Self::start)
    }

    fn start() -> Self {
        let installed = Command::new("gcloud")
            .args(["--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
            && Command::new("java")
                .arg("-version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        assert!(
            installed,
            "Google's Firestore emulator is required by this test and is missing: install the Google Cloud CLI \
             (gcloud) with its cloud-firestore-emulator component (`apt-get install google-cloud-cli-firestore-emulator` \
             or `gcloud components install cloud-firestore-emulator`) and Java 11+; .ci/run checks for it"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let host = format!("127.0.0.1:{port}");
        // A shell in its own process group runs the emulator and, once this test process is gone,
        // stops it: gcloud puts itself and its JVM in a process group of their own, so that group
        // is killed, then the shell's, and no emulator outlives its tests.
        let script = format!(
            "gcloud emulators firestore start --host-port={host} --quiet >/dev/null 2>&1 & \
             emulator=$!; while kill -0 {parent} 2>/dev/null; do sleep 1; done; \
             kill -TERM -$emulator $emulator 2>/dev/null; kill -TERM -$$ 2>/dev/null",
            parent = std::process::id()
        );
        let mut command = Command::new("sh");
        command
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt as _;
            command.process_group(0);
        }
        let watchdog = command.spawn().expect("start the Firestore emulator");
        let deadline = Instant::now() + STARTUP;
        while !answers(&host) {
            assert!(
                Instant::now() < deadline,
                "Google's Firestore emulator did not answer on {host} within {STARTUP:?}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        warm_up(&host);
        Self {
            host,
            _watchdog: watchdog,
        }
    }
}

/// A first large commit, so the JVM has compiled its write path before a test's time budget
/// (the relay's 2 s) meets a cold emulator.
fn warm_up(host: &str) {
    let payload = "A".repeat(400 * 1024);
    for round in 0..3 {
        let body = format!(
            r#"{{"writes":[{{"update":{{"name":"projects/warm-up/databases/(default)/documents/warm_up/{round}","fields":{{"b":{{"bytesValue":"{payload}"}}}}}}}}]}}"#
        );
        let Ok(mut stream) = TcpStream::connect(host) else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        let request = format!(
            "POST /v1/projects/warm-up/databases/(default)/documents:commit HTTP/1.1\r\nHost: {host}\r\n\
             Authorization: Bearer owner\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(request.as_bytes());
        read_answer(&mut stream);
    }
}

/// Reads one HTTP answer (head and `Content-Length` body) without waiting for the emulator to
/// close the connection (it keeps it open); returns the head.
fn read_answer(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    while let Ok(n) = stream.read(&mut chunk) {
        if n == 0 {
            break;
        }
        received.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&received);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                return text[..end].to_string();
            }
        }
    }
    String::from_utf8_lossy(&received).into_owned()
}

/// Whether the emulator answers `GET /` ("Ok").
fn answers(host: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(host) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(
            format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .is_err()
    {
        return false;
    }
    read_answer(&mut stream).starts_with("HTTP/1.1 200")
}
