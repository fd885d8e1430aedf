//! A new user's first hour: credential errors that say what to do, plan output for people and
//! pull requests, the cost gate, init, destroy and forget.

use std::process::{Command, Stdio};

use crate::support::*;

/// Runs stackctl without any Application Default Credentials: HOME is an empty folder (no
/// gcloud file), GOOGLE_APPLICATION_CREDENTIALS is unset, and the metadata server is a closed
/// loopback port, so the probe fails at once.
fn run_without_adc(ws: &Workspace, args: &[&str], extra: &[(&str, &str)]) -> Run {
    let home = tempfile::tempdir().expect("home");
    // A port that was free a moment ago: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut cmd = Command::new(BIN);
    cmd.current_dir(ws.path())
        .args(args)
        .env("NO_COLOR", "1")
        .env("HOME", home.path())
        .env("GCE_METADATA_HOST", format!("127.0.0.1:{closed}"))
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .env_remove("CLOUDSDK_CONFIG")
        .env_remove("STACKCTL_ENDPOINT")
        .stdin(Stdio::null());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let started = std::time::Instant::now();
    let out = cmd.output().expect("run stackctl");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the credential probe took {:?}",
        started.elapsed()
    );
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    };
    assert_no_canary("stdout", &run.stdout);
    assert_no_canary("stderr", &run.stderr);
    run
}

