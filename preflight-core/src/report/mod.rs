//! The report of a run, and the formats it is written in. Reporters render a finished
//! [`Report`]; they never print: the binary decides where the text goes.

mod github;
mod human;
mod json;
mod junit;
mod termination;

use std::time::Duration;

use serde::Serialize;

pub use github::{annotations as github_annotations, step_summary as github_step_summary};
pub use human::{human, plan_text};
pub use json::{json, plan_json};
pub use junit::junit;
pub use termination::{TERMINATION_MESSAGE_LIMIT, termination_message};

use crate::contract::{Ceiling, Values};
use crate::exit;
use crate::outcome::Status;
use crate::plan::{LeftOut, Plan};
use crate::platform::Scope;
use crate::result::{CheckResult, Cut, End, RunEnd, RunResults, millis};
use crate::tier::Tier;

/// The JSON report's schema id; bumped on any incompatible change.
pub const SCHEMA: &str = "preflight.report/v1";

/// The JSON Schema (draft 2020-12) of the JSON report, [`SCHEMA`]; published in the
/// repository as `preflight-core/schema/report-v1.schema.json`, and checked against every
/// report the test suite writes.
pub const JSON_SCHEMA: &str = include_str!("../../schema/report-v1.schema.json");

/// The verdict of the whole run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every required check passed or warned.
    Passed,
    /// A required check failed.
    Failed,
    /// The run ended before every required check settled.
    Unsettled,
}

impl Verdict {
    /// The process exit code for this verdict.
    #[must_use]
    pub const fn exit_code(self) -> i32 {
        match self {
            Verdict::Passed => exit::PASSED,
            Verdict::Failed => exit::FAILED,
            Verdict::Unsettled => exit::UNSETTLED,
        }
    }
}

/// The cluster the run was about, as the contract describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSummary {
    /// `ephemeral` or `persistent`.
    pub mode: String,
    /// The environment.
    pub env: String,
    /// The build id of an ephemeral cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
    /// Where its apps live.
    pub host_suffix: String,
    /// Its ExternalDNS owner id.
    pub owner_id: String,
    /// The highest tier it may run, and why.
    pub ceiling: Ceiling,
}

impl From<&Values> for ClusterSummary {
    fn from(v: &Values) -> Self {
        ClusterSummary {
            mode: v.mode.value.to_string(),
            env: v.env.value.clone(),
            build_id: v.build_id.as_ref().map(|b| b.value.clone()),
            host_suffix: v.host_suffix.value.clone(),
            owner_id: v.owner_id.value.clone(),
            ceiling: v.ceiling.clone(),
        }
    }
}

/// Everything a run found. This is also the JSON report (schema [`SCHEMA`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// The preflight version that wrote it.
    pub preflight_version: &'static str,
    /// The tier checked (cumulative), or the tier of the app whose hook ran; absent only
    /// when the run was stopped before it knew (see [`Report::stopped_early`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// The app whose own hook ran (`--app`); absent for a tier's gate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<&'static str>,
    /// The cluster; absent only when the run was stopped before its values were known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterSummary>,
    /// When the run started.
    pub started_at: jiff::Timestamp,
    /// How long it took.
    #[serde(rename = "durationMs", serialize_with = "millis")]
    pub duration: Duration,
    /// How it ended.
    pub end: RunEnd,
    /// The verdict.
    pub verdict: Verdict,
    /// The exit code the binary returns for it.
    pub exit_code: i32,
    /// Each planned check's result, in plan order.
    pub checks: Vec<CheckResult>,
    /// Checks not run, with the reason.
    pub left_out: Vec<LeftOut>,
    /// Things the operator should know about the run itself (e.g. where values came from).
    pub notes: Vec<String>,
}

impl Report {
    /// What ran, for headings: `tier 2`, or `app backstage`.
    #[must_use]
    pub fn subject(&self) -> String {
        match (self.app, self.tier) {
            (Some(app), _) => format!("app {app}"),
            (None, Some(tier)) => format!("tier {tier}"),
            (None, None) => "run".to_owned(),
        }
    }

