//! API Gateway v1 through `google-cloud-apigateway-v1`'s `ApiGatewayService`: apis (global),
//! immutable api configs carrying one OpenAPI document, and regional gateways, every write a
//! long-running operation polled to its end.

use std::collections::BTreeMap;

use google_cloud_apigateway_v1::model as gm;
use google_cloud_wkt as wkt;

use super::Cloud;
use super::error::{ApiError, NotFoundAsAnswer, RetryObserver};
use super::retry::{Created, all_pages, creating, retrying};
use super::run::{OperationObserver, wait_for};

pub use crate::model::live::gateway::{ApiConfigRecord, GatewayApiRecord, GatewayRecord};

/// The file name the document is sent under (API Gateway keeps it; the format follows it).
const DOCUMENT_PATH: &str = "openapi.json";

fn labels_of(labels: &std::collections::HashMap<String, String>) -> BTreeMap<String, String> {
    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn api_from(api: gm::Api) -> GatewayApiRecord {
    GatewayApiRecord {
        labels: labels_of(&api.labels),
        name: api.name,
        managed_service: api.managed_service,
        display_name: api.display_name,
    }
}

fn config_from(config: gm::ApiConfig) -> ApiConfigRecord {
    let document = config
        .openapi_documents
        .first()
        .and_then(|d| d.document.as_ref())
        .and_then(|file| serde_json::from_slice(&file.contents).ok());
    ApiConfigRecord {
        labels: labels_of(&config.labels),
        name: config.name,
        gateway_service_account: config.gateway_service_account,
        document,
    }
}

fn gateway_from(gateway: gm::Gateway) -> GatewayRecord {
    GatewayRecord {
        labels: labels_of(&gateway.labels),
        state: gateway.state.name().unwrap_or_default().to_string(),
        name: gateway.name,
        display_name: gateway.display_name,
        api_config: gateway.api_config,
        default_hostname: gateway.default_hostname,
        created: gateway.create_time.and_then(|t| {
            chrono::DateTime::from_timestamp(t.seconds(), u32::try_from(t.nanos()).unwrap_or(0))
        }),
        api: None,
        config: None,
    }
}

/// What stackctl writes on a new api config.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiConfigWrite {
    /// `projects/P/locations/global/apis/A`
    pub api: String,
    pub config_id: String,
    pub display_name: String,
    pub gateway_service_account: String,
    pub document: serde_json::Value,
    pub labels: BTreeMap<String, String>,
}

impl Cloud {
    /// `projects/P/locations/global`: where apis and their configs live.
    pub fn gateway_api_parent(&self) -> String {
        format!("projects/{}/locations/global", self.project)
    }

