//! The resource types the server knows: the built-ins it always serves, and those a
//! CustomResourceDefinition declares while it exists.

use std::cmp::Reverse;

use anyhow::{Context as _, bail};
use serde_json::Value;

/// A resource type, as discovery describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResourceDef {
    /// API group; empty for the core group.
    pub(crate) group: String,
    /// Served versions, most preferred first (Kubernetes' version priority).
    pub(crate) versions: Vec<String>,
    /// Lower-case plural, the path segment: `nodes`.
    pub(crate) plural: String,
    /// Lower-case singular: `node`.
    pub(crate) singular: String,
    /// `Node`.
    pub(crate) kind: String,
    /// `NodeList`.
    pub(crate) list_kind: String,
    /// Whether objects live in namespaces.
    pub(crate) namespaced: bool,
    /// The verbs discovery advertises.
    pub(crate) verbs: Vec<&'static str>,
    /// `kubectl get no`…
    pub(crate) short_names: Vec<String>,
    /// Whether a `/status` subresource exists (discovery lists it, as real servers do).
    pub(crate) status: bool,
}

impl ResourceDef {
    /// Whether this type is served at `version`.
    pub(crate) fn serves(&self, version: &str) -> bool {
        self.versions.iter().any(|v| v == version)
    }

    /// `group/version`, or just `version` for the core group.
    pub(crate) fn group_version(&self, version: &str) -> String {
        group_version(&self.group, version)
    }

    /// `plural.group`, as error messages name a grouped resource; just `plural` in the core
    /// group.
    pub(crate) fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Whether this is the CustomResourceDefinition type itself.
    pub(crate) fn is_crd(&self) -> bool {
        self.group == CRD_GROUP && self.plural == "customresourcedefinitions"
    }
}

/// `group/version`, or just `version` for the core group.
pub(crate) fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

/// The group of CustomResourceDefinitions.
pub(crate) const CRD_GROUP: &str = "apiextensions.k8s.io";

const READ_WRITE: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// One built-in type: (group, version, plural, kind, namespaced, short names, status).
type Builtin = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
    bool,
);

const BUILTINS: [Builtin; 16] = [
    ("", "v1", "nodes", "Node", false, &["no"], true),
    ("", "v1", "namespaces", "Namespace", false, &["ns"], true),
    ("", "v1", "configmaps", "ConfigMap", true, &["cm"], false),
    ("", "v1", "secrets", "Secret", true, &[], false),
    (
        "",
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        true,
        &["sa"],
        false,
    ),
    (
        "apps",
        "v1",
        "deployments",
        "Deployment",
        true,
        &["deploy"],
        true,
    ),
    ("apps", "v1", "daemonsets", "DaemonSet", true, &["ds"], true),
    ("", "v1", "services", "Service", true, &["svc"], true),
    (
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "EndpointSlice",
        true,
        &[],
        false,
    ),
    (
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        true,
        &["ing"],
        true,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        false,
        &[],
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        false,
        &[],
        false,
    ),
    (
        "storage.k8s.io",
        "v1",
        "storageclasses",
        "StorageClass",
        false,
        &["sc"],
        false,
    ),
    (
        "networking.k8s.io",
        "v1",
        "ingressclasses",
        "IngressClass",
        false,
        &[],
        false,
    ),
    (
        CRD_GROUP,
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        true,
    ),
    (
        "authentication.k8s.io",
        "v1",
        "selfsubjectreviews",
        "SelfSubjectReview",
        false,
        &[],
        false,
    ),
];

/// Whether (group, plural) is a built-in type, which no CRD can replace.
pub(crate) fn is_builtin((group, plural): &(String, String)) -> bool {
    BUILTINS
        .iter()
        .any(|b| b.0 == group.as_str() && b.2 == plural.as_str())
}

/// The types every server serves.
pub(crate) fn builtins() -> Vec<ResourceDef> {
    BUILTINS
        .iter()
        .map(
            |&(group, version, plural, kind, namespaced, short, status)| ResourceDef {
                group: group.into(),
                versions: vec![version.into()],
                plural: plural.into(),
                singular: kind.to_lowercase(),
                kind: kind.into(),
                list_kind: format!("{kind}List"),
                namespaced,
                // A review is only ever created: it answers "who am I".
                verbs: if plural == "selfsubjectreviews" {
                    vec!["create"]
                } else {
                    READ_WRITE.to_vec()
                },
                short_names: short.iter().map(|s| (*s).to_owned()).collect(),
                status,
            },
        )
        .collect()
}

