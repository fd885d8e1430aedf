//! `[service.NAME]`: a Cloud Run service's keys, defaults and checks.

use super::*;

pub(super) const SERVICE_KEYS: &[&str] = &[
    "build",
    "concurrency",
    "cpu",
    "cpu_idle",
    "env",
    "id",
    "image",
    "ingress",
    "invokers",
    "labels",
    "liveness_probe",
    "max_instances",
    "memory",
    "min_instances",
    "public",
    "secrets",
    "service_account",
    "service_urls",
    "startup_probe",
    "timeout",
];

const PROBE_KEYS: &[&str] = &[
    "failure_threshold",
    "initial_delay",
    "path",
    "period",
    "timeout",
];

pub(super) const DEFAULT_MIN_INSTANCES: u32 = 0;

pub(super) const DEFAULT_CONCURRENCY: u32 = 80;

pub(super) const DEFAULT_CPU_MILLIS: u32 = 1000;

pub(super) const DEFAULT_MEMORY_BYTES: u64 = 512 << 20;

pub(super) const DEFAULT_CPU_IDLE: bool = true;

pub(super) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Environment variables Cloud Run sets itself and rejects in a service spec.
pub(super) const RESERVED_ENV: [&str; 4] = ["PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"];

/// `has_image_repository`: whether `[stack]` names an `image_repository` (`None` when `[stack]`
/// itself is invalid, so no second error is piled on).
pub(super) fn read_service(
    checker: &mut Checker,
    table: &TableRef,
    has_image_repository: Option<bool>,
    declared: &Declared,
) -> Option<Parsed<ServiceConfig>> {
    checker.check_keys(table, SERVICE_KEYS);
    let id = read_id(checker, table);
    if let Some(id) = &id
        && !is_service_id(&id.value)
    {
        let help = "service ids are 1 to 49 lowercase letters, digits and `-`, start with a letter and end with a letter or digit";
        id_error(checker, table, id, Kind::Service, help);
    }
    let image = read_image_source(checker, table, has_image_repository);
    let min_instances = checker
        .read_integer(
            table,
            "min_instances",
            0..=1000,
            "Cloud Run allows 0 to 1000 instances",
        )
        .or_default(i64::from(DEFAULT_MIN_INSTANCES));
    let max_instances = checker
        .read_integer(
            table,
            "max_instances",
            1..=1000,
            "Cloud Run allows 1 to 1000 instances",
        )
        .required(
            checker,
            table,
            "max_instances",
            "add max_instances = 10 (a hard cap on instances; required)".into(),
        );
    if let (Some(min), Some(max)) = (&min_instances, &max_instances)
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
                "`min_instances` ({}) is above `max_instances` ({}) in {}",
                min.value, max.value, table.title
            ),
            Some("lower min_instances or raise max_instances".into()),
        );
    }
    let concurrency = checker
        .read_integer(
            table,
            "concurrency",
            1..=1000,
            "Cloud Run allows 1 to 1000 concurrent requests per instance",
        )
        .or_default(i64::from(DEFAULT_CONCURRENCY));
    let cpu = checker
        .read_cpu(table, "cpu")
        .or_default(DEFAULT_CPU_MILLIS);
    if let Some(Field {
        value: millis,
        span: Some(span),
    }) = &cpu
    {
        check_cpu(checker, table, *millis, span, concurrency.as_ref());
    }
    let memory = checker
        .read_memory(table, "memory", (128 << 20)..=(32 << 30))
        .or_default(DEFAULT_MEMORY_BYTES);
    let cpu_idle = checker
        .read_bool(table, "cpu_idle")
        .or_default(DEFAULT_CPU_IDLE);
    let timeout = checker
        .read_duration(
            table,
            "timeout",
            Duration::from_secs(1)..=Duration::from_secs(3600),
        )
        .or_default(DEFAULT_TIMEOUT);
    let ingress = read_ingress(checker, table);
    let public = checker.read_bool(table, "public").or_default(false);
    let startup_probe = read_probe(checker, table, "startup_probe", 240);
    let liveness_probe = read_probe(checker, table, "liveness_probe", 3600);
    let env = read_env(checker, table);
    let secrets = read_secret_env(checker, table, declared, env.as_ref());
    let service_urls = read_service_urls(checker, table, declared, env.as_ref(), secrets.as_ref());
    let account = checker.read_reference(table, "service_account", Kind::ServiceAccount, declared);
    needs_account(checker, table, account.as_ref(), secrets.as_ref(), None);
    let invokers = checker.read_reference_list(table, "invokers", Kind::ServiceAccount, declared);
    let labels = read_labels(checker, table);

    let id = id?;
    let id_span = id.span.unwrap_or_else(|| table.name_span.clone());
    let config = ServiceConfig {
        id: id.value,
        image: image?,
        min_instances: u32::try_from(min_instances?.value).ok()?,
        max_instances: u32::try_from(max_instances?.value).ok()?,
        concurrency: u32::try_from(concurrency?.value).ok()?,
        cpu_millis: cpu?.value,
        memory_bytes: memory?.value,
        cpu_idle: cpu_idle?.value,
        timeout: timeout?.value,
        ingress: ingress?,
        public: public?.value,
        startup_probe: startup_probe?,
        liveness_probe: liveness_probe?,
        env: env?,
        labels: labels?,
        service_account: account?.map(|f| f.value),
        invokers: invokers?,
        secrets: secrets?.into_iter().map(|(k, (a, _))| (k, a)).collect(),
        service_urls: service_urls?
            .into_iter()
            .map(|(k, (a, _))| (k, a))
            .collect(),
    };
    Some(Parsed { config, id_span })
}

