//! JUnit XML for CI: one suite per tier, one case per check; left-out checks appear as skipped
//! cases so CI shows what was not verified.

use quick_junit::{NonSuccessKind, Report as Junit, TestCase, TestCaseStatus, TestSuite};

use super::{CheckResult, Report};
use crate::outcome::Status;
use crate::tier::Tier;

fn suite_name(tier: Tier) -> String {
    format!("preflight tier {tier} · {}", tier.name())
}

fn details(r: &CheckResult) -> String {
    let mut text = r.outcome.message.clone();
    if let Some(hint) = &r.outcome.hint {
        text.push_str("\nhint: ");
        text.push_str(hint);
    }
    for (k, v) in &r.outcome.evidence {
        text.push_str(&format!("\n{k}: {v}"));
    }
    text
}

fn case(r: &CheckResult) -> TestCase {
    let status = match (r.outcome.status, r.blocked_by, r.settled) {
        (_, Some(dep), _) => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(format!("blocked by {dep}"));
            s
        }
        (Status::Skip, ..) => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(r.outcome.message.clone());
            s
        }
        (Status::Pass | Status::Warn, ..) => TestCaseStatus::success(),
        (Status::Fail, _, settled) => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let advisory = if r.required { "" } else { "advisory: " };
            let unsettled = if settled {
                ""
            } else {
                "did not settle before the deadline: "
            };
            s.set_message(format!("{advisory}{unsettled}{}", r.outcome.message));
            s.set_type(r.outcome.code.clone());
            s.set_description(details(r));
            s
        }
    };
    let mut case = TestCase::new(r.id, status);
    case.set_classname(format!("preflight.tier-{}", r.tier))
        .set_time(r.duration);
    if r.outcome.status == Status::Warn {
        case.set_system_out(format!("warning [{}]: {}", r.outcome.code, details(r)));
    }
    case
}

/// The report as JUnit XML.
#[must_use]
pub fn junit(report: &Report) -> String {
    let mut junit = Junit::new(format!("preflight tier {}", report.tier));
    // quick-junit speaks chrono; the RFC 3339 text is the bridge from jiff.
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(&report.started_at.to_string()) {
        junit.set_timestamp(at);
    }
    junit.set_time(report.duration);
    for tier in Tier::ALL {
        let mut suite = TestSuite::new(suite_name(tier));
        suite.add_test_cases(report.checks.iter().filter(|r| r.tier == tier).map(case));
        suite.add_test_cases(report.left_out.iter().filter(|l| l.tier == tier).map(|l| {
            let mut s = TestCaseStatus::skipped();
            s.set_message(format!("not run: {}", l.reason));
            let mut c = TestCase::new(l.id, s);
            c.set_classname(format!("preflight.tier-{}", l.tier));
            c
        }));
        if suite.tests > 0 {
            junit.add_test_suite(suite);
        }
    }
    junit.to_string().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::failing_report;

    #[test]
    fn one_suite_per_tier_and_one_case_per_check() {
        let xml = junit(&failing_report());
        insta::assert_snapshot!(xml);
        assert!(xml.starts_with("<?xml"));
        assert_eq!(xml.matches("<testsuite ").count(), 3, "tiers 0, 1 and 1.5");
        assert_eq!(
            xml.matches("<testcase ").count(),
            failing_report().checks.len() + failing_report().left_out.len()
        );
        assert_eq!(
            xml.matches("<testsuite").count(),
            xml.matches("</testsuite>").count() + 1,
            "every suite is closed"
        );
    }
}