    pub async fn list_gateways(
        &self,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<GatewayRecord>, ApiError> {
        let parent = self.parent();
        all_pages(|token| {
            let parent = parent.clone();
            async move {
                let page = retrying(self.backoff, observer, || async {
                    self.gateways
                        .list_gateways()
                        .set_parent(&parent)
                        .set_page_token(&token)
                        .send()
                        .await
                        .map_err(|e| ApiError::from_gax("apigateway.gateways.list", &parent, &e))
                })
                .await?;
                Ok((
                    page.gateways.into_iter().map(gateway_from).collect(),
                    page.next_page_token,
                ))
            }
        })
        .await
    }

    pub async fn list_gateway_apis(
        &self,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<GatewayApiRecord>, ApiError> {
        let parent = self.gateway_api_parent();
        all_pages(|token| {
            let parent = parent.clone();
            async move {
                let page = retrying(self.backoff, observer, || async {
                    self.gateways
                        .list_apis()
                        .set_parent(&parent)
                        .set_page_token(&token)
                        .send()
                        .await
                        .map_err(|e| ApiError::from_gax("apigateway.apis.list", &parent, &e))
                })
                .await?;
                Ok((
                    page.apis.into_iter().map(api_from).collect(),
                    page.next_page_token,
                ))
            }
        })
        .await
    }

    pub async fn get_gateway_api(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<Option<GatewayApiRecord>, ApiError> {
        retrying(self.backoff, observer, || async {
            self.gateways
                .get_api()
                .set_name(name)
                .send()
                .await
                .map(api_from)
                .map_err(|e| ApiError::from_gax("apigateway.apis.get", name, &e))
        })
        .await
        .not_found_as_none()
    }

    /// The configs of `api` (without their documents).
    pub async fn list_api_configs(
        &self,
        api: &str,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<ApiConfigRecord>, ApiError> {
        all_pages(|token| async move {
            let page = retrying(self.backoff, observer, || async {
                self.gateways
                    .list_api_configs()
                    .set_parent(api)
                    .set_page_token(&token)
                    .send()
                    .await
                    .map_err(|e| ApiError::from_gax("apigateway.apis.configs.list", api, &e))
            })
            .await?;
            Ok((
                page.api_configs.into_iter().map(config_from).collect(),
                page.next_page_token,
            ))
        })
        .await
    }

    /// One config with its document (the FULL view).
    pub async fn get_api_config(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<Option<ApiConfigRecord>, ApiError> {
        retrying(self.backoff, observer, || async {
            self.gateways
                .get_api_config()
                .set_name(name)
                .set_view(gm::get_api_config_request::ConfigView::Full)
                .send()
                .await
                .map(config_from)
                .map_err(|e| ApiError::from_gax("apigateway.apis.configs.get", name, &e))
        })
        .await
        .not_found_as_none()
    }

    /// Creates the api `id` (Google makes its managed service) and waits for it.
    pub async fn create_gateway_api(
        &self,
        id: &str,
        display_name: &str,
        labels: &BTreeMap<String, String>,
        observer: &dyn OperationObserver,
    ) -> Result<Created<GatewayApiRecord>, ApiError> {
        let parent = self.gateway_api_parent();
        let name = format!("{parent}/apis/{id}");
        let api = gm::Api::new()
            .set_display_name(display_name)
            .set_labels(labels.clone());
        let made = creating(self.backoff, observer, || {
            let poller = self
                .gateways
                .create_api()
                .set_parent(&parent)
                .set_api_id(id)
                .set_api(api.clone())
                .poller();
            wait_for("apigateway.apis.create", &name, poller, observer)
        })
        .await?;
        Ok(made.map(api_from))
    }

    /// Creates one config of `write.api` and waits until it is usable.
    pub async fn create_api_config(
        &self,
        write: &ApiConfigWrite,
        observer: &dyn OperationObserver,
    ) -> Result<Created<ApiConfigRecord>, ApiError> {
        let name = format!("{}/configs/{}", write.api, write.config_id);
        let contents = serde_json::to_vec_pretty(&write.document).unwrap_or_default();
        let config = gm::ApiConfig::new()
            .set_display_name(&write.display_name)
            .set_gateway_service_account(&write.gateway_service_account)
            .set_labels(write.labels.clone())
            .set_openapi_documents([gm::api_config::OpenApiDocument::new().set_document(
                gm::api_config::File::new()
                    .set_path(DOCUMENT_PATH)
                    .set_contents(contents),
            )]);
        let made = creating(self.backoff, observer, || {
            let poller = self
                .gateways
                .create_api_config()
                .set_parent(&write.api)
                .set_api_config_id(&write.config_id)
                .set_api_config(config.clone())
                .poller();
            wait_for("apigateway.apis.configs.create", &name, poller, observer)
        })
        .await?;
        Ok(made.map(config_from))
    }

    /// Creates gateway `id` in the stack's region serving `api_config`, and waits for it.
    pub async fn create_gateway(
        &self,
        id: &str,
        api_config: &str,
        display_name: &str,
        labels: &BTreeMap<String, String>,
        observer: &dyn OperationObserver,
    ) -> Result<Created<GatewayRecord>, ApiError> {
        let parent = self.parent();
        let name = format!("{parent}/gateways/{id}");
        let gateway = gm::Gateway::new()
            .set_api_config(api_config)
            .set_display_name(display_name)
            .set_labels(labels.clone());
        let made = creating(self.backoff, observer, || {
            let poller = self
                .gateways
                .create_gateway()
                .set_parent(&parent)
                .set_gateway_id(id)
                .set_gateway(gateway.clone())
                .poller();
            wait_for("apigateway.gateways.create", &name, poller, observer)
        })
        .await?;
        Ok(made.map(gateway_from))
    }

    /// Points gateway `name` at `api_config` and sets its display name and labels.
    pub async fn update_gateway(
        &self,
        name: &str,
        api_config: &str,
        display_name: &str,
        labels: &BTreeMap<String, String>,
        observer: &dyn OperationObserver,
    ) -> Result<GatewayRecord, ApiError> {
        let gateway = gm::Gateway::new()
            .set_name(name)
            .set_api_config(api_config)
            .set_display_name(display_name)
            .set_labels(labels.clone());
        let mask = wkt::FieldMask::default().set_paths(["api_config", "display_name", "labels"]);
        retrying(self.backoff, observer, || {
            let poller = self
                .gateways
                .update_gateway()
                .set_gateway(gateway.clone())
                .set_update_mask(mask.clone())
                .poller();
            wait_for("apigateway.gateways.patch", name, poller, observer)
        })
        .await
        .map(gateway_from)
    }

    /// Sets the labels of api `name` (for `stackctl adopt`); nothing else changes.
    pub async fn label_gateway_api(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        observer: &dyn OperationObserver,
    ) -> Result<(), ApiError> {
        let api = gm::Api::new().set_name(name).set_labels(labels.clone());
        let mask = wkt::FieldMask::default().set_paths(["labels"]);
        retrying(self.backoff, observer, || {
            let poller = self
                .gateways
                .update_api()
                .set_api(api.clone())
                .set_update_mask(mask.clone())
                .poller();
            wait_for("apigateway.apis.patch", name, poller, observer)
        })
        .await
        .map(drop)
    }

    /// Sets the labels of config `name` (for `stackctl adopt`); its document cannot change.
    pub async fn label_api_config(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        observer: &dyn OperationObserver,
    ) -> Result<(), ApiError> {
        let config = gm::ApiConfig::new()
            .set_name(name)
            .set_labels(labels.clone());
        let mask = wkt::FieldMask::default().set_paths(["labels"]);
        retrying(self.backoff, observer, || {
            let poller = self
                .gateways
                .update_api_config()
                .set_api_config(config.clone())
                .set_update_mask(mask.clone())
                .poller();
            wait_for("apigateway.apis.configs.patch", name, poller, observer)
        })
        .await
        .map(drop)
    }

    pub async fn delete_gateway(
        &self,
        name: &str,
        observer: &dyn OperationObserver,
    ) -> Result<(), ApiError> {
        retrying(self.backoff, observer, || {
            let poller = self.gateways.delete_gateway().set_name(name).poller();
            wait_for("apigateway.gateways.delete", name, poller, observer)
        })
        .await
        .not_found_as_done()
    }

    pub async fn delete_api_config(
        &self,
        name: &str,
        observer: &dyn OperationObserver,
    ) -> Result<(), ApiError> {
        retrying(self.backoff, observer, || {
            let poller = self.gateways.delete_api_config().set_name(name).poller();
            wait_for("apigateway.apis.configs.delete", name, poller, observer)
        })
        .await
        .not_found_as_done()
    }

    pub async fn delete_gateway_api(
        &self,
        name: &str,
        observer: &dyn OperationObserver,
    ) -> Result<(), ApiError> {
        retrying(self.backoff, observer, || {
            let poller = self.gateways.delete_api().set_name(name).poller();
            wait_for("apigateway.apis.delete", name, poller, observer)
        })
        .await
        .not_found_as_done()
    }
}
