//! `stackctl build [service.NAME | job.NAME ...]`: compiles each built service's and job's cargo
//! package and assembles its reproducible image, without pushing; prints each digest and size.

use anyhow::Result;

use super::{ExitStatus, load_stack};
use crate::cli::{BuildArgs, Cli};
use crate::deploy;
use crate::ui::Printer;
use crate::ui::deploy_view::{DeployProgress, render_built};

pub async fn run(cli: &Cli, args: &BuildArgs, printer: &Printer) -> Result<ExitStatus> {
    let Some(stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    let targets = super::deploy::built_targets(&stack, &args.services)?;
    let progress = DeployProgress;
    let mut built = Vec::new();
    for target in &targets {
        built.push(
            deploy::build(
                &stack,
                &target.address,
                target.id(),
                &target.dir,
                deploy::Platform::CloudRun,
                &progress,
            )
            .await?,
        );
    }
    if args.json {
        let json: Vec<_> = built.iter().map(super::deploy::built_json).collect();
        printer.json(&json);
    } else {
        printer.out(&render_built(&built));
    }
    Ok(ExitStatus::Success)
}
