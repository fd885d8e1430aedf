//! Firestore Admin v1: databases (create, patch and delete as operations; get, list; delete
//! protection) and collection-group fields' TTL policies. Documents are not served here: Google's
//! own Firestore emulator serves them under `stackctl up --local` (`FIRESTORE_EMULATOR_HOST`).

use serde_json::{Map, Value, json};

use super::collection::{Collection, ordered, remove_under};
use super::lro::{self, NewOperation, as_any};
use super::{Call, Context, Reply};
use crate::conventions::ApiError;
use crate::conventions::field_mask::FieldMask;
use crate::conventions::paging::PagePolicy;
use crate::conventions::wire::{stable_hash, timestamp};
use crate::discovery::Api;
use crate::state::OperationKind;

const DATABASE_TYPE_URL: &str = "type.googleapis.com/google.firestore.admin.v1.Database";
const FIELD_TYPE_URL: &str = "type.googleapis.com/google.firestore.admin.v1.Field";
const CREATE_METADATA_TYPE_URL: &str =
    "type.googleapis.com/google.firestore.admin.v1.CreateDatabaseMetadata";
const UPDATE_METADATA_TYPE_URL: &str =
    "type.googleapis.com/google.firestore.admin.v1.UpdateDatabaseMetadata";
const DELETE_METADATA_TYPE_URL: &str =
    "type.googleapis.com/google.firestore.admin.v1.DeleteDatabaseMetadata";
const FIELD_METADATA_TYPE_URL: &str =
    "type.googleapis.com/google.firestore.admin.v1.FieldOperationMetadata";

/// The database every project may have without naming one.
const DEFAULT_DATABASE: &str = "(default)";

const DATABASES: Collection = Collection {
    field: "databases",
    policy: PagePolicy {
        default_size: 1000,
        max_size: 1000,
        size_param: "pageSize",
        token_kind: "databases",
    },
    map: |state| &state.firestore_databases,
    map_mut: |state| &mut state.firestore_databases,
    not_found: database_not_found,
};

const FIELDS: Collection = Collection {
    field: "fields",
    policy: PagePolicy {
        default_size: 1000,
        max_size: 1000,
        size_param: "pageSize",
        token_kind: "fields",
    },
    map: |state| &state.firestore_fields,
    map_mut: |state| &mut state.firestore_fields,
    not_found: |name| ApiError::not_found(format!("Field {name} not found.")),
};

fn database_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("The database {name} does not exist."))
}

fn database_name(call: &Call<'_>) -> Result<String, ApiError> {
    Ok(format!(
        "projects/{}/databases/{}",
        call.param("projectsId")?,
        call.param("databasesId")?
    ))
}

fn field_name(call: &Call<'_>) -> Result<String, ApiError> {
    Ok(format!(
        "{}/collectionGroups/{}/fields/{}",
        database_name(call)?,
        call.param("collectionGroupsId")?,
        call.param("fieldsId")?
    ))
}

/// `databaseId`: 4-63 characters of `[a-z0-9-]`, a letter first, a letter or digit last, not
/// shaped like a UUID; or `(default)` (RUNTIME-NOTES 7.4).
pub fn is_database_id(id: &str) -> bool {
    if id == DEFAULT_DATABASE {
        return true;
    }
    let bytes = id.as_bytes();
    let uuid_like = id.len() == 36 && id.chars().filter(|c| *c == '-').count() == 4;
    (4..=63).contains(&id.len())
        && bytes[0].is_ascii_lowercase()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && !uuid_like
}

fn operation(
    context: &mut Context<'_>,
    call: &Call<'_>,
    database: &str,
    metadata: Value,
    response: Value,
) -> Reply {
    let now = timestamp(call.now);
    let name = format!("{database}/operations/{}", uuid::Uuid::new_v4().simple());
    Reply::Json(lro::start(
        context,
        NewOperation {
            name,
            metadata,
            kind: OperationKind::Immediate,
            target: database.to_string(),
            new_revision: None,
            final_resource: Some(response),
        },
        &now,
    ))
}