#[test]
fn plan_without_credentials_names_missing_adc_and_both_ways_forward() {
    let ws = Workspace::example();
    let run = run_without_adc(&ws, &["plan"], &[]).expect(1);
    let err = &run.stderr;
    assert!(
        err.contains("no Application Default Credentials found"),
        "{err}"
    );
    assert!(
        err.contains("GOOGLE_APPLICATION_CREDENTIALS is not set"),
        "{err}"
    );
    assert!(
        err.contains("gcloud auth application-default login"),
        "{err}"
    );
    assert!(err.contains("--local"), "{err}");
    // The first line is ours, not google-cloud-auth's "transient errors" text.
    let first = err.lines().next().unwrap_or_default();
    assert!(!first.contains("transient"), "{err}");
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

#[test]
fn a_federation_file_whose_exchange_fails_is_named_with_its_fix() {
    let ws = Workspace::example();
    // An external_account file (what google-github-actions/auth writes) pointing at a token
    // exchange on a closed port and a subject token file that exists.
    let dir = tempfile::tempdir().expect("dir");
    let token = dir.path().join("oidc-token");
    std::fs::write(&token, "header.payload.signature").expect("token");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let file = dir.path().join("wif.json");
    std::fs::write(
        &file,
        serde_json::json!({
            "type": "external_account",
            "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/gh",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": format!("http://127.0.0.1:{closed}/v1/token"),
            "credential_source": { "file": token.display().to_string() }
        })
        .to_string(),
    )
    .expect("wif file");
    let path = file.display().to_string();
    let run = run_without_adc(
        &ws,
        &["plan"],
        &[("GOOGLE_APPLICATION_CREDENTIALS", path.as_str())],
    )
    .expect(1);
    let err = &run.stderr;
    assert!(
        err.contains(
            "workload identity federation (external_account) from GOOGLE_APPLICATION_CREDENTIALS"
        ),
        "{err}"
    );
    assert!(err.contains(&path), "{err}");
    assert!(err.contains("token exchange failed"), "{err}");
}

#[test]
fn plan_as_a_pull_request_comment_and_the_cost_gate_fail_with_exit_1() {
    let ws = Workspace::example();
    let markdown = ws
        .run(&["plan", "--local", "--format", "markdown"])
        .expect(0);
    let md = &markdown.stdout;
    assert!(md.starts_with("### stackctl plan: `shopify-ops` in project acme-shop-dev (us-central1) on the local emulator (--local)\n"), "{md}");
    assert!(
        md.contains("**Plan: 69 to create, 0 to update, 0 to destroy.** Monthly cost: $0.00 -> $41.49 (+$41.49/mo)"),
        "{md}"
    );
    assert!(md.contains("#### Create (69)\n"), "{md}");
    assert!(md.contains("- `service.worker` (+$6.86/mo)\n"), "{md}");
    // Free resources carry no cost, in the list or in the details.
    assert!(md.contains("- `api.run`\n"), "{md}");
    assert!(!md.contains("$0.00/mo -> $0.00/mo"), "{md}");
    assert!(
        md.contains("<details><summary>Field details</summary>"),
        "{md}"
    );
    assert!(
        md.lines()
            .any(|l| l.starts_with("      + max_instances ") && l.ends_with(" = 10")),
        "{md}"
    );
    assert!(md.contains("</details>"), "{md}");
    // No 700-character free-tier list in a plan: `cost -v` has it.
    assert!(!md.contains("180,000"), "{md}");
    let cost = ws.run(&["cost"]).expect(0);
    assert!(
        cost.stdout
            .contains("Free tier not included: 15 allowances; `stackctl cost -v` lists them."),
        "{}",
        cost.stdout
    );
    let cost = ws.run(&["cost", "-v"]).expect(0);
    assert!(
        cost.stdout
            .contains("Free tier not included: Cloud Run 180,000 vCPU-seconds"),
        "{}",
        cost.stdout
    );

    // The gate: the estimate after the plan ($41.49) and the increase (+$41.49).
    let over = ws.run(&["plan", "--local", "--cost-limit", "10"]).expect(1);
    assert!(
        over.stderr.contains(
            "error: the stack's monthly estimate after this plan, $41.49, exceeds --cost-limit $10.00"
        ),
        "{}",
        over.stderr
    );
    assert!(
        over.stdout.contains("+ service.worker"),
        "the plan is still shown: {}",
        over.stdout
    );
    ws.run(&[
        "plan",
        "--local",
        "--cost-limit",
        "45",
        "--detailed-exitcode",
    ])
    .expect(2);
    let refused = ws
        .run(&[
            "apply",
            "--local",
            "--auto-approve",
            "--max-monthly-increase",
            "5",
        ])
        .expect(1);
    assert!(
        refused.stderr.contains(
            "error: this plan raises the monthly estimate by $41.49 ($0.00 -> $41.49), more than --max-monthly-increase $5.00; nothing was changed"
        ),
        "{}",
        refused.stderr
    );
    assert!(
        !refused.stdout.contains("Apply complete"),
        "{}",
        refused.stdout
    );
    let unchanged = ws.run(&["plan", "--local", "--json"]).expect(0);
    let unchanged: serde_json::Value = serde_json::from_str(&unchanged.stdout).expect("plan JSON");
    assert_eq!(unchanged["changes"].as_array().map(Vec::len), Some(69));
    // A bad amount is an error naming it, exit 1 (never 2, which means changes).
    let bad = ws
        .run(&["plan", "--local", "--cost-limit", "lots"])
        .expect(1);
    assert!(
        bad.stderr.contains("`lots` is not an amount in USD"),
        "{}",
        bad.stderr
    );

    let quiet = ws
        .run(&[
            "apply",
            "--local",
            "--auto-approve",
            "--quiet",
            "--cost-limit",
            "45",
            "--max-monthly-increase",
            "45",
        ])
        .expect(0);
    // --quiet: no progress and no status lines; warnings still show.
    assert!(
        !quiet.stderr.contains(": created") && !quiet.stderr.contains("Creating the state bucket"),
        "{}",
        quiet.stderr
    );
    assert!(
        quiet.stdout.contains("Apply complete: 69 changed."),
        "{}",
        quiet.stdout
    );
    // Once applied, the increase is zero but the whole estimate still counts.
    ws.run(&["plan", "--local", "--max-monthly-increase", "0"])
        .expect(0);
    ws.run(&["plan", "--local", "--cost-limit", "33"]).expect(1);
}

#[test]
fn init_without_questions_writes_a_stack_that_applies_locally_and_never_overwrites() {
    let ws = Workspace::empty();
    // Without a terminal and without --yes, init says how to script it.
    let asked = ws.run(&["init"]).expect(1);
    assert!(
        asked.stderr.contains("--yes --project ID"),
        "{}",
        asked.stderr
    );
    let bad = ws
        .run(&["init", "--yes", "--project", "Acme", "--region", "mars"])
        .expect(1);
    assert!(
        bad.stderr.contains("nothing was written")
            && bad
                .stderr
                .contains("project \"Acme\" is not a valid GCP project id")
            && bad.stderr.contains("region \"mars\" is not a GCP region"),
        "{}",
        bad.stderr
    );
    assert!(!ws.file().exists());

    let init = ws
        .run(&[
            "init",
            "--yes",
            "--project",
            "acme-init-dev",
            "--region",
            "europe-west1",
            "--name",
            "shop",
            "--billing-account",
            "012345-6789AB-CDEF01",
        ])
        .expect(0);
    assert!(
        init.stdout.starts_with(
            "Wrote stack.toml and schemas/orders.json for stack `shop` in project acme-init-dev (europe-west1)."
        ),
        "{}",
        init.stdout
    );
    assert!(
        init.stdout
            .contains("stackctl apply --local --auto-approve"),
        "{}",
        init.stdout
    );
    assert!(
        init.stdout.contains("placeholder ops@example.com"),
        "{}",
        init.stdout
    );
    ws.run(&["validate"]).expect(0);
    let text = std::fs::read_to_string(ws.file()).expect("stack.toml");
    for stanza in [
        "[service.worker]",
        "[queue.webhooks]",
        "[job.ingest-orders]",
        "[table.orders]",
        "[channel.oncall]",
        "[alert.worker-errors]",
        "[budget.monthly]",
    ] {
        assert!(text.contains(stanza), "{stanza}: {text}");
    }

    // Never over what exists, unless --force.
    let again = ws
        .run(&[
            "init",
            "--yes",
            "--project",
            "acme-other",
            "--template",
            "webhooks",
        ])
        .expect(1);
    assert!(
        again.stderr.contains("stack.toml already exists") && again.stderr.contains("--force"),
        "{}",
        again.stderr
    );
    assert_eq!(
        std::fs::read_to_string(ws.file()).expect("stack.toml"),
        text
    );

    let applied = ws.run(&["apply", "--local", "--auto-approve"]).expect(0);
    assert!(
        applied.stdout.contains("Apply complete:"),
        "{}",
        applied.stdout
    );
    ws.run(&["plan", "--local", "--detailed-exitcode"])
        .expect(0);
    ws.run(&["audit", "--local"]).expect(0);

    // destroy: a dataset with deletion_protection = true is refused, whatever the flags.
    let all = [
        "destroy",
        "--local",
        "--auto-approve",
        "--allow-data-loss",
        "--allow-queue-delete",
    ];
    let protected = ws.run(&all).expect(1);
    assert!(
        protected.stderr.contains("dataset.shopify")
            && protected.stderr.contains("deletion_protection = true"),
        "{}",
        protected.stderr
    );
    ws.run(&["plan", "--local", "--detailed-exitcode"])
        .expect(0);
    ws.edit("deletion_protection = true ", "deletion_protection = false");
    ws.run(&["apply", "--local", "--auto-approve"]).expect(0);
    let kept = ws
        .run(&[all.as_slice(), &["--keep-state"]].concat())
        .expect(0);
    assert!(kept.stdout.contains("Destroy complete:"), "{}", kept.stdout);
    assert!(
        kept.stderr.contains("is kept (--keep-state)"),
        "{}",
        kept.stderr
    );
    // Nothing is owned any more: apply creates it all again.
    let again = ws.run(&["plan", "--local", "--json"]).expect(0);
    let again: serde_json::Value = serde_json::from_str(&again.stdout).expect("plan JSON");
    assert!(
        again["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .all(|c| c["action"] == "create"),
        "{again}"
    );

    // --force replaces it; a template leaves out what it does not need.
    ws.run(&[
        "init",
        "--yes",
        "--force",
        "--project",
        "acme-init-dev",
        "--template",
        "webhooks",
    ])
    .expect(0);
    let text = std::fs::read_to_string(ws.file()).expect("stack.toml");
    assert!(
        text.contains("[service.worker]") && !text.contains("[table.orders]"),
        "{text}"
    );
    assert!(
        !text.contains("[budget."),
        "no billing account, no budget: {text}"
    );
}

#[test]
fn the_init_wizard_asks_on_a_terminal_and_its_stack_applies_locally() {
    let ws = Workspace::empty();
    let (code, screen) = in_terminal(
        ws.path(),
        &[
            ("Google Cloud project id", "acme-wizard\\r"),
            ("Region", "europe-west1\\r"),
            ("Stack name", "wizard-shop\\r"),
            // Down to ingestion, untick it, accept.
            ("Which parts?", "\\x1b[B \\r"),
            ("Alert email", "oncall@acme.test\\r"),
            ("Billing account", "\\r"),
        ],
        &["init"],
    );
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains(
            "Wrote stack.toml for stack `wizard-shop` in project acme-wizard (europe-west1)."
        ),
        "{screen}"
    );
    let text = std::fs::read_to_string(ws.file()).expect("stack.toml");
    assert!(text.contains("project = \"acme-wizard\""), "{text}");
    assert!(text.contains("email = \"oncall@acme.test\"\n"), "{text}");
    assert!(
        text.contains("[queue.webhooks]") && text.contains("[alert.worker-errors]"),
        "{text}"
    );
    assert!(
        !text.contains("[job.") && !text.contains("[budget."),
        "{text}"
    );
    assert!(
        !ws.path().join("schemas").exists(),
        "no table, no schema file"
    );
    ws.run(&["apply", "--local", "--auto-approve"]).expect(0);
    ws.run(&["plan", "--local", "--detailed-exitcode"])
        .expect(0);
}

/// `POST`s `body` to the emulator as a person with gcloud would, expecting 200.
fn make_by_hand(emulator: &Emulator, path: &str, body: &str) {
    let (status, reply) = emulator.http("POST", path, Some(body));
    assert_eq!(status, 200, "{path}: {reply}");
}

fn exists(emulator: &Emulator, path: &str) -> bool {
    emulator.http("GET", path, None).0 == 200
}

#[test]
fn destroy_leaves_nothing_owned_and_an_unowned_look_alike_untouched() {
    let emulator = Emulator::start();
    let ws = Workspace::empty();
    ws.run(&[
        "init",
        "--yes",
        "--project",
        "acme-destroy",
        "--name",
        "shop",
        "--template",
        "webhooks",
    ])
    .expect(0);
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    // Look-alikes made by hand beside the stack's own: never the stack's to delete.
    let project = "/v1/projects/acme-destroy";
    let queues = "/v2/projects/acme-destroy/locations/us-central1/queues";
    make_by_hand(
        &emulator,
        &format!("{project}/secrets?secretId=shopify-api-secret-copy"),
        r#"{"replication":{"automatic":{}}}"#,
    );
    make_by_hand(
        &emulator,
        &format!("{project}/serviceAccounts"),
        r#"{"accountId":"worker-copy"}"#,
    );
    make_by_hand(
        &emulator,
        queues,
        r#"{"name":"projects/acme-destroy/locations/us-central1/queues/webhooks-copy"}"#,
    );

    // Without a terminal it needs --auto-approve; the secret's versions need --allow-data-loss.
    let asked = ws
        .on(
            &emulator,
            &["destroy", "--allow-data-loss", "--allow-queue-delete"],
        )
        .expect(1);
    assert!(asked.stderr.contains("--auto-approve"), "{}", asked.stderr);
    let refused = ws.on(&emulator, &["destroy", "--auto-approve"]).expect(1);
    assert!(
        refused
            .stderr
            .contains("refusing to apply a plan that drops data; nothing was changed")
            && refused.stderr.contains("secret.shopify-api-secret"),
        "{}",
        refused.stderr
    );

    // On a terminal: the stack's name, typed; anything else changes nothing.
    let typed = |answer: &str| {
        in_terminal(
            ws.path(),
            &[("Type the stack name", answer)],
            &[
                "destroy",
                "--allow-data-loss",
                "--allow-queue-delete",
                "--endpoint",
                &emulator.url,
            ],
        )
    };
    let (code, screen) = typed("yes\\r");
    assert_eq!(code, 1, "{screen}");
    assert!(
        screen.contains("cancelled: nothing was changed"),
        "{screen}"
    );
    assert!(exists(&emulator, &format!("{queues}/webhooks")));
    let (code, screen) = typed("shop\\r");
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("- iam: roles/run.invoker on service.worker for service_account.tasks"),
        "{screen}"
    );
    assert!(screen.contains("Destroy complete:"), "{screen}");
    assert!(screen.contains("Removed the ownership ledger"), "{screen}");

    // Nothing is owned any more: the stack plans every resource as a create again, and the
    // APIs stay enabled (none is planned).
    let plan = ws.on(&emulator, &["plan", "--json"]).expect(0);
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).expect("plan JSON");
    let changes = plan["changes"].as_array().expect("changes");
    assert!(!changes.is_empty());
    for change in changes {
        assert_eq!(change["action"], "create", "{change}");
        assert_ne!(
            change["address"].as_str().map(|a| a.starts_with("api.")),
            Some(true),
            "{change}"
        );
    }
    for gone in [
        format!("{queues}/webhooks"),
        format!("{project}/secrets/shopify-api-secret"),
        format!("{project}/serviceAccounts/tasks-invoker@acme-destroy.iam.gserviceaccount.com"),
    ] {
        assert!(!exists(&emulator, &gone), "{gone} is left");
    }
    for untouched in [
        format!("{queues}/webhooks-copy"),
        format!("{project}/secrets/shopify-api-secret-copy"),
        format!("{project}/serviceAccounts/worker-copy@acme-destroy.iam.gserviceaccount.com"),
    ] {
        assert!(exists(&emulator, &untouched), "{untouched} was touched");
    }
    // Again: nothing to destroy.
    let again = ws.on(&emulator, &["destroy", "--auto-approve"]).expect(0);
    assert!(again.stdout.starts_with("No changes."), "{}", again.stdout);
}

