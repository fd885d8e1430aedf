//! The apply lock: an object created with `ifGenerationMatch=0` holding its holder and a lease expiry,
//! so two applies never run at once and a killed apply blocks the next one only until its lease ends.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::provider::ApiError;
use crate::provider::storage::StorageClient;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockBody {
    pub holder: String,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the stack is locked by {holder} since {acquired_at} (lease until {expires_at})\n  hint: wait for that apply to finish; if it is dead, the lock frees itself at {expires_at}, or run `stackctl unlock`"
    )]
    Held {
        holder: String,
        acquired_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    },
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// A held apply lock. Release it with [`ApplyLock::release`]; renew long applies with [`ApplyLock::renew`].
pub struct ApplyLock {
    storage: StorageClient,
    bucket: String,
    object: String,
    generation: i64,
    holder: String,
    lease: Duration,
}

/// Who holds the lock, for messages: `user@host pid N`.
pub fn holder_name() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host} pid {}", std::process::id())
}

fn body(holder: &str, lease: Duration) -> Vec<u8> {
    let now = Utc::now();
    let b = LockBody {
        holder: holder.to_string(),
        acquired_at: now,
        expires_at: now
            + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(10)),
    };
    serde_json::to_vec_pretty(&b).unwrap_or_default()
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
            match storage.write(bucket, &object, body(holder, lease), 0).await {
                Ok(generation) => {
                    return Ok(Self {
                        storage: storage.clone(),
                        bucket: bucket.into(),
                        object,
                        generation,
                        holder: holder.into(),
                        lease,
                    });
                }
                Err(e) if e.is_precondition_failed() => {
                    let Some(current) = storage.read(bucket, &object).await? else {
                        continue;
                    };
                    let held: Option<LockBody> = serde_json::from_slice(&current.data).ok();
                    match held {
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

    /// Extends the lease; fails if someone broke the lock.
    pub async fn renew(&mut self) -> Result<(), LockError> {
        self.generation = self
            .storage
            .write(
                &self.bucket,
                &self.object,
                body(&self.holder, self.lease),
                self.generation,
            )
            .await?;
        Ok(())
    }

    pub async fn release(self) -> Result<(), LockError> {
        self.storage
            .delete(&self.bucket, &self.object, self.generation)
            .await?;
        Ok(())
    }
}

/// Removes the lock whoever holds it (`stackctl unlock`); returns who held it.
pub async fn force_unlock(
    storage: &StorageClient,
    bucket: &str,
    stack: &str,
) -> Result<Option<LockBody>, LockError> {
    let object = super::lock_object(stack);
    let Some(current) = storage.read(bucket, &object).await? else {
        return Ok(None);
    };
    storage.delete(bucket, &object, current.generation).await?;
    Ok(serde_json::from_slice(&current.data).ok())
}
