//! `sync-waves`: every tier-labelled ArgoCD Application syncs inside its tier's band of sync
//! waves, after its tier's gate. An Application of a higher tier at a lower wave syncs before
//! its gate has checked what it needs: ArgoCD orders the app-of-apps by wave alone.
//!
//! A tier's gate is the PreSync hook at the wave before the tier's first app
//! ([`platform::first_wave`] minus one), as `hooks/` place them: 9 for tier 1, 49 for 1.5, 99
//! for 2, 199 for 3. ArgoCD reads a missing or non-integer `argocd.argoproj.io/sync-wave` as
//! wave 0, before every gate. Applications without the tier label, or with a label that is not
//! a tier, are `tier-gating`'s business and skipped here, as are the ones `exempt`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::TierGatingSettings;
use super::fetch::{self, APPLICATIONS};
use crate::access::Reads;
use crate::check::{Attempt, Check, Context};
use crate::check::{Built, Definition, Family, Site};
use crate::outcome::{Outcome, name_list};
use crate::platform::{self, NeededBy, Provider};
use crate::tier::Tier;

/// The annotation ArgoCD orders a sync by.
pub const SYNC_WAVE_ANNOTATION: &str = "argocd.argoproj.io/sync-wave";

/// The waves a tier's Applications may use, both ends included: `[low, high]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Band(pub i32, pub i32);

impl Band {
    fn contains(self, wave: i32) -> bool {
        self.0 <= wave && wave <= self.1
    }
}

impl std::fmt::Display for Band {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}–{}", self.0, self.1)
    }
}

/// `checks.sync-waves`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct SyncWavesSettings {
    /// The namespace of ArgoCD's Applications (as `checks.tier-gating.namespace`).
    pub namespace: String,
    /// The label carrying an Application's tier (as `checks.tier-gating.label`).
    pub label: String,
    /// Each tier's band of waves, e.g. `"2": [100, 102]`; a tier given here replaces its
    /// default band, the others keep theirs.
    pub bands: BTreeMap<Tier, Band>,
    /// Applications exempt from the rule, such as the app-of-apps root.
    pub exempt: Vec<String>,
}

impl Default for SyncWavesSettings {
    /// The bands of the platform's app-of-apps (brief §1).
    fn default() -> Self {
        let gating = TierGatingSettings::default();
        SyncWavesSettings {
            namespace: gating.namespace,
            label: gating.label,
            bands: BTreeMap::from([
                (Tier::One, Band(10, 40)),
                (Tier::OneAndHalf, Band(50, 52)),
                (Tier::Two, Band(100, 102)),
                (Tier::Three, Band(200, 201)),
            ]),
            exempt: Vec::new(),
        }
    }
}

impl SyncWavesSettings {
    /// The bands in force: the defaults, with the tiers the settings give replaced.
    fn effective_bands(&self) -> BTreeMap<Tier, Band> {
        let mut bands = SyncWavesSettings::default().bands;
        bands.extend(self.bands.iter().map(|(t, b)| (*t, *b)));
        bands
    }
}

/// The wave of a tier's gate: the wave before the tier's first app, where `hooks/` place it.
/// `None` for a tier without apps (tier 0, whose gate runs before every app).
#[must_use]
pub fn gate_wave(tier: Tier) -> Option<i32> {
    platform::first_wave(tier).map(|w| w - 1)
}

/// An Application's name, labels and annotations.
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
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    annotations: BTreeMap<String, String>,
}

/// The wave to suggest for an Application of `tier` named `name`: the platform's own wave for
/// it when that fits, else the band's first wave after the gate; `None` when the band leaves
/// no wave after the gate.
fn suggested(name: &str, tier: Tier, band: Band, gate: Option<i32>) -> Option<i32> {
    let fits = |w: i32| band.contains(w) && gate.is_none_or(|g| w > g);
    platform::app_named(name)
        .filter(|a| a.tier == tier)
        .and_then(|a| a.wave)
        .filter(|w| fits(*w))
        .or_else(|| {
            let first = gate.map_or(band.0, |g| band.0.max(g + 1));
            fits(first).then_some(first)
        })
}