/// `startup_probe = { path = "/healthz", period = "10s", timeout = "1s", failure_threshold = 3,
/// initial_delay = "0s" }`: an HTTP GET on the serving port, with Cloud Run's defaults for what is
/// left out; `max_period_seconds` is 240 for startup probes and 3600 for liveness probes.
fn read_probe(
    checker: &mut Checker,
    table: &TableRef,
    key: &str,
    max_period_seconds: u64,
) -> Option<Option<crate::model::live::run::HttpProbe>> {
    let Some(value) = table.get(key) else {
        return Some(None);
    };
    let example = format!(
        "write {key} = {{ path = \"/healthz\" }} (optionally period, timeout, failure_threshold, initial_delay)"
    );
    let DeValue::Table(inner) = value.get_ref() else {
        let p = type_problem(key, &table.title, "a table", value.get_ref(), Some(example));
        checker.error(value.span(), p.message, p.help);
        return None;
    };
    let sub = TableRef {
        kind: table.kind,
        title: format!("`{key}` of {}", table.title),
        name: table.name.clone(),
        name_span: table.name_span.clone(),
        span: value.span(),
        table: inner,
    };
    checker.check_keys(&sub, PROBE_KEYS);
    let path = checker
        .read_string(&sub, "path")
        .required(checker, &sub, "path", example);
    if let Some(Field {
        value: path,
        span: Some(span),
    }) = &path
        && !path.starts_with('/')
    {
        checker.error(
            span.clone(),
            format!("probe path `{path}` in {} must start with `/`", sub.title),
            Some("write path = \"/healthz\"".into()),
        );
    }
    let seconds = Duration::from_secs;
    let period = checker
        .read_duration(&sub, "period", seconds(1)..=seconds(max_period_seconds))
        .or_default(seconds(10));
    let timeout = checker
        .read_duration(&sub, "timeout", seconds(1)..=seconds(max_period_seconds))
        .or_default(seconds(1));
    let delay = checker
        .read_duration(&sub, "initial_delay", seconds(0)..=seconds(240))
        .or_default(seconds(0));
    let failures = checker
        .read_integer(
            &sub,
            "failure_threshold",
            1..=i64::from(i32::MAX),
            "a count, e.g. 3",
        )
        .or_default(3);
    let (period, timeout) = (period?, timeout?);
    if timeout.value > period.value {
        checker.error(
            timeout.span.clone().unwrap_or_else(|| sub.span.clone()),
            format!(
                "the probe timeout in {} is longer than its period",
                sub.title
            ),
            Some("Cloud Run requires timeout <= period: shorten timeout or lengthen period".into()),
        );
        return None;
    }
    let secs = |d: Duration| i32::try_from(d.as_secs()).unwrap_or(i32::MAX);
    Some(Some(crate::model::live::run::HttpProbe {
        path: path?.value,
        initial_delay_seconds: secs(delay?.value),
        period_seconds: secs(period.value),
        timeout_seconds: secs(timeout.value),
        failure_threshold: i32::try_from(failures?.value).unwrap_or(i32::MAX),
    }))
}

