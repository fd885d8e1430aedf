//! Cloud Run revisions: names, the revision resource built from a template, and
//! `revisions.get/list`.

use serde_json::{Map, Value, json};

use super::condition;
use super::names::{ServiceName, service_not_found};
use crate::apis::collection::quoted_hash;
use crate::apis::{Call, Context, Reply};
use crate::conventions::ApiError;
use crate::conventions::paging::PagePolicy;
use crate::conventions::wire::stable_hash;

pub(super) const REVISIONS_POLICY: PagePolicy = PagePolicy {
    default_size: 100,
    max_size: 1000,
    size_param: "pageSize",
    token_kind: "revisions",
};

pub(super) fn revision_suffix(service: &str, counter: u32, template: &Value) -> String {
    let digest = stable_hash(&[
        "revision",
        service,
        &counter.to_string(),
        &template.to_string(),
    ]);
    digest
        .bytes()
        .take(3)
        .map(|b| char::from(b'a' + b % 26))
        .collect()
}

pub(super) fn build_revision(
    name: &ServiceName,
    revision_name: &str,
    template: &Value,
    now: &str,
) -> Value {
    let mut revision = Map::new();
    revision.insert("name".into(), json!(revision_name));
    revision.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    revision.insert("generation".into(), json!("1"));
    for field in ["labels", "annotations"] {
        if let Some(value) = template.get(field) {
            revision.insert(field.into(), value.clone());
        }
    }
    revision.insert("createTime".into(), json!(now));
    revision.insert("updateTime".into(), json!(now));
    revision.insert("launchStage".into(), json!("GA"));
    revision.insert("service".into(), json!(name.full));
    if let Value::Object(fields) = template {
        for (key, value) in fields {
            if !matches!(
                key.as_str(),
                "revision" | "labels" | "annotations" | "client" | "clientVersion"
            ) {
                revision.insert(key.clone(), value.clone());
            }
        }
    }
    revision.insert("reconciling".into(), json!(true));
    revision.insert(
        "conditions".into(),
        json!([condition("Ready", "CONDITION_RECONCILING", now, None)]),
    );
    revision.insert("observedGeneration".into(), json!("1"));
    revision.insert(
        "etag".into(),
        json!(quoted_hash(&["revision-etag", revision_name], 24)),
    );
    Value::Object(revision)
}

pub fn get_revision(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = ServiceName::from_path(call)?;
    let revision_id = call.param("revisionsId")?;
    let full = name.revision(revision_id);
    context.state.revisions.get(&full).cloned().map(Reply::Json).ok_or_else(|| {
        ApiError::not_found(format!(
            "Resource '{revision_id}' of kind 'REVISION' in region '{}' in project '{}' does not exist.",
            name.location, name.project
        ))
    })
}

pub fn list_revisions(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = ServiceName::from_path(call)?;
    if !context.state.services.contains_key(&name.full) {
        return Err(service_not_found(&name));
    }
    let prefix = format!("{}/revisions/", name.full);
    let revisions: Vec<&Value> =
        crate::apis::collection::children(&context.state.revisions, &prefix).collect();
    crate::apis::collection::named_page(revisions, "revisions", call.query, REVISIONS_POLICY)
}
