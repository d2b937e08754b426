//! `lower-tiers-healthy`: a tier's gate opens only when every Argo CD Application of a lower
//! tier is `Synced` and `Healthy`, which is what the seed platform waited for with
//! `kubectl wait` before syncing the next tier. An app-of-apps creates its children wave by
//! wave: a lower tier's platform app a root lists (`status.resources`, read by
//! [`super::app_of_apps`]) but has not created yet fails too, naming the root and the wave it
//! lists the child at. `exempt` names Applications to skip, existing or listed.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::app_of_apps::{self, Listed};
use super::fetch::{self, APPLICATIONS};
use crate::check::{Attempt, Built, Check, Context, Definition, Family, Site};
use crate::outcome::{Outcome, name_list};
use crate::platform::{self, NeededBy, Provider, Scope};
use crate::reads::Reads;
use crate::tier::Tier;

/// How many of an Application's failing resources a message names; the rest are counted.
const MAX_RESOURCES: usize = 3;

/// How many passing Applications a message names.
const MAX_NAMES: usize = 10;

/// `checks.lower-tiers-healthy`: where Argo CD keeps its Applications and which label says
/// their tier (the same label `tier-gating` enforces).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct LowerTiersSettings {
    /// The namespace of Argo CD's Applications; default `argocd`.
    pub namespace: String,
    /// The label carrying an Application's tier; default `goldenpath.idp/tier`.
    pub label: String,
    /// Applications not waited for, existing or listed by a root; default none.
    pub exempt: Vec<String>,
}

impl Default for LowerTiersSettings {
    fn default() -> Self {
        LowerTiersSettings {
            namespace: "argocd".into(),
            label: "goldenpath.idp/tier".into(),
            exempt: Vec::new(),
        }
    }
}

/// The parts of an `argoproj.io/v1alpha1` Application this check reads; the spec and the rest
/// of the status are skipped. An Application Argo CD has not reconciled yet has no status.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ApplicationDoc {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    status: Option<AppStatus>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct Metadata {
    name: String,
    labels: BTreeMap<String, String>,
}

/// Argo CD's `ApplicationStatus`: every field is `omitempty` there.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct AppStatus {
    sync: SyncStatus,
    health: HealthStatus,
    /// The current or last sync operation; absent before the first sync.
    operation_state: Option<OperationState>,
    /// Errors (type ending in `Error`, e.g. `ComparisonError`, `SyncError`) and warnings
    /// (ending in `Warning`, e.g. `OrphanedResourceWarning`).
    conditions: Vec<AppCondition>,
    /// The managed resources. Since Argo CD 3.0 their health may be kept in the resource tree
    /// instead (`resourceHealthSource: appTree`), so a resource without health is no finding.
    resources: Vec<ResourceStatus>,
}

/// `status.sync`: `Synced`, `OutOfSync` or `Unknown`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct SyncStatus {
    status: String,
}

/// `status.health` and a resource's `health`: `Healthy`, `Progressing`, `Degraded`,
/// `Suspended`, `Missing` or `Unknown`, with the health check's message.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct HealthStatus {
    status: String,
    message: String,
}

/// `status.operationState`: phase `Running`, `Terminating`, `Failed`, `Error` or `Succeeded`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct OperationState {
    phase: String,
    message: String,
}

/// `status.conditions[]`: unlike Kubernetes conditions, these have no `status`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct AppCondition {
    #[serde(rename = "type")]
    type_: String,
    message: String,
}

/// `status.resources[]`: one managed object, its sync status and (when Argo CD keeps it
/// inline) its health.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct ResourceStatus {
    /// Its group, kind, namespace, name and sync wave, as the app-of-apps reads them.
    #[serde(flatten)]
    id: Listed,
    status: String,
    health: Option<HealthStatus>,
}

const SYNCED: &str = "Synced";
const HEALTHY: &str = "Healthy";
const OUT_OF_SYNC: &str = "OutOfSync";

impl AppStatus {
    /// Whether Argo CD has written nothing it found yet.
    fn is_unreconciled(&self) -> bool {
        self.sync.status.is_empty()
            && self.health.status.is_empty()
            && self.conditions.is_empty()
            && self.operation_state.is_none()
    }
}

