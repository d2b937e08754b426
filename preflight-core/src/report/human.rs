//! The operator's report: one line per check, grouped by tier, with hints under failures; and
//! the offline plan.

use std::fmt::Write as _;
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use serde::Serialize;

use super::{CheckResult, Report, RunEnd, Verdict};
use crate::contract::{Ceiling, Values};
use crate::outcome::Status;
use crate::plan::{LeftOut, Plan};
use crate::tier::Tier;

const GREEN: Style = AnsiColor::Green.on_default();
const YELLOW: Style = AnsiColor::Yellow.on_default();
const RED: Style = AnsiColor::Red.on_default();
const DIM: Style = Style::new().dimmed();
const BOLD: Style = Style::new().bold();

/// Writes `text` in `style` when colour is on.
struct Painter {
    color: bool,
}

impl Painter {
    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_owned()
        }
    }
}

fn symbol(r: &CheckResult) -> (&'static str, Style) {
    match (r.outcome.status, r.blocked_by.is_some()) {
        (_, true) | (Status::Skip, _) => ("-", DIM),
        (Status::Pass, _) => ("✔", GREEN),
        (Status::Warn, _) => ("‼", YELLOW),
        (Status::Fail, _) => ("×", RED),
    }
}

/// A duration as people read it: `850ms`, `1.2s`, `2m05s`.
fn short(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// Indents every line of a multi-line text.
fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|l| format!("{prefix}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn tier_heading(tier: Tier) -> String {
    format!("Tier {tier} · {}", tier.name())
}

/// Renders the report for a person. `color` adds ANSI colours; without it the text has no
/// escape byte at all.
#[must_use]
pub fn human(report: &Report, color: bool) -> String {
    let p = Painter { color };
    let mut out = String::new();
    let c = &report.cluster;
    let build = c
        .build_id
        .as_ref()
        .map(|b| format!(" {b}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{} tier {} ({}) on {} {}{build} cluster {}",
        p.paint(BOLD, &format!("preflight {}", report.preflight_version)),
        report.tier,
        report.tier.name(),
        c.mode,
        c.env,
        c.host_suffix
    );
    let mut tier = None;
    for r in &report.checks {
        if tier != Some(r.tier) {
            tier = Some(r.tier);
            let _ = writeln!(out, "\n{}", p.paint(BOLD, &tier_heading(r.tier)));
        }
        let (sym, style) = symbol(r);
        let mut line = format!("  {} {}", p.paint(style, sym), r.id);
        let mut notes = Vec::new();
        if let Some(dep) = r.blocked_by {
            notes.push(format!("blocked by {dep}"));
        }
        if !r.settled && r.blocked_by.is_none() {
            notes.push(match report.end {
                RunEnd::Interrupted => format!("interrupted after {} attempt(s)", r.attempts),
                _ => format!(
                    "still failing at the deadline after {} attempt(s)",
                    r.attempts
                ),
            });
        }
        if !r.required && r.outcome.status == Status::Fail {
            notes.push("advisory".to_owned());
        }
        if !notes.is_empty() {
            let _ = write!(line, " ({})", notes.join(", "));
        }
        let _ = writeln!(out, "{line}  {}", r.outcome.message);
        if let (Some(hint), Status::Warn | Status::Fail) = (&r.outcome.hint, r.outcome.status) {
            let _ = writeln!(
                out,
                "{}",
                p.paint(DIM, &indent(&format!("hint: {hint}"), "      "))
            );
        }
    }
    if !report.left_out.is_empty() {
        let _ = writeln!(out, "\n{}", p.paint(BOLD, "Not run"));
        for l in &report.left_out {
            let _ = writeln!(out, "  {} {} ({})", p.paint(DIM, "-"), l.id, l.reason);
        }
    }
    if !report.notes.is_empty() {
        let _ = writeln!(out, "\n{}", p.paint(BOLD, "Notes"));
        for n in &report.notes {
            let _ = writeln!(out, "  {n}");
        }
    }
    let counts = report.counts();
    let tally = format!(
        "{} passed, {} warned, {} failed, {} skipped in {}",
        counts.passed,
        counts.warned,
        counts.failed,
        counts.skipped,
        short(report.duration)
    );
    let failed_required = report
        .checks
        .iter()
        .filter(|r| r.required && r.settled && r.outcome.status == Status::Fail)
        .count();
    let (verdict, style) = match (report.verdict, report.end) {
        (Verdict::Passed, _) => ("PASSED".to_owned(), GREEN),
        (Verdict::Failed, _) => (
            format!("FAILED: {failed_required} required check(s) failed"),
            RED,
        ),
        (Verdict::Unsettled, RunEnd::Interrupted) => {
            ("INTERRUPTED before every check settled".to_owned(), YELLOW)
        }
        (Verdict::Unsettled, _) => (
            "UNSETTLED: the deadline was reached before every check settled".to_owned(),
            YELLOW,
        ),
    };
    let _ = writeln!(
        out,
        "\n{} (exit {})  {tally}",
        p.paint(style.bold(), &verdict),
        report.exit_code
    );
    out
}

/// One planned check, as the plan shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PlannedCheck<'a> {
    id: &'static str,
    tier: Tier,
    title: &'a str,
    needs: &'a [&'static str],
    required: bool,
}

