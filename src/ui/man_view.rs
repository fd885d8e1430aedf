//! The man pages (`stackctl man`), generated with clap_mangen from the clap definition so they
//! never drift from `--help`: stackctl(1) with the global options, the commands, the exit status
//! and the environment, and one page per command (stackctl-plan(1), stackctl-secret-set(1)) with
//! its options and examples.

use clap::Command;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};

/// One man page: its file name (`stackctl-plan.1`) and its roff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub file_name: String,
    pub roff: String,
}

/// Every page of `cli` (the root command): stackctl.1 first, then one per command and nested
/// command, in the order of `--help`; hidden commands and `help` have none.
pub fn pages(cli: Command) -> Vec<Page> {
    let mut root = cli.disable_help_subcommand(true);
    root.build();
    let source = format!(
        "{} {}",
        root.get_name(),
        root.get_version().unwrap_or_default()
    );
    let mut pages = Vec::new();
    collect(&root, &source, true, &mut pages);
    pages
}

fn collect(command: &Command, source: &str, root: bool, pages: &mut Vec<Page>) {
    pages.push(page(command, source, root));
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, source, false, pages);
    }
}

fn page(command: &Command, source: &str, root: bool) -> Page {
    let name = command
        .get_display_name()
        .unwrap_or_else(|| command.get_name());
    let mut command = command.clone();
    if !root {
        // Under their own heading, not mixed into the command's options.
        command = command.mut_args(|arg| {
            if arg.is_global_set() {
                arg.help_heading("Global options")
            } else {
                arg
            }
        });
    }
    let man = Man::new(command.clone())
        .title(name.to_uppercase())
        .source(source)
        .manual("User Commands");
    let file_name = man.get_filename();
    // Every `render_*` starts with the same preamble (the apostrophe string): keep one.
    let preamble = Roff::new().render();
    let mut roff = preamble.clone();
    let mut add = |render: &dyn Fn(&mut Vec<u8>) -> std::io::Result<()>| {
        let mut part = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = render(&mut part);
        let part = String::from_utf8_lossy(&part);
        roff.push_str(part.strip_prefix(preamble.as_str()).unwrap_or(&part));
    };
    add(&|w| man.render_title(w));
    add(&|w| man.render_name_section(w));
    add(&|w| man.render_synopsis_section(w));
    add(&|w| man.render_description_section(w));
    if command.get_arguments().any(|a| !a.is_hide_set()) {
        add(&|w| man.render_options_section(w));
    }
    if command.get_subcommands().any(|s| !s.is_hide_set()) {
        add(&|w| man.render_subcommands_section(w));
    }
    let mut extra = Roff::new();
    examples(&command, &mut extra);
    if root {
        exit_status(&mut extra);
        environment(&mut extra);
    } else {
        extra
            .control("SH", ["SEE ALSO"])
            .text([bold("stackctl"), roman("(1)")]);
    }
    add(&|w| extra.to_writer(w));
    if command.get_version().is_some() {
        add(&|w| man.render_version_section(w));
    }
    Page { file_name, roff }
}

/// The command's `Examples:` (its after-help), one command a line, unfilled.
fn examples(command: &Command, roff: &mut Roff) {
    let Some(after) = command.get_after_help().map(|h| h.to_string()) else {
        return;
    };
    let lines = after.strip_prefix("Examples:\n").unwrap_or(&after);
    roff.control("SH", ["EXAMPLES"]).control("nf", []);
    for line in lines.lines() {
        roff.text([roman(line.trim())]);
    }
    roff.control("fi", []);
}

fn exit_status(roff: &mut Roff) {
    roff.control("SH", ["EXIT STATUS"]);
    for (status, meaning) in [
        ("0", "Success; for plan --detailed-exitcode, no changes."),
        (
            "1",
            "Any error, a refused plan (data loss, stale, over a spending limit), a declined or impossible prompt, a failed resource, audit --fail-on findings, a failing doctor check, a command line that does not parse.",
        ),
        ("2", "Only plan --detailed-exitcode: the plan has changes."),
    ] {
        roff.control("TP", [])
            .text([bold(status)])
            .text([roman(meaning)]);
    }
}

fn environment(roff: &mut Roff) {
    roff.control("SH", ["ENVIRONMENT"]);
    for (name, meaning) in [
        (
            "GOOGLE_APPLICATION_CREDENTIALS",
            "Application Default Credentials file (a key, or workload identity federation).",
        ),
        (
            "STACKCTL_ENDPOINT",
            "Send every Google API call to this URL with anonymous credentials.",
        ),
        (
            "STACKCTL_REGISTRY",
            "Push images to this OCI registry (deploy --registry).",
        ),
        ("NO_COLOR", "No colours."),
    ] {
        roff.control("TP", [])
            .text([bold(name)])
            .text([roman(meaning)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli() -> Command {
        <crate::cli::Cli as clap::CommandFactory>::command()
    }

    #[test]
    fn stackctl_1_names_every_command_and_each_has_its_own_page() {
        let pages = pages(cli());
        let main = &pages[0];
        assert_eq!(main.file_name, "stackctl.1");
        assert!(main.roff.contains(".TH STACKCTL 1 "), "{}", main.roff);
        for command in cli().get_subcommands() {
            let name = command.get_name();
            let roff_name = name.replace('-', "\\-");
            assert!(
                main.roff.contains(&format!("stackctl\\-{roff_name}(1)")),
                "stackctl.1 does not name `{name}`:\n{}",
                main.roff
            );
            let file = format!("stackctl-{name}.1");
            assert!(pages.iter().any(|p| p.file_name == file), "no page {file}");
        }
        assert!(
            pages.iter().any(|p| p.file_name == "stackctl-secret-set.1"),
            "nested commands have pages too"
        );
        assert!(!pages.iter().any(|p| p.file_name.contains("help")));
        assert!(main.roff.contains(".SH \"EXIT STATUS\""), "{}", main.roff);
        assert!(main.roff.contains("STACKCTL_ENDPOINT"), "{}", main.roff);
        assert_eq!(
            main.roff.matches(".ie \\n(.g .ds Aq").count(),
            1,
            "one preamble:\n{}",
            main.roff
        );
    }

    #[test]
    fn the_plan_page_has_its_options_and_examples() {
        let pages = pages(cli());
        let plan = pages
            .iter()
            .find(|p| p.file_name == "stackctl-plan.1")
            .expect("plan page");
        assert!(
            plan.roff.contains("\\-\\-detailed\\-exitcode"),
            "{}",
            plan.roff
        );
        assert!(plan.roff.contains("\\-\\-cost\\-limit"), "{}", plan.roff);
        assert!(
            plan.roff
                .contains(".SH EXAMPLES\n.nf\nstackctl plan \\-\\-local\n"),
            "{}",
            plan.roff
        );
        assert!(plan.roff.contains(".SH \"SEE ALSO\""), "{}", plan.roff);
    }
}
