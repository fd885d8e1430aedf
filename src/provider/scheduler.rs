//! Cloud Scheduler v1 jobs through `google-cloud-scheduler-v1`: list, create, patch with a field
//! mask, delete. stackctl's schedules are HTTP jobs that POST a Cloud Run job's `:run` URL with
//! an OAuth token.

use google_cloud_scheduler_v1::model as gm;
use google_cloud_wkt as wkt;

use super::Cloud;
use super::error::{ApiError, NotFoundAsAnswer, RetryObserver};
use super::retry::{Created, all_pages, creating, retrying};

pub use crate::model::live::scheduler::ScheduleRecord;

/// The OAuth scope a schedule's token carries (what Run's `jobs.run` accepts).
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// What stackctl writes: the whole target, schedule and zone.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScheduleWrite {
    pub name: String,
    pub schedule: String,
    pub time_zone: String,
    pub uri: String,
    pub oauth_service_account: String,
}

/// The field-mask paths of what [`ScheduleWrite`] manages.
pub const SCHEDULE: &str = "schedule";
pub const TIME_ZONE: &str = "time_zone";
pub const HTTP_TARGET: &str = "http_target";

fn schedule_from_api(j: gm::Job) -> ScheduleRecord {
    let target = j.http_target().cloned();
    let state = match j.state {
        gm::job::State::Enabled => "ENABLED",
        gm::job::State::Paused => "PAUSED",
        gm::job::State::Disabled => "DISABLED",
        gm::job::State::UpdateFailed => "UPDATE_FAILED",
        _ => "STATE_UNSPECIFIED",
    };
    let (uri, http_method, oauth_service_account, oauth_scope) = match target {
        Some(t) => {
            let method = match t.http_method {
                gm::HttpMethod::Post => "POST",
                gm::HttpMethod::Get => "GET",
                gm::HttpMethod::Put => "PUT",
                gm::HttpMethod::Delete => "DELETE",
                gm::HttpMethod::Patch => "PATCH",
                gm::HttpMethod::Head => "HEAD",
                gm::HttpMethod::Options => "OPTIONS",
                // Unset means POST, the API's default.
                _ => "POST",
            };
            let (account, scope) = t
                .oauth_token()
                .map(|o| (o.service_account_email.clone(), o.scope.clone()))
                .unwrap_or_default();
            (Some(t.uri.clone()), method.to_string(), account, scope)
        }
        None => (None, String::new(), String::new(), String::new()),
    };
    ScheduleRecord {
        name: j.name,
        schedule: j.schedule,
        time_zone: j.time_zone,
        state: state.to_string(),
        uri,
        http_method,
        oauth_service_account,
        oauth_scope,
    }
}

impl ScheduleWrite {
    fn to_api(&self) -> gm::Job {
        let target = gm::HttpTarget::new()
            .set_uri(self.uri.clone())
            .set_http_method(gm::HttpMethod::Post)
            .set_oauth_token(
                gm::OAuthToken::new()
                    .set_service_account_email(self.oauth_service_account.clone())
                    .set_scope(CLOUD_PLATFORM_SCOPE),
            );
        gm::Job::new()
            .set_name(self.name.clone())
            .set_schedule(self.schedule.clone())
            .set_time_zone(self.time_zone.clone())
            .set_http_target(target)
    }
}

impl Cloud {
    /// Every Scheduler job in the project and region: one paged list call per page.
    pub async fn list_schedules(
        &self,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<ScheduleRecord>, ApiError> {
        let parent = self.parent();
        all_pages(|token| {
            let parent = parent.clone();
            async move {
                let page = retrying(self.backoff, observer, || async {
                    self.scheduler
                        .list_jobs()
                        .set_parent(&parent)
                        .set_page_token(&token)
                        .send()
                        .await
                        .map_err(|e| ApiError::from_gax("cloudscheduler.jobs.list", &parent, &e))
                })
                .await?;
                let items = page.jobs.into_iter().map(schedule_from_api);
                Ok((items.collect(), page.next_page_token))
            }
        })
        .await
    }

    /// Creates the Scheduler job; one already there is answered as [`Created::Exists`] for the
    /// caller to judge.
    pub async fn create_schedule(
        &self,
        write: &ScheduleWrite,
        observer: &dyn RetryObserver,
    ) -> Result<Created<ScheduleRecord>, ApiError> {
        let parent = self.parent();
        let created = creating(self.backoff, observer, || async {
            self.scheduler
                .create_job()
                .set_parent(&parent)
                .set_job(write.to_api())
                .send()
                .await
                .map_err(|e| ApiError::from_gax("cloudscheduler.jobs.create", &write.name, &e))
        })
        .await;
        Ok(created?.map(schedule_from_api))
    }

    /// Patches exactly the masked fields ([`SCHEDULE`], [`TIME_ZONE`], [`HTTP_TARGET`]).
    pub async fn update_schedule(
        &self,
        write: &ScheduleWrite,
        mask: &[&str],
        observer: &dyn RetryObserver,
    ) -> Result<ScheduleRecord, ApiError> {
        let mask = wkt::FieldMask::default().set_paths(mask.iter().map(|p| p.to_string()));
        retrying(self.backoff, observer, || async {
            self.scheduler
                .update_job()
                .set_job(write.to_api())
                .set_update_mask(mask.clone())
                .send()
                .await
                .map(schedule_from_api)
                .map_err(|e| ApiError::from_gax("cloudscheduler.jobs.patch", &write.name, &e))
        })
        .await
    }

    pub async fn get_schedule(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<Option<ScheduleRecord>, ApiError> {
        let got = retrying(self.backoff, observer, || async {
            self.scheduler
                .get_job()
                .set_name(name)
                .send()
                .await
                .map_err(|e| ApiError::from_gax("cloudscheduler.jobs.get", name, &e))
        })
        .await;
        got.map(schedule_from_api).not_found_as_none()
    }

    /// Resumes a paused Scheduler job.
    pub async fn resume_schedule(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<(), ApiError> {
        retrying(self.backoff, observer, || async {
            self.scheduler
                .resume_job()
                .set_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| ApiError::from_gax("cloudscheduler.jobs.resume", name, &e))
        })
        .await
    }

    /// Deletes the Scheduler job; already gone counts as done.
    pub async fn delete_schedule(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<(), ApiError> {
        let deleted = retrying(self.backoff, observer, || async {
            self.scheduler
                .delete_job()
                .set_name(name)
                .send()
                .await
                .map_err(|e| ApiError::from_gax("cloudscheduler.jobs.delete", name, &e))
        })
        .await;
        deleted.not_found_as_done()
    }
}
