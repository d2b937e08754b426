//! `crds` and `observability-crds`: the CustomResourceDefinitions a tier's apps create objects of
//! exist and are `Established`.

use serde::{Deserialize, Serialize};

use super::conditions::{self, Condition};
use super::fetch::{self, CRDS};
use crate::check::{Attempt, Check, Context};
use crate::check::{Built, Definition, Family, Site};
use crate::outcome::{Outcome, name_list};
use crate::platform::{NeededBy, Provider};
use crate::reads::Reads;
use crate::tier::Tier;

/// `checks.crds`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct CrdSettings {
    /// CRD names, `plural.group`.
    pub names: Vec<String>,
}

impl Default for CrdSettings {
    fn default() -> Self {
        CrdSettings {
            names: [
                "externalsecrets.external-secrets.io",
                "clustersecretstores.external-secrets.io",
                "secretstores.external-secrets.io",
                "certificates.cert-manager.io",
                "clusterissuers.cert-manager.io",
                "issuers.cert-manager.io",
            ]
            .map(str::to_owned)
            .to_vec(),
        }
    }
}

/// The status of a CRD; its schema, often hundreds of kilobytes, is skipped while parsing.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct CrdDoc {
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    status: CrdStatus,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct CrdStatus {
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    conditions: Vec<Condition>,
}

/// Which chart installs the CRDs of a group, and the value that turns them on: the usual cause
/// of a missing CRD is a chart installed with its CRDs disabled.
fn chart_hint(group: &str) -> &'static str {
    match group {
        "external-secrets.io" => "external-secrets chart with installCRDs=true",
        "argoproj.io" => "argo-cd chart with crds.install=true",
        "cert-manager.io" => {
            "cert-manager chart with crds.enabled=true (installCRDs=true before v1.15)"
        }
        "monitoring.coreos.com" => "kube-prometheus-stack chart with crds.enabled=true",
        _ => "chart that owns it, with its CRDs enabled",
    }
}

/// Judges the CRDs found (by name; `None` when absent).
pub(crate) fn judge(found: &[(String, Option<CrdDoc>)]) -> Outcome {
    let missing: Vec<&str> = found
        .iter()
        .filter(|(_, d)| d.is_none())
        .map(|(n, _)| n.as_str())
        .collect();
    let not_established: Vec<String> = found
        .iter()
        .filter_map(|(name, doc)| {
            let doc = doc.as_ref()?;
            if conditions::is_true(&doc.status.conditions, "Established") {
                return None;
            }
            // NamesAccepted=False explains why a CRD never becomes Established (a name clash).
            let why = conditions::find(&doc.status.conditions, "NamesAccepted")
                .filter(|c| c.status == "False")
                .or_else(|| conditions::find(&doc.status.conditions, "Established"));
            Some(format!("{name}{}", conditions::explain(why)))
        })
        .collect();
    let total = found.len();
    let evidence = |o: Outcome| {
        o.evidence("required", total)
            .evidence("missing", missing.len())
    };
    if missing.is_empty() && not_established.is_empty() {
        return evidence(Outcome::pass(
            "crds-established",
            format!("all {total} required CRDs are established"),
        ));
    }
    let mut groups: Vec<&str> = missing
        .iter()
        .filter_map(|n| n.split_once('.').map(|(_, g)| g))
        .collect();
    groups.dedup();
    let hint = if missing.is_empty() {
        "A CRD that is not Established is still being registered, or its names clash with another CRD (see NamesAccepted): kubectl describe crd <name>.".to_owned()
    } else {
        let installs: Vec<String> = groups
            .iter()
            .map(|g| format!("{g}: install the {}", chart_hint(g)))
            .collect();
        format!(
            "{}. Tier apps fail to sync with `no matches for kind` until then.",
            installs.join("; ")
        )
    };
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing: {}", name_list(&missing, 10)));
    }
    if !not_established.is_empty() {
        parts.push(format!(
            "not established: {}",
            name_list(&not_established, 10)
        ));
    }
    let code = if missing.is_empty() {
        "crds-not-established"
    } else {
        "crds-missing"
    };
    evidence(
        Outcome::fail(
            code,
            format!(
                "{} of {total} required CRDs are not usable; {}",
                missing.len() + not_established.len(),
                parts.join("; ")
            ),
        )
        .hint(hint),
    )
}

