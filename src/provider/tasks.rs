//! Cloud Tasks v2 queues through `google-cloud-tasks-v2`: list, create, patch with a field mask, pause, resume, delete.

use std::time::Duration;

use google_cloud_tasks_v2::model::{self as gm, queue::State};
use google_cloud_wkt as wkt;

use super::Cloud;
use super::error::{ApiError, NotFoundAsAnswer, RetryObserver};
use super::retry::{Created, all_pages, creating, retrying};

pub use crate::model::live::tasks::{HttpTargetRecord, OidcRecord, QueueRecord, QueueState};

/// The updatable fields of a queue, named as in the API's field mask (snake_case proto paths).
pub const RATE_MAX_DISPATCHES_PER_SECOND: &str = "rate_limits.max_dispatches_per_second";
pub const RATE_MAX_CONCURRENT_DISPATCHES: &str = "rate_limits.max_concurrent_dispatches";
pub const RETRY_MAX_ATTEMPTS: &str = "retry_config.max_attempts";
pub const RETRY_MIN_BACKOFF: &str = "retry_config.min_backoff";
pub const RETRY_MAX_BACKOFF: &str = "retry_config.max_backoff";
pub const RETRY_MAX_DOUBLINGS: &str = "retry_config.max_doublings";
pub const RETRY_MAX_RETRY_DURATION: &str = "retry_config.max_retry_duration";
pub const HTTP_TARGET: &str = "http_target";

fn to_wkt(d: Duration) -> Option<wkt::Duration> {
    wkt::Duration::try_from(d).ok()
}

fn from_wkt(d: Option<&wkt::Duration>) -> Option<Duration> {
    d.and_then(|d| Duration::try_from(*d).ok())
}

fn queue_from_api(q: gm::Queue) -> QueueRecord {
    let rate = q.rate_limits.unwrap_or_default();
    let retry = q.retry_config.unwrap_or_default();
    let http_target = q.http_target.and_then(|t| {
        let oidc = t.oidc_token().map(|o| OidcRecord {
            service_account_email: o.service_account_email.clone(),
            audience: o.audience.clone(),
        });
        t.uri_override.and_then(|u| {
            u.host.map(|host| HttpTargetRecord {
                host,
                path: u.path_override.map(|p| p.path).filter(|p| !p.is_empty()),
                oidc,
            })
        })
    });
    QueueRecord {
        name: q.name,
        state: match q.state {
            State::Running => QueueState::Running,
            State::Paused => QueueState::Paused,
            State::Disabled => QueueState::Disabled,
            _ => QueueState::Unspecified,
        },
        max_dispatches_per_second: rate.max_dispatches_per_second,
        max_concurrent_dispatches: rate.max_concurrent_dispatches,
        max_attempts: retry.max_attempts,
        min_backoff: from_wkt(retry.min_backoff.as_ref()),
        max_backoff: from_wkt(retry.max_backoff.as_ref()),
        max_doublings: retry.max_doublings,
        max_retry_duration: from_wkt(retry.max_retry_duration.as_ref()),
        http_target,
    }
}

fn queue_to_api(q: &QueueRecord) -> gm::Queue {
    let rate = gm::RateLimits::new()
        .set_max_dispatches_per_second(q.max_dispatches_per_second)
        .set_max_concurrent_dispatches(q.max_concurrent_dispatches);
    let retry = gm::RetryConfig::new()
        .set_max_attempts(q.max_attempts)
        .set_or_clear_min_backoff(q.min_backoff.and_then(to_wkt))
        .set_or_clear_max_backoff(q.max_backoff.and_then(to_wkt))
        .set_max_doublings(q.max_doublings)
        .set_or_clear_max_retry_duration(q.max_retry_duration.and_then(to_wkt));
    let http_target = q.http_target.as_ref().map(|t| {
        let mut uri = gm::UriOverride::new()
            .set_scheme(gm::uri_override::Scheme::Https)
            .set_host(t.host.clone())
            .set_uri_override_enforce_mode(gm::uri_override::UriOverrideEnforceMode::Always);
        if let Some(path) = &t.path {
            uri = uri.set_path_override(gm::PathOverride::new().set_path(path.clone()));
        }
        let target = gm::HttpTarget::new()
            .set_uri_override(uri)
            .set_http_method(gm::HttpMethod::Post);
        match &t.oidc {
            Some(oidc) => target.set_oidc_token(
                gm::OidcToken::new()
                    .set_service_account_email(oidc.service_account_email.clone())
                    .set_audience(oidc.audience.clone()),
            ),
            None => target,
        }
    });
    gm::Queue::new()
        .set_name(q.name.clone())
        .set_rate_limits(rate)
        .set_retry_config(retry)
        .set_or_clear_http_target(http_target)
}