impl ResourceStatus {
    /// `apps/Deployment ns/name`, `Service ns/name`, `ClusterRole name`.
    fn describe(&self) -> String {
        let id = &self.id;
        let kind = if id.group.is_empty() {
            id.kind.clone()
        } else {
            format!("{}/{}", id.group, id.kind)
        };
        if id.namespace.is_empty() {
            format!("{kind} {}", id.name)
        } else {
            format!("{kind} {}/{}", id.namespace, id.name)
        }
    }

    /// What is wrong with it (`Degraded ("...")`, `Missing, OutOfSync`), or `None`.
    fn problem(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(h) = self.health.as_ref().filter(|h| h.status != HEALTHY) {
            parts.push(format!(
                "{}{}",
                or_unreported(&h.status),
                quoted(&h.message)
            ));
        }
        if self.status == OUT_OF_SYNC {
            parts.push(OUT_OF_SYNC.to_owned());
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// ` ("message")`, escaped, or nothing for an empty message.
fn quoted(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(" ({message:?})")
    }
}

fn or_unreported(status: &str) -> &str {
    if status.is_empty() {
        "not reported"
    } else {
        status
    }
}

/// What keeps an Application from being Synced and Healthy, in Argo CD's own words, or `None`
/// when it is both.
fn diagnose(status: Option<&AppStatus>) -> Option<String> {
    let Some(status) = status.filter(|s| !s.is_unreconciled()) else {
        return Some("not reconciled by ArgoCD yet".to_owned());
    };
    let healthy = status.health.status == HEALTHY;
    let synced = status.sync.status == SYNCED;
    if healthy && synced {
        return None;
    }
    let mut head = Vec::new();
    if !healthy {
        head.push(format!(
            "health {}{}",
            or_unreported(&status.health.status),
            quoted(&status.health.message)
        ));
    }
    if !synced {
        head.push(format!("sync {}", or_unreported(&status.sync.status)));
    }
    let mut parts = vec![head.join(", ")];
    if let Some(op) = &status.operation_state {
        let what = match op.phase.as_str() {
            "Succeeded" | "" => None,
            "Failed" | "Error" => Some("last sync"),
            _ => Some("sync"),
        };
        if let Some(what) = what {
            let message = if op.message.is_empty() {
                String::new()
            } else {
                format!(": {:?}", op.message)
            };
            parts.push(format!("{what} {}{message}", op.phase));
        }
    }
    parts.extend(
        status
            .conditions
            .iter()
            .filter(|c| c.type_.ends_with("Error"))
            .map(|c| format!("{}: {:?}", c.type_, c.message)),
    );
    let failing: Vec<String> = status
        .resources
        .iter()
        .filter_map(|r| {
            r.problem()
                .map(|p| format!("resource {}: {p}", r.describe()))
        })
        .collect();
    parts.extend(failing.iter().take(MAX_RESOURCES).cloned());
    if failing.len() > MAX_RESOURCES {
        parts.push(format!(
            "and {} more resource(s) not Healthy or Synced",
            failing.len() - MAX_RESOURCES
        ));
    }
    Some(parts.join("; "))
}

/// A lower tier's platform app a root lists but has not created yet.
struct Missing<'a> {
    tier: Tier,
    name: &'a str,
    root: &'a str,
    wave: Option<i64>,
}

/// The platform's apps of tiers below `gate` that an app-of-apps lists among its resources but
/// that do not exist yet: on a first sync the root creates its children wave by wave, so a
/// lower tier's app that is still missing when a gate runs means that tier has not been
/// synced. Lowest tier first, then by name.
fn missing_children<'a>(
    apps: &'a [ApplicationDoc],
    gate: Tier,
    settings: &LowerTiersSettings,
) -> Vec<Missing<'a>> {
    let existing: BTreeSet<&str> = apps.iter().map(|a| a.metadata.name.as_str()).collect();
    let tree = app_of_apps::read(
        apps.iter().map(|a| {
            let listed = a
                .status
                .iter()
                .flat_map(|s| s.resources.iter().map(|r| &r.id));
            (a.metadata.name.as_str(), listed)
        }),
        &settings.namespace,
    );
    let mut missing: Vec<Missing<'a>> = tree
        .children
        .iter()
        .filter(|c| !existing.contains(c.name) && !settings.exempt.iter().any(|e| e == c.name))
        .filter_map(|c| {
            let app = platform::app_named(c.name).filter(|a| a.tier < gate)?;
            Some(Missing {
                tier: app.tier,
                name: c.name,
                root: c.root,
                // From ArgoCD 2.6 an absent syncWave is wave 0; before, no wave is known.
                wave: c.wave.or(tree.lists_waves(c.root).then_some(0)),
            })
        })
        .collect();
    missing.sort_by_key(|m| (m.tier, m.name));
    missing
}