#[test]
fn forget_drops_ledger_records_and_leaves_the_resources_as_they_are() {
    let emulator = Emulator::start();
    let ws = Workspace::new(&format!(
        "{}\n[service_account.tasks]\nid = \"tasks-invoker\"\n",
        basic_stack("forget")
    ));
    ws.edit(
        "timeout = \"60s\"",
        "timeout = \"60s\"\ninvokers = [\"service_account.tasks\"]",
    );
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    let grant = "iam: roles/run.invoker on service.worker for service_account.tasks";

    // What forget cannot drop is refused, and nothing is written.
    let labelled = ws.on(&emulator, &["forget", "service.worker"]).expect(1);
    assert!(
        labelled
            .stderr
            .contains("remove the label stackctl-stack by hand"),
        "{}",
        labelled.stderr
    );
    let api = ws.on(&emulator, &["forget", "api.run"]).expect(1);
    assert!(api.stderr.contains("nothing to forget"), "{}", api.stderr);
    let unknown = ws
        .on(&emulator, &["forget", "queue.webhooks", "queue.other"])
        .expect(1);
    assert!(
        unknown
            .stderr
            .contains("queue.other is not in this stack's ownership ledger"),
        "{}",
        unknown.stderr
    );

    let forgot = ws
        .on(&emulator, &["forget", "queue.webhooks", grant])
        .expect(0);
    assert!(
        forgot.stdout.contains(
            "Forgot queue.webhooks (projects/test-project/locations/us-central1/queues/webhooks)"
        ) && forgot.stdout.contains(&format!("Forgot {grant}")),
        "{}",
        forgot.stdout
    );
    // Out of stack.toml, neither is paused, deleted or revoked: they are not the stack's.
    let text = std::fs::read_to_string(ws.file()).expect("stack.toml");
    let without_queue = text
        .split("[queue.webhooks]")
        .next()
        .expect("before the queue");
    let rest = text
        .split("min_backoff = \"1s\"\n")
        .nth(1)
        .expect("after the queue");
    ws.write(&format!("{without_queue}{rest}"));
    ws.edit("invokers = [\"service_account.tasks\"]", "");
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
    let (status, queue) = emulator.http(
        "GET",
        "/v2/projects/test-project/locations/us-central1/queues/webhooks",
        None,
    );
    assert_eq!(status, 200, "{queue}");
    assert!(queue.contains("RUNNING"), "{queue}");
    // Declared again, it is somebody else's until adopted.
    ws.write(&text);
    let refused = ws.on(&emulator, &["plan"]).expect(1);
    assert!(
        refused.stderr.contains("stackctl adopt queue.webhooks"),
        "{}",
        refused.stderr
    );
}

