//! The data, money and observability kinds end to end: convergence, one-field changes, the
//! data-loss refusal, a job's `writes` granting `roles/bigquery.dataEditor` on the table, and
//! Google's own Python clients reading back what apply created.

use crate::support::*;

const SCHEMA: &str = r#"[
  {"name": "id", "type": "INT64", "mode": "REQUIRED"},
  {"name": "customer_id", "type": "STRING"},
  {"name": "created_at", "type": "TIMESTAMP", "mode": "REQUIRED"}
]"#;

/// The data, money and observability blocks appended to [`basic_stack`].
const DATA_BLOCKS: &str = r#"
[dataset.shopify]
default_partition_expiration = "730d"

[table.orders]
dataset = "dataset.shopify"
schema = "schemas/orders.json"
partition = { field = "created_at", granularity = "DAY", expiration = "730d" }
cluster_by = ["customer_id"]
require_partition_filter = true

[table.events]
dataset = "dataset.shopify"
[[table.events.columns]]
name = "at"
type = "TIMESTAMP"
[[table.events.columns]]
name = "kind"
type = "STRING"
mode = "REQUIRED"

[repository.workers]
keep_recent = 10
delete_untagged_after = "14d"

[channel.oncall]
type = "email"
email = "ops@example.com"

[budget.monthly]
amount_usd = 300
thresholds = [0.5, 0.9, 1.0]
notify = ["channel.oncall"]

[alert.worker-errors]
template = "cloud_run_5xx_ratio"
service = "service.worker"
notify = ["channel.oncall"]

[alert.webhook-backlog]
template = "cloud_tasks_queue_depth"
queue = "queue.webhooks"
threshold = 1000
duration = "900s"
notify = ["channel.oncall"]

[alert.bytes]
conditions = [{ filter = 'metric.type = "bigquery.googleapis.com/query/scanned_bytes_billed" AND resource.type = "global"', comparison = ">", threshold = 1e12, duration = "0s", aligner = "ALIGN_SUM", period = "3600s" }]
"#;

/// A job writing `table.orders` as its own identity (added to one test only).
const WRITER_BLOCKS: &str = r#"
[service_account.loader]

[job.load-orders]
image = "us-docker.pkg.dev/cloudrun/container/job"
service_account = "service_account.loader"
writes = ["table.orders"]
"#;

const LOADER: &str = "serviceAccount:loader@test-project.iam.gserviceaccount.com";

