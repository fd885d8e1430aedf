//! Renders `stackctl doctor`'s checks: one line each (`ok`, `warn`, `FAIL`), the detail, and the
//! fix under a failing or warning check.

use std::fmt::Write;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    Ok,
    /// Not a failure: something apply does itself, or cannot be checked from here.
    Warn,
    Fail,
}

/// One check: what was looked at, what was found, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub status: CheckStatus,
    pub detail: String,
    /// Commands or roles that fix it, one a line.
    pub fix: Vec<String>,
}

impl Check {
    pub fn new(name: &'static str, status: CheckStatus, detail: impl Into<String>) -> Self {
        Self {
            name,
            status,
            detail: detail.into(),
            fix: Vec::new(),
        }
    }

    pub fn with_fix(mut self, fix: impl IntoIterator<Item = String>) -> Self {
        self.fix.extend(fix);
        self
    }
}

pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for check in checks {
        let mark = match check.status {
            CheckStatus::Ok => "ok  ",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "FAIL",
        };
        let detail = check.detail.replace('\n', "\n       ");
        let _ = writeln!(out, "{mark}  {}: {detail}", check.name);
        for fix in &check.fix {
            let _ = writeln!(out, "        fix: {fix}");
        }
    }
    let failed = checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .count();
    let _ = match failed {
        0 => writeln!(out, "All checks passed."),
        n => writeln!(out, "{n} check{} failed.", if n == 1 { "" } else { "s" }),
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_render_one_line_each_with_their_fixes() {
        let checks = [
            Check::new("credentials", CheckStatus::Ok, "gcloud user credentials"),
            Check::new(
                "APIs",
                CheckStatus::Warn,
                "run.googleapis.com is not enabled",
            )
            .with_fix(["gcloud services enable run.googleapis.com".to_string()]),
            Check::new(
                "permissions",
                CheckStatus::Fail,
                "missing run.services.create",
            ),
        ];
        assert_eq!(
            render(&checks),
            "ok    credentials: gcloud user credentials\n\
             warn  APIs: run.googleapis.com is not enabled\n        \
             fix: gcloud services enable run.googleapis.com\n\
             FAIL  permissions: missing run.services.create\n\
             1 check failed.\n"
        );
    }
}
