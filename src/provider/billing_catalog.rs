//! Cloud Billing v1 through a small typed REST module (there is no official Rust crate): the
//! catalog's public services and their SKUs with USD list prices, read for `--live-prices`, and
//! the project's billing link, read by `stackctl doctor`.

use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::Cloud;
use super::error::{ApiError, RetryObserver};
use super::rest::MoneyWire;
use super::retry::{all_pages, retrying};

pub use crate::model::live::billing_catalog::{SkuRecord, TierRecord};

pub const GOOGLE_CLOUDBILLING: &str = "https://cloudbilling.googleapis.com";

/// The catalog's largest page.
const PAGE_SIZE: &str = "5000";

/// A billed service of the catalog, e.g. `152E-C115-5142` "Cloud Run".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogService {
    pub service_id: String,
    pub display_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceWire {
    #[serde(default)]
    service_id: String,
    #[serde(default)]
    display_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceList {
    #[serde(default)]
    services: Vec<ServiceWire>,
    #[serde(default)]
    next_page_token: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TierWire {
    #[serde(default)]
    start_usage_amount: f64,
    #[serde(default)]
    unit_price: MoneyWire,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ExpressionWire {
    #[serde(default)]
    usage_unit: String,
    #[serde(default)]
    base_unit: String,
    #[serde(default)]
    base_unit_conversion_factor: Option<f64>,
    #[serde(default)]
    tiered_rates: Vec<TierWire>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PricingWire {
    #[serde(default)]
    pricing_expression: ExpressionWire,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SkuWire {
    #[serde(default)]
    name: String,
    #[serde(default)]
    sku_id: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    service_regions: Vec<String>,
    #[serde(default)]
    pricing_info: Vec<PricingWire>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SkuList {
    #[serde(default)]
    skus: Vec<SkuWire>,
    #[serde(default)]
    next_page_token: String,
}

impl From<SkuWire> for SkuRecord {
    /// `pricingInfo` is chronological: without a time range it holds the current price only,
    /// and the last entry is the current one either way.
    fn from(w: SkuWire) -> Self {
        let expression = w
            .pricing_info
            .into_iter()
            .last()
            .map(|p| p.pricing_expression)
            .unwrap_or_default();
        let mut tiers: Vec<TierRecord> = expression
            .tiered_rates
            .into_iter()
            .map(|t| TierRecord {
                start_usage_amount: t.start_usage_amount,
                currency: t.unit_price.currency_code,
                unit_price: t.unit_price.units.unwrap_or(0) as f64
                    + f64::from(t.unit_price.nanos) / 1e9,
            })
            .collect();
        tiers.sort_by(|a, b| a.start_usage_amount.total_cmp(&b.start_usage_amount));
        Self {
            name: w.name,
            sku_id: w.sku_id,
            description: w.description,
            service_regions: w.service_regions,
            usage_unit: expression.usage_unit,
            base_unit: expression.base_unit,
            // An expression without a base unit prices the usage unit itself.
            base_unit_conversion_factor: expression.base_unit_conversion_factor.unwrap_or(1.0),
            tiers,
        }
    }
}

/// `projects.getBillingInfo`: which billing account pays for the project.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProjectBillingInfo {
    /// `billingAccounts/XXXXXX-XXXXXX-XXXXXX`, empty when the project is not linked.
    pub billing_account_name: String,
    pub billing_enabled: bool,
}

impl Cloud {
    /// The stack's project's billing link.
    pub async fn project_billing(
        &self,
        observer: &dyn RetryObserver,
    ) -> Result<ProjectBillingInfo, ApiError> {
        let path = format!("/v1/projects/{}/billingInfo", self.project);
        retrying(self.backoff, observer, || async {
            let request = self.billing_catalog.request(Method::GET, &path);
            self.billing_catalog
                .json("cloudbilling.projects.getBillingInfo", &path, request)
                .await
        })
        .await
    }

    /// Every item of one catalog list call: `pageToken` paging, each page retried.
    async fn catalog_pages<Page: DeserializeOwned, T>(
        &self,
        call: &'static str,
        path: &str,
        query: &[(&str, &str)],
        observer: &dyn RetryObserver,
        items: impl Fn(Page) -> (Vec<T>, String),
    ) -> Result<Vec<T>, ApiError> {
        let items = &items;
        all_pages(|token| async move {
            let page: Page = retrying(self.backoff, observer, || async {
                let mut req = self
                    .billing_catalog
                    .request(Method::GET, path)
                    .query(query)
                    .query(&[("pageSize", PAGE_SIZE)]);
                if !token.is_empty() {
                    req = req.query(&[("pageToken", &token)]);
                }
                self.billing_catalog.json(call, path, req).await
            })
            .await?;
            Ok(items(page))
        })
        .await
    }

    /// Every public service of the catalog.
    pub async fn list_catalog_services(
        &self,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<CatalogService>, ApiError> {
        self.catalog_pages(
            "cloudbilling.services.list",
            "/v1/services",
            &[],
            observer,
            |page: ServiceList| {
                let services = page
                    .services
                    .into_iter()
                    .map(|s| CatalogService {
                        service_id: s.service_id,
                        display_name: s.display_name,
                    })
                    .collect();
                (services, page.next_page_token)
            },
        )
        .await
    }

    /// Every SKU of a service, priced in USD as of now.
    pub async fn list_skus(
        &self,
        service_id: &str,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<SkuRecord>, ApiError> {
        self.catalog_pages(
            "cloudbilling.services.skus.list",
            &format!("/v1/services/{service_id}/skus"),
            &[("currencyCode", "USD")],
            observer,
            |page: SkuList| {
                let skus = page.skus.into_iter().map(SkuRecord::from).collect();
                (skus, page.next_page_token)
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sku_reads_with_omitted_zeros_and_its_latest_price() {
        let wire: SkuWire = serde_json::from_value(serde_json::json!({
            "name": "services/S/skus/K",
            "skuId": "K",
            "description": "Analysis",
            "serviceRegions": ["us"],
            "pricingInfo": [
                {"pricingExpression": {"usageUnit": "TiBy", "tieredRates": [
                    {"unitPrice": {"currencyCode": "USD", "units": "5"}}]}},
                {"pricingExpression": {"usageUnit": "TiBy", "baseUnit": "By",
                    "baseUnitConversionFactor": 1_099_511_627_776.0,
                    "tieredRates": [
                        {"startUsageAmount": 1, "unitPrice": {"currencyCode": "USD", "units": "6", "nanos": 250_000_000}},
                        {"unitPrice": {"currencyCode": "USD"}}]}}
            ]
        }))
        .expect("decodes");
        let sku = SkuRecord::from(wire);
        assert_eq!(sku.base_unit, "By");
        assert_eq!(sku.base_unit_conversion_factor, 1_099_511_627_776.0);
        let prices: Vec<(f64, f64)> = sku
            .tiers
            .iter()
            .map(|t| (t.start_usage_amount, t.unit_price))
            .collect();
        assert_eq!(prices, vec![(0.0, 0.0), (1.0, 6.25)]);
    }
}
