//! The man page (`stackctl man`), generated from the clap definition so it never drifts from
//! `--help`: name, synopsis, global options, every command with its options and examples, exit
//! status and environment, as roff for man(1).

use std::fmt::Write;

use clap::{Arg, Command};

/// Text safe in roff: backslashes escaped, a line never starting with a control character.
fn roff(text: &str) -> String {
    text.replace('\\', "\\e")
        .lines()
        .map(|line| {
            let line = line.trim_end();
            if line.starts_with('.') || line.starts_with('\'') {
                format!("\\&{line}")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `\-\-cost\-limit <USD>`, `\-f, \-\-file <FILE>`, `<ADDRESSES>...`
fn arg_synopsis(arg: &Arg) -> String {
    let mut names = Vec::new();
    if let Some(short) = arg.get_short() {
        names.push(format!("\\-{short}"));
    }
    if let Some(long) = arg.get_long() {
        names.push(format!("\\-\\-{}", long.replace('-', "\\-")));
    }
    let takes_value = arg.get_action().takes_values();
    let value = arg
        .get_value_names()
        .and_then(|v| v.first())
        .map(|v| v.to_string())
        .unwrap_or_else(|| arg.get_id().to_string().to_uppercase());
    match (names.is_empty(), takes_value) {
        (true, _) => format!("<{value}>"),
        (false, true) => format!("{} <{value}>", names.join(", ")),
        (false, false) => names.join(", "),
    }
}

fn options(out: &mut String, command: &Command, include_global: bool) {
    for arg in command.get_arguments() {
        if arg.is_hide_set() || (arg.is_global_set() && !include_global) {
            continue;
        }
        if matches!(arg.get_id().as_str(), "help" | "version") {
            continue;
        }
        let _ = writeln!(out, ".TP\n.B {}", arg_synopsis(arg));
        if let Some(help) = arg.get_long_help().or(arg.get_help()) {
            let _ = writeln!(out, "{}", roff(&help.to_string()));
        }
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|d| d.to_string_lossy().into_owned())
            .collect();
        if !defaults.is_empty() && arg.get_action().takes_values() {
            let _ = writeln!(out, ".br\nDefault: {}.", roff(&defaults.join(", ")));
        }
    }
}

fn section(out: &mut String, prefix: &str, command: &Command) {
    let name = format!("{prefix} {}", command.get_name());
    let _ = writeln!(out, ".SS \"{name}\"");
    if let Some(about) = command.get_long_about().or(command.get_about()) {
        let _ = writeln!(out, "{}", roff(&about.to_string()));
    }
    options(out, command, false);
    if let Some(after) = command.get_after_help() {
        let _ = writeln!(out, ".PP\n.nf\n{}\n.fi", roff(&after.to_string()));
    }
    for sub in command.get_subcommands() {
        section(out, &name, sub);
    }
}

/// The whole page for `cli` (the root command).
pub fn render(cli: &Command) -> String {
    let name = cli.get_name();
    let mut out = String::new();
    let _ = writeln!(
        out,
        ".TH {} 1 \"\" \"{name} {}\" \"User Commands\"",
        name.to_uppercase(),
        cli.get_version().unwrap_or_default()
    );
    let _ = writeln!(
        out,
        ".SH NAME\n{name} \\- {}",
        roff(&cli.get_about().map(|a| a.to_string()).unwrap_or_default())
    );
    let _ = writeln!(
        out,
        ".SH SYNOPSIS\n.B {name}\n[\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR]"
    );
    let _ = writeln!(out, ".SH GLOBAL OPTIONS");
    options(&mut out, cli, true);
    let _ = writeln!(out, ".SH COMMANDS");
    for command in cli.get_subcommands() {
        if command.get_name() != "help" {
            section(&mut out, name, command);
        }
    }
    let _ = writeln!(
        out,
        ".SH EXIT STATUS\n.TP\n.B 0\nSuccess; for \\fBplan \\-\\-detailed\\-exitcode\\fR, no changes.\n.TP\n.B 1\nAny error, a refused plan (data loss, stale, over a spending limit), a declined or impossible prompt, a failed resource, \\fBaudit \\-\\-fail\\-on\\fR findings, a command line that does not parse.\n.TP\n.B 2\nOnly \\fBplan \\-\\-detailed\\-exitcode\\fR: the plan has changes."
    );
    let _ = writeln!(
        out,
        ".SH ENVIRONMENT\n.TP\n.B GOOGLE_APPLICATION_CREDENTIALS\nApplication Default Credentials file (a key, or workload identity federation).\n.TP\n.B STACKCTL_ENDPOINT\nSend every Google API call to this URL with anonymous credentials.\n.TP\n.B STACKCTL_REGISTRY\nPush images to this OCI registry (\\fBdeploy \\-\\-registry\\fR).\n.TP\n.B NO_COLOR\nNo colours."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_man_page_lists_every_command_with_its_options_and_examples() {
        let cli = <crate::cli::Cli as clap::CommandFactory>::command();
        let page = render(&cli);
        assert!(page.starts_with(".TH STACKCTL 1 "), "{page}");
        for command in cli.get_subcommands() {
            assert!(
                page.contains(&format!(".SS \"stackctl {}\"", command.get_name())),
                "{}",
                command.get_name()
            );
        }
        assert!(page.contains(".B \\-\\-cost\\-limit <USD>"), "{page}");
        assert!(
            page.contains("Examples:\n  stackctl plan --local\n"),
            "{page}"
        );
        // Every request is one this page means to make: text never starts one by accident.
        let requests = [".TH", ".SH", ".SS", ".TP", ".B", ".PP", ".br", ".nf", ".fi"];
        for line in page.lines().filter(|l| l.starts_with('.')) {
            let request = line.split(' ').next().unwrap_or_default();
            assert!(requests.contains(&request), "{line}");
        }
    }
}
