//! GitHub Actions: workflow-command annotations (shown on the run and the pull request) and a
//! Markdown step summary.

use std::fmt::Write as _;

use super::{
    CheckResult, Label, Report, Verdict, cut_short, plural, short_duration, tally, verdict_reason,
    verdict_word,
};
use crate::outcome::Status;

/// Escapes the message of a workflow command, as the runner's `toCommandValue` reads it back.
/// A raw newline would end the command and run the rest of the text as another one.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property value of a workflow command: `:` ends the properties and `,` separates
/// them.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// The annotation level of a check, if it gets one. An advisory failure is a warning: it does
/// not fail the run, and an error annotation would say it did.
fn level(r: &CheckResult) -> Option<&'static str> {
    match Label::of(r) {
        Label::Fail | Label::Unsettled if r.required => Some("error"),
        Label::Fail | Label::Unsettled | Label::Warn => Some("warning"),
        Label::Pass | Label::Blocked | Label::Skipped => None,
    }
}

/// One `::error` or `::warning` workflow command per failing, unsettled or warning check, in
/// plan order: `::error title=preflight <id> (<code>)::<message>`, with the hint after a
/// newline. Passing, skipped and blocked checks get none (a blocked check's cause is
/// annotated). Every command is one line: values are escaped as GitHub requires.
#[must_use]
pub fn annotations(report: &Report) -> String {
    let mut out = String::new();
    for r in &report.checks {
        let Some(level) = level(r) else { continue };
        let mut message = String::new();
        if !r.required && r.status() == Status::Fail {
            message.push_str("advisory: ");
        }
        if !r.settled() {
            let _ = write!(message, "did not settle ({}): ", cut_short(r));
        }
        message.push_str(&r.outcome().message);
        if let Some(hint) = &r.outcome().hint {
            message.push_str("\nhint: ");
            message.push_str(hint);
        }
        let title = format!("preflight {} ({})", r.id, r.outcome().code);
        let _ = writeln!(
            out,
            "::{level} title={}::{}",
            escape_property(&title),
            escape_data(&message)
        );
    }
    out
}

/// Escapes text for Markdown, in a table cell or a list item: backslash before every
/// character that could start markup (a `*` in `*.dev.example.io` would otherwise begin
/// emphasis, a `<` a tag, a `|` a new cell), and `<br>` for line breaks, which a cell cannot
/// hold.
fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '&' | '|' | '~' => {
                out.push('\\');
                out.push(ch);
            }
            '\r' => {}
            '\n' => out.push_str("<br>"),
            _ => out.push(ch),
        }
    }
    out
}

/// An id or code as inline code. Ids and codes are kebab-case, so this is a formality; text
/// that could break out of the span is written as plain escaped text instead.
fn code(s: &str) -> String {
    if s.contains(['`', '\n', '\r']) {
        md(s)
    } else {
        format!("`{}`", s.replace('|', "\\|"))
    }
}

fn status_cell(r: &CheckResult) -> &'static str {
    match Label::of(r) {
        Label::Pass => "✅ pass",
        Label::Warn => "⚠️ warn",
        Label::Fail if r.required => "❌ fail",
        Label::Fail => "❌ fail (advisory)",
        Label::Unsettled if r.required => "⏳ unsettled",
        Label::Unsettled => "⏳ unsettled (advisory)",
        Label::Blocked => "⏭️ blocked",
        Label::Skipped => "⏭️ skipped",
    }
}

fn message_cell(r: &CheckResult) -> String {
    if let Some(dep) = r.blocked_by() {
        let unsettled = if r.settled() {
            ""
        } else {
            ", which did not settle"
        };
        return format!("blocked by {}{unsettled}", code(dep));
    }
    let message = md(&r.outcome().message);
    if r.settled() {
        message
    } else {
        format!("*{}:* {message}", md(&cut_short(r)))
    }
}