/// The members of `role` in the table's IAM policy, read over plain HTTP.
fn table_members(emulator: &Emulator, table: &str, role: &str) -> Vec<String> {
    let (status, body) = emulator.http(
        "POST",
        &format!("/bigquery/v2/projects/test-project/datasets/shopify/tables/{table}:getIamPolicy"),
        Some("{}"),
    );
    assert_eq!(status, 200, "{body}");
    let policy: serde_json::Value = serde_json::from_str(&body).unwrap();
    policy["bindings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["role"] == role)
        .flat_map(|b| b["members"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m.as_str().map(String::from))
        .collect()
}

fn workspace(name: &str) -> Workspace {
    let stack = basic_stack(name).replacen(
        "region = \"us-central1\"\n",
        "region = \"us-central1\"\nbilling_account = \"012345-6789AB-CDEF01\"\n",
        1,
    ) + DATA_BLOCKS;
    let ws = Workspace::new(&stack);
    std::fs::create_dir_all(ws.path().join("schemas")).expect("schemas dir");
    std::fs::write(ws.path().join("schemas/orders.json"), SCHEMA).expect("schema file");
    ws
}

#[test]
fn every_data_kind_converges_and_one_field_changes_show_exactly_those_fields() {
    let emulator = Emulator::start();
    let ws = workspace("data");
    let text = std::fs::read_to_string(ws.file()).unwrap();
    ws.write(&format!("{text}{WRITER_BLOCKS}"));
    let first = ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert!(
        first.stdout.contains("Apply complete: 24 changed."),
        "{}",
        first.stdout
    );
    // The 19 of the data stack plus the account, the job, their API and two grants: `writes`
    // granted dataEditor on the written table only (and jobUser on the project).
    assert_eq!(
        table_members(&emulator, "orders", "roles/bigquery.dataEditor"),
        vec![LOADER.to_string()]
    );
    assert!(table_members(&emulator, "events", "roles/bigquery.dataEditor").is_empty());
    let again = ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
    assert!(again.stdout.starts_with("No changes."), "{}", again.stdout);

    ws.edit("amount_usd = 300", "amount_usd = 299.99");
    ws.edit("keep_recent = 10", "keep_recent = 5");
    ws.edit(
        "email = \"ops@example.com\"",
        "email = \"oncall@example.com\"",
    );
    ws.edit("threshold = 1000", "threshold = 500");
    ws.edit(
        "cluster_by = [\"customer_id\"]",
        "cluster_by = [\"customer_id\", \"id\"]",
    );
    ws.edit(
        "default_partition_expiration = \"730d\"",
        "default_partition_expiration = \"365d\"",
    );
    let changed = ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(2);
    assert_eq!(
        field_lines(&changed.stdout),
        vec![
            "~ default_partition_expiration = \"730d\" -> \"365d\"".to_string(),
            "~ cluster_by = [\"customer_id\"] -> [\"customer_id\", \"id\"]".to_string(),
            "~ keep_recent = 10 -> 5".to_string(),
            "~ email = \"ops@example.com\" -> \"oncall@example.com\"".to_string(),
            "~ amount_usd = 300 -> 299.99".to_string(),
            "~ conditions[0].threshold = 1000 -> 500".to_string(),
        ],
        "{}",
        changed.stdout
    );
    assert!(
        changed
            .stdout
            .contains("applies only to tables created from now on"),
        "{}",
        changed.stdout
    );
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);

    // An added nullable column is in place too.
    let text = std::fs::read_to_string(ws.file()).unwrap();
    ws.write(&format!(
        "{text}\n[[table.events.columns]]\nname = \"note\"\ntype = \"STRING\"\n"
    ));
    let added = ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(2);
    assert_eq!(
        field_lines(&added.stdout),
        vec!["+ columns.note = \"STRING NULLABLE\""],
        "{}",
        added.stdout
    );
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);

    // A table no longer written: its dataEditor grant is revoked (jobUser goes with it).
    ws.edit("writes = [\"table.orders\"]\n", "");
    let revoke = ws.on(&emulator, &["plan"]).expect(0);
    assert!(
        revoke.stdout.contains(
            "# iam: roles/bigquery.dataEditor on table.orders for service_account.loader will be revoked"
        ),
        "{}",
        revoke.stdout
    );
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert!(table_members(&emulator, "orders", "roles/bigquery.dataEditor").is_empty());
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
}

