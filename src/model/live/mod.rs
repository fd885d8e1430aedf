//! The normalized live records: what the provider layer reads from Google Cloud, as plain data that plan/, resources/ and provider/ all name.

pub mod apis;
pub mod artifacts;
pub mod bigquery;
pub mod billing_catalog;
pub mod budgets;
pub mod firestore;
pub mod gateway;
pub mod iam;
pub mod jobs;
pub mod metrics;
pub mod monitoring;
pub mod run;
pub mod scheduler;
pub mod secrets;
pub mod shopify;
pub mod tasks;
