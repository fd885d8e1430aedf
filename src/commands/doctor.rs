//! `stackctl doctor`: what would stop an apply before it starts, each with its fix: which
//! credentials ADC found and as whom, whether the project answers, which APIs are on, and
//! whether the caller holds the permissions the stack's kinds need (`testIamPermissions` on the
//! project, and on each of the stack's resources that exists and has a policy of its own).
//! Read-only.

use std::collections::BTreeSet;

use anyhow::Result;
use futures::StreamExt;

use super::{ExitStatus, Session, load_stack};
use crate::cli::Cli;
use crate::model::{Endpoint, Kind, ResourceAddr};
use crate::provider::Silent;
use crate::provider::adc::AdcSource;
use crate::resources::registry::{declared_names, observed_names};
use crate::resources::{api, inventory, permissions};
use crate::ui::Printer;
use crate::ui::doctor_view::{self, Check, CheckStatus};

/// How many resources doctor tests at once.
const RESOURCE_TESTS_AT_ONCE: usize = 8;

pub async fn run(cli: &Cli, printer: &Printer) -> Result<ExitStatus> {
    let Some(stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    let mut checks = Vec::new();
    match Session::open(cli, stack).await {
        // The credentials are probed when the session opens: a failure names source and fix.
        Err(e) => checks.push(Check::new(
            "credentials",
            CheckStatus::Fail,
            format!("{e:#}"),
        )),
        Ok(session) => {
            let (check, member) = credentials(&session.cloud.endpoint);
            checks.push(check);
            checks.extend(cloud_checks(&session, &member).await);
            session.close().await;
        }
    }
    printer.out(&doctor_view::render(&checks));
    Ok(if checks.iter().any(|c| c.status == CheckStatus::Fail) {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// Where the credentials come from, and the IAM member to grant roles to (a placeholder when
/// the credentials do not say).
fn credentials(endpoint: &Endpoint) -> (Check, String) {
    if *endpoint != Endpoint::Google {
        let check = Check::new(
            "credentials",
            CheckStatus::Ok,
            format!("none needed: anonymous calls to {}", endpoint.describe()),
        );
        return (check, "user:YOU@example.com".into());
    }
    let source = AdcSource::detect();
    let account = source.account();
    let detail = match &account {
        Some(account) => format!("{} as {account}; a token was issued", source.describe()),
        None => format!("{}; a token was issued", source.describe()),
    };
    let member = account
        .map(|a| format!("serviceAccount:{a}"))
        .unwrap_or_else(|| "user:YOU@example.com".into());
    (Check::new("credentials", CheckStatus::Ok, detail), member)
}

async fn cloud_checks(session: &Session, member: &str) -> Vec<Check> {
    let cloud = &session.cloud;
    let stack = &session.stack;
    let project = &stack.settings.project;
    let mut checks = Vec::new();
    match cloud.project_number(&Silent).await {
        Ok(number) => checks.push(Check::new(
            "project",
            CheckStatus::Ok,
            format!("{project} ({number}) answers"),
        )),
        Err(e) => {
            checks.push(
                Check::new("project", CheckStatus::Fail, e.to_string()).with_fix([format!(
                    "check `project` in {} (or --project), and that the caller may read it: gcloud projects add-iam-policy-binding {project} --member={member} --role=roles/viewer",
                    stack.file.display()
                )]),
            );
            // Nothing else can be read from a project that does not answer.
            return checks;
        }
    }

    let needed: BTreeSet<String> = api::needed(stack)
        .into_iter()
        .map(|a| format!("{a}.googleapis.com"))
        .collect();
    match cloud.list_enabled_apis(&Silent).await {
        Ok(enabled) => {
            let enabled: BTreeSet<&str> = enabled
                .iter()
                .filter_map(|a| a.name.rsplit('/').next())
                .collect();
            let missing: Vec<&str> = needed
                .iter()
                .map(String::as_str)
                .filter(|a| !enabled.contains(a))
                .collect();
            checks.push(if missing.is_empty() {
                Check::new(
                    "APIs",
                    CheckStatus::Ok,
                    format!("all {} the stack uses are enabled", needed.len()),
                )
            } else {
                Check::new(
                    "APIs",
                    CheckStatus::Warn,
                    format!(
                        "not enabled yet: {} (apply enables them, with serviceusage.services.enable)",
                        missing.join(", ")
                    ),
                )
                .with_fix([format!(
                    "gcloud services enable {} --project {project}",
                    missing.join(" ")
                )])
            });
        }
        Err(e) => checks.push(
            Check::new("APIs", CheckStatus::Fail, e.to_string()).with_fix([format!(
                "gcloud services enable serviceusage.googleapis.com --project {project}"
            )]),
        ),
    }

    let needs = permissions::needed(stack);
    let asked: BTreeSet<&str> = needs
        .iter()
        .flat_map(|n| n.permissions.iter().copied())
        .collect();
    let asked: Vec<&str> = asked.into_iter().collect();
    // What the project check already reports missing: a resource lacking it too (it inherits
    // the project's policy) is the same gap, fixed by the same grant, and not said again.
    let mut lacking_on_project: BTreeSet<&str> = BTreeSet::new();
    match cloud.test_project_permissions(&asked, &Silent).await {
        Ok(granted) => {
            let granted: BTreeSet<&str> = granted.iter().map(String::as_str).collect();
            lacking_on_project.extend(asked.iter().copied().filter(|p| !granted.contains(p)));
            let mut missing = Vec::new();
            let mut fixes = Vec::new();
            for needs in &needs {
                let lacking: Vec<&str> = needs
                    .permissions
                    .iter()
                    .copied()
                    .filter(|p| !granted.contains(p))
                    .collect();
                if !lacking.is_empty() {
                    missing.push(format!("{} (in {})", lacking.join(", "), needs.role));
                    fixes.push(format!(
                        "gcloud projects add-iam-policy-binding {project} --member={member} --role={}",
                        needs.role
                    ));
                }
            }
            checks.push(if missing.is_empty() {
                Check::new(
                    "permissions",
                    CheckStatus::Ok,
                    format!(
                        "the caller holds all {} permissions apply uses on {project}",
                        asked.len()
                    ),
                )
            } else {
                Check::new(
                    "permissions",
                    CheckStatus::Fail,
                    format!("the caller lacks {}", missing.join("; ")),
                )
                .with_fix(fixes)
            });
        }
        Err(e) => checks.push(Check::new("permissions", CheckStatus::Fail, e.to_string())),
    }
    checks.extend(resource_permission_checks(session, member, &lacking_on_project).await);
    checks.push(billing_check(session, member).await);
    if let Some(account) = stack
        .settings
        .billing_account
        .as_deref()
        .filter(|_| !stack.budgets.is_empty())
    {
        checks.push(
            Check::new(
                "budgets",
                CheckStatus::Warn,
                format!(
                    "budgets live in billing account {account}, which the project cannot answer for: the caller needs roles/billing.costsManager there"
                ),
            )
            .with_fix([format!(
                "gcloud billing accounts add-iam-policy-binding {account} --member={member} --role=roles/billing.costsManager"
            )]),
        );
    }
    checks
}

/// `testIamPermissions` on each of the stack's queues, services, jobs, secrets and repositories
/// that exists already (read as plan reads the project), with what apply uses on it: a role
/// granted only there, or a deny on it, makes it differ from the project. One failing check per
/// resource that lacks something, naming it and the grant on it that fixes it; nothing when the
/// stack declares none of these kinds. What the project lacks already (`lacking_on_project`) is
/// left to the project's check.
async fn resource_permission_checks(
    session: &Session,
    member: &str,
    lacking_on_project: &BTreeSet<&str>,
) -> Vec<Check> {
    let (cloud, stack) = (&session.cloud, &session.stack);
    let declared: Vec<(ResourceAddr, String)> = permissions::TESTED_ON_THE_RESOURCE
        .into_iter()
        .flat_map(|kind| declared_names(stack, kind))
        .collect();
    if declared.is_empty() {
        return Vec::new();
    }
    let observed = match inventory::observe_stack(cloud, stack).await {
        Ok((inventory, _ledger)) => inventory.observed,
        Err(e) => {
            return vec![Check::new(
                "resource permissions",
                CheckStatus::Fail,
                format!("plan could not read which of the stack's resources exist: {e}"),
            )];
        }
    };
    let existing: Vec<(ResourceAddr, String)> = declared
        .into_iter()
        .filter(|(address, name)| observed_names(&observed, address.kind).contains(name))
        .collect();
    if existing.is_empty() {
        return vec![Check::new(
            "resource permissions",
            CheckStatus::Ok,
            "none of the stack's queues, services, jobs, secrets or repositories exists yet: apply creates them with the project's permissions",
        )];
    }
    // A few calls at a time, in the stack's order: a large stack stays well inside the
    // per-minute read quotas of each API.
    let tested: Vec<_> = futures::stream::iter(existing.iter())
        .map(|(address, name)| async move {
            let needs = permissions::on_the_resource(address.kind)?;
            let held = cloud
                .test_resource_permissions(address.kind, name, &needs.permissions, &Silent)
                .await;
            Some((address, name, needs, held))
        })
        .buffered(RESOURCE_TESTS_AT_ONCE)
        .collect()
        .await;
    let mut checks = Vec::new();
    let mut tested_count = 0;
    for (address, name, needs, held) in tested.into_iter().flatten() {
        let held = match held {
            Ok(held) => held,
            // Deleted since it was listed: apply would create it.
            Err(e) if e.is_not_found() => continue,
            Err(e) => {
                checks.push(Check::new(
                    "resource permissions",
                    CheckStatus::Fail,
                    format!("{address}: {e}"),
                ));
                continue;
            }
        };
        tested_count += 1;
        let lacking: Vec<&str> = needs
            .permissions
            .iter()
            .copied()
            .filter(|p| !held.iter().any(|h| h == p) && !lacking_on_project.contains(p))
            .collect();
        if !lacking.is_empty() {
            checks.push(
                Check::new(
                    "resource permissions",
                    CheckStatus::Fail,
                    format!(
                        "on {address} ({name}) the caller lacks {} (in {})",
                        lacking.join(", "),
                        needs.role
                    ),
                )
                .with_fix([grant_on_resource(
                    address.kind,
                    name,
                    member,
                    needs.role,
                )]),
            );
        }
    }
    if checks.is_empty() {
        let beyond = if lacking_on_project.is_empty() {
            ""
        } else {
            ", besides what the project lacks"
        };
        checks.push(Check::new(
            "resource permissions",
            CheckStatus::Ok,
            format!(
                "the caller holds what apply uses on each of the {tested_count} of the stack's queues, services, jobs, secrets and repositories that exist{beyond}"
            ),
        ));
    }
    checks
}

/// The `gcloud ... add-iam-policy-binding` that grants `role` to `member` on the resource
/// `name` of `kind` (`projects/P/locations/L/queues/ID`, `projects/P/secrets/ID`, ...).
fn grant_on_resource(kind: Kind, name: &str, member: &str, role: &str) -> String {
    let segments: Vec<&str> = name.split('/').collect();
    let after = |collection: &str| {
        segments
            .iter()
            .position(|s| *s == collection)
            .and_then(|i| segments.get(i + 1))
            .copied()
            .unwrap_or_default()
    };
    let (project, location) = (after("projects"), after("locations"));
    let id = segments.last().copied().unwrap_or_default();
    let (command, place) = match kind {
        Kind::Queue => ("tasks queues", format!(" --location={location}")),
        Kind::Service => ("run services", format!(" --region={location}")),
        Kind::Job => ("run jobs", format!(" --region={location}")),
        Kind::Repository => ("artifacts repositories", format!(" --location={location}")),
        Kind::Secret => ("secrets", String::new()),
        // No policy of its own: the project's grant covers it.
        _ => {
            return format!(
                "gcloud projects add-iam-policy-binding {project} --member={member} --role={role}"
            );
        }
    };
    format!(
        "gcloud {command} add-iam-policy-binding {id}{place} --project={project} --member={member} --role={role}"
    )
}

/// Whether the project is linked to a billing account (nothing that costs money can be created
/// otherwise), and to the one `[stack] billing_account` names.
async fn billing_check(session: &Session, member: &str) -> Check {
    let project = &session.stack.settings.project;
    let declared = session.stack.settings.billing_account.as_deref();
    let link_fix = |account: &str| {
        format!("gcloud billing projects link {project} --billing-account={account}")
    };
    match session.cloud.project_billing(&Silent).await {
        Ok(info) if !info.billing_enabled || info.billing_account_name.is_empty() => Check::new(
            "billing",
            CheckStatus::Fail,
            format!("{project} is not linked to a billing account: Cloud Run, BigQuery loads and the rest refuse to be created"),
        )
        .with_fix([link_fix(declared.unwrap_or("XXXXXX-XXXXXX-XXXXXX"))]),
        Ok(info) => {
            let linked = info
                .billing_account_name
                .trim_start_matches("billingAccounts/")
                .to_string();
            match declared {
                Some(account) if account != linked => Check::new(
                    "billing",
                    CheckStatus::Warn,
                    format!(
                        "{project} is billed to {linked}, but [stack] billing_account is {account}: budgets there would not cover this project's spend"
                    ),
                )
                .with_fix([
                    format!("set billing_account = \"{linked}\" in {}", session.stack.file.display()),
                    link_fix(account),
                ]),
                _ => Check::new(
                    "billing",
                    CheckStatus::Ok,
                    format!("{project} is billed to {linked}"),
                ),
            }
        }
        Err(e) => Check::new("billing", CheckStatus::Warn, e.to_string()).with_fix([format!(
            "gcloud projects add-iam-policy-binding {project} --member={member} --role=roles/billing.projectManager (or read it: gcloud billing projects describe {project})"
        )]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_on_one_resource_names_its_gcloud_group_and_location() {
        let member = "serviceAccount:deployer@p.iam.gserviceaccount.com";
        assert_eq!(
            grant_on_resource(
                Kind::Queue,
                "projects/p/locations/europe-west1/queues/webhooks",
                member,
                "roles/cloudtasks.queueAdmin"
            ),
            "gcloud tasks queues add-iam-policy-binding webhooks --location=europe-west1 --project=p --member=serviceAccount:deployer@p.iam.gserviceaccount.com --role=roles/cloudtasks.queueAdmin"
        );
        assert_eq!(
            grant_on_resource(
                Kind::Job,
                "projects/p/locations/us-central1/jobs/ingest",
                member,
                "roles/run.admin"
            ),
            "gcloud run jobs add-iam-policy-binding ingest --region=us-central1 --project=p --member=serviceAccount:deployer@p.iam.gserviceaccount.com --role=roles/run.admin"
        );
        assert_eq!(
            grant_on_resource(
                Kind::Secret,
                "projects/p/secrets/shopify-api-secret",
                member,
                "roles/secretmanager.admin"
            ),
            "gcloud secrets add-iam-policy-binding shopify-api-secret --project=p --member=serviceAccount:deployer@p.iam.gserviceaccount.com --role=roles/secretmanager.admin"
        );
        assert_eq!(
            grant_on_resource(
                Kind::Repository,
                "projects/p/locations/us/repositories/images",
                member,
                "roles/artifactregistry.admin"
            ),
            "gcloud artifacts repositories add-iam-policy-binding images --location=us --project=p --member=serviceAccount:deployer@p.iam.gserviceaccount.com --role=roles/artifactregistry.admin"
        );
    }
}
