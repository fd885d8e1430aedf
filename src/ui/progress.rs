//! Apply progress: an indicatif line per in-flight resource (phase, elapsed, retry reason) on a
//! terminal, plain log lines otherwise (CI).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::apply::{ApplyReporter, Outcome};
use crate::model::ResourceAddr;
use crate::plan::{Action, ResourceChange};

fn verb(action: Action) -> (&'static str, &'static str) {
    match action {
        Action::Create => ("creating", "created"),
        Action::Update => ("updating", "updated"),
        Action::Retire => ("pausing", "paused"),
        Action::Delete => ("deleting", "deleted"),
        Action::Replace => ("replacing", "replaced"),
    }
}

fn outcome_text(action: Action, outcome: &Outcome, elapsed: Duration) -> String {
    match outcome {
        Outcome::Succeeded => format!("{} ({:.1}s)", verb(action).1, elapsed.as_secs_f64()),
        Outcome::Failed { error } => {
            format!("failed: {}", error.lines().next().unwrap_or_default())
        }
        Outcome::Skipped { because } => format!("skipped: {because} failed"),
        Outcome::Waiting { reason } => format!("waiting: {reason}"),
    }
}

/// Live progress bars on a terminal.
pub struct TerminalProgress {
    multi: MultiProgress,
    bars: Mutex<BTreeMap<ResourceAddr, ProgressBar>>,
}

impl Default for TerminalProgress {
    fn default() -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(BTreeMap::new()),
        }
    }
}

impl TerminalProgress {
    fn with_bar(&self, address: &ResourceAddr, f: impl FnOnce(&ProgressBar)) {
        if let Ok(bars) = self.bars.lock()
            && let Some(bar) = bars.get(address)
        {
            f(bar);
        }
    }
}

impl ApplyReporter for TerminalProgress {
    fn started(&self, change: &ResourceChange) {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner:.cyan} {prefix:.bold} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(change.address.to_string());
        bar.set_message(verb(change.action).0);
        bar.enable_steady_tick(Duration::from_millis(120));
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(change.address.clone(), bar);
        }
    }

    fn phase(&self, address: &ResourceAddr, phase: &str) {
        self.with_bar(address, |b| b.set_message(phase.to_string()));
    }

    fn retrying(&self, address: &ResourceAddr, attempt: u32, delay: Duration, reason: &str) {
        self.with_bar(address, |b| {
            b.set_message(format!(
                "retrying in {:.1}s (attempt {attempt}): {reason}",
                delay.as_secs_f64()
            ))
        });
    }

    fn finished(
        &self,
        address: &ResourceAddr,
        action: Action,
        outcome: &Outcome,
        elapsed: Duration,
    ) {
        let mark = if *outcome == Outcome::Succeeded {
            "✓"
        } else {
            "✗"
        };
        let text = format!(
            "{mark} {address}: {}",
            outcome_text(action, outcome, elapsed)
        );
        let bar = self.bars.lock().ok().and_then(|mut b| b.remove(address));
        match bar {
            Some(bar) => {
                bar.set_style(
                    ProgressStyle::with_template("{msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.finish_with_message(text);
            }
            None => {
                let _ = self.multi.println(text);
            }
        }
    }
}

/// `--quiet`: no progress at all; the closing report (stdout) lists every failure.
pub struct NoProgress;

impl ApplyReporter for NoProgress {
    fn started(&self, _: &ResourceChange) {}
    fn phase(&self, _: &ResourceAddr, _: &str) {}
    fn retrying(&self, _: &ResourceAddr, _: u32, _: Duration, _: &str) {}
    fn finished(&self, _: &ResourceAddr, _: Action, _: &Outcome, _: Duration) {}
}

/// One plain line per event on stderr, for CI logs.
pub struct LogProgress;

impl ApplyReporter for LogProgress {
    fn started(&self, change: &ResourceChange) {
        eprintln!("{}: {}...", change.address, verb(change.action).0);
    }
    fn phase(&self, address: &ResourceAddr, phase: &str) {
        eprintln!("{address}: {phase}");
    }
    fn retrying(&self, address: &ResourceAddr, attempt: u32, delay: Duration, reason: &str) {
        eprintln!(
            "{address}: retrying in {:.1}s (attempt {attempt}): {reason}",
            delay.as_secs_f64()
        );
    }
    fn finished(
        &self,
        address: &ResourceAddr,
        action: Action,
        outcome: &Outcome,
        elapsed: Duration,
    ) {
        eprintln!("{address}: {}", outcome_text(action, outcome, elapsed));
    }
}
