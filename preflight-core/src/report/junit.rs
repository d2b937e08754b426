//! JUnit XML for CI: one suite per tier, one case per check. Left-out checks appear as skipped
//! cases so that CI shows what was not verified, not only what was.

use quick_junit::{NonSuccessKind, Report as Junit, TestCase, TestCaseStatus, TestSuite};

use super::{CheckResult, Label, Report, blocked_text, cut_short};
use crate::plan::LeftOut;
use crate::tier::Tier;

fn suite_name(tier: Tier) -> String {
    format!("preflight tier {tier} · {}", tier.name())
}

fn classname(tier: Tier) -> String {
    format!("preflight.tier-{tier}")
}

/// The failure's body: the message, the hint and the evidence, one fact per line, so a CI
/// page that shows only the body still says how to fix it.
fn details(r: &CheckResult) -> String {
    let mut text = r.outcome().message.clone();
    if let Some(hint) = &r.outcome().hint {
        text.push_str("\nhint: ");
        text.push_str(hint);
    }
    for (key, value) in &r.outcome().evidence {
        text.push_str(&format!("\n{key}: {value}"));
    }
    text
}

fn skipped(message: String) -> TestCaseStatus {
    let mut status = TestCaseStatus::skipped();
    status.set_message(message);
    status
}

fn failure(r: &CheckResult, message: String) -> TestCaseStatus {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    // An advisory failure is still a failure here (CI should show it), but its message says
    // it did not fail the run.
    let advisory = if r.required { "" } else { "advisory: " };
    status
        .set_message(format!("{advisory}{message}"))
        .set_type(r.outcome().code.clone())
        .set_description(details(r));
    status
}

fn case(r: &CheckResult) -> TestCase {
    let status = match Label::of(r) {
        Label::Blocked => skipped(blocked_text(r).unwrap_or_default()),
        Label::Pass | Label::Warn => TestCaseStatus::success(),
        Label::Fail => failure(r, r.outcome().message.clone()),
        Label::Unsettled => failure(
            r,
            format!("did not settle ({}): {}", cut_short(r), r.outcome().message),
        ),
        Label::Skipped => skipped(r.outcome().message.clone()),
    };
    let mut case = TestCase::new(r.id, status);
    case.set_classname(classname(r.tier)).set_time(r.duration);
    if Label::of(r) == Label::Warn {
        // A passing case has no message; the warning would be lost without this.
        case.set_system_out(format!("warning [{}]: {}", r.outcome().code, details(r)));
    }
    case
}

fn left_out_case(l: &LeftOut) -> TestCase {
    let mut case = TestCase::new(l.id, skipped(format!("not run: {}", l.reason)));
    case.set_classname(classname(l.tier));
    case
}