/// Judges the Applications of the namespace against the bands in force.
pub(crate) fn judge(
    apps: &[ApplicationDoc],
    bands: &BTreeMap<Tier, Band>,
    settings: &SyncWavesSettings,
) -> Outcome {
    let label = &settings.label;
    let mut checked = 0;
    let mut violations = Vec::new();
    let mut fixes = Vec::new();
    let mut unusable = Vec::new();
    let mut apps: Vec<&ApplicationDoc> = apps.iter().collect();
    apps.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for app in apps {
        let name = &app.metadata.name;
        if settings.exempt.iter().any(|e| e == name) {
            continue;
        }
        let Some(Ok(tier)) = app.metadata.labels.get(label).map(|v| v.parse::<Tier>()) else {
            continue;
        };
        checked += 1;
        let gate = gate_wave(tier);
        let gate_text =
            gate.map_or_else(String::new, |g| format!(", tier {tier}'s gate at wave {g}"));
        let Some(&band) = bands.get(&tier) else {
            violations.push(format!(
                "Application {name} is tier {tier}, which has no band in checks.sync-waves.bands"
            ));
            continue;
        };
        let wave = app.metadata.annotations.get(SYNC_WAVE_ANNOTATION);
        let problem = match wave.map(|w| (w, w.parse::<i32>())) {
            None => Some(format!(
                "Application {name} (tier {tier}) has no {SYNC_WAVE_ANNOTATION}: ArgoCD syncs it at wave 0, before every gate (band {band}{gate_text})"
            )),
            Some((text, Err(_))) => Some(format!(
                "Application {name} (tier {tier}) has {SYNC_WAVE_ANNOTATION} {text:?}, not an integer: ArgoCD syncs it at wave 0, before every gate (band {band}{gate_text})"
            )),
            Some((_, Ok(w))) => {
                let mut why = Vec::new();
                if !band.contains(w) {
                    let other = bands
                        .iter()
                        .find(|(t, b)| **t != tier && b.contains(w))
                        .map_or_else(String::new, |(t, _)| format!(", in tier {t}'s band"));
                    why.push(format!("outside tier {tier}'s band {band}{other}"));
                }
                if let Some(g) = gate.filter(|g| w <= *g) {
                    why.push(format!("not after tier {tier}'s gate at wave {g}"));
                }
                (!why.is_empty()).then(|| {
                    format!(
                        "Application {name} (tier {tier}) is at wave {w}, {}",
                        why.join(" and ")
                    )
                })
            }
        };
        if let Some(problem) = problem {
            violations.push(problem);
            match suggested(name, tier, band, gate) {
                Some(w) => fixes.push(format!("\"{w}\" on {name}")),
                None => unusable.push(format!("tier {tier}'s band {band}{gate_text}")),
            }
        }
    }
    let gates: Vec<String> = Tier::ALL
        .into_iter()
        .filter_map(|t| gate_wave(t).map(|g| format!("{t}: {g}")))
        .collect();
    if violations.is_empty() && checked == 0 {
        return Outcome::warn(
            "sync-waves-no-applications",
            format!(
                "no ArgoCD Application in {} carries the {label} label",
                settings.namespace
            ),
        )
        .hint("Check checks.sync-waves.namespace and .label: ArgoCD's Applications live in its own namespace, labelled with their tier by the app-of-apps.");
    }
    if violations.is_empty() {
        return Outcome::pass(
            "sync-waves-in-band",
            format!(
                "{checked} tier-labelled Application(s) in {} sync inside their tier's band, after its gate",
                settings.namespace
            ),
        )
        .evidence("gateWaves", gates.join(", "));
    }
    let mut hint = String::new();
    if !fixes.is_empty() {
        hint.push_str(&format!(
            "Set {SYNC_WAVE_ANNOTATION}: {} in the app-of-apps' Application templates. ",
            fixes.join(", ")
        ));
    }
    if !unusable.is_empty() {
        hint.push_str(&format!(
            "No wave of {} comes after the gate: fix checks.sync-waves.bands. ",
            unusable.join(", ")
        ));
    }
    hint.push_str("Each tier's Applications sync after its gate, the PreSync hook at the wave before the tier's first app, and inside the tier's band: at a lower wave an app syncs before its gate has checked what it needs.");
    Outcome::fail(
        "sync-waves-violated",
        format!(
            "{} Application(s) sync out of their tier's place: {}",
            violations.len(),
            name_list(&violations, 10)
        ),
    )
    .hint(hint)
    .evidence("gateWaves", gates.join(", "))
}

