//! `tier-gating`: tier gating by enforcement, not convention. Every ArgoCD `Application`
//! carries the platform's tier label, and none is above what this cluster may run.
//!
//! On a first sync the app-of-apps' root creates its children wave by wave, so the tier-1 gate
//! sees none of them: the check also judges the platform's apps the roots list in their
//! `status.resources` and have not created yet (read by [`super::app_of_apps`]), at the tier
//! the platform gives them, against the ceiling and the ephemeral rule. A listed child that is
//! not one of the platform's apps is judged once it exists, by its label. The roots themselves
//! (Applications listing Applications) are exempt: an app-of-apps carries no tier of its own.
//! `exempt` names further Applications to skip, listed or not.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::app_of_apps::{self, Listed};
use super::fetch::{self, APPLICATIONS};
use crate::check::{Attempt, Check, Context};
use crate::check::{Built, Definition, Family, Site};
use crate::contract::{Ceiling, Mode};
use crate::outcome::{Outcome, name_list};
use crate::platform::{self, NeededBy, Provider};
use crate::reads::Reads;
use crate::tier::Tier;

/// `checks.tier-gating`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct TierGatingSettings {
    /// The namespace of ArgoCD's Applications.
    pub namespace: String,
    /// The label carrying an Application's tier.
    pub label: String,
    /// Applications exempt from the rule, besides the app-of-apps' roots (exempt anyway).
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

/// An Application's name, labels and the resources its status lists; its spec is skipped.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ApplicationDoc {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    status: AppStatus,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Metadata {
    #[serde(default)]
    name: String,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct AppStatus {
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    resources: Vec<Listed>,
}

/// The cluster's tier rules, from the contract.
#[derive(Clone, Debug)]
pub struct Gate {
    /// The highest tier this cluster may run, and why.
    pub ceiling: Ceiling,
    /// The cluster's lifecycle.
    pub mode: Mode,
}

/// Why `tier` is above what the cluster may run, or `None` when it may run it.
fn above(tier: Tier, gate: &Gate) -> Option<String> {
    let over = tier > gate.ceiling.tier;
    let ephemeral = tier == Tier::Three && gate.mode == Mode::Ephemeral;
    let why = match (over, ephemeral) {
        (false, false) => return None,
        (true, false) => format!("above the ceiling {}", gate.ceiling.tier),
        (false, true) => "tier 3 on an ephemeral cluster, which never runs tier 3 (Keycloak needs a persistent cluster)".to_owned(),
        (true, true) => format!(
            "above the ceiling {}, and an ephemeral cluster never runs tier 3 (Keycloak needs a persistent cluster)",
            gate.ceiling.tier
        ),
    };
    Some(why)
}

