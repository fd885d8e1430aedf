//! stackctl: declarative, cost-capped Google Cloud stacks for the services around a Shopify store.

pub mod apply;
pub mod audit;
pub mod cli;
pub mod commands;
pub mod config;
pub mod cost;
pub mod deploy;
pub mod model;
pub mod plan;
pub mod provider;
pub mod resources;
pub mod state;
pub mod ui;
