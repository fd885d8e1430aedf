//! The on-disk home of the emulator's [`State`]: a snapshot (`state.json`) plus an append-only
//! change log (`changes.jsonl`) of the top-level entries each change touched, compacted into a
//! new snapshot once the log outgrows it; guarded by an exclusive lock so one process uses a dir.
//!
//! Changes are found without per-field code here: the state's map fields remember the keys a
//! request touched ([`crate::tracked::Tracked`]), and only those entries are serialized and
//! compared with what was last persisted; the few other fields are compared whole. So both the
//! disk write and the work to find it grow with the change, not with the state.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::EmulatorError;
use crate::state::State;
use crate::tracked::Touched;

const SNAPSHOT_FILE: &str = "state.json";
const LOG_FILE: &str = "changes.jsonl";
const LOCK_FILE: &str = "emulator.lock";
/// The log is compacted once it is larger than the snapshot and than this.
const COMPACT_AT_LEAST_BYTES: u64 = 1 << 20;

/// One line of the change log: a top-level field's entry set or removed, or a whole field
/// (fields that are not maps) replaced.
#[derive(Debug, Serialize, Deserialize)]
struct Change {
    field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    /// The new value; absent = the entry was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<Value>,
}

impl Change {
    fn apply(self, fields: &mut Map<String, Value>) {
        match (self.key, self.value) {
            (None, Some(value)) => {
                fields.insert(self.field, value);
            }
            (None, None) => {
                fields.remove(&self.field);
            }
            (Some(key), value) => {
                let entry = fields
                    .entry(self.field)
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                if let Value::Object(map) = entry {
                    match value {
                        Some(value) => map.insert(key, value),
                        None => map.remove(&key),
                    };
                }
            }
        }
    }
}

/// The changes that turn field `field` from `old` (as saved) into `new`: entry by entry for maps.
fn field_changes(field: &str, old: Option<&Value>, new: &Value) -> Vec<Change> {
    let whole = || Change {
        field: field.to_string(),
        key: None,
        value: Some(new.clone()),
    };
    match (old, new) {
        (Some(before), after) if before == after => Vec::new(),
        (Some(Value::Object(before)), Value::Object(after)) => {
            let set = after
                .iter()
                .filter(|(key, entry)| before.get(*key) != Some(*entry))
                .map(|(key, entry)| Change {
                    field: field.to_string(),
                    key: Some(key.clone()),
                    value: Some(entry.clone()),
                });
            let removed = before
                .keys()
                .filter(|key| !after.contains_key(*key))
                .map(|key| Change {
                    field: field.to_string(),
                    key: Some(key.clone()),
                    value: None,
                });
            set.chain(removed).collect()
        }
        _ => vec![whole()],
    }
}

/// What was last persisted and where the log stands.
#[derive(Debug)]
struct Persisted {
    fields: Map<String, Value>,
    log: File,
    log_bytes: u64,
    snapshot_bytes: u64,
}

/// The on-disk home of a [`State`]; holds the directory lock for its lifetime.
#[derive(Debug)]
pub struct StateStore {
    dir: PathBuf,
    persisted: Mutex<Persisted>,
    _lock: File,
}

