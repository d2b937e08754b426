//! `tier-gating`: tier gating by enforcement, not convention. Every ArgoCD `Application`
//! carries the platform's tier label, and none is above what this cluster may run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::fetch::{self, APPLICATIONS};
use crate::access::Reads;
use crate::check::{Attempt, Check, Context};
use crate::check::{Built, Definition, Family, Site};
use crate::contract::{Ceiling, Mode};
use crate::outcome::{Outcome, name_list};
use crate::platform::{NeededBy, Provider};
use crate::tier::Tier;

/// `checks.tier-gating`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct TierGatingSettings {
    /// The namespace of ArgoCD's Applications.
    pub namespace: String,
    /// The label carrying an Application's tier.
    pub label: String,
    /// Applications exempt from the rule, such as the app-of-apps root.
    pub exempt: Vec<String>,
}

impl Default for TierGatingSettings {
    fn default() -> Self {
        TierGatingSettings {
            namespace: "argocd".into(),
            label: "goldenpath.idp/tier".into(),
            exempt: Vec::new(),
        }
    }
}

/// An Application's name and labels; its spec and status are skipped while parsing.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ApplicationDoc {
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Metadata {
    #[serde(default)]
    name: String,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    labels: BTreeMap<String, String>,
}

/// The cluster's tier rules, from the contract.
#[derive(Clone, Debug)]
pub struct Gate {
    /// The highest tier this cluster may run, and why.
    pub ceiling: Ceiling,
    /// The cluster's lifecycle.
    pub mode: Mode,
}

/// Judges the Applications of the namespace against the gate.
pub(crate) fn judge(
    apps: &[ApplicationDoc],
    gate: &Gate,
    settings: &TierGatingSettings,
) -> Outcome {
    let label = &settings.label;
    let mut unlabelled = Vec::new();
    let mut violations = Vec::new();
    let mut checked = 0;
    for app in apps {
        let name = &app.metadata.name;
        if settings.exempt.iter().any(|e| e == name) {
            continue;
        }
        checked += 1;
        let Some(value) = app.metadata.labels.get(label) else {
            unlabelled.push(name.as_str());
            continue;
        };
        match value.parse::<Tier>() {
            Err(e) => violations.push(format!("Application {name}: label {label}: {e}")),
            Ok(Tier::Three) if gate.mode == Mode::Ephemeral => violations.push(format!(
                "Application {name} is tier 3 on an ephemeral cluster, which never runs tier 3 (Keycloak needs a persistent cluster)"
            )),
            Ok(tier) if tier > gate.ceiling.tier => violations.push(format!(
                "Application {name} is tier {tier}, above this cluster's ceiling {}",
                gate.ceiling.tier
            )),
            Ok(_) => {}
        }
    }
    if !unlabelled.is_empty() {
        violations.insert(
            0,
            format!(
                "{} Application(s) without the {label} label: {}",
                unlabelled.len(),
                name_list(&unlabelled, 10)
            ),
        );
    }
    if violations.is_empty() && checked == 0 {
        return Outcome::warn(
            "tier-gating-no-applications",
            format!("no ArgoCD Application in {} to check", settings.namespace),
        )
        .hint("Check checks.tier-gating.namespace: ArgoCD's Applications live in its own namespace unless apps-in-any-namespace is on.");
    }
    if violations.is_empty() {
        return Outcome::pass(
            "tier-gating-enforced",
            format!(
                "{checked} Application(s) in {} carry a {label} label at or below the ceiling {}",
                settings.namespace, gate.ceiling.tier
            ),
        )
        .evidence("ceiling", gate.ceiling.tier);
    }
    Outcome::fail("tier-gating-violated", violations.join("; "))
        .hint(format!(
            "Label every Application with {label}: \"<tier>\" (one of 0, 1, 1.5, 2, 3) in the app-of-apps templates, and render an app only when its tier is at or below the ceiling ({}). List exceptions such as the root app in checks.tier-gating.exempt.",
            gate.ceiling.rule
        ))
        .evidence("ceiling", gate.ceiling.tier)
}

/// The `tier-gating` check.
#[derive(Debug)]
pub struct TierGating {
    settings: TierGatingSettings,
    gate: Gate,
}

impl TierGating {
    /// A check with these settings, enforcing the cluster's gate.
    #[must_use]
    pub fn new(settings: TierGatingSettings, gate: Gate) -> Self {
        TierGating { settings, gate }
    }
}

