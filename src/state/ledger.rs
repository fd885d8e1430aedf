//! The ownership ledger: which label-less resources (queues, service accounts, schedules) this
//! stack created or adopted, and which IAM members it added (`bindings`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::ResourceAddr;
use crate::provider::ApiError;
use crate::provider::storage::StorageClient;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerStatus {
    /// Declared and managed.
    Active,
    /// Removed from stack.toml and paused; kept so its name stays ours.
    Retired,
    /// Written just before stackctl creates it: not ours until the create is known to be ours
    /// (then `active`). Plan counts it ours only when the live resource matches stack.toml, so
    /// a crash between create and record is recovered without claiming a look-alike.
    Pending,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub address: ResourceAddr,
    pub status: LedgerStatus,
    /// When stackctl first recorded it (created or adopted it); absent in entries written
    /// before this field existed. Audit does not call a queue idle before a window has passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<chrono::DateTime<chrono::Utc>>,
}

/// One IAM member stackctl added to a role on a resource's policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingEntry {
    /// The grant's address (`iam: ROLE on TARGET for MEMBER`), for plans after it left stack.toml.
    pub address: ResourceAddr,
}

/// Owned resources by full GCP name, and added IAM members by `resource|role|member`.
///
/// `bindings` was added after version 1 shipped; ledgers without it read as having none, and
/// readers that do not know it ignore it, so the version stays 1. Version 2 may hold `pending`
/// entries, which an older stackctl cannot read: a ledger becomes version 2 with its first
/// pending entry, and version 1 ledgers read unchanged.
/// The ledger format that may hold `pending` entries.
pub const PENDING_VERSION: u32 = 2;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    pub version: u32,
    pub stack: String,
    pub resources: BTreeMap<String, LedgerEntry>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bindings: BTreeMap<String, BindingEntry>,
    /// The apply that holds the lock now (written right after taking it): ledger writes of an
    /// apply whose fence is not this one are refused. Absent in ledgers written before fencing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<Fence>,
}

/// An apply's fence: the generation of the lock object when it took the lock (generations only
/// grow, so a later holder's fence is larger) and who it is, for messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fence {
    pub lock_generation: i64,
    pub holder: String,
}

/// The ledger key of one IAM member on one role of one resource's policy.
pub fn binding_key(resource: &str, role: &str, member: &str) -> String {
    format!("{resource}|{role}|{member}")
}

/// `(resource, role, member)` of a binding key.
pub fn split_binding_key(key: &str) -> Option<(&str, &str, &str)> {
    let mut parts = key.splitn(3, '|');
    Some((parts.next()?, parts.next()?, parts.next()?))
}

impl Ledger {
    pub fn empty(stack: &str) -> Self {
        Self {
            version: 1,
            stack: stack.to_string(),
            resources: BTreeMap::new(),
            bindings: BTreeMap::new(),
            fence: None,
        }
    }

    pub fn binding(&self, key: &str) -> Option<&BindingEntry> {
        self.bindings.get(key)
    }

    pub fn record_binding(&mut self, key: &str, address: &ResourceAddr) {
        self.bindings.insert(
            key.to_string(),
            BindingEntry {
                address: address.clone(),
            },
        );
    }

    pub fn forget_binding(&mut self, key: &str) {
        self.bindings.remove(key);
    }

    pub fn entry(&self, name: &str) -> Option<&LedgerEntry> {
        self.resources.get(name)
    }

    /// Records `name` as ours with `status`; the first record's time is kept.
    pub fn record(&mut self, name: &str, address: &ResourceAddr, status: LedgerStatus) {
        if status == LedgerStatus::Pending {
            self.version = self.version.max(PENDING_VERSION);
        }
        let recorded = self
            .resources
            .get(name)
            .map_or_else(|| Some(chrono::Utc::now()), |e| e.recorded);
        self.resources.insert(
            name.to_string(),
            LedgerEntry {
                address: address.clone(),
                status,
                recorded,
            },
        );
    }

    pub fn forget(&mut self, name: &str) {
        self.resources.remove(name);
    }
}

/// Why the ledger could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(
        "this apply lost the apply lock: {holder} holds it now and fenced the ledger; nothing more is changed by this apply\n  hint: let that apply finish, then run `stackctl plan`"
    )]
    Fenced { holder: String },
    #[error(
        "the ledger gs://{bucket}/{object} is not valid JSON ({source}); fix or delete it, then rebuild it with `stackctl adopt`"
    )]
    Corrupt {
        bucket: String,
        object: String,
        source: serde_json::Error,
    },
}

