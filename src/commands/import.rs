//! `stackctl import KIND.ID... | --all`: writes the stack.toml stanzas (and table schema files)
//! of resources that exist in the project and that no stack owns, from their live values; then,
//! only for those whose stanza plans empty, takes ownership as `adopt` does. Nothing else in the
//! project changes: the label or ledger entry is the only write. What cannot be written (a live
//! value stack.toml has no form for) is named as not importable, with the reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::adopt::Target;
use super::{ExitStatus, Session, load_stack};
use crate::cli::{Cli, ImportArgs};
use crate::config::Stack;
use crate::model::live::budgets::BudgetRecord;
use crate::model::live::gateway::{ApiKeyRecord, GatewayRecord};
use crate::model::live::monitoring::{AlertRecord, ChannelRecord, UptimeRecord};
use crate::model::{Kind, ResourceAddr};
use crate::plan::Observed;
use crate::provider::dashboards::DashboardRecord;
use crate::provider::{Cloud, Silent};
use crate::resources::Reconcile;
use crate::resources::budget::BudgetKind;
use crate::resources::import::{self, ImportError, References, Stanza, last};
use crate::resources::inventory::{self, Scope};
use crate::resources::registry::{declared_diff, declared_display_names, declared_names};
use crate::resources::{NAME_LABEL, OWNER_LABEL};
use crate::state::Ledger;
use crate::ui::Printer;

pub async fn run(cli: &Cli, args: &ImportArgs, printer: &Printer) -> Result<ExitStatus> {
    if args.addresses.is_empty() && !args.all {
        bail!(
            "name what to import (`stackctl import queue.webhooks service.worker`), or pass --all for everything in the project that no stack owns"
        );
    }
    let mut wanted = Vec::new();
    for a in &args.addresses {
        let address: ResourceAddr = a.parse().map_err(anyhow::Error::msg)?;
        wanted.push(address);
    }
    let Some(stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    let session = Session::open(cli, stack).await?;
    let found = find_stanzas(&session, &wanted, args.all, printer).await;
    session.close().await;
    let Imported {
        stanzas,
        mut not_importable,
    } = found?;
    if !args.all {
        refuse_named(&not_importable)?;
    }
    if args.dry_run {
        report_not_importable(&not_importable, printer);
        if stanzas.is_empty() {
            printer.out(nothing_to_import(&not_importable));
        }
        for stanza in &stanzas {
            printer.out(&stanza.render());
        }
        printer.out("Dry run: nothing was written and nothing adopted.");
        return Ok(ExitStatus::Success);
    }
    if stanzas.is_empty() {
        report_not_importable(&not_importable, printer);
        printer.out(nothing_to_import(&not_importable));
        return Ok(ExitStatus::Success);
    }
    let original = std::fs::read_to_string(&cli.file)
        .with_context(|| format!("reading {}", cli.file.display()))?;
    let dir = cli.file.parent().unwrap_or(Path::new("."));
    let mut new_files = Vec::new();
    for stanza in &stanzas {
        for (path, contents) in &stanza.files {
            if write_new_file(&dir.join(path), contents)? {
                new_files.push((stanza.address.clone(), dir.join(path)));
            }
        }
    }
    let checked = validated(&cli.file, &original, stanzas, &mut not_importable);
    // The files of the stanzas that are not written go again (all of them when nothing is).
    let kept: BTreeSet<&ResourceAddr> = match &checked {
        Ok((_, kept)) if args.all || not_importable.is_empty() => {
            kept.iter().map(|s| &s.address).collect()
        }
        _ => BTreeSet::new(),
    };
    for (address, path) in &new_files {
        if !kept.contains(address) {
            let _ = std::fs::remove_file(path);
        }
    }
    let (text, stanzas) = checked?;
    if !args.all {
        refuse_named(&not_importable)?;
    }
    report_not_importable(&not_importable, printer);
    if stanzas.is_empty() {
        printer.out(nothing_to_import(&not_importable));
        return Ok(ExitStatus::Success);
    }
    std::fs::write(&cli.file, &text).with_context(|| format!("writing {}", cli.file.display()))?;
    for stanza in &stanzas {
        printer.out(&format!(
            "Wrote [{}] to {} from {}.",
            stanza.address,
            cli.file.display(),
            stanza.name
        ));
    }
    adopt_if_planned_empty(cli, &stanzas, printer).await
}

/// Named resources are imported all or none: one that cannot be is an error that says why.
fn refuse_named(not_importable: &[ImportError]) -> Result<()> {
    if not_importable.is_empty() {
        return Ok(());
    }
    let reasons: Vec<String> = not_importable.iter().map(ToString::to_string).collect();
    bail!("{}\nnothing was written", reasons.join("\n"))
}

/// With `--all`, what is left out is named with the reason (and what to declare by hand instead).
fn report_not_importable(not_importable: &[ImportError], printer: &Printer) {
    for reason in not_importable {
        printer.err(&format!("not importable: {reason}"));
    }
}

fn nothing_to_import(not_importable: &[ImportError]) -> &'static str {
    if not_importable.is_empty() {
        "Nothing to import: every resource found is declared in stack.toml or owned by a stack."
    } else {
        "Nothing else to import: every other resource found is declared in stack.toml or owned by a stack."
    }
}

