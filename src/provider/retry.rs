//! Jittered exponential backoff around provider calls, and the matching LRO polling error policy.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

use super::error::{ApiError, RetryObserver};

/// How often and how long to retry transient failures.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub max_attempts: u32,
    pub initial: Duration,
    pub max_delay: Duration,
}

impl Backoff {
    pub const GOOGLE: Backoff = Backoff {
        max_attempts: 8,
        initial: Duration::from_millis(500),
        max_delay: Duration::from_secs(30),
    };
    pub const LOCAL: Backoff = Backoff {
        max_attempts: 8,
        initial: Duration::from_millis(20),
        max_delay: Duration::from_millis(500),
    };

    /// The delay before retry `attempt` (1-based): full jitter over an exponential ceiling.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self
            .initial
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        let millis = ceiling.as_millis().max(1) as u64;
        Duration::from_millis(rand::rng().random_range(millis / 2..=millis))
    }
}

/// Runs `call` until it succeeds, fails permanently, or the attempts run out.
pub async fn retrying<T, F, Fut>(
    backoff: Backoff,
    observer: &dyn RetryObserver,
    mut call: F,
) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) => match e.retry_reason() {
                Some(reason) if attempt < backoff.max_attempts => {
                    let delay = backoff.delay(attempt);
                    tracing::debug!(call = e.call, resource = %e.resource, %reason, ?delay, "retrying");
                    observer.retrying(attempt + 1, delay, &reason);
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                _ => {
                    let mut e = e;
                    e.attempts = attempt;
                    return Err(e);
                }
            },
        }
    }
}

/// What a create answered.
#[derive(Debug)]
pub enum Created<T> {
    /// This call made it.
    New(T),
    /// `ALREADY_EXISTS`. `after_retry`: an earlier attempt of this same call failed with a
    /// retryable error (a timeout or a 5xx) and may have made it; otherwise someone else did.
    Exists { after_retry: bool, error: ApiError },
}

impl<T> Created<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Created<U> {
        match self {
            Created::New(made) => Created::New(f(made)),
            Created::Exists { after_retry, error } => Created::Exists { after_retry, error },
        }
    }
}

/// [`retrying`] for a create: an `ALREADY_EXISTS` answer is not an error but [`Created::Exists`],
/// saying whether this call's own earlier attempt may have made the resource.
pub async fn creating<T, F, Fut>(
    backoff: Backoff,
    observer: &dyn RetryObserver,
    mut call: F,
) -> Result<Created<T>, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    use std::sync::atomic::{AtomicU32, Ordering};
    let attempts = AtomicU32::new(0);
    let answer = retrying(backoff, observer, || {
        attempts.fetch_add(1, Ordering::Relaxed);
        call()
    })
    .await;
    match answer {
        Ok(made) => Ok(Created::New(made)),
        Err(error) if error.is_already_exists() => Ok(Created::Exists {
            after_retry: attempts.load(Ordering::Relaxed) > 1,
            error,
        }),
        Err(error) => Err(error),
    }
}

/// Every item of a paged list call. `fetch(token)` asks for one page (with its own retries) and
/// answers its items and the next page token; an empty token ends the list.
pub async fn all_pages<T, F, Fut>(mut fetch: F) -> Result<Vec<T>, ApiError>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, String), ApiError>>,
{
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let (items, next) = fetch(token).await?;
        out.extend(items);
        if next.is_empty() {
            return Ok(out);
        }
        token = next;
    }
}

/// LRO polling: keep polling through the same transient errors, up to a limit.
#[derive(Debug, Clone)]
pub struct TransientPollingErrors {
    pub max_attempts: u32,
}

impl google_cloud_gax::polling_error_policy::PollingErrorPolicy for TransientPollingErrors {
    fn on_error(
        &self,
        state: &google_cloud_gax::polling_state::PollingState,
        error: google_cloud_gax::error::Error,
    ) -> google_cloud_gax::retry_result::RetryResult {
        use google_cloud_gax::retry_result::RetryResult;
        let classified = ApiError::from_gax("operations.get", "", &error);
        match classified.retry_reason() {
            Some(_) if state.attempt_count < self.max_attempts => RetryResult::Continue(error),
            Some(_) => RetryResult::Exhausted(error),
            None => RetryResult::Permanent(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Recorder(Mutex<Vec<String>>);
    impl RetryObserver for Recorder {
        fn retrying(&self, attempt: u32, _: Duration, reason: &str) {
            self.0.lock().unwrap().push(format!("{attempt}:{reason}"));
        }
    }

    #[tokio::test]
    async fn transient_failures_are_retried_and_reported_then_succeed() {
        let calls = AtomicU32::new(0);
        let rec = Recorder(Mutex::new(vec![]));
        let out = retrying(Backoff::LOCAL, &rec, || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(ApiError::new(
                    "c",
                    "r",
                    Some(503),
                    Some("UNAVAILABLE".into()),
                    "down",
                ))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(out.unwrap(), 7);
        assert_eq!(
            *rec.0.lock().unwrap(),
            vec!["2:503 UNAVAILABLE", "3:503 UNAVAILABLE"]
        );
    }

    #[tokio::test]
    async fn permanent_failures_are_not_retried() {
        let calls = AtomicU32::new(0);
        let out: Result<(), _> = retrying(Backoff::LOCAL, &super::super::error::Silent, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(ApiError::new(
                "c",
                "r",
                Some(400),
                Some("INVALID_ARGUMENT".into()),
                "bad",
            ))
        })
        .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn delays_grow_and_stay_capped() {
        let b = Backoff {
            max_attempts: 10,
            initial: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        assert!(b.delay(1) <= Duration::from_millis(200));
        assert!(b.delay(9) <= Duration::from_secs(1));
        assert!(b.delay(9) >= Duration::from_millis(500));
    }

    #[tokio::test]
    async fn all_pages_follows_tokens_until_an_empty_one() {
        let pages = [(vec![1, 2], "b"), (vec![3], "c"), (vec![], "")];
        let asked = Mutex::new(Vec::new());
        let all = all_pages(|token| {
            asked.lock().unwrap().push(token.clone());
            let (items, next) = match token.as_str() {
                "" => pages[0].clone(),
                "b" => pages[1].clone(),
                _ => pages[2].clone(),
            };
            async move { Ok((items, next.to_string())) }
        })
        .await
        .unwrap();
        assert_eq!(all, vec![1, 2, 3]);
        assert_eq!(*asked.lock().unwrap(), vec!["", "b", "c"]);
    }
}