    /// The report of a run stopped (by SIGTERM or SIGINT) before its checks started: nothing
    /// was checked, so the run is unsettled (exit 3). `tier` and `app` are what the command line
    /// asked for, and `values` the bootstrap values if they were known by then; `notes` say
    /// where the run was.
    #[must_use]
    pub fn stopped_early(
        tier: Option<Tier>,
        app: Option<&'static str>,
        values: Option<&Values>,
        started_at: jiff::Timestamp,
        duration: Duration,
        notes: Vec<String>,
    ) -> Self {
        let verdict = Verdict::Unsettled;
        Report {
            schema: SCHEMA,
            preflight_version: env!("CARGO_PKG_VERSION"),
            tier,
            app,
            cluster: values.map(ClusterSummary::from),
            started_at,
            duration,
            end: RunEnd::Interrupted,
            verdict,
            exit_code: verdict.exit_code(),
            checks: Vec::new(),
            left_out: Vec::new(),
            notes,
        }
    }

    /// Assembles the report of a run of `plan` and computes its verdict.
    #[must_use]
    pub fn new(plan: &Plan, values: &Values, results: RunResults, notes: Vec<String>) -> Self {
        let verdict = verdict(results.end, &results.checks);
        Report {
            schema: SCHEMA,
            preflight_version: env!("CARGO_PKG_VERSION"),
            tier: Some(plan.tier),
            app: match plan.scope {
                Scope::App(app) => Some(app.name),
                Scope::Gate(_) => None,
            },
            cluster: Some(ClusterSummary::from(values)),
            started_at: results.started_at,
            duration: results.duration,
            end: results.end,
            verdict,
            exit_code: verdict.exit_code(),
            checks: results.checks,
            left_out: plan.left_out.clone(),
            notes,
        }
    }

    /// How many checks ended with each status.
    #[must_use]
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for r in &self.checks {
            match r.status() {
                Status::Pass => c.passed += 1,
                Status::Warn => c.warned += 1,
                Status::Fail => c.failed += 1,
                Status::Skip => c.skipped += 1,
            }
        }
        c
    }
}

/// Checks per status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Passed.
    pub passed: usize,
    /// Warned.
    pub warned: usize,
    /// Failed.
    pub failed: usize,
    /// Skipped or blocked.
    pub skipped: usize,
}

/// A settled failure of a required check fails the run, even if the run was then cut short:
/// that answer is already known. Otherwise a required check that did not settle leaves the
/// run unsettled, and so does an interruption before any check ran; a deadline or a signal
/// that cut only advisory checks short does not.
fn verdict(end: RunEnd, checks: &[CheckResult]) -> Verdict {
    let required = || checks.iter().filter(|c| c.required);
    if checks.iter().any(CheckResult::failed_for_good) {
        Verdict::Failed
    } else if required().any(|c| !c.settled()) || (end == RunEnd::Interrupted && checks.is_empty())
    {
        Verdict::Unsettled
    } else if required().any(|c| c.blocked_by().is_some()) {
        // Blocked by an advisory check that failed: the required check never ran.
        Verdict::Failed
    } else {
        Verdict::Passed
    }
}

/// How every format shows a check, from how it ended: the one place an [`End`] becomes a
/// label, so that formats `match` on it (without a catch-all arm) and never on strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Label {
    Pass,
    Warn,
    /// A final failure: judged, timed out or crashed.
    Fail,
    /// Cut short while still failing.
    Unsettled,
    Blocked,
    /// Judged not applicable.
    Skipped,
}

impl Label {
    fn of(r: &CheckResult) -> Self {
        match &r.end {
            End::Blocked { .. } => Label::Blocked,
            End::Unsettled { .. } => Label::Unsettled,
            End::TimedOut { .. } | End::Crashed => Label::Fail,
            End::Judged(outcome) => match outcome.status {
                Status::Pass => Label::Pass,
                Status::Warn => Label::Warn,
                Status::Fail => Label::Fail,
                Status::Skip => Label::Skipped,
            },
        }
    }

    /// Whether a format shows the check's hint: the things to act on.
    const fn shows_hint(self) -> bool {
        match self {
            Label::Warn | Label::Fail | Label::Unsettled => true,
            Label::Pass | Label::Blocked | Label::Skipped => false,
        }
    }
}

/// "blocked by crds", or "…, which did not settle" when the dependency was cut short: worded
/// once for every format.
fn blocked_text(r: &CheckResult) -> Option<String> {
    match r.end {
        End::Blocked { by, settled: true } => Some(format!("blocked by {by}")),
        End::Blocked { by, settled: false } => {
            Some(format!("blocked by {by}, which did not settle"))
        }
        _ => None,
    }
}

