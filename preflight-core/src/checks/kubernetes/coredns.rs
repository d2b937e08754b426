//! `coredns`: the cluster's DNS, which every pod depends on, is available.

use serde::{Deserialize, Serialize};

use super::conditions::{self, Condition};
use super::fetch::{self, DEPLOYMENTS};
use crate::check::ObjectRef;
use crate::check::{Attempt, Built, Check, Context, Definition, Family, Site};
use crate::outcome::Outcome;
use crate::platform::{NeededBy, Provider};
use crate::reads::Reads;
use crate::tier::Tier;

/// `checks.coredns`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct CoreDnsSettings {
    /// The workload, `namespace/name`.
    pub workload: ObjectRef,
}

impl Default for CoreDnsSettings {
    fn default() -> Self {
        CoreDnsSettings {
            workload: ObjectRef::new("kube-system", "coredns"),
        }
    }
}

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
    #[serde(default, deserialize_with = "super::fetch::or_default")]
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

/// The `coredns` check.
#[derive(Debug)]
pub struct CoreDns {
    settings: CoreDnsSettings,
}

impl CoreDns {
    /// A check with these settings.
    #[must_use]
    pub fn new(settings: CoreDnsSettings) -> Self {
        CoreDns { settings }
    }
}

impl Definition for CoreDns {
    const ID: &'static str = "coredns";
    const FAMILY: Family = Family::Kubernetes;
    type Settings = CoreDnsSettings;

    fn needed_by(_: &CoreDnsSettings) -> NeededBy {
        NeededBy::tier(Tier::Zero)
    }

    fn provided_by(_: &CoreDnsSettings, _: &Site<'_>) -> Provider {
        Provider::Foundation("the EKS coredns add-on")
    }

    fn build(settings: &CoreDnsSettings, site: &Site<'_>) -> Result<Built, String> {
        Ok(Built::new(
            CoreDns::new(settings.clone()),
            format!("CoreDNS Deployment {} available", settings.workload),
            Self::provided_by(settings, site),
            &[super::KubeApi::ID],
        ))
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
}