/// Exactly one of `image = "..."` (apply manages the image) or `build = "DIR"` (a cargo
/// package that `stackctl deploy` builds, pushes and rolls out); services and jobs alike.
pub(super) fn read_image_source(
    checker: &mut Checker,
    table: &TableRef,
    has_image_repository: Option<bool>,
) -> Option<ImageSource> {
    let image = checker.read_string(table, "image").optional()?;
    let build = checker.read_string(table, "build").optional()?;
    match (image, build) {
        (Some(_), Some(build)) => {
            checker.error(
                build.span.unwrap_or_else(|| table.span.clone()),
                format!("{} has both `image` and `build`", table.title),
                Some("keep `build` to let `stackctl deploy` build and roll out the image, or `image` to run a prebuilt one; not both".into()),
            );
            None
        }
        (None, None) => {
            checker.error(
                table.span.clone(),
                format!("{} has no `image` or `build`", table.title),
                Some("add image = \"REGION-docker.pkg.dev/PROJECT/REPO/IMAGE@sha256:...\", or build = \"path/to/cargo/package\" for `stackctl deploy`".into()),
            );
            None
        }
        (Some(Field { value, span }), None) => {
            if value.trim().is_empty() {
                checker.error(
                    span.unwrap_or_else(|| table.span.clone()),
                    format!("`image` in {} is empty", table.title),
                    None,
                );
                return None;
            }
            Some(ImageSource::Image(value))
        }
        (None, Some(Field { value, span })) => {
            let span = span.unwrap_or_else(|| table.span.clone());
            if !is_build_path(&value) {
                checker.error(
                    span,
                    format!("`build` in {} must be a relative path, found {value:?}", table.title),
                    Some("write the cargo package's directory relative to the stack file, e.g. build = \"workers/task-worker\"".into()),
                );
                return None;
            }
            if has_image_repository == Some(false) {
                checker.error(
                    span,
                    format!("{} has `build` but [stack] has no `image_repository`", table.title),
                    Some("add image_repository = \"workers\" to [stack]: the Artifact Registry repository `stackctl deploy` pushes to".into()),
                );
                return None;
            }
            if let Err(Refused { message, help }) =
                existing_dir(base_dir(checker.file), &value, "build")
            {
                checker.error(span, message, Some(help));
                return None;
            }
            Some(ImageSource::Build(value))
        }
    }
}

/// `secrets = { ENV = "secret.NAME" }`: env vars backed by Secret Manager (latest version);
/// a name may not also be a plain `env` var nor one Cloud Run reserves.
pub(super) fn read_secret_env(
    checker: &mut Checker,
    table: &TableRef,
    declared: &Declared,
    env: Option<&BTreeMap<String, String>>,
) -> Option<BTreeMap<String, (ResourceAddr, Span)>> {
    let secrets = checker.read_reference_map(table, "secrets", Kind::Secret, declared)?;
    let taken = [("env", env.map(|e| e.keys().collect::<Vec<_>>()))];
    check_env_names(checker, table, "secrets", &secrets, &taken).then_some(secrets)
}

/// `service_urls = { CRM_PROXY_URL = "service.crm-proxy" }`: env vars holding another declared
/// service's URL, so one service can call another without a URL written in stack.toml.
fn read_service_urls(
    checker: &mut Checker,
    table: &TableRef,
    declared: &Declared,
    env: Option<&BTreeMap<String, String>>,
    secrets: Option<&BTreeMap<String, (ResourceAddr, Span)>>,
) -> Option<BTreeMap<String, (ResourceAddr, Span)>> {
    let urls = checker.read_reference_map(table, "service_urls", Kind::Service, declared)?;
    let taken = [
        ("env", env.map(|e| e.keys().collect::<Vec<_>>())),
        ("secrets", secrets.map(|s| s.keys().collect::<Vec<_>>())),
    ];
    // A service naming itself is refused as a reference cycle, like any other.
    check_env_names(checker, table, "service_urls", &urls, &taken).then_some(urls)
}

/// Env var names a `key` map declares: not reserved by Cloud Run, and not already set by another
/// of the table's env keys (`taken`: key and its names).
fn check_env_names(
    checker: &mut Checker,
    table: &TableRef,
    key: &str,
    names: &BTreeMap<String, (ResourceAddr, Span)>,
    taken: &[(&str, Option<Vec<&String>>)],
) -> bool {
    let mut valid = true;
    for (name, (_, span)) in names {
        if RESERVED_ENV.contains(&name.as_str()) {
            valid = false;
            checker.error(
                span.clone(),
                format!("environment variable `{name}` is reserved by Cloud Run"),
                Some(format!(
                    "Cloud Run sets {} itself; remove it",
                    RESERVED_ENV.join(", ")
                )),
            );
        } else if let Some((other, _)) = taken
            .iter()
            .find(|(_, names)| names.as_ref().is_some_and(|n| n.contains(&name)))
        {
            valid = false;
            checker.error(
                span.clone(),
                format!(
                    "`{name}` in {} is both in `{other}` and in `{key}`",
                    table.title
                ),
                Some(format!(
                    "an environment variable has one value: keep it in {other} or in {key}"
                )),
            );
        }
    }
    valid
}

