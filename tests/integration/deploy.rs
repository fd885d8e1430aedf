//! build / deploy / traffic / rollback end to end: reproducible digests, a real registry, the
//! emulator's registry and Cloud Run revisions, canaries, rollback and failed revisions.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::*;

/// A stack whose one service is built from `task-worker/` beside it.
fn built_stack(stack_name: &str, repository: &str) -> String {
    format!(
        r#"[stack]
name = "{stack_name}"
project = "test-project"
region = "us-central1"
image_repository = "{repository}"

[service.worker]
build = "task-worker"
max_instances = 2
"#
    )
}

/// A workspace with `stack` and a copy of the worker under `task-worker/`.
fn built_workspace(stack: &str) -> Workspace {
    let ws = Workspace::new(stack);
    copy_worker(&ws.path().join("task-worker"));
    ws
}

fn musl_or_skip() -> bool {
    require(
        "the Rust target x86_64-unknown-linux-musl",
        musl_target_installed(),
        "rustup target add x86_64-unknown-linux-musl",
    )
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", run.stdout, run.stderr))
}

/// The service as the emulator stores it.
fn service(emulator: &Emulator) -> Value {
    let (status, body) = emulator.http(
        "GET",
        "/v2/projects/test-project/locations/us-central1/services/worker",
        None,
    );
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("service JSON")
}

/// `revision id -> percent` of the service's traffic statuses (LATEST resolved).
fn serving(emulator: &Emulator) -> Vec<(String, i64)> {
    let service = service(emulator);
    let latest = service["latestReadyRevision"]
        .as_str()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut out: Vec<(String, i64)> = service["trafficStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|s| s["percent"].as_i64().unwrap_or(0) > 0)
        .map(|s| {
            let revision = s["revision"]
                .as_str()
                .filter(|r| !r.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| latest.clone());
            (revision, s["percent"].as_i64().unwrap_or(0))
        })
        .collect();
    out.sort();
    out
}

fn blob_uploads(requests: &[(String, String)]) -> Vec<String> {
    requests
        .iter()
        .filter(|(method, path)| {
            path.contains("/blobs/uploads") && ["POST", "PATCH", "PUT"].contains(&method.as_str())
        })
        .map(|(m, p)| format!("{m} {p}"))
        .collect()
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .expect("run git");
    assert!(status.status.success(), "git {args:?}: {status:?}");
}

#[test]
fn two_checkouts_in_different_folders_build_the_same_digest() {
    if !musl_or_skip() {
        return;
    }
    let stack = built_stack("repro", "workers");
    let first = built_workspace(&stack);
    let second_root = tempfile::tempdir().expect("tempdir");
    let nested = second_root.path().join("a/much/deeper/checkout");
    std::fs::create_dir_all(&nested).expect("mkdir");
    std::fs::write(nested.join("stack.toml"), &stack).expect("write");
    copy_worker(&nested.join("task-worker"));

    let one = json(&first.run(&["build", "--json"]).expect(0));
    let run = |dir: &Path| {
        let out = Command::new(BIN)
            .current_dir(dir)
            .args(["build", "--json"])
            .env("NO_COLOR", "1")
            .output()
            .expect("run stackctl");
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice::<Value>(&out.stdout).expect("JSON")
    };
    let two = run(&nested);
    let again = json(&first.run(&["build", "--json"]).expect(0));
    assert_eq!(
        one[0]["digest"], two[0]["digest"],
        "different folders, same digest"
    );
    assert_eq!(
        one[0]["digest"], again[0]["digest"],
        "same folder, same digest"
    );
    assert_eq!(one[0]["layers"], two[0]["layers"]);
    assert_eq!(
        one[0]["image"],
        "us-central1-docker.pkg.dev/test-project/workers/worker"
    );
    let compressed = one[0]["compressed_bytes"].as_u64().unwrap_or(0);
    assert!(
        (100_000..5_000_000).contains(&compressed),
        "a small image: {compressed} bytes"
    );
}

#[test]
fn a_real_registry_reports_the_pushed_digest_and_a_second_deploy_uploads_no_blobs() {
    if !musl_or_skip() {
        return;
    }
    let Some(registry) = Registry::start() else {
        return;
    };
    let emulator = Emulator::start_with(&[("STACKCTL_EMULATOR_OPERATION_POLLS", "0")]);
    let ws = built_workspace(&built_stack("realreg", "workers"));
    git(ws.path(), &["init", "-q"]);
    git(ws.path(), &["add", "."]);
    git(ws.path(), &["commit", "-q", "-m", "worker"]);
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);

    let deploy = ["deploy", "--json", "--registry", registry.url.as_str()];
    let first = json(&ws.on(&emulator, &deploy).expect(0));
    let push = &first["deployed"][0]["push"];
    let digest = push["digest"].as_str().expect("digest").to_string();
    let tag = push["tag"].as_str().expect("a git tag").to_string();
    assert!(tag.starts_with("git-") && !tag.ends_with("-dirty"), "{tag}");
    let name = "test-project/workers/worker";
    assert_eq!(
        registry.manifest_digest(name, &tag).as_deref(),
        Some(digest.as_str()),
        "the registry reports the digest stackctl computed"
    );
    assert!(
        !registry.upload_requests().is_empty(),
        "the first push uploads"
    );
    assert_eq!(
        service(&emulator)["template"]["containers"][0]["image"],
        format!("us-central1-docker.pkg.dev/{name}@{digest}"),
        "Cloud Run runs the image by digest, under its Artifact Registry name"
    );

    let uploads_before = registry.upload_requests().len();
    let second = json(&ws.on(&emulator, &deploy).expect(0));
    assert_eq!(second["deployed"][0]["push"]["digest"], digest.as_str());
    assert_eq!(
        registry.upload_requests().len(),
        uploads_before,
        "a second deploy of the same code uploads no blobs:\n{}",
        registry.access_log()
    );
    assert_eq!(second["deployed"][0]["rollout"]["unchanged"], true);
}

