//! Loader tests: the valid example with defaults, and every error class at its line and column.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::*;

/// A valid `[stack]` table: 4 lines, so appended tables start on line 5.
const STACK: &str =
    "[stack]\nname = \"shop\"\nproject = \"acme-shop-prod\"\nregion = \"us-central1\"\n";

/// A valid service to target, appended after [`STACK`] (lines 5-7).
const WORKER: &str = "[service.worker]\nimage = \"img\"\nmax_instances = 10\n";

fn parse_str(source: &str) -> Result<Stack, ConfigErrors> {
    parse(Path::new("stack.toml"), source)
}

/// (line, column, message, help) of every error, in reported order.
fn errors(source: &str) -> Vec<(usize, usize, String, Option<String>)> {
    let errors = parse_str(source).expect_err("expected errors");
    errors
        .iter()
        .map(|e| {
            (
                e.line.unwrap_or(0),
                e.column.unwrap_or(0),
                e.message.clone(),
                e.help.clone(),
            )
        })
        .collect()
}

/// The single error of `source`, as (line, column, message, help).
fn single_error(source: &str) -> (usize, usize, String, Option<String>) {
    let mut all = errors(source);
    assert_eq!(all.len(), 1, "expected exactly one error, got {all:#?}");
    all.remove(0)
}

fn owned(
    line: usize,
    column: usize,
    message: &str,
    help: Option<&str>,
) -> (usize, usize, String, Option<String>) {
    (line, column, message.to_string(), help.map(str::to_string))
}

fn service_source(body: &str) -> String {
    format!("{STACK}[service.worker]\nimage = \"img\"\n{body}")
}

fn queue_source(body: &str) -> String {
    format!("{STACK}{WORKER}[queue.jobs]\n{body}")
}

#[test]
fn the_example_parses_to_typed_values_with_defaults() {
    let stack = parse(
        Path::new("fixtures/valid.toml"),
        include_str!("../fixtures/valid.toml"),
    )
    .unwrap();
    assert_eq!(stack.file, Path::new("fixtures/valid.toml"));
    assert_eq!(
        stack.settings,
        StackSettings {
            name: "shopify-ops".into(),
            project: "acme-shop-prod".into(),
            region: "us-central1".into(),
            labels: BTreeMap::from([("team".into(), "commerce".into())]),
            state_bucket: Some("acme-shop-prod-stackctl-state".into()),
            image_repository: None,
            billing_account: None,
        }
    );
    assert_eq!(
        stack.services["worker"],
        ServiceConfig {
            id: "worker".into(),
            image: ImageSource::Image(
                "us-central1-docker.pkg.dev/acme-shop-prod/workers/task-worker@sha256:0123".into()
            ),
            min_instances: 0,
            max_instances: 10,
            concurrency: 80,
            cpu_millis: 1000,
            memory_bytes: 512 << 20,
            cpu_idle: true,
            timeout: Duration::from_secs(60),
            ingress: Some(Ingress::InternalAndCloudLoadBalancing),
            public: false,
            startup_probe: None,
            liveness_probe: None,
            env: BTreeMap::from([("RUST_LOG".into(), "info".into())]),
            labels: BTreeMap::new(),
            service_account: Some(ResourceAddr::new(Kind::ServiceAccount, "worker")),
            invokers: vec![ResourceAddr::new(Kind::ServiceAccount, "tasks")],
            secrets: BTreeMap::from([(
                "SHOPIFY_API_SECRET".into(),
                ResourceAddr::new(Kind::Secret, "shopify-api-secret")
            )]),
            service_urls: BTreeMap::new(),
        }
    );
    assert_eq!(
        stack.services["api"],
        ServiceConfig {
            id: "shop-api".into(),
            image: ImageSource::Image(
                "us-central1-docker.pkg.dev/acme-shop-prod/workers/api:1.0".into()
            ),
            min_instances: 1,
            max_instances: 3,
            concurrency: 1,
            cpu_millis: 500,
            memory_bytes: 1 << 30,
            cpu_idle: false,
            timeout: Duration::from_secs(300),
            ingress: None,
            public: false,
            startup_probe: None,
            liveness_probe: None,
            env: BTreeMap::new(),
            labels: BTreeMap::from([("tier".into(), "frontend".into())]),
            service_account: None,
            invokers: vec![],
            secrets: BTreeMap::new(),
            service_urls: BTreeMap::new(),
        }
    );
    assert_eq!(
        stack.queues["webhooks"],
        QueueConfig {
            id: "webhooks".into(),
            target: Some(ResourceAddr::new(Kind::Service, "worker")),
            path: Some("/tasks/webhook".into()),
            max_dispatches_per_second: Some(50.0),
            // Defaulted from the target: max_instances 10 * concurrency 80.
            max_concurrent_dispatches: Some(800),
            max_attempts: 10,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(600),
            max_doublings: Some(4),
            max_retry_duration: Some(Duration::from_secs(5400)),
            oidc_service_account: Some(ResourceAddr::new(Kind::ServiceAccount, "tasks")),
            enqueuers: vec![ResourceAddr::new(Kind::ServiceAccount, "worker")],
        }
    );
    assert_eq!(
        stack.queues["slow"],
        QueueConfig {
            id: "slow".into(),
            target: Some(ResourceAddr::new(Kind::Service, "api")),
            path: None,
            max_dispatches_per_second: None,
            max_concurrent_dispatches: Some(3),
            max_attempts: 5,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            max_doublings: None,
            max_retry_duration: None,
            oidc_service_account: None,
            enqueuers: vec![],
        }
    );
    let parked = &stack.queues["parked"];
    assert_eq!(
        (parked.target.as_ref(), parked.max_concurrent_dispatches),
        (None, Some(2))
    );
    assert_eq!(stack.state_bucket(), "acme-shop-prod-stackctl-state");
}

#[test]
fn derived_max_concurrent_dispatches_is_capped_at_5000() {
    let source = format!(
        "{STACK}[service.big]\nimage = \"img\"\nmax_instances = 1000\n[queue.q]\ntarget = \"service.big\"\n"
    );
    let stack = parse_str(&source).unwrap();
    assert_eq!(stack.queues["q"].max_concurrent_dispatches, Some(5000));
    assert_eq!(stack.queues["q"].max_attempts, 5);
}

#[test]
fn load_names_the_missing_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stack.toml");
    let errors = load(&path).unwrap_err();
    let error = &errors.errors()[0];
    assert_eq!((errors.len(), error.line, error.column), (1, None, None));
    assert_eq!(error.file, path);
    assert!(
        error
            .message
            .starts_with(&format!("cannot read {}", path.display())),
        "{}",
        error.message
    );
    assert_eq!(
        error.help.as_deref(),
        Some("create one with the [stack] table (name, project, region) or pass -f PATH")
    );
}

#[test]
fn load_reads_and_parses_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stack.toml");
    std::fs::write(&path, STACK).unwrap();
    let stack = load(&path).unwrap();
    assert_eq!((stack.file, stack.settings.name.as_str()), (path, "shop"));
}

#[test]
fn toml_syntax_errors_have_positions() {
    assert_eq!(
        single_error("[stack]\nname = \"shop\nproject = \"p\"\n"),
        owned(
            2,
            13,
            "invalid TOML: invalid basic string, expected `\"`",
            None
        )
    );
    assert_eq!(
        single_error(&format!("{STACK}region = \"europe-west1\"\n")),
        owned(5, 1, "invalid TOML: duplicate key", None)
    );
}

#[test]
fn missing_stack_table_is_reported_at_the_top_of_the_file() {
    assert_eq!(
        single_error(WORKER),
        owned(
            1,
            1,
            "no [stack] table in stack.toml",
            Some("add [stack] with name, project and region at the top")
        )
    );
    assert_eq!(single_error("").0, 1);
}

#[test]
fn missing_required_keys_point_at_the_table_header() {
    assert_eq!(
        errors("[stack]\nname = \"shop\"\n"),
        vec![
            owned(
                1,
                1,
                "[stack] has no `project`",
                Some("add project = \"my-project-id\" (the GCP project id)")
            ),
            owned(
                1,
                1,
                "[stack] has no `region`",
                Some("add region = \"us-central1\"")
            ),
        ]
    );
    assert_eq!(
        single_error(&format!("{STACK}[service.worker]\nimage = \"img\"\n")),
        owned(
            5,
            1,
            "[service.worker] has no `max_instances`",
            Some("add max_instances = 10 (a hard cap on instances; required)")
        )
    );
    let (line, column, message, _) =
        single_error(&format!("{STACK}[service.worker]\nmax_instances = 1\n"));
    assert_eq!(
        (line, column, message.as_str()),
        (5, 1, "[service.worker] has no `image` or `build`")
    );
}

