//! The `/_emulator/*` admin surface: health, request log, reset, fault rules, and the seeding
//! endpoints (BigQuery jobs and table storage, service ages, Monitoring series, Docker images,
//! catalog prices, the fake Shopify's shops and webhook subscriptions, the fake CRM's key, scripted
//! answers and customers). Never faulted,
//! never recorded in the request log.

use serde_json::{Value, json};

use crate::conventions::{ApiError, ErrorStyle};
use crate::emulator::Emulator;
use crate::faults::FaultPlan;
use crate::http::{HttpRequest, HttpResponse};
use crate::lock;
use crate::state::State;

/// Applies a seeding endpoint's JSON body to the state and persists it.
fn seed(
    emulator: &Emulator,
    request: &HttpRequest,
    apply: impl FnOnce(&mut State, &Value) -> Result<Value, String>,
) -> HttpResponse {
    let body: Value = match serde_json::from_slice(&request.body) {
        Ok(body) => body,
        Err(error) => {
            return HttpResponse::error(
                &ApiError::invalid_argument(format!("Invalid JSON: {error}")),
                ErrorStyle::Proto,
            );
        }
    };
    let mut state = lock(&emulator.state);
    match apply(&mut state, &body) {
        Ok(answer) => {
            emulator.persist(&state);
            HttpResponse::json(200, &answer)
        }
        Err(reason) => HttpResponse::error(&ApiError::invalid_argument(reason), ErrorStyle::Proto),
    }
}