/// CRDs that must exist and be Established: the check behind `crds` and
/// `observability-crds`.
#[derive(Debug)]
pub struct CrdsEstablished {
    names: Vec<String>,
}

impl CrdsEstablished {
    /// A check of these CRDs, `plural.group`.
    #[must_use]
    pub fn new(names: Vec<String>) -> Self {
        CrdsEstablished { names }
    }
}

/// `crds`: the CRDs tier 1 installs for what the tiers above ship (ExternalSecrets,
/// Certificates, ClusterIssuers).
#[derive(Debug)]
pub struct Crds;

impl Definition for Crds {
    const ID: &'static str = "crds";
    const FAMILY: Family = Family::Kubernetes;
    type Settings = CrdSettings;

    /// The first gate after tier 1 installed them; tier 1.5's apps use certificates.
    fn needed_by(_: &CrdSettings) -> NeededBy {
        NeededBy::tier(Tier::OneAndHalf)
    }

    fn provided_by(_: &CrdSettings, _: &Site<'_>) -> Provider {
        Provider::Tier(Tier::One, "the External Secrets and cert-manager charts")
    }

    fn build(settings: &CrdSettings, site: &Site<'_>) -> Result<Built, String> {
        Ok(Built::new(
            CrdsEstablished::new(settings.names.clone()),
            format!(
                "{} CRDs of External Secrets and cert-manager established",
                settings.names.len()
            ),
            Self::provided_by(settings, site),
            &[super::KubeApi::ID],
        ))
    }
}

#[async_trait::async_trait]
impl Check for CrdsEstablished {
    fn reads(&self) -> Reads {
        Reads::kube(vec![CRDS.everywhere()])
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        // One read per CRD rather than a list of all: CRDs carry large schemas, and a platform
        // cluster has hundreds of them.
        let names = &self.names;
        let refs: Vec<(Option<&str>, &str)> = names.iter().map(|n| (None, n.as_str())).collect();
        fetch::judge_objects(ctx, &CRDS, &refs, |found| {
            judge(&names.iter().cloned().zip(found).collect::<Vec<_>>())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    fn crd(yaml: &str) -> Option<CrdDoc> {
        Some(serde_saphyr::from_str(yaml).expect("parses"))
    }

    const ESTABLISHED: &str = "status:\n  conditions:\n  - {type: NamesAccepted, status: \"True\", reason: NoConflicts}\n  - {type: Established, status: \"True\", reason: InitialNamesAccepted}\n";

    #[test]
    fn judges_established_missing_and_pending_crds() {
        let ok = judge(&[("a.example.io".into(), crd(ESTABLISHED))]);
        assert_eq!(
            (ok.status, ok.code.as_str()),
            (Status::Pass, "crds-established")
        );

        let missing = judge(&[
            ("externalsecrets.external-secrets.io".into(), None),
            ("applications.argoproj.io".into(), crd(ESTABLISHED)),
        ]);
        assert_eq!(
            (missing.status, missing.code.as_str()),
            (Status::Fail, "crds-missing")
        );
        assert!(
            missing
                .message
                .contains("missing: externalsecrets.external-secrets.io"),
            "{}",
            missing.message
        );
        assert!(missing.hint.expect("hint").contains("installCRDs=true"));

        let clash = judge(&[(
            "widgets.example.io".into(),
            crd(
                "status:\n  conditions:\n  - {type: NamesAccepted, status: \"False\", reason: ListKindConflict, message: '\"WidgetList\" is already in use'}\n  - {type: Established, status: \"False\", reason: NotAccepted}\n",
            ),
        )]);
        assert_eq!(clash.code, "crds-not-established");
        assert!(
            clash
                .message
                .contains("widgets.example.io: ListKindConflict: \"WidgetList\" is already in use"),
            "{}",
            clash.message
        );

        let fresh = judge(&[("widgets.example.io".into(), crd("{}"))]);
        assert_eq!(fresh.code, "crds-not-established");
    }
}
