//! Service Usage v1 through `google-cloud-api-serviceusage-v1`: which Google APIs are enabled
//! in the project, and enabling one (a long-running operation). stackctl never disables an API.

use google_cloud_api_serviceusage_v1::model as gm;

use super::Cloud;
use super::error::{ApiError, RetryObserver};
use super::retry::{all_pages, retrying};
use super::run::{OperationObserver, wait_for};

pub use crate::model::live::apis::ApiRecord;

impl Cloud {
    /// The enabled APIs of the project: one paged list call per page, filtered to ENABLED.
    pub async fn list_enabled_apis(
        &self,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<ApiRecord>, ApiError> {
        let parent = format!("projects/{}", self.project);
        all_pages(|token| {
            let parent = parent.clone();
            async move {
                let page = retrying(self.backoff, observer, || async {
                    self.service_usage
                        .list_services()
                        .set_parent(&parent)
                        .set_filter("state:ENABLED")
                        .set_page_token(&token)
                        .send()
                        .await
                        .map_err(|e| ApiError::from_gax("serviceusage.services.list", &parent, &e))
                })
                .await?;
                let items = page
                    .services
                    .into_iter()
                    .filter(|s| s.state == gm::State::Enabled)
                    .filter_map(|s| {
                        let api = s.name.rsplit('/').next()?.to_string();
                        Some(ApiRecord {
                            name: format!("{parent}/services/{api}"),
                        })
                    });
                Ok((items.collect(), page.next_page_token))
            }
        })
        .await
    }

    /// Enables `name` (`projects/P/services/API`) and waits for the operation.
    pub async fn enable_api(
        &self,
        name: &str,
        observer: &dyn OperationObserver,
    ) -> Result<(), ApiError> {
        retrying(self.backoff, observer, || {
            let poller = self.service_usage.enable_service().set_name(name).poller();
            wait_for("serviceusage.services.enable", name, poller, observer)
        })
        .await
        .map(|_: gm::EnableServiceResponse| ())
    }
}
