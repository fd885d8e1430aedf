//! State that lives in the cloud, so fresh CI clones share it: the ownership ledger and the apply lock,
//! both Cloud Storage objects updated only with generation preconditions.

pub mod ledger;
pub mod lock;

pub use ledger::{Ledger, LedgerEntry, LedgerStatus, LedgerStore};
pub use lock::{ApplyLock, LockError};

/// Object names inside the state bucket, one folder per stack.
pub fn ledger_object(stack: &str) -> String {
    format!("stackctl/{stack}/ledger.json")
}

pub fn lock_object(stack: &str) -> String {
    format!("stackctl/{stack}/apply.lock")
}

#[cfg(test)]
mod fencing_tests {
    use std::time::Duration;

    use super::ledger::{LedgerError, SharedLedger, claim_fence};
    use super::lock::{ApplyLock, force_unlock};
    use super::{LedgerStatus, LedgerStore};
    use crate::provider::storage::StorageClient;

    async fn storage() -> (gcp_emulator::RunningEmulator, StorageClient) {
        let emulator = gcp_emulator::start(gcp_emulator::Settings::default(), 0)
            .await
            .unwrap();
        let credentials = google_cloud_auth::credentials::anonymous::Builder::new().build();
        let storage = StorageClient::new(Some(&emulator.url()), credentials).unwrap();
        storage.create_bucket("p", "state-b", "us").await.unwrap();
        (emulator, storage)
    }

    /// Takes the lock of stack `s` as `holder`, fences the ledger for it and loads the ledger
    /// under that fence.
    async fn locked_as(storage: &StorageClient, holder: &str) -> (ApplyLock, LedgerStore) {
        let lock = ApplyLock::acquire(storage, "state-b", "s", holder, Duration::from_secs(60))
            .await
            .unwrap();
        claim_fence(storage, "state-b", "s", &lock.fence())
            .await
            .unwrap();
        let mut ledger = LedgerStore::load(storage, "state-b", "s").await.unwrap();
        ledger.fenced(lock.fence(), lock.lost_flag()).unwrap();
        (lock, ledger)
    }

    #[tokio::test]
    async fn a_ledger_write_after_another_apply_fenced_it_is_refused_not_reapplied() {
        let (emulator, storage) = storage().await;
        let (first, mut ledger) = locked_as(&storage, "first").await;
        let addr: crate::model::ResourceAddr = "queue.q".parse().unwrap();
        ledger
            .update(|l| l.record("q1", &addr, LedgerStatus::Active))
            .await
            .unwrap();
        assert!(first.confirm().await.is_ok());

        // Someone breaks the lock; a second apply takes it and fences the ledger.
        force_unlock(&storage, "state-b", "s").await.unwrap();
        let (second, _) = locked_as(&storage, "second").await;

        let refused = ledger
            .update(|l| l.record("q2", &addr, LedgerStatus::Active))
            .await;
        assert!(
            matches!(&refused, Err(LedgerError::Fenced { holder }) if holder == "second"),
            "{refused:?}"
        );
        let reason = first
            .lost()
            .expect("the first apply knows it lost the lock");
        assert!(reason.contains("second"), "{reason}");
        assert!(first.confirm().await.is_err(), "no new step starts");
        let stored = LedgerStore::load(&storage, "state-b", "s").await.unwrap();
        assert!(stored.ledger.entry("q2").is_none(), "nothing was written");
        // The stale holder cannot fence the ledger back either.
        assert!(
            claim_fence(&storage, "state-b", "s", &first.fence())
                .await
                .is_err()
        );
        // And its renewal fails instead of re-taking the lock.
        assert!(first.renew().await.is_err());
        first.release().await.unwrap();
        assert!(second.confirm().await.is_ok(), "the second still holds it");
        emulator.shutdown().await;
    }

