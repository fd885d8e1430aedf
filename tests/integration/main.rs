//! stackctl end to end: the built binary against the emulator, as a user or CI would run it.

mod audit;
mod bigquery;
mod channels;
mod chaos;
mod cli;
mod conformance;

mod deploy;

mod dashboard;
mod data;
mod dispatch;

mod faults;
mod firestore;
mod gateway;
mod identity;
mod import;
mod kinds;
mod lock;
mod newcomer;
mod ownership;
mod persistence;
mod prices;
mod races;
mod runtime;
mod shopify;
mod support;
mod trust;
mod up;
mod uptime;
