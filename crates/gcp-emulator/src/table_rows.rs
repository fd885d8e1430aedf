//! BigQuery table rows, kept apart from the state file so that a write costs what it changes:
//! under `<state_dir>/bigquery/tables/<table key>/`, an append log (`log.jsonl`, one committed
//! batch per line: loads that append and streaming inserts) and one file per replaced partition
//! (`base-<partition>.json`, written to a temp file, fsynced and renamed: an atomic replace).
//! In memory only when the emulator has no state directory.
//!
//! Every log line carries a sequence number and every partition file the sequence it follows
//! (`after`), so replaying files and lines in sequence order rebuilds the table: a partition
//! file replaces its partition as of its sequence, a `truncate` line empties the table before
//! its rows. A line is written whole before the answer (a process kill keeps it; a torn last
//! line was never acknowledged and is dropped). The log is folded into partition files once it
//! outgrows them.
//!
//! Also kept here, in memory: streaming inserts' recent `insertId`s (best-effort dedupe) and
//! resumable load uploads in progress.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::lock;

const LOG_FILE: &str = "log.jsonl";
const BASE_PREFIX: &str = "base-";
const BASE_SUFFIX: &str = ".json";
/// The log is folded into partition files once it is larger than them and than this.
const COMPACT_AT_LEAST_BYTES: u64 = 1 << 20;

/// Rows by partition id, in the order they were committed.
pub type Partitions = BTreeMap<String, Vec<Value>>;

/// One committed batch of the append log.
#[derive(Debug, Serialize, Deserialize)]
struct Batch {
    seq: u64,
    /// The table was emptied before these rows (a whole-table `WRITE_TRUNCATE`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    truncate: bool,
    rows: Partitions,
}

/// A partition file: the partition's whole content as of log sequence `after`.
#[derive(Debug, Serialize, Deserialize)]
struct Base {
    after: u64,
    rows: Vec<Value>,
}

/// One table's rows and where its files stand.
#[derive(Debug, Default)]
pub struct TableRows {
    pub partitions: Partitions,
    /// Logical bytes per partition as last counted, and the schema they were counted with
    /// (filled by the BigQuery layer; a write forgets the partitions it touches).
    pub byte_counts: BTreeMap<String, u64>,
    pub byte_counts_schema: Value,
    /// Rows were written to this table at some point (its counters follow its rows).
    written: bool,
    last_seq: u64,
    /// The table's directory and open log (`None` in memory).
    files: Option<TableFiles>,
}

#[derive(Debug)]
struct TableFiles {
    dir: PathBuf,
    /// Opened on the first append.
    log: Option<File>,
    log_bytes: u64,
    /// Partition ids that have a file -> the file's size.
    bases: BTreeMap<String, u64>,
}

impl TableRows {
    pub fn written(&self) -> bool {
        self.written
    }
}

/// Every table's rows, loaded from disk on first use.
#[derive(Debug)]
pub struct RowStore {
    /// `<state_dir>/bigquery/tables`; `None` keeps rows in memory only.
    dir: Option<PathBuf>,
    tables: Mutex<BTreeMap<String, TableRows>>,
    /// (table key, insertId) -> when it was inserted.
    insert_ids: Mutex<BTreeMap<(String, String), DateTime<Utc>>>,
    /// Resumable upload id -> the job it starts and the bytes received so far.
    uploads: Mutex<BTreeMap<String, Upload>>,
}

/// A resumable load upload in progress.
#[derive(Debug, Clone)]
pub struct Upload {
    pub job: Value,
    pub bytes: Vec<u8>,
}