#[test]
fn doctor_reports_what_an_apply_needs_and_the_permission_the_caller_lacks() {
    let emulator = Emulator::start_with(&[(
        "STACKCTL_EMULATOR_DENIED_PERMISSIONS",
        "run.services.create,cloudtasks.queues.create",
    )]);
    let ws = Workspace::new(&basic_stack("doctor"));
    let run = ws.on(&emulator, &["doctor"]).expect(1);
    let out = &run.stdout;
    assert!(
        out.contains("ok    credentials: none needed: anonymous calls to the endpoint"),
        "{out}"
    );
    assert!(out.contains("ok    project: test-project ("), "{out}");
    assert!(
        out.contains("warn  APIs: not enabled yet: ") && out.contains("run.googleapis.com"),
        "{out}"
    );
    assert!(
        out.contains(
            "FAIL  permissions: the caller lacks run.services.create (in roles/run.admin); cloudtasks.queues.create (in roles/cloudtasks.queueAdmin)"
        ),
        "{out}"
    );
    assert!(
        out.contains("fix: gcloud projects add-iam-policy-binding test-project --member=user:YOU@example.com --role=roles/run.admin"),
        "{out}"
    );
    assert!(out.ends_with("1 check failed.\n"), "{out}");

    // Applied by a caller that may, the stack's APIs are on; with every permission, all pass.
    let ws = Workspace::new(&basic_stack("doctor"));
    let emulator = Emulator::start();
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    let run = ws.on(&emulator, &["doctor"]).expect(0);
    assert!(
        run.stdout.contains("ok    APIs: all ") && run.stdout.ends_with("All checks passed.\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("ok    resource permissions: the caller holds what apply uses on each of the 2 of the stack's"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("ok    billing: test-project is billed to 000000-000000-000000"),
        "{}",
        run.stdout
    );

    // A stack that names another billing account is warned: its budgets would miss this spend.
    let elsewhere = basic_stack("doctor").replace(
        "region = \"us-central1\"",
        "region = \"us-central1\"\nbilling_account = \"0A0A0A-0A0A0A-0A0A0A\"",
    );
    let run = Workspace::new(&elsewhere)
        .on(&emulator, &["doctor"])
        .expect(0);
    assert!(
        run.stdout.contains("warn  billing: test-project is billed to 000000-000000-000000, but [stack] billing_account is 0A0A0A-0A0A0A-0A0A0A"),
        "{}",
        run.stdout
    );

    // Unlinked (as `gcloud billing projects unlink` leaves it), nothing billable can be created.
    let (status, body) = http(
        &emulator.addr(),
        "PUT",
        "/v1/projects/test-project/billingInfo",
        Some(r#"{"billingAccountName": ""}"#),
    );
    assert_eq!(status, 200, "{body}");
    let run = ws.on(&emulator, &["doctor"]).expect(1);
    assert!(
        run.stdout
            .contains("FAIL  billing: test-project is not linked to a billing account")
            && run
                .stdout
                .contains("fix: gcloud billing projects link test-project --billing-account="),
        "{}",
        run.stdout
    );
}

#[test]
fn doctor_tests_each_existing_resource_and_names_the_grant_on_it_that_is_missing() {
    // Denied on the queue and the service only (a deny policy there, say): the project grants it.
    let queue = "projects/test-project/locations/us-central1/queues/webhooks";
    let service = "projects/test-project/locations/us-central1/services/worker";
    let emulator = Emulator::start_with(&[(
        "STACKCTL_EMULATOR_DENIED_PERMISSIONS",
        &format!("cloudtasks.queues.update@{queue},run.services.setIamPolicy@{service}"),
    )]);
    let ws = Workspace::new(&basic_stack("doctor-resources"));
    let run = ws.on(&emulator, &["doctor"]).expect(0);
    assert!(
        run.stdout.contains(
            "ok    resource permissions: none of the stack's queues, services, jobs, secrets or repositories exists yet"
        ),
        "{}",
        run.stdout
    );

    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    let run = ws.on(&emulator, &["doctor"]).expect(1);
    let out = &run.stdout;
    assert!(
        out.contains("ok    permissions: the caller holds all "),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "FAIL  resource permissions: on queue.webhooks ({queue}) the caller lacks cloudtasks.queues.update (in roles/cloudtasks.queueAdmin)\n        \
             fix: gcloud tasks queues add-iam-policy-binding webhooks --location=us-central1 --project=test-project --member=user:YOU@example.com --role=roles/cloudtasks.queueAdmin\n"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "FAIL  resource permissions: on service.worker ({service}) the caller lacks run.services.setIamPolicy (in roles/run.admin)\n        \
             fix: gcloud run services add-iam-policy-binding worker --region=us-central1 --project=test-project --member=user:YOU@example.com --role=roles/run.admin\n"
        )),
        "{out}"
    );
    assert!(out.ends_with("2 checks failed.\n"), "{out}");

    // Denied everywhere (not granted on the project), the gap is the project's: said once there,
    // with the project grant, not again for each resource that inherits it.
    let emulator = Emulator::start_with(&[(
        "STACKCTL_EMULATOR_DENIED_PERMISSIONS",
        "cloudtasks.queues.update",
    )]);
    let ws = Workspace::new(&basic_stack("doctor-everywhere"));
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    let out = ws.on(&emulator, &["doctor"]).expect(1).stdout;
    assert!(
        out.contains(
            "FAIL  permissions: the caller lacks cloudtasks.queues.update (in roles/cloudtasks.queueAdmin)"
        ) && !out.contains("FAIL  resource permissions"),
        "{out}"
    );
    assert!(out.ends_with("1 check failed.\n"), "{out}");
}

