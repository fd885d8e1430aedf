//! The CLI as a user meets it: --local, plan/apply, exit codes, saved plans, prompts.

use crate::support::*;

#[test]
fn readme_tour_apply_local_then_plan_is_empty_then_one_field_shows() {
    let ws = Workspace::example();
    let first = ws.run(&["apply", "--local", "--auto-approve"]).expect(0);
    assert!(
        first.stdout.contains("+ service.worker"),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains("+ queue.webhooks"),
        "{}",
        first.stdout
    );
    // The seed architecture's identity and wiring: 4 service accounts, a secret, the worker,
    // the queue, a job and its hourly schedule, the grants (dataEditor on the table the job
    // writes among them) and the APIs they need.
    for created in [
        "+ service_account.tasks",
        "+ secret.shopify-api-secret",
        "+ job.ingest-orders",
        "+ schedule.ingest-orders-hourly",
        "+ api.run",
        "+ iam: roles/run.invoker on service.worker for service_account.tasks",
        "+ iam: roles/cloudtasks.enqueuer on queue.webhooks for service_account.relay",
        "+ iam: roles/iam.serviceAccountUser on service_account.tasks for service_account.relay",
        "+ iam: roles/secretmanager.secretAccessor on secret.shopify-api-secret for service_account.worker",
        "+ iam: roles/run.invoker on job.ingest-orders for service_account.scheduler",
        "+ iam: roles/logging.logWriter on project for service_account.worker",
        "+ iam: roles/bigquery.dataEditor on table.orders for service_account.ingest",
        "+ iam: roles/run.invoker on service.crm-proxy for service_account.worker",
    ] {
        assert!(
            first.stdout.contains(created),
            "{created}: {}",
            first.stdout
        );
    }
    assert!(
        first.stdout.contains("Apply complete: 69 changed."),
        "{}",
        first.stdout
    );
    // Progress goes to stderr, one line per resource event (no terminal here).
    assert!(
        first.stderr.contains("service.worker: created"),
        "{}",
        first.stderr
    );
    assert!(
        first.stderr.contains("queue.webhooks: created"),
        "{}",
        first.stderr
    );
    assert!(ws.path().join(".stackctl/local").is_dir());

    // A new process sees the same cloud: nothing an apply could do. The Slack channel waits
    // for its token, which only you can give.
    let again = ws
        .run(&["plan", "--local", "--detailed-exitcode"])
        .expect(0);
    assert!(again.stdout.starts_with("No changes."), "{}", again.stdout);
    assert!(
        again.stdout.contains(
            "… channel.slack: its auth_token comes from secret.slack-token, which has no value yet"
        ),
        "{}",
        again.stdout
    );
    // Given the token, apply makes the channel and adds it to the alerts that notify it.
    set_secret_local(&ws, "slack-token", SECRET_CANARY);
    let slack = ws.run(&["apply", "--local", "--auto-approve"]).expect(0);
    for line in [
        "+ channel.slack",
        "~ alert.relay-down",
        "~ alert.worker-errors",
        "Apply complete: 3 changed.",
    ] {
        assert!(slack.stdout.contains(line), "{line}: {}", slack.stdout);
    }
    let settled = ws
        .run(&["plan", "--local", "--detailed-exitcode"])
        .expect(0);
    assert!(
        !settled.stdout.contains("Waiting for you"),
        "{}",
        settled.stdout
    );
    ws.run(&["apply", "--local", "--auto-approve"]).expect(0);
    // Minutes old, nothing in it has been idle for a window yet: audit finds no waste.
    let audit = ws.run(&["audit", "--local", "--fail-on", "low"]).expect(0);
    assert!(
        audit
            .stdout
            .starts_with("No findings in project acme-shop-dev"),
        "{}",
        audit.stdout
    );

    ws.edit("max_instances = 10", "max_instances = 20");
    let changed = ws
        .run(&["plan", "--local", "--detailed-exitcode"])
        .expect(2);
    assert_eq!(
        field_lines(&changed.stdout),
        vec!["~ max_instances = 10 -> 20"],
        "{}",
        changed.stdout
    );
    insta::assert_snapshot!("tour_one_field_plan", changed.stdout);
}