#[test]
fn a_built_service_needs_exactly_one_image_source_and_an_image_repository() {
    let with_repository = STACK.replace("[stack]\n", "[stack]\nimage_repository = \"workers\"\n");
    let stack = parse_str(&format!(
        "{with_repository}[service.worker]\nbuild = \"workers/task-worker\"\nmax_instances = 1\n"
    ))
    .unwrap();
    assert_eq!(
        stack.services["worker"].image,
        ImageSource::Build("workers/task-worker".into())
    );
    assert_eq!(stack.settings.image_repository.as_deref(), Some("workers"));
    let forward = with_repository.replace("\"workers\"", "\"repository.workers\"");
    let stack = parse_str(&format!("{forward}{WORKER}")).unwrap();
    assert_eq!(
        stack.settings.image_repository.as_deref(),
        Some("workers"),
        "the reference form names the same repository"
    );

    let (line, column, message, _) = single_error(&format!(
        "{with_repository}[service.worker]\nimage = \"img\"\nbuild = \"w\"\nmax_instances = 1\n"
    ));
    assert_eq!(
        (line, column, message.as_str()),
        (8, 9, "[service.worker] has both `image` and `build`")
    );
    let (line, column, message, help) = single_error(&format!(
        "{STACK}[service.worker]\nbuild = \"w\"\nmax_instances = 1\n"
    ));
    assert_eq!(
        (line, column, message.as_str()),
        (
            6,
            9,
            "[service.worker] has `build` but [stack] has no `image_repository`"
        )
    );
    assert!(
        help.unwrap_or_default()
            .contains("image_repository = \"workers\"")
    );
    let (line, column, message, _) = single_error(&format!(
        "{with_repository}[service.worker]\nbuild = \"/abs/w\"\nmax_instances = 1\n"
    ));
    assert_eq!(
        (line, column, message.as_str()),
        (
            7,
            9,
            "`build` in [service.worker] must be a relative path, found \"/abs/w\""
        )
    );
    let (line, column, message, _) =
        single_error(&STACK.replace("[stack]\n", "[stack]\nimage_repository = \"Bad_Repo\"\n"));
    assert_eq!(
        (line, column, message.as_str()),
        (
            2,
            20,
            "`Bad_Repo` is not an Artifact Registry repository id"
        )
    );
}

#[test]
fn a_built_job_needs_exactly_one_image_source_and_an_image_repository() {
    let with_repository = STACK.replace("[stack]\n", "[stack]\nimage_repository = \"workers\"\n");
    let stack = parse_str(&format!(
        "{with_repository}[job.ingest]\nbuild = \"workers/task-worker\"\n"
    ))
    .unwrap();
    assert_eq!(
        stack.jobs["ingest"].image,
        ImageSource::Build("workers/task-worker".into())
    );
    let stack = parse_str(&format!("{STACK}[job.ingest]\nimage = \"img\"\n")).unwrap();
    assert_eq!(stack.jobs["ingest"].image, ImageSource::Image("img".into()));

    let (line, column, message, _) = single_error(&format!(
        "{with_repository}[job.ingest]\nimage = \"img\"\nbuild = \"w\"\n"
    ));
    assert_eq!(
        (line, column, message.as_str()),
        (8, 9, "[job.ingest] has both `image` and `build`")
    );
    let (line, column, message, _) =
        single_error(&format!("{STACK}[job.ingest]\ntask_count = 2\n"));
    assert_eq!(
        (line, column, message.as_str()),
        (5, 1, "[job.ingest] has no `image` or `build`")
    );
    let (line, column, message, help) =
        single_error(&format!("{STACK}[job.ingest]\nbuild = \"w\"\n"));
    assert_eq!(
        (line, column, message.as_str()),
        (
            6,
            9,
            "[job.ingest] has `build` but [stack] has no `image_repository`"
        )
    );
    assert!(
        help.unwrap_or_default()
            .contains("image_repository = \"workers\"")
    );
    let (line, column, message, _) = single_error(&format!(
        "{with_repository}[job.ingest]\nbuild = \"/abs/w\"\n"
    ));
    assert_eq!(
        (line, column, message.as_str()),
        (
            7,
            9,
            "`build` in [job.ingest] must be a relative path, found \"/abs/w\""
        )
    );
}

#[test]
fn unknown_keys_suggest_the_closest_known_key() {
    assert_eq!(
        single_error(&service_source("max_instance = 10\nmax_instances = 10\n")),
        owned(
            7,
            1,
            "unknown key `max_instance` in [service.worker]",
            Some("did you mean `max_instances`?")
        )
    );
}

#[test]
fn unknown_keys_far_from_any_known_key_list_the_table_keys() {
    assert_eq!(
        single_error(&format!("{STACK}organization_owner = \"someone\"\n")),
        owned(
            5,
            1,
            "unknown key `organization_owner` in [stack]",
            Some(
                "known keys in [stack]: billing_account, image_repository, labels, name, project, region, state_bucket"
            )
        )
    );
}

#[test]
fn unsupported_kinds_say_which_tables_are_supported() {
    assert_eq!(
        single_error(&format!("{STACK}\n[function.ingest-orders]\ncpu = \"1\"\n")),
        owned(
            6,
            1,
            "unknown table kind `function` in [function.ingest-orders]",
            Some(
                "supported tables: [stack], [service.NAME], [queue.NAME], [service_account.NAME], [secret.NAME], [job.NAME], [schedule.NAME], [dataset.NAME], [table.NAME], [repository.NAME], [channel.NAME], [budget.NAME], [alert.NAME], [uptime.NAME], [dashboard.NAME], [firestore.NAME], [gateway.NAME], [api_key.NAME], [shopify], [shopify_webhook.NAME], [usage]"
            )
        )
    );
    assert_eq!(
        single_error(&format!("{STACK}[servce.worker]\n")),
        owned(
            5,
            1,
            "unknown table kind `servce` in [servce.worker]",
            Some("did you mean `service`?")
        )
    );
    assert_eq!(
        single_error(&format!("region = \"us-central1\"\n{STACK}")),
        owned(
            1,
            1,
            "unknown top-level key `region`",
            Some("`region` belongs in the [stack] table")
        )
    );
}

#[test]
fn type_errors_name_the_key_and_the_expected_form() {
    assert_eq!(
        single_error(&service_source("max_instances = 10\ntimeout = 60\n")),
        owned(
            8,
            11,
            "`timeout` in [service.worker]: expected a duration string like \"300s\", found an integer",
            Some("durations are strings with a unit: timeout = \"60s\"")
        )
    );
    assert_eq!(
        single_error(&service_source("max_instances = \"10\"\n")),
        owned(
            7,
            17,
            "`max_instances` in [service.worker]: expected an integer, found a string",
            Some("remove the quotes: max_instances = 10")
        )
    );
    assert_eq!(
        single_error(&service_source("max_instances = 10\nmemory = 512\n")),
        owned(
            8,
            10,
            "`memory` in [service.worker]: expected a memory size string like \"512Mi\", found an integer",
            Some("sizes are strings with a unit: memory = \"512Mi\"")
        )
    );
    assert_eq!(
        single_error(&service_source(
            "max_instances = 10\ncpu_idle = \"false\"\n"
        )),
        owned(
            8,
            12,
            "`cpu_idle` in [service.worker]: expected true or false, found a string",
            Some("remove the quotes: cpu_idle = false")
        )
    );
    assert_eq!(
        single_error(&service_source(
            "max_instances = 10\ntimeout = \"5 minutes\"\n"
        )),
        owned(
            8,
            11,
            "`timeout` in [service.worker]: invalid duration `5 minutes`: a number needs a unit: d, h, m, s or ms (e.g. \"300s\")",
            Some("write durations like \"300s\", \"10m\", \"1h30m\" or \"100ms\"")
        )
    );
}

#[test]
fn service_ranges_are_checked() {
    let cases = [
        (
            "max_instances = 0\n",
            7,
            17,
            "`max_instances` in [service.worker] must be between 1 and 1000, found 0",
        ),
        (
            "max_instances = 1001\n",
            7,
            17,
            "`max_instances` in [service.worker] must be between 1 and 1000, found 1001",
        ),
        (
            "max_instances = 2\nmin_instances = 3\n",
            8,
            17,
            "`min_instances` (3) is above `max_instances` (2) in [service.worker]",
        ),
        (
            "max_instances = 2\nconcurrency = 0\n",
            8,
            15,
            "`concurrency` in [service.worker] must be between 1 and 1000, found 0",
        ),
        (
            "max_instances = 2\ncpu = \"50m\"\nconcurrency = 1\n",
            8,
            7,
            "`cpu` in [service.worker] must be between 80m and 8, found 50m",
        ),
        (
            "max_instances = 2\ncpu = 3\n",
            8,
            7,
            "`cpu` in [service.worker] must be 1, 2, 4, 6 or 8 above one cpu, found 3",
        ),
        (
            "max_instances = 2\nmemory = \"64Mi\"\n",
            8,
            10,
            "`memory` in [service.worker] must be between 128Mi and 32Gi, found 64Mi",
        ),
        (
            "max_instances = 2\ntimeout = \"2h\"\n",
            8,
            11,
            "`timeout` in [service.worker] must be between 1s and 1h, found 2h",
        ),
        (
            "max_instances = 2\ntimeout = \"0.5s\"\n",
            8,
            11,
            "`timeout` in [service.worker] must be between 1s and 1h, found 0.5s",
        ),
    ];
    for (body, line, column, message) in cases {
        let (found_line, found_column, found_message, _) = single_error(&service_source(body));
        assert_eq!(
            (found_line, found_column, found_message.as_str()),
            (line, column, message),
            "{body}"
        );
    }
}