impl StateStore {
    /// Creates `dir` if needed, takes its lock, and loads the saved state (empty if none): the
    /// snapshot, then every complete line of the log (a torn last line was never acknowledged).
    pub fn open(dir: &Path) -> Result<(Self, State), EmulatorError> {
        let io_error = |source| EmulatorError::StateDir {
            dir: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io_error)?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_error)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(EmulatorError::StateDirLocked {
                    dir: dir.to_path_buf(),
                    lock: lock_path,
                });
            }
            Err(std::fs::TryLockError::Error(source)) => return Err(io_error(source)),
        }
        let snapshot_path = dir.join(SNAPSHOT_FILE);
        let corrupt = |source| EmulatorError::StateCorrupt {
            path: snapshot_path.clone(),
            source,
        };
        let (mut fields, snapshot_bytes) = match std::fs::read(&snapshot_path) {
            Ok(bytes) => (
                serde_json::from_slice::<Map<String, Value>>(&bytes).map_err(corrupt)?,
                bytes.len() as u64,
            ),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                (to_fields(&State::empty()).map_err(corrupt)?, 0)
            }
            Err(error) => return Err(io_error(error)),
        };
        let log_path = dir.join(LOG_FILE);
        let log_text = match std::fs::read(&log_path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => return Err(io_error(error)),
        };
        let mut complete = 0;
        for line in log_text.split_inclusive(|b| *b == b'\n') {
            let Some(line) = line.strip_suffix(b"\n") else {
                break;
            };
            let change: Change =
                serde_json::from_slice(line).map_err(|source| EmulatorError::StateCorrupt {
                    path: log_path.clone(),
                    source,
                })?;
            change.apply(&mut fields);
            complete += line.len() + 1;
        }
        let state: State =
            serde_json::from_value(Value::Object(fields.clone())).map_err(corrupt)?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_error)?;
        // Drop a torn last line so the next entry starts on a line of its own.
        log.set_len(complete as u64).map_err(io_error)?;
        // Fields the saved state lacked (added to `State` since) are logged by the first save.
        Ok((
            Self {
                dir: dir.to_path_buf(),
                persisted: Mutex::new(Persisted {
                    fields,
                    log,
                    log_bytes: complete as u64,
                    snapshot_bytes,
                }),
                _lock: lock,
            },
            state,
        ))
    }

    /// Appends what changed since the last save to the log and flushes it; compacts the log
    /// into a new snapshot (temp file, then rename) once it outgrows the snapshot.
    pub fn save(&self, state: &State) -> std::io::Result<()> {
        let touched = state.take_touched().map_err(std::io::Error::other)?;
        let mut persisted = crate::lock(&self.persisted);
        let mut changes = Vec::new();
        for (field, touched) in touched {
            let saved = persisted.fields.get(field);
            match touched {
                Touched::Nothing => {}
                Touched::Entries(entries) => {
                    let saved = saved.and_then(Value::as_object);
                    changes.extend(
                        entries
                            .into_iter()
                            .filter(|(key, value)| {
                                saved.and_then(|map| map.get(key)) != value.as_ref()
                            })
                            .map(|(key, value)| Change {
                                field: field.to_string(),
                                key: Some(key),
                                value,
                            }),
                    );
                }
                Touched::Whole(value) => changes.extend(field_changes(field, saved, &value)),
            }
        }
        if changes.is_empty() {
            return Ok(());
        }
        let mut lines = Vec::new();
        for change in &changes {
            serde_json::to_writer(&mut lines, change).map_err(std::io::Error::other)?;
            lines.push(b'\n');
        }
        persisted.log.write_all(&lines)?;
        persisted.log.flush()?;
        persisted.log_bytes += lines.len() as u64;
        for change in changes {
            change.apply(&mut persisted.fields);
        }
        if persisted.log_bytes > persisted.snapshot_bytes.max(COMPACT_AT_LEAST_BYTES) {
            self.compact(&mut persisted)?;
        }
        Ok(())
    }

    /// Writes the persisted state as the snapshot, then empties the log. A crash in between
    /// replays the log onto a snapshot that already holds it: each line sets or removes an
    /// entry, so replaying it again changes nothing.
    fn compact(&self, persisted: &mut Persisted) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(&persisted.fields).map_err(std::io::Error::other)?;
        let temp_path = self.dir.join(format!("{SNAPSHOT_FILE}.tmp"));
        let mut temp = File::create(&temp_path)?;
        temp.write_all(&bytes)?;
        temp.flush()?;
        drop(temp);
        std::fs::rename(&temp_path, self.dir.join(SNAPSHOT_FILE))?;
        persisted.log.set_len(0)?;
        persisted.log_bytes = 0;
        persisted.snapshot_bytes = bytes.len() as u64;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The state's top-level fields as JSON.
