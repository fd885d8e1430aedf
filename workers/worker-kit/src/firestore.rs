//! A small typed client of Firestore's REST v1 documents API (get, beginTransaction, commit with
//! preconditions, rollback) over reqwest: Google's endpoint with an access token, or Google's
//! emulator as its admin (`Authorization: Bearer owner`).

use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use google_cloud_auth::credentials::AccessTokenCredentials;
use serde_json::{Map, Value, json};

/// Google's Firestore endpoint.
pub const GOOGLE_ENDPOINT: &str = "https://firestore.googleapis.com";
/// How long one Firestore call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A document's fields in Firestore's JSON encoding (`{"f": {"stringValue": "x"}}`).
pub type Fields = Map<String, Value>;

/// Why a Firestore call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Firestore unreachable: {0}")]
    Transport(String),
    #[error("Firestore answered HTTP {http} {status}: {message}")]
    Api {
        http: u16,
        status: String,
        message: String,
    },
    #[error("cannot get an access token for Firestore: {0}")]
    Auth(String),
    #[error("unexpected Firestore answer: {0}")]
    Decode(String),
}

impl Error {
    /// Worth retrying later: the network, a token, Firestore's 5xx, 429, or a contended
    /// transaction.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport(_) | Self::Auth(_) => true,
            Self::Decode(_) => false,
            Self::Api { http, status, .. } => {
                *http >= 500
                    || *http == 429
                    || matches!(
                        status.as_str(),
                        "ABORTED" | "UNAVAILABLE" | "DEADLINE_EXCEEDED" | "RESOURCE_EXHAUSTED"
                    )
            }
        }
    }

    /// Another writer got there first: a precondition (`exists: false` -> ALREADY_EXISTS,
    /// `updateTime` -> FAILED_PRECONDITION) or a transaction that lost a race (ABORTED).
    pub fn is_contention(&self) -> bool {
        matches!(self, Self::Api { status, .. }
            if matches!(status.as_str(), "ALREADY_EXISTS" | "FAILED_PRECONDITION" | "ABORTED"))
    }
}

#[derive(Clone)]
enum Auth {
    /// The emulator's admin token.
    Owner,
    Google(AccessTokenCredentials),
}

/// One project's `(default)` database.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    root: String,
    database: String,
    auth: Auth,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("firestore::Client")
            .field("root", &self.root)
            .field("database", &self.database)
            .finish()
    }
}

/// A stored document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// `projects/P/databases/D/documents/PATH`.
    pub name: String,
    pub fields: Fields,
    /// The precondition a later write uses to say "unchanged since I read it".
    pub update_time: String,
}

impl Document {
    pub fn string(&self, field: &str) -> Option<&str> {
        self.fields.get(field)?.get("stringValue")?.as_str()
    }

    pub fn integer(&self, field: &str) -> Option<i64> {
        let value = self.fields.get(field)?.get("integerValue")?;
        value
            .as_str()
            .and_then(|s| s.parse().ok())
            .or_else(|| value.as_i64())
    }

    pub fn timestamp(&self, field: &str) -> Option<DateTime<Utc>> {
        let raw = self.fields.get(field)?.get("timestampValue")?.as_str()?;
        DateTime::parse_from_rfc3339(raw)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    pub fn bytes(&self, field: &str) -> Option<Vec<u8>> {
        let raw = self.fields.get(field)?.get("bytesValue")?.as_str()?;
        base64::engine::general_purpose::STANDARD.decode(raw).ok()
    }
}

/// Firestore's JSON encoding of values.
pub mod value {
    use super::*;

    pub fn string(s: impl Into<String>) -> Value {
        json!({ "stringValue": s.into() })
    }

    pub fn integer(n: i64) -> Value {
        json!({ "integerValue": n.to_string() })
    }

    pub fn boolean(b: bool) -> Value {
        json!({ "booleanValue": b })
    }

    /// Microsecond precision, as Firestore stores it.
    pub fn timestamp(t: DateTime<Utc>) -> Value {
        json!({ "timestampValue": t.to_rfc3339_opts(SecondsFormat::Micros, true) })
    }

    pub fn bytes(b: &[u8]) -> Value {
        json!({ "bytesValue": base64::engine::general_purpose::STANDARD.encode(b) })
    }

    pub fn null() -> Value {
        json!({ "nullValue": null })
    }
}

/// What must hold of a document for a write to apply.
#[derive(Debug, Clone, PartialEq)]
pub enum Precondition {
    /// `exists: false`: create only.
    Absent,
    /// `exists: true`.
    Present,
    /// Unchanged since it was read at this `updateTime`.
    UpdatedAt(String),
}

/// One write of a commit.
#[derive(Debug, Clone, PartialEq)]
pub struct Write(Value);

impl Write {
    /// Replaces the whole document `name` with `fields` (creating it if absent).
    pub fn set(name: &str, fields: Fields) -> Self {
        Self(json!({ "update": { "name": name, "fields": fields } }))
    }

    /// Changes only `fields` of document `name`, leaving its others as they are.
    pub fn merge(name: &str, fields: Fields) -> Self {
        let paths: Vec<String> = fields.keys().cloned().collect();
        Self(json!({
            "update": { "name": name, "fields": fields },
            "updateMask": { "fieldPaths": paths },
        }))
    }

    pub fn delete(name: &str) -> Self {
        Self(json!({ "delete": name }))
    }