    /// The ledger uploads the emulator served, from its request log.
    async fn ledger_uploads(emulator: &gcp_emulator::RunningEmulator) -> usize {
        let log: Vec<serde_json::Value> =
            reqwest::get(format!("{}/_emulator/requests", emulator.url()))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        log.iter()
            .filter(|r| {
                matches!(r["method"].as_str(), Some("POST" | "PUT"))
                    && r["path"]
                        .as_str()
                        .unwrap_or_default()
                        .starts_with("/upload/")
                    && r["query"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("ledger.json")
            })
            .count()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_records_share_ledger_writes_and_every_record_lands() {
        let (emulator, storage) = storage().await;
        // Each upload takes 50 ms, as a region away from Google's front ends would.
        reqwest::Client::new()
            .post(format!("{}/_emulator/faults", emulator.url()))
            .body(r#"{"rules":[{"path_contains":"/upload/","latency_ms":50}]}"#)
            .send()
            .await
            .unwrap();
        let lease = Duration::from_secs(60);
        let lock = ApplyLock::acquire(&storage, "state-b", "s", "me", lease)
            .await
            .unwrap();
        claim_fence(&storage, "state-b", "s", &lock.fence())
            .await
            .unwrap();
        let mut store = LedgerStore::load(&storage, "state-b", "s").await.unwrap();
        store.fenced(lock.fence(), lock.lost_flag()).unwrap();
        let ledger = std::sync::Arc::new(SharedLedger::new(store));
        let before = ledger_uploads(&emulator).await;

        const RECORDS: usize = 40;
        let mut steps = tokio::task::JoinSet::new();
        for i in 0..RECORDS {
            let ledger = ledger.clone();
            steps.spawn(async move {
                let addr: crate::model::ResourceAddr = format!("queue.q{i}").parse().unwrap();
                let name = format!("projects/p/locations/r/queues/q{i}");
                ledger
                    .update(move |l| l.record(&name, &addr, LedgerStatus::Pending))
                    .await
            });
        }
        while let Some(done) = steps.join_next().await {
            done.unwrap().unwrap();
        }

        let writes = ledger_uploads(&emulator).await - before;
        assert!(
            writes <= RECORDS / 4,
            "{RECORDS} concurrent records took {writes} ledger writes"
        );
        let stored = LedgerStore::load(&storage, "state-b", "s").await.unwrap();
        for i in 0..RECORDS {
            let entry = stored
                .ledger
                .entry(&format!("projects/p/locations/r/queues/q{i}"))
                .expect("every record is in the stored ledger");
            assert_eq!(entry.status, LedgerStatus::Pending);
        }
        assert_eq!(stored.ledger.fence, Some(lock.fence()), "the fence is kept");
        emulator.shutdown().await;
    }

    #[tokio::test]
    async fn a_ledger_write_by_group_commit_is_refused_under_another_fence() {
        let (emulator, storage) = storage().await;
        let (_first, store) = locked_as(&storage, "first").await;
        let ledger = SharedLedger::new(store);
        force_unlock(&storage, "state-b", "s").await.unwrap();
        let (_second, _) = locked_as(&storage, "second").await;
        let addr: crate::model::ResourceAddr = "queue.q".parse().unwrap();
        let (a, b) = tokio::join!(
            ledger.update({
                let addr = addr.clone();
                move |l| l.record("q1", &addr, LedgerStatus::Active)
            }),
            ledger.update(move |l| l.record("q2", &addr, LedgerStatus::Active)),
        );
        for refused in [a, b] {
            assert!(
                matches!(&refused, Err(LedgerError::Fenced { holder }) if holder == "second"),
                "{refused:?}"
            );
        }
        let stored = LedgerStore::load(&storage, "state-b", "s").await.unwrap();
        assert!(stored.ledger.entry("q1").is_none() && stored.ledger.entry("q2").is_none());
        emulator.shutdown().await;
    }

    #[tokio::test]
    async fn a_broken_lock_is_noticed_before_the_next_step() {
        let (emulator, storage) = storage().await;
        let lock = ApplyLock::acquire(&storage, "state-b", "s", "me", Duration::from_secs(60))
            .await
            .unwrap();
        force_unlock(&storage, "state-b", "s").await.unwrap();
        // The cached confirmation is at most CHECK_MAX_AGE old.
        tokio::time::sleep(super::lock::CHECK_MAX_AGE).await;
        let stopped = lock.confirm().await.unwrap_err();
        assert!(stopped.contains("removed"), "{stopped}");
        emulator.shutdown().await;
    }
}
