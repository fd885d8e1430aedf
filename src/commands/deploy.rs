//! `stackctl deploy [NAME ...]`: build and push each built service and job, then roll out the
//! service (a new revision) or point the job at the image; plus the target selection `build`
//! and `deploy` share.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use super::{ExitStatus, Session, load_stack};
use crate::cli::{Cli, DeployArgs};
use crate::config::{ImageSource, JobConfig, ServiceConfig, Stack};
use crate::deploy::{self, BuiltImage, Pusher, TrafficMode, Transport};
use crate::model::{Endpoint, Kind, ResourceAddr};
use crate::ui::Printer;
use crate::ui::deploy_view::{DeployProgress, render_job_outcomes, render_outcomes};

/// What a build target is: a service (rolled out as a revision) or a job (its image pinned).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Workload<'s> {
    Service(&'s ServiceConfig),
    Job(&'s JobConfig),
}

impl Workload<'_> {
    /// The GCP id, which also names the image.
    fn id(&self) -> &str {
        match self {
            Workload::Service(cfg) => &cfg.id,
            Workload::Job(cfg) => &cfg.id,
        }
    }

    fn image(&self) -> &ImageSource {
        match self {
            Workload::Service(cfg) => &cfg.image,
            Workload::Job(cfg) => &cfg.image,
        }
    }
}

/// A service or job to build: its address, config and absolute package directory.
pub(crate) struct BuildTarget<'s> {
    pub address: ResourceAddr,
    pub workload: Workload<'s>,
    pub dir: PathBuf,
}

impl BuildTarget<'_> {
    pub fn id(&self) -> &str {
        self.workload.id()
    }
}

/// `service.NAME` or `NAME` to a declared service.
pub(crate) fn service_named<'s>(
    stack: &'s Stack,
    name: &str,
) -> Result<(ResourceAddr, &'s ServiceConfig)> {
    let short = name.strip_prefix("service.").unwrap_or(name);
    match stack.services.get(short) {
        Some(cfg) => Ok((ResourceAddr::new(Kind::Service, short), cfg)),
        None => {
            let known: Vec<String> = stack
                .services
                .keys()
                .map(|n| format!("service.{n}"))
                .collect();
            bail!(
                "`{name}` is not a service of {}; services: {}",
                stack.file.display(),
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            )
        }
    }
}

/// `service.NAME`, `job.NAME` or `NAME` (a service, else a job) to a declared service or job.
fn workload_named<'s>(stack: &'s Stack, name: &str) -> Result<(ResourceAddr, Workload<'s>)> {
    let service = |short: &str| {
        stack.services.get(short).map(|cfg| {
            (
                ResourceAddr::new(Kind::Service, short),
                Workload::Service(cfg),
            )
        })
    };
    let job = |short: &str| {
        stack
            .jobs
            .get(short)
            .map(|cfg| (ResourceAddr::new(Kind::Job, short), Workload::Job(cfg)))
    };
    let found = if let Some(short) = name.strip_prefix("service.") {
        service(short)
    } else if let Some(short) = name.strip_prefix("job.") {
        job(short)
    } else {
        service(name).or_else(|| job(name))
    };
    if let Some(found) = found {
        return Ok(found);
    }
    let known: Vec<String> = stack
        .services
        .keys()
        .map(|n| format!("service.{n}"))
        .chain(stack.jobs.keys().map(|n| format!("job.{n}")))
        .collect();
    bail!(
        "`{name}` is not a service or job of {}; services and jobs: {}",
        stack.file.display(),
        if known.is_empty() {
            "none".into()
        } else {
            known.join(", ")
        }
    )
}

/// The named services and jobs (all built ones when none are named), each with its package
/// directory.
pub(crate) fn built_targets<'s>(
    stack: &'s Stack,
    names: &[String],
) -> Result<Vec<BuildTarget<'s>>> {
    let selected: Vec<(ResourceAddr, Workload)> = if names.is_empty() {
        let services = stack.services.iter().map(|(name, cfg)| {
            (
                ResourceAddr::new(Kind::Service, name),
                Workload::Service(cfg),
            )
        });
        let jobs = stack
            .jobs
            .iter()
            .map(|(name, cfg)| (ResourceAddr::new(Kind::Job, name), Workload::Job(cfg)));
        services
            .chain(jobs)
            .filter(|(_, workload)| workload.image().build_dir().is_some())
            .collect()
    } else {
        names
            .iter()
            .map(|n| workload_named(stack, n))
            .collect::<Result<_>>()?
    };
    if selected.is_empty() {
        bail!(
            "no service or job in {} has `build = \"...\"`; add build = \"path/to/cargo/package\" to a [service.NAME] or [job.NAME] (instead of `image`)",
            stack.file.display()
        );
    }
    selected
        .into_iter()
        .map(|(address, workload)| {
            let Some(dir) = workload.image().build_dir() else {
                bail!("{address} runs the prebuilt `image` from stack.toml; only services and jobs with `build = \"...\"` are built and deployed by stackctl");
            };
            let path = stack.base_dir().join(dir);
            let dir = std::fs::canonicalize(&path).with_context(|| {
                format!("{address}: build = \"{dir}\" is not a directory ({})", path.display())
            })?;
            Ok(BuildTarget { address, workload, dir })
        })
        .collect()
}