/// Secrets and BigQuery writes are granted to the resource's own identity, so they need one.
pub(super) fn needs_account(
    checker: &mut Checker,
    table: &TableRef,
    account: Option<&Option<Field<ResourceAddr>>>,
    secrets: Option<&BTreeMap<String, (ResourceAddr, Span)>>,
    writes: Option<&Vec<ResourceAddr>>,
) {
    if !matches!(account, Some(None)) {
        return;
    }
    if let Some((_, span)) = secrets.and_then(|s| s.values().next()) {
        checker.error(
            span.clone(),
            format!("`secrets` in {} needs a `service_account`", table.title),
            Some("add service_account = \"service_account.NAME\": stackctl grants it roles/secretmanager.secretAccessor on each secret".into()),
        );
    }
    if writes.is_some_and(|w| !w.is_empty())
        && let Some(written) = table.get("writes")
    {
        checker.error(
            written.span(),
            format!("`writes` in {} needs a `service_account`", table.title),
            Some("add service_account = \"service_account.NAME\": stackctl grants it roles/bigquery.dataEditor on each table and roles/bigquery.jobUser on the project".into()),
        );
    }
}

/// Cloud Run's CPU limits: 0.08 to 8 cores; below 1 core only with concurrency 1; above 1
/// core only whole values of 2, 4, 6 or 8.
pub(super) fn check_cpu(
    checker: &mut Checker,
    table: &TableRef,
    millis: u32,
    span: &Span,
    concurrency: Option<&Field<i64>>,
) {
    let title = &table.title;
    if !(80..=8000).contains(&millis) {
        checker.error(
            span.clone(),
            format!(
                "`cpu` in {title} must be between 80m and 8, found {}",
                units::format_cpu(millis)
            ),
            Some("Cloud Run allows 0.08 to 8 cpus".into()),
        );
    } else if millis < 1000 {
        if let Some(concurrency) = concurrency
            && concurrency.value != 1
        {
            checker.error(
                span.clone(),
                format!(
                    "`cpu` below 1 in {title} requires concurrency = 1 (found concurrency {})",
                    concurrency.value
                ),
                Some("Cloud Run serves one request at a time on less than 1 cpu: set concurrency = 1 or cpu = \"1\"".into()),
            );
        }
    } else if millis > 1000 && ![2000, 4000, 6000, 8000].contains(&millis) {
        checker.error(
            span.clone(),
            format!(
                "`cpu` in {title} must be 1, 2, 4, 6 or 8 above one cpu, found {}",
                units::format_cpu(millis)
            ),
            Some("Cloud Run allows fractional cpu only below 1".into()),
        );
    }
}

pub(super) fn read_ingress(checker: &mut Checker, table: &TableRef) -> Option<Option<Ingress>> {
    let field = checker.read_string(table, "ingress").optional()?;
    let Some(Field { value, span }) = field else {
        return Some(None);
    };
    let ingress = match value.as_str() {
        "all" => Ingress::All,
        "internal" => Ingress::Internal,
        "internal-and-cloud-load-balancing" => Ingress::InternalAndCloudLoadBalancing,
        other => {
            let choices = ["all", "internal", "internal-and-cloud-load-balancing"];
            let help = match closest(other, choices.iter().copied()) {
                Some(suggestion) => format!("did you mean \"{suggestion}\"?"),
                None => "use \"all\", \"internal\" or \"internal-and-cloud-load-balancing\"".into(),
            };
            checker.error(
                span.unwrap_or_else(|| table.span.clone()),
                format!("unknown ingress `{other}` in {}", table.title),
                Some(help),
            );
            return None;
        }
    };
    Some(Some(ingress))
}

pub(super) fn read_env(
    checker: &mut Checker,
    table: &TableRef,
) -> Option<BTreeMap<String, String>> {
    let map = checker
        .read_string_map(table, "env")
        .or_default(StringMap::empty())?
        .value;
    let mut env = BTreeMap::new();
    let mut valid = map.complete;
    for entry in map.entries {
        if RESERVED_ENV.contains(&entry.key.as_str()) {
            valid = false;
            checker.error(
                entry.key_span.clone(),
                format!(
                    "environment variable `{}` is reserved by Cloud Run",
                    entry.key
                ),
                Some(format!(
                    "Cloud Run sets {} itself; remove it",
                    RESERVED_ENV.join(", ")
                )),
            );
        } else if !is_env_name(&entry.key) {
            valid = false;
            checker.error(
                entry.key_span.clone(),
                format!("`{}` is not a valid environment variable name", entry.key),
                Some("use letters, digits and `_`, not starting with a digit".into()),
            );
        }
        env.insert(entry.key, entry.value);
    }
    valid.then_some(env)
}
