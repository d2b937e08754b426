//! `coredns` and `cni`: the system workloads every pod depends on.

use serde::Deserialize;

use super::conditions::{self, Condition};
use super::fetch::{self, DAEMON_SETS, DEPLOYMENTS};
use crate::access::Reads;
use crate::check::{Attempt, Check, Context};
use crate::config::{ObjectRef, WorkloadSettings};
use crate::outcome::Outcome;

/// The parts of a Deployment that say whether it serves.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct DeploymentDoc {
    #[serde(default)]
    spec: DeploymentSpec,
    #[serde(default)]
    status: DeploymentStatus,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct DeploymentSpec {
    replicas: Option<i32>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentStatus {
    #[serde(default)]
    available_replicas: i32,
    #[serde(default)]
    conditions: Vec<Condition>,
}

/// Judges the CoreDNS Deployment.
pub(crate) fn judge_deployment(name: &ObjectRef, found: Option<&DeploymentDoc>) -> Outcome {
    let Some(d) = found else {
        return Outcome::fail("coredns-missing", format!("Deployment {name} not found: the cluster has no DNS"))
            .hint("Install the EKS add-on: aws eks create-addon --addon-name coredns --cluster-name <cluster>, or set checks.coredns.workload.");
    };
    let wanted = d.spec.replicas.unwrap_or(1);
    let available = d.status.available_replicas;
    let condition = conditions::find(&d.status.conditions, "Available");
    let counts = format!("{available}/{wanted} replicas available");
    match condition {
        Some(c) if c.status == "True" && available > 0 => {
            Outcome::pass("coredns-available", format!("Deployment {name} is available ({counts})"))
        }
        _ => {
            let why = conditions::explain(condition);
            Outcome::fail("coredns-unavailable", format!("Deployment {name} is not available ({counts}){why}")).hint(
                "CoreDNS pods need schedulable nodes and a working CNI: kubectl -n kube-system describe deployment coredns, and check its pods' events.",
            )
        }
    }
    .evidence("available", available)
    .evidence("replicas", wanted)
}

/// The parts of a DaemonSet that say whether it runs everywhere.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct DaemonSetDoc {
    #[serde(default)]
    status: DaemonSetStatus,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DaemonSetStatus {
    #[serde(default)]
    desired_number_scheduled: i32,
    #[serde(default)]
    number_ready: i32,
}

/// Judges the CNI DaemonSet.
pub(crate) fn judge_daemonset(name: &ObjectRef, found: Option<&DaemonSetDoc>) -> Outcome {
    let Some(d) = found else {
        return Outcome::fail("cni-missing", format!("DaemonSet {name} not found: pods cannot get network addresses"))
            .hint("Install the VPC CNI add-on (aws eks create-addon --addon-name vpc-cni), or set checks.cni.workload to the CNI in use (e.g. kube-system/cilium).");
    };
    let (desired, ready) = (d.status.desired_number_scheduled, d.status.number_ready);
    let outcome = if desired == 0 {
        Outcome::fail("cni-not-scheduled", format!("DaemonSet {name} schedules no pods")).hint(
            "No node matches the DaemonSet: check that nodes have joined and that its nodeSelector and tolerations fit them.",
        )
    } else if ready < desired {
        Outcome::fail("cni-not-ready", format!("DaemonSet {name}: {ready}/{desired} pods ready")).hint(
            "Pods on nodes without a ready CNI stay ContainerCreating. Check kubectl -n kube-system logs ds/aws-node, the CNI's IAM policy (AmazonEKS_CNI_Policy) and free IP addresses in the subnets.",
        )
    } else {
        Outcome::pass(
            "cni-ready",
            format!("DaemonSet {name}: {ready}/{desired} pods ready"),
        )
    };
    outcome
        .evidence("desired", desired)
        .evidence("ready", ready)
}

/// The `coredns` check.
#[derive(Debug)]
pub struct CoreDns {
    settings: WorkloadSettings,
}

impl CoreDns {
    /// A check with these settings.
    #[must_use]
    pub fn new(settings: WorkloadSettings) -> Self {
        CoreDns { settings }
    }
}

#[async_trait::async_trait]
impl Check for CoreDns {
    fn reads(&self) -> Reads {
        Reads::kube(vec![DEPLOYMENTS.within(&self.settings.workload.namespace)])
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        let w = &self.settings.workload;
        fetch::judge_object(ctx, &DEPLOYMENTS, Some(&w.namespace), &w.name, |d| {
            judge_deployment(w, d)
        })
        .await
    }
}

/// The `cni` check.
#[derive(Debug)]
pub struct Cni {
    settings: WorkloadSettings,
}

impl Cni {
    /// A check with these settings.
    #[must_use]
    pub fn new(settings: WorkloadSettings) -> Self {
        Cni { settings }
    }
}

#[async_trait::async_trait]
impl Check for Cni {
    fn reads(&self) -> Reads {
        Reads::kube(vec![DAEMON_SETS.within(&self.settings.workload.namespace)])
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        let w = &self.settings.workload;
        fetch::judge_object(ctx, &DAEMON_SETS, Some(&w.namespace), &w.name, |d| {
            judge_daemonset(w, d)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    #[test]
    fn judges_the_coredns_deployment() {
        let name = ObjectRef::new("kube-system", "coredns");
        for (yaml, status, code) in [
            (
                Some(
                    "spec: {replicas: 2}\nstatus:\n  availableReplicas: 2\n  conditions:\n  - {type: Available, status: \"True\", reason: MinimumReplicasAvailable, message: ok}\n",
                ),
                Status::Pass,
                "coredns-available",
            ),
            (
                Some(
                    "spec: {replicas: 2}\nstatus:\n  availableReplicas: 0\n  conditions:\n  - {type: Available, status: \"False\", reason: MinimumReplicasUnavailable, message: Deployment does not have minimum availability.}\n",
                ),
                Status::Fail,
                "coredns-unavailable",
            ),
            (
                Some("spec: {replicas: 2}\n"),
                Status::Fail,
                "coredns-unavailable",
            ),
            (None, Status::Fail, "coredns-missing"),
        ] {
            let doc: Option<DeploymentDoc> =
                yaml.map(|y| serde_saphyr::from_str(y).expect("parses"));
            let o = judge_deployment(&name, doc.as_ref());
            assert_eq!((o.status, o.code.as_str()), (status, code), "{yaml:?}");
            assert!(o.message.contains("kube-system/coredns"));
        }
    }

    #[test]
    fn shows_the_deployments_own_reason() {
        let doc: DeploymentDoc = serde_saphyr::from_str(
            "status:\n  conditions:\n  - {type: Available, status: \"False\", reason: MinimumReplicasUnavailable, message: Deployment does not have minimum availability.}\n",
        )
        .expect("parses");
        let o = judge_deployment(&ObjectRef::new("kube-system", "coredns"), Some(&doc));
        assert!(
            o.message.ends_with(
                "MinimumReplicasUnavailable: Deployment does not have minimum availability."
            ),
            "{}",
            o.message
        );
    }

    #[test]
    fn judges_the_cni_daemonset() {
        let name = ObjectRef::new("kube-system", "aws-node");
        for (yaml, status, code) in [
            (
                Some("status: {desiredNumberScheduled: 3, numberReady: 3}"),
                Status::Pass,
                "cni-ready",
            ),
            (
                Some("status: {desiredNumberScheduled: 3, numberReady: 1}"),
                Status::Fail,
                "cni-not-ready",
            ),
            (
                Some("status: {desiredNumberScheduled: 0, numberReady: 0}"),
                Status::Fail,
                "cni-not-scheduled",
            ),
            (Some("{}"), Status::Fail, "cni-not-scheduled"),
            (None, Status::Fail, "cni-missing"),
        ] {
            let doc: Option<DaemonSetDoc> =
                yaml.map(|y| serde_saphyr::from_str(y).expect("parses"));
            let o = judge_daemonset(&name, doc.as_ref());
            assert_eq!((o.status, o.code.as_str()), (status, code), "{yaml:?}");
        }
    }
}