pub fn handle(emulator: &Emulator, request: &HttpRequest) -> HttpResponse {
    let path = request.raw_path.trim_end_matches('/');
    match (request.method.as_str(), path) {
        ("GET", "/_emulator/health") => HttpResponse::json(200, &json!({"status": "ok"})),
        // An ID token from the local issuer, for calling a service's front by hand:
        // `curl -H "Authorization: Bearer $(curl -s 'URL/_emulator/id-token?email=E&audience=A')"`.
        ("GET", "/_emulator/id-token") => {
            let query = crate::conventions::Query::parse(request.raw_query.as_deref());
            match (query.non_empty("email"), query.non_empty("audience")) {
                (Some(email), Some(audience)) => HttpResponse::text(
                    200,
                    &emulator.runtime.identity.id_token(
                        email,
                        audience,
                        emulator.runtime.clock.now(),
                    ),
                ),
                _ => HttpResponse::error(
                    &ApiError::invalid_argument("expected ?email=SERVICE_ACCOUNT&audience=URL"),
                    ErrorStyle::Proto,
                ),
            }
        }
        // An access token naming a service account, as the local metadata server hands to a
        // process: the emulator then checks that caller's IAM (Cloud Tasks' create and actAs).
        ("GET", "/_emulator/access-token") => {
            let query = crate::conventions::Query::parse(request.raw_query.as_deref());
            match query.non_empty("email") {
                Some(email) => {
                    HttpResponse::text(200, &emulator.runtime.identity.access_token(email))
                }
                None => HttpResponse::error(
                    &ApiError::invalid_argument("expected ?email=SERVICE_ACCOUNT"),
                    ErrorStyle::Proto,
                ),
            }
        }
        ("GET", "/_emulator/clock") => HttpResponse::json(
            200,
            &json!({"now": emulator.runtime.clock.now().to_rfc3339()}),
        ),
        // `{"advance_seconds": N}`: moves the one clock forward and wakes every timer.
        ("POST", "/_emulator/clock") => {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            match body["advance_seconds"].as_f64().filter(|s| *s >= 0.0) {
                Some(seconds) => {
                    emulator
                        .runtime
                        .clock
                        .advance(std::time::Duration::from_secs_f64(seconds));
                    HttpResponse::json(
                        200,
                        &json!({"now": emulator.runtime.clock.now().to_rfc3339()}),
                    )
                }
                None => HttpResponse::error(
                    &ApiError::invalid_argument("expected {\"advance_seconds\": N} with N >= 0"),
                    ErrorStyle::Proto,
                ),
            }
        }
        ("GET", "/_emulator/requests") => {
            let records = lock(&emulator.requests).clone();
            HttpResponse::json(200, &serde_json::to_value(records).unwrap_or(Value::Null))
        }
        ("DELETE", "/_emulator/requests") => {
            lock(&emulator.requests).clear();
            HttpResponse::json(200, &json!({}))
        }
        ("POST", "/_emulator/reset") => {
            let mut state = lock(&emulator.state);
            *state = State::empty();
            if let Err(error) = emulator.table_rows.clear() {
                tracing::error!(%error, "cannot remove BigQuery rows");
            }
            emulator.persist(&state);
            HttpResponse::json(200, &json!({}))
        }
        ("GET", "/_emulator/faults") => {
            let plan = lock(&emulator.faults).plan().clone();
            HttpResponse::json(200, &serde_json::to_value(plan).unwrap_or(Value::Null))
        }
        ("POST", "/_emulator/faults") => match serde_json::from_slice::<FaultPlan>(&request.body) {
            Ok(plan) => {
                lock(&emulator.faults).replace(plan.clone());
                HttpResponse::json(200, &serde_json::to_value(plan).unwrap_or(Value::Null))
            }
            Err(error) => HttpResponse::error(
                &ApiError::invalid_argument(format!("Invalid fault plan: {error}")),
                ErrorStyle::Proto,
            ),
        },
        ("POST", "/_emulator/bigquery/jobs") => seed(emulator, request, |state, body| {
            crate::apis::bigquery::seed_jobs(state, body).map(|n| json!({"jobs": n}))
        }),
        ("POST", "/_emulator/bigquery/tables") => seed(emulator, request, |state, body| {
            crate::apis::bigquery::seed_table_storage(state, body).map(|n| json!({"tables": n}))
        }),
        ("POST", "/_emulator/run/services") => {
            seed(emulator, request, crate::apis::run::seed_service_age)
        }
        ("POST", "/_emulator/monitoring/timeseries") => {
            seed(emulator, request, crate::apis::monitoring::seed_time_series)
        }
        ("POST", "/_emulator/artifactregistry/dockerImages") => seed(
            emulator,
            request,
            crate::apis::artifactregistry::seed_docker_images,
        ),
        ("POST", "/_emulator/cloudbilling/skus") => {
            seed(emulator, request, crate::apis::cloudbilling::seed_sku_price)
        }
        // Where a Cloud Run URL is served locally: workers calling another service ask here (the
        // local cloud has no DNS or TLS for `*.run.app`).
        ("GET", "/_emulator/route") => {
            let url = crate::conventions::Query::parse(request.raw_query.as_deref())
                .get("url")
                .unwrap_or_default()
                .to_string();
            if url.is_empty() {
                return HttpResponse::error(
                    &ApiError::invalid_argument("expected ?url=https://SERVICE-....run.app/PATH"),
                    ErrorStyle::Proto,
                );
            }
            let local = emulator.runtime.routes.resolve(&url);
            HttpResponse::json(200, &json!({"url": url, "local": local}))
        }
        ("POST", "/_emulator/shopify/shops") => {
            seed(emulator, request, crate::apis::shopify::seed_shop)
        }
        ("POST", "/_emulator/shopify/orders") => {
            seed(emulator, request, crate::apis::shopify::seed_orders)
        }
        ("POST", "/_emulator/shopify/webhookSubscriptions") => seed(
            emulator,
            request,
            crate::apis::shopify::seed_webhook_subscription,
        ),
        ("POST", "/_emulator/crm/config") => seed(emulator, request, crate::apis::crm::configure),
        ("POST", "/_emulator/crm/script") => seed(emulator, request, crate::apis::crm::script),
        ("GET", "/_emulator/crm/customers") => {
            HttpResponse::json(200, &crate::apis::crm::list(&lock(&emulator.state)))
        }
        ("DELETE", "/_emulator/faults") => {
            lock(&emulator.faults).replace(FaultPlan::default());
            HttpResponse::json(200, &json!({}))
        }
        _ => HttpResponse::error(
            &ApiError::not_found(format!("No admin endpoint {} {}", request.method, path)),
            ErrorStyle::Proto,
        ),
    }
}