#[test]
fn doctor_without_credentials_names_the_source_and_the_fix() {
    let ws = Workspace::example();
    let run = run_without_adc(&ws, &["doctor"], &[]).expect(1);
    assert!(
        run.stdout
            .contains("FAIL  credentials: no Application Default Credentials found")
            && run.stdout.contains("gcloud auth application-default login"),
        "{}",
        run.stdout
    );
}

/// A stand-in for the token sources CI uses, serving loopback HTTP: the GCE metadata server
/// (`/computeMetadata/v1/...`) and a Security Token Service exchange (`POST /v1/token`, as an
/// `external_account` file's `token_url` names it). Both hand out `token`; every request line
/// and body is recorded.
struct FakeTokenSource {
    addr: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FakeTokenSource {
    fn start(token: &str) -> Self {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (token, log) = (token.to_string(), std::sync::Arc::clone(&seen));
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut length = 0;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("")
                    .to_string();
                log.lock().unwrap().push(format!(
                    "{} {}",
                    request_line.trim(),
                    String::from_utf8_lossy(&body)
                ));
                let (content_type, answer) = if path.ends_with("/universe/universe-domain") {
                    ("text/plain", "googleapis.com".to_string())
                } else if path.contains("/service-accounts/default/token") || path == "/v1/token" {
                    (
                        "application/json",
                        serde_json::json!({
                            "access_token": token,
                            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                            "token_type": "Bearer",
                            "expires_in": 3600
                        })
                        .to_string(),
                    )
                } else {
                    ("text/plain", String::new())
                };
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nMetadata-Flavor: Google\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            }
        });
        Self { addr, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// The API calls the emulator served, with the identity each carried.
fn callers(emulator: &Emulator) -> Vec<Option<String>> {
    let (_, log) = emulator.http("GET", "/_emulator/requests", None);
    let log: serde_json::Value = serde_json::from_str(&log).expect("request log");
    log.as_array()
        .expect("a list")
        .iter()
        .map(|r| r["caller"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn ci_credentials_reach_the_api_offline_from_the_metadata_server_and_from_a_federation_file() {
    let emulator = Emulator::start();
    let deployer = "ci-deployer@acme-shop-dev.iam.gserviceaccount.com";
    let (_, token) = emulator.http(
        "GET",
        &format!("/_emulator/access-token?email={deployer}"),
        None,
    );
    let source = FakeTokenSource::start(&token);
    let ws = Workspace::example();
    let endpoint_with_adc = [
        ("STACKCTL_ENDPOINT", emulator.url.as_str()),
        ("STACKCTL_ENDPOINT_CREDENTIALS", "adc"),
    ];

    // On a runner with a metadata server (Cloud Build, GCE): ADC asks it for a token.
    emulator.http("DELETE", "/_emulator/requests", None);
    let home = tempfile::tempdir().expect("home");
    let run = Command::new(BIN)
        .current_dir(ws.path())
        .args(["plan", "--detailed-exitcode"])
        .env("NO_COLOR", "1")
        .env("HOME", home.path())
        .env("GCE_METADATA_HOST", &source.addr)
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .env_remove("CLOUDSDK_CONFIG")
        .envs(endpoint_with_adc)
        .output()
        .expect("plan");
    assert_eq!(
        run.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        source
            .seen()
            .iter()
            .any(|r| r
                .starts_with("GET /computeMetadata/v1/instance/service-accounts/default/token")),
        "{:?}",
        source.seen()
    );
    let served = callers(&emulator);
    assert!(
        !served.is_empty() && served.iter().all(|c| c.as_deref() == Some(deployer)),
        "every API call carried the metadata server's token: {served:?}"
    );

    // On GitHub Actions: google-github-actions/auth writes an external_account file; ADC
    // exchanges the runner's OIDC token for an access token at the file's token_url.
    emulator.http("DELETE", "/_emulator/requests", None);
    let dir = tempfile::tempdir().expect("dir");
    let subject = dir.path().join("github-oidc-token");
    std::fs::write(&subject, "gh.oidc.token").expect("subject token");
    let file = dir.path().join("wif.json");
    std::fs::write(
        &file,
        serde_json::json!({
            "type": "external_account",
            "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/github/providers/acme",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": format!("http://{}/v1/token", source.addr),
            "credential_source": { "file": subject.display().to_string() }
        })
        .to_string(),
    )
    .expect("wif file");
    let path = file.display().to_string();
    let run = run_without_adc(
        &ws,
        &["plan", "--detailed-exitcode"],
        &[
            ("GOOGLE_APPLICATION_CREDENTIALS", path.as_str()),
            endpoint_with_adc[0],
            endpoint_with_adc[1],
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    let exchange = source
        .seen()
        .into_iter()
        .find(|r| r.starts_with("POST /v1/token"))
        .expect("a token exchange");
    assert!(
        exchange.contains("subject_token=gh.oidc.token")
            && exchange.contains("token-exchange")
            && exchange.contains("workloadIdentityPools"),
        "{exchange}"
    );
    let served = callers(&emulator);
    assert!(
        !served.is_empty() && served.iter().all(|c| c.as_deref() == Some(deployer)),
        "every API call carried the exchanged token: {served:?}"
    );
}