/// `n` and `word`, plural unless `n` is 1: "1 attempt", "7 attempts".
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// How the run cut an unsettled check short, e.g. "still failing at the deadline after 7
/// attempts". Every format marks unsettled checks, and must not call them plain failures: the
/// answer was not known yet.
fn cut_short(r: &CheckResult) -> String {
    let cut_by = match r.end {
        End::Unsettled { cut_by, .. } => cut_by,
        _ => Cut::Deadline,
    };
    match (cut_by, r.attempts) {
        (Cut::Interruption, 0) => "interrupted before its first attempt finished".to_owned(),
        (Cut::Interruption, n) => format!(
            "still failing when interrupted, after {}",
            plural(n as usize, "attempt")
        ),
        (Cut::Deadline, 0) => {
            "cut short by the deadline before its first attempt finished".to_owned()
        }
        (Cut::Deadline, n) => format!(
            "still failing at the deadline after {}",
            plural(n as usize, "attempt")
        ),
    }
}

/// The checks per label, most important first and only the labels that occur, e.g.
/// "2 failed (1 advisory), 1 blocked, 7 passed". Shared so that every format counts alike.
fn tally(report: &Report) -> String {
    let count = |label: Label| {
        report
            .checks
            .iter()
            .filter(|r| Label::of(r) == label)
            .count()
    };
    let advisory = report
        .checks
        .iter()
        .filter(|r| !r.required && Label::of(r) == Label::Fail)
        .count();
    let mut parts = Vec::new();
    for (label, word) in [
        (Label::Fail, "failed"),
        (Label::Unsettled, "unsettled"),
        (Label::Blocked, "blocked"),
        (Label::Skipped, "skipped"),
        (Label::Warn, "warned"),
        (Label::Pass, "passed"),
    ] {
        let n = count(label);
        if n == 0 {
            continue;
        }
        if label == Label::Fail && advisory > 0 {
            parts.push(format!("{n} {word} ({advisory} advisory)"));
        } else {
            parts.push(format!("{n} {word}"));
        }
    }
    if parts.is_empty() {
        "no checks".to_owned()
    } else {
        parts.join(", ")
    }
}

/// The verdict in one word, as headings and the termination message start with it.
/// An interrupted run says so, rather than the generic "unsettled", because the operator (or
/// Kubernetes) stopped it, and the deadline was not the cause.
fn verdict_word(report: &Report) -> &'static str {
    match (report.verdict, report.end) {
        (Verdict::Passed, _) => "PASSED",
        (Verdict::Failed, _) => "FAILED",
        (Verdict::Unsettled, RunEnd::Interrupted) => "INTERRUPTED",
        (Verdict::Unsettled, _) => "UNSETTLED",
    }
}

/// Why the run got its verdict, counting required checks only (they decide it): "1 required
/// check failed, 1 blocked", "the deadline was reached before 2 required checks settled", or
/// for a pass what did not stop it ("1 warning and 1 advisory failure"). None for a clean pass.
fn verdict_reason(report: &Report) -> Option<String> {
    let count =
        |pred: &dyn Fn(&CheckResult) -> bool| report.checks.iter().filter(|r| pred(r)).count();
    let reason = match (report.verdict, report.end) {
        (Verdict::Passed, _) => {
            let warned = count(&|r| r.status() == Status::Warn);
            let advisory = count(&|r| !r.required && Label::of(r) == Label::Fail);
            let mut parts = Vec::new();
            if warned > 0 {
                parts.push(plural(warned, "warning"));
            }
            if advisory > 0 {
                parts.push(plural(advisory, "advisory failure"));
            }
            parts.join(" and ")
        }
        (Verdict::Failed, _) => {
            let mut parts = Vec::new();
            for (label, verb) in [
                (Label::Fail, "failed"),
                (Label::Blocked, "blocked"),
                (Label::Unsettled, "did not settle"),
            ] {
                let n = count(&|r| r.required && Label::of(r) == label);
                if n == 0 {
                    continue;
                }
                if parts.is_empty() {
                    let noun = if n == 1 { "check" } else { "checks" };
                    parts.push(format!("{n} required {noun} {verb}"));
                } else {
                    parts.push(format!("{n} {verb}"));
                }
            }
            parts.join(", ")
        }
        (Verdict::Unsettled, end) => {
            let open = count(&|r| r.required && !r.settled());
            match (end, open) {
                (RunEnd::Interrupted, 0) => "stopped before the run completed".to_owned(),
                (RunEnd::Interrupted, n) => {
                    format!("stopped before {} settled", plural(n, "required check"))
                }
                (_, n) => format!(
                    "the deadline was reached before {} settled",
                    plural(n, "required check")
                ),
            }
        }
    };
    (!reason.is_empty()).then_some(reason)
}