/// The `sync-waves` check.
#[derive(Debug)]
pub struct SyncWaves {
    settings: SyncWavesSettings,
    bands: BTreeMap<Tier, Band>,
}

impl SyncWaves {
    /// A check with these settings.
    #[must_use]
    pub fn new(settings: SyncWavesSettings) -> Self {
        let bands = settings.effective_bands();
        SyncWaves { settings, bands }
    }
}

impl Definition for SyncWaves {
    const ID: &'static str = "sync-waves";
    const FAMILY: Family = Family::Kubernetes;
    type Settings = SyncWavesSettings;

    /// Before tier 1 syncs, no Application of any tier may be placed before its gate: every
    /// Application exists, unsynced, from the moment the app-of-apps renders them.
    fn needed_by(_: &SyncWavesSettings) -> NeededBy {
        NeededBy::tier(Tier::One)
    }

    fn provided_by(_: &SyncWavesSettings, _: &Site<'_>) -> Provider {
        Provider::Foundation("ArgoCD and the app-of-apps' Applications")
    }

    fn build(settings: &SyncWavesSettings, site: &Site<'_>) -> Result<Built, String> {
        Ok(Built::new(
            SyncWaves::new(settings.clone()),
            format!(
                "ArgoCD Applications in {} sync inside their tier's band of waves, after its gate",
                settings.namespace
            ),
            Self::provided_by(settings, site),
            &[super::KubeApi::ID],
        ))
    }
}

