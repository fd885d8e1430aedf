//! The emulator's one clock: real time plus an offset that tests move forward through
//! `POST /_emulator/clock` instead of sleeping, so crons, retries and expirations are tested
//! without waiting.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct Clock {
    /// Milliseconds added to real time.
    offset_ms: AtomicI64,
    /// Woken whenever the clock jumps, so timers waiting on it re-check their deadlines.
    jumped: Notify,
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }

    /// Moves the clock forward (never back) and wakes every timer.
    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
        self.jumped.notify_waiters();
    }

    /// Sleeps until `deadline` on this clock, waking early when the clock jumps past it.
    pub async fn sleep_until(&self, deadline: DateTime<Utc>) {
        loop {
            let now = self.now();
            if now >= deadline {
                return;
            }
            let wait = (deadline - now).to_std().unwrap_or_default();
            let jumped = self.jumped.notified();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = jumped => {}
            }
        }
    }

    /// Resolves on the next jump of the clock (for loops that re-read their earliest deadline).
    pub async fn jumped(&self) {
        self.jumped.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn advancing_wakes_a_sleeper_whose_deadline_passed() {
        let clock = std::sync::Arc::new(Clock::default());
        let deadline = clock.now() + chrono::Duration::hours(1);
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.sleep_until(deadline).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!sleeper.is_finished());
        clock.advance(std::time::Duration::from_secs(3601));
        tokio::time::timeout(std::time::Duration::from_secs(2), sleeper)
            .await
            .expect("woken by the jump")
            .expect("no panic");
        assert!(clock.now() >= deadline);
    }
}