impl RowStore {
    pub fn new(state_dir: Option<&Path>) -> Self {
        Self {
            dir: state_dir.map(|d| d.join("bigquery").join("tables")),
            tables: Mutex::new(BTreeMap::new()),
            insert_ids: Mutex::new(BTreeMap::new()),
            uploads: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn insert_ids(&self) -> &Mutex<BTreeMap<(String, String), DateTime<Utc>>> {
        &self.insert_ids
    }

    pub fn uploads(&self) -> &Mutex<BTreeMap<String, Upload>> {
        &self.uploads
    }

    fn table_dir(&self, key: &str) -> Option<PathBuf> {
        let name = percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
        Some(self.dir.as_ref()?.join(name))
    }

    /// Runs `f` on the rows of table `key` (`project:dataset.table`), loading them first.
    pub fn with_table<R>(
        &self,
        key: &str,
        f: impl FnOnce(&mut TableRows) -> std::io::Result<R>,
    ) -> std::io::Result<R> {
        let mut tables = lock(&self.tables);
        if !tables.contains_key(key) {
            let rows = match self.table_dir(key) {
                Some(dir) => load(&dir)?,
                None => TableRows::default(),
            };
            tables.insert(key.to_string(), rows);
        }
        let table = tables
            .get_mut(key)
            .ok_or_else(|| std::io::Error::other("table rows vanished"))?;
        f(table)
    }

    /// Forgets a table's rows (deleted table or dataset).
    pub fn drop_table(&self, key: &str) -> std::io::Result<()> {
        lock(&self.tables).remove(key);
        match self.table_dir(key) {
            Some(dir) => match std::fs::remove_dir_all(&dir) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// Forgets every table (`/_emulator/reset`).
    pub fn clear(&self) -> std::io::Result<()> {
        lock(&self.tables).clear();
        match &self.dir {
            Some(dir) => match std::fs::remove_dir_all(dir) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }
}

impl TableRows {
    /// Appends rows to their partitions as one batch (all of it or, after a crash, none).
    pub fn append(&mut self, rows: Partitions) -> std::io::Result<()> {
        self.commit(false, rows)
    }

    /// Replaces every row of the table with `rows`, as one batch.
    pub fn replace_all(&mut self, rows: Partitions) -> std::io::Result<()> {
        self.commit(true, rows)
    }

    fn commit(&mut self, truncate: bool, rows: Partitions) -> std::io::Result<()> {
        let rows: Partitions = rows.into_iter().filter(|(_, r)| !r.is_empty()).collect();
        if rows.is_empty() && !truncate {
            return Ok(());
        }
        let batch = Batch {
            seq: self.last_seq + 1,
            truncate,
            rows,
        };
        if let Some(files) = &mut self.files {
            let mut line = serde_json::to_vec(&batch).map_err(std::io::Error::other)?;
            line.push(b'\n');
            files.open_log()?.write_all(&line)?;
            files.log_bytes += line.len() as u64;
        }
        self.last_seq = batch.seq;
        self.written = true;
        if truncate {
            self.byte_counts.clear();
        }
        for partition in batch.rows.keys() {
            self.byte_counts.remove(partition);
        }
        batch.apply(&mut self.partitions);
        self.compact_if_due()
    }

    /// Replaces one partition's rows, atomically (temp file, fsync, rename).
    pub fn replace_partition(&mut self, partition: &str, rows: Vec<Value>) -> std::io::Result<()> {
        if let Some(files) = &mut self.files {
            files.write_base(partition, self.last_seq, &rows)?;
        }
        self.written = true;
        self.byte_counts.remove(partition);
        if rows.is_empty() {
            self.partitions.remove(partition);
        } else {
            self.partitions.insert(partition.to_string(), rows);
        }
        Ok(())
    }

    /// Folds the log into partition files once it outgrows them: new files first, then the
    /// files of partitions that no longer exist are removed, then the log is emptied; a crash
    /// in between replays lines the new files already hold, which they then replace.
    fn compact_if_due(&mut self) -> std::io::Result<()> {
        let Some(files) = &mut self.files else {
            return Ok(());
        };
        let base_bytes: u64 = files.bases.values().sum();
        if files.log_bytes <= base_bytes.max(COMPACT_AT_LEAST_BYTES) {
            return Ok(());
        }
        for (partition, rows) in &self.partitions {
            files.write_base(partition, self.last_seq, rows)?;
        }
        let gone: Vec<String> = files
            .bases
            .keys()
            .filter(|p| !self.partitions.contains_key(*p))
            .cloned()
            .collect();
        for partition in gone {
            std::fs::remove_file(files.dir.join(base_file_name(&partition)))?;
            files.bases.remove(&partition);
        }
        files.open_log()?.set_len(0)?;
        files.log_bytes = 0;
        Ok(())
    }
}

impl TableFiles {
    fn open_log(&mut self) -> std::io::Result<&mut File> {
        if self.log.is_none() {
            std::fs::create_dir_all(&self.dir)?;
            let log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(LOG_FILE))?;
            self.log = Some(log);
        }
        self.log
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the log is not open"))
    }

    fn write_base(&mut self, partition: &str, after: u64, rows: &[Value]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let bytes = serde_json::to_vec(&Base {
            after,
            rows: rows.to_vec(),
        })
        .map_err(std::io::Error::other)?;
        let name = base_file_name(partition);
        let temp_path = self.dir.join(format!("{name}.tmp"));
        let mut temp = File::create(&temp_path)?;
        temp.write_all(&bytes)?;
        temp.sync_all()?;
        drop(temp);
        std::fs::rename(&temp_path, self.dir.join(&name))?;
        File::open(&self.dir)?.sync_all()?;
        self.bases.insert(partition.to_string(), bytes.len() as u64);
        Ok(())
    }
}

impl Batch {
    fn apply(self, partitions: &mut Partitions) {
        if self.truncate {
            partitions.clear();
        }
        for (partition, rows) in self.rows {
            partitions.entry(partition).or_default().extend(rows);
        }
    }
}

fn base_file_name(partition: &str) -> String {
    let encoded =
        percent_encoding::utf8_percent_encode(partition, percent_encoding::NON_ALPHANUMERIC);
    format!("{BASE_PREFIX}{encoded}{BASE_SUFFIX}")
}

fn invalid_data(path: &Path, error: serde_json::Error) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{}: {error}", path.display()),
    )
}

/// Replays a table's partition files and log in sequence order.
fn load(dir: &Path) -> std::io::Result<TableRows> {
    enum Event {
        Base(String, Vec<Value>),
        Batch(Batch),
    }
    // (sequence, a batch before the partition files that follow it, event)
    let mut events: Vec<(u64, u8, Event)> = Vec::new();
    let mut bases = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries.collect::<Result<Vec<_>, _>>()?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(error),
    };
    for entry in entries {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.ends_with(".tmp") {
            std::fs::remove_file(entry.path())?;
            continue;
        }
        let Some(encoded) = name
            .strip_prefix(BASE_PREFIX)
            .and_then(|n| n.strip_suffix(BASE_SUFFIX))
        else {
            continue;
        };
        let partition = crate::conventions::wire::percent_decode(encoded);
        let bytes = std::fs::read(entry.path())?;
        let base: Base =
            serde_json::from_slice(&bytes).map_err(|e| invalid_data(&entry.path(), e))?;
        bases.insert(partition.clone(), bytes.len() as u64);
        events.push((base.after, 1, Event::Base(partition, base.rows)));
    }
    let log_path = dir.join(LOG_FILE);
    let text = match std::fs::read(&log_path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(error),
    };
    let mut complete = 0;
    for line in text.split_inclusive(|b| *b == b'\n') {
        let Some(line) = line.strip_suffix(b"\n") else {
            break;
        };
        let batch: Batch = serde_json::from_slice(line).map_err(|e| invalid_data(&log_path, e))?;
        events.push((batch.seq, 0, Event::Batch(batch)));
        complete += line.len() + 1;
    }
    events.sort_by_key(|(seq, order, _)| (*seq, *order));
    let mut partitions = Partitions::new();
    let mut last_seq = 0;
    for (seq, _, event) in events {
        last_seq = last_seq.max(seq);
        match event {
            Event::Batch(batch) => batch.apply(&mut partitions),
            Event::Base(partition, rows) if rows.is_empty() => {
                partitions.remove(&partition);
            }
            Event::Base(partition, rows) => {
                partitions.insert(partition, rows);
            }
        }
    }
    let log = if text.is_empty() {
        None
    } else {
        let log = OpenOptions::new().append(true).open(&log_path)?;
        // Drop a torn last line so the next batch starts on a line of its own.
        log.set_len(complete as u64)?;
        Some(log)
    };
    Ok(TableRows {
        partitions,
        byte_counts: BTreeMap::new(),
        byte_counts_schema: Value::Null,
        written: last_seq > 0 || !bases.is_empty(),
        last_seq,
        files: Some(TableFiles {
            dir: dir.to_path_buf(),
            log,
            log_bytes: complete as u64,
            bases,
        }),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn batch(partition: &str, values: &[i64]) -> Partitions {
        Partitions::from([(
            partition.to_string(),
            values.iter().map(|v| json!({ "n": v })).collect(),
        )])
    }

    fn values(store: &RowStore, key: &str) -> BTreeMap<String, Vec<i64>> {
        store
            .with_table(key, |t| {
                Ok(t.partitions
                    .iter()
                    .map(|(p, rows)| {
                        (
                            p.clone(),
                            rows.iter().filter_map(|r| r["n"].as_i64()).collect(),
                        )
                    })
                    .collect())
            })
            .unwrap()
    }

    #[test]
    fn appends_partition_replaces_and_truncates_survive_reopening_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = RowStore::new(Some(dir.path()));
        store
            .with_table("p:d.t", |t| {
                t.append(batch("20240101", &[1, 2]))?;
                t.append(batch("20240102", &[3]))?;
                t.replace_partition("20240101", vec![json!({"n": 9})])?;
                t.append(batch("20240101", &[10]))
            })
            .unwrap();
        let expected = BTreeMap::from([
            ("20240101".to_string(), vec![9, 10]),
            ("20240102".to_string(), vec![3]),
        ]);
        assert_eq!(values(&store, "p:d.t"), expected);
        drop(store);
        let reopened = RowStore::new(Some(dir.path()));
        assert_eq!(values(&reopened, "p:d.t"), expected);

        reopened
            .with_table("p:d.t", |t| t.replace_all(batch("20240103", &[7])))
            .unwrap();
        drop(reopened);
        let again = RowStore::new(Some(dir.path()));
        assert_eq!(
            values(&again, "p:d.t"),
            BTreeMap::from([("20240103".to_string(), vec![7])]),
            "a truncate hides the partition files written before it"
        );
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_later_batches_still_land() {
        let dir = tempfile::tempdir().unwrap();
        let store = RowStore::new(Some(dir.path()));
        store
            .with_table("p:d.t", |t| t.append(batch("", &[1])))
            .unwrap();
        let table_dir = store.table_dir("p:d.t").unwrap();
        drop(store);
        let mut log = OpenOptions::new()
            .append(true)
            .open(table_dir.join(LOG_FILE))
            .unwrap();
        log.write_all(br#"{"seq":2,"rows":{"":[{"n""#).unwrap();
        drop(log);
        let store = RowStore::new(Some(dir.path()));
        store
            .with_table("p:d.t", |t| t.append(batch("", &[3])))
            .unwrap();
        drop(store);
        let store = RowStore::new(Some(dir.path()));
        assert_eq!(
            values(&store, "p:d.t"),
            BTreeMap::from([(String::new(), vec![1, 3])])
        );
    }

    #[test]
    fn a_big_log_is_folded_into_partition_files_and_an_append_stays_small() {
        let dir = tempfile::tempdir().unwrap();
        let store = RowStore::new(Some(dir.path()));
        let wide: Vec<i64> = (0..5000).collect();
        store
            .with_table("p:d.t", |t| {
                for day in 0..40 {
                    t.append(batch(&format!("202401{:02}", day % 28 + 1), &wide))?;
                }
                Ok(())
            })
            .unwrap();
        let table_dir = store.table_dir("p:d.t").unwrap();
        let log_len = || std::fs::metadata(table_dir.join(LOG_FILE)).unwrap().len();
        assert!(log_len() < COMPACT_AT_LEAST_BYTES, "{} bytes", log_len());
        assert!(
            table_dir.join(base_file_name("20240101")).exists(),
            "the log was folded into partition files"
        );
        let before = log_len();
        store
            .with_table("p:d.t", |t| t.append(batch("20240101", &[5])))
            .unwrap();
        assert!(log_len() - before < 100, "one row appended a few bytes");
        let total = values(&store, "p:d.t")
            .values()
            .map(Vec::len)
            .sum::<usize>();
        drop(store);
        let reopened = RowStore::new(Some(dir.path()));
        let reloaded = values(&reopened, "p:d.t");
        assert_eq!(reloaded.values().map(Vec::len).sum::<usize>(), total);
        assert_eq!(total, 40 * 5000 + 1);
    }
}
