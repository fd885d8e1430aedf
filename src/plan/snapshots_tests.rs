//! Snapshots of the rendered plan for every (kind, action) pair the planner produces.
//!
//! [`BASE`] declares one resource of every kind (plus what they need), and [`live`] builds what
//! applying it left behind, so the base plans empty. Each case changes one thing — stack.toml,
//! the live records, or the plan options — and snapshots `plan_view::render` of the real plan.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Observed, PlanOptions, PlanTarget, plan};
use crate::config::Stack;
use crate::cost::PriceTable;
use crate::model::{Endpoint, ResourceAddr};
use crate::provider::apis::ApiRecord;
use crate::provider::artifacts::RepositoryRecord;
use crate::provider::bigquery::{DatasetRecord, FieldRecord, PartitionRecord, TableRecord};
use crate::provider::budgets::BudgetRecord;
use crate::provider::iam::ServiceAccountRecord;
use crate::provider::jobs::JobRecord;
use crate::provider::monitoring::{AlertRecord, ChannelRecord};
use crate::provider::run::{IngressKind, ServiceRecord};
use crate::provider::scheduler::ScheduleRecord;
use crate::provider::secrets::SecretRecord;
use crate::provider::shopify::{PointsAt, WebhookSubscriptionRecord};
use crate::resources::grant::{self, GrantRecord};
use crate::resources::{NAME_LABEL, OWNER_LABEL, Reconcile, api, budget, dataset, queue};
use crate::state::{Ledger, LedgerStatus};

/// Sections are separated by blank lines, so a case can drop one (`Drop`).
/// `dataset.events`, `job.nightly` and `service_account.runner` serve the table and the
/// schedule; the other resources are leaves a case may remove.
const BASE: &str = r#"[stack]
name = "shop"
project = "acme-shop"
region = "us-central1"
billing_account = "012345-6789AB-CDEF01"

[service_account.runner]
display_name = "Runner"
roles = ["roles/logging.logWriter"]

[service_account.deployer]
display_name = "Deployer"

[secret.api-key]
labels = { tier = "gold" }

[service.worker]
image = "img"
max_instances = 3

[queue.webhooks]
max_attempts = 5

[dataset.archive]
location = "US"
default_table_expiration = "30d"
deletion_protection = false

[dataset.events]

[table.orders]
dataset = "dataset.events"
columns = [{ name = "id", type = "INT64", mode = "REQUIRED" }, { name = "created_at", type = "TIMESTAMP" }]
partition = { field = "created_at", granularity = "DAY" }
cluster_by = ["id"]

[repository.images]
keep_recent = 10

[channel.oncall]
type = "email"
email = "ops@example.com"

[budget.monthly]
amount_usd = 300
thresholds = [0.5, 1.0]

[alert.errors]
conditions = [{ filter = 'metric.type = "run.googleapis.com/request_count"', comparison = ">", threshold = 5, duration = "300s", aligner = "ALIGN_RATE" }]

[job.nightly]
image = "img"

[job.cleanup]
image = "cleanup:1"

[schedule.hourly]
job = "job.nightly"
cron = "0 * * * *"
service_account = "service_account.runner"

[shopify]
shop = "acme.myshopify.com"
access_token = "secret.api-key"

[shopify_webhook.orders]
topic = "ORDERS_UPDATED"
target = "service.worker"
path = "/webhooks/shopify"
"#;

const PROJECT_NUMBER: &str = "projects/123456789";