#[test]
fn fractional_cpu_requires_concurrency_one() {
    assert_eq!(
        single_error(&service_source("max_instances = 2\ncpu = \"0.5\"\n")),
        owned(
            8,
            7,
            "`cpu` below 1 in [service.worker] requires concurrency = 1 (found concurrency 80)",
            Some(
                "Cloud Run serves one request at a time on less than 1 cpu: set concurrency = 1 or cpu = \"1\""
            )
        )
    );
    assert!(
        parse_str(&service_source(
            "max_instances = 2\ncpu = \"500m\"\nconcurrency = 1\n"
        ))
        .is_ok()
    );
}

#[test]
fn cpu_accepts_toml_numbers_as_cores() {
    for (written, millis) in [("2", 2000), ("0x2", 2000), ("1.0", 1000), ("0.5", 500)] {
        let body = format!("max_instances = 2\nconcurrency = 1\ncpu = {written}\n");
        assert_eq!(
            parse_str(&service_source(&body)).unwrap().services["worker"].cpu_millis,
            millis,
            "{written}"
        );
    }
}

#[test]
fn kinds_hold_one_table_per_resource() {
    assert_eq!(
        single_error(&format!("{STACK}[service]\nimage = \"img\"\n")),
        owned(
            6,
            9,
            "`service.image` must be a table, found a string",
            Some("each service is a table of its own: [service.NAME] with its keys below")
        )
    );
}

#[test]
fn ingress_must_be_a_known_setting() {
    assert_eq!(
        single_error(&service_source(
            "max_instances = 2\ningress = \"internal-only\"\n"
        )),
        owned(
            8,
            11,
            "unknown ingress `internal-only` in [service.worker]",
            Some("use \"all\", \"internal\" or \"internal-and-cloud-load-balancing\"")
        )
    );
    let (_, _, _, help) = single_error(&service_source(
        "max_instances = 2\ningress = \"internl\"\n",
    ));
    assert_eq!(help.as_deref(), Some("did you mean \"internal\"?"));
}

#[test]
fn env_names_follow_posix_rules_and_avoid_cloud_run_reserved_names() {
    assert_eq!(
        errors(&service_source(
            "max_instances = 2\nenv = { PORT = \"8080\", 1BAD = \"x\", OK = 1 }\n"
        )),
        vec![
            owned(
                8,
                9,
                "environment variable `PORT` is reserved by Cloud Run",
                Some(
                    "Cloud Run sets PORT, K_SERVICE, K_REVISION, K_CONFIGURATION itself; remove it"
                )
            ),
            owned(
                8,
                24,
                "`1BAD` is not a valid environment variable name",
                Some("use letters, digits and `_`, not starting with a digit")
            ),
            owned(
                8,
                41,
                "`env.OK` in [service.worker]: expected a string, found an integer",
                Some("quote it: OK = \"1\"")
            ),
        ]
    );
}

#[test]
fn labels_follow_gcp_rules_and_the_ownership_label_is_reserved() {
    let source =
        format!("{STACK}labels = {{ stackctl-stack = \"x\", Team = \"ops\", env = \"Prod\" }}\n");
    let found: Vec<_> = errors(&source)
        .into_iter()
        .map(|(l, c, m, _)| (l, c, m))
        .collect();
    assert_eq!(
        found,
        vec![
            (5, 12, "label `stackctl-stack` is reserved".to_string()),
            (5, 34, "`Team` is not a valid label key".to_string()),
            (5, 54, "`Prod` is not a valid label value".to_string()),
        ]
    );
}

#[test]
fn stack_settings_follow_gcp_naming_rules() {
    let source = "[stack]\nname = \"Shop Ops\"\nproject = \"acme\"\nregion = \"central\"\nstate_bucket = \"-bucket\"\n";
    let found: Vec<_> = errors(source)
        .into_iter()
        .map(|(l, c, m, _)| (l, c, m))
        .collect();
    assert_eq!(
        found,
        vec![
            (
                2,
                8,
                "stack name `Shop Ops` is not a valid label value".to_string()
            ),
            (3, 11, "`acme` is not a valid GCP project id".to_string()),
            (4, 10, "`central` is not a GCP region".to_string()),
            (
                5,
                16,
                "`-bucket` is not a valid Cloud Storage bucket name".to_string()
            ),
        ]
    );
}

#[test]
fn ids_follow_gcp_rules_at_the_id_or_the_table_name() {
    let defaulted = format!("{STACK}[service.Worker]\nimage = \"img\"\nmax_instances = 1\n");
    assert_eq!(
        single_error(&defaulted),
        owned(
            5,
            10,
            "`Worker` is not a valid Cloud Run service id",
            Some(
                "service ids are 1 to 49 lowercase letters, digits and `-`, start with a letter and end with a letter or digit; the id defaults to the table name, set id = \"...\" to choose another"
            )
        )
    );
    let explicit = format!("{STACK}{WORKER}[queue.q]\nid = \"bad_id\"\n");
    assert_eq!(
        single_error(&explicit),
        owned(
            9,
            6,
            "`bad_id` is not a valid Cloud Tasks queue id",
            Some("queue ids are 1 to 100 letters, digits and `-`")
        )
    );
}

#[test]
fn duplicate_gcp_ids_within_a_kind_are_errors() {
    let source = format!(
        "{STACK}{WORKER}[service.other]\nid = \"worker\"\nimage = \"img\"\nmax_instances = 1\n"
    );
    assert_eq!(
        single_error(&source),
        owned(
            9,
            6,
            "[service.other] has the same Cloud Run service id `worker` as [service.worker]",
            Some("ids must be unique within a kind: set a different id = \"...\" on one of them")
        )
    );
    // Different kinds may share an id.
    assert!(parse_str(&format!("{STACK}{WORKER}[queue.worker]\n")).is_ok());
}

#[test]
fn targets_must_name_a_declared_service() {
    assert_eq!(
        single_error(&queue_source("target = \"service.nope\"\n")),
        owned(
            9,
            10,
            "no [service.nope] in stack.toml",
            Some("declared services: worker")
        )
    );
    assert_eq!(
        single_error(&queue_source("target = \"service.wroker\"\n")),
        owned(
            9,
            10,
            "no [service.wroker] in stack.toml",
            Some("did you mean \"service.worker\"? declared services: worker")
        )
    );
    assert_eq!(
        single_error(&queue_source("target = \"queue.x\"\n")),
        owned(
            9,
            10,
            "`target` in [queue.jobs] must be a service, found `queue.x`",
            Some("write target = \"service.NAME\"; declared services: worker")
        )
    );
    assert_eq!(
        single_error(&queue_source("target = \"worker\"\n")),
        owned(
            9,
            10,
            "`target` in [queue.jobs] is not a reference: expected \"service.NAME\", found `worker`",
            Some("write target = \"service.worker\"")
        )
    );
}

#[test]
fn path_needs_a_slash_and_a_target() {
    assert_eq!(
        errors(&queue_source("path = \"tasks\"\n")),
        vec![
            owned(
                9,
                8,
                "`path` in [queue.jobs] must start with `/`, found `tasks`",
                Some("write path = \"/tasks\"")
            ),
            owned(
                9,
                8,
                "`path` in [queue.jobs] needs a `target`",
                Some("add target = \"service.NAME\" (the service the path is on), or remove path")
            ),
        ]
    );
}

#[test]
fn queue_ranges_are_checked() {
    let cases = [
        (
            "max_dispatches_per_second = 0\n",
            9,
            29,
            "`max_dispatches_per_second` in [queue.jobs] must be above 0 and at most 500, found 0",
        ),
        (
            "max_dispatches_per_second = 500.5\n",
            9,
            29,
            "`max_dispatches_per_second` in [queue.jobs] must be above 0 and at most 500, found 500.5",
        ),
        (
            "max_concurrent_dispatches = 0\n",
            9,
            29,
            "`max_concurrent_dispatches` in [queue.jobs] must be between 1 and 5000, found 0",
        ),
        (
            "max_attempts = -2\n",
            9,
            16,
            "`max_attempts` in [queue.jobs] must be at least -1, found -2",
        ),
        (
            "max_backoff = \"0.5s\"\n",
            9,
            15,
            "`min_backoff` (1s) is above `max_backoff` (0.5s) in [queue.jobs]",
        ),
        (
            "min_backoff = \"10m\"\nmax_backoff = \"5m\"\n",
            9,
            15,
            "`min_backoff` (10m) is above `max_backoff` (5m) in [queue.jobs]",
        ),
        (
            "max_doublings = -1\n",
            9,
            17,
            "`max_doublings` in [queue.jobs] must be at least 0, found -1",
        ),
    ];
    for (body, line, column, message) in cases {
        let (found_line, found_column, found_message, _) = single_error(&queue_source(body));
        assert_eq!(
            (found_line, found_column, found_message.as_str()),
            (line, column, message),
            "{body}"
        );
    }
    let unlimited = parse_str(&queue_source("max_attempts = -1\n")).unwrap();
    assert_eq!(unlimited.queues["jobs"].max_attempts, -1);
}

#[test]
fn every_error_is_reported_in_file_order() {
    let errors = parse(
        Path::new("stack.toml"),
        include_str!("../fixtures/bad.toml"),
    )
    .unwrap_err();
    let positions: Vec<_> = errors
        .iter()
        .map(|e| (e.line.unwrap_or(0), e.column.unwrap_or(0)))
        .collect();
    let mut sorted = positions.clone();
    sorted.sort();
    assert_eq!(positions, sorted);
    assert!(
        errors.len() >= 15,
        "expected every problem of bad.toml, got {}",
        errors.len()
    );
}

