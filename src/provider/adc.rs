//! Where Application Default Credentials come from, and what to say when they do not work.
//!
//! Mirrors the lookup google-cloud-auth does (AIP-4110): `GOOGLE_APPLICATION_CREDENTIALS`, then
//! gcloud's well-known file, then the metadata server. google-cloud-auth's own errors for a
//! failed lookup ("Fetching the token resulted in transient errors...") name neither the source
//! nor the fix; [`explain`] does both.

use std::path::PathBuf;

/// The credential source ADC picks on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdcSource {
    /// The file `GOOGLE_APPLICATION_CREDENTIALS` names (its `type`, when readable).
    EnvFile { path: PathBuf, kind: Option<String> },
    /// gcloud's `application_default_credentials.json` (its `type`, when readable).
    WellKnownFile { path: PathBuf, kind: Option<String> },
    /// No file: the metadata server (`GCE_METADATA_HOST`, default `metadata.google.internal`).
    MetadataServer { host: String },
}

impl AdcSource {
    /// Finds the source as google-cloud-auth would, without fetching a token.
    pub fn detect() -> Self {
        if let Some(path) = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS") {
            let path = PathBuf::from(path);
            let kind = file_kind(&path);
            return Self::EnvFile { path, kind };
        }
        if let Some(path) = well_known_path()
            && path.exists()
        {
            let kind = file_kind(&path);
            return Self::WellKnownFile { path, kind };
        }
        Self::MetadataServer {
            host: std::env::var("GCE_METADATA_HOST")
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "metadata.google.internal".to_string()),
        }
    }

    /// The account the credentials act as, when the file says: a key's `client_email`, or the
    /// service account a federation file impersonates. User credentials and the metadata server
    /// do not say without a call.
    pub fn account(&self) -> Option<String> {
        let path = match self {
            Self::EnvFile { path, .. } | Self::WellKnownFile { path, .. } => path,
            Self::MetadataServer { .. } => return None,
        };
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
        if let Some(email) = json.get("client_email").and_then(|e| e.as_str()) {
            return Some(email.to_string());
        }
        // `.../serviceAccounts/EMAIL:generateAccessToken`
        let url = json.get("service_account_impersonation_url")?.as_str()?;
        let email = url.rsplit('/').next()?.split(':').next()?;
        Some(email.to_string())
    }

    /// One line for people: `gcloud user credentials (/home/me/.config/...)`.
    pub fn describe(&self) -> String {
        match self {
            Self::EnvFile { path, kind } => format!(
                "{} from GOOGLE_APPLICATION_CREDENTIALS ({})",
                kind_name(kind.as_deref()),
                path.display()
            ),
            Self::WellKnownFile { path, kind } => format!(
                "{} from gcloud's application-default file ({})",
                kind_name(kind.as_deref()),
                path.display()
            ),
            Self::MetadataServer { host } => format!("the metadata server at {host}"),
        }
    }
}

/// gcloud's well-known ADC file on Linux and macOS (`$HOME/.config/gcloud/...`).
pub fn well_known_path() -> Option<PathBuf> {
    if cfg!(target_os = "windows") {
        std::env::var_os("APPDATA")
            .map(|root| PathBuf::from(root).join("gcloud/application_default_credentials.json"))
    } else {
        std::env::var_os("HOME").map(|root| {
            PathBuf::from(root).join(".config/gcloud/application_default_credentials.json")
        })
    }
}

fn file_kind(path: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("type")?.as_str().map(str::to_string)
}

fn kind_name(kind: Option<&str>) -> &'static str {
    match kind {
        Some("authorized_user") => "gcloud user credentials",
        Some("service_account") => "a service-account key",
        Some("external_account") => "workload identity federation (external_account)",
        Some("impersonated_service_account") => "impersonated service-account credentials",
        _ => "a credentials file",
    }
}

/// The error message for credentials that could not give a token: the source, what went wrong,
/// and the ways forward. `detail` is google-cloud-auth's own text, kept last for the curious.
pub fn explain(source: &AdcSource, detail: &str) -> String {
    let local = "or run against the local emulator with --local (no Google account needed)";
    match source {
        AdcSource::MetadataServer { host } => {
            let well_known = well_known_path()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "~/.config/gcloud/application_default_credentials.json".into());
            format!(
                "no Application Default Credentials found: GOOGLE_APPLICATION_CREDENTIALS is not set, \
                 there is no {well_known}, and the metadata server ({host}) did not answer \
                 (this is not a Google Cloud VM or runner)\n  \
                 hint: run `gcloud auth application-default login`, {local}\n  \
                 (google-cloud-auth said: {detail})"
            )
        }
        AdcSource::EnvFile { path, kind } | AdcSource::WellKnownFile { path, kind } => {
            let from = source.describe();
            let fix = match kind.as_deref() {
                Some("authorized_user") => format!(
                    "the login may have expired or been revoked: run `gcloud auth application-default login`, {local}"
                ),
                Some("external_account") => format!(
                    "the token exchange failed: check the workload identity pool provider and the \
                     subject token source in {} (in GitHub Actions, `google-github-actions/auth` writes it), {local}",
                    path.display()
                ),
                Some("service_account") => format!(
                    "the key may have been deleted or disabled: create a new key, use \
                     `gcloud auth application-default login`, {local}"
                ),
                _ => format!(
                    "check that {} is a valid credentials file, run `gcloud auth application-default login`, {local}",
                    path.display()
                ),
            };
            format!(
                "the Application Default Credentials ({from}) could not give an access token\n  \
                 hint: {fix}\n  (google-cloud-auth said: {detail})"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_adc_names_both_ways_forward() {
        let text = explain(
            &AdcSource::MetadataServer {
                host: "metadata.google.internal".into(),
            },
            "transient",
        );
        assert!(text.contains("no Application Default Credentials found"));
        assert!(text.contains("gcloud auth application-default login"));
        assert!(text.contains("--local"));
        assert!(text.contains("metadata.google.internal"));
    }

    #[test]
    fn expired_user_login_says_log_in_again() {
        let source = AdcSource::WellKnownFile {
            path: "/h/.config/gcloud/application_default_credentials.json".into(),
            kind: Some("authorized_user".into()),
        };
        let text = explain(&source, "invalid_grant");
        assert!(text.contains("gcloud user credentials"));
        assert!(text.contains("expired"));
        assert!(text.contains("gcloud auth application-default login"));
    }

    #[test]
    fn federation_file_names_the_exchange() {
        let source = AdcSource::EnvFile {
            path: "/tmp/wif.json".into(),
            kind: Some("external_account".into()),
        };
        let text = explain(&source, "sts 400");
        assert!(text.contains("GOOGLE_APPLICATION_CREDENTIALS (/tmp/wif.json)"));
        assert!(text.contains("token exchange failed"));
    }
}
