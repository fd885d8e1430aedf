//! A small typed Cloud Storage JSON API client (buckets and objects with generation preconditions)
//! over the shared REST caller ([`super::rest::RestClient`]): same credentials and HTTP client.

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde::Deserialize;

use super::error::ApiError;
use super::rest::RestClient;
use super::retry::all_pages;

const GOOGLE_STORAGE: &str = "https://storage.googleapis.com";

#[derive(Clone)]
pub struct StorageClient {
    rest: RestClient,
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
        Ok(Self {
            rest: RestClient::new(endpoint, GOOGLE_STORAGE, credentials)?,
        })
    }

    async fn send(
        &self,
        call: &'static str,
        resource: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ApiError> {
        self.rest.send(call, resource, request).await
    }

    /// Whether the bucket exists (a 403 means it exists but belongs to someone else).
    pub async fn bucket_exists(&self, bucket: &str) -> Result<bool, ApiError> {
        let url = format!("/storage/v1/b/{}", enc(bucket));
        match self
            .send(
                "storage.buckets.get",
                bucket,
                self.rest.request(Method::GET, &url),
            )
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
            .send(
                "storage.buckets.insert",
                bucket,
                self.rest
                    .request(Method::POST, "/storage/v1/b")
                    .query(&[("project", project)])
                    .json(&body),
            )
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
        let response = match self
            .send(
                "storage.objects.get",
                &resource,
                self.rest
                    .request(Method::GET, &url)
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
                    &resource,
                    Some(200),
                    None,
                    "the response has no x-goog-generation header",
                )
            })?;
        let data = response
            .bytes()
            .await
            .map_err(|e| {
                ApiError::new("storage.objects.get", &resource, None, None, e.to_string())
            })?
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
                let request = self.rest.request(Method::GET, url).query(&query);
                let response = self.send("storage.objects.list", resource, request).await?;
                let page: ObjectList = response.json().await.map_err(|e| {
                    ApiError::new("storage.objects.list", resource, None, None, e.to_string())
                })?;
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
    pub async fn write(
        &self,
        bucket: &str,
        object: &str,
        data: Vec<u8>,
        if_generation_match: i64,
    ) -> Result<i64, ApiError> {
        let resource = format!("gs://{bucket}/{object}");
        let url = format!("/upload/storage/v1/b/{}/o", enc(bucket));
        let request = self
            .rest
            .request(Method::POST, &url)
            .query(&[
                ("uploadType", "media"),
                ("name", object),
                ("ifGenerationMatch", &if_generation_match.to_string()),
            ])
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(data);
        let response = self
            .send("storage.objects.insert", &resource, request)
            .await?;
        let meta: ObjectMeta = response.json().await.map_err(|e| {
            ApiError::new(
                "storage.objects.insert",
                &resource,
                None,
                None,
                e.to_string(),
            )
        })?;
        Ok(meta.generation)
    }

    /// Deletes an object only if its generation is `if_generation_match`; already gone is fine.
    pub async fn delete(
        &self,
        bucket: &str,
        object: &str,
        if_generation_match: i64,
    ) -> Result<(), ApiError> {
        let resource = format!("gs://{bucket}/{object}");
        let url = format!("/storage/v1/b/{}/o/{}", enc(bucket), enc(object));
        let request = self
            .rest
            .request(Method::DELETE, &url)
            .query(&[("ifGenerationMatch", if_generation_match.to_string())]);
        match self
            .send("storage.objects.delete", &resource, request)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}
