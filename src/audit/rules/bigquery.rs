//! BigQuery rules (BQ1-BQ4): unpartitioned tables, partitions that never expire, cold tables
//! and large tables that allow unfiltered scans.

use super::{GIB, RuleContext, finding, gib, owned_fix, owner};
use crate::audit::{Finding, Rule, Severity};
use crate::cost::estimate::TableUsage;
use crate::cost::{PriceItem, estimate, round_usd};
use crate::provider::bigquery::TableRecord;

/// A table at least this large (logical bytes) makes an unfiltered query expensive (BQ4).
const LARGE_TABLE_BYTES: u64 = 100 << 30;

/// The size a finding's evidence quotes: `numBytes` or "size not reported".
fn size_text(bytes: Option<u64>) -> String {
    bytes.map_or("size not reported".into(), |b| {
        format!("{b} logical bytes ({:.2} GiB)", gib(b))
    })
}

/// Tables that store rows: not views (materialized ones manage their own storage), external
/// tables or snapshots. A table whose type is not reported counts.
pub(super) fn plain_tables<'a>(context: &'a RuleContext) -> impl Iterator<Item = &'a TableRecord> {
    context
        .inventory
        .tables
        .iter()
        .filter(|t| t.view.is_none() && (t.kind.is_empty() || t.kind == "TABLE"))
}

fn table_fix(table: &TableRecord, change: &str, fallback: String) -> String {
    owned_fix(&table.labels, "table", &table.table_id, change, fallback)
}

/// Google's Recommender for tables whose queries a partitioning or clustering would cut.
const PARTITION_CLUSTER_RECOMMENDER: &str = "google.bigquery.table.PartitionClusterRecommender (suggests a partitioning or clustering column from the queries it sees, with the bytes it would save)";

pub(super) fn table_without_partitioning(context: &RuleContext) -> Vec<Finding> {
    plain_tables(context)
        .filter(|t| t.partition.is_none())
        .map(|table| {
            let large = table.num_bytes.is_some_and(|b| b >= LARGE_TABLE_BYTES);
            let mut found = finding(
                Rule::TableWithoutPartitioning,
                &table.name,
                format!(
                    "no timePartitioning: every query scans the whole table; {}",
                    size_text(table.num_bytes)
                ),
                None,
                if large { Severity::Medium } else { Severity::Low },
                table_fix(
                    table,
                    "set partition = { field = \"COLUMN\" } (forces a replacement: copy the data first)",
                    format!(
                        "recreate it partitioned: bq query --destination_table {}.{}_partitioned --time_partitioning_field COLUMN 'SELECT * FROM {}.{}'",
                        table.dataset_id, table.table_id, table.dataset_id, table.table_id
                    ),
                ),
            );
            found.recommender = Some(PARTITION_CLUSTER_RECOMMENDER.into());
            found
        })
        .collect()
}

pub(super) fn partitions_never_expire(context: &RuleContext) -> Vec<Finding> {
    let price = context
        .prices
        .usd(PriceItem::BigQueryLongTermStorageGibMonth);
    plain_tables(context)
        .filter(|t| t.partition.as_ref().is_some_and(|p| p.expiration.is_none()))
        .map(|table| {
            // What expiring partitions unmodified for 90 days would stop storing.
            let waste = table.long_term_bytes.map(|b| round_usd(gib(b) * price));
            let long_term = table.long_term_bytes.map_or("not reported".into(), |b| {
                format!("{b} bytes ({:.2} GiB at ${price:.2}/GiB-month)", gib(b))
            });
            finding(
                Rule::PartitionsNeverExpire,
                &table.name,
                format!(
                    "partitioned without timePartitioning.expirationMs: partitions are kept forever; {}, long-term (unmodified 90 days): {long_term}",
                    size_text(table.num_bytes)
                ),
                waste,
                waste.map_or(Severity::Low, Severity::of_waste),
                table_fix(
                    table,
                    "add expiration = \"730d\" to partition",
                    format!(
                        "bq update --time_partitioning_expiration SECONDS {}.{}",
                        table.dataset_id, table.table_id
                    ),
                ),
            )
        })
        .collect()
}