/// The verdict with its reason and exit code, e.g. "FAILED: 2 required checks failed, 1
/// blocked (exit 1)" or "PASSED with 1 warning (exit 0)".
fn verdict_line(report: &Report) -> String {
    let word = verdict_word(report);
    let exit = report.exit_code;
    match (verdict_reason(report), report.verdict) {
        (None, _) => format!("{word} (exit {exit})"),
        (Some(reason), Verdict::Passed) => format!("{word} with {reason} (exit {exit})"),
        (Some(reason), _) => format!("{word}: {reason} (exit {exit})"),
    }
}

/// A duration as people read it: `850ms`, `1.2s`, `2m05s`. Rounded, not truncated, so that
/// 1.96 s reads as 2.0s.
fn short_duration(d: Duration) -> String {
    let ms = d.as_millis();
    let tenths = (ms + 50) / 100;
    if ms < 1000 {
        format!("{ms}ms")
    } else if tenths < 600 {
        format!("{}.{}s", tenths / 10, tenths % 10)
    } else {
        let secs = (ms + 500) / 1000;
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::contract::{Origin, ValuesLayer};
    use crate::outcome::Outcome;

    pub(crate) fn test_values() -> Values {
        ValuesLayer::from_yaml(
            "bootstrap: {mode: ephemeral, maxTier: '1.5', env: dev, buildId: '26-01-23-01'}",
            Origin::File("values.yaml".into()),
        )
        .and_then(ValuesLayer::validate)
        .expect("valid")
    }

    fn result(id: &'static str, tier: Tier, outcome: Outcome) -> CheckResult {
        CheckResult {
            id,
            title: format!("{id} title"),
            tier,
            required: true,
            end: End::Judged(outcome),
            attempts: 1,
            duration: Duration::from_millis(42),
        }
    }

    fn report(tier: Tier, end: RunEnd, checks: Vec<CheckResult>, left_out: Vec<LeftOut>) -> Report {
        let verdict = verdict(end, &checks);
        Report {
            schema: SCHEMA,
            preflight_version: "0.1.0",
            tier: Some(tier),
            app: None,
            cluster: Some(ClusterSummary::from(&test_values())),
            started_at: "2026-01-23T10:00:00Z".parse().expect("timestamp"),
            duration: Duration::from_millis(1234),
            end,
            verdict,
            exit_code: verdict.exit_code(),
            checks,
            left_out,
            notes: vec![
                "no bootstrap ConfigMap kube-system/goldenpath-bootstrap in the cluster".into(),
            ],
        }
    }

    fn left_out(id: &'static str, tier: Tier, reason: &str) -> LeftOut {
        LeftOut {
            id,
            tier,
            needed_by: crate::platform::NeededBy::tier(tier),
            reason: reason.into(),
        }
    }

    pub(crate) fn passing_report() -> Report {
        report(
            Tier::Zero,
            RunEnd::Completed,
            vec![
                result(
                    "kube-api",
                    Tier::Zero,
                    Outcome::pass("api-ready", "Kubernetes v1.31.13-eks-ecaa3a6 reachable"),
                ),
                result(
                    "nodes-ready",
                    Tier::Zero,
                    Outcome::pass(
                        "nodes-ready",
                        "3 of 3 nodes are Ready and schedulable (amd64: 3)",
                    ),
                ),
            ],
            vec![LeftOut {
                id: "crds",
                tier: Tier::One,
                needed_by: crate::platform::NeededBy::tier(Tier::One),
                reason: "above the requested tier 0".into(),
            }],
        )
    }

    pub(crate) fn failing_report() -> Report {
        let mut blocked = result("cluster-secret-store", Tier::One, Outcome::pass("", ""));
        blocked.end = End::Blocked {
            by: "crds",
            settled: true,
        };
        let mut advisory = result(
            "irsa",
            Tier::One,
            Outcome::fail(
                "irsa-missing",
                "ServiceAccount external-dns/external-dns not found",
            )
            .hint("Set the annotation."),
        );
        advisory.required = false;
        let mut unsettled = result(
            "storage-class",
            Tier::OneAndHalf,
            Outcome::fail(
                "no-default-storage-class",
                "none of the 2 StorageClasses is the default",
            )
            .hint("Annotate a gp3 class.\nOr install the EBS CSI add-on."),
        );
        unsettled.end = End::Unsettled {
            last: Some(unsettled.outcome().into_owned()),
            cut_by: Cut::Deadline,
        };
        unsettled.attempts = 7;
        report(
            Tier::OneAndHalf,
            RunEnd::DeadlineReached,
            vec![
                result("kube-api", Tier::Zero, Outcome::pass("api-ready", "Kubernetes v1.31.13-eks-ecaa3a6 reachable")),
                result(
                    "nodes-ready",
                    Tier::Zero,
                    Outcome::warn("nodes-partially-ready", "2 of 3 nodes are Ready and schedulable; NotReady: ip-10-0-0-3")
                        .hint("Inspect the node: kubectl describe node ip-10-0-0-3"),
                ),
                result(
                    "crds",
                    Tier::One,
                    Outcome::fail("crds-missing", "1 of 8 required CRDs are not usable; missing: clustersecretstores.external-secrets.io")
                        .hint("external-secrets.io: install the external-secrets chart with installCRDs=true")
                        .evidence("missing", 1),
                ),
                blocked,
                advisory,
                unsettled,
            ],
            vec![
                left_out("ingress-class", Tier::One, "disabled in the config (disable)"),
                left_out("external-secrets", Tier::Two, "tier 2 is above the requested tier 1.5"),
                left_out("postgres", Tier::Two, "tier 2 is above the requested tier 1.5"),
                left_out("rds-instance", Tier::Two, "tier 2 is above the requested tier 1.5"),
            ],
        )
    }

    fn result_with(status: Status, required: bool, settled: bool, blocked: bool) -> CheckResult {
        let outcome = Outcome::new(status, "c", "m");
        let end = match (blocked, settled) {
            (true, settled) => End::Blocked {
                by: "kube-api",
                settled,
            },
            (false, true) => End::Judged(outcome.clone()),
            (false, false) => End::Unsettled {
                last: Some(outcome.clone()),
                cut_by: Cut::Deadline,
            },
        };
        CheckResult {
            required,
            end,
            ..result("x", Tier::Zero, outcome)
        }
    }

    #[test]
    fn verdicts() {
        use Status::*;
        let completed = RunEnd::Completed;
        for (end, checks, want) in [
            (
                completed,
                vec![
                    result_with(Pass, true, true, false),
                    result_with(Warn, true, true, false),
                ],
                Verdict::Passed,
            ),
            (
                completed,
                vec![result_with(Fail, false, true, false)],
                Verdict::Passed,
            ),
            (
                completed,
                vec![result_with(Fail, true, true, false)],
                Verdict::Failed,
            ),
            (
                RunEnd::DeadlineReached,
                vec![result_with(Fail, true, false, false)],
                Verdict::Unsettled,
            ),
            (
                RunEnd::DeadlineReached,
                vec![
                    result_with(Fail, true, false, false),
                    result_with(Fail, true, true, false),
                ],
                Verdict::Failed,
            ),
            (
                RunEnd::Interrupted,
                vec![result_with(Pass, true, true, false)],
                Verdict::Passed,
            ),
            (
                RunEnd::Interrupted,
                vec![
                    result_with(Pass, true, true, false),
                    result_with(Fail, false, false, false),
                ],
                Verdict::Passed,
            ),
            (RunEnd::Interrupted, vec![], Verdict::Unsettled),
            (
                completed,
                vec![
                    result_with(Fail, false, true, false),
                    result_with(Skip, true, true, true),
                ],
                Verdict::Failed,
            ),
        ] {
            assert_eq!(verdict(end, &checks), want, "{end:?} {checks:?}");
        }
    }
}
