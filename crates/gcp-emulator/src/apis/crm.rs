//! A fake CRM (not Google's, and not any one vendor's: a generic customer REST API written from
//! the behaviour CRM REST APIs document, with Stripe's `Idempotency-Key` semantics) at
//! `/crm/customers/{id}`, so `crm-proxy` can run under `stackctl --local` and be tested with
//! nothing else running.
//!
//! What it does: `PUT /crm/customers/{id}` stores the JSON object it is sent (replacing what was
//! there) and answers 200 with it; `GET` answers the stored customer or 404. Both need
//! `Authorization: Bearer KEY` with the fake's key (else 401): the key set with
//! `POST /_emulator/crm/config {"api_key": "..."}`, or, until one is set, the first key a call
//! carries (as the fake Shopify takes its first token). A PUT needs `Content-Type:
//! application/json` (else 415) and a JSON object (else 400). A PUT repeating an
//! `Idempotency-Key` already answered for that customer answers the first answer again (with
//! `Idempotent-Replayed: true`) and writes nothing; keys are kept per customer, for ever.
//!
//! For tests, `POST /_emulator/crm/script {"customer_id": "42", "answers": [{"status": 429,
//! "retry_after": 1}, {"status": 503}, {"delay_ms": 12000}]}` queues answers that the next PUTs
//! of that customer consume, one each, before the normal behaviour: `delay_ms` sleeps first,
//! then `status` (with `Retry-After` when `retry_after` is given) is answered without writing,
//! or, without `status`, the PUT goes on normally. `GET /_emulator/crm/customers` lists the
//! stored customers with their write count and the idempotency keys seen (never the API key).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::conventions::wire::percent_decode;
use crate::emulator::Emulator;
use crate::http::{HttpRequest, HttpResponse};
use crate::lock;
use crate::state::State;

/// Where the fake is served: `/crm/customers/{id}`.
const PREFIX: &str = "/crm/customers/";

/// One customer of the fake CRM: what is stored and what the tests look at.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CustomerRecord {
    /// The customer as last written; `None` until a first PUT (a script may come first).
    pub customer: Option<Value>,
    /// PUTs that stored the customer (not replays, not scripted failures).
    pub writes: u64,
    /// The first answer given to each `Idempotency-Key`.
    pub idempotent_answers: BTreeMap<String, Value>,
    /// Scripted answers the next PUTs consume, first first.
    pub script: VecDeque<ScriptedAnswer>,
}

/// One scripted answer to a PUT.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScriptedAnswer {
    /// Answered instead of storing; `None`: the PUT goes on normally (after `delay_ms`).
    pub status: Option<u16>,
    /// `Retry-After` seconds sent with `status`.
    pub retry_after: Option<u64>,
    /// How long to wait before answering.
    pub delay_ms: Option<u64>,
}

/// Whether `path` is the fake CRM's.
pub fn is_crm_path(path: &str) -> bool {
    path == "/crm" || path.starts_with("/crm/")
}

/// The decoded `{id}` of `/crm/customers/{id}`.
fn customer_id(raw_path: &str) -> Option<String> {
    let raw = raw_path.strip_prefix(PREFIX)?;
    let id = percent_decode(raw);
    (!raw.is_empty() && !raw.contains('/')).then_some(id)
}

fn error(status: u16, message: &str) -> HttpResponse {
    HttpResponse::json(
        status,
        &json!({"error": {"status": status, "message": message}}),
    )
}

