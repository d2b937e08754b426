//! Status conditions, the convention every Kubernetes controller reports through.

use serde::Deserialize;

/// One `status.conditions[]` entry.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub(crate) struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
    /// The object's `metadata.generation` the condition was computed for, when the controller
    /// says: an older one describes a spec that has since changed.
    #[serde(default, rename = "observedGeneration")]
    pub observed_generation: Option<i64>,
}

/// The condition of the given type, if reported.
pub(crate) fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of the given type is `True`.
pub(crate) fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

/// `": Reason: message"` of a condition for a failure message, or nothing when it is absent.
pub(crate) fn explain(condition: Option<&Condition>) -> String {
    match condition {
        Some(c) if !c.reason.is_empty() || !c.message.is_empty() => {
            format!(
                ": {}",
                [c.reason.as_str(), c.message.as_str()]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(": ")
            )
        }
        Some(c) => format!(": {} is {}", c.type_, c.status),
        None => String::new(),
    }
}