/// Judges the Applications of the namespace: those labelled with a tier below `gate` must be
/// Synced and Healthy, and those of the platform's apps of lower tiers that an app-of-apps
/// lists must exist. Unlabelled and mislabelled ones are left to `tier-gating`.
pub(crate) fn judge(apps: &[ApplicationDoc], gate: Tier, settings: &LowerTiersSettings) -> Outcome {
    let label = &settings.label;
    if gate == Tier::Zero {
        return Outcome::pass(
            "lower-tiers-healthy",
            "tier 0 is the lowest tier: there is no lower tier to wait for",
        )
        .evidence("count", 0);
    }
    let mut lower: Vec<(Tier, &ApplicationDoc)> = Vec::new();
    let mut higher = 0;
    let mut unlabelled = 0;
    for app in apps {
        if settings.exempt.contains(&app.metadata.name) {
            continue;
        }
        match app.metadata.labels.get(label).map(|v| v.parse::<Tier>()) {
            Some(Ok(tier)) if tier < gate => lower.push((tier, app)),
            Some(Ok(_)) => higher += 1,
            None | Some(Err(_)) => unlabelled += 1,
        }
    }
    let missing = missing_children(apps, gate, settings);
    if lower.is_empty() && missing.is_empty() {
        let mut seen = Vec::new();
        if higher > 0 {
            seen.push(format!("{higher} of tier {gate} or above"));
        }
        if unlabelled > 0 {
            seen.push(format!("{unlabelled} without a valid {label} label"));
        }
        let seen = if seen.is_empty() {
            "it has no Application at all".to_owned()
        } else {
            format!("it has {}", seen.join(" and "))
        };
        return Outcome::warn(
            "lower-tiers-none",
            format!(
                "no Application in {} is labelled {label} with a tier below {gate}, so none was checked ({seen})",
                settings.namespace
            ),
        )
        .hint(format!(
            "Label every Application with {label}: \"<tier>\" (one of 0, 1, 1.5, 2, 3) in the app-of-apps templates, or point checks.lower-tiers-healthy.namespace and .label at where ArgoCD keeps them: without the label the tier-{gate} gate cannot see whether the tiers below it are ready."
        ))
        .evidence("count", 0);
    }
    lower.sort_by(|(ta, a), (tb, b)| (ta, &a.metadata.name).cmp(&(tb, &b.metadata.name)));
    let not_created = missing.iter().map(|m| {
        let at = m.wave.map_or_else(String::new, |w| format!(" at wave {w}"));
        (
            m.name,
            format!(
                "Application {} (tier {}) does not exist yet: Application {} lists it{at} (not created yet)",
                m.name, m.tier, m.root
            ),
        )
    });
    let bad: Vec<(&str, String)> = not_created
        .chain(lower.iter().filter_map(|(tier, app)| {
            let name = app.metadata.name.as_str();
            diagnose(app.status.as_ref())
                .map(|why| (name, format!("Application {name} (tier {tier}): {why}")))
        }))
        .collect();
    if bad.is_empty() {
        let names: Vec<&str> = lower
            .iter()
            .map(|(_, a)| a.metadata.name.as_str())
            .collect();
        return Outcome::pass(
            "lower-tiers-healthy",
            format!(
                "{} Application(s) of tiers below {gate} are Synced and Healthy: {}",
                names.len(),
                name_list(&names, MAX_NAMES)
            ),
        )
        .evidence("count", names.len());
    }
    let first = bad[0].0;
    let namespace = &settings.namespace;
    Outcome::fail(
        "lower-tiers-unhealthy",
        bad.iter()
            .map(|(_, part)| part.as_str())
            .collect::<Vec<_>>()
            .join("; "),
    )
    .hint(format!(
        "Look at the Application in ArgoCD (argocd app get {first}, or kubectl -n {namespace} describe application {first}) and fix the resource it names, then sync it again; if it is still progressing, run with --wait to give it time. The tier-{gate} gate opens only when every lower tier is Synced and Healthy."
    ))
    .evidence("count", lower.len() + missing.len())
    .evidence("unhealthy", bad.len())
}

