//! worker-kit: what the Shopify workers share (Firestore REST documents, JSON log lines, the
//! cloud a process runs in, graceful shutdown, Shopify's header names and delivery ids).

pub mod calls;
pub mod cloud;
pub mod firestore;
pub mod log;
pub mod serve;
pub mod shopify;
pub mod shutdown;
#[cfg(feature = "testing")]
pub mod testing;
