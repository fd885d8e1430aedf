//! The IAM permissions plan and apply use on each kind, and the predefined role that holds them,
//! for `stackctl doctor` to test on the project (`projects.testIamPermissions`) and on each
//! existing resource that has a policy of its own (its `testIamPermissions`) before an apply
//! fails halfway. Budgets live in the billing account and are not listed: the project cannot
//! answer for them.

use crate::config::Stack;
use crate::model::Kind;
use crate::resources::registry::declared_names;

/// A role to grant and the permissions of it stackctl uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needed {
    pub role: &'static str,
    pub permissions: &'static [&'static str],
}

/// The state bucket, its lock and ledger: every apply needs them.
pub const STATE: Needed = Needed {
    role: "roles/storage.admin",
    permissions: &[
        "storage.buckets.create",
        "storage.buckets.get",
        "storage.objects.create",
        "storage.objects.delete",
        "storage.objects.get",
        "storage.objects.list",
    ],
};

/// Enabling the APIs the stack uses.
pub const APIS: Needed = Needed {
    role: "roles/serviceusage.serviceUsageAdmin",
    permissions: &["serviceusage.services.enable", "serviceusage.services.list"],
};

/// Grants on the project itself (`roles = [...]` on a service account).
pub const PROJECT_GRANTS: Needed = Needed {
    role: "roles/resourcemanager.projectIamAdmin",
    permissions: &[
        "resourcemanager.projects.getIamPolicy",
        "resourcemanager.projects.setIamPolicy",
    ],
};

/// Making something run as one of the stack's service accounts (a service, job, gateway config,
/// queue's OIDC token or schedule): `iam.serviceAccounts.actAs` on it.
pub const RUNS_AS: Needed = Needed {
    role: "roles/iam.serviceAccountUser",
    permissions: &["iam.serviceAccounts.actAs"],
};

/// Whether anything in `stack` runs as, or mints tokens of, a declared identity.
fn runs_as_an_identity(stack: &Stack) -> bool {
    stack.services.values().any(|s| s.service_account.is_some())
        || stack.jobs.values().any(|j| j.service_account.is_some())
        || stack
            .queues
            .values()
            .any(|q| q.oidc_service_account.is_some())
        || !stack.gateways.is_empty()
        || !stack.schedules.is_empty()
}