#[test]
fn plan_shows_monthly_cost_per_resource_and_in_total_and_json_carries_it() {
    let ws = Workspace::example();
    let plan = ws.run(&["plan", "--local"]).expect(0);
    // Hand-computed for the example's [usage] (see src/cost/mod.rs tests).
    assert!(
        plan.stdout
            .contains("# cost: $0.00/mo -> $6.86/mo (+$6.86/mo)"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("# cost: $0.00/mo -> $1.60/mo (+$1.60/mo)"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("# cost: $0.00/mo -> $1.23/mo (+$1.23/mo)"),
        "the scheduled job is priced from its cron: {}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains(
            "Monthly cost: $0.00 -> $41.49 (+$41.49/mo); free tier not included, see `stackctl cost -v`.\n"
        ),
        "{}",
        plan.stdout
    );
    let json = ws.run(&["plan", "--local", "--json"]).expect(0);
    let plan: serde_json::Value = serde_json::from_str(&json.stdout).expect("plan JSON");
    assert_eq!(plan["cost"]["past_total_monthly_usd"], 0.0);
    // 6.86 worker + 2.82 relay + 13.96 Firestore + 1.60 queue + 3.525 orders table + 0.20 repository + 2 x 1.50 alerts
    // + 0.10 scheduler job + the job's 720 hourly runs of 90 s (1 vCPU, 0.5 GiB) at the
    // instance rates: 64,800 x $0.000018 + 32,400 x $0.000002 = 1.2312. Nothing is unknown.
    assert_eq!(plan["cost"]["total_monthly_usd"], 41.4912);
    assert_eq!(plan["cost"]["diff_monthly_usd"], 41.4912);
    assert_eq!(plan["cost"]["unknown"], serde_json::json!([]));
    assert_eq!(plan["cost"]["basis"]["currency"], "USD");
    let worker = plan["changes"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["address"] == "service.worker"))
        .expect("service.worker in the plan");
    assert_eq!(worker["cost"]["after"]["monthly_usd"], 6.86);
    assert_eq!(
        worker["cost"]["after"]["lines"][0]["component"],
        "active_cpu"
    );
    assert_eq!(worker["cost"]["after"]["lines"][0]["quantity"], 240000.0);
    assert_eq!(worker["cost"]["delta_monthly_usd"], 6.86);

    // Without [usage], the usage cost is named unknown, not $0.
    let without = EXAMPLE_STACK.split("[usage]").next().expect("example");
    ws.write(without);
    let plan = ws.run(&["plan", "--local"]).expect(0);
    assert!(
        plan.stdout.contains(
            "# cost: $0.00/mo -> $0.00/mo + unknown (+$0.00/mo); usage cost unknown: no [usage] for service.worker"
        ),
        "{}",
        plan.stdout
    );
    let cost = ws.run(&["cost", "--json"]).expect(0);
    let cost: serde_json::Value = serde_json::from_str(&cost.stdout).expect("cost JSON");
    assert_eq!(
        cost["unknown"],
        serde_json::json!([
            "no [usage] for firestore.default",
            "no [usage] for gateway.crm",
            "no [usage] for job.ingest-orders",
            "no [usage] for queue.webhooks",
            "no [usage] for repository.workers",
            "no [usage] for service.crm-proxy",
            "no [usage] for service.relay",
            "no [usage] for service.worker",
            "no [usage] for table.orders"
        ])
    );
}

#[test]
fn apply_without_a_terminal_or_auto_approve_refuses_and_changes_nothing() {
    let emulator = Emulator::start();
    let ws = Workspace::new(&basic_stack("refuse"));
    let run = ws.on(&emulator, &["apply"]).expect(1);
    assert!(run.stderr.contains("--auto-approve"), "{}", run.stderr);
    let plan = ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(2);
    // The service, the queue, and the four APIs they need (Run, Tasks, Storage, Resource Manager).
    assert!(plan.stdout.contains("6 to create"), "{}", plan.stdout);
}

#[test]
fn local_and_endpoint_together_is_an_error() {
    let ws = Workspace::new(&basic_stack("both"));
    let run = ws
        .run(&["plan", "--local", "--endpoint", "http://127.0.0.1:9"])
        .expect(1);
    assert!(run.stderr.contains("mutually exclusive"), "{}", run.stderr);
}

