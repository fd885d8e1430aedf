//! One worker calling another Cloud Run service: a Google ID token for the service's URL from the
//! metadata server (Cloud Run checks it against `run.invoker`), and, under `stackctl up --local`,
//! the local address that serves that URL (the local cloud has no DNS or TLS for `*.run.app`, so
//! the emulator says where each service URL is served).

use std::time::Duration;

use serde_json::Value;

use crate::cloud::{Cloud, env, metadata_host};

/// A request to another service, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// Where to send it: the URL itself, or its local front under `up --local`.
    pub url: String,
    /// `Bearer ID_TOKEN` for the URL's origin, when there is a metadata server to mint it.
    pub authorization: Option<String>,
}

/// Calls from this worker to other services.
#[derive(Debug, Clone)]
pub struct ServiceCalls {
    http: reqwest::Client,
    /// The local emulator (`STACKCTL_API_ENDPOINT`), which routes service URLs.
    emulator: Option<String>,
    /// The metadata server's host, or none (tests against the emulator without one).
    metadata: Option<String>,
}

/// `scheme://host` of a URL: the audience Cloud Run expects.
pub fn origin(url: &str) -> Option<&str> {
    let scheme_end = url.find("://")? + 3;
    let end = url[scheme_end..]
        .find(['/', '?'])
        .map_or(url.len(), |i| scheme_end + i);
    Some(&url[..end])
}

impl ServiceCalls {
    pub fn new(cloud: &Cloud, http: reqwest::Client) -> Self {
        let metadata = match (&cloud.api_endpoint, env("GCE_METADATA_HOST")) {
            (_, Some(host)) => Some(host),
            (None, None) => Some(metadata_host()),
            (Some(_), None) => None,
        };
        Self {
            http,
            emulator: cloud.api_endpoint.clone(),
            metadata,
        }
    }

    /// The token and address for calling `url`.
    pub async fn prepare(&self, url: &str) -> Result<Prepared, String> {
        let audience = origin(url).ok_or_else(|| format!("{url:?} is not a URL"))?;
        let authorization = match &self.metadata {
            None => None,
            Some(host) => Some(format!("Bearer {}", self.id_token(host, audience).await?)),
        };
        let url = match &self.emulator {
            None => url.to_string(),
            Some(emulator) => self.local_route(emulator, url).await?,
        };
        Ok(Prepared { url, authorization })
    }

    async fn id_token(&self, host: &str, audience: &str) -> Result<String, String> {
        let response = self
            .http
            .get(format!(
                "http://{host}/computeMetadata/v1/instance/service-accounts/default/identity"
            ))
            .query(&[("audience", audience), ("format", "full")])
            .header("Metadata-Flavor", "Google")
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| format!("no ID token from the metadata server at {host}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!(
                "no ID token from the metadata server at {host}: HTTP {}",
                response.status()
            ));
        }
        let token = response.text().await.map_err(|e| e.to_string())?;
        Ok(token.trim().to_string())
    }

    async fn local_route(&self, emulator: &str, url: &str) -> Result<String, String> {
        let answer: Value = self
            .http
            .get(format!(
                "{}/_emulator/route",
                emulator.trim_end_matches('/')
            ))
            .query(&[("url", url)])
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| format!("the local emulator did not say where {url} is served: {e}"))?
            .json()
            .await
            .map_err(|e| format!("the local emulator's route for {url}: {e}"))?;
        answer["local"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("the local emulator has no route for {url}: {answer}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audience_is_the_urls_origin() {
        assert_eq!(
            origin("https://crm-proxy-abc-uc.a.run.app/customers?x=1"),
            Some("https://crm-proxy-abc-uc.a.run.app")
        );
        assert_eq!(origin("http://127.0.0.1:9/"), Some("http://127.0.0.1:9"));
        assert_eq!(origin("https://h"), Some("https://h"));
        assert_eq!(origin("no-scheme"), None);
    }
}
