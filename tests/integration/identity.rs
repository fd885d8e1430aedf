//! Identity and wiring end to end: service accounts, secrets, jobs, schedules and the IAM grants
//! between them converge; a field change shows exactly that field; the IAM read-modify-write
//! survives concurrent edits and never removes members it did not add; and independent clients
//! (gcloud, Google's Python Run client) read back what apply created.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use stackctl::model::Endpoint;
use stackctl::provider::iam::PolicyTarget;
use stackctl::provider::{Cloud, RetryObserver};

use crate::support::*;

/// Every identity kind and every wiring key, small.
fn identity_stack(name: &str) -> String {
    format!(
        r#"[stack]
name = "{name}"
project = "test-project"
region = "us-central1"

[service_account.tasks]
id = "tasks-invoker"
display_name = "Cloud Tasks invoker"

[service_account.worker]
display_name = "Webhook worker"
roles = ["roles/logging.logWriter"]

[service_account.relay]
id = "webhook-relay"

[service_account.scheduler]
display_name = "Ingest scheduler"

[secret.api-key]

[service.worker]
image = "us-docker.pkg.dev/cloudrun/container/hello"
max_instances = 5
service_account = "service_account.worker"
invokers = ["service_account.tasks"]
secrets = {{ API_KEY = "secret.api-key" }}

[queue.webhooks]
target = "service.worker"
path = "/tasks/webhook"
oidc_service_account = "service_account.tasks"
enqueuers = ["service_account.relay"]

[job.ingest]
image = "us-docker.pkg.dev/cloudrun/container/job"
task_timeout = "900s"
max_retries = 3
service_account = "service_account.worker"
env = {{ MODE = "hourly" }}
secrets = {{ API_KEY = "secret.api-key" }}

[schedule.hourly]
job = "job.ingest"
cron = "0 * * * *"
service_account = "service_account.scheduler"
"#
    )
}

/// Cloud Run's `getIamPolicy` is a GET; Resource Manager's and Cloud Tasks' are POSTs.
fn get_policy(emulator: &Emulator, api_path: &str) -> (u16, String) {
    if api_path.contains("/jobs/") || api_path.contains("/services/") {
        emulator.http("GET", &format!("{api_path}:getIamPolicy"), None)
    } else {
        emulator.http("POST", &format!("{api_path}:getIamPolicy"), Some("{}"))
    }
}