/// What managing resources of `kind` takes; `None` for kinds the project cannot answer for
/// (budgets), or whose permissions come with another kind (APIs, grants).
pub fn for_kind(kind: Kind) -> Option<Needed> {
    let (role, permissions): (&str, &[&str]) = match kind {
        Kind::Service => (
            "roles/run.admin",
            &[
                "run.services.create",
                "run.services.delete",
                "run.services.get",
                "run.services.getIamPolicy",
                "run.services.list",
                "run.services.setIamPolicy",
                "run.services.update",
            ],
        ),
        Kind::Job => (
            "roles/run.admin",
            &[
                "run.jobs.create",
                "run.jobs.delete",
                "run.jobs.get",
                "run.jobs.getIamPolicy",
                "run.jobs.list",
                "run.jobs.setIamPolicy",
                "run.jobs.update",
            ],
        ),
        Kind::Queue => (
            "roles/cloudtasks.queueAdmin",
            &[
                "cloudtasks.queues.create",
                "cloudtasks.queues.delete",
                "cloudtasks.queues.get",
                "cloudtasks.queues.getIamPolicy",
                "cloudtasks.queues.list",
                "cloudtasks.queues.pause",
                "cloudtasks.queues.resume",
                "cloudtasks.queues.setIamPolicy",
                "cloudtasks.queues.update",
            ],
        ),
        Kind::ServiceAccount => (
            "roles/iam.serviceAccountAdmin",
            &[
                "iam.serviceAccounts.create",
                "iam.serviceAccounts.delete",
                "iam.serviceAccounts.get",
                "iam.serviceAccounts.getIamPolicy",
                "iam.serviceAccounts.list",
                "iam.serviceAccounts.setIamPolicy",
                "iam.serviceAccounts.update",
            ],
        ),
        Kind::Secret => (
            "roles/secretmanager.admin",
            &[
                "secretmanager.secrets.create",
                "secretmanager.secrets.delete",
                "secretmanager.secrets.get",
                "secretmanager.secrets.getIamPolicy",
                "secretmanager.secrets.list",
                "secretmanager.secrets.setIamPolicy",
                "secretmanager.secrets.update",
            ],
        ),
        Kind::Schedule => (
            "roles/cloudscheduler.admin",
            &[
                "cloudscheduler.jobs.create",
                "cloudscheduler.jobs.delete",
                "cloudscheduler.jobs.get",
                "cloudscheduler.jobs.list",
                "cloudscheduler.jobs.update",
            ],
        ),
        Kind::Firestore => (
            "roles/datastore.owner",
            &[
                "datastore.databases.create",
                "datastore.databases.delete",
                "datastore.databases.get",
                "datastore.databases.list",
                "datastore.databases.update",
                "datastore.indexes.list",
                "datastore.indexes.update",
            ],
        ),
        Kind::Dataset => (
            "roles/bigquery.dataOwner",
            &[
                "bigquery.datasets.create",
                "bigquery.datasets.delete",
                "bigquery.datasets.get",
                "bigquery.datasets.update",
            ],
        ),
        Kind::Table => (
            "roles/bigquery.dataOwner",
            &[
                "bigquery.tables.create",
                "bigquery.tables.delete",
                "bigquery.tables.get",
                "bigquery.tables.getIamPolicy",
                "bigquery.tables.list",
                "bigquery.tables.setIamPolicy",
                "bigquery.tables.update",
            ],
        ),
        Kind::Repository => (
            "roles/artifactregistry.admin",
            &[
                "artifactregistry.repositories.create",
                "artifactregistry.repositories.delete",
                "artifactregistry.repositories.get",
                "artifactregistry.repositories.list",
                "artifactregistry.repositories.update",
            ],
        ),
        Kind::Channel => (
            "roles/monitoring.notificationChannelEditor",
            &[
                "monitoring.notificationChannels.create",
                "monitoring.notificationChannels.delete",
                "monitoring.notificationChannels.get",
                "monitoring.notificationChannels.list",
                "monitoring.notificationChannels.update",
            ],
        ),
        Kind::Uptime => (
            "roles/monitoring.uptimeCheckConfigEditor",
            &[
                "monitoring.uptimeCheckConfigs.create",
                "monitoring.uptimeCheckConfigs.delete",
                "monitoring.uptimeCheckConfigs.get",
                "monitoring.uptimeCheckConfigs.list",
                "monitoring.uptimeCheckConfigs.update",
            ],
        ),
        Kind::Dashboard => (
            "roles/monitoring.dashboardEditor",
            &[
                "monitoring.dashboards.create",
                "monitoring.dashboards.delete",
                "monitoring.dashboards.get",
                "monitoring.dashboards.list",
                "monitoring.dashboards.update",
            ],
        ),
        Kind::Gateway => (
            "roles/apigateway.admin",
            &[
                "apigateway.apis.create",
                "apigateway.apis.delete",
                "apigateway.apis.get",
                "apigateway.apis.list",
                "apigateway.apiconfigs.create",
                "apigateway.apiconfigs.delete",
                "apigateway.apiconfigs.get",
                "apigateway.apiconfigs.list",
                "apigateway.gateways.create",
                "apigateway.gateways.delete",
                "apigateway.gateways.get",
                "apigateway.gateways.list",
                "apigateway.gateways.update",
            ],
        ),
        Kind::ApiKey => (
            "roles/serviceusage.apiKeysAdmin",
            &[
                "apikeys.keys.create",
                "apikeys.keys.delete",
                "apikeys.keys.get",
                "apikeys.keys.list",
                "apikeys.keys.update",
            ],
        ),
        Kind::Alert => (
            "roles/monitoring.alertPolicyEditor",
            &[
                "monitoring.alertPolicies.create",
                "monitoring.alertPolicies.delete",
                "monitoring.alertPolicies.get",
                "monitoring.alertPolicies.list",
                "monitoring.alertPolicies.update",
            ],
        ),
        // Shopify subscriptions need the shop's token, no Google permission.
        Kind::Budget | Kind::Api | Kind::Grant | Kind::ShopifyWebhook => return None,
    };
    Some(Needed { role, permissions })
}

/// A role and the permissions of it an apply of one stack uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleNeeds {
    pub role: &'static str,
    pub permissions: Vec<&'static str>,
}

