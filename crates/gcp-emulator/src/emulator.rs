//! The shared emulator core: discovery, settings, the state and its store, fault rules, the
//! request log, registry blobs and BigQuery rows, and how state is persisted. The fronts (`server`, `admin`,
//! `apis::registry`) all work on it; it imports none of them.

use std::sync::Mutex;

use serde::Serialize;

use crate::apis::lro::Completions;
use crate::blobs::RegistryStore;
use crate::discovery::Discovery;
use crate::faults::FaultInjector;
use crate::state::State;
use crate::store::StateStore;
use crate::table_rows::RowStore;
use crate::{EmulatorError, Settings};

/// One served API request, as listed by `GET /_emulator/requests`.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: u16,
    /// Who called, when the request carried an access token the local identities minted (a
    /// process's metadata server, `/_emulator/access-token`); absent for anonymous callers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
}

/// The shared emulator: discovery, state, faults and the request log.
#[derive(Debug)]
pub struct Emulator {
    pub(crate) discovery: Discovery,
    pub(crate) settings: Settings,
    pub(crate) state: Mutex<State>,
    pub(crate) store: Option<StateStore>,
    pub(crate) faults: Mutex<FaultInjector>,
    pub(crate) requests: Mutex<Vec<RequestRecord>>,
    /// Blob bytes and uploads of the OCI distribution API.
    pub(crate) registry: RegistryStore,
    /// BigQuery table rows (kept apart from the state file).
    pub(crate) table_rows: RowStore,
    /// The completion hook of each long-running operation kind.
    pub(crate) completions: Completions,
    /// The execution plane's shared parts: the clock, the token issuer, service fronts.
    pub runtime: crate::runtime::Runtime,
}

impl Emulator {
    pub fn new(settings: Settings) -> Result<Self, EmulatorError> {
        let discovery = Discovery::load()?;
        let (store, state) = match &settings.state_dir {
            Some(dir) => {
                let (store, state) = StateStore::open(dir)?;
                (Some(store), state)
            }
            None => (None, State::empty()),
        };
        let faults = FaultInjector::new(settings.faults.clone());
        let registry = RegistryStore::new(settings.state_dir.as_deref());
        let table_rows = RowStore::new(settings.state_dir.as_deref());
        let runtime = crate::runtime::Runtime::new(settings.state_dir.as_deref());
        Ok(Self {
            registry,
            table_rows,
            discovery,
            settings,
            state: Mutex::new(state),
            store,
            faults: Mutex::new(faults),
            requests: Mutex::new(Vec::new()),
            completions: crate::apis::completions(),
            runtime,
        })
    }

    /// Writes the state to disk (no-op when in memory).
    pub(crate) fn persist(&self, state: &State) {
        if let Some(store) = &self.store
            && let Err(error) = store.save(state)
        {
            tracing::error!(dir = %store.dir().display(), %error, "cannot persist emulator state");
        }
    }
}
