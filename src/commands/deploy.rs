//! `stackctl deploy [NAME ...]`: build, push and roll out each built service; plus the target
//! selection `build` and `deploy` share.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use super::{ExitStatus, Session, load_stack};
use crate::cli::{Cli, DeployArgs};
use crate::config::{ServiceConfig, Stack};
use crate::deploy::{self, BuiltImage, Pusher, TrafficMode, Transport};
use crate::model::{Endpoint, Kind, ResourceAddr};
use crate::ui::Printer;
use crate::ui::deploy_view::{DeployProgress, render_outcomes};

/// A service to build: its address, config and absolute package directory.
pub(crate) type BuildTarget<'s> = (ResourceAddr, &'s ServiceConfig, PathBuf);

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

/// The named services (all built ones when none are named), each with its package directory.
pub(crate) fn built_services<'s>(
    stack: &'s Stack,
    names: &[String],
) -> Result<Vec<BuildTarget<'s>>> {
    let selected: Vec<(ResourceAddr, &ServiceConfig)> = if names.is_empty() {
        stack
            .services
            .iter()
            .filter(|(_, cfg)| cfg.image.build_dir().is_some())
            .map(|(name, cfg)| (ResourceAddr::new(Kind::Service, name), cfg))
            .collect()
    } else {
        names
            .iter()
            .map(|n| service_named(stack, n))
            .collect::<Result<_>>()?
    };
    if selected.is_empty() {
        bail!(
            "no service in {} has `build = \"...\"`; add build = \"path/to/cargo/package\" to a [service.NAME] (instead of `image`)",
            stack.file.display()
        );
    }
    selected
        .into_iter()
        .map(|(address, cfg)| {
            let Some(dir) = cfg.image.build_dir() else {
                bail!("{address} runs the prebuilt `image` from stack.toml; only services with `build = \"...\"` are built and deployed by stackctl");
            };
            let path = stack.base_dir().join(dir);
            let path = std::fs::canonicalize(&path).with_context(|| {
                format!("{address}: build = \"{dir}\" is not a directory ({})", path.display())
            })?;
            Ok((address, cfg, path))
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
    let targets = built_services(&stack, &args.services)?;
    let session = Session::open(cli, stack.clone()).await?;
    let result = deploy_all(&session, &stack, &targets, args, printer).await;
    session.close().await;
    result
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
    let mut failures = Vec::new();
    for (address, cfg, dir) in targets {
        let result = async {
            let built = deploy::build(stack, address, cfg, dir, &progress).await?;
            let tag = deploy::git_tag(dir).await;
            let pushed = deploy::push(&pusher, &built, tag.as_deref(), &progress).await?;
            let outcome = deploy::roll_out(
                &session.cloud,
                stack,
                address,
                cfg,
                &pushed,
                &mode,
                &progress,
            )
            .await?;
            Ok::<_, deploy::DeployError>((pushed, outcome))
        }
        .await;
        match result {
            Ok(done) => outcomes.push(done),
            Err(error) => failures.push(error),
        }
    }
    if args.json {
        let json: Vec<_> = outcomes
            .iter()
            .map(|(pushed, outcome)| serde_json::json!({ "push": pushed, "rollout": outcome }))
            .collect();
        printer.json(&serde_json::json!({
            "deployed": json,
            "errors": failures.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        }));
    } else if !outcomes.is_empty() {
        printer.out(&render_outcomes(&outcomes));
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
