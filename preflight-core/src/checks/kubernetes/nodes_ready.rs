//! `nodes-ready`: enough Ready, schedulable nodes of the architectures the images are built for.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::conditions::{self, Condition};
use super::fetch::{self, NODES};
use crate::check::{Attempt, Check, Context, KubeWatch};
use crate::check::{Built, Definition, Family, Site};
use crate::outcome::{Outcome, name_list};
use crate::platform::{NeededBy, Provider};
use crate::reads::Reads;
use crate::tier::Tier;

/// `checks.nodes-ready`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct NodesSettings {
    /// Fewest Ready, schedulable nodes.
    pub min_ready: usize,
    /// CPU architectures the platform's images are built for; nodes of another
    /// architecture would fail with `exec format error`. Empty: any.
    pub architectures: Vec<String>,
}

impl Default for NodesSettings {
    fn default() -> Self {
        NodesSettings {
            min_ready: 1,
            architectures: vec!["amd64".into()],
        }
    }
}

/// Only the fields the judgement needs: on a 5,000-node cluster this keeps memory flat, as the
/// rest of each Node (images, labels, addresses) is skipped while parsing.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct NodeDoc {
    metadata: NodeMeta,
    #[serde(default)]
    spec: NodeSpec,
    #[serde(default)]
    status: NodeStatus,
}

