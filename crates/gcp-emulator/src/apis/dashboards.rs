//! Cloud Monitoring v1 dashboards: server-assigned ids, one layout, etags that change on every
//! write and must match when a patch sends one (Google's concurrency control). Bodies are
//! checked against the vendored `monitoring.v1.json` by the router.

use serde_json::{Value, json};

use super::{Call, Context, Reply};
use crate::conventions::ApiError;
use crate::conventions::paging::PagePolicy;
use crate::conventions::wire::stable_hash;

const DASHBOARDS_POLICY: PagePolicy = PagePolicy {
    default_size: 1000,
    max_size: 1000,
    size_param: "pageSize",
    token_kind: "dashboards",
};

const LAYOUTS: [&str; 4] = ["gridLayout", "mosaicLayout", "rowLayout", "columnLayout"];

fn dashboard_name(call: &Call<'_>) -> Result<String, ApiError> {
    Ok(format!(
        "projects/{}/dashboards/{}",
        call.param("projectsId")?,
        call.param("dashboardsId")?
    ))
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("Requested entity was not found: {name}."))
}

fn check(dashboard: &Value) -> Result<(), ApiError> {
    if dashboard
        .get("displayName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(ApiError::invalid_argument(
            "Field dashboard.display_name is required.",
        ));
    }
    let layouts = LAYOUTS
        .iter()
        .filter(|l| dashboard.get(**l).is_some())
        .count();
    if layouts > 1 {
        return Err(ApiError::invalid_argument(
            "A dashboard has at most one of grid_layout, mosaic_layout, row_layout or column_layout.",
        ));
    }
    Ok(())
}

/// A new etag for `name`'s `writes`-th version.
fn etag(name: &str, writes: u64) -> String {
    stable_hash(&[name, &writes.to_string()])[..32].to_string()
}

/// Names `dashboard` and gives it a new etag; kept unless the call only validates.
fn store(
    context: &mut Context<'_>,
    call: &Call<'_>,
    name: String,
    mut dashboard: Value,
) -> Result<Reply, ApiError> {
    dashboard["name"] = json!(name);
    dashboard["etag"] = json!(etag(&name, context.state.next_id()));
    if !call.query_bool("validateOnly")? {
        context.state.dashboards.insert(name, dashboard.clone());
    }
    Ok(Reply::Json(dashboard))
}

pub fn create_dashboard(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let project = call.param("projectsId")?.to_string();
    let dashboard = call.body_or_empty();
    check(&dashboard)?;
    let id = stable_hash(&["dashboard", &context.state.next_id().to_string()])[..36].to_string();
    let name = format!("projects/{project}/dashboards/{id}");
    if context.state.dashboards.get(&name).is_some() {
        return Err(ApiError::already_exists(format!("{name} already exists.")));
    }
    store(context, call, name, dashboard)
}

pub fn get_dashboard(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = dashboard_name(call)?;
    context
        .state
        .dashboards
        .get(&name)
        .cloned()
        .map(Reply::Json)
        .ok_or_else(|| not_found(&name))
}

pub fn list_dashboards(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let prefix = format!("projects/{}/dashboards/", call.param("projectsId")?);
    let dashboards: Vec<&Value> =
        super::collection::children(&context.state.dashboards, &prefix).collect();
    let response =
        super::collection::named_list(dashboards, "dashboards", call.query, DASHBOARDS_POLICY)?;
    Ok(Reply::Json(response))
}

/// Replaces the dashboard; a sent etag must be the current one.
pub fn patch_dashboard(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = dashboard_name(call)?;
    let existing = context
        .state
        .dashboards
        .get(&name)
        .cloned()
        .ok_or_else(|| not_found(&name))?;
    let dashboard = call.body_or_empty();
    check(&dashboard)?;
    if let Some(sent) = dashboard.get("etag").and_then(Value::as_str)
        && Some(sent) != existing["etag"].as_str()
    {
        return Err(ApiError::aborted(format!(
            "The etag of {name} does not match: the dashboard changed since it was read."
        )));
    }
    store(context, call, name, dashboard)
}

pub fn delete_dashboard(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = dashboard_name(call)?;
    context
        .state
        .dashboards
        .remove(&name)
        .ok_or_else(|| not_found(&name))?;
    Ok(Reply::Json(json!({})))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::server::testing::TestEmulator;

    fn overview() -> serde_json::Value {
        json!({
            "displayName": "shop overview",
            "labels": {"stackctl-stack": "shop"},
            "mosaicLayout": {"columns": 48, "tiles": [{"width": 24, "height": 16, "widget": {"title": "requests", "xyChart": {"dataSets": [{"timeSeriesQuery": {"timeSeriesFilter": {"filter": "metric.type = \"run.googleapis.com/request_count\"", "aggregation": {"alignmentPeriod": "60s", "perSeriesAligner": "ALIGN_RATE"}}}, "plotType": "LINE"}]}}}]}
        })
    }

    #[tokio::test]
    async fn dashboards_get_ids_and_etags_and_a_stale_etag_is_refused() {
        let emulator = TestEmulator::with_polls(0);
        let (status, made) = emulator
            .send("POST", "/v1/projects/p1/dashboards", Some(overview()))
            .await;
        assert_eq!(status, 200, "{made}");
        let name = made["name"].as_str().expect("name").to_string();
        let first_etag = made["etag"].as_str().expect("etag").to_string();
        let mut renamed = overview();
        renamed["displayName"] = json!("renamed");
        renamed["etag"] = json!(first_etag);
        let (status, patched) = emulator
            .send("PATCH", &format!("/v1/{name}"), Some(renamed.clone()))
            .await;
        assert_eq!(status, 200, "{patched}");
        assert_ne!(patched["etag"], made["etag"]);
        let (status, stale) = emulator
            .send("PATCH", &format!("/v1/{name}"), Some(renamed))
            .await;
        assert_eq!(status, 409, "{stale}");
        let (status, list) = emulator
            .send("GET", "/v1/projects/p1/dashboards", None)
            .await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["dashboards"][0]["displayName"], "renamed");
        let (status, _) = emulator.send("DELETE", &format!("/v1/{name}"), None).await;
        assert_eq!(status, 200);
        let (status, _) = emulator.send("GET", &format!("/v1/{name}"), None).await;
        assert_eq!(status, 404);
    }

    #[tokio::test]
    async fn dashboards_refuse_unknown_fields_and_two_layouts() {
        let emulator = TestEmulator::with_polls(0);
        let mut unknown = overview();
        unknown["mosaicLayout"]["tiles"][0]["widht"] = json!(24);
        let mut two = overview();
        two["gridLayout"] = json!({"columns": "2"});
        for (what, body) in [("an unknown field", unknown), ("two layouts", two)] {
            let (status, answer) = emulator
                .send("POST", "/v1/projects/p1/dashboards", Some(body))
                .await;
            assert_eq!(status, 400, "{what}: {answer}");
        }
    }
}