#[test]
fn rendered_errors_of_a_bad_file() {
    let errors = parse(
        Path::new("stack.toml"),
        include_str!("../fixtures/bad.toml"),
    )
    .unwrap_err();
    insta::assert_snapshot!(errors.to_string());
}

#[test]
fn usage_entries_are_read_by_address_in_either_form() {
    let source = format!(
        "{STACK}{WORKER}[usage]\n\"service.worker\" = {{ requests_per_month = 1_000, avg_request_ms = 50, avg_concurrency = 2 }}\n"
    );
    let stack = parse_str(&source).expect("valid");
    let worker = stack.usage.services["worker"];
    assert_eq!(worker.requests_per_month, 1000);
    assert_eq!(worker.avg_request_ms, 50.0);
    assert_eq!(worker.avg_concurrency, 2.0);
    let nested = format!(
        "{STACK}{WORKER}[usage.service.worker]\nrequests_per_month = 7\navg_request_ms = 1.5\n"
    );
    let stack = parse_str(&nested).expect("valid");
    assert_eq!(stack.usage.services["worker"].requests_per_month, 7);
    assert_eq!(stack.usage.services["worker"].avg_concurrency, 1.0);
}

#[test]
fn usage_names_declared_resources_and_known_keys() {
    let undeclared =
        format!("{STACK}{WORKER}[usage]\n\"queue.jobs\" = {{ tasks_per_month = 1 }}\n");
    let (line, column, message, help) = single_error(&undeclared);
    assert_eq!((line, column), (9, 1));
    assert_eq!(
        message,
        "[usage] names queue.jobs, which stack.toml does not declare"
    );
    assert_eq!(
        help.as_deref(),
        Some("stack.toml declares no queue; remove this entry")
    );

    let typo = format!(
        "{STACK}{WORKER}[usage]\n\"service.worker\" = {{ requests_per_month = 1, avg_request_ms = 10, avg_ms = 3 }}\n"
    );
    let (_, _, message, help) = single_error(&typo);
    assert_eq!(
        message,
        "unknown key `avg_ms` in [usage] \"service.worker\""
    );
    assert!(help.unwrap_or_default().contains("avg_request_ms"));

    let missing =
        format!("{STACK}{WORKER}[usage]\n\"service.worker\" = {{ requests_per_month = 1 }}\n");
    let (_, _, message, _) = single_error(&missing);
    assert_eq!(
        message,
        "[usage] \"service.worker\" has no `avg_request_ms`"
    );

    let too_concurrent = format!(
        "{STACK}[service.worker]\nimage = \"img\"\nmax_instances = 10\nconcurrency = 4\n[usage]\n\"service.worker\" = {{ requests_per_month = 1, avg_request_ms = 10, avg_concurrency = 8 }}\n"
    );
    let (_, _, message, _) = single_error(&too_concurrent);
    assert!(
        message.contains("at most the service's concurrency (4)"),
        "{message}"
    );
}
// --- data, money and observability kinds -------------------------------------------------------

const DATASET: &str = "[dataset.shopify]\n";

#[test]
fn tables_reference_declared_datasets_and_check_partition_and_clustering_columns() {
    let source = format!(
        "{STACK}{DATASET}[table.orders]\ndataset = \"dataset.shopfy\"\npartition = {{ field = \"day\" }}\ncluster_by = [\"nope\"]\n[[table.orders.columns]]\nname = \"id\"\ntype = \"INT64\"\n"
    );
    let all = errors(&source);
    assert_eq!(
        all[0],
        owned(
            7,
            11,
            "no [dataset.shopfy] in stack.toml",
            Some("did you mean \"dataset.shopify\"? declared datasets: shopify")
        )
    );
    assert_eq!((all[1].0, all[1].1), (8, 13), "{all:#?}");
    assert!(
        all[1].2.contains("partition field `day` is not a column"),
        "{all:#?}"
    );
    assert!(all[2].2.contains("cluster_by column `nope`"), "{all:#?}");
    assert_eq!(all.len(), 3, "{all:#?}");
}

#[test]
fn a_missing_schema_file_and_a_bad_column_type_are_reported_at_their_values() {
    let source = format!(
        "{STACK}{DATASET}[table.a]\ndataset = \"dataset.shopify\"\nschema = \"schemas/missing.json\"\n[table.b]\ndataset = \"dataset.shopify\"\n[[table.b.columns]]\nname = \"x\"\ntype = \"STRNG\"\n"
    );
    let all = errors(&source);
    assert_eq!((all[0].0, all[0].1), (8, 10), "{all:#?}");
    assert!(
        all[0].2.starts_with("cannot read the schema file"),
        "{all:#?}"
    );
    assert_eq!(
        all[1],
        owned(
            13,
            8,
            "`STRNG` is not a BigQuery column type",
            Some("did you mean \"STRING\"?")
        )
    );
}

#[test]
fn budgets_need_a_billing_account_and_channels_that_exist() {
    let source = format!("{STACK}[budget.monthly]\namount_usd = 0\nnotify = [\"channel.ops\"]\n");
    let all = errors(&source);
    assert_eq!(all[0].0, 5, "{all:#?}");
    assert!(
        all[0].2.contains("needs `billing_account` in [stack]"),
        "{all:#?}"
    );
    assert_eq!((all[1].0, all[1].1), (6, 14), "{all:#?}");
    assert!(all[1].2.contains("must be above 0"), "{all:#?}");
    assert_eq!(
        all[2],
        owned(
            7,
            11,
            "no [channel.ops] in stack.toml",
            Some("no channels are declared; add a [channel.NAME] table")
        )
    );
}

#[test]
fn alerts_name_unknown_templates_and_missing_parameters() {
    let source = format!(
        "{STACK}[alert.a]\ntemplate = \"cloud_run_5xx_rate\"\n[alert.b]\ntemplate = \"cloud_tasks_queue_depth\"\n[channel.c]\ntype = \"email\"\nemail = \"not-an-address\"\n"
    );
    let all = errors(&source);
    assert_eq!(
        all[0],
        owned(
            6,
            12,
            "no alert template `cloud_run_5xx_rate`",
            Some("did you mean \"cloud_run_5xx_ratio\"?")
        )
    );
    assert!(all[1].2.contains("needs `queue`"), "{all:#?}");
    assert_eq!(
        all[2],
        owned(
            11,
            9,
            "`not-an-address` is not an email address",
            Some("write email = \"name@example.com\"")
        )
    );
}

#[test]
fn the_example_data_kinds_parse_with_defaults() {
    let dir = super::fuzz::example_project_dir();
    let file = dir.path().join("stack.toml");
    let stack = parse(&file, include_str!("../../../stack.toml")).unwrap();
    let dataset = &stack.datasets["shopify"];
    assert_eq!(dataset.location, "US");
    assert!(dataset.deletion_protection);
    let orders = &stack.tables["orders"];
    assert_eq!(orders.partition.as_ref().unwrap().granularity, "DAY");
    assert_eq!(orders.columns[0].kind, "INT64");
    let line_items = orders
        .columns
        .iter()
        .find(|c| c.name == "line_items")
        .unwrap();
    assert_eq!(
        (line_items.kind.as_str(), line_items.fields.len()),
        ("RECORD", 2)
    );
    assert_eq!(orders.columns.last().unwrap().name, "ingested_at");
    assert_eq!(stack.repositories["workers"].location, "us-central1");
    assert_eq!(stack.budgets["monthly"].thresholds, vec![0.5, 0.9, 1.0]);
    let alert = &stack.alerts["webhook-backlog"];
    assert!(
        alert.conditions[0]
            .filter
            .contains("queue_id = \"webhooks\"")
    );
    assert_eq!(alert.conditions[0].duration, Duration::from_secs(900));
    assert_eq!(stack.channels["oncall"].display_name, "oncall");
}

// --- identity and wiring -------------------------------------------------------------------

// --- identity and wiring -------------------------------------------------------------------

/// Two service accounts and a secret after [`STACK`] (lines 5-10), then `body`.
fn wired(body: &str) -> String {
    format!(
        "{STACK}[service_account.tasks]\nid = \"tasks-invoker\"\n[service_account.worker]\nroles = [\"roles/logging.logWriter\"]\n[secret.api-key]\n\n{body}"
    )
}

#[test]
fn a_dangling_reference_names_the_missing_table_and_the_declared_ones() {
    assert_eq!(
        single_error(&wired(
            "[service.w]\nimage = \"i\"\nmax_instances = 1\ninvokers = [\"service_account.taks\"]\n"
        )),
        owned(
            14,
            13,
            "no [service_account.taks] in stack.toml",
            Some(
                "did you mean \"service_account.tasks\"? declared service_accounts: tasks, worker"
            )
        )
    );
}

#[test]
fn a_reference_to_the_wrong_kind_is_an_error_at_the_value() {
    assert_eq!(
        single_error(&wired(
            "[service.w]\nimage = \"i\"\nmax_instances = 1\nservice_account = \"secret.api-key\"\n"
        )),
        owned(
            14,
            19,
            "`service_account` in [service.w] must be a service_account, found `secret.api-key`",
            Some(
                "write service_account = \"service_account.NAME\"; declared service_accounts: tasks, worker"
            )
        )
    );
}

