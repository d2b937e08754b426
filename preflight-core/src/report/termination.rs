//! The container's termination message: what ArgoCD shows for a failed bare-Pod hook.
//! Kubernetes keeps at most 4 KiB of it, so the most important lines come first.

use std::fmt::Write as _;

use super::{CheckResult, Report, status_label};
use crate::outcome::Status;

/// The most Kubernetes keeps of a termination message.
pub const TERMINATION_MESSAGE_LIMIT: usize = 4096;

const CUT: &str = "\n… (truncated, see the full report)";

fn line(r: &CheckResult) -> String {
    let mark = match status_label(r) {
        "warn" => "‼",
        "blocked" | "skipped" => "-",
        _ => "×",
    };
    let mut text = format!(
        "{mark} {} [{}]: {}",
        r.id, r.outcome.code, r.outcome.message
    );
    if let Some(hint) = r.outcome.hint.as_deref().and_then(|h| h.lines().next()) {
        let _ = write!(text, " — hint: {hint}");
    }
    text
}

/// The verdict and counts, then failed and unsettled checks, blocked ones, and warnings; cut to
/// [`TERMINATION_MESSAGE_LIMIT`] bytes on a character boundary, with a visible marker.
#[must_use]
pub fn termination_message(report: &Report) -> String {
    let c = report.counts();
    let verdict = match report.verdict {
        super::Verdict::Passed => "PASSED",
        super::Verdict::Failed => "FAILED",
        super::Verdict::Unsettled => "UNSETTLED",
    };
    let mut text = format!(
        "preflight tier {}: {verdict} (exit {}): {} failed, {} skipped, {} warned, {} passed",
        report.tier, report.exit_code, c.failed, c.skipped, c.warned, c.passed
    );
    let rank = |r: &&CheckResult| match (status_label(r), r.required) {
        ("fail" | "unsettled", true) => Some(0),
        ("blocked", true) => Some(1),
        ("fail" | "unsettled", false) => Some(2),
        ("warn", _) => Some(3),
        _ => None,
    };
    let mut shown: Vec<&CheckResult> = report.checks.iter().filter(|r| rank(r).is_some()).collect();
    shown.sort_by_key(|r| rank(r));
    for r in shown {
        text.push('\n');
        text.push_str(&line(r));
    }
    if report
        .checks
        .iter()
        .all(|r| r.outcome.status != Status::Fail)
        && !report.left_out.is_empty()
    {
        let _ = write!(
            text,
            "\n{} check(s) not run (see the plan)",
            report.left_out.len()
        );
    }
    truncate(text)
}

fn truncate(text: String) -> String {
    if text.len() <= TERMINATION_MESSAGE_LIMIT {
        return text;
    }
    let mut end = TERMINATION_MESSAGE_LIMIT - CUT.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;
    use crate::report::tests::failing_report;

    #[test]
    fn puts_required_failures_first() {
        insta::assert_snapshot!(termination_message(&failing_report()));
    }

    #[test]
    fn never_exceeds_the_limit_and_cuts_on_a_character_boundary() {
        let mut report = failing_report();
        let template = report.checks[1].clone();
        report.checks = (0..200)
            .map(|i| CheckResult {
                outcome: Outcome::fail(
                    "nodes-not-ready",
                    format!("{i}: é‼ {}", "ü".repeat(40 + i % 7)),
                ),
                ..template.clone()
            })
            .collect();
        let text = termination_message(&report);
        assert!(text.len() <= TERMINATION_MESSAGE_LIMIT, "{}", text.len());
        assert!(text.ends_with(CUT));
        assert!(text.starts_with("preflight tier 1.5: FAILED"));
        for len in TERMINATION_MESSAGE_LIMIT - 8..=TERMINATION_MESSAGE_LIMIT + 8 {
            let cut = truncate("é".repeat(len / 2 + 1));
            assert!(cut.len() <= TERMINATION_MESSAGE_LIMIT);
        }
    }
}