/// The `lower-tiers-healthy` check.
#[derive(Debug)]
pub struct LowerTiersHealthy {
    settings: LowerTiersSettings,
    gate: Tier,
}

impl LowerTiersHealthy {
    /// A check that the Applications of every tier below `gate` are Synced and Healthy.
    #[must_use]
    pub fn new(settings: LowerTiersSettings, gate: Tier) -> Self {
        LowerTiersHealthy { settings, gate }
    }
}

impl Definition for LowerTiersHealthy {
    const ID: &'static str = "lower-tiers-healthy";
    const FAMILY: Family = Family::Kubernetes;
    type Settings = LowerTiersSettings;

    /// Every gate above tier 1: the tiers below must be Synced and Healthy first.
    fn needed_by(_: &LowerTiersSettings) -> NeededBy {
        NeededBy::tier(Tier::OneAndHalf)
    }

    fn provided_by(_: &LowerTiersSettings, _: &Site<'_>) -> Provider {
        Provider::Foundation("ArgoCD, syncing the lower tiers' Applications")
    }

    fn build(settings: &LowerTiersSettings, site: &Site<'_>) -> Result<Built, String> {
        let Scope::Gate(gate) = site.scope else {
            return Err("checked by the tier gates".to_owned());
        };
        Ok(Built::new(
            LowerTiersHealthy::new(settings.clone(), gate),
            format!(
                "ArgoCD Applications of tiers below {gate} in {} are Synced and Healthy",
                settings.namespace
            ),
            Self::provided_by(settings, site),
            &[super::KubeApi::ID],
        ))
    }
}

