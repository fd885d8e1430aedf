//! Cloud Run Admin v2 jobs through `google-cloud-run-v2`'s `Jobs` client: list, create,
//! read-modify-write update with the etag, delete, all as long-running operations.

use std::collections::BTreeMap;
use std::time::Duration;

use google_cloud_run_v2::model as gm;
use google_cloud_wkt as wkt;

use super::Cloud;
use super::container::{
    FirstContainer, ImageWrite, SecretEnvRef, first_container_mut, overlay_first_container,
};
use super::error::{ApiError, NotFoundAsAnswer, RetryObserver};
use super::retry::{Created, all_pages, creating, retrying};
use super::run::{OperationObserver, unchanged_since_plan, wait_for};

pub use crate::model::live::jobs::{ExecutionRecord, JobRecord};

/// The declared state stackctl writes onto a job; everything else on the job is kept.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobWrite {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub image: ImageWrite,
    pub env: Option<BTreeMap<String, String>>,
    pub secrets: Option<BTreeMap<String, SecretEnvRef>>,
    pub cpu: String,
    pub memory: String,
    pub task_timeout: Duration,
    pub max_retries: i32,
    pub parallelism: Option<i32>,
    pub task_count: i32,
    pub service_account: Option<String>,
}

fn job_from_api(j: gm::Job) -> JobRecord {
    let execution = j.template.unwrap_or_default();
    let task = execution.template.unwrap_or_default();
    let max_retries = task.max_retries().copied();
    let container = FirstContainer::read(task.containers);
    JobRecord {
        name: j.name,
        labels: j.labels.into_iter().collect(),
        etag: j.etag,
        image: container.image,
        env: container.env,
        secret_env: container.secret_env,
        limits: container.limits,
        task_timeout: task.timeout.and_then(|t| Duration::try_from(t).ok()),
        max_retries,
        parallelism: execution.parallelism,
        task_count: execution.task_count,
        service_account: task.service_account,
    }
}

impl JobWrite {
    /// Writes the declared fields onto `job`, keeping every other field as it is.
    fn overlay(&self, mut job: gm::Job) -> gm::Job {
        job.name = self.name.clone();
        for (k, v) in &self.labels {
            job.labels.insert(k.clone(), v.clone());
        }
        let mut execution = job.template.take().unwrap_or_default();
        if let Some(p) = self.parallelism {
            execution.parallelism = p;
        }
        execution.task_count = self.task_count;
        let mut task = execution.template.take().unwrap_or_default();
        task.timeout = wkt::Duration::try_from(self.task_timeout).ok();
        task = task.set_max_retries(self.max_retries);
        if let Some(account) = &self.service_account {
            task.service_account = account.clone();
        }
        overlay_first_container(
            &mut task.containers,
            &self.image,
            &self.cpu,
            &self.memory,
            self.env.as_ref(),
            self.secrets.as_ref(),
        );
        execution.template = Some(task);
        job.template = Some(execution);
        job
    }
}

