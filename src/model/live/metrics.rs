//! Cloud Monitoring time-series live records: one aligned, reduced series.

use std::collections::BTreeMap;

/// One returned series: its labels and its points (newest first), as numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesRecord {
    pub metric_labels: BTreeMap<String, String>,
    pub resource_labels: BTreeMap<String, String>,
    pub values: Vec<f64>,
}
