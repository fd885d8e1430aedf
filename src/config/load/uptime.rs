//! `[uptime.NAME]`: a Monitoring uptime check's keys (`url`, `period`, `timeout`, `regions`,
//! `expect_status`), defaults and checks.

use super::*;
use crate::config::UptimeConfig;

pub(super) const UPTIME_KEYS: &[&str] = &[
    "display_name",
    "expect_status",
    "path",
    "period",
    "regions",
    "target",
    "timeout",
    "url",
];

/// The periods Cloud Monitoring accepts for uptime checks.
const PERIODS: [u64; 4] = [60, 300, 600, 900];

/// `UptimeCheckRegion` values; Google needs at least three when any are listed.
const REGIONS: &[&str] = &["ASIA_PACIFIC", "EUROPE", "SOUTH_AMERICA", "USA"];

const STATUS_CLASSES: &[&str] = &["2xx", "3xx", "4xx", "5xx", "any"];

/// `https://host[:port]/path?query` -> (host, path); `None` unless it is an https URL with a host.
pub(crate) fn split_https_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("https://")?;
    let (host, path) = match rest.find(['/', '?']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    let plain_host = !host.is_empty()
        && !host.contains(['@', ':', ' '])
        && host.contains('.')
        && !host.starts_with('.')
        && !host.ends_with('.');
    plain_host.then(|| (host.to_string(), path))
}

pub(super) fn read_uptime(
    checker: &mut Checker,
    table: &TableRef,
    declared: &Declared,
) -> Option<UptimeConfig> {
    checker.check_keys(table, UPTIME_KEYS);
    let name_ok = check_label_name(checker, table);
    let display_name = checker
        .read_string(table, "display_name")
        .or_default(table.name.clone());
    let target = checker
        .read_reference(table, "target", Kind::Service, declared)?
        .map(|f| f.value);
    let target_path = checker.read_string(table, "path").optional()?;
    let url = match &target {
        // A declared service's own URL: its host is known once it exists.
        Some(service) => {
            if let Some(url) = table.get("url") {
                checker.error(
                    url.span(),
                    format!("{} has both `url` and `target`", table.title),
                    Some(format!(
                        "keep target = \"{service}\" (with path = \"/healthz\") or a literal url, not both"
                    )),
                );
                return None;
            }
            let path = target_path.map_or("/".to_string(), |p| p.value);
            if !path.starts_with('/') {
                checker.error(
                    table.span.clone(),
                    format!("`path` in {} must start with `/`", table.title),
                    Some("write path = \"/healthz\"".into()),
                );
                return None;
            }
            Some(Field {
                value: format!("https://{}.service.invalid{path}", service.name),
                span: None,
            })
        }
        None => {
            if let Some(path) = target_path {
                checker.error(
                    path.span.unwrap_or_else(|| table.span.clone()),
                    format!("`path` in {} goes with `target`", table.title),
                    Some("put the path in url = \"https://HOST/PATH\"".into()),
                );
                return None;
            }
            checker.read_string(table, "url").required(
                checker,
                table,
                "url",
                "add url = \"https://HOST/PATH\" (the public HTTPS URL to check), or target = \"service.NAME\" with path = \"/healthz\"".into(),
            )
        }
    };
    let period = checker
        .read_duration(
            table,
            "period",
            Duration::from_secs(60)..=Duration::from_secs(900),
        )
        .or_default(Duration::from_secs(300));
    let timeout = checker
        .read_duration(
            table,
            "timeout",
            Duration::from_secs(1)..=Duration::from_secs(60),
        )
        .or_default(Duration::from_secs(10));
    let regions = checker
        .read_plain_string_list(table, "regions")
        .or_default(Vec::new());
    let expect_status = checker
        .read_string(table, "expect_status")
        .or_default("2xx".into());
    let (display_name, url, period, timeout, regions, expect_status) = (
        display_name?,
        url?,
        period?,
        timeout?,
        regions?,
        expect_status?,
    );
    let mut ok = name_ok;
    let at = |field: &Option<Span>| field.clone().unwrap_or_else(|| table.span.clone());
    let split = split_https_url(&url.value);
    if split.is_none() {
        ok = false;
        checker.error(
            at(&url.span),
            format!("`{}` in {} is not an https URL with a host name", url.value, table.title),
            Some("write url = \"https://relay.example.com/healthz\" (uptime checks of stackctl use HTTPS on port 443)".into()),
        );
    }
    if !PERIODS.contains(&period.value.as_secs()) || period.value.subsec_nanos() != 0 {
        ok = false;
        checker.error(
            at(&period.span),
            format!(
                "`period` in {} must be 60s, 300s, 600s or 900s",
                table.title
            ),
            Some("write period = \"300s\" (the periods Cloud Monitoring offers)".into()),
        );
    }
    if timeout.value > period.value {
        ok = false;
        checker.error(
            at(&timeout.span),
            format!("`timeout` in {} is longer than its `period`", table.title),
            Some("lower timeout (default 10s)".into()),
        );
    }
    for region in &regions.value {
        if !REGIONS.contains(&region.as_str()) {
            ok = false;
            let help = match closest(region, REGIONS.iter().copied()) {
                Some(s) => format!("did you mean \"{s}\"?"),
                None => format!("regions: {}", REGIONS.join(", ")),
            };
            checker.error(
                at(&regions.span),
                format!(
                    "`{region}` in {} is not an uptime check region",
                    table.title
                ),
                Some(help),
            );
        }
    }
    if !regions.value.is_empty() && regions.value.len() < 3 {
        ok = false;
        checker.error(
            at(&regions.span),
            format!(
                "`regions` in {} lists fewer than three regions",
                table.title
            ),
            Some(format!(
                "list at least three of {}, or remove `regions` to check from all",
                REGIONS.join(", ")
            )),
        );
    }
    if !STATUS_CLASSES.contains(&expect_status.value.as_str()) {
        ok = false;
        checker.error(
            at(&expect_status.span),
            format!(
                "`expect_status` in {} is not one of {}",
                table.title,
                STATUS_CLASSES.join(", ")
            ),
            Some("write expect_status = \"2xx\"".into()),
        );
    }
    let (host, path) = split?;
    // With a target the host is the service's, known at apply.
    let host = if target.is_some() {
        String::new()
    } else {
        host
    };
    let mut regions = regions.value;
    regions.sort();
    regions.dedup();
    ok.then_some(UptimeConfig {
        display_name: display_name.value,
        host,
        target,
        path,
        period: period.value,
        timeout: timeout.value,
        regions,
        expect_status: expect_status.value,
    })
}

#[cfg(test)]
mod tests {
    use super::split_https_url;

    #[test]
    fn https_urls_split_into_host_and_path_and_others_are_refused() {
        assert_eq!(
            split_https_url("https://relay.example.com/healthz?x=1"),
            Some(("relay.example.com".into(), "/healthz?x=1".into()))
        );
        assert_eq!(
            split_https_url("https://relay.example.com"),
            Some(("relay.example.com".into(), "/".into()))
        );
        assert_eq!(split_https_url("http://relay.example.com/"), None);
        assert_eq!(split_https_url("https://relay.example.com:8443/"), None);
        assert_eq!(split_https_url("https:///x"), None);
    }
}