/// Everything an apply of `stack` needs on its project, one entry a role (services and jobs
/// share `roles/run.admin`), in a stable order.
pub fn needed(stack: &Stack) -> Vec<RoleNeeds> {
    let project_grant = format!("projects/{}|", stack.settings.project);
    let grants_on_project = declared_names(stack, Kind::Grant)
        .values()
        .any(|name| name.starts_with(&project_grant));
    let kinds = Kind::ALL
        .into_iter()
        .filter(|&kind| !declared_names(stack, kind).is_empty())
        .filter_map(for_kind);
    let mut needed: Vec<RoleNeeds> = Vec::new();
    for needs in [STATE, APIS]
        .into_iter()
        .chain(grants_on_project.then_some(PROJECT_GRANTS))
        .chain(kinds)
        .chain(runs_as_an_identity(stack).then_some(RUNS_AS))
    {
        match needed.iter_mut().find(|n| n.role == needs.role) {
            Some(entry) => entry.permissions.extend(needs.permissions),
            None => needed.push(RoleNeeds {
                role: needs.role,
                permissions: needs.permissions.to_vec(),
            }),
        }
    }
    needed
}

/// The kinds whose resources answer `testIamPermissions` on their own policy (Cloud Tasks
/// queues, Cloud Run services and jobs, Secret Manager secrets, Artifact Registry repositories):
/// a role granted on one of them, or a deny on it, changes what apply may do there.
pub const TESTED_ON_THE_RESOURCE: [Kind; 5] = [
    Kind::Queue,
    Kind::Service,
    Kind::Job,
    Kind::Secret,
    Kind::Repository,
];

/// What apply uses on one existing resource of `kind`, and the role that holds it: the kind's
/// permissions but `create` and `list`, which act on the parent. `None` for a kind not in
/// [`TESTED_ON_THE_RESOURCE`].
pub fn on_the_resource(kind: Kind) -> Option<RoleNeeds> {
    if !TESTED_ON_THE_RESOURCE.contains(&kind) {
        return None;
    }
    let needs = for_kind(kind)?;
    Some(RoleNeeds {
        role: needs.role,
        permissions: needs
            .permissions
            .iter()
            .copied()
            .filter(|p| !p.ends_with(".create") && !p.ends_with(".list"))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_needs_a_role_for_each_kind_it_declares_and_the_state_bucket() {
        let stack = crate::config::parse(
            std::path::Path::new("stack.toml"),
            include_str!("../../stack.toml"),
        )
        .expect("example");
        let roles: Vec<&str> = needed(&stack).iter().map(|n| n.role).collect();
        assert_eq!(
            roles,
            vec![
                "roles/storage.admin",
                "roles/serviceusage.serviceUsageAdmin",
                "roles/resourcemanager.projectIamAdmin",
                "roles/run.admin",
                "roles/cloudtasks.queueAdmin",
                "roles/bigquery.dataOwner",
                "roles/artifactregistry.admin",
                "roles/monitoring.notificationChannelEditor",
                "roles/monitoring.alertPolicyEditor",
                "roles/iam.serviceAccountAdmin",
                "roles/secretmanager.admin",
                "roles/cloudscheduler.admin",
                "roles/datastore.owner",
                "roles/monitoring.uptimeCheckConfigEditor",
                "roles/apigateway.admin",
                "roles/serviceusage.apiKeysAdmin",
                "roles/monitoring.dashboardEditor",
                "roles/iam.serviceAccountUser",
            ]
        );
        let run = needed(&stack)
            .into_iter()
            .find(|n| n.role == "roles/run.admin")
            .expect("run");
        assert!(run.permissions.contains(&"run.services.create"));
        assert!(run.permissions.contains(&"run.jobs.create"));
    }

    #[test]
    fn on_a_resource_apply_needs_what_changes_it_but_not_what_acts_on_its_parent() {
        let queue = on_the_resource(Kind::Queue).expect("queue");
        assert_eq!(queue.role, "roles/cloudtasks.queueAdmin");
        assert_eq!(
            queue.permissions,
            vec![
                "cloudtasks.queues.delete",
                "cloudtasks.queues.get",
                "cloudtasks.queues.getIamPolicy",
                "cloudtasks.queues.pause",
                "cloudtasks.queues.resume",
                "cloudtasks.queues.setIamPolicy",
                "cloudtasks.queues.update",
            ]
        );
        for kind in TESTED_ON_THE_RESOURCE {
            let needs = on_the_resource(kind).expect("tested kind");
            let all = for_kind(kind).expect("a kind with permissions");
            assert_eq!(needs.role, all.role, "{kind}");
            assert!(
                needs.permissions.iter().any(|p| p.ends_with(".update")),
                "{kind}: {:?}",
                needs.permissions
            );
            assert!(
                needs
                    .permissions
                    .iter()
                    .all(|p| all.permissions.contains(p) && !p.ends_with(".create")),
                "{kind}: {:?}",
                needs.permissions
            );
        }
        assert_eq!(on_the_resource(Kind::Schedule), None);
    }
}