#[test]
fn deploy_local_on_the_example_stack_builds_pushes_and_rolls_out() {
    if !musl_or_skip() {
        return;
    }
    let ws = Workspace::example();
    for build in EXAMPLE_BUILDS {
        copy_worker(&ws.path().join(build));
    }
    let applied = ws.run(&["apply", "--local", "--auto-approve"]).expect(0);
    assert!(
        applied
            .stdout
            .contains("\"us-docker.pkg.dev/cloudrun/container/hello\" (placeholder)"),
        "{}",
        applied.stdout
    );
    let first = ws.run(&["deploy", "--local"]).expect(0);
    for progress in [
        "compiling",
        "uploaded",
        "creating revision worker-",
        "traffic: 100%",
    ] {
        assert!(
            first.stderr.contains(progress),
            "{progress}:\n{}",
            first.stderr
        );
    }
    assert!(
        first.stdout.contains("url     https://worker-"),
        "{}",
        first.stdout
    );
    assert!(
        first
            .stdout
            .contains("image   us-central1-docker.pkg.dev/acme-shop-dev/workers/worker@sha256:"),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains("3 blobs uploaded"),
        "{}",
        first.stdout
    );
    assert!(
        first
            .stdout
            .contains("image   us-central1-docker.pkg.dev/acme-shop-dev/workers/relay@sha256:"),
        "the example's relay is built too:\n{}",
        first.stdout
    );

    let second = ws.run(&["deploy", "--local"]).expect(0);
    assert!(
        second.stdout.contains("0 blobs uploaded") && second.stdout.contains("unchanged"),
        "{}",
        second.stdout
    );
    // apply never reverts what deploy set: no image change, nothing to do.
    let plan = ws
        .run(&["plan", "--local", "--detailed-exitcode"])
        .expect(0);
    assert!(plan.stdout.starts_with("No changes."), "{}", plan.stdout);
    ws.edit("max_instances = 10", "max_instances = 11");
    let plan = ws
        .run(&["plan", "--local", "--detailed-exitcode"])
        .expect(2);
    assert_eq!(
        field_lines(&plan.stdout),
        vec!["~ max_instances = 10 -> 11"],
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("# image: us-central1-docker.pkg.dev/acme-shop-dev/workers/worker@sha256:"),
        "the plan shows the deployed digest:\n{}",
        plan.stdout
    );
    ws.run(&["apply", "--local", "--auto-approve"]).expect(0);
    let after = ws.run(&["deploy", "--local"]).expect(0);
    assert!(
        after.stdout.contains("0 blobs uploaded"),
        "{}",
        after.stdout
    );
}

