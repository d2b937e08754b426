//! GitHub Actions: workflow-command annotations (shown on the run and the PR) and a Markdown
//! step summary.

use std::fmt::Write as _;

use super::{CheckResult, Report, status_label};
use crate::outcome::Status;

/// Escapes the message part of a workflow command.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property value of a workflow command.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

fn level(r: &CheckResult) -> Option<&'static str> {
    match r.outcome.status {
        _ if r.blocked_by.is_some() => None,
        Status::Fail if r.required => Some("error"),
        Status::Fail | Status::Warn => Some("warning"),
        Status::Pass | Status::Skip => None,
    }
}

/// One `::error` / `::warning` command per failing or warning check.
#[must_use]
pub fn annotations(report: &Report) -> String {
    let mut out = String::new();
    for r in &report.checks {
        let Some(level) = level(r) else { continue };
        let mut message = r.outcome.message.clone();
        if !r.settled {
            message = format!("did not settle before the deadline: {message}");
        }
        if let Some(hint) = &r.outcome.hint {
            message.push_str("\nhint: ");
            message.push_str(hint);
        }
        let title = format!("preflight {} ({})", r.id, r.outcome.code);
        let _ = writeln!(
            out,
            "::{level} title={}::{}",
            escape_property(&title),
            escape_data(&message)
        );
    }
    out
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
        .replace('\r', "")
        .replace('\n', "<br>")
}

fn emoji(r: &CheckResult) -> &'static str {
    match status_label(r) {
        "pass" => "✅",
        "warn" => "⚠️",
        "fail" | "unsettled" => "❌",
        _ => "⏭️",
    }
}

/// Markdown for `$GITHUB_STEP_SUMMARY`.
#[must_use]
pub fn step_summary(report: &Report) -> String {
    let mut out = String::new();
    let verdict = match report.verdict {
        super::Verdict::Passed => "passed",
        super::Verdict::Failed => "failed",
        super::Verdict::Unsettled => "did not settle",
    };
    let _ = writeln!(
        out,
        "## preflight tier {}: {verdict} (exit {})\n",
        report.tier, report.exit_code
    );
    let _ = writeln!(
        out,
        "| | check | tier | code | message |\n|---|---|---|---|---|"
    );
    for r in &report.checks {
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | `{}` | {} |",
            emoji(r),
            r.id,
            r.tier,
            r.outcome.code,
            cell(&r.outcome.message)
        );
    }
    let hints: Vec<&CheckResult> = report
        .checks
        .iter()
        .filter(|r| {
            r.outcome.hint.is_some() && matches!(r.outcome.status, Status::Fail | Status::Warn)
        })
        .collect();
    if !hints.is_empty() {
        let _ = writeln!(out, "\n### How to fix\n");
        for r in hints {
            let _ = writeln!(
                out,
                "- **{}**: {}",
                r.id,
                cell(r.outcome.hint.as_deref().unwrap_or_default())
            );
        }
    }
    if !report.left_out.is_empty() {
        let _ = writeln!(
            out,
            "\n<details><summary>{} check(s) not run</summary>\n",
            report.left_out.len()
        );
        for l in &report.left_out {
            let _ = writeln!(out, "- `{}` (tier {}): {}", l.id, l.tier, l.reason);
        }
        let _ = writeln!(out, "\n</details>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::failing_report;

    #[test]
    fn escapes_workflow_commands() {
        assert_eq!(escape_data("50% done\r\nnext"), "50%25 done%0D%0Anext");
        assert_eq!(escape_property("a: b, c"), "a%3A b%2C c");
    }

    #[test]
    fn annotates_failures_and_warnings_only() {
        let text = annotations(&failing_report());
        insta::assert_snapshot!(text);
        assert!(
            text.lines()
                .all(|l| l.starts_with("::error title=") || l.starts_with("::warning title="))
        );
        assert!(
            !text.contains("kube-api"),
            "passing checks are not annotated"
        );
    }

    #[test]
    fn summarises_in_markdown() {
        insta::assert_snapshot!(step_summary(&failing_report()));
    }
}