#[async_trait::async_trait]
impl Check for LowerTiersHealthy {
    fn reads(&self) -> Reads {
        Reads::kube(vec![APPLICATIONS.within(&self.settings.namespace)])
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        fetch::judge_applications(
            ctx,
            &self.settings.namespace,
            "lower-tiers-api-missing",
            "Install ArgoCD with its CRDs (argo-cd chart value crds.install=true): the lower tiers are ArgoCD Applications.",
            |apps: &[ApplicationDoc]| judge(apps, self.gate, &self.settings),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    fn apps(yaml: &str) -> Vec<ApplicationDoc> {
        serde_saphyr::from_str(yaml).expect("fixture parses")
    }

    fn run(yaml: &str, gate: Tier) -> Outcome {
        judge(&apps(yaml), gate, &LowerTiersSettings::default())
    }

    const HEALTHY_APPS: &str = r"
- metadata: {name: kong, labels: {goldenpath.idp/tier: '1'}}
  status: {sync: {status: Synced}, health: {status: Healthy}}
- metadata: {name: external-secrets, labels: {goldenpath.idp/tier: '1'}}
  status: {sync: {status: Synced}, health: {status: Healthy}}
- metadata: {name: prometheus, labels: {goldenpath.idp/tier: '1.5'}}
  status: {sync: {status: Synced}, health: {status: Healthy}}
";

    /// An app-of-apps whose tier-1.5 and tier-2 children are not created yet (Argo CD lists a
    /// resource it has not created as OutOfSync, health Missing).
    const ROOT_LISTS_MISSING: &str = r"
- metadata: {name: platform-root}
  status:
    sync: {status: OutOfSync}
    health: {status: Missing}
    resources:
    - {group: argoproj.io, kind: Application, namespace: argocd, name: kong, status: Synced, health: {status: Healthy}, syncWave: 30}
    - {group: argoproj.io, kind: Application, namespace: argocd, name: prometheus, status: OutOfSync, health: {status: Missing}, syncWave: 50}
    - {group: argoproj.io, kind: Application, namespace: argocd, name: backstage, status: OutOfSync, health: {status: Missing}, syncWave: 100}
- metadata: {name: kong, labels: {goldenpath.idp/tier: '1'}}
  status: {sync: {status: Synced}, health: {status: Healthy}}
";

    const DEGRADED: &str = r#"
- metadata: {name: external-secrets, labels: {goldenpath.idp/tier: '1'}}
  status:
    sync: {status: OutOfSync}
    health: {status: Degraded, message: 'one resource is degraded'}
    operationState: {phase: Failed, message: 'one or more objects failed to apply'}
    conditions:
    - {type: SyncError, message: 'Failed sync attempt: one or more objects failed to apply'}
    - {type: OrphanedResourceWarning, message: 'Application has 2 orphaned resources'}
    resources:
    - {group: '', kind: Service, namespace: external-secrets, name: webhook, status: Synced, health: {status: Healthy}}
    - {kind: ConfigMap, namespace: external-secrets, name: settings, status: Synced}
    - group: apps
      kind: Deployment
      namespace: external-secrets
      name: external-secrets
      status: Synced
      health: {status: Degraded, message: 'Deployment "external-secrets" exceeded its progress deadline'}
"#;

    #[test]
    fn judges_lower_tier_applications() {
        struct Case {
            name: &'static str,
            yaml: &'static str,
            gate: Tier,
            status: Status,
            code: &'static str,
            present: &'static [&'static str],
            absent: &'static [&'static str],
        }
        let cases = [
            Case {
                name: "a lower tier's app the root lists but has not created",
                yaml: ROOT_LISTS_MISSING,
                gate: Tier::Two,
                status: Status::Fail,
                code: "lower-tiers-unhealthy",
                present: &[
                    "Application prometheus (tier 1.5) does not exist yet: Application platform-root lists it at wave 50 (not created yet)",
                ],
                absent: &["kong", "backstage"],
            },
            Case {
                name: "listed children: by group and namespace, once, wave 0 when absent, none before ArgoCD 2.6",
                yaml: r"
- metadata: {name: a-root}
  status:
    resources:
    - {group: argoproj.io, kind: Application, namespace: argocd, name: loki, status: OutOfSync, syncWave: 101}
    - {group: argoproj.io, kind: Application, name: external-dns, status: OutOfSync}
    - {group: example.com, kind: Application, namespace: argocd, name: kong, status: OutOfSync, syncWave: 30}
    - {group: argoproj.io, kind: Application, namespace: team, name: cert-manager, status: OutOfSync, syncWave: 15}
- metadata: {name: b-root}
  status:
    resources:
    - {group: argoproj.io, kind: Application, namespace: argocd, name: loki, status: OutOfSync, syncWave: 45}
- metadata: {name: old-root}
  status:
    resources:
    - {group: argoproj.io, kind: Application, namespace: argocd, name: prometheus, status: OutOfSync}
",
                gate: Tier::Three,
                status: Status::Fail,
                code: "lower-tiers-unhealthy",
                present: &[
                    "Application external-dns (tier 1) does not exist yet: Application a-root lists it at wave 0 (not created yet); Application prometheus (tier 1.5) does not exist yet: Application old-root lists it (not created yet); Application loki (tier 2) does not exist yet: Application a-root lists it at wave 101 (not created yet)",
                ],
                absent: &["kong", "cert-manager", "b-root"],
            },
            Case {
                name: "the root lists only the gate's own and later tiers' apps as missing",
                yaml: ROOT_LISTS_MISSING,
                gate: Tier::OneAndHalf,
                status: Status::Pass,
                code: "lower-tiers-healthy",
                present: &["1 Application(s) of tiers below 1.5 are Synced and Healthy: kong"],
                absent: &["prometheus"],
            },
            Case {
                name: "all healthy",
                yaml: HEALTHY_APPS,
                gate: Tier::Two,
                status: Status::Pass,
                code: "lower-tiers-healthy",
                present: &[
                    "3 Application(s) of tiers below 2 are Synced and Healthy: external-secrets, kong, prometheus",
                ],
                absent: &[],
            },
            Case {
                name: "degraded with a failing resource",
                yaml: DEGRADED,
                gate: Tier::OneAndHalf,
                status: Status::Fail,
                code: "lower-tiers-unhealthy",
                present: &[
                    "Application external-secrets (tier 1): health Degraded (\"one resource is degraded\"), sync OutOfSync",
                    "; last sync Failed: \"one or more objects failed to apply\"",
                    "; SyncError: \"Failed sync attempt: one or more objects failed to apply\"",
                    "; resource apps/Deployment external-secrets/external-secrets: Degraded (\"Deployment \\\"external-secrets\\\" exceeded its progress deadline\")",
                ],
                absent: &["OrphanedResourceWarning", "webhook", "settings"],
            },
            Case {
                name: "out of sync and progressing",
                yaml: r"
- metadata: {name: kong, labels: {goldenpath.idp/tier: '1'}}
  status:
    sync: {status: OutOfSync}
    health: {status: Progressing}
    operationState: {phase: Running, message: 'waiting for healthy state of apps/Deployment/kong'}
    resources:
    - {group: apps, kind: Deployment, namespace: kong, name: kong, status: OutOfSync, health: {status: Progressing}}
    - {group: networking.k8s.io, kind: IngressClass, name: kong, status: OutOfSync}
",
                gate: Tier::OneAndHalf,
                status: Status::Fail,
                code: "lower-tiers-unhealthy",
                present: &[
                    "Application kong (tier 1): health Progressing, sync OutOfSync; sync Running: \"waiting for healthy state of apps/Deployment/kong\"",
                    "resource apps/Deployment kong/kong: Progressing, OutOfSync",
                    "resource networking.k8s.io/IngressClass kong: OutOfSync",
                ],
                absent: &["last sync"],
            },
            Case {
                name: "healthy but out of sync",
                yaml: r"
- metadata: {name: kong, labels: {goldenpath.idp/tier: '1'}}
  status:
    sync: {status: OutOfSync}
    health: {status: Healthy}
    operationState: {phase: Succeeded, message: 'successfully synced (all tasks run)'}
",
                gate: Tier::Two,
                status: Status::Fail,
                code: "lower-tiers-unhealthy",
                present: &["Application kong (tier 1): sync OutOfSync"],
                absent: &["health", "successfully synced"],
            },
            Case {
                name: "comparison error",
                yaml: r"
- metadata: {name: external-dns, labels: {goldenpath.idp/tier: '1'}}
  status:
    sync: {status: Unknown}
    health: {status: Healthy}
    conditions:
    - {type: ComparisonError, message: 'Failed to load target state: repository not found'}
",
                gate: Tier::Two,
                status: Status::Fail,
                code: "lower-tiers-unhealthy",
                present: &[
                    "Application external-dns (tier 1): sync Unknown; ComparisonError: \"Failed to load target state: repository not found\"",
                ],
                absent: &[],
            },
            Case {
                name: "no status",
                yaml: r"
- metadata: {name: cluster-autoscaler, labels: {goldenpath.idp/tier: '1'}}
- metadata: {name: kong, labels: {goldenpath.idp/tier: '1'}}
  status: {}
",
                gate: Tier::Two,
                status: Status::Fail,
                code: "lower-tiers-unhealthy",
                present: &[
                    "Application cluster-autoscaler (tier 1): not reconciled by ArgoCD yet",
                    "Application kong (tier 1): not reconciled by ArgoCD yet",
                ],
                absent: &[],
            },
            Case {
                name: "a first sync under way before any health is reported",
                yaml: r"
- metadata: {name: kong, labels: {goldenpath.idp/tier: '1'}}
  status:
    operationState: {phase: Running, message: 'one or more tasks are running'}
",
                gate: Tier::Two,
                status: Status::Fail,
                code: "lower-tiers-unhealthy",
                present: &[
                    "Application kong (tier 1): health not reported, sync not reported; sync Running: \"one or more tasks are running\"",
                ],
                absent: &["not reconciled"],
            },
            Case {
                name: "the gate's own tier and above are ignored",
                yaml: r"
- metadata: {name: kong, labels: {goldenpath.idp/tier: '1'}}
  status: {sync: {status: Synced}, health: {status: Healthy}}
- metadata: {name: prometheus, labels: {goldenpath.idp/tier: '1.5'}}
  status: {sync: {status: OutOfSync}, health: {status: Missing}}
- metadata: {name: backstage, labels: {goldenpath.idp/tier: '2'}}
",
                gate: Tier::OneAndHalf,
                status: Status::Pass,
                code: "lower-tiers-healthy",
                present: &["1 Application(s) of tiers below 1.5 are Synced and Healthy: kong"],
                absent: &["prometheus", "backstage"],
            },
            Case {
                name: "unlabelled and invalid labels are ignored",
                yaml: r"
- metadata: {name: kong, labels: {goldenpath.idp/tier: '1'}}
  status: {sync: {status: Synced}, health: {status: Healthy}}
- metadata: {name: platform-root}
  status: {sync: {status: OutOfSync}, health: {status: Degraded}}
- metadata: {name: grafana, labels: {goldenpath.idp/tier: '1.0'}}
- metadata: {name: loki, labels: {tier: '1'}}
",
                gate: Tier::Two,
                status: Status::Pass,
                code: "lower-tiers-healthy",
                present: &["1 Application(s) of tiers below 2 are Synced and Healthy: kong"],
                absent: &["platform-root", "grafana", "loki"],
            },
            Case {
                name: "none below the gate",
                yaml: r"
- metadata: {name: backstage, labels: {goldenpath.idp/tier: '2'}}
- metadata: {name: platform-root}
",
                gate: Tier::Two,
                status: Status::Warn,
                code: "lower-tiers-none",
                present: &[
                    "no Application in argocd is labelled goldenpath.idp/tier with a tier below 2",
                    "it has 1 of tier 2 or above and 1 without a valid goldenpath.idp/tier label",
                ],
                absent: &[],
            },
            Case {
                name: "no Applications at all",
                yaml: "[]",
                gate: Tier::One,
                status: Status::Warn,
                code: "lower-tiers-none",
                present: &["it has no Application at all"],
                absent: &[],
            },
            Case {
                name: "tier 0 has nothing below it",
                yaml: r"
- metadata: {name: kong, labels: {goldenpath.idp/tier: '1'}}
",
                gate: Tier::Zero,
                status: Status::Pass,
                code: "lower-tiers-healthy",
                present: &["no lower tier"],
                absent: &["kong"],
            },
        ];
        for case in cases {
            let o = run(case.yaml, case.gate);
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
        }
    }

