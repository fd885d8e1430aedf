//! The apply lock: an object created with `ifGenerationMatch=0` holding its holder and a lease expiry,
//! so two applies never run at once and a killed apply blocks the next one only until its lease ends.
//!
//! Cloud Storage has no precondition across two objects, so the lock is also a fence: the lock
//! object's generation when it was taken is written into the ledger ([`super::ledger::claim_fence`]);
//! ledger writes of an apply whose fence was replaced are refused, and before each step an apply
//! confirms (at most [`CHECK_MAX_AGE`] old) that the lock object is still at its generation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ledger::Fence;
use crate::provider::ApiError;
use crate::provider::storage::StorageClient;

/// How old a confirmation that the lock is still ours may be when a step starts.
pub const CHECK_MAX_AGE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockBody {
    pub holder: String,
    /// The machine the holder runs on (absent in locks written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The holder's process id on `host` (absent in locks written before it was recorded): an
    /// apply on the same host whose holder process is gone takes the lock over without waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    pub acquired_at: DateTime<Utc>,
    /// When the lease was last renewed (absent until the first renewal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the stack is locked by {holder} since {acquired_at} (lease until {expires_at})\n  hint: wait for that apply to finish; if it is dead, the lock frees itself at {expires_at}; `stackctl unlock` shows the lock, `stackctl unlock --force` removes a live one"
    )]
    Held {
        holder: String,
        acquired_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    },
    /// This apply no longer holds the lock; why.
    #[error("{0}")]
    Lost(String),
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// Set once an apply has lost its lock (broken, taken over, lease not kept): no new step starts.
#[derive(Debug, Default)]
pub struct LostFlag(std::sync::Mutex<Option<String>>);

impl LostFlag {
    /// Records why; the first reason is kept.
    pub fn lose(&self, reason: String) {
        let mut lost = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if lost.is_none() {
            tracing::warn!("lost the apply lock: {reason}");
            *lost = Some(reason);
        }
    }

    pub fn reason(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

struct LockState {
    generation: i64,
    expires_at: DateTime<Utc>,
    confirmed_at: Option<Instant>,
}

/// A held apply lock. Release it with [`ApplyLock::release`]; renew long applies with
/// [`ApplyLock::renew`]; ask [`ApplyLock::confirm`] before starting work.
pub struct ApplyLock {
    storage: StorageClient,
    bucket: String,
    object: String,
    /// The ledger, whose fence names who took the lock once it is gone.
    ledger_object: String,
    holder: String,
    acquired_at: DateTime<Utc>,
    lease: Duration,
    fence: i64,
    state: tokio::sync::Mutex<LockState>,
    lost: Arc<LostFlag>,
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Who holds the lock, for messages: `user@host pid N`.
pub fn holder_name() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{} pid {}", host_name(), std::process::id())
}

fn lease_end(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(10))
}

fn body(
    holder: &str,
    acquired_at: DateTime<Utc>,
    renewed_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
) -> Vec<u8> {
    let b = LockBody {
        holder: holder.to_string(),
        host: Some(host_name()),
        pid: Some(std::process::id()),
        acquired_at,
        renewed_at,
        expires_at,
    };
    serde_json::to_vec_pretty(&b).unwrap_or_default()
}

impl LockBody {
    /// True when the holder ran on this machine and its process is gone (killed, crashed): its
    /// lease can no longer be renewed by anyone, so waiting for it to run out helps nobody.
    /// A holder on another host, or one whose liveness cannot be read, is never called dead.
    pub fn holder_is_dead(&self) -> bool {
        let (Some(host), Some(pid)) = (&self.host, self.pid) else {
            return false;
        };
        if *host != host_name() || pid == std::process::id() {
            return false;
        }
        process_is_gone(pid)
    }
}

/// Whether process `pid` on this machine no longer runs stackctl: no `/proc` entry, a zombie, or
/// a reused pid now running another program. Without `/proc` (not Linux) nothing is known: false.
fn process_is_gone(pid: u32) -> bool {
    let Ok(own_comm) = std::fs::read_to_string("/proc/self/comm") else {
        return false;
    };
    let proc_dir = std::path::Path::new("/proc").join(pid.to_string());
    let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) else {
        return true;
    };
    // `pid (comm) STATE ...`: the state follows the last ')'.
    let zombie = stat
        .rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']));
    let comm = std::fs::read_to_string(proc_dir.join("comm")).unwrap_or_default();
    zombie || comm != own_comm
}