/// A cold table smaller than this is not reported: its storage costs under $0.02 a month.
const COLD_TABLE_MIN_BYTES: u64 = 1 << 30;

/// A month of a table's logical storage, `bytes` of it (the long-term part at its rate).
pub(super) fn table_storage_cost(context: &RuleContext, table: &TableRecord, bytes: u64) -> f64 {
    let long_term = table.long_term_bytes.unwrap_or(0).min(bytes);
    let usage = TableUsage {
        active_gib: gib(bytes - long_term),
        long_term_gib: gib(long_term),
        scanned_tib_per_month: 0.0,
    };
    round_usd(estimate::table(context.prices, Some(&usage), &table.name).monthly_usd)
}

/// Tables (type TABLE: not views, external tables or snapshots, which are kept unread on purpose)
/// created before the cold-table window that no finished job read in it, priced at a month of
/// their logical storage.
pub(super) fn cold_tables(context: &RuleContext) -> Vec<Finding> {
    let reads = &context.signals.table_reads;
    if reads.incomplete.is_some() {
        return vec![];
    }
    let days = context.window.cold_table_days;
    plain_tables(context)
        .filter(|t| {
            reads
                .last_read
                .get(&t.name)
                .is_none_or(|read| *read < reads.since)
        })
        .filter_map(|table| {
            let created = table.created.filter(|c| *c < reads.since)?;
            let bytes = table.num_bytes.filter(|b| *b >= COLD_TABLE_MIN_BYTES)?;
            let waste = table_storage_cost(context, table, bytes);
            let long_term = table.long_term_bytes.unwrap_or(0).min(bytes);
            let (dataset, id) = (&table.dataset_id, &table.table_id);
            let export = format!(
                "bq extract --destination_format AVRO {dataset}.{id} 'gs://BUCKET/{dataset}.{id}-*.avro'"
            );
            let fix = match owner(&table.labels, "table", id) {
                Some((stack, address)) => format!(
                    "stack.toml of stack `{stack}`: remove {address}, then `stackctl apply --allow-data-loss` (first `{export}` if it may be needed again)"
                ),
                None => format!(
                    "if nothing needs it: `{export}` to keep a copy, then `bq rm -t {dataset}.{id}`; or let it expire: `bq update --expiration SECONDS {dataset}.{id}`"
                ),
            };
            Some(finding(
                Rule::ColdTable,
                &table.name,
                format!(
                    "no query, copy or extract job read it in {days} days ({} finished jobs of all users since {}); created {}; {}, {:.2} GiB of it long-term. Reads through the Storage Read API or by jobs of other projects leave no job here",
                    reads.jobs,
                    reads.since.format("%Y-%m-%d"),
                    created.format("%Y-%m-%d"),
                    size_text(Some(bytes)),
                    gib(long_term)
                ),
                Some(waste),
                Severity::of_waste(waste),
                fix,
            ))
        })
        .collect()
}

