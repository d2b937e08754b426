//! The container's termination message: what ArgoCD shows for a failed bare-Pod hook.
//! Kubernetes keeps at most 4 KiB of it, so the most important lines come first and the cut,
//! when there is one, is visible.

use super::{CheckResult, Label, Report, blocked_text, cut_short, tally, verdict_word};

/// The most Kubernetes keeps of a termination message, in bytes.
pub const TERMINATION_MESSAGE_LIMIT: usize = 4096;

/// Ends a message that was cut, so nobody mistakes the rest for all there is.
const CUT: &str = "\n… (truncated, see the full report)";

/// A cut may go back this far to end on a whole line; further, and a long line is cut in the
/// middle instead, so that one long line cannot hide everything after the first.
const LINE_SLACK: usize = 1024;

/// Joins the lines of a text, so that each check stays on one line of the message.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// How far up a check goes: required failures first (they are why the hook failed), then
/// required checks that did not settle, then those blocked, then advisory failures and
/// warnings. None for checks not worth a line.
fn rank(r: &CheckResult) -> Option<u8> {
    match (Label::of(r), r.required) {
        (Label::Fail, true) => Some(0),
        (Label::Unsettled, true) => Some(1),
        (Label::Blocked, true) => Some(2),
        (Label::Fail | Label::Unsettled, false) => Some(3),
        (Label::Warn, _) => Some(4),
        (Label::Pass | Label::Skipped, _) | (Label::Blocked, false) => None,
    }
}

fn line(r: &CheckResult) -> String {
    let label = Label::of(r);
    let mark = match label {
        Label::Warn => "‼",
        Label::Blocked | Label::Skipped => "-",
        Label::Pass | Label::Fail | Label::Unsettled => "×",
    };
    let mut marks = Vec::new();
    if !r.required && label != Label::Warn {
        marks.push("advisory".to_owned());
    }
    if label == Label::Unsettled {
        marks.push(cut_short(r));
    }
    let marks = if marks.is_empty() {
        String::new()
    } else {
        format!(" ({})", marks.join("; "))
    };
    let message = blocked_text(r).unwrap_or_else(|| one_line(&r.outcome().message));
    let mut text = format!("{mark} {} [{}]{marks}: {message}", r.id, r.outcome().code);
    if r.blocked_by().is_none()
        && let Some(hint) = r.outcome().hint.as_deref().and_then(|h| h.lines().next())
    {
        text.push_str(" — hint: ");
        text.push_str(hint.trim());
    }
    text
}

/// The termination message: the verdict, exit code and counts (`preflight tier 2: FAILED
/// (exit 1): 2 failed, 1 blocked, 7 passed`); then one line per check that needs attention,
/// most important first (`× <id> [<code>]: <message> — hint: <first line of the hint>`):
/// required failures, required checks that did not settle, blocked ones, advisory failures,
/// warnings; then the checks not run. Never longer than [`TERMINATION_MESSAGE_LIMIT`] bytes:
/// a longer message is cut on a character boundary and ends with a visible marker.
#[must_use]
pub fn termination_message(report: &Report) -> String {
    let mut text = format!(
        "preflight {}: {} (exit {}): {}",
        report.subject(),
        verdict_word(report),
        report.exit_code,
        tally(report)
    );
    let mut shown: Vec<(u8, &CheckResult)> = report
        .checks
        .iter()
        .filter_map(|r| Some((rank(r)?, r)))
        .collect();
    // Stable: within a rank, plan order, which is tier order.
    shown.sort_by_key(|&(rank, _)| rank);
    for (_, r) in shown {
        text.push('\n');
        text.push_str(&line(r));
    }
    // A run stopped before any check ran has only its notes to say where it stopped.
    if report.checks.is_empty() {
        for note in &report.notes {
            text.push('\n');
            text.push_str(note);
        }
    }
    if !report.left_out.is_empty() {
        let ids: Vec<&str> = report.left_out.iter().map(|l| l.id).collect();
        text.push_str("\nnot run: ");
        text.push_str(&ids.join(", "));
    }
    truncate(text)
}