/// Who holds the lock object now, for messages.
fn holder_of(data: &[u8]) -> String {
    serde_json::from_slice::<LockBody>(data)
        .map(|b| b.holder)
        .unwrap_or_else(|_| "someone (unreadable lock)".into())
}

impl ApplyLock {
    pub async fn acquire(
        storage: &StorageClient,
        bucket: &str,
        stack: &str,
        holder: &str,
        lease: Duration,
    ) -> Result<Self, LockError> {
        let object = super::lock_object(stack);
        for _ in 0..3 {
            let now = Utc::now();
            let expires_at = lease_end(now, lease);
            match storage
                .write(bucket, &object, body(holder, now, None, expires_at), 0)
                .await
            {
                Ok(generation) => {
                    return Ok(Self {
                        storage: storage.clone(),
                        bucket: bucket.into(),
                        object,
                        ledger_object: super::ledger_object(stack),
                        holder: holder.into(),
                        acquired_at: now,
                        lease,
                        fence: generation,
                        state: tokio::sync::Mutex::new(LockState {
                            generation,
                            expires_at,
                            confirmed_at: Some(Instant::now()),
                        }),
                        lost: Arc::default(),
                    });
                }
                Err(e) if e.is_precondition_failed() => {
                    let Some(current) = storage.read(bucket, &object).await? else {
                        continue;
                    };
                    let held: Option<LockBody> = serde_json::from_slice(&current.data).ok();
                    match held {
                        Some(h) if h.holder_is_dead() => {
                            eprintln!(
                                "note: took over the apply lock of {}, which is no longer running on this host",
                                h.holder
                            );
                            storage.delete(bucket, &object, current.generation).await?;
                        }
                        Some(h) if h.expires_at > Utc::now() => {
                            return Err(LockError::Held {
                                holder: h.holder,
                                acquired_at: h.acquired_at,
                                expires_at: h.expires_at,
                            });
                        }
                        // Expired or unreadable: take it over, but only the exact generation we saw.
                        _ => storage.delete(bucket, &object, current.generation).await?,
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::new(
            "storage.objects.insert",
            format!("gs://{bucket}/{object}"),
            Some(412),
            None,
            "the lock kept changing hands; re-run",
        )
        .into())
    }

    /// This apply's fence: the lock's generation when it was taken, and the holder.
    pub fn fence(&self) -> Fence {
        Fence {
            lock_generation: self.fence,
            holder: self.holder.clone(),
        }
    }

    pub fn lost_flag(&self) -> Arc<LostFlag> {
        self.lost.clone()
    }

    /// Why this apply no longer holds the lock, once it does not.
    pub fn lost(&self) -> Option<String> {
        self.lost.reason()
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// When the lease ends unless renewed.
    pub async fn expires_at(&self) -> DateTime<Utc> {
        self.state.lock().await.expires_at
    }

    /// Extends the lease (transient errors are retried by the storage client); fails with
    /// [`LockError::Lost`] if someone broke or took the lock, and marks it lost.
    pub async fn renew(&self) -> Result<(), LockError> {
        if let Some(reason) = self.lost() {
            return Err(LockError::Lost(reason));
        }
        let mut state = self.state.lock().await;
        let now = Utc::now();
        let expires_at = lease_end(now, self.lease);
        let written = self
            .storage
            .write(
                &self.bucket,
                &self.object,
                body(&self.holder, self.acquired_at, Some(now), expires_at),
                state.generation,
            )
            .await;
        match written {
            Ok(generation) => {
                state.generation = generation;
                state.expires_at = expires_at;
                state.confirmed_at = Some(Instant::now());
                Ok(())
            }
            Err(e) if e.is_precondition_failed() => {
                let reason = self.describe_loss().await;
                self.lost.lose(reason.clone());
                Err(LockError::Lost(reason))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Why a lock object that is gone is no longer ours: who fenced the ledger since, if anyone.
    async fn removed(&self) -> String {
        let fence = match self.storage.read(&self.bucket, &self.ledger_object).await {
            Ok(Some(stored)) => serde_json::from_slice::<super::Ledger>(&stored.data)
                .ok()
                .and_then(|l| l.fence),
            _ => None,
        };
        match fence {
            Some(f) if f.lock_generation != self.fence => format!(
                "the apply lock was removed and then taken by {}, which holds it now",
                f.holder
            ),
            _ => "the apply lock was removed (`stackctl unlock --force`?)".into(),
        }
    }

    /// What happened to the lock object, once it is no longer at our generation.
    async fn describe_loss(&self) -> String {
        match self.storage.read(&self.bucket, &self.object).await {
            Ok(None) => self.removed().await,
            Ok(Some(current)) => {
                format!("the apply lock is now held by {}", holder_of(&current.data))
            }
            Err(e) => format!("the apply lock changed hands ({e})"),
        }
    }

    /// Confirms the lock is still ours before a step starts: the lease has not run out and the
    /// lock object is still at our generation (re-read when the last confirmation is older than
    /// [`CHECK_MAX_AGE`]). `Err` = do not start; losses are recorded in the lost flag.
    pub async fn confirm(&self) -> Result<(), String> {
        if let Some(reason) = self.lost() {
            return Err(reason);
        }
        let mut state = self.state.lock().await;
        if Utc::now() >= state.expires_at {
            let reason = format!(
                "the apply lock's lease ended at {} without being renewed",
                state.expires_at
            );
            self.lost.lose(reason.clone());
            return Err(reason);
        }
        if state
            .confirmed_at
            .is_some_and(|t| t.elapsed() < CHECK_MAX_AGE)
        {
            return Ok(());
        }
        match self.storage.read(&self.bucket, &self.object).await {
            Ok(Some(current)) if current.generation == state.generation => {
                state.confirmed_at = Some(Instant::now());
                Ok(())
            }
            Ok(None) => {
                let reason = self.removed().await;
                self.lost.lose(reason.clone());
                Err(reason)
            }
            Ok(Some(current)) => {
                let reason = format!("the apply lock is now held by {}", holder_of(&current.data));
                self.lost.lose(reason.clone());
                Err(reason)
            }
            // Not confirmed, not known lost: this step does not start; a later one asks again.
            Err(e) => Err(format!(
                "could not confirm the apply lock is still held: {e}"
            )),
        }
    }

    /// Removes the lock if it is still ours; a lock that was taken over is left to its holder.
    pub async fn release(&self) -> Result<(), LockError> {
        if self.lost().is_some() {
            return Ok(());
        }
        let generation = self.state.lock().await.generation;
        match self
            .storage
            .delete(&self.bucket, &self.object, generation)
            .await
        {
            Ok(()) => Ok(()),
            // Someone replaced it meanwhile: it is not ours to remove.
            Err(e) if e.is_precondition_failed() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The lock as stored, with its generation (`stackctl unlock` shows it before removing it).
pub async fn read_lock(
    storage: &StorageClient,
    bucket: &str,
    stack: &str,
) -> Result<Option<(Option<LockBody>, i64)>, LockError> {
    let object = super::lock_object(stack);
    let Some(current) = storage.read(bucket, &object).await? else {
        return Ok(None);
    };
    Ok(Some((
        serde_json::from_slice(&current.data).ok(),
        current.generation,
    )))
}

/// Removes the lock at exactly `generation` (`stackctl unlock`); a lock that changed since it
/// was shown is left alone (412).
pub async fn remove_lock(
    storage: &StorageClient,
    bucket: &str,
    stack: &str,
    generation: i64,
) -> Result<(), LockError> {
    storage
        .delete(bucket, &super::lock_object(stack), generation)
        .await?;
    Ok(())
}

/// Removes the lock whoever holds it; returns who held it.
pub async fn force_unlock(
    storage: &StorageClient,
    bucket: &str,
    stack: &str,
) -> Result<Option<LockBody>, LockError> {
    let Some((held, generation)) = read_lock(storage, bucket, stack).await? else {
        return Ok(None);
    };
    remove_lock(storage, bucket, stack, generation).await?;
    Ok(held)
}