impl Cloud {
    /// Every queue in the project and region: one paged list call per page.
    pub async fn list_queues(
        &self,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<QueueRecord>, ApiError> {
        let parent = self.parent();
        all_pages(|token| {
            let parent = parent.clone();
            async move {
                let page = retrying(self.backoff, observer, || async {
                    self.tasks
                        .list_queues()
                        .set_parent(&parent)
                        .set_page_token(&token)
                        .send()
                        .await
                        .map_err(|e| ApiError::from_gax("cloudtasks.queues.list", &parent, &e))
                })
                .await?;
                let items = page.queues.into_iter().map(queue_from_api);
                Ok((items.collect(), page.next_page_token))
            }
        })
        .await
    }

    pub async fn get_queue(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<Option<QueueRecord>, ApiError> {
        let got = retrying(self.backoff, observer, || async {
            self.tasks
                .get_queue()
                .set_name(name)
                .send()
                .await
                .map_err(|e| ApiError::from_gax("cloudtasks.queues.get", name, &e))
        })
        .await;
        got.map(queue_from_api).not_found_as_none()
    }

    /// Creates the queue; one already there is answered as [`Created::Exists`] for the caller
    /// to judge.
    pub async fn create_queue(
        &self,
        queue: &QueueRecord,
        observer: &dyn RetryObserver,
    ) -> Result<Created<QueueRecord>, ApiError> {
        let parent = self.parent();
        let created = creating(self.backoff, observer, || async {
            self.tasks
                .create_queue()
                .set_parent(&parent)
                .set_queue(queue_to_api(queue))
                .send()
                .await
                .map_err(|e| ApiError::from_gax("cloudtasks.queues.create", &queue.name, &e))
        })
        .await;
        Ok(created?.map(queue_from_api))
    }

    /// Patches exactly the masked fields (proto paths such as [`RETRY_MAX_ATTEMPTS`]).
    pub async fn update_queue(
        &self,
        queue: &QueueRecord,
        mask: &[&str],
        observer: &dyn RetryObserver,
    ) -> Result<QueueRecord, ApiError> {
        let mask = wkt::FieldMask::default().set_paths(mask.iter().map(|p| p.to_string()));
        retrying(self.backoff, observer, || async {
            self.tasks
                .update_queue()
                .set_queue(queue_to_api(queue))
                .set_update_mask(mask.clone())
                .send()
                .await
                .map(queue_from_api)
                .map_err(|e| ApiError::from_gax("cloudtasks.queues.patch", &queue.name, &e))
        })
        .await
    }

    pub async fn pause_queue(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<QueueRecord, ApiError> {
        retrying(self.backoff, observer, || async {
            self.tasks
                .pause_queue()
                .set_name(name)
                .send()
                .await
                .map(queue_from_api)
                .map_err(|e| ApiError::from_gax("cloudtasks.queues.pause", name, &e))
        })
        .await
    }

    pub async fn resume_queue(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<QueueRecord, ApiError> {
        retrying(self.backoff, observer, || async {
            self.tasks
                .resume_queue()
                .set_name(name)
                .send()
                .await
                .map(queue_from_api)
                .map_err(|e| ApiError::from_gax("cloudtasks.queues.resume", name, &e))
        })
        .await
    }

    /// Deletes the queue; already gone counts as done.
    pub async fn delete_queue(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<(), ApiError> {
        let deleted = retrying(self.backoff, observer, || async {
            self.tasks
                .delete_queue()
                .set_name(name)
                .send()
                .await
                .map_err(|e| ApiError::from_gax("cloudtasks.queues.delete", name, &e))
        })
        .await;
        deleted.not_found_as_done()
    }
}