/// Cuts `text` to the limit, marker included: on a line boundary when one is near, else on a
/// character boundary (Kubernetes cuts bytes, which could split a character and leave
/// invalid UTF-8 for ArgoCD to show).
fn truncate(text: String) -> String {
    if text.len() <= TERMINATION_MESSAGE_LIMIT {
        return text;
    }
    let mut end = TERMINATION_MESSAGE_LIMIT - CUT.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if !text[end..].starts_with('\n')
        && let Some(newline) = text[..end].rfind('\n')
        && end - newline <= LINE_SLACK
    {
        end = newline;
    }
    format!("{}{CUT}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;
    use crate::report::tests::{failing_report, passing_report};
    use crate::result::End;

    #[test]
    fn puts_required_failures_first() {
        insta::assert_snapshot!(termination_message(&failing_report()));
    }

    #[test]
    fn a_passing_run_is_one_line_and_what_was_not_run() {
        assert_eq!(
            termination_message(&passing_report()),
            "preflight tier 0: PASSED (exit 0): 2 passed\nnot run: crds"
        );
    }

    #[test]
    fn keeps_each_check_on_one_line() {
        let mut report = passing_report();
        report.checks[1].end =
            End::Judged(Outcome::fail("c", "first\nsecond\n").hint("do this\nthen that"));
        let text = termination_message(&report);
        assert!(
            text.contains("\n× nodes-ready [c]: first second — hint: do this\n"),
            "{text}"
        );
    }

    #[test]
    fn never_exceeds_the_limit_and_cuts_on_a_character_boundary() {
        let mut report = failing_report();
        let template = report.checks[2].clone();
        report.checks = (0..200)
            .map(|i| CheckResult {
                end: End::Judged(
                    Outcome::fail(
                        "nodes-not-ready",
                        format!("{i}: é‼ {}", "ü".repeat(40 + i % 7)),
                    )
                    .hint("‼ é".repeat(i % 5 + 1)),
                ),
                ..template.clone()
            })
            .collect();
        let text = termination_message(&report);
        assert!(text.len() <= TERMINATION_MESSAGE_LIMIT, "{}", text.len());
        assert!(text.ends_with(CUT), "{text}");
        assert!(
            text.starts_with("preflight tier 1.5: FAILED (exit 1): 200 failed\n"),
            "{text}"
        );
        // Lines are whole: every kept line is one of the full lines.
        let full = ["preflight tier 1.5: FAILED (exit 1): 200 failed".to_owned()]
            .into_iter()
            .chain(report.checks.iter().map(line))
            .collect::<Vec<_>>();
        let kept = text.strip_suffix(CUT).unwrap_or_default();
        for l in kept.lines() {
            assert!(full.contains(&l.to_owned()), "partial line {l:?}");
        }
    }

    #[test]
    fn cuts_multibyte_text_at_every_offset() {
        for pad in 0..4 {
            for extra in 0..8 {
                // Multibyte characters of 2 (é) and 3 (‼) bytes straddle the cut point as
                // `pad` and `extra` shift them.
                let len = TERMINATION_MESSAGE_LIMIT - 4 + extra;
                let mut text = "a".repeat(pad);
                while text.len() < len {
                    text.push_str("é‼");
                }
                let cut = truncate(text.clone());
                assert!(cut.len() <= TERMINATION_MESSAGE_LIMIT, "{pad} {extra}");
                if text.len() <= TERMINATION_MESSAGE_LIMIT {
                    assert_eq!(cut, text);
                } else {
                    let kept = cut.strip_suffix(CUT).expect("marker");
                    assert!(text.starts_with(kept), "{pad} {extra}");
                    assert!(
                        kept.len() > TERMINATION_MESSAGE_LIMIT - CUT.len() - 3,
                        "one long line is cut mid-line, not dropped"
                    );
                }
            }
        }
        let exact = "x".repeat(TERMINATION_MESSAGE_LIMIT);
        assert_eq!(truncate(exact.clone()), exact);
        let over = format!("{exact}y");
        assert!(truncate(over).ends_with(CUT));
    }
}