    #[test]
    fn names_every_bad_application_lowest_tier_first_with_a_hint() {
        let yaml = r"
- metadata: {name: prometheus, labels: {goldenpath.idp/tier: '1.5'}}
  status: {sync: {status: Synced}, health: {status: Degraded}}
- metadata: {name: kong, labels: {goldenpath.idp/tier: '1'}}
  status: {sync: {status: Synced}, health: {status: Healthy}}
- metadata: {name: external-secrets, labels: {goldenpath.idp/tier: '1'}}
  status: {sync: {status: OutOfSync}, health: {status: Healthy}}
- metadata: {name: alertmanager, labels: {goldenpath.idp/tier: '1.5'}}
";
        let o = run(yaml, Tier::Two);
        assert_eq!(o.code, "lower-tiers-unhealthy");
        let order: Vec<usize> = ["external-secrets", "alertmanager", "prometheus"]
            .iter()
            .map(|n| {
                o.message
                    .find(&format!("Application {n} "))
                    .unwrap_or_else(|| panic!("{n} in {}", o.message))
            })
            .collect();
        assert!(order.is_sorted(), "tier, then name: {}", o.message);
        assert!(!o.message.contains("kong"), "{}", o.message);
        let hint = o.hint.expect("hint");
        assert!(
            hint.contains("argocd app get external-secrets") && hint.contains("--wait"),
            "{hint}"
        );
        assert_eq!(o.evidence.get("count").map(String::as_str), Some("4"));
        assert_eq!(o.evidence.get("unhealthy").map(String::as_str), Some("3"));
    }

