//! stackctl: declarative, cost-capped Google Cloud stacks for the services around a Shopify store.

pub mod config;
pub mod model;
pub mod provider;
pub mod plan;
pub mod resources;
pub mod state;
pub mod apply;
pub mod ui;