/// Upper-cases the first letter, for a reason that starts a sentence.
fn sentence(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// Markdown for `$GITHUB_STEP_SUMMARY`: a heading with the verdict, why, the counts; a table
/// of every check (status, check, tier, code, message); how to fix what failed or warned; the
/// checks not run; and the notes.
#[must_use]
pub fn step_summary(report: &Report) -> String {
    let mut out = String::new();
    let emoji = match report.verdict {
        Verdict::Passed => "✅",
        Verdict::Failed => "❌",
        Verdict::Unsettled => "⏳",
    };
    let _ = writeln!(
        out,
        "## {emoji} preflight {}: {} (exit {})\n",
        report.subject(),
        verdict_word(report),
        report.exit_code
    );
    if let Some(reason) = verdict_reason(report) {
        let reason = match report.verdict {
            Verdict::Passed => format!("Passed with {reason}"),
            _ => sentence(&reason),
        };
        let _ = writeln!(out, "**{}.**\n", md(&reason));
    }
    let mut about = sentence(&plural(report.checks.len(), "check"));
    if let Some(tier) = report.tier {
        let _ = write!(about, " of tier {tier} ({})", tier.name());
    }
    if let Some(c) = &report.cluster {
        let _ = write!(
            about,
            " on the {} {} cluster {}",
            md(&c.mode),
            md(&c.env),
            code(&c.host_suffix)
        );
    }
    let _ = writeln!(
        out,
        "{about} in {}: {}.\n",
        short_duration(report.duration),
        tally(report)
    );
    let _ = writeln!(
        out,
        "| status | check | tier | code | message |\n|---|---|---|---|---|"
    );
    for r in &report.checks {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            status_cell(r),
            code(r.id),
            r.tier,
            code(&r.outcome().code),
            message_cell(r)
        );
    }
    let hints: Vec<(&CheckResult, String)> = report
        .checks
        .iter()
        .filter(|r| Label::of(r).shows_hint())
        .filter_map(|r| Some((r, r.outcome().hint.clone()?)))
        .collect();
    if !hints.is_empty() {
        let _ = writeln!(out, "\n### How to fix\n");
        for (r, hint) in hints {
            let _ = writeln!(out, "- {}: {}", code(r.id), md(&hint));
        }
    }
    if !report.left_out.is_empty() {
        let _ = writeln!(
            out,
            "\n<details><summary>{} not run</summary>\n",
            match report.left_out.len() {
                1 => "1 check".to_owned(),
                n => format!("{n} checks"),
            }
        );
        for l in &report.left_out {
            let _ = writeln!(out, "- {} (tier {}): {}", code(l.id), l.tier, md(&l.reason));
        }
        let _ = writeln!(out, "\n</details>");
    }
    if !report.notes.is_empty() {
        let _ = writeln!(out, "\n### Notes\n");
        for note in &report.notes {
            let _ = writeln!(out, "- {}", md(note));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;
    use crate::report::tests::{failing_report, passing_report};
    use crate::result::End;

    #[test]
    fn escapes_workflow_commands() {
        for (input, data, property) in [
            ("plain", "plain", "plain"),
            ("50% done", "50%25 done", "50%25 done"),
            ("a\r\nb", "a%0D%0Ab", "a%0D%0Ab"),
            ("a: b, c", "a: b, c", "a%3A b%2C c"),
            ("%0A", "%250A", "%250A"),
            ("::error::x", "::error::x", "%3A%3Aerror%3A%3Ax"),
            ("é‼", "é‼", "é‼"),
        ] {
            assert_eq!(escape_data(input), data, "data {input:?}");
            assert_eq!(escape_property(input), property, "property {input:?}");
        }
    }

    #[test]
    fn an_annotation_is_one_line_whatever_the_text() {
        let mut report = passing_report();
        report.checks[1].end = End::Judged(
            Outcome::fail("odd:code,x", "100% broken\r\n::error::injected")
                .hint("first: a, b\nsecond"),
        );
        let text = annotations(&report);
        assert_eq!(
            text,
            "::error title=preflight nodes-ready (odd%3Acode%2Cx)::100%25 broken%0D%0A::error::injected%0Ahint: first: a, b%0Asecond\n"
        );
    }

    #[test]
    fn annotates_failures_and_warnings_only() {
        let text = annotations(&failing_report());
        insta::assert_snapshot!(text);
        let levels: Vec<&str> = text
            .lines()
            .map(|l| l.split(' ').next().unwrap_or_default())
            .collect();
        assert_eq!(
            levels,
            ["::warning", "::error", "::warning", "::error"],
            "warn, required failure, advisory failure, unsettled:\n{text}"
        );
        assert!(
            !text.contains("kube-api"),
            "passing checks are not annotated"
        );
        assert!(
            !text.contains("cluster-secret-store"),
            "blocked checks are not annotated"
        );
        assert!(annotations(&passing_report()).is_empty());
    }

    #[test]
    fn escapes_markdown_in_cells() {
        for (input, want) in [
            ("a | b", "a \\| b"),
            ("one\r\ntwo", "one<br>two"),
            (
                "*.dev.example.io and *.b-1",
                "\\*.dev.example.io and \\*.b-1",
            ),
            ("<none>", "\\<none\\>"),
            ("snake_case `tick`", "snake\\_case \\`tick\\`"),
        ] {
            assert_eq!(md(input), want, "{input:?}");
        }
        assert_eq!(code("crds"), "`crds`");
        assert_eq!(code("a`b"), "a\\`b");
    }

    #[test]
    fn summarises_in_markdown() {
        insta::assert_snapshot!(step_summary(&failing_report()));
    }

    #[test]
    fn summarises_a_passing_run() {
        insta::assert_snapshot!(step_summary(&passing_report()));
    }
}
