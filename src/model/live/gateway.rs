//! API Gateway and API Keys as read back: gateways with the api and config they serve, and keys
//! with their restrictions (never their key strings).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An API Gateway `api`: the managed service keys are restricted to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayApiRecord {
    /// `projects/P/locations/global/apis/A`
    pub name: String,
    /// `A-HASH.apigateway.P.cloud.goog`: enabled through Service Usage so keys work.
    pub managed_service: String,
    pub display_name: String,
    pub labels: BTreeMap<String, String>,
}

/// An `api config`: immutable once made, so a changed document is a new config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiConfigRecord {
    /// `projects/P/locations/global/apis/A/configs/C`
    pub name: String,
    /// The identity gateways on this config call backends as.
    pub gateway_service_account: String,
    pub labels: BTreeMap<String, String>,
    /// The first OpenAPI document, parsed (JSON); `None` when not read with the FULL view or
    /// not JSON.
    pub document: Option<serde_json::Value>,
}

/// A `gateway` with what it serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayRecord {
    /// `projects/P/locations/REGION/gateways/G`
    pub name: String,
    pub display_name: String,
    pub labels: BTreeMap<String, String>,
    /// The config it serves.
    pub api_config: String,
    /// `G-HASH.REGION_CODE.gateway.dev`
    pub default_hostname: String,
    pub state: String,
    /// When it was created (audit leaves younger gateways alone).
    pub created: Option<chrono::DateTime<chrono::Utc>>,
    /// The api of its config, when it was listed.
    pub api: Option<GatewayApiRecord>,
    /// Its config, read with the FULL view, for gateways of this stack.
    pub config: Option<ApiConfigRecord>,
}

/// An API Keys v2 key (its string is never part of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// `projects/NUMBER/locations/global/keys/ID`
    pub name: String,
    pub display_name: String,
    /// The services it may call (`apiTargets[].service`), sorted; empty: any.
    pub api_targets: Vec<String>,
    /// The restrictions stackctl does not declare that the key carries (`serverKeyRestrictions`,
    /// `browserKeyRestrictions`, ..., `apiTargets[].methods`), sorted: a write of stackctl's
    /// restrictions would drop them.
    pub other_restrictions: Vec<String>,
    /// The key's unique id: Service Control reports its calls as `credential_id = apikey:UID`.
    pub uid: String,
    /// Annotations (stackctl's ownership marks live here: keys have no labels).
    pub annotations: BTreeMap<String, String>,
    pub etag: String,
    /// When it was created (audit leaves younger keys alone).
    pub created: Option<chrono::DateTime<chrono::Utc>>,
}