#[test]
fn service_account_ids_follow_iam_rules_even_when_defaulted_from_the_name() {
    assert_eq!(
        single_error(&format!("{STACK}[service_account.bot]\n")),
        owned(
            5,
            18,
            "`bot` is not a valid service account id",
            Some(
                "service account ids are 6 to 30 lowercase letters, digits and `-`, start with a letter and end with a letter or digit; the id defaults to the table name, set id = \"...\" to choose another"
            )
        )
    );
    assert_eq!(
        single_error(&format!(
            "{STACK}[service_account.worker]\nroles = [\"logging.logWriter\"]\n"
        )),
        owned(
            6,
            10,
            "`logging.logWriter` in [service_account.worker] is not an IAM role",
            Some(
                "write roles like \"roles/logging.logWriter\" (or a custom \"projects/P/roles/NAME\")"
            )
        )
    );
}

#[test]
fn secrets_need_an_identity_and_cannot_shadow_env() {
    let (line, column, message, _) = single_error(&wired(
        "[service.w]\nimage = \"i\"\nmax_instances = 1\nenv = { KEY = \"x\" }\nsecrets = { KEY = \"secret.api-key\" }\n",
    ));
    assert_eq!(
        (line, column, message.as_str()),
        (
            15,
            13,
            "`KEY` in [service.w] is both in `env` and in `secrets`"
        )
    );
    let (line, column, message, help) = single_error(&wired(
        "[job.j]\nimage = \"i\"\nsecrets = { KEY = \"secret.api-key\" }\n",
    ));
    assert_eq!(
        (line, column, message.as_str()),
        (13, 13, "`secrets` in [job.j] needs a `service_account`")
    );
    assert!(help.unwrap().contains("roles/secretmanager.secretAccessor"));
}

#[test]
fn service_urls_name_other_declared_services_and_no_env_var_twice() {
    let (_, _, message, help) = single_error(&wired(
        "[service.w]\nimage = \"i\"\nmax_instances = 1\nservice_urls = { W_URL = \"service.w\" }\n",
    ));
    assert_eq!(message, "reference cycle: service.w -> service.w");
    assert!(help.unwrap().contains("circle"));
    let (_, _, message, _) = single_error(&wired(
        "[service.p]\nimage = \"i\"\nmax_instances = 1\n[service.w]\nimage = \"i\"\nmax_instances = 1\nenv = { P_URL = \"x\" }\nservice_urls = { P_URL = \"service.p\" }\n",
    ));
    assert_eq!(
        message,
        "`P_URL` in [service.w] is both in `env` and in `service_urls`"
    );
    let (_, _, message, _) = single_error(&wired(
        "[service.w]\nimage = \"i\"\nmax_instances = 1\nservice_urls = { P_URL = \"service.p\" }\n",
    ));
    assert!(
        message.contains("no [service.p] in stack.toml"),
        "{message}"
    );
}

#[test]
fn queue_wiring_needs_a_target_for_its_oidc_identity() {
    assert_eq!(
        single_error(&wired(
            "[queue.q]\noidc_service_account = \"service_account.tasks\"\nenqueuers = [\"service_account.worker\"]\n"
        )),
        owned(
            12,
            24,
            "`oidc_service_account` in [queue.q] needs a `target`",
            Some(
                "the OIDC token's audience is the target service's URL: add target = \"service.NAME\""
            )
        )
    );
}

#[test]
fn jobs_and_schedules_check_their_keys_and_references() {
    let source = wired(
        "[job.ingest]\nimage = \"i\"\nmax_retries = 11\nwrites = [\"dataset.shop\"]\n\n[schedule.hourly]\njob = \"job.ingst\"\ncron = \"every hour\"\ntime_zone = \"utc\"\n",
    );
    let all = errors(&source);
    let messages: Vec<_> = all.iter().map(|e| (e.0, e.1, e.2.as_str())).collect();
    assert_eq!(
        messages,
        vec![
            (
                13,
                15,
                "`max_retries` in [job.ingest] must be between 0 and 10, found 11"
            ),
            (
                14,
                11,
                "`writes` in [job.ingest] must be a table, found `dataset.shop`"
            ),
            (16, 1, "[schedule.hourly] has no `service_account`"),
            (17, 7, "no [job.ingst] in stack.toml"),
            (
                18,
                8,
                "cron `every hour` in [schedule.hourly]: 2 fields, but unix cron has five: minute hour day-of-month month day-of-week"
            ),
            (
                19,
                13,
                "`utc` in [schedule.hourly] is not a time zone of the IANA database"
            ),
        ]
    );
}

#[test]
fn implied_kinds_are_not_tables() {
    assert_eq!(
        single_error(&format!("{STACK}[api.run]\n")),
        owned(
            5,
            2,
            "[api.NAME] tables are not declared in stack.toml",
            Some(
                "the APIs a stack needs are enabled from the kinds it declares; there is no [api.NAME] table"
            )
        )
    );
}

#[test]
fn reference_cycles_are_reported_with_their_path() {
    let source = STACK.to_string();
    let mut checker = Checker::new(Path::new("stack.toml"), &source);
    let addr = |s: &str| s.parse::<ResourceAddr>().unwrap();
    let edge = |from: &str, to: &str, at: usize| Reference {
        from: addr(from),
        to: addr(to),
        span: at..at + 1,
    };
    let references = vec![
        edge("service.a", "queue.b", 0),
        edge("queue.b", "service.a", 10),
        edge("job.j", "service_account.s", 20),
    ];
    check_cycles(&mut checker, &references);
    let messages: Vec<_> = checker.errors.iter().map(|e| e.message.clone()).collect();
    assert_eq!(
        messages,
        vec!["reference cycle: service.a -> queue.b -> service.a".to_string()]
    );
}

#[test]
fn a_job_writes_only_tables_stack_toml_declares() {
    let (line, column, message, help) = single_error(&wired(
        "[job.ingest]\nimage = \"i\"\nservice_account = \"service_account.worker\"\nwrites = [\"table.orders\"]\n",
    ));
    assert_eq!(
        (line, column, message.as_str()),
        (14, 11, "no [table.orders] in stack.toml")
    );
    assert_eq!(
        help.as_deref(),
        Some("no tables are declared; add a [table.NAME] table")
    );
}

#[test]
fn a_cron_out_of_range_names_the_field_and_its_range() {
    let (line, column, message, _) = single_error(&wired(
        "[job.ingest]\nimage = \"i\"\n[schedule.nightly]\njob = \"job.ingest\"\ncron = \"0 25 * * *\"\nservice_account = \"service_account.tasks\"\n",
    ));
    assert_eq!(
        (line, column, message.as_str()),
        (
            15,
            8,
            "cron `0 25 * * *` in [schedule.nightly]: hour field `25`: 25 is out of range (allowed: 0-23, `*`, ranges a-b, steps */n, lists a,b)"
        )
    );
}

#[test]
fn job_usage_needs_a_task_duration_and_takes_executions_optionally() {
    let job = "[job.ingest]\nimage = \"i\"\n";
    let stack = parse_str(&wired(&format!(
        "{job}[usage]\n\"job.ingest\" = {{ avg_task_seconds = 90, executions_per_month = 12 }}\n"
    )))
    .expect("valid");
    assert_eq!(
        stack.usage.jobs["ingest"],
        JobUsage {
            avg_task_seconds: 90.0,
            executions_per_month: Some(12.0)
        }
    );
    let (line, column, message, help) = single_error(&wired(&format!(
        "{job}[usage]\n\"job.ingest\" = {{ executions_per_month = 12 }}\n"
    )));
    assert_eq!(
        (line, column, message.as_str()),
        (14, 16, "[usage] \"job.ingest\" has no `avg_task_seconds`")
    );
    assert!(help.unwrap().contains("avg_task_seconds = 120"));
    let (_, _, message, _) = single_error(&wired(&format!(
        "{job}[usage]\n\"job.ingest\" = {{ avg_task_seconds = 700000 }}\n"
    )));
    assert_eq!(
        message,
        "`avg_task_seconds` in [usage] \"job.ingest\" must be above 0 and at most 604800 (a Cloud Run job task's 168-hour limit), found 700000"
    );
}

/// Finding 7: hostile and invalid input.
mod hostile {
    use super::*;

    /// `[table.a]` with `schema = "{value}"` on line 8, the value at column 10.
    fn with_schema(value: &str) -> String {
        format!("{STACK}{DATASET}[table.a]\ndataset = \"dataset.shopify\"\nschema = \"{value}\"\n")
    }

    #[test]
    fn schema_paths_outside_the_stack_directory_and_devices_are_refused_at_the_value() {
        for value in [
            "/dev/zero",
            "/dev/urandom",
            "/dev/full",
            "/etc/passwd",
            "../stack.toml",
            "schemas/../../x.json",
        ] {
            let started = std::time::Instant::now();
            let (line, column, message, help) = single_error(&with_schema(value));
            assert!(started.elapsed() < Duration::from_secs(2), "{value}");
            assert_eq!((line, column), (8, 10), "{value}: {message}");
            assert_eq!(
                message,
                format!(
                    "`schema` must be a path inside the stack file's directory, found {value:?}"
                )
            );
            assert!(help.unwrap().contains("relative to the stack file"));
        }
    }

