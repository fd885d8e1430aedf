//! Everything that reaches the terminal: the printer, the plan view, apply progress, prompts.
//! Plans and reports go to stdout; progress, logs and errors go to stderr.

pub mod audit_view;
pub mod cost_view;
pub mod deploy_view;
pub mod doctor_view;
pub mod man_view;
pub mod plan_view;
pub mod progress;
pub mod prompt;

use std::io::{IsTerminal, Write};

/// The one writer for stdout/stderr, knowing whether colour is wanted.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub color: bool,
    pub stderr_is_terminal: bool,
    /// `--quiet`: no progress and no notes, only warnings and errors on stderr.
    pub quiet: bool,
}

impl Printer {
    pub fn new(no_color: bool, quiet: bool) -> Self {
        let color =
            !no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal();
        Self {
            color,
            stderr_is_terminal: std::io::stderr().is_terminal(),
            quiet,
        }
    }

    /// Writes a status line to stderr (what stackctl is doing, notes), unless `--quiet`.
    pub fn note(&self, text: &str) {
        if !self.quiet {
            self.err(text);
        }
    }

    /// Writes to stdout (plans, reports, JSON).
    pub fn out(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        if !text.ends_with('\n') {
            let _ = stdout.write_all(b"\n");
        }
        let _ = stdout.flush();
    }

    /// Writes a line to stderr (status, warnings, errors).
    pub fn err(&self, text: &str) {
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "{text}");
    }

    pub fn json<T: serde::Serialize>(&self, value: &T) {
        match serde_json::to_string_pretty(value) {
            Ok(s) => self.out(&s),
            Err(e) => self.err(&format!("error: could not render JSON: {e}")),
        }
    }
}