/// stack.toml with the stanzas that validate appended, and those stanzas: one that does not (a
/// live value stack.toml does not take, or a reference to a stanza left out before it) is left
/// out with the validation's reason, until the rest validates.
fn validated(
    file: &Path,
    original: &str,
    mut stanzas: Vec<Stanza>,
    not_importable: &mut Vec<ImportError>,
) -> Result<(String, Vec<Stanza>)> {
    loop {
        let (text, first_lines) = with_stanzas(original, &stanzas);
        let errors = match crate::config::parse(file, &text) {
            Ok(_) => return Ok((text, stanzas)),
            Err(errors) => errors,
        };
        let mut reasons: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for error in errors.errors() {
            let Some(line) = error.line else { continue };
            if let Some(at) = first_lines.iter().rposition(|first| *first <= line) {
                let reason = match &error.help {
                    Some(help) => format!("{} ({help})", error.message),
                    None => error.message.clone(),
                };
                reasons.entry(at).or_default().push(reason);
            }
        }
        if reasons.is_empty() {
            bail!(
                "the stanzas import wrote do not validate; nothing was written (this is a stackctl bug, please report it):\n{errors}"
            );
        }
        for (at, why) in reasons.into_iter().rev() {
            let stanza = stanzas.remove(at);
            not_importable.push(ImportError::Unsupported {
                address: stanza.address,
                why: format!("its stanza would not validate: {}", why.join("; ")),
            });
        }
    }
}

/// stack.toml with the stanzas appended under a comment, and the (1-based) line each stanza
/// starts on.
fn with_stanzas(original: &str, stanzas: &[Stanza]) -> (String, Vec<usize>) {
    let mut text = original.to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("\n# --- written by `stackctl import` from the live project ---\n");
    let mut first_lines = Vec::new();
    for stanza in stanzas {
        text.push('\n');
        first_lines.push(text.matches('\n').count() + 1);
        text.push_str(&stanza.render());
    }
    (text, first_lines)
}

/// Writes a file import made (a table schema); an existing file with other contents is never
/// overwritten. True when the file is new.
fn write_new_file(path: &Path, contents: &str) -> Result<bool> {
    match std::fs::read_to_string(path) {
        Ok(existing) if existing == contents => return Ok(false),
        Ok(_) => bail!(
            "{} exists with other contents; import does not overwrite it: move it away and run import again",
            path.display()
        ),
        Err(_) => {}
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))?;
    Ok(true)
}