fn enum_or<'a>(body: &'a Value, field: &str, unspecified: &str) -> Option<&'a str> {
    body.get(field)
        .and_then(Value::as_str)
        .filter(|v| *v != unspecified)
}

fn finish_database(database: Map<String, Value>) -> Value {
    ordered(
        database,
        &[
            "name",
            "uid",
            "createTime",
            "updateTime",
            "locationId",
            "type",
            "concurrencyMode",
            "versionRetentionPeriod",
            "earliestVersionTime",
            "pointInTimeRecoveryEnablement",
            "appEngineIntegrationMode",
            "keyPrefix",
            "deleteProtectionState",
            "freeTier",
            "databaseEdition",
            "etag",
        ],
    )
}

/// A new etag for the database's current fields.
fn with_etag(mut database: Value) -> Value {
    database["etag"] = Value::Null;
    let etag = stable_hash(&[&database.to_string()]);
    database["etag"] = json!(etag);
    database
}

pub fn create_database(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let project = call.param("projectsId")?.to_string();
    let id = call.query.non_empty("databaseId").ok_or_else(|| {
        ApiError::bad_field(
            "database_id",
            "database_id: Required field is not set.".into(),
        )
    })?;
    if !is_database_id(id) {
        return Err(ApiError::invalid_argument(format!(
            "Invalid database id: {id}. Database ids must be 4 to 63 characters of lowercase letters, numbers and hyphens, start with a letter and end with a letter or number, or be \"(default)\"."
        )));
    }
    let name = format!("projects/{project}/databases/{id}");
    if DATABASES.contains(context.state, &name) {
        return Err(ApiError::already_exists(format!(
            "Database already exists. Please use another database_id: {name}"
        )));
    }
    let body = call.body_or_empty();
    let location = body
        .get("locationId")
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| ApiError::invalid_argument("location_id: Required field is not set."))?;
    let database_type = enum_or(&body, "type", "DATABASE_TYPE_UNSPECIFIED")
        .ok_or_else(|| ApiError::invalid_argument("type: Required field is not set."))?;
    let edition =
        enum_or(&body, "databaseEdition", "DATABASE_EDITION_UNSPECIFIED").unwrap_or("STANDARD");
    let concurrency = enum_or(&body, "concurrencyMode", "CONCURRENCY_MODE_UNSPECIFIED").unwrap_or(
        if edition == "ENTERPRISE" {
            "OPTIMISTIC"
        } else {
            "PESSIMISTIC"
        },
    );
    let project_prefix = format!("projects/{project}/databases/");
    let free_tier_taken =
        super::collection::children(&context.state.firestore_databases, &project_prefix)
            .any(|d| d.get("freeTier") == Some(&json!(true)));
    let now = timestamp(call.now);
    let mut database = Map::new();
    database.insert("name".into(), json!(name));
    database.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    database.insert("createTime".into(), json!(now));
    database.insert("updateTime".into(), json!(now));
    database.insert("locationId".into(), json!(location));
    database.insert("type".into(), json!(database_type));
    database.insert("concurrencyMode".into(), json!(concurrency));
    database.insert("versionRetentionPeriod".into(), json!("3600s"));
    database.insert("earliestVersionTime".into(), json!(now));
    database.insert(
        "pointInTimeRecoveryEnablement".into(),
        json!(
            enum_or(
                &body,
                "pointInTimeRecoveryEnablement",
                "POINT_IN_TIME_RECOVERY_ENABLEMENT_UNSPECIFIED"
            )
            .unwrap_or("POINT_IN_TIME_RECOVERY_DISABLED")
        ),
    );
    database.insert("appEngineIntegrationMode".into(), json!("DISABLED"));
    database.insert(
        "deleteProtectionState".into(),
        json!(
            enum_or(
                &body,
                "deleteProtectionState",
                "DELETE_PROTECTION_STATE_UNSPECIFIED"
            )
            .unwrap_or("DELETE_PROTECTION_DISABLED")
        ),
    );
    database.insert("freeTier".into(), json!(!free_tier_taken));
    database.insert("databaseEdition".into(), json!(edition));
    let database = with_etag(finish_database(database));
    DATABASES.store(context.state, name.clone(), database.clone());
    let metadata = as_any(CREATE_METADATA_TYPE_URL, &json!({}));
    Ok(operation(
        context,
        call,
        &name,
        metadata,
        as_any(DATABASE_TYPE_URL, &database),
    ))
}

