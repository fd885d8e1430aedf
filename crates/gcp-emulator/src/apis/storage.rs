//! Cloud Storage JSON API subset for stackctl's ownership ledger and apply lock: buckets
//! (insert/get) and objects (media/multipart upload with generation preconditions, metadata and
//! media reads, prefix listing, conditional delete).

use serde_json::{Map, Value, json};

use super::{Call, Context, Reply, project_number};
use crate::conventions::ApiError;
use crate::conventions::paging::{PagePolicy, paginate};
use crate::conventions::wire::{base64, crc32c, md5, timestamp};
use crate::state::StoredObject;

const OBJECTS_POLICY: PagePolicy = PagePolicy {
    default_size: 1000,
    max_size: 1000,
    size_param: "maxResults",
    token_kind: "objects",
};
const PRECONDITION_FAILED: &str = "At least one of the pre-conditions you specified did not hold.";
const API_BASE: &str = "https://www.googleapis.com/storage/v1";

fn bucket_not_found() -> ApiError {
    ApiError::not_found("The specified bucket does not exist.").with_storage_reason("notFound")
}

fn object_not_found(bucket: &str, object: &str) -> ApiError {
    ApiError::not_found(format!("No such object: {bucket}/{object}"))
        .with_storage_reason("notFound")
}

fn precondition_failed() -> ApiError {
    ApiError::failed_precondition(PRECONDITION_FAILED)
        .with_http_status(412)
        .with_storage_reason("conditionNotMet")
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid_argument(message).with_storage_reason("invalid")
}

fn encode_object_name(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn validate_bucket_name(name: &str) -> Result<(), ApiError> {
    let valid = (3..=63).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(invalid(format!("Invalid bucket name: '{name}'")))
    }
}

pub fn insert_bucket(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let project = call
        .query
        .non_empty("project")
        .ok_or_else(|| invalid("Required parameter: project").with_storage_reason("required"))?;
    let body = call.body_or_empty();
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if name.is_empty() {
        return Err(invalid("Required field: name").with_storage_reason("required"));
    }
    validate_bucket_name(&name)?;
    if context.state.buckets.contains_key(&name) {
        return Err(ApiError::already_exists(
            "Your previous request to create the named bucket succeeded and you already own it.",
        )
        .with_http_status(409)
        .with_storage_reason("conflict"));
    }
    let now = timestamp(call.now);
    let location = body
        .get("location")
        .and_then(Value::as_str)
        .unwrap_or("US")
        .to_ascii_uppercase();
    let location_type = if matches!(location.as_str(), "US" | "EU" | "ASIA") {
        "multi-region"
    } else {
        "region"
    };
    let mut bucket = Map::new();
    bucket.insert("kind".into(), json!("storage#bucket"));
    bucket.insert("selfLink".into(), json!(format!("{API_BASE}/b/{name}")));
    bucket.insert("id".into(), json!(name));
    bucket.insert("name".into(), json!(name));
    bucket.insert("projectNumber".into(), json!(project_number(project)));
    bucket.insert("metageneration".into(), json!("1"));
    bucket.insert("location".into(), json!(location));
    bucket.insert(
        "storageClass".into(),
        json!(
            body.get("storageClass")
                .and_then(Value::as_str)
                .unwrap_or("STANDARD")
        ),
    );
    bucket.insert("etag".into(), json!("CAE="));
    bucket.insert("timeCreated".into(), json!(now));
    bucket.insert("updated".into(), json!(now));
    for passthrough in ["labels", "versioning", "lifecycle", "iamConfiguration"] {
        if let Some(value) = body.get(passthrough) {
            bucket.insert(passthrough.into(), value.clone());
        }
    }
    bucket.insert("locationType".into(), json!(location_type));
    bucket.insert("rpo".into(), json!("DEFAULT"));
    let bucket = Value::Object(bucket);
    context.state.buckets.insert(name, bucket.clone());
    Ok(Reply::Json(bucket))
}

pub fn get_bucket(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = call.param("bucket")?;
    context
        .state
        .buckets
        .get(name)
        .cloned()
        .map(Reply::Json)
        .ok_or_else(bucket_not_found)
}

fn parse_i64(call: &Call<'_>, name: &str) -> Result<Option<i64>, ApiError> {
    match call.query.non_empty(name) {
        None => Ok(None),
        Some(raw) => raw
            .parse()
            .map(Some)
            .map_err(|_| invalid(format!("Invalid argument for {name}: '{raw}'"))),
    }
}