/// Judges the Applications of the namespace, and the platform's apps their roots list but have
/// not created yet, against the gate.
pub(crate) fn judge(
    apps: &[ApplicationDoc],
    gate: &Gate,
    settings: &TierGatingSettings,
) -> Outcome {
    let label = &settings.label;
    let exempt = |name: &str| settings.exempt.iter().any(|e| e == name);
    let tree = app_of_apps::read(
        apps.iter()
            .map(|a| (a.metadata.name.as_str(), &a.status.resources)),
        &settings.namespace,
    );
    let live: BTreeSet<&str> = apps.iter().map(|a| a.metadata.name.as_str()).collect();
    let mut unlabelled = Vec::new();
    let mut violations = Vec::new();
    let mut checked = 0;
    for app in apps {
        let name = &app.metadata.name;
        if exempt(name) || tree.is_root(name) {
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
    // The platform's apps a root will create: judged now, before the root creates them.
    let mut listed = 0;
    for child in &tree.children {
        if live.contains(child.name) || exempt(child.name) || tree.is_root(child.name) {
            continue;
        }
        let Some(app) = platform::app_named(child.name) else {
            continue;
        };
        listed += 1;
        if let Some(why) = above(app.tier, gate) {
            violations.push(format!(
                "Application {} (tier {}), listed by Application {} and not created yet, is {why}",
                child.name, app.tier, child.root
            ));
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
    let roots: Vec<&str> = tree.roots.iter().copied().collect();
    if violations.is_empty() && checked == 0 && listed == 0 {
        return Outcome::warn(
            "tier-gating-no-applications",
            format!("no ArgoCD Application in {} to check", settings.namespace),
        )
        .hint("Check checks.tier-gating.namespace: ArgoCD's Applications live in its own namespace unless apps-in-any-namespace is on.");
    }
    if violations.is_empty() {
        let mut message = format!(
            "{checked} Application(s) in {} carry a {label} label at or below the ceiling {}",
            settings.namespace, gate.ceiling.tier
        );
        if listed > 0 {
            message.push_str(&format!(
                "; so do {listed} platform app(s) not created yet, as Application(s) {} list them",
                roots.join(", ")
            ));
        }
        if !roots.is_empty() {
            message.push_str(&format!(
                " (app-of-apps root(s) {} exempt: a root carries no tier of its own)",
                roots.join(", ")
            ));
        }
        let mut pass = Outcome::pass("tier-gating-enforced", message)
            .evidence("ceiling", gate.ceiling.tier)
            .evidence("listedNotCreated", listed);
        if !roots.is_empty() {
            pass = pass.evidence("roots", roots.join(", "));
        }
        return pass;
    }
    let mut fail = Outcome::fail("tier-gating-violated", violations.join("; "))
        .hint(format!(
            "Label every Application with {label}: \"<tier>\" (one of 0, 1, 1.5, 2, 3) in the app-of-apps templates, and render (and so list) an app only when its tier is at or below the ceiling ({}): the root creates every child it lists. The app-of-apps' roots are exempt; list other exceptions in checks.tier-gating.exempt.",
            gate.ceiling.rule
        ))
        .evidence("ceiling", gate.ceiling.tier);
    if !roots.is_empty() {
        fail = fail.evidence("roots", roots.join(", "));
    }
    fail
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
            status: AppStatus::default(),
        }
    }

    /// An app-of-apps root listing `children` (name, wave) not created yet.
    fn root(name: &str, children: &[(&str, Option<i64>)]) -> ApplicationDoc {
        let resources: Vec<serde_json::Value> = children
            .iter()
            .map(|(child, wave)| {
                let mut r = serde_json::json!({"group": "argoproj.io", "version": "v1alpha1", "kind": "Application", "namespace": "argocd", "name": child, "status": "OutOfSync", "health": {"status": "Missing"}});
                if let Some(w) = wave {
                    r["syncWave"] = serde_json::json!(w);
                }
                r
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "argocd"},
            "status": {"resources": resources},
        }))
        .expect("reads")
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

    #[test]
    fn judges_the_platform_apps_a_root_lists_before_it_creates_them() {
        let ephemeral = gate(Mode::Ephemeral, Tier::OneAndHalf);
        // No exempt list: the root is exempt for listing Applications.
        let none = TierGatingSettings::default();
        struct Case {
            name: &'static str,
            apps: Vec<ApplicationDoc>,
            settings: TierGatingSettings,
            status: Status,
            code: &'static str,
            present: &'static [&'static str],
            absent: &'static [&'static str],
        }
        let cases = [
            Case {
                name: "the incident: a first sync's root lists keycloak on an ephemeral cluster",
                apps: vec![root(
                    "platform-root",
                    &[("kong", Some(30)), ("prometheus", Some(50)), ("keycloak", Some(200))],
                )],
                settings: none.clone(),
                status: Status::Fail,
                code: "tier-gating-violated",
                present: &[
                    "Application keycloak (tier 3), listed by Application platform-root and not created yet, is above the ceiling 1.5, and an ephemeral cluster never runs tier 3 (Keycloak needs a persistent cluster)",
                ],
                absent: &["kong", "prometheus", "without the"],
            },
            Case {
                name: "a tier-2 app listed above the ceiling",
                apps: vec![root("platform-root", &[("backstage", Some(100))])],
                settings: none.clone(),
                status: Status::Fail,
                code: "tier-gating-violated",
                present: &[
                    "Application backstage (tier 2), listed by Application platform-root and not created yet, is above the ceiling 1.5",
                ],
                absent: &["ephemeral"],
            },
            Case {
                name: "listed children at or below the ceiling pass; the root is exempt",
                apps: vec![
                    root("platform-root", &[("kong", Some(30)), ("prometheus", Some(50))]),
                    app("kong", Some("1")),
                ],
                settings: none.clone(),
                status: Status::Pass,
                code: "tier-gating-enforced",
                present: &[
                    "1 Application(s) in argocd carry a goldenpath.idp/tier label at or below the ceiling 1.5; so do 1 platform app(s) not created yet, as Application(s) platform-root list them (app-of-apps root(s) platform-root exempt: a root carries no tier of its own)",
                ],
                absent: &[],
            },
            Case {
                name: "a listed child that exists is judged by its own label",
                apps: vec![
                    root("platform-root", &[("keycloak", Some(200))]),
                    app("keycloak", Some("1")),
                ],
                settings: none.clone(),
                status: Status::Pass,
                code: "tier-gating-enforced",
                present: &["1 Application(s) in argocd"],
                absent: &["not created yet"],
            },
            Case {
                name: "an unknown listed child waits until it exists",
                apps: vec![root("platform-root", &[("my-extra", Some(300))])],
                settings: none.clone(),
                status: Status::Warn,
                code: "tier-gating-no-applications",
                present: &[],
                absent: &[],
            },
            Case {
                name: "an exempt listed child is skipped",
                apps: vec![root("platform-root", &[("keycloak", Some(200))])],
                settings: TierGatingSettings {
                    exempt: vec!["keycloak".into()],
                    ..TierGatingSettings::default()
                },
                status: Status::Warn,
                code: "tier-gating-no-applications",
                present: &[],
                absent: &[],
            },
            Case {
                name: "a child in another namespace is not this namespace's",
                apps: vec![serde_json::from_value(serde_json::json!({
                    "metadata": {"name": "team-root"},
                    "status": {"resources": [{"group": "argoproj.io", "kind": "Application", "namespace": "team", "name": "keycloak"}]},
                }))
                .expect("reads")],
                settings: none.clone(),
                status: Status::Warn,
                code: "tier-gating-no-applications",
                present: &[],
                absent: &[],
            },
        ];
        for case in cases {
            let o = judge(&case.apps, &ephemeral, &case.settings);
            assert_eq!(
                (o.status, o.code.as_str()),
                (case.status, case.code),
                "{}: {}",
                case.name,
                o.message
            );
            for needle in case.present {
                assert!(
                    o.message.contains(needle),
                    "{}: {needle:?} in {}",
                    case.name,
                    o.message
                );
            }
            for needle in case.absent {
                assert!(
                    !o.message.contains(needle),
                    "{}: {needle:?} not in {}",
                    case.name,
                    o.message
                );
            }
            if o.status == Status::Fail {
                assert!(
                    o.hint
                        .as_deref()
                        .is_some_and(|h| h.contains("the root creates every child it lists"))
                );
                assert_eq!(o.evidence["roots"], "platform-root");
            }
        }

        // On a persistent cluster with ceiling 3, keycloak may be listed.
        let o = judge(
            &[root("platform-root", &[("keycloak", Some(200))])],
            &gate(Mode::Persistent, Tier::Three),
            &none,
        );
        assert_eq!(o.status, Status::Pass, "{}", o.message);
        assert_eq!(o.evidence["listedNotCreated"], "1");
    }
}