/// The report as JUnit XML: a suite per tier ("preflight tier 1.5 · Core observability"), a
/// case per check named by its id, with its duration. A failure's type is its code; blocked,
/// skipped and left-out checks are skipped cases with the reason; a check that did not settle
/// is a failure that says so; an advisory failure's message starts with "advisory: ".
#[must_use]
pub fn junit(report: &Report) -> String {
    let mut junit = Junit::new(format!("preflight {}", report.subject()));
    // quick-junit speaks chrono; an out-of-range time is left out rather than guessed.
    let started = chrono::DateTime::from_timestamp(
        report.started_at.as_second(),
        u32::try_from(report.started_at.subsec_nanosecond()).unwrap_or(0),
    );
    if let Some(started) = started {
        junit.set_timestamp(started.fixed_offset());
    }
    junit.set_time(report.duration);
    for tier in Tier::ALL {
        let mut suite = TestSuite::new(suite_name(tier));
        suite.add_test_cases(report.checks.iter().filter(|r| r.tier == tier).map(case));
        suite.add_test_cases(
            report
                .left_out
                .iter()
                .filter(|l| l.tier == tier)
                .map(left_out_case),
        );
        if suite.tests > 0 {
            junit.add_test_suite(suite);
        }
    }
    // A run stopped before any check ran must not read as an empty, green suite.
    if report.checks.is_empty() && report.verdict != super::Verdict::Passed {
        let mut suite = TestSuite::new("preflight");
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status
            .set_message(report.notes.join("; "))
            .set_type("interrupted");
        suite.add_test_case(TestCase::new("preflight-run", status));
        junit.add_test_suite(suite);
    }
    // Writing to memory fails only on an I/O error, which a String cannot have.
    junit.to_string().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;
    use crate::report::tests::{failing_report, passing_report};
    use crate::result::End;

    /// Checks what a consumer's XML parser needs, without one: a prolog, one root, elements
    /// that nest and close in order, quoted attributes, and only known entities.
    fn assert_well_formed(xml: &str) {
        let body = xml
            .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
            .expect("XML prolog");
        let entities = |text: &str| {
            for (i, _) in text.match_indices('&') {
                let rest = &text[i + 1..];
                assert!(
                    ["amp;", "lt;", "gt;", "quot;", "apos;", "#"]
                        .iter()
                        .any(|e| rest.starts_with(e)),
                    "bare & in {text:?}"
                );
            }
        };
        let mut stack: Vec<&str> = Vec::new();
        let mut roots = 0;
        let mut rest = body;
        while let Some(open) = rest.find('<') {
            let text = &rest[..open];
            entities(text);
            assert!(
                !stack.is_empty() || text.trim().is_empty(),
                "text outside the root: {text:?}"
            );
            // The tag ends at the first '>' outside quotes.
            let mut quoted = false;
            let close = rest[open..]
                .char_indices()
                .find(|&(_, ch)| {
                    if ch == '"' {
                        quoted = !quoted;
                    }
                    ch == '>' && !quoted
                })
                .map(|(i, _)| open + i)
                .expect("tag closed");
            let tag = &rest[open + 1..close];
            assert!(!tag.contains('<'), "'<' inside a tag: {tag:?}");
            assert_eq!(
                tag.matches('"').count() % 2,
                0,
                "unbalanced quotes: {tag:?}"
            );
            entities(tag);
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(name), "closing tag out of order");
            } else {
                let name = tag
                    .trim_end_matches('/')
                    .split_whitespace()
                    .next()
                    .expect("tag name");
                if stack.is_empty() {
                    roots += 1;
                }
                if !tag.ends_with('/') {
                    stack.push(name);
                }
            }
            rest = &rest[close + 1..];
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        assert!(rest.trim().is_empty(), "trailing text {rest:?}");
        assert_eq!(roots, 1, "one root element");
    }

    #[test]
    fn one_suite_per_tier_and_one_case_per_check() {
        let report = failing_report();
        let xml = junit(&report);
        insta::assert_snapshot!(xml);
        assert_well_formed(&xml);
        assert_eq!(
            xml.matches("<testsuite ").count(),
            4,
            "tiers 0, 1, 1.5 and 2"
        );
        assert_eq!(
            xml.matches("<testcase ").count(),
            report.checks.len() + report.left_out.len()
        );
        assert!(xml.contains("<testsuite name=\"preflight tier 1.5 · Core observability\""));
        assert!(xml.contains(
            "<testcase name=\"storage-class\" classname=\"preflight.tier-1.5\" time=\"0.042\">"
        ));
        assert!(xml.contains(
            "<failure message=\"advisory: ServiceAccount external-dns/external-dns not found\" type=\"irsa-missing\">"
        ));
        assert!(xml.contains("message=\"did not settle (still failing at the deadline after 7 attempts): none of the 2 StorageClasses is the default\" type=\"no-default-storage-class\""));
        assert!(
            xml.contains("<skipped message=\"not run: tier 2 is above the requested tier 1.5\"/>")
        );
        assert!(xml.contains("<skipped message=\"blocked by crds\"/>"));
    }

    #[test]
    fn a_passing_run_has_no_failures() {
        let xml = junit(&passing_report());
        assert_well_formed(&xml);
        assert!(xml.contains("failures=\"0\""), "{xml}");
        assert!(!xml.contains("<failure"), "{xml}");
    }

    #[test]
    fn escapes_markup_and_drops_what_xml_cannot_hold() {
        let mut report = passing_report();
        report.checks[0].end = End::Judged(
            Outcome::fail("c", "<b>\"quoted\" & 'single'</b> \u{1b}[31m")
                .hint("a > b & c < d\nsecond line")
                .evidence("k&", "<v>"),
        );
        let xml = junit(&report);
        assert_well_formed(&xml);
        assert!(!xml.contains('\u{1b}'), "{xml}");
        assert!(
            xml.contains("&lt;b&gt;&quot;quoted&quot; &amp; &apos;single&apos;&lt;/b&gt;")
                || xml.contains("&lt;b&gt;\"quoted\" &amp; 'single'&lt;/b&gt;"),
            "{xml}"
        );
    }
}
