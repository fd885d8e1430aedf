//! Resource Manager v3 `projects.get`: every project id exists, with a stable 12-digit number.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::{Call, Context, Reply, project_number};
use crate::conventions::ApiError;
use crate::conventions::wire::{stable_hash, timestamp};
use crate::state::State;

/// Project ids the emulator has seen in resource names, to answer `projects/<number>` lookups.
fn known_project_ids(state: &State) -> Vec<String> {
    let from_name = |name: &str| {
        name.strip_prefix("projects/")
            .and_then(|rest| rest.split('/').next())
            .map(str::to_string)
    };
    let mut ids: Vec<String> = state
        .queues
        .keys()
        .chain(state.services.keys())
        .chain(state.operations.keys())
        .chain(state.run_jobs.keys())
        .chain(state.scheduler_jobs.keys())
        .chain(state.repositories.keys())
        .chain(state.alert_policies.keys())
        .chain(state.iam_policies.keys())
        .filter_map(|name| from_name(name))
        .collect();
    ids.extend(
        state
            .service_accounts
            .values()
            .filter_map(|a| a.get("projectId")?.as_str().map(str::to_string)),
    );
    ids.extend(
        state
            .bq_datasets
            .keys()
            .filter_map(|k| k.split(':').next().map(str::to_string)),
    );
    ids.sort();
    ids.dedup();
    ids
}

fn creation_time(project_id: &str) -> DateTime<Utc> {
    let digest = stable_hash(&["project-created", project_id]);
    let days = i64::from_str_radix(&digest[..6], 16).unwrap_or(0) % 1500;
    DateTime::<Utc>::from_timestamp(1_577_836_800, 0).unwrap_or_default() + Duration::days(days)
}

pub fn get_project(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let requested = call.param("projectsId")?;
    let is_number = requested.bytes().all(|b| b.is_ascii_digit());
    let project_id = if is_number {
        known_project_ids(context.state)
            .into_iter()
            .find(|id| project_number(id) == requested)
            .unwrap_or_else(|| requested.to_string())
    } else {
        requested.to_string()
    };
    let number = if is_number {
        requested.to_string()
    } else {
        project_number(&project_id)
    };
    let created = timestamp(creation_time(&project_id));
    let etag = format!(
        "W/\"{}\"",
        &stable_hash(&["project-etag", &project_id])[..16]
    );
    let project: Value = json!({
        "name": format!("projects/{number}"),
        "projectId": project_id,
        "state": "ACTIVE",
        "displayName": project_id,
        "createTime": created,
        "updateTime": created,
        "etag": etag,
    });
    Ok(Reply::Json(project))
}

/// Every project exists, so its policy can always be read and written (keyed `projects/ID`).
pub fn project_iam(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let requested = call.param("projectsId")?;
    let project_id = if requested.bytes().all(|b| b.is_ascii_digit()) {
        known_project_ids(context.state)
            .into_iter()
            .find(|id| project_number(id) == requested)
            .unwrap_or_else(|| requested.to_string())
    } else {
        requested.to_string()
    };
    super::iam_policy::answer(context, call, &format!("projects/{project_id}"))
}

#[cfg(test)]
mod tests {
    use crate::server::testing::TestEmulator;

    #[tokio::test]
    async fn projects_resolve_by_id_and_number() {
        let emulator = TestEmulator::with_polls(0);
        let (status, by_id) = emulator.send("GET", "/v3/projects/my-proj", None).await;
        assert_eq!(status, 200);
        let name = by_id["name"].as_str().unwrap_or("").to_string();
        assert_eq!(name.len(), "projects/".len() + 12);
        assert_eq!(by_id["state"], "ACTIVE");
        let (_, int_enums) = emulator
            .send(
                "GET",
                "/v3/projects/my-proj?%24alt=json%3Benum-encoding%3Dint",
                None,
            )
            .await;
        assert_eq!(int_enums["state"], 1);
        emulator
            .send(
                "POST",
                "/v2/projects/my-proj/locations/l/queues",
                Some(serde_json::json!({"name": "projects/my-proj/locations/l/queues/q"})),
            )
            .await;
        let (_, by_number) = emulator.send("GET", &format!("/v3/{name}"), None).await;
        assert_eq!(by_number["projectId"], "my-proj");
        assert_eq!(by_number["name"], name);
    }
}