/// Diffs each new stanza against the live resource it was written from: the ones that match
/// exactly are adopted, the others are named with what differs (the stanza stays for the user to
/// edit; nothing is owned yet). A channel that is adopted is the one its alert policies and
/// budgets notify.
async fn adopt_if_planned_empty(
    cli: &Cli,
    stanzas: &[Stanza],
    printer: &Printer,
) -> Result<ExitStatus> {
    let Some(stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    let session = Session::open(cli, stack).await?;
    let result = async {
        let (observed, _) = session.observe(printer).await?;
        let mut known = crate::plan::known_before_apply(&session.stack, &observed);
        let mut ready = Vec::new();
        let mut differing = 0;
        // Channels come before what notifies them.
        for stanza in stanzas {
            // The ownership labels are what adopting writes: they are not a difference.
            let diff = declared_diff(
                &session.stack,
                &observed,
                &known,
                &stanza.address,
                &stanza.name,
            )
            .map(
                |fields| {
                    fields
                        .into_iter()
                        .filter(|f| {
                            !f.field.ends_with(&format!(".{OWNER_LABEL}"))
                                && !f.field.ends_with(&format!(".{NAME_LABEL}"))
                        })
                        .collect::<Vec<_>>()
                },
            );
            match diff {
                Some(fields) if fields.is_empty() => {
                    // Found by its labels once adopted; until then by what it was written from.
                    if stanza.address.kind == Kind::Channel {
                        known
                            .names
                            .insert(stanza.address.clone(), Some(stanza.name.clone()));
                    }
                    ready.push(Target {
                        address: stanza.address.clone(),
                        live_name: Some(stanza.name.clone()),
                    });
                }
                Some(fields) => {
                    differing += 1;
                    let shown: Vec<String> = fields
                        .iter()
                        .map(|f| {
                            format!(
                                "{}: {} -> {}",
                                f.field,
                                f.before.as_deref().unwrap_or("none"),
                                f.after
                                    .as_ref()
                                    .map(|a| a.to_string())
                                    .unwrap_or_else(|| "none".into())
                            )
                        })
                        .collect();
                    printer.err(&format!(
                        "{}: the written stanza differs from the live resource ({}); it is not adopted: edit the stanza until `stackctl plan` would change nothing, then run `stackctl adopt {}`",
                        stanza.address,
                        shown.join("; "),
                        stanza.address
                    ));
                }
                None => {
                    differing += 1;
                    printer.err(&format!(
                        "{}: the live resource was not found again; it is not adopted",
                        stanza.address
                    ));
                }
            }
        }
        super::adopt::adopt_declared(&session, &ready, printer).await?;
        Ok(if differing == 0 {
            ExitStatus::Success
        } else {
            ExitStatus::Failure
        })
    }
    .await;
    session.close().await;
    result
}

/// Who owns what: every stack's ledger in the state bucket, and the full names stack.toml
/// declares.
struct Owned {
    ledgered: BTreeSet<String>,
    declared: BTreeSet<String>,
}

impl Owned {
    fn is_free(&self, name: &str, labels: Option<&BTreeMap<String, String>>) -> bool {
        !self.ledgered.contains(name)
            && !self.declared.contains(name)
            && labels.is_none_or(|l| !l.contains_key(OWNER_LABEL))
    }
}

/// The stanzas import writes, and why the others cannot be written.
#[derive(Default)]
struct Imported {
    stanzas: Vec<Stanza>,
    not_importable: Vec<ImportError>,
}

impl Imported {
    /// Keeps a stanza, or why it cannot be written; the stanza's address when it is kept.
    fn add(&mut self, written: Result<Stanza, ImportError>) -> Option<ResourceAddr> {
        match written {
            Ok(stanza) => {
                let address = stanza.address.clone();
                self.stanzas.push(stanza);
                Some(address)
            }
            Err(why) => {
                self.not_importable.push(why);
                None
            }
        }
    }
}

/// The live resources of the project that could be imported, as their stanzas.
async fn find_stanzas(
    session: &Session,
    wanted: &[ResourceAddr],
    all: bool,
    printer: &Printer,
) -> Result<Imported> {
    let stack = &session.stack;
    let cloud = &session.cloud;
    let read = inventory::observe(
        cloud,
        Scope::Project {
            billing_account: stack.settings.billing_account.as_deref(),
        },
        &Ledger::default(),
    )
    .await?;
    for note in &read.notes {
        printer.note(&format!("note: {note}"));
    }
    let observed = read.observed;
    let ledgered =
        match crate::state::ledger::read_all(cloud.storage(), &stack.state_bucket()).await {
            Ok(ledgers) => ledgers
                .into_iter()
                .flat_map(|l| l.resources.into_keys())
                .collect(),
            Err(e) if e.to_string().contains("404") || e.to_string().contains("NOT_FOUND") => {
                BTreeSet::new()
            }
            Err(e) => return Err(e.into()),
        };
    let declared = Kind::ALL
        .into_iter()
        .flat_map(|kind| declared_names(stack, kind).into_values())
        .collect();
    let owned = Owned { ledgered, declared };
    let (datasets, tables) = bigquery(cloud, &owned).await?;
    let candidates = Candidates::of(stack, &observed, &owned, datasets, tables);
    let chosen = candidates.choose(wanted, all)?;
    let mut refs = declared_references(stack, &observed);
    Ok(chosen.stanzas(stack, &mut refs))
}

/// The project's datasets and tables that no stack owns.
async fn bigquery(
    cloud: &Cloud,
    owned: &Owned,
) -> Result<(
    Vec<crate::model::live::bigquery::DatasetRecord>,
    Vec<crate::model::live::bigquery::TableRecord>,
)> {
    let mut datasets = Vec::new();
    let mut tables = Vec::new();
    let listed = match cloud.list_datasets(&Silent).await {
        Ok(listed) => listed,
        // BigQuery not enabled: nothing to import from it.
        Err(e) if e.to_string().contains("SERVICE_DISABLED") => return Ok((datasets, tables)),
        Err(e) => return Err(e.into()),
    };
    for (id, _) in listed {
        if let Some(dataset) = cloud.get_dataset(&id, &Silent).await?
            && owned.is_free(&dataset.name, Some(&dataset.labels))
        {
            datasets.push(dataset);
        }
        for table_id in cloud.list_table_ids(&id, &Silent).await? {
            if let Some(table) = cloud.get_table(&id, &table_id, &Silent).await?
                && owned.is_free(&table.name, Some(&table.labels))
            {
                tables.push(table);
            }
        }
    }
    Ok((datasets, tables))
}

/// Everything importable that no stack owns, by kind.
#[derive(Default)]
struct Candidates {
    accounts: Vec<crate::model::live::iam::ServiceAccountRecord>,
    secrets: Vec<crate::model::live::secrets::SecretRecord>,
    datasets: Vec<crate::model::live::bigquery::DatasetRecord>,
    firestores: Vec<crate::model::live::firestore::FirestoreRecord>,
    repositories: Vec<crate::model::live::artifacts::RepositoryRecord>,
    services: Vec<crate::model::live::run::ServiceRecord>,
    jobs: Vec<crate::model::live::jobs::JobRecord>,
    queues: Vec<crate::model::live::tasks::QueueRecord>,
    tables: Vec<crate::model::live::bigquery::TableRecord>,
    schedules: Vec<crate::model::live::scheduler::ScheduleRecord>,
    channels: Vec<Named<ChannelRecord>>,
    uptimes: Vec<Named<UptimeRecord>>,
    alerts: Vec<Named<AlertRecord>>,
    budgets: Vec<Named<BudgetRecord>>,
    dashboards: Vec<Named<DashboardRecord>>,
    gateways: Vec<GatewayRecord>,
    api_keys: Vec<Named<ApiKeyRecord>>,
}

/// The kinds import names from their display names: the server assigns their ids.
const SERVER_ASSIGNED: [Kind; 6] = [
    Kind::Channel,
    Kind::Uptime,
    Kind::Alert,
    Kind::Budget,
    Kind::Dashboard,
    Kind::ApiKey,
];

/// A live resource whose id the server assigns, with the stanza NAME import gives it.
struct Named<T> {
    name: String,
    live: T,
}

/// The kinds import writes.
const IMPORTABLE: [Kind; 17] = [
    Kind::ServiceAccount,
    Kind::Secret,
    Kind::Dataset,
    Kind::Firestore,
    Kind::Repository,
    Kind::Service,
    Kind::Job,
    Kind::Queue,
    Kind::Table,
    Kind::Schedule,
    Kind::Channel,
    Kind::Uptime,
    Kind::Alert,
    Kind::Budget,
    Kind::Dashboard,
    Kind::Gateway,
    Kind::ApiKey,
];

/// The live resources of a kind whose ids the server assigns, less those a declared resource
/// will adopt (same display name), each named from its display name (less `prefix`, the part
/// stackctl itself writes there) and unique among the names stack.toml gives that kind and each
/// other.
fn named<'a, T: Clone + 'a>(
    stack: &Stack,
    kind: Kind,
    lives: impl IntoIterator<Item = &'a T>,
    display_name: impl Fn(&T) -> &str,
    prefix: &str,
) -> Vec<Named<T>> {
    let declared_display_names = declared_display_names(stack, kind);
    let mut taken: BTreeSet<String> = declared_names(stack, kind)
        .into_keys()
        .map(|address| address.name)
        .collect();
    lives
        .into_iter()
        .filter(|live| !declared_display_names.contains(display_name(live)))
        .map(|live| {
            let shown = display_name(live);
            let base =
                import::name_from_display_name(shown.strip_prefix(prefix).unwrap_or(shown), kind);
            let name = import::unique_name(&base, &taken);
            taken.insert(name.clone());
            Named {
                name,
                live: live.clone(),
            }
        })
        .collect()
}

impl Candidates {
    fn of(
        stack: &Stack,
        observed: &Observed,
        owned: &Owned,
        datasets: Vec<crate::model::live::bigquery::DatasetRecord>,
        tables: Vec<crate::model::live::bigquery::TableRecord>,
    ) -> Self {
        let project_accounts = format!("@{}.iam.gserviceaccount.com", stack.settings.project);
        Self {
            accounts: observed
                .service_accounts
                .iter()
                .filter(|a| a.email.ends_with(&project_accounts))
                .filter(|a| owned.is_free(&a.name, None))
                .cloned()
                .collect(),
            secrets: observed
                .secrets
                .iter()
                .filter(|s| owned.is_free(&s.name, Some(&s.labels)))
                .cloned()
                .collect(),
            datasets,
            firestores: observed
                .firestores
                .iter()
                .filter(|f| owned.is_free(&f.name, None))
                .cloned()
                .collect(),
            // stackctl's repositories hold Docker images.
            repositories: observed
                .repositories
                .iter()
                .filter(|r| r.format == "DOCKER" && owned.is_free(&r.name, Some(&r.labels)))
                .cloned()
                .collect(),
            services: observed
                .services
                .iter()
                .filter(|s| owned.is_free(&s.name, Some(&s.labels)))
                .cloned()
                .collect(),
            jobs: observed
                .jobs
                .iter()
                .filter(|j| owned.is_free(&j.name, Some(&j.labels)))
                .cloned()
                .collect(),
            queues: observed
                .queues
                .iter()
                .filter(|q| owned.is_free(&q.name, None))
                .cloned()
                .collect(),
            tables,
            schedules: observed
                .schedules
                .iter()
                .filter(|s| owned.is_free(&s.name, None))
                .cloned()
                .collect(),
            channels: named(
                stack,
                Kind::Channel,
                observed
                    .channels
                    .iter()
                    .filter(|c| owned.is_free(&c.name, Some(&c.user_labels))),
                |c| &c.display_name,
                "",
            ),
            uptimes: named(
                stack,
                Kind::Uptime,
                observed
                    .uptimes
                    .iter()
                    .filter(|u| owned.is_free(&u.name, Some(&u.user_labels))),
                |u| &u.display_name,
                "",
            ),
            alerts: named(
                stack,
                Kind::Alert,
                observed
                    .alerts
                    .iter()
                    .filter(|a| owned.is_free(&a.name, Some(&a.user_labels))),
                |a| &a.display_name,
                "",
            ),
            // Only a budget of exactly this project: the others are not the project's.
            budgets: named(
                stack,
                Kind::Budget,
                observed
                    .budgets
                    .iter()
                    .filter(|b| owned.is_free(&b.name, None) && BudgetKind::adoptable(b, observed)),
                |b| &b.display_name,
                // `sc:<stack>:<NAME>` is the name stackctl gave it.
                &crate::resources::budget::display_name(&stack.settings.name, ""),
            ),
            dashboards: named(
                stack,
                Kind::Dashboard,
                observed
                    .dashboards
                    .iter()
                    .filter(|d| owned.is_free(&d.name, Some(&d.labels))),
                |d| &d.display_name,
                "",
            ),
            gateways: observed
                .gateways
                .iter()
                .filter(|g| owned.is_free(&g.name, Some(&g.labels)))
                .cloned()
                .collect(),
            api_keys: named(
                stack,
                Kind::ApiKey,
                observed
                    .api_keys
                    .iter()
                    .filter(|k| owned.is_free(&k.name, Some(&k.annotations))),
                |k| &k.display_name,
                "",
            ),
        }
    }

    /// The live resource ids per kind.
    fn ids(&self, kind: Kind) -> Vec<String> {
        let names: Vec<&str> = match kind {
            Kind::ServiceAccount => {
                return self
                    .accounts
                    .iter()
                    .map(|a| a.email.split('@').next().unwrap_or_default().to_string())
                    .collect();
            }
            Kind::Secret => self.secrets.iter().map(|s| s.name.as_str()).collect(),
            Kind::Dataset => self.datasets.iter().map(|d| d.name.as_str()).collect(),
            Kind::Firestore => self.firestores.iter().map(|f| f.name.as_str()).collect(),
            Kind::Repository => self.repositories.iter().map(|r| r.name.as_str()).collect(),
            Kind::Service => self.services.iter().map(|s| s.name.as_str()).collect(),
            Kind::Job => self.jobs.iter().map(|j| j.name.as_str()).collect(),
            Kind::Queue => self.queues.iter().map(|q| q.name.as_str()).collect(),
            Kind::Table => self.tables.iter().map(|t| t.name.as_str()).collect(),
            Kind::Schedule => self.schedules.iter().map(|s| s.name.as_str()).collect(),
            Kind::Channel => self.channels.iter().map(|c| c.name.as_str()).collect(),
            Kind::Uptime => self.uptimes.iter().map(|u| u.name.as_str()).collect(),
            Kind::Alert => self.alerts.iter().map(|a| a.name.as_str()).collect(),
            Kind::Budget => self.budgets.iter().map(|b| b.name.as_str()).collect(),
            Kind::Dashboard => self.dashboards.iter().map(|d| d.name.as_str()).collect(),
            Kind::Gateway => self.gateways.iter().map(|g| g.name.as_str()).collect(),
            Kind::ApiKey => self.api_keys.iter().map(|k| k.name.as_str()).collect(),
            _ => vec![],
        };
        names.into_iter().map(|n| last(n).to_string()).collect()
    }

    /// Keeps what `wanted` names (every candidate with `all`); a named resource that is not a
    /// free candidate is an error that says why.
    fn choose(self, wanted: &[ResourceAddr], all: bool) -> Result<Self> {
        if all {
            return Ok(self);
        }
        for address in wanted {
            if !IMPORTABLE.contains(&address.kind) {
                bail!(
                    "{address}: import does not write [{}] stanzas; declare it by hand, then run `stackctl adopt {address}`",
                    address.kind
                );
            }
            let id = match (address.kind, address.name.as_str()) {
                (Kind::Firestore, "default") => "(default)",
                (_, name) => name,
            };
            if !self.ids(address.kind).iter().any(|i| i == id) {
                let named_how = if SERVER_ASSIGNED.contains(&address.kind) {
                    " (its id is the server's: import names it from its display name, as `stackctl import --all --dry-run` shows)"
                } else {
                    ""
                };
                bail!(
                    "{address}: no {} with the id `{id}` exists in the project that no stack owns or declares{named_how} (check the id, or `stackctl adopt` it if stack.toml declares it)",
                    address.kind
                );
            }
        }
        let keep = |kind: Kind, name: &str| {
            let id = last(name);
            wanted.iter().any(|a| {
                a.kind == kind
                    && (a.name == id
                        || (kind == Kind::Firestore && a.name == "default" && id == "(default)"))
            })
        };
        let account_id = |email: &str| email.split('@').next().unwrap_or_default().to_string();
        Ok(Self {
            accounts: self
                .accounts
                .into_iter()
                .filter(|a| keep(Kind::ServiceAccount, &account_id(&a.email)))
                .collect(),
            secrets: self
                .secrets
                .into_iter()
                .filter(|s| keep(Kind::Secret, &s.name))
                .collect(),
            datasets: self
                .datasets
                .into_iter()
                .filter(|d| keep(Kind::Dataset, &d.name))
                .collect(),
            firestores: self
                .firestores
                .into_iter()
                .filter(|f| keep(Kind::Firestore, &f.name))
                .collect(),
            repositories: self
                .repositories
                .into_iter()
                .filter(|r| keep(Kind::Repository, &r.name))
                .collect(),
            services: self
                .services
                .into_iter()
                .filter(|s| keep(Kind::Service, &s.name))
                .collect(),
            jobs: self
                .jobs
                .into_iter()
                .filter(|j| keep(Kind::Job, &j.name))
                .collect(),
            queues: self
                .queues
                .into_iter()
                .filter(|q| keep(Kind::Queue, &q.name))
                .collect(),
            tables: self
                .tables
                .into_iter()
                .filter(|t| keep(Kind::Table, &t.name))
                .collect(),
            schedules: self
                .schedules
                .into_iter()
                .filter(|s| keep(Kind::Schedule, &s.name))
                .collect(),
            channels: self
                .channels
                .into_iter()
                .filter(|c| keep(Kind::Channel, &c.name))
                .collect(),
            uptimes: self
                .uptimes
                .into_iter()
                .filter(|u| keep(Kind::Uptime, &u.name))
                .collect(),
            alerts: self
                .alerts
                .into_iter()
                .filter(|a| keep(Kind::Alert, &a.name))
                .collect(),
            budgets: self
                .budgets
                .into_iter()
                .filter(|b| keep(Kind::Budget, &b.name))
                .collect(),
            dashboards: self
                .dashboards
                .into_iter()
                .filter(|d| keep(Kind::Dashboard, &d.name))
                .collect(),
            gateways: self
                .gateways
                .into_iter()
                .filter(|g| keep(Kind::Gateway, &g.name))
                .collect(),
            api_keys: self
                .api_keys
                .into_iter()
                .filter(|k| keep(Kind::ApiKey, &k.name))
                .collect(),
        })
    }

    /// The stanzas, each after what it refers to, which joins `refs` once written; one that
    /// cannot be written is named in `not_importable`, and what refers to it then cannot be
    /// written either (except a channel, which an alert policy or budget leaves out of `notify`).
    fn stanzas(&self, stack: &Stack, refs: &mut References) -> Imported {
        let mut out = Imported::default();
        for a in &self.accounts {
            if let Some(address) = out.add(Ok(import::service_account(a))) {
                refs.accounts.insert(a.email.clone(), address);
            }
        }
        for s in &self.secrets {
            if let Some(address) = out.add(Ok(import::secret(s))) {
                refs.secrets.insert(last(&s.name).to_string(), address);
            }
        }
        for d in &self.datasets {
            if let Some(address) = out.add(Ok(import::dataset(d))) {
                refs.datasets.insert(d.dataset_id.clone(), address);
            }
        }
        for f in &self.firestores {
            out.add(Ok(import::firestore(f)));
        }
        for r in &self.repositories {
            out.add(Ok(import::repository(r)));
        }
        for s in &self.services {
            if let Some(address) = out.add(import::service(s, refs)) {
                refs.add_service(s, &address);
            }
        }
        for j in &self.jobs {
            if let Some(address) = out.add(import::job(j, refs)) {
                refs.jobs.insert(j.name.clone(), address);
            }
        }
        for q in &self.queues {
            out.add(import::queue(q, refs));
        }
        for t in &self.tables {
            out.add(import::table(t, refs));
        }
        for s in &self.schedules {
            out.add(import::schedule(s, refs));
        }
        for c in &self.channels {
            if let Some(address) = out.add(import::channel(&c.live, &c.name)) {
                refs.channels.insert(c.live.name.clone(), address);
            }
        }
        for u in &self.uptimes {
            out.add(import::uptime(&u.live, &u.name, refs));
        }
        for a in &self.alerts {
            out.add(import::alert(&a.live, &a.name, refs));
        }
        for b in &self.budgets {
            out.add(import::budget(&b.live, &b.name, &stack.settings.name, refs));
        }
        for d in &self.dashboards {
            out.add(Ok(import::dashboard(&d.live, &d.name)));
        }
        for g in &self.gateways {
            if let Some(address) = out.add(import::gateway(g, &stack.settings.region, refs))
                && let Some(api) = &g.api
            {
                refs.gateway_services
                    .insert(api.managed_service.clone(), address);
            }
        }
        for k in &self.api_keys {
            out.add(import::api_key(&k.live, &k.name, refs));
        }
        out
    }
}

/// The names stanzas use for the resources stack.toml declares; what a run imports joins them
/// as it is written.
fn declared_references(stack: &Stack, observed: &Observed) -> References {
    let mut refs = References::default();
    for (name, cfg) in &stack.service_accounts {
        refs.accounts.insert(
            cfg.email(&stack.settings.project),
            ResourceAddr::new(Kind::ServiceAccount, name),
        );
    }
    for (name, cfg) in &stack.secrets {
        refs.secrets
            .insert(cfg.id.clone(), ResourceAddr::new(Kind::Secret, name));
    }
    for (name, cfg) in &stack.datasets {
        refs.datasets
            .insert(cfg.id.clone(), ResourceAddr::new(Kind::Dataset, name));
    }
    let declared_services = declared_names(stack, Kind::Service);
    for service in &observed.services {
        if let Some((address, _)) = declared_services.iter().find(|(_, n)| **n == service.name) {
            refs.add_service(service, address);
        }
    }
    for (address, name) in declared_names(stack, Kind::Job) {
        refs.jobs.insert(name, address);
    }
    // Declared channels that exist, by the name Google gave them.
    let known = crate::plan::known_before_apply(stack, observed);
    for (address, name) in known.names {
        if address.kind == Kind::Channel
            && let Some(name) = name
        {
            refs.channels.insert(name, address);
        }
    }
    // Declared gateways that exist, by their api's managed service (what keys are limited to).
    let declared_gateways = declared_names(stack, Kind::Gateway);
    for gateway in &observed.gateways {
        if let Some((address, _)) = declared_gateways.iter().find(|(_, n)| **n == gateway.name)
            && let Some(api) = &gateway.api
        {
            refs.gateway_services
                .insert(api.managed_service.clone(), address.clone());
        }
    }
    refs
}
