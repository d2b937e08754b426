//! The report of a run, and the formats it is written in. Reporters render a finished
//! [`Report`]; they never print: the binary decides where the text goes.

use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::check::CheckMeta;
use crate::contract::{Ceiling, Values};
use crate::exit;
use crate::outcome::{Outcome, Status};
use crate::plan::{LeftOut, Plan};
use crate::runner::RunResults;
use crate::tier::Tier;

/// The JSON report's schema id; bumped on any incompatible change.
pub const SCHEMA: &str = "preflight.report/v1";

fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The result of one check in a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// The check's id.
    pub id: &'static str,
    /// What it verifies.
    pub title: String,
    /// Its tier.
    pub tier: Tier,
    /// Whether its failure fails the run.
    pub required: bool,
    /// The last outcome.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The failed dependency that kept it from running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<&'static str>,
    /// Whether the outcome is final; false when the deadline or an interruption cut the
    /// check short while it was still waiting for a change.
    pub settled: bool,
    /// Attempts made.
    pub attempts: u32,
    /// Time from its start to its last outcome.
    #[serde(rename = "durationMs", serialize_with = "millis")]
    pub duration: Duration,
}

impl CheckResult {
    /// A result for a check that did not (finish) running.
    #[must_use]
    pub fn new(meta: &CheckMeta, outcome: Outcome) -> Self {
        CheckResult {
            id: meta.id,
            title: meta.title.clone(),
            tier: meta.tier,
            required: meta.required,
            outcome,
            blocked_by: None,
            settled: true,
            attempts: 0,
            duration: Duration::ZERO,
        }
    }
}

/// How the run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunEnd {
    /// Every check settled.
    Completed,
    /// The `--wait` deadline cut some checks short.
    DeadlineReached,
    /// SIGTERM or SIGINT.
    Interrupted,
}

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
    /// The tier checked (cumulative).
    pub tier: Tier,
    /// The cluster.
    pub cluster: ClusterSummary,
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
    /// Assembles the report of a run of `plan` and computes its verdict.
    #[must_use]
    pub fn new(plan: &Plan, values: &Values, results: RunResults, notes: Vec<String>) -> Self {
        let verdict = verdict(results.end, &results.checks);
        Report {
            schema: SCHEMA,
            preflight_version: env!("CARGO_PKG_VERSION"),
            tier: plan.tier,
            cluster: ClusterSummary::from(values),
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
            match r.outcome.status {
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
/// that answer is already known. Otherwise anything unsettled, or an interruption, leaves the
/// run unsettled.
fn verdict(end: RunEnd, checks: &[CheckResult]) -> Verdict {
    let required = || checks.iter().filter(|c| c.required);
    if required().any(|c| c.settled && c.outcome.status == Status::Fail) {
        Verdict::Failed
    } else if end == RunEnd::Interrupted || required().any(|c| !c.settled) {
        Verdict::Unsettled
    } else if required().any(|c| c.outcome.status == Status::Skip && c.blocked_by.is_some()) {
        // Blocked by an advisory check that failed: the required check never ran.
        Verdict::Failed
    } else {
        Verdict::Passed
    }
}

/// A short label for each status, as the human report and summaries show it.
#[must_use]
pub fn status_label(r: &CheckResult) -> &'static str {
    match (r.outcome.status, r.blocked_by.is_some(), r.settled) {
        (_, true, _) => "blocked",
        (Status::Fail, _, false) => "unsettled",
        (Status::Pass, ..) => "pass",
        (Status::Warn, ..) => "warn",
        (Status::Fail, ..) => "fail",
        (Status::Skip, ..) => "skipped",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(status: Status, required: bool, settled: bool, blocked: bool) -> CheckResult {
        CheckResult {
            id: "x",
            title: "x".into(),
            tier: Tier::Zero,
            required,
            outcome: Outcome::new(status, "c", "m"),
            blocked_by: blocked.then_some("kube-api"),
            settled,
            attempts: 1,
            duration: Duration::ZERO,
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
                    result(Pass, true, true, false),
                    result(Warn, true, true, false),
                ],
                Verdict::Passed,
            ),
            (
                completed,
                vec![result(Fail, false, true, false)],
                Verdict::Passed,
            ),
            (
                completed,
                vec![result(Fail, true, true, false)],
                Verdict::Failed,
            ),
            (
                RunEnd::DeadlineReached,
                vec![result(Fail, true, false, false)],
                Verdict::Unsettled,
            ),
            (
                RunEnd::DeadlineReached,
                vec![
                    result(Fail, true, false, false),
                    result(Fail, true, true, false),
                ],
                Verdict::Failed,
            ),
            (
                RunEnd::Interrupted,
                vec![result(Pass, true, true, false)],
                Verdict::Unsettled,
            ),
            (
                completed,
                vec![
                    result(Fail, false, true, false),
                    result(Skip, true, true, true),
                ],
                Verdict::Failed,
            ),
        ] {
            assert_eq!(verdict(end, &checks), want, "{end:?} {checks:?}");
        }
    }
}
