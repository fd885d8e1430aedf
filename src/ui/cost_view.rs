//! Renders cost figures: the per-resource `# cost:` line and the total line of a plan, and the
//! `stackctl cost` breakdown table (the free allowances only with `-v`). Pure text from the same values `--json` prints.

use std::fmt::Write;

use crate::cost::{
    Estimate, FreeTierNote, PlanCost, PriceBasis, PriceSource, RegionTier, ResourceCost, StackCost,
    format_delta, format_usd,
};

fn monthly(estimate: &Estimate) -> String {
    match estimate.unknown {
        Some(_) => format!("{}/mo + unknown", format_usd(estimate.monthly_usd)),
        None => format!("{}/mo", format_usd(estimate.monthly_usd)),
    }
}

/// `# cost: $9.72/mo -> $19.44/mo (+$9.72/mo)`, naming any missing usage.
pub fn resource_cost_line(cost: &ResourceCost) -> String {
    let mut line = format!(
        "# cost: {} -> {} ({}/mo)",
        monthly(&cost.before),
        monthly(&cost.after),
        format_delta(cost.delta_monthly_usd)
    );
    if let Some(reason) = &cost.after.unknown {
        let _ = write!(line, "; usage cost unknown: {reason}");
    }
    line
}

/// `180,000`, `0.5`
fn amount(value: f64) -> String {
    if value.fract() != 0.0 {
        return value.to_string();
    }
    let digits = format!("{value:.0}");
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `Cloud Run 180,000 vCPU-seconds (per billing account per month (request-based)), ...`
pub fn free_tiers_text(tiers: &[FreeTierNote]) -> String {
    if tiers.is_empty() {
        return "none applies".into();
    }
    tiers
        .iter()
        .map(|t| {
            format!(
                "{} {} {} ({})",
                t.item.product(),
                amount(t.allowance),
                t.unit,
                t.scope
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `USD list prices of 2026-11-25`, or with `--live-prices` `USD prices read live from the Cloud
/// Billing Catalog on 2026-12-01`, naming what kept its built-in price.
pub fn price_source_text(basis: &PriceBasis) -> String {
    let builtin = format!(
        "{} list prices of {}",
        basis.currency, basis.price_table_date
    );
    let live = match (basis.price_source, &basis.live) {
        (PriceSource::CloudBillingCatalog, Some(live)) => live,
        _ => return builtin,
    };
    let mut text = format!(
        "{} prices read live from the Cloud Billing Catalog on {}",
        basis.currency, live.read_on
    );
    if !live.missing.is_empty() {
        let kept: Vec<&str> = live.missing.iter().map(|m| m.item.describe()).collect();
        let _ = write!(text, " (built-in {builtin} for {})", kept.join(", "));
    }
    text
}

fn basis_text(basis: &PriceBasis) -> String {
    let tier = match basis.region_tier {
        RegionTier::Tier1 => "tier 1",
        RegionTier::Tier2 => "tier 2",
        RegionTier::Unlisted => "unlisted region, priced as tier 2",
    };
    format!(
        "{}, {} {tier}, {}-day month",
        price_source_text(basis),
        basis.region,
        basis.month_seconds / 86_400.0
    )
}

/// `$0.00 -> $16.52 + unknown (+$16.52/mo)`: the stack's monthly estimate before and after a plan.
pub fn plan_cost_change(cost: &PlanCost) -> String {
    let unknown = if cost.unknown.is_empty() {
        ""
    } else {
        " + unknown"
    };
    format!(
        "{} -> {}{unknown} ({}/mo)",
        format_usd(cost.past_total_monthly_usd),
        format_usd(cost.total_monthly_usd),
        format_delta(cost.diff_monthly_usd)
    )
}

/// `; free tier not included, see `stackctl cost -v``: the allowances themselves are listed
/// only by `stackctl cost -v`, so a plan stays short.
pub fn free_tier_pointer(tiers: &[FreeTierNote]) -> &'static str {
    if tiers.is_empty() {
        ""
    } else {
        "; free tier not included, see `stackctl cost -v`"
    }
}

/// The plan's closing cost lines.
pub fn plan_total_lines(cost: &PlanCost) -> Vec<String> {
    let mut lines = vec![format!(
        "Monthly cost: {}{}.",
        plan_cost_change(cost),
        free_tier_pointer(&cost.free_tier_not_included)
    )];
    lines.extend(plan_cost_footnotes(cost));
    lines
}

/// What the plan's estimate leaves out and assumes: the usage left unknown, the prices.
pub fn plan_cost_footnotes(cost: &PlanCost) -> Vec<String> {
    let mut lines = Vec::new();
    if !cost.unknown.is_empty() {
        lines.push(format!(
            "Usage cost unknown: {}; add the assumptions to [usage] in stack.toml.",
            cost.unknown.join(", ")
        ));
    }
    lines.push(format!("Prices: {}.", basis_text(&cost.basis)));
    lines
}

/// `stackctl cost`: one row per resource and component, then the total; `verbose` (`-v`) lists
/// the free allowances not subtracted, otherwise only how many there are.
pub fn render_stack_cost(cost: &StackCost, verbose: bool) -> String {
    let mut rows: Vec<[String; 4]> = Vec::new();
    for (address, estimate) in &cost.resources {
        rows.push([
            address.to_string(),
            String::new(),
            String::new(),
            monthly(estimate),
        ]);
        for line in &estimate.lines {
            rows.push([
                format!("  {}", line.component.describe()),
                format!("{} {}", amount(round_quantity(line.quantity)), line.unit),
                format!("{}", line.unit_usd),
                format_usd(line.monthly_usd),
            ]);
        }
        if let Some(reason) = &estimate.unknown {
            rows.push([
                "  usage".into(),
                "unknown".into(),
                String::new(),
                reason.clone(),
            ]);
        }
    }
    let header = [
        "RESOURCE / COMPONENT".to_string(),
        "QUANTITY".into(),
        "USD/UNIT".into(),
        "MONTHLY".into(),
    ];
    let widths: Vec<usize> = (0..4)
        .map(|i| {
            rows.iter()
                .chain(std::iter::once(&header))
                .map(|r| r[i].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Monthly cost of stack `{}` as declared in stack.toml, at {}:",
        cost.stack,
        price_source_text(&cost.basis)
    );
    let _ = writeln!(out);
    for row in std::iter::once(&header).chain(&rows) {
        let _ = writeln!(
            out,
            "  {:w0$}  {:>w1$}  {:>w2$}  {:>w3$}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
    }
    let _ = writeln!(out);
    let unknown = if cost.unknown.is_empty() {
        String::new()
    } else {
        format!(" + unknown ({})", cost.unknown.join(", "))
    };
    let _ = writeln!(
        out,
        "Total: {}/mo{unknown}",
        format_usd(cost.total_monthly_usd)
    );
    let free = &cost.free_tier_not_included;
    if verbose || free.is_empty() {
        let _ = writeln!(out, "Free tier not included: {}.", free_tiers_text(free));
    } else {
        let _ = writeln!(
            out,
            "Free tier not included: {} allowance{}; `stackctl cost -v` lists them.",
            free.len(),
            if free.len() == 1 { "" } else { "s" }
        );
    }
    let _ = writeln!(out, "Prices: {}.", basis_text(&cost.basis));
    out
}

/// Quantities as people read them: whole units when large, two decimals otherwise.
fn round_quantity(quantity: f64) -> f64 {
    if quantity >= 100.0 {
        quantity.round()
    } else {
        (quantity * 100.0).round() / 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::{PriceTable, estimate};

    #[test]
    fn cost_lines_show_before_after_and_the_change() {
        let prices = PriceTable::builtin("us-central1");
        let sizing = crate::cost::ServiceSizing {
            cpu_millis: 1000,
            memory_bytes: 512 << 20,
            min_instances: 1,
            cpu_idle: true,
        };
        let one = estimate::service(&prices, sizing, None, "service.worker");
        let two = estimate::service(
            &prices,
            crate::cost::ServiceSizing {
                min_instances: 2,
                ..sizing
            },
            None,
            "service.worker",
        );
        assert_eq!(
            resource_cost_line(&ResourceCost::new(one, two)),
            "# cost: $9.72/mo + unknown -> $19.44/mo + unknown (+$9.72/mo); usage cost unknown: no [usage] for service.worker"
        );
        assert_eq!(amount(2_000_000.0), "2,000,000");
        assert_eq!(amount(0.5), "0.5");
    }
}