    #[test]
    fn a_schema_that_is_a_device_a_directory_or_too_large_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.json")).unwrap();
        std::fs::create_dir(dir.path().join("schemas")).unwrap();
        std::fs::write(dir.path().join("big.json"), vec![b' '; (1 << 20) + 1]).unwrap();
        let file = dir.path().join("stack.toml");
        let error = |value: &str| {
            let started = std::time::Instant::now();
            let errors = parse(&file, &with_schema(value)).unwrap_err();
            assert!(started.elapsed() < Duration::from_secs(2), "{value}");
            assert_eq!(errors.len(), 1, "{errors}");
            let error = errors.errors()[0].clone();
            assert_eq!((error.line, error.column), (Some(8), Some(10)), "{error}");
            error.message
        };
        assert!(error("zero.json").contains("leads outside the stack file's directory"));
        assert!(error("schemas").ends_with("is not a regular file"));
        assert!(error("big.json").ends_with("is larger than the 1 MiB limit"));
    }

    #[test]
    fn a_stack_file_that_is_an_endless_device_is_refused() {
        let started = std::time::Instant::now();
        let errors = load(Path::new("/dev/zero")).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(errors.errors()[0].message.contains("1 MiB"), "{errors}");
    }

    #[test]
    fn invalid_utf8_is_reported_at_the_first_invalid_byte() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("stack.toml");
        let mut bytes = b"[stack]\nname = \"shop\"\nproject = \"ac".to_vec();
        bytes.push(0xFF);
        bytes.extend_from_slice(b"me\"\nregion = \"us-central1\"\n");
        std::fs::write(&file, bytes).unwrap();
        let errors = load(&file).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors}");
        let error = &errors.errors()[0];
        assert_eq!((error.line, error.column), (Some(3), Some(14)), "{error}");
        assert_eq!(
            error.message,
            "the stack file is not valid UTF-8: invalid byte 0xFF"
        );
        let rendered = error.to_string();
        assert!(!rendered.contains("permissions"), "{rendered}");
        assert!(rendered.contains(":3:14"), "{rendered}");
    }

    #[test]
    fn time_zones_come_from_the_iana_database() {
        let schedule = |zone: &str| {
            wired(&format!(
                "[job.ingest]\nimage = \"i\"\nservice_account = \"service_account.worker\"\n[schedule.hourly]\njob = \"job.ingest\"\ncron = \"0 * * * *\"\nservice_account = \"service_account.tasks\"\ntime_zone = \"{zone}\"\n"
            ))
        };
        assert!(parse_str(&schedule("America/Toronto")).is_ok());
        assert!(parse_str(&schedule("Etc/UTC")).is_ok());
        assert_eq!(
            single_error(&schedule("Mars/Olympus")),
            owned(
                18,
                13,
                "`Mars/Olympus` in [schedule.hourly] is not a time zone of the IANA database",
                Some("use an IANA time zone name like \"Etc/UTC\" or \"America/Toronto\"")
            )
        );
        assert_eq!(
            single_error(&schedule("America/Toronot")).3.as_deref(),
            Some("did you mean \"America/Toronto\"?")
        );
    }

    #[test]
    fn dataset_locations_are_multi_regions_or_regions() {
        let dataset = |location: &str| format!("{STACK}[dataset.d]\nlocation = \"{location}\"\n");
        for good in [
            "US",
            "EU",
            "us-central1",
            "europe-west4",
            "northamerica-northeast1",
        ] {
            assert!(parse_str(&dataset(good)).is_ok(), "{good}");
        }
        for bad in [&"9".repeat(40) as &str, "9999d", "Mars", "us central1", ""] {
            let (line, column, message, _) = single_error(&dataset(bad));
            assert_eq!((line, column), (6, 12), "{bad}");
            assert_eq!(message, format!("`{bad}` is not a BigQuery location"));
        }
    }

    #[test]
    fn state_buckets_follow_cloud_storage_naming_rules() {
        let bucket = |name: &str| format!("{STACK}state_bucket = \"{name}\"\n");
        for good in ["acme-state", "acme.state_1", "a1b"] {
            assert!(parse_str(&bucket(good)).is_ok(), "{good}");
        }
        for bad in [
            "1.2.3.4",
            "a..b",
            "googstate",
            "my-google-state",
            "ab",
            "-ab",
            "Acme",
        ] {
            let (line, column, message, help) = single_error(&bucket(bad));
            assert_eq!((line, column), (5, 16), "{bad}");
            assert_eq!(
                message,
                format!("`{bad}` is not a valid Cloud Storage bucket name")
            );
            assert!(help.unwrap().contains("not an IP address"));
        }
    }

    #[test]
    fn build_directories_must_exist() {
        let source = |dir: &str| {
            format!(
                "[stack]\nname = \"shop\"\nproject = \"acme-shop-prod\"\nregion = \"us-central1\"\nimage_repository = \"workers\"\n[service.worker]\nbuild = \"{dir}\"\nmax_instances = 1\n"
            )
        };
        assert!(parse_str(&source("workers/task-worker")).is_ok());
        let (line, column, message, help) = single_error(&source("workers/no-such-worker"));
        assert_eq!((line, column), (7, 9));
        assert!(
            message.starts_with(
                "`build` directory \"workers/no-such-worker\" cannot be used (./workers/no-such-worker: No such file"
            ),
            "{message}"
        );
        assert!(help.unwrap().contains("Cargo.toml"));
        let (_, _, message, _) = single_error(&source("Cargo.toml"));
        assert!(message.contains("is not a directory"), "{message}");
    }

    #[test]
    fn a_huge_budget_names_the_real_bound() {
        let source = |amount: &str| {
            format!(
                "[stack]\nname = \"shop\"\nproject = \"acme-shop-prod\"\nregion = \"us-central1\"\nbilling_account = \"012345-6789AB-CDEF01\"\n[budget.monthly]\namount_usd = {amount}\n"
            )
        };
        assert_eq!(
            single_error(&source("1e308")),
            owned(
                7,
                14,
                "`amount_usd` in [budget.monthly] must be below 1000000000000 (one trillion US dollars), found 1e308",
                Some("write the monthly budget in US dollars, e.g. amount_usd = 300")
            )
        );
        assert!(single_error(&source("-1")).2.contains("must be above 0"));
    }

    #[test]
    fn project_and_region_flags_follow_the_stack_file_rules() {
        let stack = || parse_str(STACK).unwrap();
        let region = stack().with_overrides(None, Some("evil.com#")).unwrap_err();
        assert!(
            region.starts_with("--region \"evil.com#\" is not a GCP region"),
            "{region}"
        );
        let project = stack().with_overrides(Some("Evil/x"), None).unwrap_err();
        assert!(
            project.starts_with("--project \"Evil/x\" is not a valid GCP project id"),
            "{project}"
        );
        let ok = stack()
            .with_overrides(Some("acme-staging"), Some("europe-west1"))
            .unwrap();
        assert_eq!(
            (ok.settings.project.as_str(), ok.settings.region.as_str()),
            ("acme-staging", "europe-west1")
        );
    }
}

#[test]
fn probes_get_cloud_runs_defaults_and_impossible_ones_are_located() {
    let stack = parse_str(&service_source(
        "max_instances = 2\nstartup_probe = { path = \"/healthz\" }\nliveness_probe = { path = \"/live\", period = \"30s\", timeout = \"5s\", failure_threshold = 2 }\n",
    ))
    .expect("parses");
    let service = &stack.services["worker"];
    let startup = service.startup_probe.as_ref().expect("startup probe");
    assert_eq!(
        (
            startup.path.as_str(),
            startup.period_seconds,
            startup.timeout_seconds,
            startup.failure_threshold,
            startup.initial_delay_seconds
        ),
        ("/healthz", 10, 1, 3, 0)
    );
    let liveness = service.liveness_probe.as_ref().expect("liveness probe");
    assert_eq!((liveness.period_seconds, liveness.timeout_seconds), (30, 5));

    let (line, _, message, help) = single_error(&service_source(
        "max_instances = 2\nstartup_probe = { path = \"/healthz\", period = \"2s\", timeout = \"5s\" }\n",
    ));
    assert_eq!(line, 8);
    assert!(message.contains("longer than its period"), "{message}");
    assert!(help.is_some_and(|h| h.contains("timeout <= period")));
    let (_, _, message, _) = single_error(&service_source(
        "max_instances = 2\nstartup_probe = { path = \"healthz\" }\n",
    ));
    assert!(message.contains("must start with `/`"), "{message}");
    let (_, _, message, _) = single_error(&service_source(
        "max_instances = 2\nstartup_probe = { path = \"/h\", period = \"300s\" }\n",
    ));
    assert!(
        message.contains("period"),
        "startup probes run at most every 240s: {message}"
    );
}

/// `[secret.token]` and `[shopify]` after [`STACK`] and [`WORKER`]: lines 8 to 12.
const SHOPIFY: &str =
    "[secret.token]\n[shopify]\nshop = \"acme.myshopify.com\"\naccess_token = \"secret.token\"\n\n";

fn webhook_source(body: &str) -> String {
    format!("{STACK}{WORKER}{SHOPIFY}[shopify_webhook.orders]\n{body}")
}