#[test]
fn canary_traffic_shift_rollback_and_a_failed_revision_that_changes_nothing() {
    if !musl_or_skip() {
        return;
    }
    let emulator = Emulator::start();
    let ws = built_workspace(&built_stack("canary", "workers"));
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    let placeholder = serving(&emulator);

    ws.on(&emulator, &["deploy"]).expect(0);
    let image_one = service(&emulator)["template"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        image_one.starts_with("us-central1-docker.pkg.dev/test-project/workers/worker@sha256:"),
        "{image_one}"
    );
    let v1 = serving(&emulator);
    assert_eq!(v1.len(), 1);
    assert_ne!(v1, placeholder);
    assert_eq!(v1[0].1, 100);

    emulator.clear_requests();
    ws.on(&emulator, &["deploy"]).expect(0);
    assert_eq!(
        blob_uploads(&emulator.requests()),
        Vec::<String>::new(),
        "the same code again: every blob HEAD-checked, none uploaded"
    );

    // A canary: a new revision with 0%, tagged, then 10%.
    let main = ws.path().join("task-worker/src/main.rs");
    let code = std::fs::read_to_string(&main).expect("read main.rs");
    std::fs::write(&main, code.replace("\\\"ok\\\"", "\\\"ok, v2\\\"")).expect("edit");
    let canary = ws
        .on(&emulator, &["deploy", "--no-traffic", "--tag", "candidate"])
        .expect(0);
    assert!(
        canary
            .stdout
            .contains("tag url https://candidate---worker-"),
        "{}",
        canary.stdout
    );
    assert_eq!(serving(&emulator), v1, "a canary takes no traffic");
    let shifted = ws
        .on(&emulator, &["traffic", "service.worker", "candidate=10"])
        .expect(0);
    let split = serving(&emulator);
    assert_eq!(split.len(), 2, "{}", shifted.stdout);
    assert!(split.contains(&(v1[0].0.clone(), 90)), "{split:?}");

    // Rollback: everything back on v1.
    ws.on(&emulator, &["rollback", "service.worker"]).expect(0);
    assert_eq!(serving(&emulator), v1, "rollback restores v1's traffic");

    // A revision that fails to start leaves traffic where it was and says why.
    ws.edit(
        "image_repository = \"workers\"",
        "image_repository = \"emulator-fail\"",
    );
    let failed = ws.on(&emulator, &["deploy"]).expect(1);
    assert!(
        failed.stderr.contains("failed to become ready")
            && failed
                .stderr
                .contains("The user-provided container failed to start")
            && failed.stderr.contains("traffic is unchanged"),
        "{}",
        failed.stderr
    );
    assert_eq!(
        serving(&emulator),
        v1,
        "a failed revision changes no traffic"
    );

    let named = ws
        .on(
            &emulator,
            &["rollback", "service.worker", "--to", &placeholder[0].0],
        )
        .expect(0);
    assert!(named.stdout.contains(&placeholder[0].0), "{}", named.stdout);
    assert_eq!(serving(&emulator), placeholder);
}

