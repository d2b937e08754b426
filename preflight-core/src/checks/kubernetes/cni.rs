//! `cni`: the CNI DaemonSet, which gives every pod its network address, runs on every node.

use serde::{Deserialize, Serialize};

use super::fetch::{self, DAEMON_SETS};
use crate::check::ObjectRef;
use crate::check::{Attempt, Built, Check, Context, Definition, Family, Site};
use crate::outcome::Outcome;
use crate::platform::{NeededBy, Provider};
use crate::reads::Reads;
use crate::tier::Tier;

/// `checks.cni`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct CniSettings {
    /// The workload, `namespace/name`.
    pub workload: ObjectRef,
}

impl Default for CniSettings {
    fn default() -> Self {
        CniSettings {
            workload: ObjectRef::new("kube-system", "aws-node"),
        }
    }
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

/// The `cni` check.
#[derive(Debug)]
pub struct Cni {
    settings: CniSettings,
}

impl Cni {
    /// A check with these settings.
    #[must_use]
    pub fn new(settings: CniSettings) -> Self {
        Cni { settings }
    }
}

impl Definition for Cni {
    const ID: &'static str = "cni";
    const FAMILY: Family = Family::Kubernetes;
    type Settings = CniSettings;

    fn needed_by(_: &CniSettings) -> NeededBy {
        NeededBy::tier(Tier::Zero)
    }

    fn provided_by(_: &CniSettings, _: &Site<'_>) -> Provider {
        Provider::Foundation("the EKS vpc-cni add-on")
    }

    fn build(settings: &CniSettings, site: &Site<'_>) -> Result<Built, String> {
        Ok(Built::new(
            Cni::new(settings.clone()),
            format!("CNI DaemonSet {} ready", settings.workload),
            Self::provided_by(settings, site),
            &[super::KubeApi::ID],
        ))
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
