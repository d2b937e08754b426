//! What a check reads: Kubernetes objects (by type, namespace and, for Secrets, name) and AWS
//! API calls. Checks declare it; [`access`](crate::access) turns a plan's reads into the least
//! privilege that grants them, and hints quote [`grant`] when one permission is missing.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

/// Reads of one Kubernetes resource type, in one namespace or across the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeRead {
    /// API group; empty for the core group.
    pub group: &'static str,
    /// Plural resource name.
    pub resource: &'static str,
    /// The namespace, or `None` for cluster-scoped resources.
    pub namespace: Option<String>,
    /// The objects' names when the read must be limited to them (Secrets); empty: all.
    pub names: Vec<String>,
}

impl KubeRead {
    /// Every object of a cluster-scoped type.
    #[must_use]
    pub fn cluster(group: &'static str, resource: &'static str) -> Self {
        KubeRead {
            group,
            resource,
            namespace: None,
            names: Vec::new(),
        }
    }

    /// Every object of a type in one namespace.
    #[must_use]
    pub fn namespaced(group: &'static str, resource: &'static str, namespace: &str) -> Self {
        KubeRead {
            group,
            resource,
            namespace: Some(namespace.to_owned()),
            names: Vec::new(),
        }
    }

    /// One Secret, by name.
    #[must_use]
    pub fn secret(namespace: &str, name: &str) -> Self {
        KubeRead {
            group: "",
            resource: "secrets",
            namespace: Some(namespace.to_owned()),
            names: vec![name.to_owned()],
        }
    }
}

/// Whether preflight reads objects of this type by name only, and its RBAC grants them by
/// name (`resourceNames`): Secrets and ConfigMaps, whose other objects it has no business
/// seeing.
#[must_use]
pub(crate) fn read_by_name(group: &str, resource: &str) -> bool {
    group.is_empty() && matches!(resource, "secrets" | "configmaps")
}

/// The rule that grants `verbs` of `read`, as preflight's RBAC writes it, with the kind of
/// role that holds it: the text to paste when that permission is missing.
#[must_use]
pub fn grant(read: &KubeRead, verbs: &[&str]) -> String {
    let mut rules = Rules::new();
    add(&mut rules, read);
    let mut rule = rule_values(&rules).remove(0);
    rule["verbs"] = json!(verbs);
    let role = match &read.namespace {
        Some(ns) => format!("a Role in the namespace {ns:?}"),
        None => "a ClusterRole".to_owned(),
    };
    let yaml =
        serde_saphyr::to_string(&json!([rule])).expect("a JSON value always has a YAML form");
    let indented: Vec<String> = yaml.lines().map(|l| format!("  {l}")).collect();
    format!(
        "grant it to preflight's ServiceAccount in {role}:\n{}",
        indented.join("\n")
    )
}

/// One IAM action on one resource.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct IamGrant {
    /// E.g. `rds:DescribeDBInstances`.
    pub action: &'static str,
    /// The resource ARN pattern, `*` for actions without resource-level permissions.
    pub resource: String,
}

/// Everything one check reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reads {
    /// Kubernetes reads.
    pub kube: Vec<KubeRead>,
    /// AWS API calls.
    pub iam: Vec<IamGrant>,
}

impl Reads {
    /// Only Kubernetes reads.
    #[must_use]
    pub fn kube(kube: Vec<KubeRead>) -> Self {
        Reads {
            kube,
            iam: Vec::new(),
        }
    }
}

/// Which rules a (Cluster)Role holds: (group, resource) → names (empty: every object).
pub(crate) type Rules = BTreeMap<(&'static str, &'static str), BTreeSet<String>>;

pub(crate) fn add(rules: &mut Rules, read: &KubeRead) {
    let names = rules.entry((read.group, read.resource)).or_default();
    // A read of every object subsumes reads by name; an empty set means "all".
    if read.names.is_empty() {
        names.clear();
        names.insert(String::new());
    } else if !names.contains("") {
        names.extend(read.names.iter().cloned());
    }
}

pub(crate) fn rule_values(rules: &Rules) -> Vec<Value> {
    rules
        .iter()
        .map(|((group, resource), names)| {
            let mut rule = json!({
                "apiGroups": [group],
                "resources": [resource],
                "verbs": ["get", "list", "watch"],
            });
            if !names.contains("") {
                rule["resourceNames"] = json!(names);
            }
            rule
        })
        .collect()
}
