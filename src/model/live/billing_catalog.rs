//! Cloud Billing Catalog live records: SKUs and their USD price tiers.

/// One SKU with its current pricing expression, prices as USD floats.
#[derive(Debug, Clone, PartialEq)]
pub struct SkuRecord {
    /// `services/SERVICE/skus/SKU`
    pub name: String,
    pub sku_id: String,
    pub description: String,
    /// `us-central1`, `us` (a multi-region) or `global`.
    pub service_regions: Vec<String>,
    /// The unit prices are per this (`s`, `GiBy.mo`, `TiBy`, `count`, ...).
    pub usage_unit: String,
    /// The unit of usage exports (`s`, `By.s`, `By`, `count`, ...).
    pub base_unit: String,
    /// How many base units one usage unit is.
    pub base_unit_conversion_factor: f64,
    /// Ascending by start; a free tier is a first tier priced 0.
    pub tiers: Vec<TierRecord>,
}

/// Usage above `start_usage_amount` usage units costs `unit_price` per usage unit.
#[derive(Debug, Clone, PartialEq)]
pub struct TierRecord {
    pub start_usage_amount: f64,
    pub currency: String,
    pub unit_price: f64,
}
