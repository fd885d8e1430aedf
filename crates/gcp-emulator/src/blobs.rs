//! Blob bytes and in-progress uploads of the OCI distribution API: files under the state
//! directory's `registry/blobs/` (or memory), and upload sessions. Manifests and tags live in the
//! state file (see `apis::registry`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::lock;

/// Blob bytes and in-progress uploads.
#[derive(Debug)]
pub struct RegistryStore {
    /// `None` keeps blobs in memory.
    dir: Option<PathBuf>,
    memory: Mutex<BTreeMap<String, Vec<u8>>>,
    /// Upload session id -> (repository, bytes so far).
    pub(crate) uploads: Mutex<BTreeMap<String, (String, Vec<u8>)>>,
}

impl RegistryStore {
    pub fn new(state_dir: Option<&std::path::Path>) -> Self {
        Self {
            dir: state_dir.map(|d| d.join("registry").join("blobs")),
            memory: Mutex::new(BTreeMap::new()),
            uploads: Mutex::new(BTreeMap::new()),
        }
    }

    fn path_of(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        Some(self.dir.as_ref()?.join("sha256").join(hex))
    }

    pub(crate) fn get(&self, digest: &str) -> Option<Vec<u8>> {
        match self.path_of(digest) {
            Some(path) => std::fs::read(path).ok(),
            None => lock(&self.memory).get(digest).cloned(),
        }
    }

    pub(crate) fn put(&self, digest: &str, bytes: Vec<u8>) -> std::io::Result<()> {
        match self.path_of(digest) {
            Some(path) => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let temp = path.with_extension("partial");
                std::fs::write(&temp, bytes)?;
                std::fs::rename(temp, path)
            }
            None => {
                lock(&self.memory).insert(digest.to_string(), bytes);
                Ok(())
            }
        }
    }
}