fn generation_of(object: Option<&StoredObject>, field: &str) -> i64 {
    object
        .and_then(|o| o.metadata.get(field))
        .and_then(Value::as_str)
        .and_then(|g| g.parse().ok())
        .unwrap_or(0)
}

/// Checks `ifGenerationMatch` (0 = must not exist), `ifGenerationNotMatch`,
/// `ifMetagenerationMatch` and `ifMetagenerationNotMatch` against the live object.
fn check_preconditions(call: &Call<'_>, current: Option<&StoredObject>) -> Result<(), ApiError> {
    let generation = generation_of(current, "generation");
    let metageneration = generation_of(current, "metageneration");
    if let Some(expected) = parse_i64(call, "ifGenerationMatch")?
        && expected != generation
    {
        return Err(precondition_failed());
    }
    if let Some(unexpected) = parse_i64(call, "ifGenerationNotMatch")?
        && unexpected == generation
    {
        return Err(if current.is_some() {
            ApiError::new(crate::conventions::Code::FailedPrecondition, "Not Modified")
                .with_http_status(304)
        } else {
            precondition_failed()
        });
    }
    if let Some(expected) = parse_i64(call, "ifMetagenerationMatch")?
        && expected != metageneration
    {
        return Err(precondition_failed());
    }
    if let Some(unexpected) = parse_i64(call, "ifMetagenerationNotMatch")?
        && unexpected == metageneration
    {
        return Err(precondition_failed());
    }
    Ok(())
}

fn header<'a>(call: &'a Call<'_>, name: &str) -> Option<&'a str> {
    call.headers.get(name).and_then(|v| v.to_str().ok())
}

pub fn insert_object(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let bucket = call.param("bucket")?.to_string();
    if !context.state.buckets.contains_key(&bucket) {
        return Err(bucket_not_found());
    }
    let request_type = header(call, "content-type").map(str::to_string);
    let (metadata, content_type, content) = if call.route.is_media_upload {
        match call.query.non_empty("uploadType").unwrap_or("media") {
            "media" => (json!({}), request_type, call.raw_body.to_vec()),
            "multipart" => crate::conventions::upload::split_multipart(
                request_type.as_deref().unwrap_or(""),
                call.raw_body,
            )?,
            other => {
                return Err(ApiError::unimplemented(format!(
                    "uploadType={other} is not emulated; use media or multipart."
                )));
            }
        }
    } else {
        (call.body_or_empty(), None, Vec::new())
    };
    let name = call
        .query
        .non_empty("name")
        .map(str::to_string)
        .or_else(|| {
            metadata
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid("Required parameter: name").with_storage_reason("required"))?;
    let current = context
        .state
        .objects
        .get(&bucket)
        .and_then(|objects| objects.get(&name));
    check_preconditions(call, current)?;
    let now_micros = call.now.timestamp_micros();
    let generation = now_micros.max(context.state.last_object_generation + 1);
    context.state.last_object_generation = generation;
    let now = timestamp(call.now);
    let encoded = encode_object_name(&name);
    let content_type = metadata
        .get("contentType")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or(content_type)
        .unwrap_or_else(|| "application/octet-stream".to_string());
    let mut etag_bytes = generation.to_be_bytes().to_vec();
    etag_bytes.push(1);
    let mut object = Map::new();
    object.insert("kind".into(), json!("storage#object"));
    object.insert("id".into(), json!(format!("{bucket}/{name}/{generation}")));
    object.insert(
        "selfLink".into(),
        json!(format!("{API_BASE}/b/{bucket}/o/{encoded}")),
    );
    object.insert(
        "mediaLink".into(),
        json!(format!("https://storage.googleapis.com/download/storage/v1/b/{bucket}/o/{encoded}?generation={generation}&alt=media")),
    );
    object.insert("name".into(), json!(name));
    object.insert("bucket".into(), json!(bucket));
    object.insert("generation".into(), json!(generation.to_string()));
    object.insert("metageneration".into(), json!("1"));
    object.insert("contentType".into(), json!(content_type));
    object.insert("storageClass".into(), json!("STANDARD"));
    object.insert("size".into(), json!(content.len().to_string()));
    object.insert("md5Hash".into(), json!(base64(&md5(&content))));
    object.insert(
        "crc32c".into(),
        json!(base64(&crc32c(&content).to_be_bytes())),
    );
    object.insert("etag".into(), json!(base64(&etag_bytes)));
    object.insert("timeCreated".into(), json!(now));
    object.insert("updated".into(), json!(now));
    object.insert("timeStorageClassUpdated".into(), json!(now));
    if let Some(custom) = metadata.get("metadata").filter(|m| m.is_object()) {
        object.insert("metadata".into(), custom.clone());
    }
    let object = Value::Object(object);
    context.state.objects.entry(bucket).or_default().insert(
        name,
        StoredObject {
            metadata: object.clone(),
            content_hex: hex::encode(&content),
        },
    );
    Ok(Reply::Json(object))
}

fn live_object<'s>(
    context: &'s Context<'_>,
    call: &Call<'_>,
) -> Result<&'s StoredObject, ApiError> {
    let bucket = call.param("bucket")?;
    let name = call.param("object")?;
    if !context.state.buckets.contains_key(bucket) {
        return Err(bucket_not_found());
    }
    let object = context
        .state
        .objects
        .get(bucket)
        .and_then(|o| o.get(name))
        .ok_or_else(|| object_not_found(bucket, name))?;
    if let Some(generation) = parse_i64(call, "generation")?
        && generation != generation_of(Some(object), "generation")
    {
        return Err(object_not_found(bucket, name));
    }
    Ok(object)
}

