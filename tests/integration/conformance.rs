//! Independent real clients: Google's Python `google-cloud-tasks` and `google-cloud-run` (REST
//! transport, anonymous credentials) read back what `stackctl apply` created.

use crate::support::*;

#[test]
fn googles_python_clients_read_back_exactly_the_declared_values() {
    let emulator = Emulator::start();
    let ws = Workspace::new(&basic_stack("conformance").replace(
        "max_attempts = 10",
        "max_attempts = 10\nmax_dispatches_per_second = 50\nmax_backoff = \"10m\"",
    ));
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance/readback.py");
    let out = std::process::Command::new(python())
        .args([
            script,
            "--endpoint",
            &emulator.url,
            "--project",
            "test-project",
            "--region",
            "us-central1",
        ])
        .output()
        .expect("run readback.py");
    assert!(
        out.status.success(),
        "readback.py failed (is the venv from .ci/run there?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).expect("readback JSON");

    let queue = &seen["queues"]["webhooks"];
    assert_eq!(queue["state"], "RUNNING", "{queue}");
    assert_eq!(queue["retry_config"]["max_attempts"], 10, "{queue}");
    assert_eq!(
        queue["rate_limits"]["max_dispatches_per_second"], 50.0,
        "{queue}"
    );
    assert_eq!(
        queue["rate_limits"]["max_concurrent_dispatches"],
        5 * 80,
        "derived from the worker's cap: {queue}"
    );
    let service = &seen["services"]["worker"];
    let url = service["uri"].as_str().unwrap();
    let host = url.trim_start_matches("https://");
    assert_eq!(
        queue["http_target"]["uri_override"]["host"], host,
        "{queue}"
    );
    assert_eq!(
        queue["http_target"]["uri_override"]["path_override"]["path"], "/tasks/webhook",
        "{queue}"
    );

    assert_eq!(
        service["labels"]["stackctl-stack"], "conformance",
        "{service}"
    );
    let template = &service["template"];
    assert_eq!(template["scaling"]["max_instance_count"], 5, "{service}");
    assert_eq!(service["scaling"]["max_instance_count"], 5, "{service}");
    assert_eq!(
        template["max_instance_request_concurrency"], 80,
        "{service}"
    );
    let container = &template["containers"][0];
    assert_eq!(
        container["image"], "us-docker.pkg.dev/cloudrun/container/hello",
        "{service}"
    );
    assert_eq!(
        container["resources"]["limits"]["memory"], "512Mi",
        "{service}"
    );
    assert_eq!(container["resources"]["cpu_idle"], true, "{service}");
    assert_eq!(container["env"][0]["name"], "RUST_LOG", "{service}");
    assert_eq!(container["env"][0]["value"], "info", "{service}");
}