#[derive(Clone, Debug, Deserialize)]
struct NodeMeta {
    name: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct NodeSpec {
    #[serde(default)]
    unschedulable: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeStatus {
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    conditions: Vec<Condition>,
    #[serde(default)]
    node_info: NodeInfo,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct NodeInfo {
    #[serde(default)]
    architecture: String,
}

/// The Ready condition of a node, as the node controller reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Readiness {
    Ready,
    NotReady,
    /// `Unknown` (the kubelet stopped posting status) or no Ready condition at all.
    Unknown,
}

/// The facts about one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NodeFact {
    pub name: String,
    pub readiness: Readiness,
    pub cordoned: bool,
    pub arch: String,
}

impl From<NodeDoc> for NodeFact {
    fn from(n: NodeDoc) -> Self {
        let readiness =
            match conditions::find(&n.status.conditions, "Ready").map(|c| c.status.as_str()) {
                Some("True") => Readiness::Ready,
                Some("False") => Readiness::NotReady,
                _ => Readiness::Unknown,
            };
        NodeFact {
            name: n.metadata.name,
            readiness,
            cordoned: n.spec.unschedulable,
            arch: n.status.node_info.architecture,
        }
    }
}

const SHOWN: usize = 10;

/// Judges the nodes: pure, so every case is a table test.
pub(crate) fn judge(nodes: &[NodeFact], settings: &NodesSettings) -> Outcome {
    let arch_ok = |n: &NodeFact| {
        settings.architectures.is_empty() || settings.architectures.contains(&n.arch)
    };
    let names = |pred: &dyn Fn(&NodeFact) -> bool| -> Vec<&str> {
        nodes
            .iter()
            .filter(|n| pred(n))
            .map(|n| n.name.as_str())
            .collect()
    };
    let ready = names(&|n| n.readiness == Readiness::Ready && !n.cordoned);
    let usable = names(&|n| n.readiness == Readiness::Ready && !n.cordoned && arch_ok(n));
    let not_ready = names(&|n| n.readiness == Readiness::NotReady);
    let unknown = names(&|n| n.readiness == Readiness::Unknown);
    let cordoned = names(&|n| n.cordoned);
    let foreign = names(&|n| n.readiness == Readiness::Ready && !n.cordoned && !arch_ok(n));

    let mut archs: BTreeMap<&str, usize> = BTreeMap::new();
    for n in nodes {
        *archs
            .entry(if n.arch.is_empty() {
                "unknown"
            } else {
                n.arch.as_str()
            })
            .or_default() += 1;
    }
    let arch_summary = archs
        .iter()
        .map(|(a, c)| format!("{a}: {c}"))
        .collect::<Vec<_>>()
        .join(", ");

    let mut problems = Vec::new();
    if !not_ready.is_empty() {
        problems.push(format!("NotReady: {}", name_list(&not_ready, SHOWN)));
    }
    if !unknown.is_empty() {
        problems.push(format!("Unknown: {}", name_list(&unknown, SHOWN)));
    }
    if !cordoned.is_empty() {
        problems.push(format!("cordoned: {}", name_list(&cordoned, SHOWN)));
    }
    if !foreign.is_empty() {
        problems.push(format!(
            "not {}: {}",
            settings.architectures.join("/"),
            name_list(&foreign, SHOWN)
        ));
    }
    let detail = if problems.is_empty() {
        String::new()
    } else {
        format!("; {}", problems.join("; "))
    };

    let outcome = if nodes.is_empty() {
        Outcome::fail("no-nodes", "the cluster has no nodes").hint(
            "The node group has not created instances yet: check its desired size, EC2 capacity and the node IAM role (aws eks describe-nodegroup).",
        )
    } else if usable.len() < settings.min_ready {
        let outcome = Outcome::fail(
            "nodes-not-ready",
            format!(
                "{} of {} nodes are Ready and schedulable{}, at least {} needed{detail}",
                usable.len(),
                nodes.len(),
                if settings.architectures.is_empty() {
                    String::new()
                } else {
                    format!(" on {}", settings.architectures.join("/"))
                },
                settings.min_ready
            ),
        );
        if usable.is_empty() && !ready.is_empty() {
            let foreign_archs: BTreeSet<&str> = nodes
                .iter()
                .filter(|n| n.readiness == Readiness::Ready && !arch_ok(n))
                .map(|n| n.arch.as_str())
                .collect();
            outcome.hint(format!(
                "The Ready nodes are {} but the platform's images are built for {}: pods would fail with `exec format error`. Add a node group of that architecture or build multi-arch images.",
                foreign_archs.into_iter().collect::<Vec<_>>().join("/"),
                settings.architectures.join("/")
            ))
        } else {
            outcome.hint(
                "Nodes may still be joining: wait for them (--wait 10m). Otherwise inspect a NotReady node (kubectl describe node <name>): kubelet, CNI (aws-node) and the node's IAM role are the usual causes. Uncordon nodes with kubectl uncordon.",
            )
        }
    } else if !not_ready.is_empty() || !unknown.is_empty() || !foreign.is_empty() {
        let outcome = Outcome::warn(
            "nodes-partially-ready",
            format!(
                "{} of {} nodes are Ready and schedulable{detail}",
                usable.len(),
                nodes.len()
            ),
        );
        if foreign.is_empty() {
            outcome
        } else {
            outcome.hint(format!(
                "Pods without a nodeSelector may land on nodes that cannot run {} images (`exec format error`).",
                settings.architectures.join("/")
            ))
        }
    } else {
        Outcome::pass(
            "nodes-ready",
            format!(
                "{} of {} nodes are Ready and schedulable ({arch_summary}){detail}",
                usable.len(),
                nodes.len()
            ),
        )
    };
    outcome
        .evidence("nodes", nodes.len())
        .evidence("ready", ready.len())
        .evidence("architectures", arch_summary)
}

/// The `nodes-ready` check.
#[derive(Debug)]
pub struct NodesReady {
    settings: NodesSettings,
}

impl NodesReady {
    /// A check with these settings.
    #[must_use]
    pub fn new(settings: NodesSettings) -> Self {
        NodesReady { settings }
    }
}

impl Definition for NodesReady {
    const ID: &'static str = "nodes-ready";
    const FAMILY: Family = Family::Kubernetes;
    type Settings = NodesSettings;

    fn needed_by(_: &NodesSettings) -> NeededBy {
        NeededBy::tier(Tier::Zero)
    }

    fn provided_by(_: &NodesSettings, _: &Site<'_>) -> Provider {
        Provider::Foundation("EKS managed node groups")
    }