/// The type a CRD declares, validated as the real server validates it (the parts that matter
/// for serving). `None` when it serves no version.
pub(crate) fn crd_def(crd: &Value) -> anyhow::Result<Option<ResourceDef>> {
    let spec = &crd["spec"];
    let text = |v: &Value, what: &str| {
        v.as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .with_context(|| format!("CustomResourceDefinition has no {what}"))
    };
    let group = text(&spec["group"], "spec.group")?;
    let plural = text(&spec["names"]["plural"], "spec.names.plural")?;
    let kind = text(&spec["names"]["kind"], "spec.names.kind")?;
    let name = crd["metadata"]["name"].as_str().unwrap_or_default();
    if name != format!("{plural}.{group}") {
        bail!(
            "CustomResourceDefinition {name:?} is invalid: metadata.name must be spec.names.plural+\".\"+spec.group ({plural}.{group})"
        );
    }
    let namespaced = match spec["scope"].as_str() {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        other => bail!(
            "CustomResourceDefinition {name} has spec.scope {other:?}: must be Namespaced or Cluster"
        ),
    };
    let declared = spec["versions"]
        .as_array()
        .with_context(|| format!("CustomResourceDefinition {name} has no spec.versions"))?;
    let served: Vec<&Value> = declared
        .iter()
        .filter(|v| v["served"].as_bool().unwrap_or(false))
        .collect();
    let mut versions: Vec<String> = served
        .iter()
        .filter_map(|v| v["name"].as_str().map(str::to_owned))
        .collect();
    if versions.is_empty() {
        return Ok(None);
    }
    sort_versions(&mut versions);
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(Some(ResourceDef {
        group,
        versions,
        singular: spec["names"]["singular"]
            .as_str()
            .map_or_else(|| kind.to_lowercase(), str::to_owned),
        list_kind: spec["names"]["listKind"]
            .as_str()
            .map_or_else(|| format!("{kind}List"), str::to_owned),
        kind,
        plural,
        namespaced,
        verbs: READ_WRITE.to_vec(),
        short_names: strings(&spec["names"]["shortNames"]),
        status: served
            .iter()
            .any(|v| v["subresources"]["status"].is_object()),
    }))
}

/// Sorts versions the way the API server prefers them: GA before beta before alpha, higher
/// numbers first, anything else last and alphabetically (`v1`, `v1beta2`, `v1beta1`,
/// `v1alpha1`, `foo`).
pub(crate) fn sort_versions<S: AsRef<str>>(versions: &mut [S]) {
    versions.sort_by_key(|v| version_priority(v.as_ref()));
}

fn version_priority(v: &str) -> (u8, Reverse<u64>, Reverse<u64>, String) {
    let other = (3, Reverse(0), Reverse(0), v.to_owned());
    let Some(rest) = v.strip_prefix('v') else {
        return other;
    };
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let Ok(major) = rest[..digits].parse::<u64>() else {
        return other;
    };
    let suffix = &rest[digits..];
    let (rank, minor) = if suffix.is_empty() {
        (0, "0")
    } else if let Some(n) = suffix.strip_prefix("beta") {
        (1, n)
    } else if let Some(n) = suffix.strip_prefix("alpha") {
        (2, n)
    } else {
        return other;
    };
    match minor.parse::<u64>() {
        Ok(minor) => (rank, Reverse(major), Reverse(minor), String::new()),
        Err(_) => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn versions_sort_by_kubernetes_priority() {
        let mut v = vec![
            "v1alpha1", "foo10", "v1beta1", "v2", "v1", "v10beta3", "v1beta2", "foo1", "v3x",
        ];
        sort_versions(&mut v);
        assert_eq!(
            v,
            [
                "v2", "v1", "v10beta3", "v1beta2", "v1beta1", "v1alpha1", "foo1", "foo10", "v3x"
            ]
        );
    }

    fn crd(name: &str, scope: &str, versions: Value) -> Value {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
            "spec": {"group": "example.io", "scope": scope,
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": versions}})
    }

    #[test]
    fn a_crd_declares_its_served_versions_in_preferred_order() {
        let def = crd_def(&crd(
            "widgets.example.io",
            "Namespaced",
            json!([
                {"name": "v1beta1", "served": true, "storage": true},
                {"name": "v1", "served": true, "storage": false, "subresources": {"status": {}}},
                {"name": "v1alpha1", "served": false, "storage": false}
            ]),
        ))
        .expect("valid")
        .expect("served");
        assert_eq!(def.versions, ["v1", "v1beta1"]);
        assert_eq!(
            (
                def.kind.as_str(),
                def.list_kind.as_str(),
                def.singular.as_str()
            ),
            ("Widget", "WidgetList", "widget")
        );
        assert!(def.namespaced && def.status);
        assert_eq!(def.short_names, ["wd"]);
    }

    #[test]
    fn invalid_crds_are_refused_and_unserved_ones_declare_nothing() {
        let versions = json!([{"name": "v1", "served": true, "storage": true}]);
        assert!(crd_def(&crd("widgets.other.io", "Cluster", versions.clone())).is_err());
        assert!(crd_def(&crd("widgets.example.io", "Global", versions)).is_err());
        let unserved = json!([{"name": "v1", "served": false, "storage": true}]);
        assert!(
            crd_def(&crd("widgets.example.io", "Cluster", unserved))
                .expect("valid")
                .is_none()
        );
    }
}
