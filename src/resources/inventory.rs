//! The one read of the live project that plan, the stale-plan check, adopt and audit share: one
//! list call per kind (and location), one error policy for every list ([`listed`]), and the
//! ledger read through [`LedgerStore`].

use std::collections::{BTreeMap, BTreeSet};

use super::registry::apis_for;
use super::{OWNER_LABEL, Observed, grant, shopify_webhook};
use crate::config::Stack;
use crate::model::Kind;
use crate::provider::error::is_service_disabled;
use crate::provider::{ApiError, Cloud, Silent};
use crate::state::ledger::LedgerError;
use crate::state::{Ledger, LedgerStore};

/// Why the live project could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("listing the {kind}s failed: {source}")]
    List { kind: Kind, source: ApiError },
    #[error(
        "listing the {kind}s was denied: {source}; grant the caller a role with the `{permission}` permission (e.g. roles/viewer), or check that --project names the right project"
    )]
    PermissionDenied {
        kind: Kind,
        permission: String,
        source: ApiError,
    },
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("reading the ownership ledger: {0}")]
    Ledger(#[from] LedgerError),
    /// The shop's webhook subscriptions could not be read (the message says why and the fix).
    #[error("listing the Shopify webhook subscriptions failed: {0}")]
    Shopify(String),
}

/// What was read, and what the reader should know about what could not be (an API that is not
/// enabled holds nothing of the stack's).
#[derive(Debug)]
pub struct Inventory {
    pub observed: Observed,
    pub notes: Vec<String>,
}

/// The one error policy of every list: an API that is not enabled (or that the endpoint does not
/// serve) holds nothing, with a note saying so; a denied permission is an error naming it;
/// anything else is an error naming the kind.
pub fn listed<T>(
    kind: Kind,
    result: Result<Vec<T>, ApiError>,
    notes: &mut Vec<String>,
) -> Result<Vec<T>, InventoryError> {
    match result {
        Ok(items) => Ok(items),
        Err(e) if is_service_disabled(&e) => {
            notes.push(format!(
                "{} is not enabled, so no {kind} can exist yet (apply enables it)",
                api_names(kind)
            ));
            Ok(Vec::new())
        }
        Err(e) if matches!(e.http_status, Some(404 | 501)) => {
            tracing::debug!("not listing {kind}s: {e}");
            notes.push(format!(
                "this endpoint does not serve {}: no {kind} was listed",
                api_names(kind)
            ));
            Ok(Vec::new())
        }
        Err(e) if e.http_status == Some(403) => Err(InventoryError::PermissionDenied {
            kind,
            permission: e.call.to_string(),
            source: e,
        }),
        Err(source) => Err(InventoryError::List { kind, source }),
    }
}

fn api_names(kind: Kind) -> String {
    let names: Vec<String> = apis_for(kind)
        .iter()
        .map(|api| format!("{api}.googleapis.com"))
        .collect();
    names.join(", ")
}

/// One notes list shared by the concurrent reads of an inventory.
#[derive(Default)]
struct Notes(std::sync::Mutex<Vec<String>>);

impl Notes {
    fn list<T>(
        &self,
        kind: Kind,
        result: Result<Vec<T>, ApiError>,
    ) -> Result<Vec<T>, InventoryError> {
        let mut notes = Vec::new();
        let listed = listed(kind, result, &mut notes);
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend(notes);
        listed
    }

    fn into_inner(self) -> Vec<String> {
        let mut notes = self.0.into_inner().unwrap_or_else(|p| p.into_inner());
        notes.sort();
        notes.dedup();
        notes
    }
}

/// What of the project is read: what one stack declares or owns, or everything (audit).
#[derive(Clone, Copy)]
pub enum Scope<'a> {
    Stack(&'a Stack),
    /// Every resource in the project, in `region` for regional kinds; budgets of `billing_account`.
    Project {
        billing_account: Option<&'a str>,
    },
}

/// Reads the stack's ledger and lists every kind the stack declares or may own, once each (in
/// parallel), then reads the IAM policies that declared grants and ledger bindings point at.
pub async fn observe_stack(
    cloud: &Cloud,
    stack: &Stack,
) -> Result<(Inventory, LedgerStore), InventoryError> {
    let ledger =
        LedgerStore::load(cloud.storage(), &stack.state_bucket(), &stack.settings.name).await?;
    let inventory = observe(cloud, Scope::Stack(stack), &ledger.ledger).await?;
    Ok((inventory, ledger))
}