impl Cloud {
    /// Every job in the project and region: one paged list call per page.
    pub async fn list_jobs(
        &self,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<JobRecord>, ApiError> {
        let parent = self.parent();
        all_pages(|token| {
            let parent = parent.clone();
            async move {
                let page = retrying(self.backoff, observer, || async {
                    self.jobs
                        .list_jobs()
                        .set_parent(&parent)
                        .set_page_token(&token)
                        .send()
                        .await
                        .map_err(|e| ApiError::from_gax("run.jobs.list", &parent, &e))
                })
                .await?;
                let items = page.jobs.into_iter().map(job_from_api);
                Ok((items.collect(), page.next_page_token))
            }
        })
        .await
    }

    /// The executions of `job` (newest first, as the API lists them).
    pub async fn list_executions(
        &self,
        job: &str,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<ExecutionRecord>, ApiError> {
        let time = |t: Option<wkt::Timestamp>| {
            t.and_then(|t| {
                chrono::DateTime::from_timestamp(t.seconds(), u32::try_from(t.nanos()).unwrap_or(0))
            })
        };
        all_pages(|token| async move {
            let page = retrying(self.backoff, observer, || async {
                self.executions
                    .list_executions()
                    .set_parent(job)
                    .set_page_token(&token)
                    .send()
                    .await
                    .map_err(|e| ApiError::from_gax("run.jobs.executions.list", job, &e))
            })
            .await?;
            let items = page.executions.into_iter().map(|e| ExecutionRecord {
                name: e.name,
                start: time(e.start_time),
                completion: time(e.completion_time),
                task_count: e.task_count,
                succeeded_count: e.succeeded_count,
                failed_count: e.failed_count,
                retried_count: e.retried_count,
            });
            Ok((items.collect(), page.next_page_token))
        })
        .await
    }

    async fn get_job_api(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<gm::Job, ApiError> {
        retrying(self.backoff, observer, || async {
            self.jobs
                .get_job()
                .set_name(name)
                .send()
                .await
                .map_err(|e| ApiError::from_gax("run.jobs.get", name, &e))
        })
        .await
    }

    /// Creates the job and waits for its operation; a job already there is answered as
    /// [`Created::Exists`] for the caller to judge.
    pub async fn create_job(
        &self,
        write: &JobWrite,
        observer: &dyn OperationObserver,
    ) -> Result<Created<JobRecord>, ApiError> {
        let parent = self.parent();
        let id = write
            .name
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let job = write.overlay(gm::Job::new());
        let created = creating(self.backoff, observer, || {
            let poller = self
                .jobs
                .create_job()
                .set_parent(&parent)
                .set_job_id(&id)
                .set_job(job.clone())
                .poller();
            wait_for("run.jobs.create", &write.name, poller, observer)
        })
        .await;
        Ok(created?.map(job_from_api))
    }

    /// Reads the job, writes the declared fields onto it and patches it with its etag.
    /// `expected_etag` (from a saved plan) makes the update fail if the job changed since.
    pub async fn update_job(
        &self,
        write: &JobWrite,
        expected_etag: Option<&str>,
        observer: &dyn OperationObserver,
    ) -> Result<JobRecord, ApiError> {
        let live = self.get_job_api(&write.name, observer).await?;
        unchanged_since_plan(
            expected_etag,
            &live.etag,
            "run.jobs.patch",
            &write.name,
            "job",
        )?;
        let updated = self
            .patch_job(write.overlay(live), &write.name, observer)
            .await?;
        Ok(job_from_api(updated))
    }

    /// Writes the job back (its etag makes the write fail if it changed since it was read) and
    /// waits for the operation.
    async fn patch_job(
        &self,
        job: gm::Job,
        name: &str,
        observer: &dyn OperationObserver,
    ) -> Result<gm::Job, ApiError> {
        retrying(self.backoff, observer, || {
            let poller = self.jobs.update_job().set_job(job.clone()).poller();
            wait_for("run.jobs.patch", name, poller, observer)
        })
        .await
    }

    /// Sets one label on a job (read-modify-write with its etag), e.g. to adopt it.
    pub async fn label_job(
        &self,
        name: &str,
        key: &str,
        value: &str,
        observer: &dyn OperationObserver,
    ) -> Result<JobRecord, ApiError> {
        let mut live = self.get_job_api(name, observer).await?;
        live.labels.insert(key.to_string(), value.to_string());
        let updated = self.patch_job(live, name, observer).await?;
        Ok(job_from_api(updated))
    }

    /// Points the job's container at `image` (read-modify-write with the job's etag) and waits
    /// for the update; `None` when the job does not exist. Jobs have no traffic or revisions: the
    /// next execution runs the new image.
    pub async fn set_job_image(
        &self,
        name: &str,
        image: &str,
        observer: &dyn OperationObserver,
    ) -> Result<Option<JobRecord>, ApiError> {
        let Some(mut live) = self.get_job_api(name, observer).await.not_found_as_none()? else {
            return Ok(None);
        };
        let mut execution = live.template.take().unwrap_or_default();
        let mut task = execution.template.take().unwrap_or_default();
        first_container_mut(&mut task.containers).image = image.to_string();
        execution.template = Some(task);
        live.template = Some(execution);
        let updated = self.patch_job(live, name, observer).await?;
        Ok(Some(job_from_api(updated)))
    }

    pub async fn get_job(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<Option<JobRecord>, ApiError> {
        self.get_job_api(name, observer)
            .await
            .map(job_from_api)
            .not_found_as_none()
    }

    pub async fn delete_job(
        &self,
        name: &str,
        observer: &dyn OperationObserver,
    ) -> Result<(), ApiError> {
        let deleted = retrying(self.backoff, observer, || {
            let poller = self.jobs.delete_job().set_name(name).poller();
            wait_for("run.jobs.delete", name, poller, observer)
        })
        .await;
        deleted.not_found_as_done()
    }
}