pub(super) fn large_table_without_partition_filter(context: &RuleContext) -> Vec<Finding> {
    let price = context.prices.usd(PriceItem::BigQueryScannedTib);
    plain_tables(context)
        .filter(|t| t.partition.is_some() && !t.require_partition_filter)
        .filter_map(|table| {
            let bytes = table.num_bytes.filter(|b| *b >= LARGE_TABLE_BYTES)?;
            let scan = bytes as f64 / (GIB * 1024.0) * price;
            Some(finding(
                Rule::LargeTableWithoutPartitionFilter,
                &table.name,
                format!(
                    "{}; requirePartitionFilter is false: one query without a partition filter scans all of it (${scan:.2} on demand)",
                    size_text(Some(bytes))
                ),
                None,
                Severity::Medium,
                table_fix(
                    table,
                    "set require_partition_filter = true",
                    format!(
                        "bq update --require_partition_filter {}.{}",
                        table.dataset_id, table.table_id
                    ),
                ),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::super::tests::{inventory, report_of, run_audit};
    use crate::audit::{Rule, Severity, Signals};
    use crate::provider::bigquery::{JobReadRecord, PartitionRecord, TableRecord, ViewRecord};
    use crate::resources::OWNER_LABEL;

    /// A table of stack `shop`; `partition`: `Some(expiration days)` when partitioned.
    fn table(
        id: &str,
        partition: Option<Option<u64>>,
        require: bool,
        bytes: Option<u64>,
        long_term: Option<u64>,
    ) -> TableRecord {
        TableRecord {
            name: format!("projects/p/datasets/raw/tables/{id}"),
            dataset_id: "raw".into(),
            table_id: id.into(),
            kind: "TABLE".into(),
            etag: String::new(),
            labels: BTreeMap::from([(OWNER_LABEL.to_string(), "shop".to_string())]),
            columns: vec![],
            partition: partition.map(|days| PartitionRecord {
                granularity: "DAY".into(),
                field: Some("at".into()),
                expiration: days.map(|d| Duration::from_secs(d * 86_400)),
            }),
            cluster_by: vec![],
            require_partition_filter: require,
            view: None,
            num_bytes: bytes,
            long_term_bytes: long_term,
            created: None,
        }
    }

    #[test]
    fn table_rules_price_expiring_long_term_storage_and_flag_large_unfiltered_tables() {
        let mut view = table("mv", None, false, Some(1 << 40), None);
        view.view = Some(ViewRecord {
            query: "SELECT 1".into(),
            refresh_interval: None,
        });
        // Unpartitioned, but neither stores rows of its own: no finding.
        let mut external = table("lake", None, false, Some(1 << 40), None);
        external.kind = "EXTERNAL".into();
        let mut snapshot = table("events_backup", None, false, Some(1 << 40), None);
        snapshot.kind = "SNAPSHOT".into();
        let mut inv = inventory(vec![], vec![]);
        inv.tables = vec![
            external,
            snapshot,
            table("events", None, false, Some(200 << 30), None),
            table("small", None, false, None, None),
            table("logs", Some(None), false, Some(512 << 30), Some(300 << 30)),
            table(
                "orders",
                Some(Some(730)),
                true,
                Some(1 << 40),
                Some(1 << 39),
            ),
            view,
        ];
        assert_eq!(
            run_audit(&inv, &Signals::default()),
            vec![
                // 300 GiB long-term × $0.01.
                ("logs".into(), "BQ2", Some(3.0), Severity::Low),
                ("events".into(), "BQ1", None, Severity::Medium),
                // 512 GiB ≥ 100 GiB: an unfiltered query scans 0.5 TiB × $6.25.
                ("logs".into(), "BQ4", None, Severity::Medium),
                ("small".into(), "BQ1", None, Severity::Low),
            ]
        );
        let report = report_of(&inv, &Signals::default());
        let bq4 = report
            .findings
            .iter()
            .find(|f| f.rule == Rule::LargeTableWithoutPartitionFilter)
            .map(|f| (f.evidence.as_str(), f.fix.as_str()));
        assert_eq!(
            bq4,
            Some((
                "549755813888 logical bytes (512.00 GiB); requirePartitionFilter is false: one query without a partition filter scans all of it ($3.12 on demand)",
                "stack.toml of stack `shop`: set require_partition_filter = true in [table.logs], then `stackctl apply`"
            ))
        );
    }

    #[test]
    fn tables_older_than_the_window_that_no_job_read_in_it_cost_their_storage() {
        use crate::audit::TableReads;
        let day = |date: &str| {
            chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .expect("date")
                .and_hms_opt(0, 0, 0)
                .expect("midnight")
                .and_utc()
        };
        let name = |id: &str| format!("projects/p/datasets/raw/tables/{id}");
        let job = |id: &str, created: &str, tables: &[&str]| JobReadRecord {
            job_id: id.into(),
            created: day(created),
            tables_read: tables.iter().map(|t| name(t)).collect(),
            child_jobs: 0,
            redacted: false,
        };
        // Partitioned with expiration and a required filter: only the cold-table rule applies.
        let kept = |id: &str, created: &str, gib: u64, long_term_gib: u64| TableRecord {
            created: Some(day(created)),
            ..table(
                id,
                Some(Some(730)),
                true,
                Some(gib << 30),
                Some(long_term_gib << 30),
            )
        };
        let mut tiny = kept("tiny", "2026-01-01", 0, 0);
        tiny.num_bytes = Some(512 << 20);
        let mut unsized_table = kept("unsized", "2026-01-01", 0, 0);
        unsized_table.num_bytes = None;
        let mut backup = kept("backup", "2026-01-01", 100, 100);
        backup.kind = "SNAPSHOT".into();
        let mut foreign = kept("foreign", "2026-01-01", 2, 2);
        foreign.labels.clear();
        let mut inv = inventory(vec![], vec![]);
        inv.tables = vec![
            kept("archive", "2026-01-01", 500, 400),
            kept("daily", "2026-01-01", 50, 0),
            kept("stale", "2026-01-01", 10, 0),
            kept("fresh", "2026-10-15", 50, 0),
            tiny,
            unsized_table,
            backup,
            foreign,
        ];
        let since = day("2026-09-01");
        let reads = TableReads::of(
            since,
            &[
                job("q1", "2026-09-15", &["daily", "fresh"]),
                job("q2", "2026-10-01", &["daily"]),
                job("old", "2026-08-01", &["stale"]),
            ],
        );
        assert_eq!(
            (reads.jobs, reads.last_read.get(&name("daily"))),
            (3, Some(&day("2026-10-01")))
        );
        let signals = Signals {
            table_reads: reads,
            ..Signals::default()
        };
        assert_eq!(
            run_audit(&inv, &signals),
            vec![
                // 100 GiB active × $0.02 + 400 GiB long-term × $0.01.
                ("archive".into(), "BQ3", Some(6.0), Severity::Medium),
                // Read before the window only: 10 GiB active × $0.02.
                ("stale".into(), "BQ3", Some(0.2), Severity::Low),
                // 2 GiB long-term × $0.01, unread and owned by no stack.
                ("foreign".into(), "OWN1", Some(0.02), Severity::Low),
                ("foreign".into(), "BQ3", Some(0.02), Severity::Low),
            ]
        );
        let report = report_of(&inv, &signals);
        let texts: Vec<(&str, &str)> = report
            .findings
            .iter()
            .map(|f| (f.evidence.as_str(), f.fix.as_str()))
            .collect();
        assert_eq!(
            texts[0],
            (
                "no query, copy or extract job read it in 90 days (3 finished jobs of all users since 2026-09-01); created 2026-01-01; 536870912000 logical bytes (500.00 GiB), 400.00 GiB of it long-term. Reads through the Storage Read API or by jobs of other projects leave no job here",
                "stack.toml of stack `shop`: remove [table.archive], then `stackctl apply --allow-data-loss` (first `bq extract --destination_format AVRO raw.archive 'gs://BUCKET/raw.archive-*.avro'` if it may be needed again)"
            )
        );
        assert_eq!(
            texts[3].1,
            "if nothing needs it: `bq extract --destination_format AVRO raw.foreign 'gs://BUCKET/raw.foreign-*.avro'` to keep a copy, then `bq rm -t raw.foreign`; or let it expire: `bq update --expiration SECONDS raw.foreign`"
        );

        // One of another user's jobs came back redacted: whatever it read is unknown, so no
        // table is called cold and BQ3 is reported as not checked.
        let mut redacted = job("theirs", "2026-10-02", &[]);
        redacted.redacted = true;
        let reads = TableReads::of(since, &[job("q1", "2026-09-15", &["daily"]), redacted]);
        let signals = Signals {
            table_reads: reads,
            ..Signals::default()
        };
        let report = report_of(&inv, &signals);
        assert!(report.findings.iter().all(|f| f.rule != Rule::ColdTable));
        let pending: Vec<(&str, &str)> = report
            .not_yet_checked
            .iter()
            .map(|p| (p.id.as_str(), p.needs.as_str()))
            .collect();
        assert!(
            pending.contains(&(
                "BQ3",
                "1 of 2 jobs came back redacted: the caller needs bigquery.jobs.listAll (roles/bigquery.resourceViewer) to see what other users' jobs read"
            )),
            "{pending:?}"
        );
    }
}
