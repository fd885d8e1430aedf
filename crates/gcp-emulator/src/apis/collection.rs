//! Collections of resources kept by full name in the state: prefix scans, name-ordered pages,
//! the get/create/list/update/delete steps collection-style APIs share ([`Collection`]), field
//! order, ids and etags.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::Reply;
use crate::conventions::paging::{Page, PagePolicy, paginate};
use crate::conventions::wire::stable_hash;
use crate::conventions::{ApiError, Query};
use crate::state::State;
use crate::tracked::Tracked;

/// The stored entries whose keys start with `prefix` (one parent's children), in key order.
pub fn entries_under<'a, T>(
    map: &'a BTreeMap<String, T>,
    prefix: &'a str,
) -> impl Iterator<Item = (&'a String, &'a T)> + 'a {
    map.range(prefix.to_string()..)
        .take_while(move |(key, _)| key.starts_with(prefix))
}

/// The values of [`entries_under`].
pub fn children<'a, T>(
    map: &'a BTreeMap<String, T>,
    prefix: &'a str,
) -> impl Iterator<Item = &'a T> + 'a {
    entries_under(map, prefix).map(|(_, value)| value)
}

/// Forgets every entry under `prefix` (a deleted parent's children).
pub fn remove_under<T>(map: &mut Tracked<T>, prefix: &str) {
    let children: Vec<String> = map
        .range(prefix.to_string()..)
        .map(|(key, _)| key)
        .take_while(|key| key.starts_with(prefix))
        .cloned()
        .collect();
    for key in children {
        map.remove(&key);
    }
}

/// One page of resources ordered and paged by their `name`, answered as a list method does.
pub fn named_page(
    items: Vec<&Value>,
    field: &str,
    query: &Query,
    policy: PagePolicy,
) -> Result<Reply, ApiError> {
    named_list(items, field, query, policy).map(Reply::Json)
}

/// The body of [`named_page`], for lists that add fields of their own (`totalSize`).
pub fn named_list(
    items: Vec<&Value>,
    field: &str,
    query: &Query,
    policy: PagePolicy,
) -> Result<Value, ApiError> {
    let page = paginate(
        items,
        |item| item.get("name").and_then(Value::as_str).unwrap_or_default(),
        query,
        policy,
    )?;
    Ok(list_response(field, page))
}

/// `{"<field>": [items], "nextPageToken": ...}` for one page of a list method.
pub fn list_response<T: serde::Serialize>(field: &str, page: Page<T>) -> Value {
    let mut response = serde_json::Map::new();
    response.insert(
        field.to_string(),
        serde_json::to_value(page.items).unwrap_or(Value::Array(Vec::new())),
    );
    if let Some(token) = page.next_page_token {
        response.insert("nextPageToken".into(), Value::String(token));
    }
    Value::Object(response)
}

/// Orders a resource's fields as `order` lists them (proto field-number order, the order real
/// responses use); fields not listed follow.
pub fn ordered(mut fields: Map<String, Value>, order: &[&str]) -> Value {
    let mut out = Map::new();
    for field in order {
        if let Some(value) = fields.remove(*field) {
            out.insert((*field).to_string(), value);
        }
    }
    out.extend(fields);
    Value::Object(out)
}

/// A resource etag: `"` + the first `len` hex digits of a stable hash of `parts` + `"`.
pub fn quoted_hash(parts: &[&str], len: usize) -> String {
    format!("\"{}\"", &stable_hash(parts)[..len])
}

/// The client-settable part of a request body: everything but its `name`.
pub fn without_name(body: &Value) -> Map<String, Value> {
    let mut fields = body.as_object().cloned().unwrap_or_default();
    fields.remove("name");
    fields
}

/// Refuses a body whose non-empty `name` is not the URL's: `<what> "<sent>" does not match the
/// URL "<name>".`
pub fn check_body_name(body: &Value, name: &str, what: &str) -> Result<(), ApiError> {
    match body
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        Some(sent) if sent != name => Err(ApiError::invalid_argument(format!(
            "{what} \"{sent}\" does not match the URL \"{name}\"."
        ))),
        _ => Ok(()),
    }
}

