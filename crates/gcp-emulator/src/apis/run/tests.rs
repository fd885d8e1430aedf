//! Cloud Run services end to end through the HTTP front: operations, generations and revisions,
//! failing images, etags, validateOnly/allowMissing, traffic.

use serde_json::{Value, json};

use crate::server::testing::TestEmulator;

const PARENT: &str = "/v2/projects/p1/locations/us-central1";
const INT_ENUMS: &str = "%24alt=json%3Benum-encoding%3Dint";

fn service_body(image: &str) -> Value {
    json!({"template": {"containers": [{"image": image}]}, "labels": {"team": "a"}})
}

async fn poll_until_done(emulator: &TestEmulator, operation: &Value) -> (usize, Value) {
    let name = operation["name"]
        .as_str()
        .expect("operation name")
        .to_string();
    for polls in 1..10 {
        let (status, current) = emulator
            .send("GET", &format!("/v2/{name}?{INT_ENUMS}"), None)
            .await;
        assert_eq!(status, 200);
        if current["done"] == json!(true) {
            return (polls, current);
        }
    }
    panic!("operation never finished");
}

#[tokio::test]
async fn create_returns_an_operation_that_finishes_after_the_configured_polls() {
    let emulator = TestEmulator::with_polls(1);
    let (status, operation) = emulator
        .send(
            "POST",
            &format!("{PARENT}/services?serviceId=web&validateOnly=false&{INT_ENUMS}"),
            Some(service_body("gcr.io/p1/web:1")),
        )
        .await;
    assert_eq!(status, 200, "{operation}");
    assert!(
        operation.get("done").is_none(),
        "done:false is omitted like proto3 JSON"
    );
    assert!(
        operation["name"]
            .as_str()
            .unwrap_or("")
            .starts_with("projects/p1/locations/us-central1/operations/")
    );
    assert_eq!(
        operation["metadata"]["@type"],
        "type.googleapis.com/google.cloud.run.v2.Service"
    );
    assert_eq!(operation["metadata"]["reconciling"], true);
    let (_, during) = emulator
        .send("GET", &format!("{PARENT}/services/web"), None)
        .await;
    assert_eq!(during["reconciling"], true);
    assert_eq!(
        during["terminalCondition"]["state"],
        "CONDITION_RECONCILING"
    );

    let (polls, done) = poll_until_done(&emulator, &operation).await;
    assert_eq!(polls, 2, "one GET stays done:false");
    let service = &done["response"];
    assert_eq!(
        service["@type"],
        "type.googleapis.com/google.cloud.run.v2.Service"
    );
    assert_eq!(
        service["launchStage"], 4,
        "GA is 4 in the proto, not its discovery index"
    );
    assert_eq!(service["ingress"], 1);
    assert_eq!(service["terminalCondition"]["state"], 4);
    assert_eq!(service["generation"], "1");
    assert_eq!(service["observedGeneration"], "1");
    assert!(service.get("reconciling").is_none());
    let container = &service["template"]["containers"][0];
    assert_eq!(
        container["resources"],
        json!({"limits": {"cpu": "1000m", "memory": "512Mi"}, "cpuIdle": true})
    );
    assert_eq!(service["template"]["maxInstanceRequestConcurrency"], 80);
    assert_eq!(service["template"]["timeout"], "300s");
    assert_eq!(service["template"]["scaling"]["maxInstanceCount"], 100);
    assert!(
        service["template"]["serviceAccount"]
            .as_str()
            .unwrap_or("")
            .ends_with("-compute@developer.gserviceaccount.com")
    );
    assert_eq!(service["traffic"], json!([{"type": 1, "percent": 100}]));
    assert_eq!(
        service["trafficStatuses"],
        json!([{"type": 1, "percent": 100}])
    );
    assert_eq!(
        service["latestReadyRevision"],
        service["latestCreatedRevision"]
    );
    let revision = service["latestReadyRevision"].as_str().unwrap_or("");
    assert!(
        revision.starts_with("projects/p1/locations/us-central1/services/web/revisions/web-00001-"),
        "{revision}"
    );
    assert!(
        service["uri"]
            .as_str()
            .unwrap_or("")
            .ends_with("-uc.a.run.app")
    );
    assert_eq!(service["labels"], json!({"team": "a"}));
}