    #[test]
    fn names_at_most_three_failing_resources() {
        let resources: String = (1..=5)
            .map(|i| {
                format!(
                    "    - {{group: apps, kind: Deployment, namespace: monitoring, name: d{i}, status: Synced, health: {{status: Degraded}}}}\n"
                )
            })
            .collect();
        let yaml = format!(
            "- metadata: {{name: prometheus, labels: {{goldenpath.idp/tier: '1.5'}}}}\n  status:\n    sync: {{status: Synced}}\n    health: {{status: Degraded}}\n    resources:\n{resources}"
        );
        let o = run(&yaml, Tier::Two);
        assert_eq!(o.code, "lower-tiers-unhealthy");
        for shown in ["d1", "d2", "d3"] {
            assert!(
                o.message
                    .contains(&format!("apps/Deployment monitoring/{shown}: Degraded")),
                "{shown} in {}",
                o.message
            );
        }
        assert!(!o.message.contains("monitoring/d4"), "{}", o.message);
        assert!(
            o.message
                .ends_with("; and 2 more resource(s) not Healthy or Synced"),
            "{}",
            o.message
        );
    }

    #[test]
    fn parses_an_application_as_the_api_server_sends_it() {
        let json = serde_json::json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {
                "name": "external-dns",
                "namespace": "argocd",
                "labels": {"goldenpath.idp/tier": "1"},
                "annotations": {"argocd.argoproj.io/sync-wave": "20"}
            },
            "spec": {
                "project": "default",
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "external-dns"},
                "source": {"repoURL": "https://kubernetes-sigs.github.io/external-dns", "chart": "external-dns", "targetRevision": "1.15.0"}
            },
            "status": {
                "sync": {"status": "Synced", "revision": "1.15.0", "comparedTo": {"destination": {}}},
                "health": {"status": "Degraded", "lastTransitionTime": "2026-01-23T10:00:00Z"},
                "history": [{"id": 0, "revision": "1.15.0", "deployedAt": "2026-01-23T09:59:00Z"}],
                "reconciledAt": "2026-01-23T10:00:00Z",
                "resourceHealthSource": "appTree",
                "operationState": {
                    "operation": {"sync": {"revision": "1.15.0"}},
                    "phase": "Succeeded",
                    "message": "successfully synced (all tasks run)",
                    "startedAt": "2026-01-23T09:58:00Z"
                },
                "resources": [
                    {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "external-dns", "name": "external-dns", "status": "Synced", "syncWave": 0}
                ],
                "summary": {"images": ["registry.k8s.io/external-dns/external-dns:v0.15.0"]}
            }
        });
        let app: ApplicationDoc = serde_json::from_value(json).expect("parses");
        let o = judge(&[app], Tier::Two, &LowerTiersSettings::default());
        assert_eq!(
            o.message, "Application external-dns (tier 1): health Degraded",
            "a resource without inline health is no finding"
        );
    }

    #[test]
    fn settings_default_to_the_platform_conventions_and_reject_unknown_keys() {
        let s: LowerTiersSettings = serde_saphyr::from_str("namespace: gitops").expect("parses");
        assert_eq!(
            s,
            LowerTiersSettings {
                namespace: "gitops".into(),
                label: "goldenpath.idp/tier".into(),
                exempt: Vec::new(),
            }
        );
        assert!(serde_saphyr::from_str::<LowerTiersSettings>("labels: x").is_err());
        let o = judge(
            &apps(HEALTHY_APPS),
            Tier::Two,
            &LowerTiersSettings {
                namespace: "argocd".into(),
                label: "tier".into(),
                exempt: Vec::new(),
            },
        );
        assert_eq!(o.code, "lower-tiers-none", "{}", o.message);

        // Exempt Applications are not waited for, whether they exist or a root lists them.
        let s: LowerTiersSettings =
            serde_saphyr::from_str("exempt: [prometheus, kong]").expect("parses");
        let o = judge(&apps(ROOT_LISTS_MISSING), Tier::Two, &s);
        assert_eq!(o.code, "lower-tiers-none", "{}", o.message);
        let s: LowerTiersSettings = serde_saphyr::from_str("exempt: [prometheus]").expect("parses");
        let o = judge(&apps(ROOT_LISTS_MISSING), Tier::Two, &s);
        assert_eq!(
            (o.status, o.message.as_str()),
            (
                Status::Pass,
                "1 Application(s) of tiers below 2 are Synced and Healthy: kong"
            )
        );
    }
}
