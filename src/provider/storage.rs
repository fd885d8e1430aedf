//! A small typed Cloud Storage JSON API client (buckets and objects with generation preconditions)
//! over the shared REST caller ([`super::rest::RestClient`]): same credentials and HTTP client.

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde::Deserialize;

use super::error::{ApiError, RetryObserver};
use super::rest::RestClient;
use super::retry::{Backoff, all_pages, retrying};

const GOOGLE_STORAGE: &str = "https://storage.googleapis.com";

/// Every call is retried on transient errors (429, 5xx, dropped connections) with the same
/// jittered backoff as the other APIs; conditional writes check, on a 412 after a retry, whether
/// the earlier attempt was in fact ours (see [`StorageClient::write`]).
#[derive(Clone)]
pub struct StorageClient {
    rest: RestClient,
    backoff: Backoff,
}

/// Storage retries show in the log (`RUST_LOG=stackctl=debug`) and as a warning when they run out.
struct LogRetries;

impl RetryObserver for LogRetries {
    fn retrying(&self, attempt: u32, delay: std::time::Duration, reason: &str) {
        tracing::info!("state bucket: retrying (attempt {attempt}) in {delay:?}: {reason}");
    }
}

/// An object's bytes and the generation they were read at.
#[derive(Debug, Clone)]
pub struct StoredObject {
    pub data: Vec<u8>,
    pub generation: i64,
}

#[derive(Deserialize)]
struct ObjectMeta {
    #[serde(default, deserialize_with = "int64_string")]
    generation: i64,
}

