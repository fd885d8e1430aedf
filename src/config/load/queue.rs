//! `[queue.NAME]`: a Cloud Tasks queue's keys, defaults and checks.

use super::*;

pub(super) const QUEUE_KEYS: &[&str] = &[
    "enqueuers",
    "id",
    "max_attempts",
    "max_backoff",
    "max_concurrent_dispatches",
    "max_dispatches_per_second",
    "max_doublings",
    "max_retry_duration",
    "min_backoff",
    "oidc_service_account",
    "path",
    "target",
];

pub(super) const DEFAULT_MAX_ATTEMPTS: i32 = 5;

pub(super) const DEFAULT_MIN_BACKOFF: Duration = Duration::from_secs(1);

pub(super) const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Cloud Tasks' ceiling for `max_concurrent_dispatches`, also the cap of its derived default.
pub(super) const MAX_CONCURRENT_DISPATCHES: u32 = 5000;

pub(super) fn read_queue(
    checker: &mut Checker,
    table: &TableRef,
    services: &BTreeMap<String, Option<Parsed<ServiceConfig>>>,
    declared: &Declared,
) -> Option<Parsed<QueueConfig>> {
    checker.check_keys(table, QUEUE_KEYS);
    let id = read_id(checker, table);
    if let Some(id) = &id
        && !is_queue_id(&id.value)
    {
        id_error(
            checker,
            table,
            id,
            Kind::Queue,
            "queue ids are 1 to 100 letters, digits and `-`",
        );
    }
    let target = read_target(checker, table, services);
    let path = checker.read_string(table, "path").optional();
    if let Some(Some(Field {
        value,
        span: Some(span),
    })) = &path
    {
        if !value.starts_with('/') {
            checker.error(
                span.clone(),
                format!(
                    "`path` in {} must start with `/`, found `{value}`",
                    table.title
                ),
                Some(format!(
                    "write path = \"/{}\"",
                    value.trim_start_matches('/')
                )),
            );
        }
        if matches!(target, Some(None)) {
            checker.error(
                span.clone(),
                format!("`path` in {} needs a `target`", table.title),
                Some(
                    "add target = \"service.NAME\" (the service the path is on), or remove path"
                        .into(),
                ),
            );
        }
    }
    let max_dispatches_per_second = checker
        .read_number(table, "max_dispatches_per_second")
        .optional();
    if let Some(Some(Field {
        value,
        span: Some(span),
    })) = &max_dispatches_per_second
        && !(*value > 0.0 && *value <= 500.0)
    {
        checker.error(
            span.clone(),
            format!(
                "`max_dispatches_per_second` in {} must be above 0 and at most 500, found {value}",
                table.title
            ),
            Some("Cloud Tasks allows up to 500 dispatches per second per queue".into()),
        );
    }
    let max_concurrent_dispatches = checker
        .read_integer(
            table,
            "max_concurrent_dispatches",
            1..=i64::from(MAX_CONCURRENT_DISPATCHES),
            "Cloud Tasks allows 1 to 5000 concurrent dispatches",
        )
        .optional();
    let max_attempts = checker
        .read_integer(
            table,
            "max_attempts",
            -1..=i64::from(i32::MAX),
            "-1 means unlimited attempts",
        )
        .or_default(i64::from(DEFAULT_MAX_ATTEMPTS));
    let min_backoff = checker
        .read_duration(table, "min_backoff", Duration::ZERO..=Duration::MAX)
        .or_default(DEFAULT_MIN_BACKOFF);
    let max_backoff = checker
        .read_duration(table, "max_backoff", Duration::ZERO..=Duration::MAX)
        .or_default(DEFAULT_MAX_BACKOFF);
    if let (Some(min), Some(max)) = (&min_backoff, &max_backoff)
        && min.value > max.value
    {
        let span = min
            .span
            .clone()
            .or_else(|| max.span.clone())
            .unwrap_or_else(|| table.span.clone());
        checker.error(
            span,
            format!(
                "`min_backoff` ({}) is above `max_backoff` ({}) in {}",
                units::format_duration(min.value),
                units::format_duration(max.value),
                table.title
            ),
            Some("lower min_backoff or raise max_backoff".into()),
        );
    }
    let max_doublings = checker
        .read_integer(table, "max_doublings", 0..=i64::from(i32::MAX), "")
        .optional();
    let max_retry_duration = checker
        .read_duration(table, "max_retry_duration", Duration::ZERO..=Duration::MAX)
        .optional();
    let oidc = checker.read_reference(
        table,
        "oidc_service_account",
        Kind::ServiceAccount,
        declared,
    );
    if let Some(Some(Field {
        span: Some(span), ..
    })) = &oidc
        && matches!(target, Some(None))
    {
        checker.error(
            span.clone(),
            format!("`oidc_service_account` in {} needs a `target`", table.title),
            Some("the OIDC token's audience is the target service's URL: add target = \"service.NAME\"".into()),
        );
    }
    let enqueuers = checker.read_reference_list(table, "enqueuers", Kind::ServiceAccount, declared);

    let target = target?;
    let max_concurrent_dispatches = match max_concurrent_dispatches? {
        Some(field) => Some(u32::try_from(field.value).ok()?),
        None => match &target {
            Some(addr) => {
                let service = services.get(&addr.name)?.as_ref()?;
                let product = service
                    .config
                    .max_instances
                    .saturating_mul(service.config.concurrency);
                Some(product.min(MAX_CONCURRENT_DISPATCHES))
            }
            None => None,
        },
    };
    let id = id?;
    let id_span = id.span.unwrap_or_else(|| table.name_span.clone());
    let config = QueueConfig {
        id: id.value,
        target,
        path: path?.map(|field| field.value),
        max_dispatches_per_second: max_dispatches_per_second?.map(|field| field.value),
        max_concurrent_dispatches,
        max_attempts: i32::try_from(max_attempts?.value).ok()?,
        min_backoff: min_backoff?.value,
        max_backoff: max_backoff?.value,
        max_doublings: max_doublings?
            .map(|field| u32::try_from(field.value))
            .transpose()
            .ok()?,
        max_retry_duration: max_retry_duration?.map(|field| field.value),
        oidc_service_account: oidc?.map(|field| field.value),
        enqueuers: enqueuers?,
    };
    Some(Parsed { config, id_span })
}

