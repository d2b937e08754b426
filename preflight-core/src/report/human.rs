//! The operator's view: one line per check, grouped by tier, with hints under failures; and
//! the offline plan.

use anstyle::{AnsiColor, Style};
use std::fmt::Write as _;

use super::{
    CheckResult, Label, Report, blocked_text, cut_short, plural, short_duration, tally,
    verdict_line,
};
use crate::contract::Values;
use crate::plan::{LeftOut, Plan};
use crate::platform::Scope;
use crate::tier::Tier;

const GREEN: Style = AnsiColor::Green.on_default();
const YELLOW: Style = AnsiColor::Yellow.on_default();
const RED: Style = AnsiColor::Red.on_default();
const DIM: Style = Style::new().dimmed();
const BOLD: Style = Style::new().bold();

/// Applies styles only when colour is on, so that the plain text has no escape byte at all.
struct Painter {
    color: bool,
}

impl Painter {
    /// Styles each line on its own: a pager, `grep` or a log viewer that shows one line must
    /// not carry the colour onto the next.
    fn paint(&self, style: Style, text: &str) -> String {
        if !self.color {
            return text.to_owned();
        }
        text.split('\n')
            .map(|line| format!("{}{line}{}", style.render(), style.render_reset()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The symbol of a check and its colour. An advisory failure is yellow: it is a failure, but
/// it does not fail the run.
fn mark(r: &CheckResult) -> (&'static str, Style) {
    match Label::of(r) {
        Label::Pass => ("✔", GREEN),
        Label::Warn => ("‼", YELLOW),
        Label::Fail | Label::Unsettled if !r.required => ("×", YELLOW),
        Label::Fail | Label::Unsettled => ("×", RED),
        Label::Blocked | Label::Skipped => ("-", DIM),
    }
}

/// Prefixes every line after the first with `indent`, so that a multi-line text stays in its
/// column.
fn hang(text: &str, indent: usize) -> String {
    text.trim_end()
        .lines()
        .collect::<Vec<_>>()
        .join(&format!("\n{:indent$}", ""))
}

fn tier_heading(tier: Tier) -> String {
    format!("Tier {tier} · {}", tier.name())
}

/// The checks of `items` grouped by tier, lowest tier first, each group in the given order.
fn by_tier<T>(items: &[T], tier: impl Fn(&T) -> Tier) -> Vec<(Tier, Vec<&T>)> {
    Tier::ALL
        .into_iter()
        .map(|t| (t, items.iter().filter(|i| tier(i) == t).collect::<Vec<_>>()))
        .filter(|(_, group)| !group.is_empty())
        .collect()
}

/// Left-out checks that share a reason, on one line each: a tier-1 run leaves out five checks
/// for two reasons, and the operator needs the reasons more than the list.
fn left_out_lines(left_out: &[LeftOut]) -> Vec<String> {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for l in left_out {
        match groups.iter_mut().find(|(reason, _)| *reason == l.reason) {
            Some((_, ids)) => ids.push(l.id),
            None => groups.push((&l.reason, vec![l.id])),
        }
    }
    groups
        .into_iter()
        .map(|(reason, ids)| format!("{}: {reason}", ids.join(", ")))
        .collect()
}

/// What follows a check's id: the message, with what made the result special first.
fn detail(r: &CheckResult) -> String {
    // The runner's message only repeats the dependency ("not run: crds did not pass").
    if let Some(text) = blocked_text(r) {
        return text;
    }
    let mut marks = Vec::new();
    if !r.required && matches!(Label::of(r), Label::Fail | Label::Unsettled) {
        marks.push("advisory".to_owned());
    }
    if !r.settled() {
        marks.push(cut_short(r));
    }
    if marks.is_empty() {
        r.outcome().message.clone()
    } else {
        format!("({}) {}", marks.join("; "), r.outcome().message)
    }
}

/// Renders the report for a person: a header, the checks by tier with hints under warnings
/// and failures, the checks not run, the notes, then the counts and the verdict with its exit
/// code. `color` adds ANSI colours; without it the text has no escape byte at all.
#[must_use]
pub fn human(report: &Report, color: bool) -> String {
    let p = Painter { color };
    let mut out = String::new();
    let mut heading = format!(
        "{} · {}",
        p.paint(BOLD, &format!("preflight {}", report.preflight_version)),
        report.subject()
    );
    if let Some(tier) = report.tier {
        let _ = write!(heading, " ({})", tier.name());
    }
    if let Some(c) = &report.cluster {
        let _ = write!(heading, " · {} {} cluster {}", c.mode, c.env, c.host_suffix);
    }
    let _ = writeln!(out, "{heading}");
    let width = report.checks.iter().map(|r| r.id.len()).max().unwrap_or(0);
    // "  × " then the id column then two spaces.
    let column = 4 + width + 2;
    for (tier, checks) in by_tier(&report.checks, |r| r.tier) {
        let _ = writeln!(out, "\n{}", p.paint(BOLD, &tier_heading(tier)));
        for r in checks {
            let (symbol, style) = mark(r);
            let label = Label::of(r);
            let text = hang(&detail(r), column);
            let text = match label {
                Label::Blocked | Label::Skipped => p.paint(DIM, &text),
                Label::Pass | Label::Warn | Label::Fail | Label::Unsettled => text,
            };
            let _ = writeln!(out, "  {} {:<width$}  {text}", p.paint(style, symbol), r.id);
            if let (true, Some(hint)) = (label.shows_hint(), &r.outcome().hint) {
                let hint = hang(&format!("hint: {hint}"), column + "hint: ".len());
                let _ = writeln!(out, "{:column$}{}", "", p.paint(DIM, &hint));
            }
        }
    }
    if !report.left_out.is_empty() {
        let _ = writeln!(out, "\n{}", p.paint(BOLD, "Not run"));
        for line in left_out_lines(&report.left_out) {
            let _ = writeln!(out, "  {}", p.paint(DIM, &line));
        }
    }
    if !report.notes.is_empty() {
        out.push('\n');
        for note in &report.notes {
            let _ = writeln!(out, "note: {}", hang(note, "note: ".len()));
        }
    }
    let style = match report.verdict {
        super::Verdict::Passed => GREEN,
        super::Verdict::Failed => RED,
        super::Verdict::Unsettled => YELLOW,
    };
    let _ = writeln!(
        out,
        "\n{} in {}: {}",
        plural(report.checks.len(), "check"),
        short_duration(report.duration),
        tally(report)
    );
    let _ = writeln!(out, "{}", p.paint(style.bold(), &verdict_line(report)));
    out
}

/// The plan for a person, as `preflight plan` prints it: what would run, by tier, with what
/// each check needs and whether it is advisory; why everything else would not run; and the
/// cluster's ceiling with the rule that set it. Making it contacts nothing.
#[must_use]
pub fn plan_text(plan: &Plan, values: &Values) -> String {
    let mut out = String::new();
    let what = match plan.scope {
        Scope::Gate(tier) => format!("tier {tier} ({})", tier.name()),
        Scope::App(app) => format!("app {} · tier {} ({})", app.name, app.tier, app.tier.name()),
    };
    let _ = writeln!(
        out,
        "preflight plan · {what} · {} {} cluster {}",
        values.mode.value, values.env.value, values.host_suffix.value
    );
    let _ = writeln!(
        out,
        "ceiling: tier {}, because {}",
        plan.ceiling.tier, plan.ceiling.rule
    );
    let _ = writeln!(
        out,
        "{}",
        match plan.scope {
            Scope::Gate(tier) => format!(
                "the gate of tier {tier} checks what tiers 0..{tier} need, from the foundation and the tiers below; nothing tier {tier} installs itself"
            ),
            Scope::App(app) => format!(
                "the hook of {app} checks what {} creates for itself, before its workloads start",
                app.name
            ),
        }
    );
    let width = plan
        .checks
        .iter()
        .map(|e| e.meta.id.len())
        .chain(plan.left_out.iter().map(|l| l.id.len()))
        .max()
        .unwrap_or(0);
    for (tier, entries) in by_tier(&plan.checks, |e| e.meta.tier) {
        let _ = writeln!(out, "\n{}", tier_heading(tier));
        for e in entries {
            let mut marks = Vec::new();
            if !e.meta.needs.is_empty() {
                marks.push(format!("needs {}", e.meta.needs.join(", ")));
            }
            if !e.meta.required {
                marks.push("advisory".to_owned());
            }
            let mut line = format!("  {:<width$}  {}", e.meta.id, e.meta.title);
            if !marks.is_empty() {
                let _ = write!(line, "  ({})", marks.join("; "));
            }
            let _ = writeln!(out, "{line}");
            let _ = writeln!(
                out,
                "  {:<width$}  provided by {}; needed by {}",
                "", e.meta.provided_by, e.meta.needed_by
            );
        }
    }
    if !plan.left_out.is_empty() {
        let _ = writeln!(out, "\nNot run");
        for l in &plan.left_out {
            let _ = writeln!(
                out,
                "  {:<width$}  needed by {}: {}",
                l.id, l.needed_by, l.reason
            );
        }
    }
    let _ = writeln!(
        out,
        "\n{} would run, {} left out; nothing was contacted to make this plan.",
        plural(plan.checks.len(), "check"),
        plan.left_out.len()
    );
    if plan.checks.iter().any(|e| !e.meta.required) {
        let _ = writeln!(
            out,
            "An advisory check's failure is reported but does not fail the run."
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::outcome::{Outcome, Status};
    use crate::platform::Scope;
    use crate::report::tests::{failing_report, passing_report, test_values};
    use crate::report::{Verdict, short_duration, verdict};
    use crate::result::{Cut, End, RunEnd};

    #[test]
    fn renders_a_failing_run() {
        insta::assert_snapshot!(human(&failing_report(), false));
    }

    #[test]
    fn renders_a_passing_run() {
        insta::assert_snapshot!(human(&passing_report(), false));
    }

    /// A run whose only trouble is a required check still failing at the deadline.
    fn unsettled_report(end: RunEnd) -> Report {
        let mut report = failing_report();
        report
            .checks
            .retain(|r| r.id == "kube-api" || r.id == "storage-class");
        report.end = end;
        report.verdict = verdict(end, &report.checks);
        report.exit_code = report.verdict.exit_code();
        report
    }

    #[test]
    fn renders_an_unsettled_run() {
        let report = unsettled_report(RunEnd::DeadlineReached);
        assert_eq!(report.verdict, Verdict::Unsettled);
        insta::assert_snapshot!(human(&report, false));
    }

    #[test]
    fn says_how_each_run_ended() {
        let mut interrupted = unsettled_report(RunEnd::Interrupted);
        interrupted.checks[1].attempts = 0;
        interrupted.checks[1].end = End::Unsettled {
            last: None,
            cut_by: Cut::Interruption,
        };
        let mut blocked_by_advisory = failing_report();
        blocked_by_advisory.end = RunEnd::Completed;
        blocked_by_advisory
            .checks
            .retain(|r| r.id == "cluster-secret-store" || r.id == "irsa");
        blocked_by_advisory.verdict = verdict(RunEnd::Completed, &blocked_by_advisory.checks);
        let mut warned = passing_report();
        warned.checks[1].end = End::Judged(Outcome::warn("w", "m"));
        for (report, last, check_line) in [
            (
                &passing_report(),
                "PASSED (exit 0)",
                "✔ nodes-ready  3 of 3",
            ),
            (
                &warned,
                "PASSED with 1 warning (exit 0)",
                "‼ nodes-ready  m",
            ),
            (
                &failing_report(),
                "FAILED: 1 required check failed, 1 blocked, 1 did not settle (exit 1)",
                "× storage-class         (still failing at the deadline after 7 attempts) none",
            ),
            (
                &unsettled_report(RunEnd::DeadlineReached),
                "UNSETTLED: the deadline was reached before 1 required check settled (exit 3)",
                "× storage-class  (still failing at the deadline after 7 attempts) none",
            ),
            (
                &interrupted,
                "INTERRUPTED: stopped before 1 required check settled (exit 3)",
                "× storage-class  (interrupted before its first attempt finished) interrupted",
            ),
            (
                &blocked_by_advisory,
                "FAILED: 1 required check blocked (exit 1)",
                "× irsa                  (advisory) ServiceAccount",
            ),
        ] {
            let text = human(report, false);
            assert_eq!(text.lines().last(), Some(last), "{text}");
            assert!(text.contains(check_line), "{check_line:?} in\n{text}");
        }
    }

    #[test]
    fn colours_only_on_request() {
        let coloured = human(&failing_report(), true);
        assert!(coloured.contains("\u{1b}[31m×"), "red failure: {coloured}");
        assert!(coloured.contains("\u{1b}[32m✔"), "green pass: {coloured}");
        assert!(
            coloured.contains("\u{1b}[33m‼"),
            "yellow warning: {coloured}"
        );
        assert!(coloured.contains("\u{1b}[2m"), "dim hints: {coloured}");
        // Every line that opens a style closes it, so no colour leaks to the next line.
        for line in coloured.lines() {
            let mut open = false;
            for escape in line.split('\u{1b}').skip(1) {
                open = !escape.starts_with("[0m");
            }
            assert!(!open, "{line:?}");
        }
        for report in [failing_report(), passing_report()] {
            assert!(!human(&report, false).contains('\u{1b}'));
        }
        let values = test_values();
        let plan = crate::plan::plan(
            &values,
            &crate::config::Config::default(),
            Scope::Gate(Tier::One),
            &crate::plan::Selection::default(),
        )
        .expect("plans");
        assert!(!plan_text(&plan, &values).contains('\u{1b}'));
    }

    #[test]
    fn indents_every_line_of_a_multi_line_hint_and_message() {
        let mut report = passing_report();
        report.checks[1].end = End::Judged(
            Outcome::new(Status::Fail, "c", "first\nsecond").hint("do this\nthen that"),
        );
        let text = human(&report, false);
        assert!(
            text.contains(
                "  × nodes-ready  first\n                 second\n                 hint: do this\n                       then that\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn renders_the_plan() {
        let values = test_values();
        let config = crate::config::Config {
            advisory: vec!["tier-gating".into()],
            ..crate::config::Config::default()
        };
        let plan = crate::plan::plan(
            &values,
            &config,
            Scope::Gate(Tier::One),
            &crate::plan::Selection::default(),
        )
        .expect("plans");
        insta::assert_snapshot!(plan_text(&plan, &values));
    }

    #[test]
    fn shortens_durations() {
        for (ms, want) in [
            (0, "0ms"),
            (850, "850ms"),
            (1000, "1.0s"),
            (1240, "1.2s"),
            (1960, "2.0s"),
            (59_940, "59.9s"),
            (59_960, "1m00s"),
            (125_000, "2m05s"),
        ] {
            assert_eq!(short_duration(Duration::from_millis(ms)), want, "{ms}");
        }
    }
}
