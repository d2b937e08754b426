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
///
/// A Kubernetes credential plugin's failure is said without what kube's own message carries:
/// the plugin's standard output (where an `ExecCredential`, token included, may stand) and its
/// environment; only its exit status and standard error are shown.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    // The plugin's failure as it may be shown, and kube's own text of it, which the errors
    // wrapping it repeat in theirs.
    let mut plugin: Option<(String, String)> = None;
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(auth) = e.downcast_ref::<kube::client::AuthError>()
            && let Some(safe) = credential_plugin_failure(auth)
        {
            plugin = Some((auth.to_string(), safe));
            break;
        }
        next = e.source();
    }
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let mut text = e.to_string();
        if let Some((unsafe_text, safe)) = &plugin {
            text = text.replace(unsafe_text.as_str(), safe);
            if e.downcast_ref::<kube::client::AuthError>().is_some() {
                if !parts.iter().any(|p| p.contains(safe.as_str())) {
                    parts.push(safe.clone());
                }
                break;
            }
        }
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// The longest part of a credential plugin's standard error a message quotes.
const PLUGIN_STDERR_MAX: usize = 2000;

/// What a failed credential plugin is reported as, for the errors whose own text would show
/// what the plugin wrote to standard output (kube formats the whole `std::process::Output`,
/// and the command with its environment) or quote it (a parse error's snippet).
fn credential_plugin_failure(e: &kube::client::AuthError) -> Option<String> {
    use kube::client::AuthError;
    match e {
        AuthError::AuthExecRun { out, .. } => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stderr = stderr.trim();
            let said = if stderr.is_empty() {
                " and wrote nothing to standard error".to_owned()
            } else {
                let mut end = stderr.len().min(PLUGIN_STDERR_MAX);
                while !stderr.is_char_boundary(end) {
                    end -= 1;
                }
                let cut = if end < stderr.len() { " …" } else { "" };
                format!(": {}{cut}", &stderr[..end])
            };
            Some(format!(
                "the kubeconfig's credential plugin (user.exec) exited with {}{said}",
                out.status
            ))
        }
        AuthError::AuthExecParse(parse) => Some(format!(
            "the kubeconfig's credential plugin (user.exec) printed no valid ExecCredential: {}",
            yaml_error_without_values(parse)
        )),
        _ => None,
    }
}

/// A YAML parse error without any of the text it was parsing: no snippet of the source, and
/// no quoted value (serde quotes an unexpected string), so that an error in a document holding
/// a credential never shows it.
#[must_use]
pub fn yaml_error_without_values(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    let mut out = String::with_capacity(text.len());
    let mut quoted = false;
    let mut escaped = false;
    for c in text.chars() {
        if quoted {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => {
                    quoted = false;
                    out.push_str("…\"");
                }
                _ => escaped = false,
            }
        } else {
            out.push(c);
            quoted = c == '"';
        }
    }
    out.lines().next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_yaml_error_quotes_no_value_and_shows_no_snippet() {
        #[derive(Debug, serde::Deserialize)]
        #[expect(dead_code, reason = "only the error is looked at")]
        struct User {
            token: Vec<String>,
        }
        let e =
            serde_saphyr::from_str::<User>("token: \"s3cr3t-value\"\n").expect_err("not a list");
        let text = yaml_error_without_values(&e);
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(!text.contains('\n'), "{text}");
        let e = serde_saphyr::from_str::<User>("token: \"s3cr3t-value\n").expect_err("unclosed");
        let text = yaml_error_without_values(&e);
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("line 1"), "{text}");
    }

    #[test]
    fn a_failed_credential_plugin_shows_its_stderr_and_not_its_output() {
        use std::os::unix::process::ExitStatusExt as _;
        let failed = kube::client::AuthError::AuthExecRun {
            cmd: "AWS_SECRET_ACCESS_KEY=\"s3cr3t\" \"aws\"".into(),
            out: Box::new(std::process::Output {
                status: std::process::ExitStatus::from_raw(256),
                stdout: b"{\"status\": {\"token\": \"s3cr3t-token\"}}".to_vec(),
                stderr: b"the SSO session has expired\n".to_vec(),
            }),
        };
        let text = error_chain(&kube::Error::Auth(failed));
        assert!(
            text.ends_with("exited with exit status: 1: the SSO session has expired"),
            "{text}"
        );
        assert!(!text.contains("s3cr3t"), "{text}");
    }

    #[test]
    fn name_list_truncates() {
        assert_eq!(name_list(&["a", "b"], 5), "a, b");
        assert_eq!(name_list(&["a", "b", "c"], 2), "a, b and 1 more");
        assert_eq!(name_list::<&str>(&[], 2), "");
    }
}