/// A built image as JSON (for `build --json`).
pub(crate) fn built_json(built: &BuiltImage) -> serde_json::Value {
    serde_json::json!({
        "address": built.address.to_string(),
        "image": built.name.to_string(),
        "digest": built.image.digest(),
        "compressed_bytes": built.image.total_size(),
        "binary_bytes": built.binary_bytes,
        "layers": built.image.layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>(),
    })
}

pub async fn run(cli: &Cli, args: &DeployArgs, printer: &Printer) -> Result<ExitStatus> {
    let Some(stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    let targets = built_targets(&stack, &args.services)?;
    let session = Session::open(cli, stack.clone()).await?;
    let result = deploy_all(&session, &stack, &targets, args, printer).await;
    session.close().await;
    result
}

/// What one target's deploy ended with.
enum Deployed {
    Service(deploy::RolloutOutcome),
    Job(deploy::JobOutcome),
}

async fn deploy_all(
    session: &Session,
    stack: &Stack,
    targets: &[BuildTarget<'_>],
    args: &DeployArgs,
    printer: &Printer,
) -> Result<ExitStatus> {
    let transport = match (&args.registry, &session.cloud.endpoint) {
        (Some(url), _) => Transport::Url(url.clone()),
        (None, Endpoint::Local { url } | Endpoint::Custom { url }) => Transport::Url(url.clone()),
        (None, Endpoint::Google) => Transport::ArtifactRegistry {
            access_token: session
                .cloud
                .access_token()
                .await?
                .context("no access token for Artifact Registry")?,
        },
    };
    let pusher = Pusher::new(&transport)?;
    let mode = if args.no_traffic {
        TrafficMode::NoTraffic {
            tag: args.tag.clone(),
        }
    } else {
        TrafficMode::Promote
    };
    let progress = DeployProgress;
    let mut outcomes = Vec::new();
    let mut job_outcomes = Vec::new();
    let mut failures = Vec::new();
    for target in targets {
        let (address, dir) = (&target.address, &target.dir);
        let result = async {
            let platform = if args.for_host {
                deploy::Platform::Host
            } else {
                deploy::Platform::CloudRun
            };
            let built =
                deploy::build(stack, address, target.id(), dir, platform, &progress).await?;
            let tag = deploy::git_tag(dir).await;
            let pushed = deploy::push(&pusher, &built, tag.as_deref(), &progress).await?;
            let done = match target.workload {
                Workload::Service(cfg) => Deployed::Service(
                    deploy::roll_out(
                        &session.cloud,
                        stack,
                        address,
                        cfg,
                        &pushed,
                        &mode,
                        &progress,
                    )
                    .await?,
                ),
                Workload::Job(cfg) => Deployed::Job(
                    deploy::update_job(&session.cloud, stack, address, &cfg.id, &pushed, &progress)
                        .await?,
                ),
            };
            Ok::<_, deploy::DeployError>((pushed, done))
        }
        .await;
        match result {
            Ok((pushed, Deployed::Service(outcome))) => outcomes.push((pushed, outcome)),
            Ok((pushed, Deployed::Job(outcome))) => job_outcomes.push((pushed, outcome)),
            Err(error) => failures.push(error),
        }
    }
    if args.json {
        let json: Vec<_> = outcomes
            .iter()
            .map(|(pushed, outcome)| serde_json::json!({ "push": pushed, "rollout": outcome }))
            .chain(
                job_outcomes
                    .iter()
                    .map(|(pushed, outcome)| serde_json::json!({ "push": pushed, "job": outcome })),
            )
            .collect();
        printer.json(&serde_json::json!({
            "deployed": json,
            "errors": failures.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        }));
    } else {
        if !outcomes.is_empty() {
            printer.out(&render_outcomes(&outcomes));
        }
        if !job_outcomes.is_empty() {
            printer.out(&render_job_outcomes(&job_outcomes));
        }
    }
    for failure in &failures {
        printer.err(&format!("error: {failure}"));
    }
    Ok(if failures.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}