pub fn get_database(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    DATABASES
        .get(context.state, &database_name(call)?)
        .map(Reply::Json)
}

pub fn list_databases(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let prefix = format!("projects/{}/databases/", call.param("projectsId")?);
    let databases: Vec<Value> =
        super::collection::children(&context.state.firestore_databases, &prefix)
            .cloned()
            .collect();
    // databases.list answers every database at once (it has no paging).
    Ok(Reply::Json(json!({ "databases": databases })))
}

/// Fields a patch may change; the others are fixed once the database exists.
const MUTABLE_DATABASE_FIELDS: &[&str] = &[
    "deleteProtectionState",
    "pointInTimeRecoveryEnablement",
    "concurrencyMode",
    "appEngineIntegrationMode",
];

pub fn patch_database(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = database_name(call)?;
    let existing = DATABASES.get(context.state, &name)?;
    let body = call.body_or_empty();
    let mask = FieldMask::parse(
        call.query.non_empty("updateMask"),
        context.discovery,
        Api::Firestore,
        "GoogleFirestoreAdminV1Database",
    )?;
    let mut database = existing.clone();
    if mask.is_empty() {
        for key in MUTABLE_DATABASE_FIELDS {
            if let Some(value) = body.get(*key) {
                database[*key] = value.clone();
            }
        }
    } else {
        mask.apply(&body, &mut database);
    }
    for fixed in ["locationId", "type", "databaseEdition", "name", "uid"] {
        if database.get(fixed) != existing.get(fixed) {
            return Err(ApiError::invalid_argument(format!(
                "The database's {fixed} cannot be changed."
            )));
        }
    }
    database["updateTime"] = json!(timestamp(call.now));
    let database = with_etag(finish_database(
        database.as_object().cloned().unwrap_or_default(),
    ));
    DATABASES.store(context.state, name.clone(), database.clone());
    let metadata = as_any(UPDATE_METADATA_TYPE_URL, &json!({}));
    Ok(operation(
        context,
        call,
        &name,
        metadata,
        as_any(DATABASE_TYPE_URL, &database),
    ))
}

pub fn delete_database(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = database_name(call)?;
    let existing = DATABASES.get(context.state, &name)?;
    if let Some(etag) = call.query.non_empty("etag")
        && existing.get("etag").and_then(Value::as_str) != Some(etag)
    {
        return Err(ApiError::failed_precondition(format!(
            "The etag {etag} does not match the database {name}'s current etag."
        )));
    }
    if existing["deleteProtectionState"] == "DELETE_PROTECTION_ENABLED" {
        return Err(ApiError::failed_precondition(format!(
            "Delete protection is enabled for database {name}. Disable delete protection before deleting it."
        )));
    }
    DATABASES.remove(context.state, &name)?;
    remove_under(
        &mut context.state.firestore_fields,
        &format!("{name}/collectionGroups/"),
    );
    let metadata = as_any(DELETE_METADATA_TYPE_URL, &json!({}));
    Ok(operation(
        context,
        call,
        &name,
        metadata,
        as_any(DATABASE_TYPE_URL, &existing),
    ))
}

/// A field as served: the stored TTL policy, or the field inheriting the defaults.
fn field_view(state: &crate::state::State, name: &str) -> Value {
    FIELDS
        .get(state, name)
        .unwrap_or_else(|_| json!({ "name": name }))
}

pub fn get_field(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = field_name(call)?;
    DATABASES.require(context.state, &database_name(call)?)?;
    Ok(Reply::Json(field_view(context.state, &name)))
}

