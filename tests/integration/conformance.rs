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

    let seen: serde_json::Value = python_readback(
        "readback.py",
        &emulator,
        &["--project", "test-project", "--region", "us-central1"],
    );

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

#[test]
fn googles_python_clients_run_the_full_queue_and_service_scenario_against_the_emulator() {
    let emulator = Emulator::start_with(&[("STACKCTL_EMULATOR_OPERATION_POLLS", "2")]);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/conformance/python_clients.py"
    );
    let out = std::process::Command::new(python())
        .args([
            script,
            "--endpoint",
            &emulator.url,
            "--project",
            "conformance-project",
            "--region",
            "us-central1",
        ])
        .output()
        .expect("run python_clients.py");
    assert!(
        out.status.success(),
        "Google's Python clients found a difference from the real API:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn gcloud_reads_queues_that_stackctl_created() {
    if std::process::Command::new("gcloud")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "gcloud is not installed here; skipping the gcloud reader (the Python readers still ran)"
        );
        return;
    }
    let emulator = Emulator::start();
    let ws = Workspace::new(&basic_stack("gcloud"));
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    let config = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("gcloud")
        .args([
            "tasks",
            "queues",
            "describe",
            "webhooks",
            "--location=us-central1",
            "--format=json",
        ])
        .env("CLOUDSDK_CONFIG", config.path())
        .env("CLOUDSDK_AUTH_DISABLE_CREDENTIALS", "true")
        .env("CLOUDSDK_CORE_PROJECT", "test-project")
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDTASKS",
            format!("{}/", emulator.url),
        )
        .env("CLOUDSDK_CORE_DISABLE_PROMPTS", "1")
        .output()
        .expect("run gcloud");
    assert!(
        out.status.success(),
        "gcloud failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let queue: serde_json::Value = serde_json::from_slice(&out.stdout).expect("gcloud JSON");
    assert_eq!(queue["state"], "RUNNING", "{queue}");
    assert_eq!(queue["retryConfig"]["maxAttempts"], 10, "{queue}");
    assert_eq!(queue["retryConfig"]["minBackoff"], "1s", "{queue}");
    assert_eq!(
        queue["httpTarget"]["uriOverride"]["pathOverride"]["path"], "/tasks/webhook",
        "{queue}"
    );
}

#[test]
fn googles_python_clients_drive_bigquery_budgets_run_jobs_monitoring_and_iam_on_the_emulator() {
    let emulator = Emulator::start();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/conformance/python_seed_stack.py"
    );
    let out = std::process::Command::new(python())
        .args([
            script,
            "--endpoint",
            &emulator.url,
            "--project",
            "seed-project",
            "--region",
            "us-central1",
        ])
        .output()
        .expect("run python_seed_stack.py");
    assert!(
        out.status.success(),
        "Google's Python clients found a difference from the real API:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn gcloud_drives_scheduler_secrets_iam_registries_and_service_usage_on_the_emulator() {
    if std::process::Command::new("gcloud")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "gcloud is not installed here; skipping the gcloud probes (the Python clients still ran)"
        );
        return;
    }
    let emulator = Emulator::start();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/conformance/gcloud_probes.sh"
    );
    let out = std::process::Command::new("bash")
        .args([script, &format!("{}/", emulator.url)])
        .output()
        .expect("run gcloud_probes.sh");
    assert!(
        out.status.success(),
        "gcloud found a difference from the real API:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
