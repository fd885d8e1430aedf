//! `[firestore.NAME]` through plan and apply against the emulator's Firestore Admin API: TTL
//! policies added and removed field by field, delete protection honoured, deletes only with
//! `--allow-data-loss`, and the database read back as Google's REST API serves it.

use crate::support::*;

fn stack(ttl: &str, protection: bool) -> String {
    format!(
        r#"[stack]
name = "docs"
project = "test-project"
region = "us-central1"

[firestore.main]
id = "(default)"
location = "nam5"
ttl = [{ttl}]
deletion_protection = {protection}
"#
    )
}

/// [`field_lines`] with the alignment padding collapsed (`+ location = "nam5"`).
fn spaced_field_lines(plan: &str) -> Vec<String> {
    field_lines(plan)
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

const NO_DATABASE: &str = r#"[stack]
name = "docs"
project = "test-project"
region = "us-central1"
"#;

#[test]
fn a_database_and_its_ttl_policies_converge_and_deletes_need_both_the_flag_and_no_protection() {
    let emulator = Emulator::start();
    let ws = Workspace::new(&stack("\"webhook_deliveries.expire_at\"", true));

    let plan = ws.on(&emulator, &["plan"]).expect(0);
    let fields = spaced_field_lines(&plan.stdout);
    for expected in [
        "+ location = \"nam5\"",
        "+ type = \"FIRESTORE_NATIVE\"",
        "+ deletion_protection = true",
        "+ ttl.webhook_deliveries.expire_at = \"expires documents\"",
    ] {
        assert!(
            fields.iter().any(|f| f == expected),
            "{expected}: {}",
            plan.stdout
        );
    }
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);

    // What Google's REST API serves: the database, protected, and its TTL field.
    let (status, body) =
        emulator.http("GET", "/v1/projects/test-project/databases/(default)", None);
    assert_eq!(status, 200, "{body}");
    let database: serde_json::Value = serde_json::from_str(&body).expect("database JSON");
    assert_eq!(database["locationId"], "nam5");
    assert_eq!(database["type"], "FIRESTORE_NATIVE");
    assert_eq!(
        database["deleteProtectionState"],
        "DELETE_PROTECTION_ENABLED"
    );
    let (status, body) = emulator.http(
        "GET",
        "/v1/projects/test-project/databases/(default)/collectionGroups/-/fields?filter=ttlConfig:*",
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("collectionGroups/webhook_deliveries/fields/expire_at"),
        "{body}"
    );

    // One policy swapped for another: one added, one removed, in place.
    ws.write(&stack("\"webhook_bodies.expire_at\"", true));
    let plan = ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(2);
    let fields = spaced_field_lines(&plan.stdout);
    assert!(
        fields.contains(&"+ ttl.webhook_bodies.expire_at = \"expires documents\"".to_string())
            && fields
                .iter()
                .any(|f| f.starts_with("- ttl.webhook_deliveries.expire_at")),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("~ firestore.main"), "{}", plan.stdout);
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);

    // Removed while protected: refused with the way forward, nothing deleted.
    ws.write(NO_DATABASE);
    let refused = ws.on(&emulator, &["plan", "--allow-data-loss"]).expect(1);
    assert!(
        refused.stderr.contains("deletion_protection = false"),
        "{}",
        refused.stderr
    );
    // Unprotected: still needs --allow-data-loss.
    ws.write(&stack("\"webhook_bodies.expire_at\"", false));
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    ws.write(NO_DATABASE);
    let refused = ws.on(&emulator, &["apply", "--auto-approve"]).expect(1);
    assert!(
        refused.stderr.contains("--allow-data-loss"),
        "{}",
        refused.stderr
    );
    let (status, _) = emulator.http("GET", "/v1/projects/test-project/databases/(default)", None);
    assert_eq!(status, 200, "the database must still exist");
    ws.on(&emulator, &["apply", "--auto-approve", "--allow-data-loss"])
        .expect(0);
    let (status, _) = emulator.http("GET", "/v1/projects/test-project/databases/(default)", None);
    assert_eq!(status, 404, "deleted with --allow-data-loss");
}

#[test]
fn a_database_the_stack_does_not_own_is_refused_not_adopted_silently() {
    let emulator = Emulator::start();
    let (status, body) = emulator.http(
        "POST",
        "/v1/projects/test-project/databases?databaseId=(default)",
        Some(r#"{"locationId": "nam5", "type": "FIRESTORE_NATIVE"}"#),
    );
    assert_eq!(status, 200, "{body}");
    let ws = Workspace::new(&stack("", false));
    let plan = ws.on(&emulator, &["plan"]).expect(1);
    assert!(
        plan.stderr.contains("stackctl adopt firestore.main"),
        "{}",
        plan.stderr
    );
    ws.on(&emulator, &["adopt", "firestore.main"]).expect(0);
    let plan = ws.on(&emulator, &["plan"]).expect(0);
    assert!(
        !plan.stdout.contains("# firestore.main"),
        "adopted as it is: {}",
        plan.stdout
    );
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
}
