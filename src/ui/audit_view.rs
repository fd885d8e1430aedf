//! Renders an audit report: an aligned table for people, or Markdown for a PR or a ticket.
//! Pure text from the same [`AuditReport`] that `--json` prints.

use std::fmt::Write;

use super::cost_view::price_source_text;
use crate::audit::{AuditReport, Finding};
use crate::cost::format_usd;

fn waste(finding: &Finding) -> String {
    finding.monthly_waste_usd.map_or_else(
        || "unpriced".to_string(),
        |usd| format!("{}/mo", format_usd(usd)),
    )
}

/// `services/worker` from a full name.
fn short_resource(name: &str) -> String {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.len() {
        n if n >= 2 => format!("{}/{}", parts[n - 2], parts[n - 1]),
        _ => name.to_string(),
    }
}

fn summary(report: &AuditReport) -> String {
    format!(
        "{} finding(s) in project {} ({}): {}/mo of priced waste{}.",
        report.findings.len(),
        report.project,
        report.region,
        format_usd(report.total_monthly_waste_usd),
        if report.unpriced > 0 {
            format!(", {} unpriced risk(s)", report.unpriced)
        } else {
            String::new()
        }
    )
}

fn footer(report: &AuditReport, out: &mut String) {
    let _ = writeln!(
        out,
        "Windows: no activity in {} days; hourly traffic over {} days; BigQuery reads over {} days. Prices: {}, {}, 30-day month.",
        report.window.idle_days,
        report.window.traffic_days,
        report.window.cold_table_days,
        price_source_text(&report.basis),
        report.basis.region
    );
    let pending: Vec<String> = report
        .not_yet_checked
        .iter()
        .map(|p| format!("{} {} (needs {})", p.id, p.rule, p.needs))
        .collect();
    if !pending.is_empty() {
        let _ = writeln!(out, "Not checked: {}.", pending.join("; "));
    }
}

/// The table for people.
pub fn render_table(report: &AuditReport) -> String {
    let mut out = String::new();
    if report.findings.is_empty() {
        let _ = writeln!(
            out,
            "No findings in project {} ({}).",
            report.project, report.region
        );
        footer(report, &mut out);
        return out;
    }
    let rows: Vec<[String; 5]> = report
        .findings
        .iter()
        .map(|f| {
            [
                f.severity.as_str().to_string(),
                waste(f),
                f.rule.id().to_string(),
                short_resource(&f.resource),
                f.title.clone(),
            ]
        })
        .collect();
    let header = [
        "SEVERITY".to_string(),
        "WASTE".into(),
        "RULE".into(),
        "RESOURCE".into(),
        "FINDING".into(),
    ];
    let width = |i: usize| {
        rows.iter()
            .chain(std::iter::once(&header))
            .map(|r| r[i].len())
            .max()
            .unwrap_or(0)
    };
    let widths = [width(0), width(1), width(2), width(3)];
    let _ = writeln!(
        out,
        "{:w0$}  {:>w1$}  {:w2$}  {:w3$}  {}",
        header[0],
        header[1],
        header[2],
        header[3],
        header[4],
        w0 = widths[0],
        w1 = widths[1],
        w2 = widths[2],
        w3 = widths[3]
    );
    let indent = widths[0] + 2;
    for (row, finding) in rows.iter().zip(&report.findings) {
        let _ = writeln!(
            out,
            "{:w0$}  {:>w1$}  {:w2$}  {:w3$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
        let _ = writeln!(out, "{:indent$}evidence: {}", "", finding.evidence);
        let _ = writeln!(out, "{:indent$}fix: {}", "", finding.fix);
        if let Some(recommender) = &finding.recommender {
            let _ = writeln!(out, "{:indent$}recommender: {recommender}", "");
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", summary(report));
    footer(report, &mut out);
    out
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// A Markdown table for a pull request or a ticket.
pub fn render_markdown(report: &AuditReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## stackctl audit: {}", report.project);
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", summary(report));
    if !report.findings.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| Severity | Waste | Rule | Resource | Finding | Evidence | Fix |"
        );
        let _ = writeln!(out, "|---|---:|---|---|---|---|---|");
        for f in &report.findings {
            let _ = writeln!(
                out,
                "| {} | {} | {} | `{}` | {} | {} | {} |",
                f.severity.as_str(),
                waste(f),
                f.rule.id(),
                short_resource(&f.resource),
                cell(&f.title),
                cell(&f.evidence),
                cell(&f.fix)
            );
        }
    }
    let _ = writeln!(out);
    footer(report, &mut out);
    out
}
