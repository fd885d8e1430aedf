//! State that lives in the cloud, so fresh CI clones share it: the ownership ledger and the apply lock,
//! both Cloud Storage objects updated only with generation preconditions.

pub mod ledger;
pub mod lock;

pub use ledger::{Ledger, LedgerEntry, LedgerStatus, LedgerStore};
pub use lock::{ApplyLock, LockError};

/// Object names inside the state bucket, one folder per stack.
pub fn ledger_object(stack: &str) -> String {
    format!("stackctl/{stack}/ledger.json")
}

pub fn lock_object(stack: &str) -> String {
    format!("stackctl/{stack}/apply.lock")
}
