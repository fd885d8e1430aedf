//! The Firestore rule (FS1): a database nobody read a document of in the idle window.

use super::{RuleContext, finding, short, younger_than_window};
use crate::audit::{Finding, Rule, Severity};

pub(super) fn unread_database(context: &RuleContext) -> Vec<Finding> {
    let days = context.window.idle_days;
    context
        .inventory
        .firestores
        .iter()
        .filter(|database| {
            let recorded = context
                .inventory
                .ledgered
                .get(&database.name)
                .copied()
                .flatten();
            !younger_than_window(context, recorded)
        })
        .filter(|database| {
            context
                .signals
                .document_reads
                .get(database.database_id())
                .copied()
                .unwrap_or(0.0)
                <= 0.0
        })
        .map(|database| {
            let id = short(&database.name);
            finding(
                Rule::UnreadFirestoreDatabase,
                &database.name,
                format!(
                    "no document reads in {days} days (firestore.googleapis.com/document/read_count); what it stores and every write to it are billed (storage $0.18/GiB-month, writes $0.18 per 100,000) for nothing read back"
                ),
                None,
                Severity::Low,
                format!(
                    "if nothing needs it, export it (gcloud firestore export gs://BUCKET --database='{id}'), then set deletion_protection = false, apply, remove its [firestore.*] stanza and apply with --allow-data-loss"
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::tests::{inventory, run_audit};
    use crate::audit::Signals;
    use crate::provider::firestore::FirestoreRecord;

    fn database(id: &str) -> FirestoreRecord {
        FirestoreRecord {
            name: format!("projects/p/databases/{id}"),
            location: "nam5".into(),
            database_type: "FIRESTORE_NATIVE".into(),
            delete_protection: true,
            point_in_time_recovery: false,
            free_tier: false,
            etag: "e".into(),
            ttl: vec![],
        }
    }

    #[test]
    fn a_database_without_reads_in_the_window_is_reported_and_a_read_one_is_not() {
        let mut inv = inventory(vec![], vec![]);
        inv.firestores = vec![database("(default)"), database("archive")];
        let signals = Signals {
            document_reads: BTreeMap::from([("(default)".into(), 12_000.0)]),
            ..Signals::default()
        };
        let findings = run_audit(&inv, &signals);
        let fs1: Vec<_> = findings.iter().filter(|f| f.1 == "FS1").collect();
        assert_eq!(fs1.len(), 1, "{findings:?}");
        assert_eq!(fs1[0].0, "archive");
    }
}