pub fn get_object(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let object = live_object(context, call)?;
    check_preconditions(call, Some(object))?;
    if call.query.get("alt") != Some("media") {
        return Ok(Reply::Json(object.metadata.clone()));
    }
    let bytes = hex::decode(&object.content_hex)
        .map_err(|e| ApiError::internal(format!("corrupt stored object: {e}")))?;
    let field = |name: &str| {
        object
            .metadata
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let headers = vec![
        ("content-type".to_string(), field("contentType")),
        ("x-goog-generation".to_string(), field("generation")),
        ("x-goog-metageneration".to_string(), field("metageneration")),
        ("x-goog-stored-content-length".to_string(), field("size")),
        (
            "x-goog-hash".to_string(),
            format!("crc32c={},md5={}", field("crc32c"), field("md5Hash")),
        ),
        ("x-goog-storage-class".to_string(), field("storageClass")),
        ("etag".to_string(), field("etag")),
    ];
    Ok(Reply::Media { bytes, headers })
}

pub fn list_objects(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let bucket = call.param("bucket")?;
    if !context.state.buckets.contains_key(bucket) {
        return Err(bucket_not_found());
    }
    let prefix = call.query.get("prefix").unwrap_or("");
    let delimiter = call.query.non_empty("delimiter");
    let mut entries: Vec<(String, Option<&Value>)> = Vec::new();
    if let Some(objects) = context.state.objects.get(bucket) {
        for (name, object) in objects
            .range(prefix.to_string()..)
            .take_while(|(name, _)| name.starts_with(prefix))
        {
            let rest = &name[prefix.len()..];
            match delimiter.and_then(|d| rest.find(d).map(|i| (i, d))) {
                Some((index, d)) => {
                    let collapsed = format!("{prefix}{}", &rest[..index + d.len()]);
                    if entries.last().map(|(key, _)| key) != Some(&collapsed) {
                        entries.push((collapsed, None));
                    }
                }
                None => entries.push((name.clone(), Some(&object.metadata))),
            }
        }
    }
    let page = paginate(entries, |(key, _)| key.as_str(), call.query, OBJECTS_POLICY)?;
    let mut response = json!({ "kind": "storage#objects" });
    let (items, prefixes): (Vec<_>, Vec<_>) = page
        .items
        .into_iter()
        .partition(|(_, object)| object.is_some());
    if let Some(token) = page.next_page_token {
        response["nextPageToken"] = json!(token);
    }
    if !prefixes.is_empty() {
        response["prefixes"] = json!(prefixes.into_iter().map(|(key, _)| key).collect::<Vec<_>>());
    }
    if !items.is_empty() {
        response["items"] = json!(
            items
                .into_iter()
                .filter_map(|(_, object)| object.cloned())
                .collect::<Vec<_>>()
        );
    }
    Ok(Reply::Json(response))
}

pub fn delete_object(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let object = live_object(context, call)?;
    check_preconditions(call, Some(object))?;
    let bucket = call.param("bucket")?;
    let name = call.param("object")?;
    if let Some(objects) = context.state.objects.get_mut(bucket) {
        objects.remove(name);
    }
    Ok(Reply::NoContent)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::server::testing::TestEmulator;

    async fn upload(emulator: &TestEmulator, query: &str, body: &str) -> (u16, serde_json::Value) {
        let response = emulator
            .raw(
                "POST",
                &format!("/upload/storage/v1/b/ledger/o?uploadType=media&{query}"),
                body.as_bytes().to_vec(),
                &[("content-type", "application/json")],
            )
            .await;
        (
            response.status,
            serde_json::from_slice(&response.body).unwrap_or_default(),
        )
    }

    #[tokio::test]
    async fn generation_preconditions_guard_the_lock_object() {
        let emulator = TestEmulator::with_polls(0);
        let (status, bucket) = emulator
            .send(
                "POST",
                "/storage/v1/b?project=p1",
                Some(json!({"name": "ledger"})),
            )
            .await;
        assert_eq!(status, 200, "{bucket}");
        let (status, _) = emulator
            .send(
                "POST",
                "/storage/v1/b?project=p1",
                Some(json!({"name": "ledger"})),
            )
            .await;
        assert_eq!(status, 409);

        let (status, first) = upload(
            &emulator,
            "name=locks%2Fapply&ifGenerationMatch=0",
            "{\"holder\":\"a\"}",
        )
        .await;
        assert_eq!(status, 200, "{first}");
        assert_eq!(first["size"], "14");
        assert_eq!(first["contentType"], "application/json");
        let (status, error) =
            upload(&emulator, "name=locks%2Fapply&ifGenerationMatch=0", "{}").await;
        assert_eq!(status, 412);
        assert_eq!(error["error"]["errors"][0]["reason"], "conditionNotMet");
        assert_eq!(error["error"]["errors"][0]["domain"], "global");

        let generation = first["generation"].as_str().unwrap_or("").to_string();
        let (status, second) = upload(
            &emulator,
            &format!("name=locks%2Fapply&ifGenerationMatch={generation}"),
            "{}",
        )
        .await;
        assert_eq!(status, 200);
        let second_generation: i64 = second["generation"]
            .as_str()
            .and_then(|g| g.parse().ok())
            .unwrap_or(0);
        assert!(second_generation > generation.parse::<i64>().unwrap_or(0));

        let media = emulator
            .raw(
                "GET",
                "/storage/v1/b/ledger/o/locks%2Fapply?alt=media",
                Vec::new(),
                &[],
            )
            .await;
        assert_eq!(media.body, b"{}");
        assert!(
            media
                .headers
                .iter()
                .any(|(k, v)| k == "x-goog-generation" && *v == second_generation.to_string())
        );
        let (_, metadata) = emulator
            .send("GET", "/storage/v1/b/ledger/o/locks%2Fapply", None)
            .await;
        assert_eq!(metadata["md5Hash"], "mZFLkyvTelC5g8XnyQrpOw==");

        upload(&emulator, "name=owners%2Fq1", "x").await;
        let (_, listed) = emulator
            .send("GET", "/storage/v1/b/ledger/o?prefix=locks%2F", None)
            .await;
        assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
        let (_, folders) = emulator
            .send("GET", "/storage/v1/b/ledger/o?delimiter=%2F", None)
            .await;
        assert_eq!(folders["prefixes"], json!(["locks/", "owners/"]));

        let stale = emulator
            .raw(
                "DELETE",
                &format!("/storage/v1/b/ledger/o/locks%2Fapply?ifGenerationMatch={generation}"),
                Vec::new(),
                &[],
            )
            .await;
        assert_eq!(stale.status, 412);
        let deleted = emulator
            .raw(
                "DELETE",
                &format!(
                    "/storage/v1/b/ledger/o/locks%2Fapply?ifGenerationMatch={second_generation}"
                ),
                Vec::new(),
                &[],
            )
            .await;
        assert_eq!(deleted.status, 204);
        let (status, missing) = emulator
            .send("GET", "/storage/v1/b/ledger/o/locks%2Fapply", None)
            .await;
        assert_eq!(status, 404);
        assert_eq!(missing["error"]["errors"][0]["reason"], "notFound");
    }

    #[tokio::test]
    async fn multipart_uploads_carry_metadata() {
        let emulator = TestEmulator::with_polls(0);
        emulator
            .send(
                "POST",
                "/storage/v1/b?project=p1",
                Some(json!({"name": "bkt"})),
            )
            .await;
        let body = "--XX\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{\"name\":\"a.txt\",\"metadata\":{\"k\":\"v\"}}\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XX--\r\n";
        let response = emulator
            .raw(
                "POST",
                "/upload/storage/v1/b/bkt/o?uploadType=multipart",
                body.as_bytes().to_vec(),
                &[("content-type", "multipart/related; boundary=XX")],
            )
            .await;
        assert_eq!(response.status, 200);
        let object: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_default();
        assert_eq!(object["name"], "a.txt");
        assert_eq!(object["size"], "5");
        assert_eq!(object["contentType"], "text/plain");
        assert_eq!(object["metadata"]["k"], "v");
    }
}