/// Lists every kind once in `scope` with the ownership `ledger`.
pub async fn observe(
    cloud: &Cloud,
    scope: Scope<'_>,
    ledger: &Ledger,
) -> Result<Inventory, InventoryError> {
    let notes = Notes::default();
    let n = &notes;
    let stack = match scope {
        Scope::Stack(stack) => Some(stack),
        Scope::Project { .. } => None,
    };
    let region = cloud.region.clone();
    let repository_locations: BTreeSet<String> = match stack {
        Some(stack) => stack
            .repositories
            .values()
            .map(|r| r.location.clone())
            .chain([region.clone()])
            .collect(),
        None => BTreeSet::from([region.clone()]),
    };
    let billing_account = match scope {
        Scope::Stack(stack) => {
            let wanted = !stack.budgets.is_empty()
                || ledger
                    .resources
                    .values()
                    .any(|e| e.address.kind == Kind::Budget);
            stack.settings.billing_account.as_deref().filter(|_| wanted)
        }
        Scope::Project { billing_account } => billing_account,
    };
    let needs_project_number = match scope {
        Scope::Stack(stack) => !stack.budgets.is_empty(),
        Scope::Project { .. } => billing_account.is_some(),
    };
    let (services, queues, service_accounts, secrets, jobs, schedules, apis) = tokio::try_join!(
        async { n.list(Kind::Service, cloud.list_services(&Silent).await) },
        async { n.list(Kind::Queue, cloud.list_queues(&Silent).await) },
        async {
            n.list(
                Kind::ServiceAccount,
                cloud.list_service_accounts(&Silent).await,
            )
        },
        async { n.list(Kind::Secret, cloud.list_secrets(&Silent).await) },
        async { n.list(Kind::Job, cloud.list_jobs(&Silent).await) },
        async { n.list(Kind::Schedule, cloud.list_schedules(&Silent).await) },
        async { n.list(Kind::Api, cloud.list_enabled_apis(&Silent).await) },
    )?;
    let bigquery = async {
        let owner = stack.map(|s| s.settings.name.as_str());
        let wanted: BTreeSet<&str> = stack
            .map(|s| s.datasets.values().map(|d| d.id.as_str()).collect())
            .unwrap_or_default();
        let mut datasets = Vec::new();
        let mut tables = Vec::new();
        for (id, labels) in n.list(Kind::Dataset, cloud.list_datasets(&Silent).await)? {
            // A stack reads the datasets it declares or owns; the project scope reads them all.
            let ours =
                owner.is_some_and(|o| labels.get(OWNER_LABEL).map(String::as_str) == Some(o));
            if stack.is_some() && !(ours || wanted.contains(id.as_str())) {
                continue;
            }
            if stack.is_some()
                && let Some(d) = cloud.get_dataset(&id, &Silent).await?
            {
                datasets.push(d);
            }
            for table in cloud.list_table_ids(&id, &Silent).await? {
                if let Some(t) = cloud.get_table(&id, &table, &Silent).await? {
                    tables.push(t);
                }
            }
        }
        Ok::<_, InventoryError>((datasets, tables))
    };
    let repositories = async {
        let mut out = Vec::new();
        for location in &repository_locations {
            out.extend(n.list(
                Kind::Repository,
                cloud.list_repositories(location, &Silent).await,
            )?);
        }
        Ok::<_, InventoryError>(out)
    };
    // Listed for the project scope too: audit checks that alert policies' channels still exist.
    let channels = async { n.list(Kind::Channel, cloud.list_channels(&Silent).await) };
    let alerts = async { n.list(Kind::Alert, cloud.list_alerts(&Silent).await) };
    let uptimes = async { n.list(Kind::Uptime, cloud.list_uptime_checks(&Silent).await) };
    let gateways = async {
        let wanted = match scope {
            Scope::Stack(stack) => !stack.gateways.is_empty(),
            Scope::Project { .. } => true,
        };
        let listed = match cloud.list_gateways(&Silent).await {
            // A stack without gateways in a project without API Gateway: nothing to say.
            Err(e) if !wanted && is_service_disabled(&e) => Vec::new(),
            result => n.list(Kind::Gateway, result)?,
        };
        // Only this stack's gateways and the ones it declares (not owned yet: adopted, or a
        // conflict) have their api and config read, or every one for the project scope: one
        // list of apis, one config GET per gateway read.
        let owner = stack.map(|s| s.settings.name.as_str());
        let declared: BTreeSet<String> = stack
            .map(|s| {
                super::registry::declared_names(s, Kind::Gateway)
                    .into_values()
                    .collect()
            })
            .unwrap_or_default();
        let read: Vec<_> = listed
            .into_iter()
            .filter(|g| {
                owner.is_none()
                    || g.labels.get(OWNER_LABEL).map(String::as_str) == owner
                    || declared.contains(&g.name)
            })
            .collect();
        if read.is_empty() && !wanted {
            return Ok::<_, InventoryError>(Vec::new());
        }
        let apis = n.list(Kind::Gateway, cloud.list_gateway_apis(&Silent).await)?;
        let mut out = Vec::new();
        for mut gateway in read {
            let api_name = gateway
                .api_config
                .split("/configs/")
                .next()
                .unwrap_or_default();
            gateway.api = apis.iter().find(|a| a.name == api_name).cloned();
            let ours =
                owner.is_none() || gateway.labels.get(OWNER_LABEL).map(String::as_str) == owner;
            gateway.config = match cloud.get_api_config(&gateway.api_config, &Silent).await {
                Ok(config) => config,
                // Declared but not ours: what keeps its config from us is no reason to stop
                // the plan, which shows the conflict with it either way.
                Err(_) if !ours => None,
                Err(e) => return Err(e.into()),
            };
            out.push(gateway);
        }
        Ok(out)
    };
    let api_keys = async {
        let wanted = match scope {
            Scope::Stack(stack) => !stack.api_keys.is_empty() || !stack.gateways.is_empty(),
            Scope::Project { .. } => true,
        };
        // Listed even when none is declared: a key this stack made and no longer declares is
        // deleted.
        match cloud.list_api_keys(&Silent).await {
            Err(e) if !wanted && is_service_disabled(&e) => Ok(Vec::new()),
            result => n.list(Kind::ApiKey, result),
        }
    };
    let dashboards = async {
        let wanted = match scope {
            Scope::Stack(stack) => !stack.dashboards.is_empty(),
            Scope::Project { .. } => true,
        };
        // Listed even when none is declared: a dashboard this stack made and no longer declares
        // is deleted.
        match cloud.list_dashboards(&Silent).await {
            Err(e) if !wanted && is_service_disabled(&e) => Ok(Vec::new()),
            result => n.list(Kind::Dashboard, result),
        }
    };
    let budgets = async {
        match billing_account {
            Some(account) => n.list(Kind::Budget, cloud.list_budgets(account, &Silent).await),
            None => Ok(Vec::new()),
        }
    };
    let firestores = async {
        let wanted = match scope {
            Scope::Stack(stack) => {
                !stack.firestores.is_empty()
                    || ledger
                        .resources
                        .values()
                        .any(|e| e.address.kind == Kind::Firestore)
            }
            Scope::Project { .. } => true,
        };
        match wanted {
            true => n.list(
                Kind::Firestore,
                cloud.list_firestore_databases(&Silent).await,
            ),
            false => Ok(Vec::new()),
        }
    };
    let project_number = async {
        if !needs_project_number {
            return Ok(None);
        }
        Ok::<_, InventoryError>(Some(cloud.project_number(&Silent).await?))
    };
    let shopify = async {
        match stack {
            Some(stack) => shopify_webhook::observe(cloud, stack, &services)
                .await
                .map_err(InventoryError::Shopify),
            None => Ok(Default::default()),
        }
    };
    let (
        (datasets, tables),
        repositories,
        channels,
        alerts,
        uptimes,
        gateways,
        api_keys,
        dashboards,
        budgets,
        firestores,
        project_number,
        shopify,
    ) = tokio::try_join!(
        bigquery,
        repositories,
        channels,
        alerts,
        uptimes,
        gateways,
        api_keys,
        dashboards,
        budgets,
        firestores,
        project_number,
        shopify
    )?;
    let shopify_unread = shopify.unread;
    if let Some(why) = &shopify_unread {
        notes
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(why.clone());
    }
    let secrets_without_value = match stack {
        Some(stack) => {
            super::channel::secrets_without_value(cloud, stack, &channels, &secrets).await?
        }
        None => BTreeSet::new(),
    };
    let grants = match stack {
        Some(stack) => {
            let targets = grant::policy_targets(stack, ledger);
            let policies: BTreeMap<String, _> =
                futures::future::try_join_all(targets.into_iter().map(|target| async move {
                    let policy = match cloud.get_iam_policy(&target, &Silent).await {
                        Err(e) if is_service_disabled(&e) => Ok(Default::default()),
                        other => other,
                    }?;
                    Ok::<_, ApiError>((target.resource().to_string(), policy))
                }))
                .await?
                .into_iter()
                .collect();
            grant::observed_grants(stack, &policies, ledger)
        }
        None => Vec::new(),
    };
    Ok(Inventory {
        observed: Observed {
            services,
            queues,
            datasets,
            tables,
            repositories,
            channels,
            budgets,
            alerts,
            uptimes,
            gateways,
            api_keys,
            dashboards,
            service_accounts,
            secrets,
            jobs,
            schedules,
            firestores,
            apis,
            grants,
            shopify_webhooks: shopify.subscriptions,
            project_number,
            shopify_unread,
            secrets_without_value,
            ledger: ledger.clone(),
        },
        notes: notes.into_inner(),
    })
}