    pub fn when(mut self, precondition: Precondition) -> Self {
        let condition = match precondition {
            Precondition::Absent => json!({ "exists": false }),
            Precondition::Present => json!({ "exists": true }),
            Precondition::UpdatedAt(time) => json!({ "updateTime": time }),
        };
        if let Some(write) = self.0.as_object_mut() {
            write.insert("currentDocument".into(), condition);
        }
        self
    }
}

/// A read-write transaction's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction(String);

/// What a commit changed: each write's new `updateTime` (empty for a delete).
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    pub update_times: Vec<String>,
}

impl Client {
    /// Google's Firestore for `project`, with access tokens from `credentials`.
    pub fn google(
        http: reqwest::Client,
        credentials: AccessTokenCredentials,
        project: &str,
    ) -> Self {
        Self::new(
            http,
            GOOGLE_ENDPOINT.into(),
            project,
            Auth::Google(credentials),
        )
    }

    /// Google's Firestore emulator at `host` (`host:port`, as in `FIRESTORE_EMULATOR_HOST`).
    pub fn emulator(http: reqwest::Client, host: &str, project: &str) -> Self {
        let root = if host.starts_with("http://") || host.starts_with("https://") {
            host.trim_end_matches('/').to_string()
        } else {
            format!("http://{host}")
        };
        Self::new(http, root, project, Auth::Owner)
    }

    fn new(http: reqwest::Client, root: String, project: &str, auth: Auth) -> Self {
        Self {
            http,
            root,
            database: format!("projects/{project}/databases/(default)"),
            auth,
        }
    }

    /// The full name of the document at `path` (`collection/id`).
    pub fn name(&self, path: &str) -> String {
        format!("{}/documents/{path}", self.database)
    }

    async fn authorization(&self) -> Result<String, Error> {
        match &self.auth {
            Auth::Owner => Ok("Bearer owner".into()),
            Auth::Google(credentials) => credentials
                .access_token()
                .await
                .map(|t| format!("Bearer {}", t.token))
                .map_err(|e| Error::Auth(e.to_string())),
        }
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Option<Value>, Error> {
        let response = request
            .header("authorization", self.authorization().await?)
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(|e| Error::Transport(e.to_string()))?;
        let http = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| Error::Transport(e.to_string()))?;
        let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if (200..300).contains(&http) {
            return Ok(Some(parsed));
        }
        let status = parsed
            .pointer("/error/status")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if http == 404 && status != "FAILED_PRECONDITION" {
            return Ok(None);
        }
        let message = parsed
            .pointer("/error/message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect());
        Err(Error::Api {
            http,
            status,
            message,
        })
    }

    /// The document at `path`, read inside `transaction` when given; `None` if absent.
    pub async fn get(
        &self,
        path: &str,
        transaction: Option<&Transaction>,
    ) -> Result<Option<Document>, Error> {
        let mut request = self
            .http
            .get(format!("{}/v1/{}", self.root, self.name(path)));
        if let Some(transaction) = transaction {
            request = request.query(&[("transaction", transaction.0.as_str())]);
        }
        let Some(answer) = self.call(request).await? else {
            return Ok(None);
        };
        let name = answer["name"]
            .as_str()
            .ok_or_else(|| Error::Decode(format!("a document without a name: {answer}")))?
            .to_string();
        Ok(Some(Document {
            name,
            fields: answer["fields"].as_object().cloned().unwrap_or_default(),
            update_time: answer["updateTime"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        }))
    }

    /// Starts a read-write transaction: its reads lock what they read until commit or rollback.
    pub async fn begin_transaction(&self) -> Result<Transaction, Error> {
        let answer = self
            .call(
                self.http
                    .post(format!(
                        "{}/v1/{}/documents:beginTransaction",
                        self.root, self.database
                    ))
                    .json(&json!({ "options": { "readWrite": {} } })),
            )
            .await?
            .unwrap_or_default();
        answer["transaction"]
            .as_str()
            .map(|t| Transaction(t.to_string()))
            .ok_or_else(|| Error::Decode(format!("beginTransaction gave no id: {answer}")))
    }

    /// Applies `writes` atomically (inside `transaction` when given): all or none.
    pub async fn commit(
        &self,
        writes: Vec<Write>,
        transaction: Option<Transaction>,
    ) -> Result<Committed, Error> {
        let mut body = json!({ "writes": writes.into_iter().map(|w| w.0).collect::<Vec<_>>() });
        if let Some(transaction) = transaction {
            body["transaction"] = Value::String(transaction.0);
        }
        let answer = self
            .call(
                self.http
                    .post(format!(
                        "{}/v1/{}/documents:commit",
                        self.root, self.database
                    ))
                    .json(&body),
            )
            .await?
            .unwrap_or_default();
        let update_times = answer["writeResults"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| r["updateTime"].as_str().unwrap_or_default().to_string())
            .collect();
        Ok(Committed { update_times })
    }

    /// Abandons `transaction`, releasing its locks.
    pub async fn rollback(&self, transaction: Transaction) -> Result<(), Error> {
        self.call(
            self.http
                .post(format!(
                    "{}/v1/{}/documents:rollback",
                    self.root, self.database
                ))
                .json(&json!({ "transaction": transaction.0 })),
        )
        .await?;
        Ok(())
    }
}
