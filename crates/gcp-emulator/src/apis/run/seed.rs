//! Admin seeding of Cloud Run services (`POST /_emulator/run/services`): ages them as time
//! passing would.

use serde_json::{Value, json};

/// Ages existing services, as time passing would: `{"project": P, "services": [{"name":
/// "projects/P/locations/L/services/S", "createTime": RFC 3339}]}` (posted to
/// `/_emulator/run/services`).
pub fn seed_service_age(state: &mut crate::state::State, body: &Value) -> Result<Value, String> {
    let (_, services) = crate::apis::seeded_items(body, "services")?;
    for seeded in services {
        let name = seeded
            .get("name")
            .and_then(Value::as_str)
            .ok_or("every service needs \"name\"")?;
        let created = seeded
            .get("createTime")
            .and_then(Value::as_str)
            .filter(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())
            .ok_or(format!(
                "createTime of {name} must be an RFC 3339 timestamp"
            ))?;
        let record = state
            .services
            .get_mut(name)
            .ok_or(format!("service {name} does not exist"))?;
        record.service["createTime"] = json!(created);
    }
    Ok(json!({"services": services.len()}))
}
