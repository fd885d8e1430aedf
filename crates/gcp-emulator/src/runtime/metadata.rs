//! A metadata server per running identity (`GCE_METADATA_HOST`): what Google's auth libraries
//! ask of `metadata.google.internal` — access tokens, ID tokens for an audience, the account's
//! email, the project — answered for one service account with tokens the local issuer signs.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Response, StatusCode, Uri};
use serde_json::json;

use crate::emulator::Emulator;

/// Who a metadata server speaks for.
#[derive(Debug, Clone)]
pub struct Instance {
    pub email: String,
    pub project: String,
    pub region: String,
}

struct Served {
    emulator: Arc<Emulator>,
    instance: Instance,
}

fn answer(status: StatusCode, content_type: &str, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("Metadata-Flavor", "Google")
        .header("content-type", content_type)
        .body(Body::from(body))
        .unwrap_or_default()
}

async fn handle(
    State(served): State<Arc<Served>>,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<std::collections::BTreeMap<String, String>>,
) -> Response<Body> {
    let path = uri.path().trim_end_matches('/');
    if path.is_empty() {
        // Python's google-auth pings the root and wants the flavor header back.
        return answer(StatusCode::OK, "text/plain", String::new());
    }
    if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
        return answer(
            StatusCode::FORBIDDEN,
            "text/html",
            "Missing required header: Metadata-Flavor: Google".into(),
        );
    }
    let instance = &served.instance;
    let runtime = &served.emulator.runtime;
    let account = "/computeMetadata/v1/instance/service-accounts/";
    let Some(rest) = path.strip_prefix("/computeMetadata/v1/") else {
        return answer(StatusCode::NOT_FOUND, "text/html", "Not Found".into());
    };
    let text = |body: String| answer(StatusCode::OK, "application/text", body);
    match rest {
        "project/project-id" => text(instance.project.clone()),
        "project/numeric-project-id" => text(crate::apis::project_number(&instance.project)),
        "instance/region" => text(format!(
            "projects/{}/regions/{}",
            crate::apis::project_number(&instance.project),
            instance.region
        )),
        "universe/universe_domain" => text("googleapis.com".into()),
        _ => match path
            .strip_prefix(account)
            .map(|r| r.split_once('/').unwrap_or((r, "")))
        {
            Some((who, what)) if who == "default" || who == instance.email => match what {
                "" => answer(
                    StatusCode::OK,
                    "application/json",
                    json!({
                        "aliases": ["default"],
                        "email": instance.email,
                        "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
                    })
                    .to_string(),
                ),
                "email" => text(instance.email.clone()),
                "scopes" => text("https://www.googleapis.com/auth/cloud-platform".into()),
                "token" => answer(
                    StatusCode::OK,
                    "application/json",
                    json!({
                        "access_token": runtime.identity.access_token(&instance.email),
                        "expires_in": super::identity::TOKEN_LIFETIME_SECS - 1,
                        "token_type": "Bearer",
                    })
                    .to_string(),
                ),
                "identity" => match query.get("audience").filter(|a| !a.is_empty()) {
                    Some(audience) => text(runtime.identity.id_token(
                        &instance.email,
                        audience,
                        runtime.clock.now(),
                    )),
                    None => answer(
                        StatusCode::BAD_REQUEST,
                        "text/html",
                        "non-empty audience parameter required".into(),
                    ),
                },
                _ => answer(StatusCode::NOT_FOUND, "text/html", "Not Found".into()),
            },
            _ => answer(StatusCode::NOT_FOUND, "text/html", "Not Found".into()),
        },
    }
}

/// Serves a metadata server for `instance` on a free loopback port until `stop` turns true.
pub async fn serve(
    emulator: Arc<Emulator>,
    instance: Instance,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let address = listener.local_addr()?;
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(Arc::new(Served { emulator, instance }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                super::services::stopped(&mut stop).await;
            })
            .await;
    });
    Ok(address)
}
