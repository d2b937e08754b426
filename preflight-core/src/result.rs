//! How each check of a run ended, and how the run itself ended: the one type the
//! [`runner`](crate::runner) sets and every [`report`](crate::report) format reads. It sits
//! below both, so that neither imports the other.
//!
//! A check's [`End`] says which promise the run kept for it: judged (its own verdict, final),
//! blocked by a dependency, cut short while still waiting, timed out, or crashed. Reporters
//! `match` on it rather than compare codes, and the JSON report carries it as `state`.

use std::borrow::Cow;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::check::CheckMeta;
use crate::outcome::{Outcome, Status, TIMEOUT_HINT};
use crate::tier::Tier;

/// What cut a check short.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Cut {
    /// The `--wait` deadline passed.
    Deadline,
    /// The run was cancelled (SIGTERM, SIGINT, or the caller's cancellation token).
    Interruption,
}

/// How one check's part in a run ended. Only the runner sets it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum End {
    /// The check judged what it found; the outcome is final, whatever its status.
    Judged(Outcome),
    /// Not run, because a check it needs did not pass.
    Blocked {
        /// The dependency.
        by: &'static str,
        /// Whether the dependency's own answer was final; false when it was cut short, so
        /// that this check's answer is not known either.
        settled: bool,
    },
    /// Cut short while its last answer was still a failure it was waiting to see change.
    Unsettled {
        /// The last attempt's outcome; `None` when no attempt had finished.
        last: Option<Outcome>,
        /// What cut it short.
        cut_by: Cut,
    },
    /// Its only attempt got no answer within the attempt timeout (a run without `--wait`).
    TimedOut {
        /// The time limit of the attempt.
        limit: Duration,
    },
    /// Its task stopped abnormally: a bug in preflight.
    Crashed,
}

/// [`End`] as a word: the JSON report's `state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum State {
    /// [`End::Judged`].
    Judged,
    /// [`End::Blocked`].
    Blocked,
    /// [`End::Unsettled`].
    Unsettled,
    /// [`End::TimedOut`].
    TimedOut,
    /// [`End::Crashed`].
    Crashed,
}

impl End {
    /// The word for this end.
    #[must_use]
    pub const fn state(&self) -> State {
        match self {
            End::Judged(_) => State::Judged,
            End::Blocked { .. } => State::Blocked,
            End::Unsettled { .. } => State::Unsettled,
            End::TimedOut { .. } => State::TimedOut,
            End::Crashed => State::Crashed,
        }
    }

    /// Whether the answer is final: false when the run was cut short before it was known.
    #[must_use]
    pub const fn settled(&self) -> bool {
        match self {
            End::Unsettled { .. } => false,
            End::Blocked { settled, .. } => *settled,
            End::Judged(_) | End::TimedOut { .. } | End::Crashed => true,
        }
    }

    /// The outcome the reports show: the check's own for a judged or unsettled check, and
    /// one worded by the runner for the other ends (stable codes `blocked`, `interrupted`,
    /// `deadline-reached`, `timed-out`, `check-crashed`).
    #[must_use]
    pub fn outcome(&self) -> Cow<'_, Outcome> {
        match self {
            End::Judged(outcome)
            | End::Unsettled {
                last: Some(outcome),
                ..
            } => Cow::Borrowed(outcome),
            End::Blocked { by, settled } => Cow::Owned(Outcome::new(
                Status::Skip,
                "blocked",
                if *settled {
                    format!("not run: {by} did not pass")
                } else {
                    format!("not run: {by} did not settle")
                },
            )),
            End::Unsettled {
                last: None,
                cut_by: Cut::Interruption,
            } => Cow::Owned(Outcome::fail(
                "interrupted",
                "interrupted before the check finished",
            )),
            End::Unsettled {
                last: None,
                cut_by: Cut::Deadline,
            } => Cow::Owned(Outcome::fail(
                "deadline-reached",
                "the deadline passed before the check finished",
            )),
            End::TimedOut { limit } => Cow::Owned(
                Outcome::fail(
                    "timed-out",
                    // In milliseconds at most: a limit cut by the run's end is not a round number.
                    format!(
                        "no answer within {}",
                        humantime::format_duration(Duration::from_millis(
                            u64::try_from(limit.as_millis()).unwrap_or(u64::MAX)
                        ))
                    ),
                )
                .hint(TIMEOUT_HINT),
            ),
            End::Crashed => Cow::Owned(Outcome::fail(
                "check-crashed",
                "the check stopped abnormally (a bug in preflight: please report it)",
            )),
        }
    }
}

/// A duration as whole milliseconds, as every duration in the JSON report is written.
pub(crate) fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The result of one check in a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    /// The check's id.
    pub id: &'static str,
    /// What it verifies.
    pub title: String,
    /// Its tier.
    pub tier: Tier,
    /// Whether its failure fails the run.
    pub required: bool,
    /// How it ended.
    pub end: End,
    /// Attempts made.
    pub attempts: u32,
    /// Time from its start to its end.
    pub duration: Duration,
}

impl CheckResult {
    /// A result for the check `meta` describes, with no attempt made yet.
    #[must_use]
    pub fn new(meta: &CheckMeta, end: End) -> Self {
        CheckResult {
            id: meta.id,
            title: meta.title.clone(),
            tier: meta.tier,
            required: meta.required,
            end,
            attempts: 0,
            duration: Duration::ZERO,
        }
    }