/// A DNS-label-like id: 1 to `max` lowercase letters, digits or hyphens, starting with a letter
/// and not ending with a hyphen (Cloud Run services and jobs, Artifact Registry repositories).
pub fn is_label_id(id: &str, max: usize) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= max
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.last() != Some(&b'-')
}

/// 1 to `max` ASCII letters, digits, hyphens, and the `extra` bytes (`_` for Scheduler jobs and
/// secrets).
pub fn is_word_id(id: &str, max: usize, extra: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= max
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || extra.contains(&b))
}

/// One collection of resources kept as wire JSON by full name: where the state holds it, how a
/// missing one is answered, and how its list method pages.
pub struct Collection {
    /// The list response's field (`queues`).
    pub field: &'static str,
    pub policy: PagePolicy,
    pub map: fn(&State) -> &BTreeMap<String, Value>,
    pub map_mut: fn(&mut State) -> &mut Tracked<Value>,
    /// The NOT_FOUND error for a name.
    pub not_found: fn(&str) -> ApiError,
}

impl Collection {
    pub fn contains(&self, state: &State, name: &str) -> bool {
        (self.map)(state).contains_key(name)
    }

    /// Fails with the collection's NOT_FOUND unless `name` exists.
    pub fn require(&self, state: &State, name: &str) -> Result<(), ApiError> {
        if self.contains(state, name) {
            Ok(())
        } else {
            Err((self.not_found)(name))
        }
    }

    /// The stored resource.
    pub fn get(&self, state: &State, name: &str) -> Result<Value, ApiError> {
        (self.map)(state)
            .get(name)
            .cloned()
            .ok_or_else(|| (self.not_found)(name))
    }

    /// Stores `resource` under `name` and answers it.
    pub fn store(&self, state: &mut State, name: String, resource: Value) -> Reply {
        (self.map_mut)(state).insert(name, resource.clone());
        Reply::Json(resource)
    }

    /// Removes and returns the stored resource.
    pub fn remove(&self, state: &mut State, name: &str) -> Result<Value, ApiError> {
        (self.map_mut)(state)
            .remove(name)
            .ok_or_else(|| (self.not_found)(name))
    }

    /// Changes the stored resource's fields in place and answers it.
    pub fn update(
        &self,
        state: &mut State,
        name: &str,
        change: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<Reply, ApiError> {
        let resource = (self.map_mut)(state)
            .get_mut(name)
            .ok_or_else(|| (self.not_found)(name))?;
        if let Value::Object(fields) = resource {
            change(fields);
        }
        Ok(Reply::Json(resource.clone()))
    }

    /// One page of the resources under `prefix` that `keep` accepts.
    pub fn list_where(
        &self,
        state: &State,
        prefix: &str,
        query: &Query,
        keep: impl Fn(&Value) -> bool,
    ) -> Result<Value, ApiError> {
        let items: Vec<&Value> = children((self.map)(state), prefix)
            .filter(|item| keep(item))
            .collect();
        named_list(items, self.field, query, self.policy)
    }

    /// One page of the resources under `prefix`, as the list method answers.
    pub fn list(&self, state: &State, prefix: &str, query: &Query) -> Result<Reply, ApiError> {
        self.list_where(state, prefix, query, |_| true)
            .map(Reply::Json)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ids_and_body_names_are_checked_like_the_apis_do() {
        assert!(is_label_id("web-1", 49));
        assert!(!is_label_id("1web", 49));
        assert!(!is_label_id("web-", 49));
        assert!(!is_label_id(&"a".repeat(50), 49));
        assert!(is_word_id("a_b-C", 500, b"_"));
        assert!(!is_word_id("a_b", 100, b""));
        assert!(check_body_name(&json!({"name": ""}), "n", "Queue.name").is_ok());
        let error = check_body_name(&json!({"name": "m"}), "n", "Queue.name").unwrap_err();
        assert_eq!(
            error.message,
            "Queue.name \"m\" does not match the URL \"n\"."
        );
        assert_eq!(quoted_hash(&["x"], 4).len(), 6);
    }
}