fn header<'r>(request: &'r HttpRequest, name: &str) -> Option<&'r str> {
    request
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Checks the bearer key against the fake's (which the first key becomes when none is set).
fn authorize(state: &mut State, request: &HttpRequest) -> Result<(), HttpResponse> {
    let refused = || error(401, "invalid or missing API key");
    let key = header(request, "authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(refused)?;
    match &state.crm_api_key {
        Some(expected) if expected == key => Ok(()),
        Some(_) => Err(refused()),
        None => {
            state.crm_api_key = Some(key.to_string());
            Ok(())
        }
    }
}

pub async fn handle(emulator: &Emulator, request: &HttpRequest) -> HttpResponse {
    let Some(id) = customer_id(&request.raw_path) else {
        return error(
            404,
            "no such resource: the fake CRM serves /crm/customers/{id}",
        );
    };
    match request.method.as_str() {
        "GET" => {
            let mut state = lock(&emulator.state);
            if let Err(refused) = authorize(&mut state, request) {
                return refused;
            }
            match state
                .crm_customers
                .get(&id)
                .and_then(|r| r.customer.clone())
            {
                Some(customer) => HttpResponse::json(200, &customer),
                None => error(404, &format!("no customer {id}")),
            }
        }
        "PUT" => put(emulator, request, id).await,
        _ => error(405, "the fake CRM takes GET and PUT on /crm/customers/{id}"),
    }
}

async fn put(emulator: &Emulator, request: &HttpRequest, id: String) -> HttpResponse {
    let scripted = {
        let mut state = lock(&emulator.state);
        if let Err(refused) = authorize(&mut state, request) {
            return refused;
        }
        let mut record = state.crm_customers.get(&id).cloned().unwrap_or_default();
        let scripted = record.script.pop_front();
        if scripted.is_some() {
            state.crm_customers.insert(id.clone(), record);
        }
        emulator.persist(&state);
        scripted
    };
    if let Some(answer) = scripted {
        if let Some(delay) = answer.delay_ms {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if let Some(status) = answer.status {
            let mut response = error(status, "a scripted answer of the fake CRM");
            if let Some(seconds) = answer.retry_after {
                response
                    .headers
                    .push(("retry-after".into(), seconds.to_string()));
            }
            return response;
        }
    }
    let json_content = header(request, "content-type")
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("application/json"));
    if !json_content {
        return error(415, "expected Content-Type: application/json");
    }
    let customer = match serde_json::from_slice::<Value>(&request.body) {
        Ok(customer @ Value::Object(_)) => customer,
        _ => return error(400, "expected a JSON object"),
    };
    let idempotency_key = header(request, "idempotency-key");
    let mut state = lock(&emulator.state);
    let mut record = state.crm_customers.get(&id).cloned().unwrap_or_default();
    if let Some(first) = idempotency_key.and_then(|k| record.idempotent_answers.get(k)) {
        let mut response = HttpResponse::json(200, first);
        response
            .headers
            .push(("idempotent-replayed".into(), "true".into()));
        return response;
    }
    record.customer = Some(customer.clone());
    record.writes += 1;
    if let Some(key) = idempotency_key {
        record
            .idempotent_answers
            .insert(key.to_string(), customer.clone());
    }
    state.crm_customers.insert(id, record);
    emulator.persist(&state);
    HttpResponse::json(200, &customer)
}

/// `POST /_emulator/crm/config {"api_key": "..."}`: the key the fake accepts from now on.
pub fn configure(state: &mut State, body: &Value) -> Result<Value, String> {
    let key = body["api_key"]
        .as_str()
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or("expected {\"api_key\": \"...\"}")?;
    state.crm_api_key = Some(key.to_string());
    Ok(json!({"configured": true}))
}

/// `POST /_emulator/crm/script {"customer_id": "42", "answers": [{"status": 503}, ...]}`:
/// appends to the answers that customer's next PUTs consume.
pub fn script(state: &mut State, body: &Value) -> Result<Value, String> {
    let id = match &body["customer_id"] {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err("expected {\"customer_id\": \"42\", \"answers\": [...]}".into()),
    };
    let answers: Vec<ScriptedAnswer> = serde_json::from_value(body["answers"].clone())
        .map_err(|e| format!("answers: expected [{{\"status\": 503, \"retry_after\": 1, \"delay_ms\": 100}}, ...]: {e}"))?;
    if let Some(bad) = answers
        .iter()
        .filter_map(|a| a.status)
        .find(|s| !(100..=599).contains(s))
    {
        return Err(format!("answers: {bad} is not an HTTP status"));
    }
    let mut record = state.crm_customers.get(&id).cloned().unwrap_or_default();
    record.script.extend(answers);
    let queued = record.script.len();
    state.crm_customers.insert(id.clone(), record);
    Ok(json!({"customer_id": id, "queued": queued}))
}

/// `GET /_emulator/crm/customers`: each stored customer with its write count, the idempotency
/// keys it was sent and the scripted answers left.
pub fn list(state: &State) -> Value {
    let customers: Vec<Value> = state
        .crm_customers
        .iter()
        .filter(|(_, record)| record.customer.is_some())
        .map(|(id, record)| {
            json!({
                "id": id,
                "customer": record.customer,
                "writes": record.writes,
                "idempotency_keys": record.idempotent_answers.keys().collect::<Vec<_>>(),
                "scripted_answers_left": record.script.len(),
            })
        })
        .collect();
    json!({"customers": customers})
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::Settings;
    use crate::server::testing::TestEmulator;

    const KEY: &str = "crm-test-key";

    async fn put(
        emulator: &TestEmulator,
        id: &str,
        key: &str,
        idempotency_key: Option<&str>,
        body: Value,
    ) -> HttpResponse {
        let authorization = format!("Bearer {key}");
        let mut headers = vec![
            ("authorization", authorization.as_str()),
            ("content-type", "application/json"),
        ];
        if let Some(idempotency_key) = idempotency_key {
            headers.push(("idempotency-key", idempotency_key));
        }
        emulator
            .raw(
                "PUT",
                &format!("/crm/customers/{id}"),
                serde_json::to_vec(&body).unwrap(),
                &headers,
            )
            .await
    }

    fn body(response: &HttpResponse) -> Value {
        serde_json::from_slice(&response.body).unwrap_or(Value::Null)
    }

    fn header_of<'r>(response: &'r HttpResponse, name: &str) -> Option<&'r str> {
        response
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    async fn configured() -> TestEmulator {
        let emulator = TestEmulator::new(Settings::default());
        let (status, _) = emulator
            .send(
                "POST",
                "/_emulator/crm/config",
                Some(json!({"api_key": KEY})),
            )
            .await;
        assert_eq!(status, 200);
        emulator
    }

    #[tokio::test]
    async fn a_put_needs_the_key_and_a_replayed_idempotency_key_writes_nothing() {
        let emulator = configured().await;
        let customer = json!({"id": 42, "email": "a@example.com"});
        let refused = put(&emulator, "42", "wrong", Some("wh-1"), customer.clone()).await;
        assert_eq!(refused.status, 401);
        let unauthenticated = emulator
            .raw("GET", "/crm/customers/42", Vec::new(), &[])
            .await;
        assert_eq!(unauthenticated.status, 401);

        let stored = put(&emulator, "42", KEY, Some("wh-1"), customer.clone()).await;
        assert_eq!(stored.status, 200);
        assert_eq!(body(&stored), customer);
        let changed = json!({"id": 42, "email": "b@example.com"});
        let replayed = put(&emulator, "42", KEY, Some("wh-1"), changed.clone()).await;
        assert_eq!(replayed.status, 200);
        assert_eq!(body(&replayed), customer, "the first answer again");
        assert_eq!(header_of(&replayed, "idempotent-replayed"), Some("true"));

        let (_, listed) = emulator.send("GET", "/_emulator/crm/customers", None).await;
        assert_eq!(listed["customers"][0]["id"], "42");
        assert_eq!(listed["customers"][0]["writes"], 1);
        assert_eq!(listed["customers"][0]["idempotency_keys"], json!(["wh-1"]));
        assert!(!listed.to_string().contains(KEY), "never the API key");

        let second = put(&emulator, "42", KEY, Some("wh-2"), changed.clone()).await;
        assert_eq!(second.status, 200);
        let authorization = format!("Bearer {KEY}");
        let got = emulator
            .raw(
                "GET",
                "/crm/customers/42",
                Vec::new(),
                &[("authorization", &authorization)],
            )
            .await;
        assert_eq!((got.status, body(&got)), (200, changed));
        let missing = emulator
            .raw(
                "GET",
                "/crm/customers/43",
                Vec::new(),
                &[("authorization", &authorization)],
            )
            .await;
        assert_eq!(missing.status, 404);
    }

    #[tokio::test]
    async fn scripted_answers_come_first_one_per_put_then_the_normal_behaviour() {
        let emulator = configured().await;
        let (status, _) = emulator
            .send(
                "POST",
                "/_emulator/crm/script",
                Some(json!({"customer_id": 7, "answers": [
                    {"status": 429, "retry_after": 1},
                    {"status": 503},
                    {"delay_ms": 60},
                ]})),
            )
            .await;
        assert_eq!(status, 200);
        let customer = json!({"id": 7});
        let throttled = put(&emulator, "7", KEY, None, customer.clone()).await;
        assert_eq!(throttled.status, 429);
        assert_eq!(header_of(&throttled, "retry-after"), Some("1"));
        let unavailable = put(&emulator, "7", KEY, None, customer.clone()).await;
        assert_eq!(unavailable.status, 503);
        let started = Instant::now();
        let delayed = put(&emulator, "7", KEY, None, customer.clone()).await;
        assert_eq!(delayed.status, 200);
        assert!(started.elapsed() >= Duration::from_millis(60));
        let normal = put(&emulator, "7", KEY, None, customer).await;
        assert_eq!(normal.status, 200);
        let (_, listed) = emulator.send("GET", "/_emulator/crm/customers", None).await;
        assert_eq!(
            listed["customers"][0]["writes"], 2,
            "scripted failures write nothing"
        );
        assert_eq!(listed["customers"][0]["scripted_answers_left"], 0);

        let (status, _) = emulator
            .send(
                "POST",
                "/_emulator/crm/script",
                Some(json!({"customer_id": "7", "answers": [{"stauts": 500}]})),
            )
            .await;
        assert_eq!(status, 400, "a misspelt field is refused");
    }

    #[tokio::test]
    async fn without_a_configured_key_the_first_one_used_becomes_the_key() {
        let emulator = TestEmulator::new(Settings::default());
        let first = put(&emulator, "1", "local-key", None, json!({"id": 1})).await;
        assert_eq!(first.status, 200);
        let other = put(&emulator, "1", "another-key", None, json!({"id": 1})).await;
        assert_eq!(other.status, 401);
    }

    #[tokio::test]
    async fn a_put_needs_a_json_object_sent_as_json() {
        let emulator = configured().await;
        let authorization = format!("Bearer {KEY}");
        let not_json_type = emulator
            .raw(
                "PUT",
                "/crm/customers/1",
                b"{\"id\": 1}".to_vec(),
                &[("authorization", &authorization)],
            )
            .await;
        assert_eq!(not_json_type.status, 415);
        let not_an_object = put(&emulator, "1", KEY, None, json!([1])).await;
        assert_eq!(not_an_object.status, 400);
        let (_, listed) = emulator.send("GET", "/_emulator/crm/customers", None).await;
        assert_eq!(listed["customers"], json!([]));
    }

    #[test]
    fn customer_ids_are_decoded_from_one_path_segment() {
        assert_eq!(
            customer_id("/crm/customers/a%2Fb%20c").as_deref(),
            Some("a/b c")
        );
        assert_eq!(customer_id("/crm/customers/"), None);
        assert_eq!(customer_id("/crm/customers/1/notes"), None);
        assert_eq!(customer_id("/crm/other/1"), None);
    }
}
