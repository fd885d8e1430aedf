//! `[schedule.NAME]`: a Cloud Scheduler job's keys, defaults and checks.

use super::*;

pub(super) const SCHEDULE_KEYS: &[&str] = &["cron", "id", "job", "service_account", "time_zone"];

pub(super) const DEFAULT_TIME_ZONE: &str = "Etc/UTC";

pub(super) fn read_schedule(
    checker: &mut Checker,
    table: &TableRef,
    declared: &Declared,
) -> Option<Parsed<ScheduleConfig>> {
    checker.check_keys(table, SCHEDULE_KEYS);
    let id = read_id(checker, table);
    if let Some(id) = &id
        && !is_schedule_id(&id.value)
    {
        id_error(
            checker,
            table,
            id,
            Kind::Schedule,
            "scheduler job ids are 1 to 500 letters, digits, `-` and `_`",
        );
    }
    let job = checker.read_reference(table, "job", Kind::Job, declared);
    let job = match job {
        Some(None) => {
            checker.error(
                table.span.clone(),
                format!("{} has no `job`", table.title),
                Some("add job = \"job.NAME\" (the Cloud Run job it runs)".into()),
            );
            None
        }
        other => other.flatten(),
    };
    let cron = checker.read_string(table, "cron").required(
        checker,
        table,
        "cron",
        "add cron = \"0 * * * *\" (unix cron: minute hour day-of-month month day-of-week)".into(),
    );
    if let Some(Field {
        value,
        span: Some(span),
    }) = &cron
        && let Err(why) = value.parse::<crate::config::cron::Cron>()
    {
        checker.error(
            span.clone(),
            format!("cron `{value}` in {}: {why}", table.title),
            Some("write five fields: minute hour day-of-month month day-of-week, e.g. \"0 * * * *\" (hourly)".into()),
        );
    }
    let time_zone = checker
        .read_string(table, "time_zone")
        .or_default(DEFAULT_TIME_ZONE.to_string());
    if let Some(Field {
        value,
        span: Some(span),
    }) = &time_zone
        && !is_time_zone(value)
    {
        checker.error(
            span.clone(),
            format!(
                "`{value}` in {} is not a time zone of the IANA database",
                table.title
            ),
            Some(
                match closest(value, chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())) {
                    Some(near) => format!("did you mean \"{near}\"?"),
                    None => {
                        "use an IANA time zone name like \"Etc/UTC\" or \"America/Toronto\"".into()
                    }
                },
            ),
        );
    }
    let account = checker.read_reference(table, "service_account", Kind::ServiceAccount, declared);
    let account = match account {
        Some(None) => {
            checker.error(
                table.span.clone(),
                format!("{} has no `service_account`", table.title),
                Some("add service_account = \"service_account.NAME\": the identity that calls the job's :run (it gets roles/run.invoker on the job)".into()),
            );
            None
        }
        other => other.flatten(),
    };
    let id = id?;
    let id_span = id.span.unwrap_or_else(|| table.name_span.clone());
    let config = ScheduleConfig {
        id: id.value,
        job: job?.value,
        cron: cron?.value,
        time_zone: time_zone?.value,
        service_account: account?.value,
    };
    Some(Parsed { config, id_span })
}