/// `target = "service.NAME"`: must name a declared service. `Some(None)` when absent.
pub(super) fn read_target(
    checker: &mut Checker,
    table: &TableRef,
    services: &BTreeMap<String, Option<Parsed<ServiceConfig>>>,
) -> Option<Option<ResourceAddr>> {
    let Some(Field { value, span }) = checker.read_string(table, "target").optional()? else {
        return Some(None);
    };
    let span = span.unwrap_or_else(|| table.span.clone());
    let declared = if services.is_empty() {
        "no services are declared; add a [service.NAME] table".to_string()
    } else {
        format!(
            "declared services: {}",
            services.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    };
    let addr = match value.parse::<ResourceAddr>() {
        Ok(addr) if addr.kind == Kind::Service => addr,
        Ok(addr) => {
            checker.error(
                span,
                format!(
                    "`target` in {} must be a service, found `{addr}`",
                    table.title
                ),
                Some(format!("write target = \"service.NAME\"; {declared}")),
            );
            return None;
        }
        Err(_)
            if value
                .split_once('.')
                .is_some_and(|(kind, _)| !kind.is_empty()) =>
        {
            checker.error(
                span,
                format!(
                    "`target` in {} must be a service, found `{value}`",
                    table.title
                ),
                Some(format!("write target = \"service.NAME\"; {declared}")),
            );
            return None;
        }
        Err(_) => {
            let help = if services.contains_key(&value) {
                format!("write target = \"service.{value}\"")
            } else {
                format!("write target = \"service.NAME\"; {declared}")
            };
            checker.error(
                span,
                format!(
                    "`target` in {} is not a reference: expected \"service.NAME\", found `{value}`",
                    table.title
                ),
                Some(help),
            );
            return None;
        }
    };
    if !services.contains_key(&addr.name) {
        let help = match closest(&addr.name, services.keys().map(String::as_str)) {
            Some(suggestion) => format!("did you mean \"service.{suggestion}\"? {declared}"),
            None => declared,
        };
        let file = checker.file_name();
        checker.error(
            span,
            format!("no [service.{}] in {file}", addr.name),
            Some(help),
        );
        return None;
    }
    Some(Some(addr))
}