impl LedgerError {
    /// The same error for another change that rode in the same group-committed write.
    fn for_batch_member(&self) -> Self {
        match self {
            Self::Api(e) => Self::Api(e.clone()),
            Self::Fenced { holder } => Self::Fenced {
                holder: holder.clone(),
            },
            Self::Corrupt {
                bucket,
                object,
                source,
            } => Self::Corrupt {
                bucket: bucket.clone(),
                object: object.clone(),
                source: <serde_json::Error as serde::de::Error>::custom(source),
            },
        }
    }
}

/// The ledger object in the state bucket, with the generation it was read at.
pub struct LedgerStore {
    storage: StorageClient,
    bucket: String,
    object: String,
    generation: i64,
    pub ledger: Ledger,
    /// This apply's fence, once it holds the lock ([`LedgerStore::fenced`]).
    fence: Option<Fence>,
    /// Raised when a write finds another apply's fence, so no new step starts.
    lost: Option<std::sync::Arc<super::lock::LostFlag>>,
}

/// Writes `fence` into the ledger right after taking the lock, conditioned on the ledger's
/// generation. Refuses (`Fenced`) when the ledger already carries a later holder's fence.
pub async fn claim_fence(
    storage: &StorageClient,
    bucket: &str,
    stack: &str,
    fence: &Fence,
) -> Result<(), LedgerError> {
    for _ in 0..5 {
        let mut store = LedgerStore::load(storage, bucket, stack).await?;
        if let Some(current) = &store.ledger.fence
            && current.lock_generation > fence.lock_generation
        {
            return Err(LedgerError::Fenced {
                holder: current.holder.clone(),
            });
        }
        let mut next = store.ledger.clone();
        next.fence = Some(fence.clone());
        match store.write(&next).await {
            Ok(()) => return Ok(()),
            Err(LedgerError::Api(e)) if e.is_precondition_failed() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::new(
        "storage.objects.insert",
        format!("gs://{bucket}/{}", super::ledger_object(stack)),
        Some(412),
        None,
        "the ledger kept changing while this apply fenced it; re-run",
    )
    .into())
}

/// Reads the ledger object `object` and its generation; `None` when it does not exist.
async fn read_ledger(
    storage: &StorageClient,
    bucket: &str,
    object: &str,
) -> Result<Option<(Ledger, i64)>, LedgerError> {
    let Some(stored) = storage.read(bucket, object).await? else {
        return Ok(None);
    };
    let ledger = serde_json::from_slice(&stored.data).map_err(|source| LedgerError::Corrupt {
        bucket: bucket.into(),
        object: object.to_string(),
        source,
    })?;
    Ok(Some((ledger, stored.generation)))
}

/// Every stack's ledger in the state bucket (`stackctl/*/ledger.json`), for the audit.
pub async fn read_all(storage: &StorageClient, bucket: &str) -> Result<Vec<Ledger>, LedgerError> {
    let mut ledgers = Vec::new();
    for object in storage.list(bucket, "stackctl/").await? {
        if !object.ends_with("/ledger.json") {
            continue;
        }
        if let Some((ledger, _)) = read_ledger(storage, bucket, &object).await? {
            ledgers.push(ledger);
        }
    }
    Ok(ledgers)
}

impl LedgerStore {
    /// Reads the ledger; a missing bucket or object is an empty ledger.
    pub async fn load(
        storage: &StorageClient,
        bucket: &str,
        stack: &str,
    ) -> Result<Self, LedgerError> {
        let object = super::ledger_object(stack);
        let (ledger, generation) = read_ledger(storage, bucket, &object)
            .await?
            .unwrap_or_else(|| (Ledger::empty(stack), 0));
        Ok(Self {
            storage: storage.clone(),
            bucket: bucket.to_string(),
            object,
            generation,
            ledger,
            fence: None,
            lost: None,
        })
    }

    /// From now on every write checks that the ledger still carries `fence` (this apply's);
    /// finding another one raises `lost` and fails the write. Fails at once if it already does not.
    pub fn fenced(
        &mut self,
        fence: Fence,
        lost: std::sync::Arc<super::lock::LostFlag>,
    ) -> Result<(), LedgerError> {
        self.fence = Some(fence);
        self.lost = Some(lost);
        self.check_fence()
    }

    fn check_fence(&self) -> Result<(), LedgerError> {
        let Some(ours) = &self.fence else {
            return Ok(());
        };
        if self.ledger.fence.as_ref() == Some(ours) {
            return Ok(());
        }
        let holder = self
            .ledger
            .fence
            .as_ref()
            .map_or_else(|| "another apply".to_string(), |f| f.holder.clone());
        if let Some(lost) = &self.lost {
            lost.lose(format!(
                "{holder} took the apply lock and fenced the ledger"
            ));
        }
        Err(LedgerError::Fenced { holder })
    }

    /// Writes `next` conditioned on the generation read; on success it becomes the ledger.
    async fn write(&mut self, next: &Ledger) -> Result<(), LedgerError> {
        let body = serde_json::to_vec(next).map_err(|source| LedgerError::Corrupt {
            bucket: self.bucket.clone(),
            object: self.object.clone(),
            source,
        })?;
        self.generation = self
            .storage
            .write(&self.bucket, &self.object, body, self.generation)
            .await?;
        self.ledger = next.clone();
        Ok(())
    }

    /// Applies `change` and writes the ledger with `ifGenerationMatch`; if someone else wrote it
    /// in between, re-reads and re-applies the change, unless the re-read shows another apply's
    /// fence (then this apply lost the lock: `Fenced`, and nothing is written).
    pub async fn update(&mut self, change: impl Fn(&mut Ledger)) -> Result<(), LedgerError> {
        for _ in 0..5 {
            self.check_fence()?;
            let mut next = self.ledger.clone();
            change(&mut next);
            if next == self.ledger && self.generation != 0 {
                return Ok(());
            }
            let body = serde_json::to_vec(&next).map_err(|source| LedgerError::Corrupt {
                bucket: self.bucket.clone(),
                object: self.object.clone(),
                source,
            })?;
            match self
                .storage
                .write(&self.bucket, &self.object, body, self.generation)
                .await
            {
                Ok(generation) => {
                    self.generation = generation;
                    self.ledger = next;
                    return Ok(());
                }
                Err(e) if e.is_precondition_failed() => {
                    let fresh = Self::load(&self.storage, &self.bucket, &self.ledger.stack).await?;
                    self.generation = fresh.generation;
                    self.ledger = fresh.ledger;
                    self.check_fence()?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::new(
            "storage.objects.insert",
            format!("gs://{}/{}", self.bucket, self.object),
            Some(412),
            None,
            "the ledger kept changing under concurrent writers; re-run",
        )
        .into())
    }
}

impl LedgerStore {
    /// Deletes the ledger object when it records no resource and no binding (`stackctl
    /// destroy`), conditioned on the generation read and only under this apply's fence; true
    /// when it is gone.
    pub async fn remove_if_empty(&mut self) -> Result<bool, LedgerError> {
        self.check_fence()?;
        if !self.ledger.resources.is_empty() || !self.ledger.bindings.is_empty() {
            return Ok(false);
        }
        if self.generation != 0 {
            self.storage
                .delete(&self.bucket, &self.object, self.generation)
                .await?;
            self.generation = 0;
        }
        Ok(true)
    }
}

/// A change to the ledger, applied again when its write is retried on a newer generation.
type LedgerChange = Box<dyn Fn(&mut Ledger) + Send + Sync>;

/// A change waiting for the next write, and where its outcome goes.
type Waiting = (
    LedgerChange,
    tokio::sync::oneshot::Sender<Result<(), LedgerError>>,
);

/// The ledger shared by one apply's concurrent steps, written by group commit: changes that
/// arrive while a write is in flight wait and go together into the next one, so at most one
/// write is in flight and a step waits for about two writes, not for every step before it.
/// Each write is still one [`LedgerStore::update`] (conditioned on the generation, refused
/// under another apply's fence), and [`SharedLedger::update`] returns only once the write
/// carrying its change succeeded (or with that write's error).
pub struct SharedLedger {
    store: tokio::sync::Mutex<LedgerStore>,
    waiting: std::sync::Mutex<Vec<Waiting>>,
}

impl SharedLedger {
    pub fn new(store: LedgerStore) -> Self {
        Self {
            store: tokio::sync::Mutex::new(store),
            waiting: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies `change` and writes it, together with every change waiting at the time.
    pub async fn update(
        &self,
        change: impl Fn(&mut Ledger) + Send + Sync + 'static,
    ) -> Result<(), LedgerError> {
        let (reply, mut outcome) = tokio::sync::oneshot::channel();
        self.waiting().push((Box::new(change), reply));
        let mut store = self.store.lock().await;
        // The write before this one may have carried this change.
        match outcome.try_recv() {
            Ok(result) => return result,
            Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {
                return Err(batch_abandoned(&store));
            }
            Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {}
        }
        let (changes, replies): (Vec<LedgerChange>, Vec<_>) =
            std::mem::take(&mut *self.waiting()).into_iter().unzip();
        let result = store
            .update(|ledger| changes.iter().for_each(|change| change(ledger)))
            .await;
        for reply in replies {
            let shared = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(e.for_batch_member()),
            };
            let _ = reply.send(shared);
        }
        drop(store);
        outcome.await.unwrap_or(result)
    }

    /// [`LedgerStore::remove_if_empty`], after every write in flight.
    pub async fn remove_if_empty(&self) -> Result<bool, LedgerError> {
        self.store.lock().await.remove_if_empty().await
    }

    /// The ledger as last written.
    pub async fn snapshot(&self) -> Ledger {
        self.store.lock().await.ledger.clone()
    }
}

/// The error of a change whose group write was abandoned midway (its writer was cancelled).
fn batch_abandoned(store: &LedgerStore) -> LedgerError {
    ApiError::new(
        "storage.objects.insert",
        format!("gs://{}/{}", store.bucket, store.object),
        None,
        None,
        "the ledger write carrying this change was cancelled; re-run `stackctl plan`",
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ledger_written_pretty_by_older_versions_still_reads() {
        let pretty = "{\n  \"version\": 1,\n  \"stack\": \"s\",\n  \"resources\": {\n    \"projects/p/locations/r/queues/q\": {\n      \"address\": \"queue.q\",\n      \"status\": \"active\"\n    }\n  }\n}";
        let ledger: Ledger = serde_json::from_str(pretty).unwrap();
        assert!(ledger.entry("projects/p/locations/r/queues/q").is_some());
    }

    #[test]
    fn a_pending_entry_makes_the_ledger_version_2_and_version_1_still_reads() {
        let old = r#"{"version":1,"stack":"s","resources":{"projects/p/locations/r/queues/q":{"address":"queue.q","status":"active"}}}"#;
        let mut ledger: Ledger = serde_json::from_str(old).unwrap();
        assert_eq!(ledger.version, 1);
        let addr: ResourceAddr = "queue.r".parse().unwrap();
        ledger.record(
            "projects/p/locations/r/queues/r",
            &addr,
            LedgerStatus::Active,
        );
        assert_eq!(ledger.version, 1, "active entries keep version 1");
        ledger.record(
            "projects/p/locations/r/queues/r",
            &addr,
            LedgerStatus::Pending,
        );
        assert_eq!(ledger.version, PENDING_VERSION);
        let json = serde_json::to_string(&ledger).unwrap();
        assert!(json.contains(r#""status":"pending""#), "{json}");
        assert_eq!(serde_json::from_str::<Ledger>(&json).unwrap(), ledger);
    }

    #[test]
    fn a_ledger_without_bindings_still_reads_and_bindings_round_trip() {
        let old = r#"{"version":1,"stack":"s","resources":{"projects/p/locations/r/queues/q":{"address":"queue.q","status":"active"}}}"#;
        let mut ledger: Ledger = serde_json::from_str(old).unwrap();
        assert!(ledger.bindings.is_empty());
        assert_eq!(
            serde_json::to_string(&ledger).unwrap(),
            old,
            "unchanged ledgers are written as before"
        );
        let key = binding_key(
            "projects/p",
            "roles/x",
            "serviceAccount:a@p.iam.gserviceaccount.com",
        );
        let grant: ResourceAddr = "iam: roles/x on project for service_account.a"
            .parse()
            .unwrap();
        ledger.record_binding(&key, &grant);
        let json = serde_json::to_string(&ledger).unwrap();
        assert!(json.contains(r#""bindings":{"projects/p|roles/x|serviceAccount:a@p.iam.gserviceaccount.com":{"address":"iam: roles/x on project for service_account.a"}}"#), "{json}");
        let back: Ledger = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ledger);
        assert_eq!(
            split_binding_key(&key),
            Some((
                "projects/p",
                "roles/x",
                "serviceAccount:a@p.iam.gserviceaccount.com"
            ))
        );
    }
}
