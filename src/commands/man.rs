//! `stackctl man`: prints stackctl(1), or writes it and one page per command into a folder.

use anyhow::{Context, Result};
use clap::CommandFactory;

use super::ExitStatus;
use crate::cli::{Cli, ManArgs};
use crate::ui::Printer;
use crate::ui::man_view;

pub fn run(args: &ManArgs, printer: &Printer) -> Result<ExitStatus> {
    let pages = man_view::pages(Cli::command());
    let Some(dir) = &args.out else {
        // stackctl.1 comes first.
        if let Some(main) = pages.first() {
            printer.out(&main.roff);
        }
        return Ok(ExitStatus::Success);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for page in &pages {
        let path = dir.join(&page.file_name);
        std::fs::write(&path, &page.roff).with_context(|| format!("writing {}", path.display()))?;
    }
    printer.note(&format!(
        "wrote {} man pages to {} (stackctl.1 and one per command)",
        pages.len(),
        dir.display()
    ));
    Ok(ExitStatus::Success)
}