/// `fields.list`: Google answers only the fields with explicit settings, and asks for a filter
/// (`ttlConfig:*` or `indexConfig.usesAncestorConfig:false`); collection group `-` lists all.
pub fn list_fields(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let database = database_name(call)?;
    DATABASES.require(context.state, &database)?;
    let filter = call.query.non_empty("filter").unwrap_or_default();
    let ttl_only = filter.replace(' ', "") == "ttlConfig:*";
    if !ttl_only && !filter.contains("indexConfig.usesAncestorConfig:false") {
        return Err(ApiError::invalid_argument(
            "The filter must be \"ttlConfig:*\" or \"indexConfig.usesAncestorConfig:false\".",
        ));
    }
    let group = call.param("collectionGroupsId")?;
    let prefix = if group == "-" {
        format!("{database}/collectionGroups/")
    } else {
        format!("{database}/collectionGroups/{group}/fields/")
    };
    let body = FIELDS.list_where(context.state, &prefix, call.query, |field| {
        !ttl_only || field.get("ttlConfig").is_some()
    })?;
    Ok(Reply::Json(body))
}

/// `fields.patch` with `updateMask=ttlConfig`: sets (or, with no `ttlConfig`, removes) the
/// collection group's TTL policy on the field; index settings are not emulated.
pub fn patch_field(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = field_name(call)?;
    let database = database_name(call)?;
    let stored_database = DATABASES.get(context.state, &database)?;
    let body = call.body_or_empty();
    let mask = call.query.non_empty("updateMask").unwrap_or_default();
    if mask.split(',').any(|path| path.trim() != "ttlConfig") {
        return Err(ApiError::invalid_argument(
            "The emulator updates a field's ttlConfig only (updateMask=ttlConfig).",
        ));
    }
    if stored_database["type"] == "DATASTORE_MODE"
        && stored_database["concurrencyMode"] == "OPTIMISTIC_WITH_ENTITY_GROUPS"
    {
        return Err(ApiError::failed_precondition(
            "TTL policies are not supported for databases in OPTIMISTIC_WITH_ENTITY_GROUPS concurrency mode.",
        ));
    }
    let field = match body.get("ttlConfig") {
        Some(_) => {
            let count = super::collection::children(
                &context.state.firestore_fields,
                &format!("{database}/collectionGroups/"),
            )
            .filter(|f| f.get("ttlConfig").is_some())
            .count();
            if count >= 500 && !context.state.firestore_fields.contains_key(&name) {
                return Err(ApiError::failed_precondition(
                    "The database already has the maximum of 500 TTL field configurations.",
                ));
            }
            let field = json!({ "name": name, "ttlConfig": { "state": "ACTIVE" } });
            FIELDS.store(context.state, name.clone(), field.clone());
            field
        }
        None => {
            context.state.firestore_fields.remove(&name);
            json!({ "name": name })
        }
    };
    let metadata = as_any(
        FIELD_METADATA_TYPE_URL,
        &json!({ "field": name, "state": "SUCCESSFUL" }),
    );
    Ok(operation(
        context,
        call,
        &database,
        metadata,
        as_any(FIELD_TYPE_URL, &field),
    ))
}

/// `operations.get` under a database.
pub fn get_operation(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = format!(
        "{}/operations/{}",
        database_name(call)?,
        call.param("operationsId")?
    );
    lro::poll(context, &name, &timestamp(call.now))
        .map(Reply::Json)
        .ok_or_else(|| ApiError::not_found(format!("Operation '{name}' not found.")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_ids_follow_googles_rules() {
        assert!(is_database_id("(default)"));
        assert!(is_database_id("shop-events"));
        assert!(!is_database_id("abc"), "too short");
        assert!(!is_database_id("1shop"), "must start with a letter");
        assert!(!is_database_id("shop-"), "must end with a letter or digit");
        assert!(!is_database_id("Shop"), "lowercase only");
        assert!(!is_database_id("a1234567-89ab-cdef-0123-456789abcdef"));
    }
}