fn to_fields(state: &State) -> Result<Map<String, Value>, serde_json::Error> {
    match serde_json::to_value(state)? {
        Value::Object(fields) => Ok(fields),
        _ => Err(<serde_json::Error as serde::ser::Error>::custom(
            "the emulator state is not a JSON object",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        std::env::temp_dir().join(format!("gcp-emulator-store-{}", uuid::Uuid::new_v4()))
    }

    fn with_queue(state: &mut State, name: &str) {
        state
            .queues
            .insert(name.to_string(), serde_json::json!({ "name": name }));
    }

    #[test]
    fn a_change_appends_only_its_entry_and_state_survives_reopening() {
        let dir = temp_dir();
        let (store, mut state) = StateStore::open(&dir).unwrap();
        for i in 0..50 {
            with_queue(&mut state, &format!("q{i}"));
            state.last_id += 1;
            store.save(&state).unwrap();
        }
        let before = std::fs::metadata(dir.join(LOG_FILE)).unwrap().len();
        with_queue(&mut state, "one-more");
        store.save(&state).unwrap();
        let grew = std::fs::metadata(dir.join(LOG_FILE)).unwrap().len() - before;
        assert!(grew < 200, "one queue appended {grew} bytes");
        state.queues.remove("q7");
        store.save(&state).unwrap();
        drop(store);

        let (_store, reopened) = StateStore::open(&dir).unwrap();
        assert_eq!(reopened, state);
        assert!(!reopened.queues.contains_key("q7"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_what_was_acknowledged_is_kept() {
        let dir = temp_dir();
        let (store, mut state) = StateStore::open(&dir).unwrap();
        with_queue(&mut state, "acknowledged");
        store.save(&state).unwrap();
        drop(store);
        // A kill in the middle of writing the next entry.
        let mut log = OpenOptions::new()
            .append(true)
            .open(dir.join(LOG_FILE))
            .unwrap();
        log.write_all(br#"{"field":"queues","key":"torn","va"#)
            .unwrap();
        drop(log);

        let (store, mut reopened) = StateStore::open(&dir).unwrap();
        assert_eq!(reopened, state);
        with_queue(&mut reopened, "after");
        store.save(&reopened).unwrap();
        drop(store);
        let (_store, again) = StateStore::open(&dir).unwrap();
        assert!(again.queues.contains_key("acknowledged") && again.queues.contains_key("after"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_log_is_compacted_into_the_snapshot_once_it_outgrows_it() {
        let dir = temp_dir();
        let (store, mut state) = StateStore::open(&dir).unwrap();
        let payload = "x".repeat(10_000);
        for i in 0..200 {
            state.queues.insert(
                "busy".to_string(),
                serde_json::json!({ "name": "busy", "n": i, "payload": payload }),
            );
            store.save(&state).unwrap();
        }
        let log = std::fs::metadata(dir.join(LOG_FILE)).unwrap().len();
        assert!(
            log <= COMPACT_AT_LEAST_BYTES,
            "2 MB of changes to one queue left a {log}-byte log"
        );
        let snapshot = std::fs::read_to_string(dir.join(SNAPSHOT_FILE)).unwrap();
        assert!(snapshot.contains("busy"), "the snapshot holds the queue");
        drop(store);
        let (_store, reopened) = StateStore::open(&dir).unwrap();
        assert_eq!(reopened, state);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_save_serializes_only_what_was_touched_and_a_replaced_state_is_saved_whole() {
        let dir = temp_dir();
        let (store, mut state) = StateStore::open(&dir).unwrap();
        for i in 0..20 {
            with_queue(&mut state, &format!("q{i}"));
        }
        store.save(&state).unwrap();
        assert!(
            state
                .take_touched()
                .unwrap()
                .iter()
                .all(|(field, touched)| {
                    *touched == Touched::Nothing
                        || [
                            "format_version",
                            "last_object_generation",
                            "scheduler_runs",
                            "last_id",
                            "crm_api_key",
                        ]
                        .contains(field)
                }),
            "a save forgets what it wrote"
        );
        let before = std::fs::metadata(dir.join(LOG_FILE)).unwrap().len();
        store.save(&state).unwrap();
        assert_eq!(
            std::fs::metadata(dir.join(LOG_FILE)).unwrap().len(),
            before,
            "nothing touched, nothing written"
        );
        let _ = state.queues.get_mut("q3");
        store.save(&state).unwrap();
        assert_eq!(
            std::fs::metadata(dir.join(LOG_FILE)).unwrap().len(),
            before,
            "touched but unchanged, nothing written"
        );
        // `/_emulator/reset` replaces the whole state: every field is compared whole.
        state = State::empty();
        with_queue(&mut state, "after-reset");
        store.save(&state).unwrap();
        drop(store);
        let (_store, reopened) = StateStore::open(&dir).unwrap();
        assert_eq!(reopened.queues.keys().collect::<Vec<_>>(), ["after-reset"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_state_json_written_by_the_older_store_still_loads() {
        let dir = temp_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let mut old = State::empty();
        with_queue(&mut old, "from-before");
        std::fs::write(dir.join(SNAPSHOT_FILE), serde_json::to_vec(&old).unwrap()).unwrap();
        let (_store, loaded) = StateStore::open(&dir).unwrap();
        assert_eq!(loaded, old);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