#[test]
fn config_errors_name_file_line_column_and_exit_1() {
    let ws = Workspace::new(&basic_stack("bad").replace("max_instances = 5", "max_instance = 5"));
    let run = ws.run(&["plan", "--local"]).expect(1);
    assert!(
        run.stderr.contains("unknown key `max_instance`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("stack.toml:8:1"), "{}", run.stderr);
    assert!(
        run.stderr.contains("did you mean `max_instances`?"),
        "{}",
        run.stderr
    );
    assert!(
        !ws.path().join(".stackctl").exists(),
        "nothing was started for an invalid stack"
    );
}

#[test]
fn json_plan_renders_the_same_plan() {
    let emulator = Emulator::start();
    let ws = Workspace::new(&basic_stack("json"));
    let run = ws.on(&emulator, &["plan", "--json"]).expect(0);
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).expect("plan JSON on stdout");
    let changes = plan["changes"].as_array().unwrap();
    let actions: Vec<_> = changes
        .iter()
        .map(|c| {
            (
                c["address"].as_str().unwrap(),
                c["action"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("service.worker", "create"),
            ("queue.webhooks", "create"),
            ("api.cloudresourcemanager", "create"),
            ("api.cloudtasks", "create"),
            ("api.run", "create"),
            ("api.storage", "create"),
        ]
    );
    assert_eq!(plan["target"]["endpoint"]["kind"], "custom");
}

#[test]
fn saved_plan_applies_exactly_and_is_refused_when_stale() {
    let emulator = Emulator::start();
    let ws = Workspace::new(&basic_stack("saved"));
    ws.on(&emulator, &["plan", "--out", "create.json"])
        .expect(0);
    // Applying a saved plan needs no prompt: the plan is what was reviewed.
    ws.on(&emulator, &["apply", "create.json"]).expect(0);
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);

    ws.edit("max_instances = 5", "max_instances = 6");
    ws.on(&emulator, &["plan", "--out", "update.json"])
        .expect(0);
    // Someone changes the service after the plan was saved.
    ws.edit("max_instances = 6", "max_instances = 7");
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    let stale = ws.on(&emulator, &["apply", "update.json"]).expect(1);
    assert!(
        stale.stderr.contains("stale") && stale.stderr.contains("service.worker changed"),
        "{}",
        stale.stderr
    );
    let plan = ws.on(&emulator, &["plan"]).expect(0);
    assert!(
        plan.stdout.starts_with("No changes."),
        "the stale plan applied nothing: {}",
        plan.stdout
    );
}

#[test]
fn a_local_plan_cannot_be_applied_to_another_target() {
    let emulator = Emulator::start();
    let ws = Workspace::new(&basic_stack("target"));
    ws.run(&["plan", "--local", "--out", "local.json"])
        .expect(0);
    let run = ws.on(&emulator, &["apply", "local.json"]).expect(1);
    assert!(run.stderr.contains("cannot be applied"), "{}", run.stderr);
}

#[test]
fn removed_queue_is_paused_not_deleted_then_resumed_when_readded() {
    let emulator = Emulator::start();
    let stack = basic_stack("retire");
    let ws = Workspace::new(&stack);
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);

    let without_queue = stack.split("[queue.webhooks]").next().unwrap().to_string();
    ws.write(&without_queue);
    let plan = ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(2);
    assert_eq!(
        field_lines(&plan.stdout),
        vec![r#"~ state = "RUNNING" -> "PAUSED""#],
        "{}",
        plan.stdout
    );
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);

    ws.write(&stack);
    let plan = ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(2);
    assert_eq!(
        field_lines(&plan.stdout),
        vec![r#"~ state = "PAUSED" -> "RUNNING""#],
        "{}",
        plan.stdout
    );
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);

    ws.write(&without_queue);
    let plan = ws
        .on(&emulator, &["plan", "--allow-queue-delete"])
        .expect(0);
    assert!(plan.stdout.contains("- queue.webhooks"), "{}", plan.stdout);
    ws.on(
        &emulator,
        &["apply", "--auto-approve", "--allow-queue-delete"],
    )
    .expect(0);
    ws.on(
        &emulator,
        &["plan", "--detailed-exitcode", "--allow-queue-delete"],
    )
    .expect(0);
    let (status, _) = emulator.http(
        "GET",
        "/v2/projects/test-project/locations/us-central1/queues/webhooks",
        None,
    );
    assert_eq!(status, 404);
}

#[test]
fn every_declared_field_converges_and_a_change_shows_exactly_that_field() {
    let emulator = Emulator::start();
    let ws = Workspace::new(&basic_stack("converge"));
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    // Each edit, and the field lines the plan must show: exactly those (the queue's
    // max_concurrent_dispatches follows the worker's max_instances x concurrency).
    let edits: &[(&str, &str, &[&str])] = &[
        (
            "max_instances = 5",
            "max_instances = 4",
            &[
                "~ max_instances = 5 -> 4",
                "~ max_concurrent_dispatches = 400 -> 320",
            ],
        ),
        (
            "timeout = \"60s\"",
            "timeout = \"90s\"",
            &[r#"~ timeout = "1m" -> "1m30s""#],
        ),
        (
            "RUST_LOG = \"info\"",
            "RUST_LOG = \"debug\"",
            &[r#"~ env.RUST_LOG = "info" -> "debug""#],
        ),
        (
            "max_instances = 4",
            "max_instances = 4\nmemory = \"1Gi\"",
            &[r#"~ memory = "512Mi" -> "1Gi""#],
        ),
        (
            "max_instances = 4",
            "max_instances = 4\ncpu_idle = false",
            &["~ cpu_idle = true -> false"],
        ),
        (
            "max_instances = 4",
            "max_instances = 4\nmin_instances = 1",
            &["~ min_instances = 0 -> 1"],
        ),
        (
            "max_instances = 4",
            "max_instances = 4\nconcurrency = 40",
            &[
                "~ concurrency = 80 -> 40",
                "~ max_concurrent_dispatches = 320 -> 160",
            ],
        ),
        (
            "max_instances = 4",
            "max_instances = 4\ningress = \"internal\"",
            &[r#"~ ingress = "all" -> "internal""#],
        ),
        (
            "max_attempts = 10",
            "max_attempts = 3",
            &["~ max_attempts = 10 -> 3"],
        ),
        (
            "min_backoff = \"1s\"",
            "min_backoff = \"0.5s\"",
            &[r#"~ min_backoff = "1s" -> "0.5s""#],
        ),
        (
            "path = \"/tasks/webhook\"",
            "path = \"/tasks/v2\"",
            &["~ target = "],
        ),
        (
            "max_attempts = 3",
            "max_attempts = 3\nmax_dispatches_per_second = 20",
            &["~ max_dispatches_per_second = 500 -> 20"],
        ),
    ];
    for (from, to, expected) in edits {
        ws.edit(from, to);
        let plan = ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(2);
        let lines = field_lines(&plan.stdout);
        assert_eq!(
            lines.len(),
            expected.len(),
            "editing {from:?} -> {to:?} should change exactly {expected:?}:\n{}",
            plan.stdout
        );
        for (line, want) in lines.iter().zip(expected.iter()) {
            assert!(
                line.starts_with(want),
                "editing {from:?}: got {line:?}, want {want:?}\n{}",
                plan.stdout
            );
        }
        ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
        let after = ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
        assert!(
            after.stdout.starts_with("No changes."),
            "after applying {to:?}: {}",
            after.stdout
        );
    }
}

#[test]
fn observing_uses_one_list_call_per_kind_not_a_get_per_resource() {
    let emulator = Emulator::start();
    let ws = Workspace::new(&basic_stack("lists"));
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    emulator.clear_requests();
    ws.on(&emulator, &["plan"]).expect(0);
    let mut calls = emulator.requests();
    calls.sort();
    let lists = [
        "/v1/projects/test-project/locations/us-central1/jobs", // Cloud Scheduler
        "/v1/projects/test-project/secrets",
        "/v1/projects/test-project/serviceAccounts",
        "/v1/projects/test-project/services", // Service Usage: enabled APIs
        "/v2/projects/test-project/locations/us-central1/jobs", // Cloud Run jobs
        "/v2/projects/test-project/locations/us-central1/queues",
        "/v2/projects/test-project/locations/us-central1/services",
        "/bigquery/v2/projects/test-project/datasets",
        "/v1/projects/test-project/locations/us-central1/repositories", // Artifact Registry
        "/v3/projects/test-project/alertPolicies",
        "/v3/projects/test-project/notificationChannels",
        "/v3/projects/test-project/uptimeCheckConfigs",
        "/v1/projects/test-project/locations/us-central1/gateways", // API Gateway
        "/v2/projects/test-project/locations/global/keys",          // API Keys
        "/v1/projects/test-project/dashboards",                     // Monitoring v1
    ];
    let mut expected: Vec<(String, String)> = lists
        .iter()
        .map(|p| ("GET".to_string(), p.to_string()))
        .collect();
    expected.push((
        "GET".into(),
        "/storage/v1/b/test-project-stackctl-state/o/stackctl/lists/ledger.json".into(),
    ));
    expected.sort();
    assert_eq!(
        calls, expected,
        "one list per kind (and the ledger), never a GET per resource"
    );
}

#[test]
fn the_prompt_asks_on_a_terminal_and_only_yes_applies() {
    let emulator = Emulator::start();
    let ws = Workspace::new(&basic_stack("prompt"));
    let answer = |reply: &str| {
        in_terminal(
            ws.path(),
            &[("Apply these changes?", &format!("{reply}\\r"))],
            &["apply", "--endpoint", &emulator.url],
        )
    };
    let (code, screen) = answer("n");
    assert_eq!(code, 1, "{screen}");
    assert!(
        screen.contains("Apply these changes?") && screen.contains("cancelled"),
        "{screen}"
    );
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(2);
    let (code, screen) = answer("y");
    assert_eq!(code, 0, "{screen}");
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
}

#[test]
fn project_and_region_flags_override_the_stack_file_and_the_endpoint_env_var_works() {
    let emulator = Emulator::start();
    let ws = Workspace::new(&basic_stack("envs"));
    let staging = ws
        .run_env(
            &[
                "apply",
                "--auto-approve",
                "--project",
                "staging-project",
                "--region",
                "europe-west1",
            ],
            &[("STACKCTL_ENDPOINT", &emulator.url)],
        )
        .expect(0);
    assert!(
        staging
            .stdout
            .contains("projects/staging-project/locations/europe-west1/services/worker"),
        "{}",
        staging.stdout
    );
    let (status, _) = emulator.http(
        "GET",
        "/v2/projects/staging-project/locations/europe-west1/queues/webhooks",
        None,
    );
    assert_eq!(status, 200);
    // The file's own project is untouched and still needs everything.
    let prod = ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(2);
    assert!(
        prod.stdout.contains("+ service.worker") && prod.stdout.contains("+ queue.webhooks"),
        "{}",
        prod.stdout
    );
    ws.run_env(
        &[
            "plan",
            "--detailed-exitcode",
            "--project",
            "staging-project",
            "--region",
            "europe-west1",
        ],
        &[("STACKCTL_ENDPOINT", &emulator.url)],
    )
    .expect(0);
}

#[test]
fn man_prints_stackctl_1_or_writes_it_with_a_page_per_command() {
    let ws = Workspace::empty();
    let printed = ws.run(&["man"]).expect(0);
    let written = ws.run(&["man", "--out", "man/man1"]).expect(0);
    assert!(
        written.stderr.contains("man pages to man/man1"),
        "{}",
        written.stderr
    );
    let dir = ws.path().join("man/man1");
    let main = std::fs::read_to_string(dir.join("stackctl.1")).expect("stackctl.1");
    assert_eq!(main, printed.stdout);
    for page in [
        "stackctl-plan.1",
        "stackctl-doctor.1",
        "stackctl-secret-set.1",
    ] {
        let roff = std::fs::read_to_string(dir.join(page)).expect(page);
        assert!(roff.contains(".SH OPTIONS"), "{page}: {roff}");
    }
    let plan = std::fs::read_to_string(dir.join("stackctl-plan.1")).expect("plan page");
    assert!(plan.contains("\\-\\-detailed\\-exitcode"), "{plan}");
}
