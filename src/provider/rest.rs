//! A small JSON REST caller over reqwest and the same credentials as the Google client crates,
//! for the APIs stackctl calls without an official crate (Billing Budgets, the Cloud Billing
//! Catalog) or with headers the crates cannot send (BigQuery's `If-Match`).

use google_cloud_auth::credentials::{CacheableResource, Credentials};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::{ApiError, RetryObserver};
use super::retry::{Backoff, all_pages, retrying};

/// One Google REST API: its base URL (Google's, or the emulator's) and credentials.
#[derive(Clone)]
pub struct RestClient {
    http: reqwest::Client,
    base: String,
    credentials: Credentials,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: Option<String>,
}

impl RestClient {
    pub fn new(
        endpoint: Option<&str>,
        google: &str,
        credentials: Credentials,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: reqwest::Client::builder().build()?,
            base: endpoint.unwrap_or(google).trim_end_matches('/').to_string(),
            credentials,
        })
    }

    /// A request to `path` (which starts with `/`).
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// Sends with credentials; a non-2xx answer becomes an [`ApiError`] with Google's status.
    pub async fn send(
        &self,
        call: &'static str,
        resource: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ApiError> {
        let headers = match self.credentials.headers(Default::default()).await {
            Ok(CacheableResource::New { data, .. }) => data,
            Ok(CacheableResource::NotModified) => Default::default(),
            Err(e) => {
                return Err(ApiError::new(
                    call,
                    resource,
                    None,
                    Some("UNAUTHENTICATED".into()),
                    e.to_string(),
                ));
            }
        };
        let response = request
            .headers(headers)
            .send()
            .await
            .map_err(|e| ApiError::new(call, resource, None, None, e.to_string()))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        let (code, message) = match serde_json::from_str::<ErrorBody>(&body) {
            Ok(b) => (b.error.status, b.error.message),
            Err(_) => (None, body),
        };
        Err(ApiError::new(call, resource, Some(status), code, message))
    }

    /// Sends and decodes a JSON answer.
    pub async fn json<T: DeserializeOwned>(
        &self,
        call: &'static str,
        resource: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ApiError> {
        let response = self.send(call, resource, request).await?;
        let status = response.status().as_u16();
        response.json().await.map_err(|e| {
            ApiError::new(
                call,
                resource,
                Some(status),
                None,
                format!("unexpected response: {e}"),
            )
        })
    }
}

/// One paged GET list call: `pageToken` goes out, each page says its `nextPageToken`.
pub struct ListCall<'a> {
    pub call: &'static str,
    /// What errors name (`projects/P/datasets/D`).
    pub resource: &'a str,
    pub path: &'a str,
    pub query: &'a [(&'a str, String)],
}

impl RestClient {
    /// Every item of a paged list, each page retried on transient errors; `split` takes a
    /// decoded page apart into its items and its next page token.
    pub async fn list_all<P, T>(
        &self,
        list: ListCall<'_>,
        backoff: Backoff,
        observer: &dyn RetryObserver,
        split: impl Fn(P) -> (Vec<T>, Option<String>),
    ) -> Result<Vec<T>, ApiError>
    where
        P: DeserializeOwned,
    {
        let (list, split) = (&list, &split);
        all_pages(|token| async move {
            let page: P = retrying(backoff, observer, || async {
                let mut request = self
                    .request(reqwest::Method::GET, list.path)
                    .query(list.query);
                if !token.is_empty() {
                    request = request.query(&[("pageToken", &token)]);
                }
                self.json(list.call, list.resource, request).await
            })
            .await?;
            let (items, next) = split(page);
            Ok((items, next.unwrap_or_default()))
        })
        .await
    }
}

impl RestClient {
    /// One DELETE of `path`, retried on transient errors; a resource already gone counts as
    /// deleted (a retried delete, or one racing another apply).
    pub async fn delete(
        &self,
        call: &'static str,
        resource: &str,
        path: &str,
        backoff: Backoff,
        observer: &dyn RetryObserver,
    ) -> Result<(), ApiError> {
        use super::error::NotFoundAsAnswer;
        retrying(backoff, observer, || async {
            self.send(call, resource, self.request(reqwest::Method::DELETE, path))
                .await
                .map(drop)
        })
        .await
        .not_found_as_done()
    }
}

/// int64 fields arrive as JSON strings (and sometimes numbers).
pub fn int64_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Wire {
        Text(String),
        Number(i64),
    }
    match Option::<Wire>::deserialize(d)? {
        None => Ok(None),
        Some(Wire::Number(n)) => Ok(Some(n)),
        Some(Wire::Text(s)) => s.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// `google.type.Money` as it arrives: int64 `units` as a string, zero fields omitted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MoneyWire {
    #[serde(default)]
    pub currency_code: String,
    #[serde(default, deserialize_with = "int64_opt")]
    pub units: Option<i64>,
    #[serde(default)]
    pub nanos: i32,
}