/// The plan as JSON (schema `preflight.plan/v1`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PlanDoc<'a> {
    schema: &'static str,
    tier: Tier,
    ceiling: &'a Ceiling,
    mode: String,
    env: &'a str,
    host_suffix: &'a str,
    owner_id: &'a str,
    checks: Vec<PlannedCheck<'a>>,
    left_out: &'a [LeftOut],
}

fn plan_doc<'a>(plan: &'a Plan, values: &'a Values) -> PlanDoc<'a> {
    PlanDoc {
        schema: "preflight.plan/v1",
        tier: plan.tier,
        ceiling: &plan.ceiling,
        mode: values.mode.value.to_string(),
        env: &values.env.value,
        host_suffix: &values.host_suffix.value,
        owner_id: &values.owner_id.value,
        checks: plan
            .checks
            .iter()
            .map(|e| PlannedCheck {
                id: e.meta.id,
                tier: e.meta.tier,
                title: &e.meta.title,
                needs: &e.meta.needs,
                required: e.meta.required,
            })
            .collect(),
        left_out: &plan.left_out,
    }
}

/// The plan as pretty JSON, schema `preflight.plan/v1`.
#[must_use]
pub fn plan_json(plan: &Plan, values: &Values) -> String {
    let mut text = serde_json::to_string_pretty(&plan_doc(plan, values)).unwrap_or_default();
    text.push('\n');
    text
}

/// The plan for a person: what would run, by tier, and why everything else would not.
#[must_use]
pub fn plan_text(plan: &Plan, values: &Values) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "preflight plan: tier {} ({}) on {} {} cluster {}",
        plan.tier,
        plan.tier.name(),
        values.mode.value,
        values.env.value,
        values.host_suffix.value
    );
    let _ = writeln!(
        out,
        "ceiling: tier {} ({})",
        plan.ceiling.tier, plan.ceiling.rule
    );
    let mut tier = None;
    for e in &plan.checks {
        if tier != Some(e.meta.tier) {
            tier = Some(e.meta.tier);
            let _ = writeln!(out, "\n{}", tier_heading(e.meta.tier));
        }
        let mut line = format!("  {:<22} {}", e.meta.id, e.meta.title);
        if !e.meta.needs.is_empty() {
            let _ = write!(line, "  [needs {}]", e.meta.needs.join(", "));
        }
        if !e.meta.required {
            line.push_str("  [advisory]");
        }
        let _ = writeln!(out, "{line}");
    }
    if !plan.left_out.is_empty() {
        let _ = writeln!(out, "\nNot run");
        for l in &plan.left_out {
            let _ = writeln!(out, "  {:<22} tier {}: {}", l.id, l.tier, l.reason);
        }
    }
    let _ = writeln!(
        out,
        "\n{} check(s) would run, {} left out",
        plan.checks.len(),
        plan.left_out.len()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{failing_report, passing_report, test_values};

    #[test]
    fn renders_a_failing_run() {
        insta::assert_snapshot!(human(&failing_report(), false));
    }

    #[test]
    fn renders_a_passing_run() {
        insta::assert_snapshot!(human(&passing_report(), false));
    }

    #[test]
    fn colours_only_on_request() {
        assert!(human(&failing_report(), true).contains('\u{1b}'));
        assert!(!human(&failing_report(), false).contains('\u{1b}'));
    }

    #[test]
    fn renders_the_plan() {
        let values = test_values();
        let plan = crate::plan::plan(&values, &crate::config::Config::default(), Tier::One, &[])
            .expect("plans");
        insta::assert_snapshot!(plan_text(&plan, &values));
        let json: serde_json::Value =
            serde_json::from_str(&plan_json(&plan, &values)).expect("json");
        assert_eq!(json["schema"], "preflight.plan/v1");
        assert_eq!(json["checks"].as_array().map(Vec::len), Some(8));
        assert_eq!(
            json["leftOut"][0]["reason"],
            "tier 1.5 is above the requested tier 1"
        );
    }

    #[test]
    fn shortens_durations() {
        assert_eq!(short(Duration::from_millis(850)), "850ms");
        assert_eq!(short(Duration::from_millis(1240)), "1.2s");
        assert_eq!(short(Duration::from_secs(125)), "2m05s");
    }
}
