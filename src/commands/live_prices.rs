//! `--live-prices`: the price table plan, apply, cost and audit estimate with: the built-in one,
//! or the Cloud Billing Catalog's current prices over it, warning about every item left built-in.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use super::Session;
use crate::cli::PriceArgs;
use crate::cost::{PriceTable, live};
use crate::provider::{Cloud, Silent};
use crate::ui::Printer;

impl Session {
    /// The prices this session's commands estimate with, for the stack's region.
    pub(crate) async fn price_table(
        &self,
        args: &PriceArgs,
        printer: &Printer,
    ) -> Result<PriceTable> {
        let region = &self.stack.settings.region;
        if !args.live_prices {
            return Ok(PriceTable::builtin(region));
        }
        let table = live_table(&self.cloud, region).await?;
        for warning in live::warnings(&table) {
            printer.err(&format!("warning: {warning}"));
        }
        Ok(table)
    }
}

/// The built-in table for `region` with the catalog's current prices laid over it.
async fn live_table(cloud: &Cloud, region: &str) -> Result<PriceTable> {
    let hint = "reading prices from the Cloud Billing Catalog (--live-prices needs cloudbilling.googleapis.com enabled on the credentials' quota project; without the flag the built-in table is used)";
    let services = cloud.list_catalog_services(&Silent).await.context(hint)?;
    let wanted = live::service_ids()
        .into_iter()
        .filter(|id| services.iter().any(|s| s.service_id == *id));
    let skus_by_service: BTreeMap<String, _> =
        futures::future::try_join_all(wanted.map(|id| async move {
            let skus = cloud.list_skus(id, &Silent).await?;
            Ok::<_, crate::provider::ApiError>((id.to_string(), skus))
        }))
        .await
        .context(hint)?
        .into_iter()
        .collect();
    let read_on = chrono::Utc::now().date_naive().to_string();
    Ok(PriceTable::builtin(region).with_live(live::read(&skus_by_service, region, &read_on)))
}