#[test]
fn deploy_refuses_services_without_build_and_a_missing_service() {
    let emulator = Emulator::start();
    let ws = Workspace::new(&basic_stack("nobuild"));
    let run = ws.on(&emulator, &["deploy"]).expect(1);
    assert!(
        run.stderr.contains("no service or job in"),
        "{}",
        run.stderr
    );
    let run = ws.on(&emulator, &["deploy", "service.worker"]).expect(1);
    assert!(run.stderr.contains("prebuilt `image`"), "{}", run.stderr);
    if !musl_or_skip() {
        return;
    }
    let ws = built_workspace(&built_stack("noservice", "workers"));
    let run = ws.on(&emulator, &["deploy"]).expect(1);
    assert!(
        run.stderr.contains("run `stackctl apply` first"),
        "{}",
        run.stderr
    );
    let ws = built_workspace(
        &built_stack("nojob", "workers")
            .replace("service.worker", "job.worker")
            .replace("max_instances = 2\n", ""),
    );
    let run = ws.on(&emulator, &["deploy", "job.worker"]).expect(1);
    assert!(
        run.stderr.contains(
            "the job projects/test-project/locations/us-central1/jobs/worker does not exist yet"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn a_second_service_of_the_same_image_mounts_its_blobs_instead_of_uploading() {
    if !musl_or_skip() {
        return;
    }
    let Some(registry) = Registry::start() else {
        return;
    };
    let emulator = Emulator::start_with(&[("STACKCTL_EMULATOR_OPERATION_POLLS", "0")]);
    let stack = format!(
        "{}\n[service.other]\nbuild = \"task-worker\"\nmax_instances = 1\n",
        built_stack("mount", "workers")
    );
    let ws = built_workspace(&stack);
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    let deployed = json(
        &ws.on(
            &emulator,
            &["deploy", "--json", "--registry", registry.url.as_str()],
        )
        .expect(0),
    );
    let outcomes = |i: usize| -> Vec<String> {
        deployed["deployed"][i]["push"]["blobs"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|b| b[1].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(outcomes(0), vec!["uploaded"; 3], "{deployed}");
    assert_eq!(
        outcomes(1),
        vec!["mounted"; 3],
        "the same blobs cross-repository mounted: {deployed}"
    );
    let digest = deployed["deployed"][1]["push"]["digest"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        registry
            .manifest_digest("test-project/workers/other", digest)
            .as_deref(),
        Some(digest)
    );
}

#[test]
fn pushes_ride_out_registry_503s_with_retries() {
    if !musl_or_skip() {
        return;
    }
    let emulator = Emulator::start_with(&[("STACKCTL_EMULATOR_OPERATION_POLLS", "0")]);
    let ws = built_workspace(&built_stack("flaky", "workers"));
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    emulator.set_faults(
        r#"{"rules": [
            {"method": "HEAD", "path_contains": "/blobs/sha256:", "status": 503, "count": 1},
            {"method": "PATCH", "path_contains": "/blobs/uploads/", "status": 503, "count": 2},
            {"method": "PUT", "path_contains": "/manifests/", "status": 429, "count": 1}
        ]}"#,
    );
    let run = ws.on(&emulator, &["deploy"]).expect(0);
    assert!(
        run.stderr.contains("retrying in") && run.stderr.contains("HTTP 503"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("HTTP 429"), "{}", run.stderr);
    assert!(
        service(&emulator)["template"]["containers"][0]["image"]
            .as_str()
            .unwrap_or_default()
            .contains("@sha256:"),
        "deployed despite the faults"
    );
}

#[test]
fn a_built_job_starts_with_the_placeholder_and_deploy_pins_it_by_digest() {
    if !musl_or_skip() {
        return;
    }
    let emulator = Emulator::start();
    let ws = built_workspace(
        r#"[stack]
name = "jobs"
project = "test-project"
region = "us-central1"
image_repository = "workers"

[job.ingest]
build = "task-worker"
task_count = 2
"#,
    );
    let job = || {
        let (status, body) = emulator.http(
            "GET",
            "/v2/projects/test-project/locations/us-central1/jobs/ingest",
            None,
        );
        assert_eq!(status, 200, "{body}");
        let job: Value = serde_json::from_str(&body).expect("job JSON");
        job["template"]["template"]["containers"][0]["image"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let applied = ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert!(
        applied
            .stdout
            .contains("\"us-docker.pkg.dev/cloudrun/container/job\" (placeholder)"),
        "{}",
        applied.stdout
    );
    assert_eq!(job(), "us-docker.pkg.dev/cloudrun/container/job");

    let deployed = json(
        &ws.on(&emulator, &["deploy", "--json", "job.ingest"])
            .expect(0),
    );
    let digest = deployed["deployed"][0]["push"]["digest"]
        .as_str()
        .expect("digest")
        .to_string();
    assert!(digest.starts_with("sha256:"), "{deployed}");
    let image = format!("us-central1-docker.pkg.dev/test-project/workers/ingest@{digest}");
    assert_eq!(deployed["deployed"][0]["job"]["image"], image.as_str());
    assert_eq!(job(), image, "the job runs the pushed image by digest");

    // apply never reverts what deploy set; the plan names the deployed image.
    let plan = ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
    assert!(plan.stdout.starts_with("No changes."), "{}", plan.stdout);
    ws.edit("task_count = 2", "task_count = 3");
    let plan = ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(2);
    assert_eq!(
        field_lines(&plan.stdout),
        vec!["~ task_count = 2 -> 3"],
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains(&format!("# image: {image}")),
        "{}",
        plan.stdout
    );
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert_eq!(job(), image, "apply keeps the deployed image");

    // The no-argument form includes built jobs; the same code changes nothing.
    let again = ws.on(&emulator, &["deploy"]).expect(0);
    assert!(
        again.stdout.contains("job.ingest: unchanged, job")
            && again.stdout.contains(&format!("image   {image}"))
            && again.stdout.contains(&format!("digest  {digest}")),
        "{}",
        again.stdout
    );
    let built = json(&ws.run(&["build", "--json", "job.ingest"]).expect(0));
    assert_eq!(built[0]["digest"], digest.as_str());
    assert_eq!(built[0]["address"], "job.ingest");
}