    fn build(settings: &NodesSettings, site: &Site<'_>) -> Result<Built, String> {
        Ok(Built::new(
            NodesReady::new(settings.clone()),
            format!("at least {} Ready, schedulable node(s)", settings.min_ready),
            Self::provided_by(settings, site),
            &[super::KubeApi::ID],
        ))
    }
}

#[async_trait::async_trait]
impl Check for NodesReady {
    fn reads(&self) -> Reads {
        Reads::kube(vec![NODES.everywhere()])
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        // Pages are reduced to facts as they arrive, so a page's documents are dropped early.
        let listed = fetch::list_fold(
            ctx,
            &NODES,
            None,
            None,
            Vec::new(),
            |facts: &mut Vec<NodeFact>, page: Vec<NodeDoc>| {
                facts.extend(page.into_iter().map(NodeFact::from));
            },
        )
        .await;
        match listed {
            Ok((facts, version)) => Attempt::until_changed(
                judge(&facts, &self.settings),
                vec![KubeWatch {
                    path: NODES.collection_path(None),
                    field_selector: None,
                    resource_version: version,
                }],
            ),
            Err(failed) => *failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    fn nodes(yaml: &str) -> Vec<NodeFact> {
        let docs: Vec<NodeDoc> = serde_saphyr::from_str(yaml).expect("fixture parses");
        docs.into_iter().map(NodeFact::from).collect()
    }

    fn node(name: &str, ready: &str, arch: &str, cordoned: bool) -> String {
        format!(
            "- metadata: {{name: {name}}}\n  spec: {{unschedulable: {cordoned}}}\n  status:\n    nodeInfo: {{architecture: {arch}}}\n    conditions:\n    - {{type: MemoryPressure, status: \"False\"}}\n    - {{type: Ready, status: \"{ready}\"}}\n"
        )
    }

    fn settings(min_ready: usize) -> NodesSettings {
        NodesSettings {
            min_ready,
            architectures: vec!["amd64".into()],
        }
    }

    #[test]
    fn judges_every_case() {
        let cases: Vec<(String, usize, Status, &str, &str)> = vec![
            (
                node("a", "True", "amd64", false) + &node("b", "True", "amd64", false),
                2,
                Status::Pass,
                "nodes-ready",
                "2 of 2 nodes are Ready and schedulable (amd64: 2)",
            ),
            (
                node("a", "True", "amd64", false) + &node("b", "False", "amd64", false),
                2,
                Status::Fail,
                "nodes-not-ready",
                "1 of 2 nodes are Ready and schedulable on amd64, at least 2 needed; NotReady: b",
            ),
            (
                node("a", "True", "amd64", false) + &node("b", "Unknown", "amd64", false),
                1,
                Status::Warn,
                "nodes-partially-ready",
                "Unknown: b",
            ),
            (
                node("a", "True", "amd64", true) + &node("b", "True", "amd64", false),
                2,
                Status::Fail,
                "nodes-not-ready",
                "cordoned: a",
            ),
            (
                node("a", "True", "arm64", false),
                1,
                Status::Fail,
                "nodes-not-ready",
                "not amd64: a",
            ),
            (
                node("a", "True", "arm64", false) + &node("b", "True", "amd64", false),
                1,
                Status::Warn,
                "nodes-partially-ready",
                "not amd64: a",
            ),
            (
                "- metadata: {name: bare}\n".into(),
                1,
                Status::Fail,
                "nodes-not-ready",
                "Unknown: bare",
            ),
            (
                "[]".into(),
                1,
                Status::Fail,
                "no-nodes",
                "the cluster has no nodes",
            ),
        ];
        for (yaml, min, status, code, needle) in cases {
            let o = judge(&nodes(&yaml), &settings(min));
            assert_eq!((o.status, o.code.as_str()), (status, code), "{yaml}");
            assert!(
                o.message.contains(needle),
                "{:?} lacks {needle:?}",
                o.message
            );
        }
    }

    #[test]
    fn names_the_foreign_architecture_in_the_hint() {
        let o = judge(&nodes(&node("a", "True", "arm64", false)), &settings(1));
        assert!(o.hint.expect("hint").contains("The Ready nodes are arm64"));
    }

    #[test]
    fn caps_the_names_it_lists() {
        let yaml: String = (0..25)
            .map(|i| node(&format!("n{i}"), "False", "amd64", false))
            .collect();
        let o = judge(&nodes(&yaml), &settings(1));
        assert!(o.message.ends_with("and 15 more"), "{}", o.message);
    }

    #[test]
    fn reads_the_real_eks_node_shape() {
        let list: serde_json::Value = serde_json::from_str(include_str!(
            "../../../../tests/fixtures/k8s-nodelist-eks-real.json"
        ))
        .expect("fixture is JSON");
        let docs: Vec<NodeDoc> =
            serde_json::from_value(list["items"].clone()).expect("nodes parse");
        let facts: Vec<NodeFact> = docs.into_iter().map(NodeFact::from).collect();
        assert_eq!(
            facts,
            [NodeFact {
                name: "ip-10-0-10-170.ec2.internal".into(),
                readiness: Readiness::Ready,
                cordoned: false,
                arch: "amd64".into()
            }]
        );
    }
}