#[test]
fn a_shopify_webhook_parses_with_its_defaults() {
    let stack = parse_str(&webhook_source(
        "topic = \"ORDERS_UPDATED\"\ntarget = \"service.worker\"\npath = \"/webhooks/shopify\"\n",
    ))
    .unwrap();
    let shopify = stack.shopify.expect("[shopify]");
    assert_eq!(shopify.shop, "acme.myshopify.com");
    assert_eq!(shopify.access_token.to_string(), "secret.token");
    assert_eq!(shopify.api_version, "2025-10");
    let orders = &stack.shopify_webhooks["orders"];
    assert_eq!(orders.topic, "ORDERS_UPDATED");
    assert_eq!(orders.target.to_string(), "service.worker");
    assert_eq!(orders.format, "JSON");
    assert_eq!(orders.api_version, "2025-10");
}

#[test]
fn a_rest_style_topic_is_located_with_its_graphql_form() {
    let (line, column, message, help) = single_error(&webhook_source(
        "topic = \"orders/updated\"\ntarget = \"service.worker\"\npath = \"/w\"\n",
    ));
    assert_eq!((line, column), (14, 9), "{message}");
    assert!(message.contains("WebhookSubscriptionTopic"), "{message}");
    assert!(help.unwrap().contains("topic = \"ORDERS_UPDATED\""));
}

#[test]
fn shopify_webhook_errors_are_located_with_the_fix() {
    let (line, _, message, help) = single_error(&webhook_source(
        "topic = \"ORDERS_UPDATED\"\ntarget = \"service.worker\"\npath = \"/w\"\nformat = \"json\"\n",
    ));
    assert_eq!(line, 17, "{message}");
    assert!(help.unwrap().contains("format = \"JSON\""));

    let (line, _, message, _) = single_error(&webhook_source(
        "topic = \"ORDERS_UPDATED\"\ntarget = \"service.nope\"\npath = \"/w\"\n",
    ));
    assert_eq!(line, 15, "{message}");
    assert!(message.contains("service.nope"), "{message}");

    let duplicate = format!(
        "{}\n[shopify_webhook.again]\ntopic = \"ORDERS_UPDATED\"\ntarget = \"service.worker\"\npath = \"/x\"\n",
        webhook_source("topic = \"ORDERS_UPDATED\"\ntarget = \"service.worker\"\npath = \"/w\"\n")
    );
    let (line, _, message, _) = single_error(&duplicate);
    assert_eq!(line, 19, "{message}");
    assert!(message.contains("[shopify_webhook.orders]"), "{message}");
}

#[test]
fn a_shop_is_its_myshopify_domain_and_webhooks_need_one() {
    let source =
        webhook_source("topic = \"ORDERS_UPDATED\"\ntarget = \"service.worker\"\npath = \"/w\"\n")
            .replace("\"acme.myshopify.com\"", "\"https://acme.myshopify.com/\"");
    let (line, _, _, help) = single_error(&source);
    assert_eq!(line, 10);
    assert!(help.unwrap().contains("shop = \"acme.myshopify.com\""));

    let without = format!(
        "{STACK}{WORKER}[shopify_webhook.orders]\ntopic = \"ORDERS_UPDATED\"\ntarget = \"service.worker\"\npath = \"/w\"\n"
    );
    let (line, _, message, help) = single_error(&without);
    assert_eq!(line, 8, "{message}");
    assert!(help.unwrap().contains("[shopify]"));
}

#[test]
fn instances_at_max_alerts_default_their_threshold_to_the_services_declared_cap() {
    let source = format!(
        "{STACK}{WORKER}[alert.capped]\ntemplate = \"cloud_run_instances_at_max\"\nservice = \"service.worker\"\n[alert.lower]\ntemplate = \"cloud_run_instances_at_max\"\nservice = \"service.worker\"\nthreshold = 8\n"
    );
    let stack = parse_str(&source).unwrap();
    assert_eq!(stack.alerts["capped"].conditions[0].threshold, 10.0);
    assert_eq!(stack.alerts["lower"].conditions[0].threshold, 8.0);
}

#[test]
fn failed_execution_alerts_watch_a_declared_job_by_its_gcp_id() {
    let source = format!(
        "{STACK}[job.ingest]\nid = \"shopify-ingest\"\nimage = \"img\"\n[alert.failed]\ntemplate = \"cloud_run_job_failed_executions\"\njob = \"job.ingest\"\n"
    );
    let stack = parse_str(&source).unwrap();
    let alert = &stack.alerts["failed"];
    assert!(
        alert.conditions[0]
            .filter
            .contains("resource.labels.job_name = \"shopify-ingest\""),
        "{}",
        alert.conditions[0].filter
    );
    assert_eq!(alert.watches, vec![ResourceAddr::new(Kind::Job, "ingest")]);
}

#[test]
fn failed_execution_alerts_need_a_job_and_take_no_service() {
    let needs_job = single_error(&format!(
        "{STACK}[alert.failed]\ntemplate = \"cloud_run_job_failed_executions\"\n"
    ));
    assert_eq!(
        (needs_job.2.as_str(), needs_job.3.as_deref()),
        (
            "template `cloud_run_job_failed_executions` in [alert.failed] needs `job`",
            Some("add job = \"job.NAME\"")
        )
    );
    let takes_no_service = single_error(&format!(
        "{STACK}{WORKER}[alert.failed]\ntemplate = \"cloud_run_job_failed_executions\"\nservice = \"service.worker\"\n"
    ));
    assert_eq!(
        (
            takes_no_service.0,
            takes_no_service.1,
            takes_no_service.2.as_str()
        ),
        (
            10,
            11,
            "template `cloud_run_job_failed_executions` takes no `service`"
        )
    );
}

#[test]
fn uptime_checks_take_an_https_url_and_default_period_timeout_and_status() {
    let stack = parse_str(&format!(
        "{STACK}[uptime.relay]\nurl = \"https://relay.example.com/healthz\"\n"
    ))
    .unwrap();
    let relay = &stack.uptimes["relay"];
    assert_eq!(
        (
            relay.host.as_str(),
            relay.path.as_str(),
            relay.expect_status.as_str()
        ),
        ("relay.example.com", "/healthz", "2xx")
    );
    assert_eq!(
        (relay.period, relay.timeout),
        (Duration::from_secs(300), Duration::from_secs(10))
    );
}

#[test]
fn uptime_checks_refuse_periods_google_does_not_offer_and_plain_http_at_their_line() {
    assert_eq!(
        single_error(&format!(
            "{STACK}[uptime.relay]\nurl = \"https://relay.example.com/\"\nperiod = \"120s\"\n"
        )),
        owned(
            7,
            10,
            "`period` in [uptime.relay] must be 60s, 300s, 600s or 900s",
            Some("write period = \"300s\" (the periods Cloud Monitoring offers)")
        )
    );
    let (line, column, message, _) = single_error(&format!(
        "{STACK}[uptime.relay]\nurl = \"http://relay.example.com/\"\n"
    ));
    assert_eq!(
        (line, column, message.as_str()),
        (
            6,
            7,
            "`http://relay.example.com/` in [uptime.relay] is not an https URL with a host name"
        )
    );
}

#[test]
fn uptime_check_failed_alerts_watch_the_checks_host() {
    let stack = parse_str(&format!(
        "{STACK}[uptime.relay]\nurl = \"https://relay.example.com/healthz\"\n[alert.relay-down]\ntemplate = \"uptime_check_failed\"\nuptime = \"uptime.relay\"\n"
    ))
    .unwrap();
    let alert = &stack.alerts["relay-down"];
    assert!(
        alert.conditions[0]
            .filter
            .contains("resource.labels.host = \"relay.example.com\""),
        "{}",
        alert.conditions[0].filter
    );
    assert_eq!(
        alert.watches,
        vec![ResourceAddr::new(Kind::Uptime, "relay")]
    );
}

/// A gateway in front of [`WORKER`] (lines 5-7), its identity on line 8.
fn gateway_stack(gateway: &str) -> String {
    format!("{STACK}{WORKER}[service_account.crm-gateway]\n{gateway}")
}

#[test]
fn a_gateway_renders_its_routes_into_the_default_template() {
    let stack = parse_str(&gateway_stack(
        "[gateway.crm]\nbackend = \"service.worker\"\nservice_account = \"service_account.crm-gateway\"\nroutes = [\"POST /customers\"]\nrequests_per_minute = 30\n[api_key.partner]\ngateway = \"gateway.crm\"\n",
    ))
    .unwrap();
    let gateway = &stack.gateways["crm"];
    assert_eq!(gateway.backend, ResourceAddr::new(Kind::Service, "worker"));
    assert_eq!(gateway.requests_per_minute, 30);
    assert_eq!(
        crate::config::openapi::requests_per_minute(&gateway.document),
        Some(30)
    );
    assert!(gateway.document["paths"]["/customers"]["post"].is_object());
    assert_eq!(gateway.document_source, "templates/gateways/api_key.json");
    assert_eq!(
        stack.api_keys["partner"].gateway,
        ResourceAddr::new(Kind::Gateway, "crm")
    );
}

