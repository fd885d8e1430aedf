//! Every kind through every layer: a fixture with one resource of each kind is validated, priced,
//! applied, planned empty, adopted and audited, and the README's table of kinds matches
//! [`Kind::ALL`], so a kind missing from a layer, the fixture or the README fails here.

use std::collections::{BTreeMap, BTreeSet};

use stackctl::model::{Kind, ResourceAddr};

use crate::support::*;

const EVERY_KIND: &str = include_str!("../fixtures/every-kind.toml");
const README: &str = include_str!("../../README.md");

/// The kinds whose declared resources have a monthly price (the others are free); `cost --json`
/// must price exactly these for the fixture, with nothing unknown.
const PRICED: [Kind; 9] = [
    Kind::Service,
    Kind::Queue,
    Kind::Table,
    Kind::Repository,
    Kind::Alert,
    Kind::Job,
    Kind::Schedule,
    Kind::Firestore,
    Kind::Gateway,
];

fn all_kinds() -> BTreeSet<Kind> {
    Kind::ALL.into_iter().collect()
}

fn kind_of(address: &str) -> Kind {
    address
        .parse::<ResourceAddr>()
        .unwrap_or_else(|e| panic!("{address}: {e}"))
        .kind
}

/// The README's kinds table: kind -> its cells after the first (stack.toml, Google resource,
/// owned by, data-bearing), backticks removed.
fn readme_kinds() -> BTreeMap<Kind, Vec<String>> {
    let mut lines = README
        .lines()
        .skip_while(|l| !l.starts_with("| Kind | stack.toml |"))
        .skip(2);
    let mut rows = BTreeMap::new();
    for line in lines.by_ref().take_while(|l| l.starts_with('|')) {
        let cells: Vec<String> = line
            .trim_matches('|')
            .split(" | ")
            .map(|c| c.trim().replace('`', ""))
            .collect();
        let kind: Kind = cells[0]
            .parse()
            .unwrap_or_else(|e| panic!("README kinds table row {line:?}: {e}"));
        assert!(
            rows.insert(kind, cells[1..].to_vec()).is_none(),
            "README kinds table lists {kind} twice"
        );
    }
    assert!(
        !rows.is_empty(),
        "README.md has no `| Kind | stack.toml |` table"
    );
    rows
}

/// `validate`'s summary (`..., 1 service(s), ..., 11 implied API(s), 8 implied IAM grant(s).`)
/// as a count per kind.
fn validate_counts(summary: &str) -> BTreeMap<Kind, usize> {
    let (_, counts) = summary
        .trim()
        .trim_end_matches('.')
        .split_once("), ")
        .unwrap_or_else(|| panic!("validate summary {summary:?}"));
    counts
        .split(", ")
        .map(|part| {
            let (n, what) = part.split_once(' ').expect("`N kind(s)`");
            let kind = match what {
                "implied API(s)" => Kind::Api,
                "implied IAM grant(s)" => Kind::Grant,
                other => other
                    .trim_end_matches("(s)")
                    .parse()
                    .unwrap_or_else(|e| panic!("validate summary {part:?}: {e}")),
            };
            (kind, n.parse().expect("a count"))
        })
        .collect()
}

#[test]
fn readme_kinds_table_has_one_row_per_kind_and_a_reference_section_per_declared_kind() {
    let rows = readme_kinds();
    assert_eq!(
        rows.keys().copied().collect::<BTreeSet<_>>(),
        all_kinds(),
        "README.md's kinds table must have exactly one row per Kind::ALL"
    );
    for (kind, cells) in &rows {
        let table = format!("[{}.NAME]", kind.as_str());
        if kind.is_declared_as_table() {
            assert_eq!(cells[0], table, "README kinds table, {kind}");
            assert!(
                README.contains(&format!("### `{table}` — ")),
                "README.md has no reference section `### `{table}` — ...` for {kind}"
            );
        } else {
            assert_eq!(cells[0], "implied", "README kinds table, {kind}");
        }
    }
}