#[tokio::test]
async fn generation_and_revisions_change_only_with_the_spec_and_template() {
    let emulator = TestEmulator::with_polls(0);
    let (_, created) = emulator
        .send(
            "POST",
            &format!("{PARENT}/services?serviceId=api"),
            Some(service_body("img:1")),
        )
        .await;
    let first_revision = created["response"]["latestReadyRevision"].clone();

    let (_, same) = emulator
        .send(
            "PATCH",
            &format!("{PARENT}/services/api"),
            Some(service_body("img:1")),
        )
        .await;
    assert_eq!(
        same["response"]["generation"], "1",
        "no change, no new generation"
    );
    assert_eq!(same["response"]["latestReadyRevision"], first_revision);

    let mut relabelled = service_body("img:1");
    relabelled["labels"] = json!({"team": "b"});
    let (_, relabelled) = emulator
        .send("PATCH", &format!("{PARENT}/services/api"), Some(relabelled))
        .await;
    assert_eq!(relabelled["response"]["generation"], "2");
    assert_eq!(
        relabelled["response"]["latestReadyRevision"], first_revision,
        "labels are not the template"
    );

    let (_, rolled) = emulator
        .send(
            "PATCH",
            &format!("{PARENT}/services/api?updateMask=template.containers"),
            Some(service_body("img:2")),
        )
        .await;
    assert_eq!(rolled["response"]["generation"], "3");
    assert_eq!(
        rolled["response"]["labels"],
        json!({"team": "b"}),
        "masked patch keeps other fields"
    );
    let second = rolled["response"]["latestReadyRevision"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert_ne!(json!(second), first_revision);
    assert!(second.contains("/revisions/api-00002-"));
    let (_, revisions) = emulator
        .send("GET", &format!("{PARENT}/services/api/revisions"), None)
        .await;
    assert_eq!(revisions["revisions"].as_array().map(Vec::len), Some(2));
    let (status, revision) = emulator.send("GET", &format!("/v2/{second}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(revision["containers"][0]["image"], "img:2");
    assert_eq!(revision["conditions"][0]["state"], "CONDITION_SUCCEEDED");
}

#[tokio::test]
async fn failing_images_leave_traffic_on_the_last_ready_revision() {
    let emulator = TestEmulator::with_polls(0);
    let (_, created) = emulator
        .send(
            "POST",
            &format!("{PARENT}/services?serviceId=svc"),
            Some(service_body("img:ok")),
        )
        .await;
    let ready = created["response"]["latestReadyRevision"].clone();
    let (_, failed) = emulator
        .send(
            "PATCH",
            &format!("{PARENT}/services/svc"),
            Some(service_body("img:emulator-fail")),
        )
        .await;
    assert_eq!(failed["done"], true);
    assert_eq!(failed["error"]["code"], 9);
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("img:emulator-fail")
    );
    let (_, service) = emulator
        .send("GET", &format!("{PARENT}/services/svc"), None)
        .await;
    assert_eq!(service["terminalCondition"]["state"], "CONDITION_FAILED");
    assert!(
        service["terminalCondition"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("img:emulator-fail")
    );
    assert_eq!(service["latestReadyRevision"], ready);
    assert_ne!(service["latestCreatedRevision"], ready);
    assert_eq!(service["observedGeneration"], "1");
    assert_eq!(service["generation"], "2");
}

#[tokio::test]
async fn stale_etags_and_conflicting_revision_names_are_refused() {
    let emulator = TestEmulator::with_polls(0);
    emulator
        .send(
            "POST",
            &format!("{PARENT}/services?serviceId=e"),
            Some(service_body("img:1")),
        )
        .await;
    let (_, service) = emulator
        .send("GET", &format!("{PARENT}/services/e"), None)
        .await;
    let mut stale = service_body("img:2");
    stale["etag"] = json!("\"not-the-etag\"");
    let (status, error) = emulator
        .send("PATCH", &format!("{PARENT}/services/e"), Some(stale))
        .await;
    assert_eq!(
        (status, error["error"]["status"].clone()),
        (409, json!("ABORTED"))
    );
    let (status, _) = emulator
        .send(
            "DELETE",
            &format!("{PARENT}/services/e?etag=%22nope%22"),
            None,
        )
        .await;
    assert_eq!(status, 409);

    let mut echoed = service.clone();
    echoed["template"]["revision"] = json!(
        service["latestCreatedRevision"]
            .as_str()
            .unwrap_or("")
            .rsplit('/')
            .next()
    );
    echoed["template"]["containers"][0]["image"] = json!("img:3");
    let (status, error) = emulator
        .send("PATCH", &format!("{PARENT}/services/e"), Some(echoed))
        .await;
    assert_eq!(status, 409, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("with different configuration already exists")
    );

    let mut current = service.clone();
    current["etag"] = service["etag"].clone();
    let (status, _) = emulator
        .send("PATCH", &format!("{PARENT}/services/e"), Some(current))
        .await;
    assert_eq!(status, 200, "a GET result can be sent back as is");
}

#[tokio::test]
async fn validate_only_allow_missing_delete_and_wait() {
    let emulator = TestEmulator::with_polls(3);
    let (status, checked) = emulator
        .send(
            "POST",
            &format!("{PARENT}/services?serviceId=v&validateOnly=true"),
            Some(service_body("img")),
        )
        .await;
    assert_eq!((status, checked["done"].clone()), (200, json!(true)));
    let (status, _) = emulator
        .send("GET", &format!("{PARENT}/services/v"), None)
        .await;
    assert_eq!(status, 404, "validateOnly persists nothing");

    let (status, _) = emulator
        .send(
            "PATCH",
            &format!("{PARENT}/services/v"),
            Some(service_body("img")),
        )
        .await;
    assert_eq!(status, 404);
    let (status, operation) = emulator
        .send(
            "PATCH",
            &format!("{PARENT}/services/v?allowMissing=true"),
            Some(service_body("img")),
        )
        .await;
    assert_eq!(status, 200);
    let name = operation["name"].as_str().unwrap_or("").to_string();
    let (_, listed) = emulator
        .send("GET", &format!("{PARENT}/operations"), None)
        .await;
    assert_eq!(listed["operations"].as_array().map(Vec::len), Some(1));
    let (_, waited) = emulator
        .send(
            "POST",
            &format!("/v2/{name}:wait"),
            Some(json!({"timeout": "10s"})),
        )
        .await;
    assert_eq!(waited["done"], true);
    assert_eq!(
        waited["response"]["name"],
        "projects/p1/locations/us-central1/services/v"
    );

    let (status, deleting) = emulator
        .send(
            "DELETE",
            &format!("{PARENT}/services/v?etag=&validateOnly=false"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = emulator
        .send("GET", &format!("{PARENT}/services/v"), None)
        .await;
    assert_eq!(status, 404);
    let (_, deleted) = poll_until_done(&emulator, &deleting).await;
    assert!(deleted["response"]["deleteTime"].is_string());
    let (status, _) = emulator.send("DELETE", &format!("/v2/{name}"), None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_named_canary_at_zero_percent_then_a_traffic_only_shift_keeps_the_revisions() {
    let emulator = TestEmulator::with_polls(0);
    let (_, created) = emulator
        .send(
            "POST",
            &format!("{PARENT}/services?serviceId=c"),
            Some(service_body("img:1")),
        )
        .await;
    let first = created["response"]["latestReadyRevision"]
        .as_str()
        .unwrap_or("")
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string();
    let mut canary = service_body("img:2");
    canary["template"]["revision"] = json!("c-two");
    canary["traffic"] = json!([
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": first, "percent": 100},
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "c-two", "percent": 0, "tag": "candidate"}
    ]);
    let (status, staged) = emulator
        .send(
            "PATCH",
            &format!("{PARENT}/services/c"),
            Some(canary.clone()),
        )
        .await;
    assert_eq!(status, 200, "{staged}");
    let service = &staged["response"];
    assert!(
        service["latestReadyRevision"]
            .as_str()
            .unwrap_or("")
            .ends_with("/c-two")
    );
    assert_eq!(service["trafficStatuses"][0]["percent"], 100);
    assert_eq!(service["trafficStatuses"][1]["tag"], "candidate");
    assert!(
        service["trafficStatuses"][1]["uri"]
            .as_str()
            .unwrap_or("")
            .starts_with("https://candidate---c-")
    );

    let mut shift = canary.clone();
    shift["traffic"][0]["percent"] = json!(90);
    shift["traffic"][1]["percent"] = json!(10);
    shift["template"] = json!({"containers": [{"image": "ignored-by-the-mask"}]});
    let (status, shifted) = emulator
        .send(
            "PATCH",
            &format!("{PARENT}/services/c?updateMask=traffic"),
            Some(shift),
        )
        .await;
    assert_eq!(status, 200, "{shifted}");
    assert_eq!(shifted["response"]["trafficStatuses"][1]["percent"], 10);
    assert_eq!(
        shifted["response"]["template"]["containers"][0]["image"], "img:2",
        "the mask leaves the template alone"
    );

    // The same template without its revision name is not a new configuration.
    let (_, current) = emulator
        .send("GET", &format!("{PARENT}/services/c"), None)
        .await;
    let mut unnamed = current.clone();
    unnamed["template"]
        .as_object_mut()
        .map(|t| t.remove("revision"));
    let (_, same) = emulator
        .send("PATCH", &format!("{PARENT}/services/c"), Some(unnamed))
        .await;
    assert!(
        same["response"]["latestCreatedRevision"]
            .as_str()
            .unwrap_or("")
            .ends_with("/c-two")
    );
    let (_, revisions) = emulator
        .send("GET", &format!("{PARENT}/services/c/revisions"), None)
        .await;
    assert_eq!(revisions["revisions"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn unknown_fields_in_nested_service_paths_use_google_wording() {
    let emulator = TestEmulator::with_polls(0);
    let body = json!({"template": {"containers": [{"image": "i", "bogus": 1}]}});
    let (status, error) = emulator
        .send(
            "POST",
            &format!("{PARENT}/services?serviceId=x"),
            Some(body),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        error["error"]["message"],
        "Invalid JSON payload received. Unknown name \"bogus\" at 'service.template.containers[0]': Cannot find field."
    );
}