#[test]
fn gateway_mistakes_are_located_with_the_fix() {
    assert_eq!(
        single_error(&gateway_stack(
            "[gateway.crm]\nbackend = \"service.worker\"\nservice_account = \"service_account.crm-gateway\"\nroutes = [\"SEND /customers\"]\n"
        )),
        owned(
            12,
            11,
            "route `send` is not an HTTP method OpenAPI 2.0 knows (get, put, post, delete, options, head, patch) in [gateway.crm]",
            Some("write routes = [\"POST /customers\", \"GET /customers/{id}\"]")
        )
    );
    let (line, _, message, help) = single_error(&gateway_stack(
        "[gateway.crm]\nbackend = \"service.worker\"\nservice_account = \"service_account.crm-gateway\"\n",
    ));
    assert_eq!(line, 9);
    assert!(
        message.contains("declares no `paths` and the gateway lists no `routes`"),
        "{message}"
    );
    assert_eq!(
        help.as_deref(),
        Some("add routes = [\"POST /customers\"]: the METHOD /path operations the gateway serves")
    );
    let (line, _, message, _) = single_error(&gateway_stack(
        "[gateway.crm]\nbackend = \"service.wroker\"\nservice_account = \"service_account.crm-gateway\"\nroutes = [\"POST /customers\"]\n",
    ));
    assert_eq!(line, 10);
    assert!(message.contains("service.wroker"), "{message}");
    let (line, _, message, _) = single_error(&format!(
        "{}[api_key.partner]\ngateway = \"gateway.nope\"\n",
        gateway_stack("")
    ));
    assert_eq!(line, 10);
    assert!(message.contains("gateway.nope"), "{message}");
}

#[test]
fn a_gateway_may_name_its_own_openapi_file_and_it_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("crm.json"),
        r#"{"swagger": "2.0", "info": {"title": "${TITLE}", "version": "1"}, "x-google-backend": {"address": "${BACKEND_URL}"}, "paths": {"/customers": {"post": {"responses": {}}}}}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("v3.json"), r#"{"openapi": "3.0.0"}"#).unwrap();
    let file = dir.path().join("stack.toml");
    let stack = parse(
        &file,
        &gateway_stack("[gateway.crm]\nbackend = \"service.worker\"\nservice_account = \"service_account.crm-gateway\"\nopenapi = \"crm.json\"\n"),
    )
    .unwrap();
    assert_eq!(stack.gateways["crm"].document["info"]["title"], "crm");
    let errors = parse(
        &file,
        &gateway_stack("[gateway.crm]\nbackend = \"service.worker\"\nservice_account = \"service_account.crm-gateway\"\nopenapi = \"v3.json\"\n"),
    )
    .unwrap_err();
    let error = errors.iter().next().unwrap();
    assert_eq!((error.line, error.column), (Some(12), Some(11)));
    assert!(
        error.message.contains("not an OpenAPI 2.0 document"),
        "{}",
        error.message
    );
}

#[test]
fn an_uptime_check_may_target_a_service_and_its_alert_watches_the_hosts_placeholder() {
    let stack = parse_str(&format!(
        "{STACK}{WORKER}[uptime.worker]\ntarget = \"service.worker\"\npath = \"/healthz\"\n"
    ))
    .unwrap();
    let check = &stack.uptimes["worker"];
    assert_eq!(
        (
            check.target.clone(),
            check.path.as_str(),
            check.host.as_str()
        ),
        (
            Some(ResourceAddr::new(Kind::Service, "worker")),
            "/healthz",
            ""
        )
    );
    // The host is the service's, known once it exists: the plan fills it in then.
    let watched = parse_str(&format!(
        "{STACK}{WORKER}[uptime.worker]\ntarget = \"service.worker\"\n[alert.down]\ntemplate = \"uptime_check_failed\"\nuptime = \"uptime.worker\"\n"
    ))
    .unwrap();
    assert!(
        watched.alerts["down"].conditions[0]
            .filter
            .contains("resource.labels.host = \"(host of service.worker)\""),
        "{:?}",
        watched.alerts["down"]
    );
    let (_, _, message, _) = single_error(&format!(
        "{STACK}{WORKER}[uptime.worker]\ntarget = \"service.worker\"\nurl = \"https://a.example.com/\"\n"
    ));
    assert!(message.contains("has both `url` and `target`"), "{message}");
}

#[test]
fn a_dashboard_may_be_its_own_json_file_and_it_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("dashboards")).unwrap();
    std::fs::write(
        dir.path().join("dashboards/ops.json"),
        r#"{"gridLayout": {"columns": "2", "widgets": [{"title": "orders", "text": {"content": "hi"}}]}, "labels": {"team": "ops"}}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("dashboards/bad.json"), "{\"gridLayout\": ").unwrap();
    std::fs::write(
        dir.path().join("dashboards/bare.json"),
        r#"{"displayName": "x"}"#,
    )
    .unwrap();
    let file = dir.path().join("stack.toml");
    let stack = parse(
        &file,
        &format!("{STACK}[dashboard.ops]\nfile = \"dashboards/ops.json\"\n"),
    )
    .unwrap();
    let ops = &stack.dashboards["ops"];
    let written = ops.file.as_ref().expect("file");
    assert_eq!(written.path, "dashboards/ops.json");
    assert_eq!(written.document["labels"]["team"], "ops");
    assert_eq!(ops.display_name, "shop ops");
    std::fs::write(
        dir.path().join("dashboards/titled.json"),
        r#"{"displayName": "Orders on call", "mosaicLayout": {"columns": 48}}"#,
    )
    .unwrap();
    let stack = parse(
        &file,
        &format!("{STACK}[dashboard.titled]\nfile = \"dashboards/titled.json\"\n"),
    )
    .unwrap();
    assert_eq!(
        stack.dashboards["titled"].display_name, "Orders on call",
        "a file from the console keeps its title"
    );

    // (line, column, message) of the one error a stanza gives.
    let error_of = |stanza: &str| {
        let errors = parse(&file, &format!("{STACK}{stanza}")).unwrap_err();
        let error = errors.iter().next().unwrap().clone();
        (error.line, error.column, error.message, error.help)
    };
    let (line, column, message, _) = error_of("[dashboard.ops]\nfile = \"dashboards/bad.json\"\n");
    assert_eq!((line, column), (Some(6), Some(8)));
    assert!(
        message.contains("dashboards/bad.json") && message.contains("not JSON"),
        "{message}"
    );
    let (_, _, message, help) = error_of("[dashboard.ops]\nfile = \"dashboards/bare.json\"\n");
    assert!(message.contains("has no layout"), "{message}");
    assert!(help.unwrap_or_default().contains("mosaicLayout"));
    let (_, _, message, _) = error_of("[dashboard.ops]\nfile = \"dashboards/none.json\"\n");
    assert!(
        message.contains("cannot read the dashboard file"),
        "{message}"
    );
    let (line, _, message, help) = error_of(
        "[dashboard.ops]\nfile = \"dashboards/ops.json\"\ntemplate = \"stack_overview\"\n",
    );
    assert_eq!(line, Some(7));
    assert!(message.contains("both `template` and `file`"), "{message}");
    assert!(help.unwrap_or_default().contains("keep one"));
}

#[test]
fn an_alert_takes_a_severity_and_documentation_and_a_template_gives_its_runbook() {
    let stack = parse_str(&format!(
        "{STACK}{WORKER}[alert.worker-5xx]\ntemplate = \"cloud_run_5xx_ratio\"\nservice = \"service.worker\"\nseverity = \"Critical\"\n"
    ))
    .unwrap();
    let alert = &stack.alerts["worker-5xx"];
    assert_eq!(alert.severity.as_deref(), Some("CRITICAL"));
    let runbook = alert
        .documentation
        .as_deref()
        .expect("the template's runbook");
    assert!(
        runbook.contains("stackctl rollback service.worker"),
        "{runbook}"
    );

    let stack = parse_str(&format!(
        "{STACK}{WORKER}[alert.worker-5xx]\ntemplate = \"cloud_run_5xx_ratio\"\nservice = \"service.worker\"\ndocumentation = \"Call Ana.\"\n"
    ))
    .unwrap();
    assert_eq!(
        stack.alerts["worker-5xx"].documentation.as_deref(),
        Some("Call Ana.")
    );
    let stack = parse_str(&format!(
        "{STACK}{WORKER}[alert.worker-5xx]\ntemplate = \"cloud_run_5xx_ratio\"\nservice = \"service.worker\"\ndocumentation = \"\"\n"
    ))
    .unwrap();
    assert_eq!(stack.alerts["worker-5xx"].documentation, None);

    let (line, column, message, help) = single_error(&format!(
        "{STACK}{WORKER}[alert.worker-5xx]\ntemplate = \"cloud_run_5xx_ratio\"\nservice = \"service.worker\"\nseverity = \"warn\"\n"
    ));
    assert_eq!((line, column), (11, 12));
    assert!(
        message.contains("not one of critical, error, warning"),
        "{message}"
    );
    assert_eq!(help.as_deref(), Some("did you mean \"warning\"?"));

    let long = "x".repeat(8_193);
    let (line, _, message, _) = single_error(&format!(
        "{STACK}{WORKER}[alert.worker-5xx]\ntemplate = \"cloud_run_5xx_ratio\"\nservice = \"service.worker\"\ndocumentation = \"{long}\"\n"
    ));
    assert_eq!(line, 11);
    assert!(message.contains("8193 characters"), "{message}");
}