    /// The outcome the reports show (see [`End::outcome`]).
    #[must_use]
    pub fn outcome(&self) -> Cow<'_, Outcome> {
        self.end.outcome()
    }

    /// The status of [`outcome`](Self::outcome).
    #[must_use]
    pub fn status(&self) -> Status {
        self.outcome().status
    }

    /// Whether the answer is final (see [`End::settled`]).
    #[must_use]
    pub const fn settled(&self) -> bool {
        self.end.settled()
    }

    /// The dependency that kept it from running.
    #[must_use]
    pub const fn blocked_by(&self) -> Option<&'static str> {
        match self.end {
            End::Blocked { by, .. } => Some(by),
            _ => None,
        }
    }

    /// Whether the run fails on this check's own answer: a required check that failed for
    /// good (judged, timed out or crashed).
    #[must_use]
    pub fn failed_for_good(&self) -> bool {
        self.required
            && match &self.end {
                End::Judged(outcome) => outcome.status == Status::Fail,
                End::TimedOut { .. } | End::Crashed => true,
                End::Blocked { .. } | End::Unsettled { .. } => false,
            }
    }
}

/// The JSON shape of a [`CheckResult`]: the fields of schema v1 as they were, plus the state
/// and what cut an unsettled check short.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    id: &'static str,
    title: &'a str,
    tier: Tier,
    required: bool,
    #[serde(flatten)]
    outcome: Cow<'a, Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blocked_by: Option<&'static str>,
    settled: bool,
    state: State,
    #[serde(skip_serializing_if = "Option::is_none")]
    cut_by: Option<Cut>,
    #[serde(rename = "timeoutMs", skip_serializing_if = "Option::is_none")]
    timeout: Option<u64>,
    attempts: u32,
    #[serde(rename = "durationMs", serialize_with = "millis")]
    duration: Duration,
}

impl Serialize for CheckResult {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire {
            id: self.id,
            title: &self.title,
            tier: self.tier,
            required: self.required,
            outcome: self.outcome(),
            blocked_by: self.blocked_by(),
            settled: self.settled(),
            state: self.end.state(),
            cut_by: match self.end {
                End::Unsettled { cut_by, .. } => Some(cut_by),
                _ => None,
            },
            timeout: match self.end {
                End::TimedOut { limit } => {
                    Some(u64::try_from(limit.as_millis()).unwrap_or(u64::MAX))
                }
                _ => None,
            },
            attempts: self.attempts,
            duration: self.duration,
        }
        .serialize(s)
    }
}

/// How the run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum RunEnd {
    /// Every check settled.
    Completed,
    /// The `--wait` deadline cut some checks short.
    DeadlineReached,
    /// SIGTERM or SIGINT (or the caller's cancellation).
    Interrupted,
}

/// What a run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunResults {
    /// When it started.
    pub started_at: jiff::Timestamp,
    /// How long it took.
    pub duration: Duration,
    /// How it ended.
    pub end: RunEnd,
    /// One result per planned check, in plan order.
    pub checks: Vec<CheckResult>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(end: End) -> CheckResult {
        CheckResult {
            id: "x",
            title: "x".into(),
            tier: Tier::Zero,
            required: true,
            end,
            attempts: 2,
            duration: Duration::from_millis(1500),
        }
    }

    /// Every end keeps the v1 fields and adds its state; the runner's own codes are stable.
    #[test]
    fn serializes_each_end_with_its_state() {
        let cases = [
            (
                End::Judged(Outcome::pass("ok", "fine")),
                "judged",
                "pass",
                "ok",
                true,
            ),
            (
                End::Blocked {
                    by: "crds",
                    settled: false,
                },
                "blocked",
                "skip",
                "blocked",
                false,
            ),
            (
                End::Unsettled {
                    last: Some(Outcome::fail("nodes-not-ready", "1 of 3")),
                    cut_by: Cut::Deadline,
                },
                "unsettled",
                "fail",
                "nodes-not-ready",
                false,
            ),
            (
                End::Unsettled {
                    last: None,
                    cut_by: Cut::Interruption,
                },
                "unsettled",
                "fail",
                "interrupted",
                false,
            ),
            (
                End::TimedOut {
                    limit: Duration::from_secs(10),
                },
                "timed-out",
                "fail",
                "timed-out",
                true,
            ),
            (End::Crashed, "crashed", "fail", "check-crashed", true),
        ];
        for (end, state, status, code, settled) in cases {
            let json = serde_json::to_value(result(end)).expect("serializes");
            assert_eq!(json["state"], state, "{json}");
            assert_eq!(json["status"], status, "{json}");
            assert_eq!(json["code"], code, "{json}");
            assert_eq!(json["settled"], settled, "{json}");
            assert_eq!(json["durationMs"], 1500, "{json}");
        }
        let blocked = serde_json::to_value(result(End::Blocked {
            by: "crds",
            settled: true,
        }))
        .expect("serializes");
        assert_eq!(blocked["blockedBy"], "crds");
        let timed_out = serde_json::to_value(result(End::TimedOut {
            limit: Duration::from_secs(10),
        }))
        .expect("serializes");
        assert_eq!(timed_out["timeoutMs"], 10_000);
        assert_eq!(timed_out["message"], "no answer within 10s");
    }
}
