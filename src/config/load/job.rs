//! `[job.NAME]`: a Cloud Run job's keys, defaults and checks.

use super::*;

pub(super) const JOB_KEYS: &[&str] = &[
    "cpu",
    "env",
    "build",
    "id",
    "image",
    "labels",
    "max_retries",
    "memory",
    "parallelism",
    "secrets",
    "service_account",
    "task_count",
    "task_timeout",
    "writes",
];

pub(super) const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(600);

pub(super) const DEFAULT_MAX_RETRIES: u32 = 3;

pub(super) const DEFAULT_TASK_COUNT: u32 = 1;

/// `has_image_repository`: whether `[stack]` names an `image_repository` (as for services).
pub(super) fn read_job(
    checker: &mut Checker,
    table: &TableRef,
    has_image_repository: Option<bool>,
    declared: &Declared,
) -> Option<Parsed<JobConfig>> {
    checker.check_keys(table, JOB_KEYS);
    let id = read_id(checker, table);
    if let Some(id) = &id
        && !is_job_id(&id.value)
    {
        let help = "job ids are 1 to 63 lowercase letters, digits and `-`, start with a letter and end with a letter or digit";
        id_error(checker, table, id, Kind::Job, help);
    }
    let image = read_image_source(checker, table, has_image_repository);
    let cpu = checker
        .read_cpu(table, "cpu")
        .or_default(DEFAULT_CPU_MILLIS);
    if let Some(Field {
        value: millis,
        span: Some(span),
    }) = &cpu
    {
        check_cpu(checker, table, *millis, span, None);
    }
    let memory = checker
        .read_memory(table, "memory", (128 << 20)..=(32 << 30))
        .or_default(DEFAULT_MEMORY_BYTES);
    let task_timeout = checker
        .read_duration(
            table,
            "task_timeout",
            Duration::from_secs(1)..=Duration::from_secs(168 * 3600),
        )
        .or_default(DEFAULT_TASK_TIMEOUT);
    let max_retries = checker
        .read_integer(
            table,
            "max_retries",
            0..=10,
            "Cloud Run allows 0 to 10 retries per task",
        )
        .or_default(i64::from(DEFAULT_MAX_RETRIES));
    let parallelism = checker
        .read_integer(table, "parallelism", 1..=10_000, "")
        .optional();
    let task_count = checker
        .read_integer(
            table,
            "task_count",
            1..=10_000,
            "Cloud Run allows 1 to 10000 tasks",
        )
        .or_default(i64::from(DEFAULT_TASK_COUNT));
    let env = read_env(checker, table);
    let secrets = read_secret_env(checker, table, declared, env.as_ref());
    let account = checker.read_reference(table, "service_account", Kind::ServiceAccount, declared);
    // The BigQuery tables it writes: it gets `roles/bigquery.dataEditor` on each table and
    // `roles/bigquery.jobUser` on the project.
    let writes = checker.read_reference_list(table, "writes", Kind::Table, declared);
    needs_account(
        checker,
        table,
        account.as_ref(),
        secrets.as_ref(),
        writes.as_ref(),
    );
    let labels = read_labels(checker, table);

    let id = id?;
    let id_span = id.span.unwrap_or_else(|| table.name_span.clone());
    let config = JobConfig {
        id: id.value,
        image: image?,
        cpu_millis: cpu?.value,
        memory_bytes: memory?.value,
        task_timeout: task_timeout?.value,
        max_retries: u32::try_from(max_retries?.value).ok()?,
        parallelism: parallelism?
            .map(|f| u32::try_from(f.value))
            .transpose()
            .ok()?,
        task_count: u32::try_from(task_count?.value).ok()?,
        env: env?,
        secrets: secrets?.into_iter().map(|(k, (a, _))| (k, a)).collect(),
        service_account: account?.map(|f| f.value),
        writes: writes?.into_iter().map(|address| address.name).collect(),
        labels: labels?,
    };
    Some(Parsed { config, id_span })
}