#[test]
fn a_partition_change_is_a_replacement_refused_without_allow_data_loss() {
    let emulator = Emulator::start();
    let ws = workspace("dataloss");
    let text = std::fs::read_to_string(ws.file()).unwrap();
    ws.write(&format!("{text}{WRITER_BLOCKS}"));
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert_eq!(
        table_members(&emulator, "orders", "roles/bigquery.dataEditor"),
        vec![LOADER.to_string()]
    );
    ws.edit("granularity = \"DAY\"", "granularity = \"MONTH\"");

    let plan = ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(2);
    assert!(plan.stdout.contains("-/+ table.orders"), "{}", plan.stdout);
    assert!(
        plan.stdout
            .contains("~ partition.granularity = \"DAY\" -> \"MONTH\" # forces replacement"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("1 to replace"), "{}", plan.stdout);
    // The new table starts with an empty IAM policy: the loader's grant is planned again.
    assert!(
        plan.stdout.contains(
            "+ iam: roles/bigquery.dataEditor on table.orders for service_account.loader"
        ) && plan
            .stdout
            .contains("granted again: table.orders is replaced with an empty policy"),
        "{}",
        plan.stdout
    );

    let refused = ws.on(&emulator, &["apply", "--auto-approve"]).expect(1);
    assert!(
        refused
            .stderr
            .contains("refusing to apply a plan that drops data"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("copy it")
            && refused.stderr.contains("recreate it")
            && refused.stderr.contains("backfill"),
        "the error names the migration path: {}",
        refused.stderr
    );
    // Nothing changed.
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(2);

    // Saved with --allow-data-loss, the plan (replacement and re-grant) applies as planned.
    ws.on(
        &emulator,
        &["plan", "--allow-data-loss", "--out", "replace.json"],
    )
    .expect(0);
    ws.on(&emulator, &["apply", "replace.json", "--allow-data-loss"])
        .expect(0);
    assert_eq!(
        table_members(&emulator, "orders", "roles/bigquery.dataEditor"),
        vec![LOADER.to_string()],
        "the replaced table is writable by the loader again"
    );
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
}

#[test]
fn removed_resources_are_deleted_under_the_safety_rules() {
    let emulator = Emulator::start();
    let ws = workspace("removal");
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    let text = std::fs::read_to_string(ws.file()).unwrap();
    let cut = |text: &str, from: &str, to: &str| {
        let i = text.find(from).unwrap();
        let j = text.find(to).unwrap();
        format!("{}{}", &text[..i], &text[j..])
    };
    // The budget and one alert leave: deleted (the budget through the ledger).
    let text = cut(&text, "[budget.monthly]", "[alert.worker-errors]");
    let text = &text[..text.find("[alert.bytes]").unwrap()];
    ws.write(text);
    let plan = ws.on(&emulator, &["plan"]).expect(0);
    assert!(plan.stdout.contains("- budget.monthly"), "{}", plan.stdout);
    assert!(plan.stdout.contains("- alert.bytes"), "{}", plan.stdout);
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);

    // A protected dataset is never deleted.
    let text = std::fs::read_to_string(ws.file()).unwrap();
    let text = cut(&text, "[dataset.shopify]", "[repository.workers]");
    ws.write(&text);
    let refused = ws.on(&emulator, &["plan"]).expect(1);
    assert!(
        refused.stderr.contains("deletion_protection = true"),
        "{}",
        refused.stderr
    );
}

#[test]
fn googles_python_clients_read_back_the_data_kinds() {
    let emulator = Emulator::start();
    let ws = workspace("readers");
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    let seen: serde_json::Value = python_readback(
        "readback_data.py",
        &emulator,
        &[
            "--project",
            "test-project",
            "--billing-account",
            "012345-6789AB-CDEF01",
        ],
    );

    let dataset = &seen["datasets"]["shopify"];
    assert_eq!(dataset["location"], "US", "{dataset}");
    assert_eq!(dataset["labels"]["stackctl-stack"], "readers", "{dataset}");
    assert_eq!(
        dataset["default_partition_expiration_ms"],
        730 * 86_400_000i64,
        "{dataset}"
    );
    let orders = &seen["tables"]["orders"];
    assert_eq!(orders["partition"]["type"], "DAY", "{orders}");
    assert_eq!(orders["partition"]["field"], "created_at", "{orders}");
    assert_eq!(
        orders["clustering"],
        serde_json::json!(["customer_id"]),
        "{orders}"
    );
    assert_eq!(orders["require_partition_filter"], true, "{orders}");
    assert_eq!(orders["columns"][0][0], "id", "{orders}");

    let budget = &seen["budgets"]["sc:readers:monthly"];
    assert_eq!(budget["units"], 300, "{budget}");
    assert_eq!(budget["nanos"], 0, "{budget}");
    assert_eq!(
        budget["thresholds"],
        serde_json::json!([0.5, 0.9, 1.0]),
        "{budget}"
    );
    let project = budget["projects"][0].as_str().unwrap();
    assert!(
        project
            .trim_start_matches("projects/")
            .chars()
            .all(|c| c.is_ascii_digit()),
        "the filter uses the project number: {budget}"
    );
    let channel = &seen["channels"]["oncall"];
    assert_eq!(channel["type"], "email", "{channel}");
    assert_eq!(channel["email"], "ops@example.com", "{channel}");
    assert_eq!(budget["channels"][0], channel["name"], "{budget}");

    let backlog = &seen["alerts"]["webhook-backlog"];
    assert_eq!(backlog["channels"][0], channel["name"], "{backlog}");
    assert_eq!(backlog["conditions"][0]["threshold"], 1000.0, "{backlog}");
    assert!(
        backlog["conditions"][0]["filter"]
            .as_str()
            .unwrap()
            .contains("webhooks"),
        "{backlog}"
    );
    assert!(seen["alerts"]["worker-errors"].is_object(), "{seen}");
}