/// What one case changes from the base.
enum Edit {
    /// Replace text in stack.toml.
    Toml(&'static str, &'static str),
    /// Remove the section `[NAME]` from stack.toml, and the sections that reference it.
    Drop(&'static str),
    /// Change the live records.
    Live(fn(&mut Observed)),
}

fn parse(text: &str) -> Stack {
    crate::config::parse(std::path::Path::new("stack.toml"), text).unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain([(OWNER_LABEL.to_string(), "shop".to_string())])
        .collect()
}

fn column(name: &str, kind: &str, mode: &str) -> FieldRecord {
    FieldRecord {
        name: name.into(),
        kind: kind.into(),
        mode: Some(mode.into()),
        description: None,
        fields: vec![],
    }
}

/// What applying `BASE` left in the project, with the ledger it wrote.
fn live(stack: &Stack) -> Observed {
    let mut o = Observed::empty(Ledger::empty("shop"));
    let p = "projects/acme-shop";
    let at = |kind: &str, id: &str| format!("{p}/locations/us-central1/{kind}/{id}");
    o.project_number = Some(PROJECT_NUMBER.into());
    o.services.push(ServiceRecord {
        urls: vec![],
        name: at("services", "worker"),
        labels: labels(&[]),
        etag: "e".into(),
        generation: 1,
        uri: "https://worker-x-uc.a.run.app".into(),
        reconciling: false,
        latest_ready_revision: "worker-1".into(),
        latest_created_revision: "worker-1".into(),
        failure: None,
        ingress: IngressKind::All,
        service_max_instances: 3,
        image: "img".into(),
        env: BTreeMap::new(),
        secret_env: BTreeMap::new(),
        service_account: String::new(),
        limits: BTreeMap::from([
            ("cpu".into(), "1".into()),
            ("memory".into(), "512Mi".into()),
        ]),
        cpu_idle: true,
        public: false,
        startup_probe: None,
        liveness_probe: None,
        min_instances: 0,
        max_instances: 3,
        concurrency: 80,
        timeout: Some(Duration::from_secs(300)),
        traffic: vec![],
        created: None,
    });
    for (_, spec) in queue::QueueKind::declared(stack) {
        o.queues.push(queue::to_record(&spec, None));
    }
    for (id, protection, expiration) in [("archive", "false", Some(30)), ("events", "true", None)] {
        o.datasets.push(DatasetRecord {
            name: format!("{p}/datasets/{id}"),
            project: "acme-shop".into(),
            dataset_id: id.into(),
            location: "US".into(),
            labels: labels(&[(dataset::PROTECTION_LABEL, protection)]),
            default_partition_expiration: None,
            default_table_expiration: expiration.map(|days| Duration::from_secs(days * 86_400)),
            etag: "e".into(),
        });
    }
    o.tables.push(TableRecord {
        name: format!("{p}/datasets/events/tables/orders"),
        dataset_id: "events".into(),
        table_id: "orders".into(),
        kind: "TABLE".into(),
        etag: "e".into(),
        labels: labels(&[]),
        columns: vec![
            column("id", "INTEGER", "REQUIRED"),
            column("created_at", "TIMESTAMP", "NULLABLE"),
        ],
        partition: Some(PartitionRecord {
            granularity: "DAY".into(),
            field: Some("created_at".into()),
            expiration: None,
        }),
        cluster_by: vec!["id".into()],
        require_partition_filter: false,
        view: None,
        num_bytes: None,
        long_term_bytes: None,
        created: None,
    });
    o.repositories.push(RepositoryRecord {
        name: at("repositories", "images"),
        format: "DOCKER".into(),
        labels: labels(&[]),
        keep_recent: Some(10),
        delete_untagged_after: None,
        policies: vec!["keep-recent".into()],
    });
    o.channels.push(ChannelRecord {
        name: format!("{p}/notificationChannels/101"),
        kind: "email".into(),
        display_name: "oncall".into(),
        labels: BTreeMap::from([("email_address".into(), "ops@example.com".into())]),
        user_labels: labels(&[(NAME_LABEL, "oncall")]),
    });
    o.budgets.push(BudgetRecord {
        name: "billingAccounts/012345-6789AB-CDEF01/budgets/b-1".into(),
        display_name: "sc:shop:monthly".into(),
        projects: vec![PROJECT_NUMBER.into()],
        amount: Some(budget::usd(300.0)),
        thresholds: vec![0.5, 1.0],
        forecast_thresholds: vec![],
        channels: vec![],
        etag: "e".into(),
    });
    o.alerts.push(AlertRecord {
        documentation: None,
        severity: None,
        name: format!("{p}/alertPolicies/202"),
        display_name: "errors".into(),
        user_labels: labels(&[(NAME_LABEL, "errors")]),
        enabled: true,
        combiner: "OR".into(),
        // A condition reads back as it was written: the same fields under the same names.
        conditions: stack.alerts["errors"]
            .conditions
            .iter()
            .map(|c| serde_json::from_value(serde_json::to_value(c).unwrap()).unwrap())
            .collect(),
        channels: vec![],
    });
    for (id, display_name) in [("runner", "Runner"), ("deployer", "Deployer")] {
        let email = format!("{id}@acme-shop.iam.gserviceaccount.com");
        o.service_accounts.push(ServiceAccountRecord {
            name: format!("{p}/serviceAccounts/{email}"),
            email,
            display_name: display_name.into(),
            description: String::new(),
            disabled: false,
        });
    }
    o.secrets.push(SecretRecord {
        name: format!("{p}/secrets/api-key"),
        labels: labels(&[("tier", "gold")]),
        etag: "e".into(),
        automatic_replication: true,
    });
    for (id, image) in [("nightly", "img"), ("cleanup", "cleanup:1")] {
        o.jobs.push(JobRecord {
            name: at("jobs", id),
            labels: labels(&[]),
            etag: "e".into(),
            image: image.into(),
            env: BTreeMap::new(),
            secret_env: BTreeMap::new(),
            limits: BTreeMap::new(),
            task_timeout: None,
            max_retries: None,
            parallelism: 0,
            task_count: 0,
            service_account: String::new(),
        });
    }
    o.schedules.push(ScheduleRecord {
        name: at("jobs", "hourly"),
        schedule: "0 * * * *".into(),
        time_zone: "Etc/UTC".into(),
        state: "ENABLED".into(),
        uri: Some(crate::resources::schedule::run_uri(&at("jobs", "nightly"))),
        http_method: "POST".into(),
        oauth_service_account: "runner@acme-shop.iam.gserviceaccount.com".into(),
        oauth_scope: String::new(),
    });
    o.shopify_webhooks.push(WebhookSubscriptionRecord {
        id: "gid://shopify/WebhookSubscription/1001".into(),
        topic: "ORDERS_UPDATED".into(),
        callback_url: Some("https://worker-x-uc.a.run.app/webhooks/shopify".into()),
        format: "JSON".into(),
        api_version: "2025-10".into(),
        points_at: Some(PointsAt {
            service: "worker".into(),
            stack: Some("shop".into()),
        }),
    });
    o.apis = api::needed(stack)
        .into_iter()
        .map(|a| ApiRecord {
            name: api::full_name(stack, a),
        })
        .collect();
    for (address, spec) in grant::declared_grants(stack) {
        o.ledger.record_binding(&spec.name, &address);
        o.grants.push(GrantRecord { name: spec.name });
    }
    // Queues, service accounts, schedules and budgets carry no label: the ledger owns them.
    let ledgered = [
        (&o.queues[0].name, "queue.webhooks"),
        (&o.budgets[0].name, "budget.monthly"),
        (&o.schedules[0].name, "schedule.hourly"),
        (&o.service_accounts[0].name, "service_account.runner"),
        (&o.service_accounts[1].name, "service_account.deployer"),
    ]
    .map(|(name, address)| (name.clone(), address.parse::<ResourceAddr>().unwrap()));
    for (name, address) in ledgered {
        o.ledger.record(&name, &address, LedgerStatus::Active);
    }
    o
}

/// The rendered plan of the base with `edit` applied.
fn rendered(edit: &Edit, options: PlanOptions) -> String {
    let mut text = BASE.to_string();
    match edit {
        Edit::Toml(from, to) => {
            assert!(text.contains(from), "{from:?} is not in the base stack");
            text = text.replacen(from, to, 1);
        }
        Edit::Drop(section) => {
            let header = format!("[{section}]");
            // What references the dropped resource goes with it.
            let reference = format!("= \"{section}\"");
            text = text
                .split("\n\n")
                .filter(|s| !s.starts_with(&header) && !s.contains(&reference))
                .collect::<Vec<_>>()
                .join("\n\n");
            assert!(text.len() < BASE.len(), "{header} is not in the base stack");
        }
        Edit::Live(_) => {}
    }
    let mut observed = live(&parse(BASE));
    if let Edit::Live(change) = edit {
        change(&mut observed);
    }
    let target = PlanTarget {
        stack: "shop".into(),
        project: "acme-shop".into(),
        region: "us-central1".into(),
        endpoint: Endpoint::Google,
    };
    let prices = PriceTable::builtin("us-central1");
    let plan = plan(&parse(&text), target, &observed, options, &prices).unwrap();
    crate::ui::plan_view::render(&plan, false)
}

#[test]
fn the_base_stack_plans_empty() {
    let text = rendered(&Edit::Live(|_| {}), PlanOptions::default());
    assert!(text.starts_with("No changes."), "{text}");
}

/// One case per (kind, action) pair the planner can produce; `*_delete` cases pass
/// --allow-data-loss (replaces show the refusal), `queue_delete` --allow-queue-delete.
#[test]
fn every_kind_and_action_renders() {
    use Edit::{Drop, Live, Toml};
    #[rustfmt::skip]
    let cases: &[(&str, Edit)] = &[
        ("service_create", Live(|o| o.services.clear())),
        ("service_update", Toml("max_instances = 3", "max_instances = 5")),
        ("service_delete", Drop("service.worker")),
        ("queue_create", Live(|o| o.queues.clear())),
        ("queue_update", Toml("max_attempts = 5", "max_attempts = 10")),
        ("queue_retire", Drop("queue.webhooks")),
        ("queue_delete", Drop("queue.webhooks")),
        ("dataset_create", Live(|o| drop(o.datasets.remove(0)))),
        ("dataset_update", Toml(r#""30d""#, r#""60d""#)),
        ("dataset_replace", Toml(r#"location = "US""#, r#"location = "EU""#)),
        ("dataset_delete", Drop("dataset.archive")),
        ("table_create", Live(|o| o.tables.clear())),
        ("table_update", Toml(r#"["id"]"#, r#"["id", "created_at"]"#)),
        ("table_replace", Toml(r#""DAY""#, r#""MONTH""#)),
        ("table_delete", Drop("table.orders")),
        ("repository_create", Live(|o| o.repositories.clear())),
        ("repository_update", Toml("keep_recent = 10", "keep_recent = 20")),
        ("repository_replace", Live(|o| o.repositories[0].format = "MAVEN".into())),
        ("repository_delete", Drop("repository.images")),
        ("channel_create", Live(|o| o.channels.clear())),
        ("channel_update", Toml("ops@example.com", "oncall@example.com")),
        ("channel_delete", Drop("channel.oncall")),
        ("budget_create", Live(|o| o.budgets.clear())),
        ("budget_update", Toml("amount_usd = 300", "amount_usd = 500")),
        ("budget_delete", Drop("budget.monthly")),
        ("alert_create", Live(|o| o.alerts.clear())),
        ("alert_update", Toml("threshold = 5", "threshold = 10")),
        ("alert_delete", Drop("alert.errors")),
        ("service_account_create", Live(|o| o.service_accounts.truncate(1))),
        ("service_account_update", Toml(r#""Deployer""#, r#""Release deployer""#)),
        ("service_account_delete", Drop("service_account.deployer")),
        ("secret_create", Live(|o| o.secrets.clear())),
        ("secret_update", Toml(r#""gold""#, r#""silver""#)),
        ("job_create", Live(|o| o.jobs.truncate(1))),
        ("job_update", Toml("cleanup:1", "cleanup:2")),
        ("job_delete", Drop("job.cleanup")),
        ("schedule_create", Live(|o| o.schedules.clear())),
        ("schedule_update", Toml(r#""0 * * * *""#, r#""30 * * * *""#)),
        ("schedule_delete", Drop("schedule.hourly")),
        ("api_create", Live(|o| o.apis.retain(|a| !a.name.ends_with("/run.googleapis.com")))),
        ("iam_create", Live(|o| o.grants.retain(|g| !g.name.contains("logWriter")))),
        ("shopify_webhook_create", Live(|o| o.shopify_webhooks.clear())),
        ("shopify_webhook_update", Toml(r#""/webhooks/shopify""#, r#""/webhooks/orders""#)),
        ("shopify_webhook_new_topic", Toml(r#""ORDERS_UPDATED""#, r#""ORDERS_CREATE""#)),
        ("shopify_webhook_delete", Drop("shopify_webhook.orders")),
        ("iam_delete", Toml(r#"roles = ["roles/logging.logWriter"]"#, "")),
    ];
    for (name, edit) in cases {
        let options = PlanOptions {
            allow_data_loss: name.ends_with("_delete"),
            allow_queue_delete: *name == "queue_delete",
            destroy: false,
        };
        insta::assert_snapshot!(*name, rendered(edit, options));
    }
}
