//! What a check found: a status, a stable code, a message, a hint and evidence. Outcomes are
//! data, not errors: "the check found a problem" is a normal result.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// The verdict of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The prerequisite holds.
    Pass,
    /// It holds, with something the operator should know.
    Warn,
    /// It does not hold, or could not be verified.
    Fail,
    /// Not judged: blocked by a failed dependency, or not applicable.
    Skip,
}

impl Status {
    /// Whether dependants of a check with this status may run.
    #[must_use]
    pub const fn is_ok(self) -> bool {
        matches!(self, Status::Pass | Status::Warn)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        })
    }
}

/// A check's finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The verdict.
    pub status: Status,
    /// A stable kebab-case code, e.g. `nodes-not-ready`; CI may match on it.
    pub code: String,
    /// What was found, naming the objects involved.
    pub message: String,
    /// How to fix it, when there is something to fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Facts behind the verdict (versions, counts, names), for reports.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub evidence: BTreeMap<String, String>,
}

impl Outcome {
    /// An outcome with the given status.
    #[must_use]
    pub fn new(status: Status, code: impl Into<String>, message: impl Into<String>) -> Self {
        Outcome {
            status,
            code: code.into(),
            message: message.into(),
            hint: None,
            evidence: BTreeMap::new(),
        }
    }

    /// A passing outcome.
    #[must_use]
    pub fn pass(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Status::Pass, code, message)
    }

    /// A warning.
    #[must_use]
    pub fn warn(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Status::Warn, code, message)
    }

    /// A failure.
    #[must_use]
    pub fn fail(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Status::Fail, code, message)
    }

    /// Adds a remediation hint.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds one piece of evidence.
    #[must_use]
    pub fn evidence(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.evidence.insert(key.into(), value.to_string());
        self
    }
}

/// The hint for an attempt that got no answer in time.
pub(crate) const TIMEOUT_HINT: &str = "The endpoint accepted no request in time: packets dropped by a security group, NACL or firewall look like this. Raise runner.attemptTimeout only for an endpoint known to be slow.";

/// Lists names for a message, at most `max` of them, then "and N more".
#[must_use]
pub(crate) fn name_list<S: AsRef<str>>(names: &[S], max: usize) -> String {
    let shown: Vec<&str> = names.iter().take(max).map(AsRef::as_ref).collect();
    let mut out = shown.join(", ");
    if names.len() > max {
        out.push_str(&format!(" and {} more", names.len() - max));
    }
    out
}

/// The `message` chain of an error, outermost first, without repeats.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_list_truncates() {
        assert_eq!(name_list(&["a", "b"], 5), "a, b");
        assert_eq!(name_list(&["a", "b", "c"], 2), "a, b and 1 more");
        assert_eq!(name_list::<&str>(&[], 2), "");
    }
}