fn int64_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ObjectList {
    items: Vec<ObjectName>,
    next_page_token: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ObjectName {
    name: String,
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

impl StorageClient {
    pub fn new(
        endpoint: Option<&str>,
        credentials: google_cloud_auth::credentials::Credentials,
    ) -> Result<Self, reqwest::Error> {
        // Google's endpoint (no override) gets Google's pace; the emulator a fast one.
        let backoff = match endpoint {
            None => Backoff::GOOGLE,
            Some(_) => Backoff::LOCAL,
        };
        Ok(Self {
            rest: RestClient::new(endpoint, GOOGLE_STORAGE, credentials)?,
            backoff,
        })
    }

    /// The same client with another retry pace (tests).
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sends `request` once; [`StorageClient::retried`] wraps whole calls in retries.
    async fn send(
        &self,
        call: &'static str,
        resource: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ApiError> {
        self.rest.send(call, resource, request).await
    }

    /// Runs `call` (one attempt: request and reading its answer) with retries on transient
    /// errors; `call` gets the 1-based attempt number.
    async fn retried<T, F, Fut>(&self, mut call: F) -> Result<T, ApiError>
    where
        F: FnMut(u32) -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        let mut attempt = 0;
        retrying(self.backoff, &LogRetries, || {
            attempt += 1;
            call(attempt)
        })
        .await
    }

    /// Whether the bucket exists (a 403 means it exists but belongs to someone else).
    pub async fn bucket_exists(&self, bucket: &str) -> Result<bool, ApiError> {
        let url = format!("/storage/v1/b/{}", enc(bucket));
        match self
            .retried(|_| {
                self.send(
                    "storage.buckets.get",
                    bucket,
                    self.rest.request(Method::GET, &url),
                )
            })
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates the bucket with uniform access and no public access; an existing bucket is fine.
    pub async fn create_bucket(
        &self,
        project: &str,
        bucket: &str,
        location: &str,
    ) -> Result<(), ApiError> {
        let body = serde_json::json!({
            "name": bucket,
            "location": location,
            "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": true}, "publicAccessPrevention": "enforced"},
            "versioning": {"enabled": true},
            "labels": {"stackctl-state": "true"},
        });
        match self
            .retried(|_| {
                self.send(
                    "storage.buckets.insert",
                    bucket,
                    self.rest
                        .request(Method::POST, "/storage/v1/b")
                        .query(&[("project", project)])
                        .json(&body),
                )
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.http_status == Some(409) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Reads an object; `None` if the bucket or object does not exist.
    pub async fn read(&self, bucket: &str, object: &str) -> Result<Option<StoredObject>, ApiError> {
        let resource = format!("gs://{bucket}/{object}");
        let url = format!("/storage/v1/b/{}/o/{}", enc(bucket), enc(object));
        self.retried(|_| self.read_once(&resource, &url)).await
    }

    async fn read_once(&self, resource: &str, url: &str) -> Result<Option<StoredObject>, ApiError> {
        let response = match self
            .send(
                "storage.objects.get",
                resource,
                self.rest
                    .request(Method::GET, url)
                    .query(&[("alt", "media")]),
            )
            .await
        {
            Ok(r) => r,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let generation = response
            .headers()
            .get("x-goog-generation")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                ApiError::new(
                    "storage.objects.get",
                    resource,
                    Some(200),
                    None,
                    "the response has no x-goog-generation header",
                )
            })?;
        // A connection dropped mid-body is a network error (retried with the call).
        let data = response
            .bytes()
            .await
            .map_err(|e| ApiError::new("storage.objects.get", resource, None, None, e.to_string()))?
            .to_vec();
        Ok(Some(StoredObject { data, generation }))
    }

    /// Names of the objects under `prefix`; a missing bucket has none.
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, ApiError> {
        let resource = format!("gs://{bucket}/{prefix}");
        let url = format!("/storage/v1/b/{}/o", enc(bucket));
        let listed = all_pages(|token| {
            let (resource, url) = (&resource, &url);
            async move {
                let mut query = vec![("prefix", prefix.to_string())];
                if !token.is_empty() {
                    query.push(("pageToken", token));
                }
                let page: ObjectList = self
                    .retried(|_| async {
                        let request = self.rest.request(Method::GET, url).query(&query);
                        let response = self.send("storage.objects.list", resource, request).await?;
                        response.json().await.map_err(|e| {
                            ApiError::new(
                                "storage.objects.list",
                                resource,
                                None,
                                None,
                                e.to_string(),
                            )
                        })
                    })
                    .await?;
                let names = page.items.into_iter().map(|o| o.name);
                Ok((names.collect(), page.next_page_token.unwrap_or_default()))
            }
        })
        .await;
        match listed {
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            other => other,
        }
    }

    /// Writes an object only if its generation is `if_generation_match` (0 = only if absent).
    /// Returns the new generation; a lost race is a 412 [`ApiError::is_precondition_failed`].
    ///
    /// Transient failures are retried. A retried attempt that gets 412 may have lost the race to
    /// our own earlier attempt (it succeeded, but its answer was lost): the object is read back,
    /// and if it holds exactly the bytes we sent, that write was ours and its generation is
    /// returned. Callers make their bodies unique per write (the lock's timestamps, the ledger's
    /// fence), so equal bytes mean our write.
    pub async fn write(
        &self,
        bucket: &str,
        object: &str,
        data: Vec<u8>,
        if_generation_match: i64,
    ) -> Result<i64, ApiError> {
        let resource = format!("gs://{bucket}/{object}");
        let url = format!("/upload/storage/v1/b/{}/o", enc(bucket));
        let generation = if_generation_match.to_string();
        let written = self
            .retried(|attempt| {
                let request = self
                    .rest
                    .request(Method::POST, &url)
                    .query(&[
                        ("uploadType", "media"),
                        ("name", object),
                        ("ifGenerationMatch", &generation),
                    ])
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(data.clone());
                let resource = &resource;
                async move {
                    let response =
                        match self.send("storage.objects.insert", resource, request).await {
                            Ok(r) => r,
                            Err(e) if attempt > 1 && e.is_precondition_failed() => {
                                return Ok(Err(e));
                            }
                            Err(e) => return Err(e),
                        };
                    let meta: ObjectMeta = response.json().await.map_err(|e| {
                        ApiError::new(
                            "storage.objects.insert",
                            resource,
                            None,
                            None,
                            e.to_string(),
                        )
                    })?;
                    Ok(Ok(meta.generation))
                }
            })
            .await?;
        match written {
            Ok(generation) => Ok(generation),
            Err(conflict) => match self.read(bucket, object).await? {
                Some(current) if current.data == data => {
                    tracing::debug!(%resource, "a retried write found its own earlier attempt");
                    Ok(current.generation)
                }
                _ => Err(conflict),
            },
        }
    }

    /// Deletes an object only if its generation is `if_generation_match`; already gone is fine
    /// (also when a retried attempt finds our own earlier delete done).
    pub async fn delete(
        &self,
        bucket: &str,
        object: &str,
        if_generation_match: i64,
    ) -> Result<(), ApiError> {
        let resource = format!("gs://{bucket}/{object}");
        let url = format!("/storage/v1/b/{}/o/{}", enc(bucket), enc(object));
        let deleted = self
            .retried(|_| {
                let request = self
                    .rest
                    .request(Method::DELETE, &url)
                    .query(&[("ifGenerationMatch", if_generation_match.to_string())]);
                self.send("storage.objects.delete", &resource, request)
            })
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}