impl Definition for TierGating {
    const ID: &'static str = "tier-gating";
    const FAMILY: Family = Family::Kubernetes;
    type Settings = TierGatingSettings;

    /// Before tier 1 syncs, the app-of-apps must not render an app above the ceiling.
    fn needed_by(_: &TierGatingSettings) -> NeededBy {
        NeededBy::tier(Tier::One)
    }

    fn provided_by(_: &TierGatingSettings, _: &Site<'_>) -> Provider {
        Provider::Foundation("ArgoCD and the app-of-apps' Applications")
    }

    fn build(settings: &TierGatingSettings, site: &Site<'_>) -> Result<Built, String> {
        let values = site.values;
        Ok(Built::new(
            TierGating::new(
                settings.clone(),
                Gate {
                    ceiling: values.ceiling.clone(),
                    mode: values.mode.value,
                },
            ),
            format!(
                "ArgoCD Applications in {} carry {} at or below the ceiling {}",
                settings.namespace, settings.label, values.ceiling.tier
            ),
            Self::provided_by(settings, site),
            &[super::KubeApi::ID],
        ))
    }
}

#[async_trait::async_trait]
impl Check for TierGating {
    fn reads(&self) -> Reads {
        Reads::kube(vec![APPLICATIONS.within(&self.settings.namespace)])
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        fetch::judge_applications(
            ctx,
            &self.settings.namespace,
            "tier-gating-api-missing",
            "Install ArgoCD with its CRDs (argo-cd chart value crds.install=true).",
            |apps: &[ApplicationDoc]| judge(apps, &self.gate, &self.settings),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    fn app(name: &str, tier: Option<&str>) -> ApplicationDoc {
        let mut labels = BTreeMap::new();
        if let Some(t) = tier {
            labels.insert("goldenpath.idp/tier".to_owned(), t.to_owned());
        }
        ApplicationDoc {
            metadata: Metadata {
                name: name.into(),
                labels,
            },
        }
    }

    fn gate(mode: Mode, tier: Tier) -> Gate {
        Gate {
            ceiling: Ceiling {
                tier,
                rule: "bootstrap.maxTier is 1.5 (values.yaml:3)".into(),
            },
            mode,
        }
    }

    fn settings() -> TierGatingSettings {
        TierGatingSettings {
            namespace: "argocd".into(),
            label: "goldenpath.idp/tier".into(),
            exempt: vec!["platform-root".into()],
        }
    }

    #[test]
    fn judges_labels_against_the_ceiling_and_the_mode() {
        let ephemeral = gate(Mode::Ephemeral, Tier::OneAndHalf);
        let ok = [
            app("argocd", Some("1")),
            app("prometheus", Some("1.5")),
            app("platform-root", None),
        ];
        let o = judge(&ok, &ephemeral, &settings());
        assert_eq!(
            (o.status, o.code.as_str()),
            (Status::Pass, "tier-gating-enforced")
        );
        assert!(o.message.starts_with("2 Application(s)"), "{}", o.message);

        for (apps, needle) in [
            (
                vec![app("backstage", Some("2"))],
                "backstage is tier 2, above this cluster's ceiling 1.5",
            ),
            (
                vec![app("keycloak", Some("3"))],
                "keycloak is tier 3 on an ephemeral cluster",
            ),
            (
                vec![app("loki", None)],
                "1 Application(s) without the goldenpath.idp/tier label: loki",
            ),
            (
                vec![app("grafana", Some("two"))],
                "grafana: label goldenpath.idp/tier: \"two\" is not a tier",
            ),
            (vec![app("grafana", Some("2.5"))], "\"2.5\" is not a tier"),
        ] {
            let o = judge(&apps, &ephemeral, &settings());
            assert_eq!(o.code, "tier-gating-violated");
            assert!(o.message.contains(needle), "{needle:?} in {}", o.message);
            assert!(
                o.hint
                    .as_deref()
                    .is_some_and(|h| h.contains("values.yaml:3"))
            );
        }

        let o = judge(&[app("platform-root", None)], &ephemeral, &settings());
        assert_eq!(
            (o.status, o.code.as_str()),
            (Status::Warn, "tier-gating-no-applications")
        );

        let persistent = gate(Mode::Persistent, Tier::Three);
        let o = judge(&[app("keycloak", Some("3"))], &persistent, &settings());
        assert_eq!(o.status, Status::Pass);
    }
}
