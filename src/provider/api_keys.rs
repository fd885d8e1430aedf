//! API Keys v2 through a small typed REST module (the official crate is a placeholder): keys of
//! the project with their restrictions and annotations; the key string only on explicit request.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Cloud;
use super::error::{ApiError, NotFoundAsAnswer, RetryObserver};
use super::rest::ListCall;
use super::retry::{Created, creating, retrying};
use super::run::OperationObserver;

pub use crate::model::live::gateway::ApiKeyRecord;

pub const GOOGLE_API_KEYS: &str = "https://apikeys.googleapis.com";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiTarget {
    #[serde(default)]
    service: String,
    #[serde(default)]
    methods: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Restrictions {
    #[serde(default)]
    api_targets: Vec<ApiTarget>,
    /// Browser, server, Android and iOS restrictions: kept by name only.
    #[serde(flatten)]
    others: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyWire {
    name: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    uid: String,
    #[serde(default)]
    restrictions: Option<Restrictions>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    etag: String,
    #[serde(default)]
    delete_time: Option<String>,
    #[serde(default)]
    create_time: Option<chrono::DateTime<chrono::Utc>>,
}

impl KeyWire {
    fn record(self) -> ApiKeyRecord {
        let restrictions = self.restrictions.unwrap_or_default();
        let mut other_restrictions: Vec<String> = restrictions
            .others
            .iter()
            .filter(|(_, value)| !value.is_null())
            .map(|(key, _)| key.clone())
            .collect();
        if restrictions
            .api_targets
            .iter()
            .any(|t| !t.methods.is_empty())
        {
            other_restrictions.push("apiTargets[].methods".into());
        }
        other_restrictions.sort();
        let mut api_targets: Vec<String> = restrictions
            .api_targets
            .into_iter()
            .map(|t| t.service)
            .collect();
        api_targets.sort();
        ApiKeyRecord {
            name: self.name,
            display_name: self.display_name,
            uid: self.uid,
            api_targets,
            other_restrictions,
            annotations: self.annotations,
            etag: self.etag,
            created: self.create_time,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListKeys {
    #[serde(default)]
    keys: Vec<KeyWire>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct Operation {
    name: String,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    response: Option<Value>,
    #[serde(default)]
    error: Option<OperationError>,
}

#[derive(Deserialize)]
struct OperationError {
    #[serde(default)]
    code: i32,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyString {
    key_string: String,
}

/// What stackctl writes on a key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKeyWrite {
    pub display_name: String,
    /// The services it may call (a gateway's managed service).
    pub api_targets: Vec<String>,
    pub annotations: BTreeMap<String, String>,
}

impl ApiKeyWrite {
    fn body(&self) -> Value {
        json!({
            "displayName": self.display_name,
            "restrictions": {
                "apiTargets": self.api_targets.iter().map(|s| json!({"service": s})).collect::<Vec<_>>(),
            },
            "annotations": self.annotations,
        })
    }
}

impl Cloud {
    /// `projects/P/locations/global`
    fn api_keys_parent(&self) -> String {
        format!("projects/{}/locations/global", self.project)
    }

    /// The project's keys, deleted ones left out.
    pub async fn list_api_keys(
        &self,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<ApiKeyRecord>, ApiError> {
        let parent = self.api_keys_parent();
        let path = format!("/v2/{parent}/keys");
        let keys = self
            .api_keys
            .list_all(
                ListCall {
                    call: "apikeys.keys.list",
                    resource: &parent,
                    path: &path,
                    query: &[],
                },
                self.backoff,
                observer,
                |page: ListKeys| (page.keys, page.next_page_token),
            )
            .await?;
        Ok(keys
            .into_iter()
            .filter(|k| k.delete_time.is_none())
            .map(KeyWire::record)
            .collect())
    }

    /// Polls an API Keys operation until it is done; its `response` on success.
    async fn wait_api_keys_operation(
        &self,
        call: &'static str,
        resource: &str,
        mut operation: Operation,
        observer: &dyn OperationObserver,
    ) -> Result<Value, ApiError> {
        let mut delay = match self.endpoint {
            super::Endpoint::Google => Duration::from_millis(500),
            _ => Duration::from_millis(20),
        };
        let mut polls = 0u32;
        while !operation.done {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
            polls += 1;
            observer.phase(&format!("waiting for operation (poll {polls})"));
            let path = format!("/v2/{}", operation.name);
            operation = retrying(self.backoff, observer, || async {
                self.api_keys
                    .json(
                        "apikeys.operations.get",
                        resource,
                        self.api_keys.request(Method::GET, &path),
                    )
                    .await
            })
            .await?;
        }
        match operation.error {
            Some(e) => Err(ApiError::new(
                call,
                resource,
                None,
                Some(format!("code {}", e.code)),
                e.message,
            )),
            None => Ok(operation.response.unwrap_or(Value::Null)),
        }
    }

    pub async fn create_api_key(
        &self,
        key_id: &str,
        write: &ApiKeyWrite,
        observer: &dyn OperationObserver,
    ) -> Result<Created<ApiKeyRecord>, ApiError> {
        let parent = self.api_keys_parent();
        let resource = format!("{parent}/keys/{key_id}");
        let path = format!("/v2/{parent}/keys");
        let body = write.body();
        creating(self.backoff, observer, || async {
            let operation: Operation = self
                .api_keys
                .json(
                    "apikeys.keys.create",
                    &resource,
                    self.api_keys
                        .request(Method::POST, &path)
                        .query(&[("keyId", key_id)])
                        .json(&body),
                )
                .await?;
            let made = self
                .wait_api_keys_operation("apikeys.keys.create", &resource, operation, observer)
                .await?;
            serde_json::from_value::<KeyWire>(made)
                .map(KeyWire::record)
                .map_err(|e| {
                    ApiError::new(
                        "apikeys.keys.create",
                        &resource,
                        None,
                        None,
                        format!("unexpected response: {e}"),
                    )
                })
        })
        .await
    }

    /// Writes the display name, restrictions and annotations of key `name`.
    pub async fn update_api_key(
        &self,
        name: &str,
        write: &ApiKeyWrite,
        observer: &dyn OperationObserver,
    ) -> Result<(), ApiError> {
        self.patch_api_key(
            name,
            write.body(),
            "displayName,restrictions,annotations",
            observer,
        )
        .await
    }

    /// Sets the annotations of key `name` (send every one to keep); nothing else about it
    /// changes, its restrictions least of all.
    pub async fn annotate_api_key(
        &self,
        name: &str,
        annotations: &BTreeMap<String, String>,
        observer: &dyn OperationObserver,
    ) -> Result<(), ApiError> {
        let body = json!({ "annotations": annotations });
        self.patch_api_key(name, body, "annotations", observer)
            .await
    }

    async fn patch_api_key(
        &self,
        name: &str,
        body: Value,
        update_mask: &str,
        observer: &dyn OperationObserver,
    ) -> Result<(), ApiError> {
        let path = format!("/v2/{name}");
        retrying(self.backoff, observer, || async {
            let operation: Operation = self
                .api_keys
                .json(
                    "apikeys.keys.patch",
                    name,
                    self.api_keys
                        .request(Method::PATCH, &path)
                        .query(&[("updateMask", update_mask)])
                        .json(&body),
                )
                .await?;
            self.wait_api_keys_operation("apikeys.keys.patch", name, operation, observer)
                .await
                .map(drop)
        })
        .await
    }

    pub async fn delete_api_key(
        &self,
        name: &str,
        observer: &dyn OperationObserver,
    ) -> Result<(), ApiError> {
        let path = format!("/v2/{name}");
        retrying(self.backoff, observer, || async {
            let operation: Operation = self
                .api_keys
                .json(
                    "apikeys.keys.delete",
                    name,
                    self.api_keys.request(Method::DELETE, &path),
                )
                .await?;
            self.wait_api_keys_operation("apikeys.keys.delete", name, operation, observer)
                .await
                .map(drop)
        })
        .await
        .not_found_as_done()
    }

    /// The key string of `name`: only for `stackctl api-key show --reveal`, never logged.
    pub async fn api_key_string(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<String, ApiError> {
        let path = format!("/v2/{name}/keyString");
        retrying(self.backoff, observer, || async {
            self.api_keys
                .json::<KeyString>(
                    "apikeys.keys.getKeyString",
                    name,
                    self.api_keys.request(Method::GET, &path),
                )
                .await
                .map(|k| k.key_string)
        })
        .await
    }
}
