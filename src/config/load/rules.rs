//! Naming rules of Google Cloud ids, labels and env vars, checked at validate time.

pub(crate) fn is_lower_or_digit(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// Cloud Run service id: `^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$`.
pub(super) fn is_service_id(id: &str) -> bool {
    let len = id.len();
    (1..=49).contains(&len)
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.ends_with(is_lower_or_digit)
        && id.chars().all(|c| is_lower_or_digit(c) || c == '-')
}

/// Artifact Registry repository id: `^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`.
pub(super) fn is_repository_id(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.ends_with(is_lower_or_digit)
        && id.chars().all(|c| is_lower_or_digit(c) || c == '-')
}

/// A `build` path: relative to the stack file (so every checkout builds the same), not empty.
pub(super) fn is_build_path(path: &str) -> bool {
    !path.trim().is_empty() && std::path::Path::new(path).is_relative()
}

/// Cloud Tasks queue id: `^[A-Za-z0-9-]{1,100}$`.
pub(super) fn is_queue_id(id: &str) -> bool {
    (1..=100).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// GCP label value: at most 63 of `[a-z0-9_-]` (may be empty).
pub(super) fn is_label_value(value: &str) -> bool {
    value.len() <= 63
        && value
            .chars()
            .all(|c| is_lower_or_digit(c) || c == '-' || c == '_')
}

/// GCP label key: a lowercase letter, then `[a-z0-9_-]`, at most 63.
pub(super) fn is_label_key(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_lowercase()) && is_label_value(key)
}

/// The stack name is the ownership label's value, and must start with a letter.
pub(crate) fn is_stack_name(name: &str) -> bool {
    is_label_key(name)
}

/// GCP project id: `^[a-z][-a-z0-9]{4,28}[a-z0-9]$`.
pub(crate) fn is_project_id(id: &str) -> bool {
    (6..=30).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.ends_with(is_lower_or_digit)
        && id.chars().all(|c| is_lower_or_digit(c) || c == '-')
}

/// GCP region like `us-central1`: `^[a-z]+-[a-z]+[0-9]+$`.
pub(crate) fn is_region(region: &str) -> bool {
    let Some((area, rest)) = region.split_once('-') else {
        return false;
    };
    let digits_at = rest
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (place, number) = rest.split_at(digits_at);
    !area.is_empty()
        && area.chars().all(|c| c.is_ascii_lowercase())
        && !place.is_empty()
        && place.chars().all(|c| c.is_ascii_lowercase())
        && !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit())
}

/// Cloud Storage bucket name: 3 to 63 of `[a-z0-9-_.]`, starting and ending with a letter or
/// digit, no `..`, not an IP address (`1.2.3.4`), not starting with `goog` nor containing
/// `google`.
pub(super) fn is_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name.starts_with(is_lower_or_digit)
        && name.ends_with(is_lower_or_digit)
        && name
            .chars()
            .all(|c| is_lower_or_digit(c) || matches!(c, '-' | '_' | '.'))
        && !name.contains("..")
        && name.parse::<std::net::Ipv4Addr>().is_err()
        && !name.starts_with("goog")
        && !name.contains("google")
}

/// A BigQuery location: the multi-regions `US` and `EU`, or a region like `us-central1`.
pub(super) fn is_bigquery_location(location: &str) -> bool {
    matches!(location, "US" | "EU") || is_region(location)
}

/// Environment variable name: `^[A-Za-z_][A-Za-z0-9_]*$`.
pub(super) fn is_env_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Billing account id: three groups of six uppercase hex digits, `012345-6789AB-CDEF01`.
pub(crate) fn is_billing_account(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.len() == 3
        && groups.iter().all(|g| {
            g.len() == 6
                && g.chars()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        })
}

/// IAM service account id: `^[a-z]([-a-z0-9]{4,28}[a-z0-9])$` (6 to 30).
pub(super) fn is_service_account_id(id: &str) -> bool {
    (6..=30).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.ends_with(is_lower_or_digit)
        && id.chars().all(|c| is_lower_or_digit(c) || c == '-')
}

/// Cloud Run job id: `^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`.
pub(super) fn is_job_id(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.ends_with(is_lower_or_digit)
        && id.chars().all(|c| is_lower_or_digit(c) || c == '-')
}

/// Secret Manager secret id: `^[A-Za-z0-9_-]{1,255}$`.
pub(super) fn is_secret_id(id: &str) -> bool {
    (1..=255).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Cloud Scheduler job id: `^[A-Za-z0-9_-]{1,500}$`.
pub(super) fn is_schedule_id(id: &str) -> bool {
    (1..=500).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// An IAM role: `roles/NAME`, `projects/P/roles/NAME` or `organizations/O/roles/NAME`.
pub(super) fn is_role(role: &str) -> bool {
    let name_ok = |name: &str| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
    };
    if let Some(name) = role.strip_prefix("roles/") {
        return name_ok(name);
    }
    ["projects/", "organizations/"].iter().any(|prefix| {
        role.strip_prefix(prefix)
            .and_then(|rest| rest.split_once("/roles/"))
            .is_some_and(|(owner, name)| !owner.is_empty() && !owner.contains('/') && name_ok(name))
    })
}

/// A name in the IANA time zone database (`Etc/UTC`, `America/Toronto`, `UTC`), as Cloud
/// Scheduler takes it.
pub(super) fn is_time_zone(zone: &str) -> bool {
    zone.parse::<chrono_tz::Tz>().is_ok()
}