#[test]
fn one_resource_of_every_kind_validates_prices_applies_replans_empty_adopts_and_audits() {
    let emulator = Emulator::start();
    let ws = Workspace::new(EVERY_KIND);

    // validate: one of every declared kind, and at least one of each implied kind.
    let valid = ws.run(&["validate"]).expect(0);
    let counts = validate_counts(&valid.stdout);
    assert_eq!(
        counts.keys().copied().collect::<BTreeSet<_>>(),
        all_kinds(),
        "validate must count every kind of the fixture: {}",
        valid.stdout
    );
    for (kind, n) in &counts {
        if kind.is_declared_as_table() {
            assert_eq!(*n, 1, "one {kind} in the fixture: {}", valid.stdout);
        } else {
            assert!(*n > 0, "{kind}: {}", valid.stdout);
        }
    }

    // cost: every priced kind priced, nothing unknown.
    let cost = ws.run(&["cost", "--json"]).expect(0);
    let cost: serde_json::Value = serde_json::from_str(&cost.stdout).expect("cost JSON");
    let resources = cost["resources"].as_object().expect("cost resources");
    assert_eq!(
        resources
            .keys()
            .map(|a| kind_of(a))
            .collect::<BTreeSet<_>>(),
        PRICED.into_iter().collect(),
        "{cost:#}"
    );
    for (address, estimate) in resources {
        assert!(
            estimate["monthly_usd"]
                .as_f64()
                .is_some_and(|usd| usd > 0.0)
                && estimate["unknown"].is_null(),
            "{address}: {estimate:#}"
        );
    }
    assert_eq!(cost["unknown"], serde_json::json!([]), "{cost:#}");

    // plan: a create for every kind, and nothing but creates.
    let plan = ws.on(&emulator, &["plan", "--json"]).expect(0);
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).expect("plan JSON");
    let changes = plan["changes"].as_array().expect("changes");
    let mut created = BTreeSet::new();
    for change in changes {
        assert_eq!(change["action"], "create", "{change:#}");
        created.insert(kind_of(change["address"].as_str().expect("address")));
    }
    // Shopify subscriptions wait for their token (api-key's value, set after this apply).
    created.insert(Kind::ShopifyWebhook);
    assert_eq!(created, all_kinds(), "{plan:#}");

    // apply: every planned create happens, then the plan is empty.
    let applied = ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    for change in changes {
        let address = change["address"].as_str().expect("address");
        assert!(
            applied.stdout.contains(&format!("+ {address}")),
            "{address}: {}",
            applied.stdout
        );
    }
    assert!(
        applied
            .stdout
            .contains(&format!("Apply complete: {} changed.", changes.len())),
        "{}",
        applied.stdout
    );
    let (status, body) = emulator.http(
        "POST",
        "/v1/projects/test-project/secrets/api-key:addVersion",
        Some(r#"{"payload": {"data": "c2hwYXRfZXZlcnlfa2luZA=="}}"#),
    );
    assert_eq!(status, 200, "{body}");
    let subscribed = ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert!(
        subscribed.stdout.contains("+ shopify_webhook.orders"),
        "{}",
        subscribed.stdout
    );
    let again = ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
    assert!(again.stdout.starts_with("No changes."), "{}", again.stdout);

    // The README's "Owned by" column is what apply did: ledger kinds are in the ledger, label
    // kinds and APIs are not, grants are ledger bindings.
    let (status, body) = emulator.http(
        "GET",
        "/storage/v1/b/test-project-stackctl-state/o/stackctl%2Fevery-kind%2Fledger.json?alt=media",
        None,
    );
    assert_eq!(status, 200, "{body}");
    let ledger: serde_json::Value = serde_json::from_str(&body).expect("ledger JSON");
    let readme = readme_kinds();
    for change in changes {
        let address = change["address"].as_str().expect("address");
        let kind = kind_of(address);
        let owned_by = readme[&kind][2].as_str();
        // By address: a budget's server-assigned name is not known to the plan.
        let recorded = ledger["resources"]
            .as_object()
            .is_some_and(|r| r.values().any(|e| e["address"] == address));
        match kind {
            Kind::Grant => assert!(
                ledger["bindings"]
                    .as_object()
                    .is_some_and(|b| b.values().any(|b| b["address"] == address)),
                "{address} is not a ledger binding: {ledger:#}"
            ),
            Kind::Api => assert!(!recorded, "{address}: {ledger:#}"),
            _ if owned_by == "ledger" => {
                assert!(recorded, "{address} is not in the ledger: {ledger:#}")
            }
            _ => {
                assert!(
                    owned_by.starts_with("label ")
                        || owned_by.starts_with("user labels ")
                        || owned_by.starts_with("annotations "),
                    "README kinds table, {kind}: owned by {owned_by:?}"
                );
                assert!(
                    !recorded,
                    "{address} is owned by label, yet in the ledger: {ledger:#}"
                );
            }
        }
    }

    // adopt: every declared resource, labelled or in the ledger, is already ours.
    let declared: Vec<&str> = changes
        .iter()
        .map(|c| c["address"].as_str().expect("address"))
        .filter(|a| kind_of(a).is_declared_as_table())
        .collect();
    assert!(declared.contains(&"service.app") && declared.contains(&"queue.tasks"));
    let mut args = vec!["adopt"];
    args.extend(&declared);
    let adopted = ws.on(&emulator, &args).expect(0);
    for address in &declared {
        assert!(
            adopted
                .stdout
                .contains(&format!("{address} is already owned by this stack.")),
            "{address}: {}",
            adopted.stdout
        );
    }
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);

    // audit: valid JSON about this project; minutes old, nothing is waste yet.
    let audit = ws.on(&emulator, &["audit", "--json"]).expect(0);
    let audit: serde_json::Value = serde_json::from_str(&audit.stdout).expect("audit JSON");
    assert_eq!(audit["project"], "test-project", "{audit:#}");
    assert_eq!(audit["findings"], serde_json::json!([]), "{audit:#}");
}