#[async_trait::async_trait]
impl Check for SyncWaves {
    fn reads(&self) -> Reads {
        Reads::kube(vec![APPLICATIONS.within(&self.settings.namespace)])
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        match fetch::applications::<ApplicationDoc>(
            ctx,
            &self.settings.namespace,
            "sync-waves-api-missing",
            "Install ArgoCD with its CRDs (argo-cd chart value crds.install=true).",
        )
        .await
        {
            Ok((apps, watch)) => {
                Attempt::until_changed(judge(&apps, &self.bands, &self.settings), vec![watch])
            }
            Err(failed) => *failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    fn app(name: &str, tier: Option<&str>, wave: Option<&str>) -> ApplicationDoc {
        let mut doc = ApplicationDoc::default();
        doc.metadata.name = name.into();
        if let Some(t) = tier {
            doc.metadata
                .labels
                .insert("goldenpath.idp/tier".into(), t.into());
        }
        if let Some(w) = wave {
            doc.metadata
                .annotations
                .insert(SYNC_WAVE_ANNOTATION.into(), w.into());
        }
        doc
    }

    fn settings() -> SyncWavesSettings {
        SyncWavesSettings {
            exempt: vec!["platform-root".into()],
            ..SyncWavesSettings::default()
        }
    }

    fn run(apps: &[ApplicationDoc], s: &SyncWavesSettings) -> Outcome {
        judge(apps, &s.effective_bands(), s)
    }

    #[test]
    fn gates_sit_at_the_wave_before_each_tiers_first_app() {
        let gates: Vec<Option<i32>> = Tier::ALL.into_iter().map(gate_wave).collect();
        assert_eq!(gates, [None, Some(9), Some(49), Some(99), Some(199)]);
    }

    #[test]
    fn every_platform_app_fits_its_default_band() {
        let s = SyncWavesSettings::default();
        let apps: Vec<ApplicationDoc> = platform::APPS
            .iter()
            .map(|a| {
                let wave = a.wave.map(|w| w.to_string());
                // cert-manager has no wave in the platform's records: tier 1's band holds 15.
                app(
                    a.name,
                    Some(a.tier.as_str()),
                    Some(wave.as_deref().unwrap_or("15")),
                )
            })
            .collect();
        let o = run(&apps, &s);
        assert_eq!(
            (o.status, o.code.as_str()),
            (Status::Pass, "sync-waves-in-band"),
            "{}",
            o.message
        );
        assert!(o.message.starts_with("13 tier-labelled Application(s)"));
        assert_eq!(o.evidence["gateWaves"], "1: 9, 1.5: 49, 2: 99, 3: 199");
    }

    #[test]
    fn judges_each_tiered_applications_wave() {
        let s = settings();
        for (apps, needle, fix) in [
            (
                vec![app("backstage", Some("2"), Some("45"))],
                "Application backstage (tier 2) is at wave 45, outside tier 2's band 100–102 and not after tier 2's gate at wave 99",
                Some("\"100\" on backstage"),
            ),
            (
                vec![app("prometheus", Some("1.5"), None)],
                "Application prometheus (tier 1.5) has no argocd.argoproj.io/sync-wave: ArgoCD syncs it at wave 0, before every gate (band 50–52, tier 1.5's gate at wave 49)",
                Some("\"50\" on prometheus"),
            ),
            (
                vec![app("grafana-sqlite", Some("1.5"), Some("fifty-two"))],
                "has argocd.argoproj.io/sync-wave \"fifty-two\", not an integer",
                Some("\"52\" on grafana-sqlite"),
            ),
            (
                vec![app("loki", Some("2"), Some("30"))],
                "outside tier 2's band 100–102, in tier 1's band and not after",
                Some("\"101\" on loki"),
            ),
            (
                vec![app("custom", Some("3"), Some("5"))],
                "Application custom (tier 3) is at wave 5",
                Some("\"200\" on custom"),
            ),
            (
                vec![app("console", Some("0"), Some("1"))],
                "Application console is tier 0, which has no band in checks.sync-waves.bands",
                None,
            ),
        ] {
            let o = run(&apps, &s);
            assert_eq!(
                (o.status, o.code.as_str()),
                (Status::Fail, "sync-waves-violated"),
                "{}",
                o.message
            );
            assert!(o.message.contains(needle), "{needle:?} in {}", o.message);
            let hint = o.hint.expect("hint");
            if let Some(fix) = fix {
                assert!(
                    hint.starts_with(&format!("Set argocd.argoproj.io/sync-wave: {fix}")),
                    "{hint}"
                );
            }
        }

        // Unlabelled, mislabelled and exempt Applications are tier-gating's business.
        let o = run(
            &[
                app("platform-root", Some("1"), Some("0")),
                app("loose", None, None),
                app("odd", Some("two"), None),
                app("kong", Some("1"), Some("30")),
            ],
            &s,
        );
        assert_eq!(
            (o.status, o.code.as_str()),
            (Status::Pass, "sync-waves-in-band"),
            "{}",
            o.message
        );
        assert!(o.message.starts_with("1 tier-labelled"), "{}", o.message);

        let o = run(&[app("loose", None, None)], &s);
        assert_eq!(
            (o.status, o.code.as_str()),
            (Status::Warn, "sync-waves-no-applications")
        );
    }

    #[test]
    fn bands_are_configurable_tier_by_tier_and_never_before_the_gate() {
        let s: SyncWavesSettings =
            serde_saphyr::from_str("bands:\n  \"2\": [95, 102]\n").expect("parses");
        let bands = s.effective_bands();
        assert_eq!(bands[&Tier::Two], Band(95, 102));
        assert_eq!(
            bands[&Tier::One],
            Band(10, 40),
            "the other tiers keep theirs"
        );
        let o = run(&[app("extra", Some("2"), Some("97"))], &s);
        assert!(
            o.message
                .contains("at wave 97, not after tier 2's gate at wave 99"),
            "{}",
            o.message
        );
        assert!(o.hint.expect("hint").contains("\"100\" on extra"));

        let s: SyncWavesSettings =
            serde_saphyr::from_str("bands:\n  \"2\": [90, 95]\n").expect("parses");
        let o = run(&[app("extra", Some("2"), Some("92"))], &s);
        assert!(o.hint.expect("hint").starts_with(
            "No wave of tier 2's band 90–95, tier 2's gate at wave 99 comes after the gate"
        ));
        assert!(
            serde_saphyr::from_str::<SyncWavesSettings>("bands:\n  \"2.5\": [1, 2]\n").is_err()
        );
    }
}