/// The members of `role` in `resource`'s policy, read over raw HTTP (`/v2/...` or `/v3/...`).
fn members(emulator: &Emulator, api_path: &str, role: &str) -> Vec<String> {
    let (status, body) = get_policy(emulator, api_path);
    assert_eq!(status, 200, "{body}");
    let policy: Value = serde_json::from_str(&body).unwrap();
    policy["bindings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["role"] == role)
        .flat_map(|b| b["members"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m.as_str().map(String::from))
        .collect()
}

/// Adds `member` to `role` in a policy as someone other than stackctl would (its own RMW).
fn add_member(emulator: &Emulator, api_path: &str, role: &str, member: &str) {
    let (_, body) = get_policy(emulator, api_path);
    let mut policy: Value = serde_json::from_str(&body).unwrap();
    let bindings = policy["bindings"].as_array().cloned().unwrap_or_default();
    let mut bindings: Vec<Value> = bindings;
    match bindings.iter_mut().find(|b| b["role"] == role) {
        Some(b) => b["members"].as_array_mut().unwrap().push(json!(member)),
        None => bindings.push(json!({"role": role, "members": [member]})),
    }
    policy["bindings"] = Value::Array(bindings);
    let (status, body) = emulator.http(
        "POST",
        &format!("{api_path}:setIamPolicy"),
        Some(&json!({ "policy": policy }).to_string()),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn identity_kinds_converge_and_each_change_shows_exactly_that_field() {
    let emulator = Emulator::start();
    let ws = Workspace::new(&identity_stack("identity"));
    let first = ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert!(
        first.stdout.contains("Apply complete: 22 changed."),
        "{}",
        first.stdout
    );
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);

    let edits: &[(&str, &str, &[&str])] = &[
        (
            "display_name = \"Webhook worker\"",
            "display_name = \"Worker\"",
            &["~ display_name = \"Webhook worker\" -> \"Worker\""],
        ),
        (
            "task_timeout = \"900s\"",
            "task_timeout = \"20m\"",
            &["~ task_timeout = \"15m\" -> \"20m\""],
        ),
        (
            "max_retries = 3",
            "max_retries = 5",
            &["~ max_retries = 3 -> 5"],
        ),
        (
            "env = { MODE = \"hourly\" }",
            "env = { MODE = \"daily\" }",
            &["~ env.MODE = \"hourly\" -> \"daily\""],
        ),
        (
            "cron = \"0 * * * *\"",
            "cron = \"30 * * * *\"",
            &["~ cron = \"0 * * * *\" -> \"30 * * * *\""],
        ),
        (
            "[schedule.hourly]\n",
            "[schedule.hourly]\ntime_zone = \"America/Toronto\"\n",
            &["~ time_zone = \"Etc/UTC\" -> \"America/Toronto\""],
        ),
        (
            "[secret.api-key]\n",
            "[secret.api-key]\nlabels = { tier = \"ops\" }\n",
            &["+ labels.tier = \"ops\""],
        ),
        (
            "roles = [\"roles/logging.logWriter\"]",
            "roles = [\"roles/logging.logWriter\", \"roles/monitoring.metricWriter\"]",
            &["+ member = \"serviceAccount:worker@test-project.iam.gserviceaccount.com\""],
        ),
    ];
    for (from, to, expected) in edits {
        ws.edit(from, to);
        let plan = ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(2);
        assert_eq!(
            field_lines(&plan.stdout),
            expected.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "editing {from:?}:\n{}",
            plan.stdout
        );
        ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
        let after = ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
        assert!(after.stdout.starts_with("No changes."), "{}", after.stdout);
    }

    // A removed grant is revoked; a removed schedule and service account are deleted.
    ws.edit(
        "roles = [\"roles/logging.logWriter\", \"roles/monitoring.metricWriter\"]",
        "roles = [\"roles/logging.logWriter\"]",
    );
    let plan = ws.on(&emulator, &["plan"]).expect(0);
    assert!(
        plan.stdout.contains(
            "# iam: roles/monitoring.metricWriter on project for service_account.worker will be revoked"
        ),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("0 to create, 0 to update, 1 to destroy"),
        "{}",
        plan.stdout
    );
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert!(
        !members(
            &emulator,
            "/v3/projects/test-project",
            "roles/monitoring.metricWriter"
        )
        .contains(&"serviceAccount:worker@test-project.iam.gserviceaccount.com".to_string())
    );
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
}

#[test]
fn stackctl_never_removes_a_member_it_did_not_add() {
    let emulator = Emulator::start();
    let ws = Workspace::new(&identity_stack("foreign"));
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    let job = "/v2/projects/test-project/locations/us-central1/jobs/ingest";
    add_member(
        &emulator,
        job,
        "roles/run.invoker",
        "user:alice@example.com",
    );
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);

    // The schedule runs as another account now: stackctl revokes only the member it added.
    ws.edit(
        "service_account = \"service_account.scheduler\"",
        "service_account = \"service_account.tasks\"",
    );
    let plan = ws.on(&emulator, &["plan"]).expect(0);
    assert!(
        plan.stdout
            .contains("- iam: roles/run.invoker on job.ingest for service_account.scheduler"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("+ iam: roles/run.invoker on job.ingest for service_account.tasks"),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains("alice"), "{}", plan.stdout);
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    let invokers = members(&emulator, job, "roles/run.invoker");
    assert_eq!(
        invokers,
        vec![
            "serviceAccount:tasks-invoker@test-project.iam.gserviceaccount.com".to_string(),
            "user:alice@example.com".to_string(),
        ]
    );

    // A declared member that someone else added first is simply there: no conflict, no change,
    // and (not being in the ledger) it is left alone when it leaves stack.toml.
    let service = "/v2/projects/test-project/locations/us-central1/services/worker";
    ws.edit(
        "invokers = [\"service_account.tasks\"]",
        "invokers = [\"service_account.tasks\", \"service_account.relay\"]",
    );
    add_member(
        &emulator,
        service,
        "roles/run.invoker",
        "serviceAccount:webhook-relay@test-project.iam.gserviceaccount.com",
    );
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
    ws.edit(
        "invokers = [\"service_account.tasks\", \"service_account.relay\"]",
        "invokers = [\"service_account.tasks\"]",
    );
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
    assert!(
        members(&emulator, service, "roles/run.invoker")
            .contains(&"serviceAccount:webhook-relay@test-project.iam.gserviceaccount.com".into())
    );
}

/// Records the provider's retries.
#[derive(Default)]
struct Retries(Mutex<Vec<String>>);

impl RetryObserver for Retries {
    fn retrying(&self, _: u32, _: Duration, reason: &str) {
        self.0.lock().unwrap().push(reason.to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_policy_change_is_retried_and_both_members_survive() {
    let emulator = Emulator::start();
    let cloud = Cloud::connect(
        Endpoint::Custom {
            url: emulator.url.clone(),
        },
        "test-project",
        "us-central1",
    )
    .await
    .unwrap();
    let project = PolicyTarget::Project("projects/test-project".into());
    let role = "roles/viewer";
    let reads = AtomicU32::new(0);
    let retries = Retries::default();
    let written = cloud
        .modify_iam_policy(
            &project,
            |policy| {
                // Someone else writes the policy between our read and our write, once.
                if reads.fetch_add(1, Ordering::SeqCst) == 0 {
                    add_member(
                        &emulator,
                        "/v3/projects/test-project",
                        role,
                        "user:foreign@example.com",
                    );
                }
                policy.add(role, "user:ours@example.com");
            },
            &retries,
        )
        .await
        .unwrap();
    assert_eq!(
        reads.load(Ordering::SeqCst),
        2,
        "the whole read-modify-write ran again"
    );
    assert_eq!(
        *retries.0.lock().unwrap(),
        vec!["409 concurrent change".to_string()],
        "the etag mismatch came back as 409 ABORTED and was retried"
    );
    assert!(written.has(role, "user:foreign@example.com"));
    assert!(written.has(role, "user:ours@example.com"));
    assert_eq!(
        members(&emulator, "/v3/projects/test-project", role),
        vec!["user:foreign@example.com", "user:ours@example.com"]
    );

    // Removing ours leaves theirs.
    cloud
        .modify_iam_policy(
            &project,
            |p| p.remove(role, "user:ours@example.com"),
            &retries,
        )
        .await
        .unwrap();
    assert_eq!(
        members(&emulator, "/v3/projects/test-project", role),
        vec!["user:foreign@example.com"]
    );
}

/// `gcloud ... --format=json` against the emulator, or `None` when gcloud is not installed.
fn gcloud(emulator: &Emulator, args: &[&str]) -> Option<Value> {
    if std::process::Command::new("gcloud")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("gcloud is not installed here; skipping the gcloud reader");
        return None;
    }
    let config = tempfile::tempdir().unwrap();
    let endpoint = format!("{}/", emulator.url);
    let mut cmd = std::process::Command::new("gcloud");
    cmd.args(args)
        .arg("--format=json")
        .env("CLOUDSDK_CONFIG", config.path())
        .env("CLOUDSDK_AUTH_DISABLE_CREDENTIALS", "true")
        .env("CLOUDSDK_CORE_PROJECT", "test-project")
        .env("CLOUDSDK_CORE_DISABLE_PROMPTS", "1");
    for api in ["CLOUDSCHEDULER", "SECRETMANAGER", "IAM"] {
        cmd.env(format!("CLOUDSDK_API_ENDPOINT_OVERRIDES_{api}"), &endpoint);
    }
    let out = cmd.output().expect("run gcloud");
    assert!(
        out.status.success(),
        "gcloud {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("gcloud JSON"))
}

#[test]
fn gcloud_reads_the_schedule_the_secret_and_the_service_accounts() {
    let emulator = Emulator::start();
    let ws = Workspace::new(&identity_stack("gcloud-identity"));
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);

    let Some(schedule) = gcloud(
        &emulator,
        &[
            "scheduler",
            "jobs",
            "describe",
            "hourly",
            "--location=us-central1",
        ],
    ) else {
        return;
    };
    assert_eq!(schedule["schedule"], "0 * * * *", "{schedule}");
    assert_eq!(schedule["timeZone"], "Etc/UTC", "{schedule}");
    let target = &schedule["httpTarget"];
    assert_eq!(
        target["uri"],
        "https://run.googleapis.com/v2/projects/test-project/locations/us-central1/jobs/ingest:run",
        "{schedule}"
    );
    assert_eq!(target["httpMethod"], "POST", "{schedule}");
    assert_eq!(
        target["oauthToken"]["serviceAccountEmail"],
        "scheduler@test-project.iam.gserviceaccount.com",
        "{schedule}"
    );
    assert_eq!(
        target["oauthToken"]["scope"], "https://www.googleapis.com/auth/cloud-platform",
        "{schedule}"
    );

    let secret = gcloud(&emulator, &["secrets", "describe", "api-key"]).unwrap();
    assert_eq!(
        secret["labels"]["stackctl-stack"], "gcloud-identity",
        "{secret}"
    );
    assert!(secret["replication"]["automatic"].is_object(), "{secret}");
    let versions = gcloud(&emulator, &["secrets", "versions", "list", "api-key"]).unwrap();
    assert_eq!(versions, json!([]), "stackctl never writes a secret value");

    let account = gcloud(
        &emulator,
        &[
            "iam",
            "service-accounts",
            "describe",
            "tasks-invoker@test-project.iam.gserviceaccount.com",
        ],
    )
    .unwrap();
    assert_eq!(account["displayName"], "Cloud Tasks invoker", "{account}");
    let policy = gcloud(
        &emulator,
        &[
            "iam",
            "service-accounts",
            "get-iam-policy",
            "tasks-invoker@test-project.iam.gserviceaccount.com",
        ],
    )
    .unwrap();
    assert_eq!(
        policy["bindings"],
        json!([{
            "role": "roles/iam.serviceAccountUser",
            "members": ["serviceAccount:webhook-relay@test-project.iam.gserviceaccount.com"]
        }]),
        "{policy}"
    );
}

#[test]
fn googles_python_run_client_reads_the_job_and_the_oidc_queue() {
    let emulator = Emulator::start();
    let ws = Workspace::new(&identity_stack("python-identity"));
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    let seen: serde_json::Value = python_readback(
        "readback.py",
        &emulator,
        &["--project", "test-project", "--region", "us-central1"],
    );
    let job = &seen["jobs"]["ingest"];
    assert_eq!(job["labels"]["stackctl-stack"], "python-identity", "{job}");
    let task = &job["template"]["template"];
    assert_eq!(task["timeout"], "900s", "{job}");
    assert_eq!(task["max_retries"], 3, "{job}");
    assert_eq!(
        task["service_account"], "worker@test-project.iam.gserviceaccount.com",
        "{job}"
    );
    let container = &task["containers"][0];
    assert_eq!(
        container["image"], "us-docker.pkg.dev/cloudrun/container/job",
        "{job}"
    );
    let env = container["env"].as_array().unwrap();
    let key = env.iter().find(|e| e["name"] == "API_KEY").unwrap();
    assert_eq!(
        key["value_source"]["secret_key_ref"],
        json!({"secret": "api-key", "version": "latest"}),
        "{job}"
    );
    assert_eq!(
        seen["services"]["worker"]["template"]["service_account"],
        "worker@test-project.iam.gserviceaccount.com"
    );
    let queue = &seen["queues"]["webhooks"];
    let url = seen["services"]["worker"]["uri"].as_str().unwrap();
    assert_eq!(
        queue["http_target"]["oidc_token"],
        json!({
            "service_account_email": "tasks-invoker@test-project.iam.gserviceaccount.com",
            "audience": url
        }),
        "{queue}"
    );
}

#[test]
fn a_secret_and_a_service_account_made_by_hand_are_adopted_by_name() {
    let emulator = Emulator::start();
    let (status, body) = emulator.http(
        "POST",
        "/v1/projects/test-project/secrets?secretId=api-key",
        Some(r#"{"replication": {"automatic": {}}}"#),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = emulator.http(
        "POST",
        "/v1/projects/test-project/serviceAccounts",
        Some(r#"{"accountId": "worker", "serviceAccount": {"displayName": "Webhook worker"}}"#),
    );
    assert_eq!(status, 200, "{body}");
    let ws = Workspace::new(&identity_stack("adopter"));
    let run = ws.on(&emulator, &["plan"]).expect(1);
    assert!(
        run.stderr.contains("stackctl adopt secret.api-key")
            && run.stderr.contains("stackctl adopt service_account.worker"),
        "{}",
        run.stderr
    );
    ws.on(
        &emulator,
        &["adopt", "secret.api-key", "service_account.worker"],
    )
    .expect(0);
    let plan = ws.on(&emulator, &["plan"]).expect(0);
    assert!(
        !plan.stdout.contains("+ secret.api-key")
            && !plan.stdout.contains("+ service_account.worker"),
        "{}",
        plan.stdout
    );
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
}
