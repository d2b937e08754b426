//! `sync-waves`: every tier-labelled ArgoCD Application syncs inside its tier's band of sync
//! waves, after its tier's gate. An Application of a higher tier at a lower wave syncs before
//! its gate has checked what it needs: ArgoCD orders the app-of-apps by wave alone.
//!
//! A tier's gate is the PreSync hook at the wave before the tier's band (its low end minus
//! one), as `hooks/` place them: with the platform's bands (brief §1) 9 for tier 1, 49 for 1.5,
//! 99 for 2, 199 for 3, the wave before each tier's first app. Bands are validated when the
//! config is read: each starts no later than it ends, and each tier's lies above the band of the
//! tier below with at least one wave between them for the gate. ArgoCD reads a missing or
//! non-integer `argocd.argoproj.io/sync-wave` as wave 0, before every gate. Applications without
//! the tier label, or with a label that is not a tier, are `tier-gating`'s business and skipped
//! here, as are the ones `exempt`.
//!
//! On a first sync the app-of-apps' root creates its child Applications wave by wave: a tier-2
//! child at wave 45 is created, and synced, at wave 45, before any later gate could see it. So
//! the check also reads the children the roots list in `status.resources` (read by
//! [`super::app_of_apps`]: ArgoCD's `ResourceStatus`, with the `syncWave` of the root's target
//! manifest, i.e. the wave the next sync applies), the children not created yet included
//! (`OutOfSync`, health `Missing`): each of the platform's apps not created yet is judged at
//! the wave its root lists, with the platform's tier for it. A child that exists is judged once,
//! by its own label, and by its live annotation unless its root lists it at another wave: the
//! next sync applies the listed one, so that is the one judged ("listed by platform-root at
//! wave 45; the live Application says 101").
//!
//! `syncWave` in `status.resources` needs ArgoCD 2.6 or later, which omits it for wave 0;
//! older versions list no wave at all, which read as 0 would fail every child not created yet.
//! So when no child of a root carries a `syncWave`, that root's listing is not judged (its
//! existing children still are, by their annotations), and the pass message says so.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Deserializer, Serialize};

use super::TierGatingSettings;
use super::app_of_apps::{self, Listed};
use super::fetch::{self, APPLICATIONS};
use crate::check::{Attempt, Check, Context};
use crate::check::{Built, Definition, Family, Site};
use crate::outcome::{Outcome, name_list};
use crate::platform::{self, NeededBy, Provider};
use crate::reads::Reads;
use crate::tier::Tier;

/// The annotation ArgoCD orders a sync by.
const SYNC_WAVE_ANNOTATION: &str = "argocd.argoproj.io/sync-wave";

/// The waves a tier's Applications may use, both ends included: `[low, high]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Band(pub i32, pub i32);

impl Band {
    fn contains(self, wave: i64) -> bool {
        i64::from(self.0) <= wave && wave <= i64::from(self.1)
    }

    /// The wave of the tier's gate: the one before its band.
    fn gate(self) -> i32 {
        self.0 - 1
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
    /// default band, the others keep theirs. A tier's gate is the wave before its band.
    #[serde(deserialize_with = "valid_bands")]
    pub bands: BTreeMap<Tier, Band>,
    /// Applications exempt from the rule, such as the app-of-apps root.
    pub exempt: Vec<String>,
}

/// The platform's bands (brief §1): each tier's first and last app's waves.
fn default_bands() -> BTreeMap<Tier, Band> {
    BTreeMap::from([
        (Tier::One, Band(10, 40)),
        (Tier::OneAndHalf, Band(50, 52)),
        (Tier::Two, Band(100, 102)),
        (Tier::Three, Band(200, 201)),
    ])
}

impl Default for SyncWavesSettings {
    /// The bands of the platform's app-of-apps (brief §1).
    fn default() -> Self {
        let gating = TierGatingSettings::default();
        SyncWavesSettings {
            namespace: gating.namespace,
            label: gating.label,
            bands: default_bands(),
            exempt: Vec::new(),
        }
    }
}

/// The bands in force: the defaults, with the tiers `given` replaced.
fn effective(given: &BTreeMap<Tier, Band>) -> BTreeMap<Tier, Band> {
    let mut bands = default_bands();
    bands.extend(given.iter().map(|(t, b)| (*t, *b)));
    bands
}

/// Why the bands in force with `given` cannot order the tiers, if they cannot: a band must
/// start no later than it ends, and lie above the band of the tier below with a wave between
/// them for its gate (which runs at the wave before its band).
fn band_problem(given: &BTreeMap<Tier, Band>) -> Option<String> {
    let bands = effective(given);
    if let Some((tier, band)) = bands.iter().find(|(_, b)| b.0 > b.1) {
        return Some(format!(
            "tier {tier}'s band [{}, {}] ends before it starts",
            band.0, band.1
        ));
    }
    let ordered: Vec<(&Tier, &Band)> = bands.iter().collect();
    ordered.windows(2).find_map(|pair| {
        let [(lower, below), (tier, band)] = pair else {
            return None;
        };
        (band.gate() <= below.1).then(|| {
            format!(
                "tier {tier}'s band {band} (gate at wave {}) does not lie above tier {lower}'s band {below}: each tier's band must start at least two waves after the band of the tier below, leaving a wave for its gate",
                band.gate()
            )
        })
    })
}

/// Reads `bands` and rejects, with its place in the file, bands that cannot order the tiers.
fn valid_bands<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<Tier, Band>, D::Error> {
    let given = BTreeMap::<Tier, Band>::deserialize(d)?;
    match band_problem(&given) {
        Some(problem) => Err(serde::de::Error::custom(problem)),
        None => Ok(given),
    }
}

impl SyncWavesSettings {
    /// The bands in force: the defaults, with the tiers the settings give replaced.
    fn effective_bands(&self) -> BTreeMap<Tier, Band> {
        effective(&self.bands)
    }
}

/// The wave of a tier's gate with the platform's bands: the wave before the tier's band, which
/// is the wave before its first app. `None` for a tier without a band (tier 0, whose gate runs
/// before every app).
#[must_use]
#[cfg(test)]
fn gate_wave(tier: Tier) -> Option<i32> {
    default_bands().get(&tier).map(|b| b.gate())
}

/// An Application's name, labels, annotations, and the resources its status lists.
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
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct AppStatus {
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    resources: Vec<Listed>,
}

/// Where an Application's wave comes from.
enum Wave<'a> {
    /// Its own annotation (absent, or as written).
    Annotation(Option<&'a str>),
    /// The wave its root lists it at, before it exists.
    Listed { root: &'a str, wave: i64 },
    /// The wave its root lists it at, which its live annotation (absent or as written) does
    /// not say: the root's next sync applies the listed one.
    Relisted {
        root: &'a str,
        wave: i64,
        live: Option<&'a str>,
    },
}

/// An Application to judge: its name, tier and wave.
struct Subject<'a> {
    name: &'a str,
    tier: Tier,
    wave: Wave<'a>,
}

/// The wave to suggest for an Application of `tier` named `name`: the platform's own wave for
/// it when that fits the band, else the band's first wave.
fn suggested(name: &str, tier: Tier, band: Band) -> i64 {
    platform::app_named(name)
        .filter(|a| a.tier == tier)
        .and_then(|a| a.wave)
        .map(i64::from)
        .filter(|w| band.contains(*w))
        .unwrap_or(i64::from(band.0))
}

/// What is wrong with one Application's place, if anything.
fn problem(subject: &Subject<'_>, bands: &BTreeMap<Tier, Band>) -> Option<(String, Option<i64>)> {
    let Subject { name, tier, wave } = subject;
    let tier = *tier;
    let Some(&band) = bands.get(&tier) else {
        return Some((
            format!(
                "Application {name} is tier {tier}, which has no band in checks.sync-waves.bands"
            ),
            None,
        ));
    };
    let gate = band.gate();
    let fix = Some(suggested(name, tier, band));
    let text = match wave {
        Wave::Annotation(None) => format!(
            "Application {name} (tier {tier}) has no {SYNC_WAVE_ANNOTATION}: ArgoCD syncs it at wave 0, before every gate (band {band}, tier {tier}'s gate at wave {gate})"
        ),
        Wave::Annotation(Some(text)) => match text.parse::<i64>() {
            Err(_) => format!(
                "Application {name} (tier {tier}) has {SYNC_WAVE_ANNOTATION} {text:?}, not an integer: ArgoCD syncs it at wave 0, before every gate (band {band}, tier {tier}'s gate at wave {gate})"
            ),
            Ok(w) => format!(
                "Application {name} (tier {tier}) is at wave {w}, {}",
                out_of_place(w, tier, band, bands)?
            ),
        },
        Wave::Listed { root, wave } => format!(
            "Application {name} (tier {tier}, not created yet) is listed by Application {root} at wave {wave}, {}",
            out_of_place(*wave, tier, band, bands)?
        ),
        Wave::Relisted { root, wave, live } => {
            let live = live.map_or_else(
                || format!("has no {SYNC_WAVE_ANNOTATION}"),
                |text| format!("says {text}"),
            );
            format!(
                "Application {name} (tier {tier}) is listed by {root} at wave {wave} (the wave its next sync applies; the live Application {live}), {}",
                out_of_place(*wave, tier, band, bands)?
            )
        }
    };
    Some((text, fix))
}

/// Why `wave` is out of `tier`'s place, or `None` when it is inside the band (and so after the
/// gate, the wave before the band).
fn out_of_place(wave: i64, tier: Tier, band: Band, bands: &BTreeMap<Tier, Band>) -> Option<String> {
    if band.contains(wave) {
        return None;
    }
    let other = bands
        .iter()
        .find(|(t, b)| **t != tier && b.contains(wave))
        .map_or_else(String::new, |(t, _)| format!(", in tier {t}'s band"));
    let mut why = format!("outside tier {tier}'s band {band}{other}");
    if wave <= i64::from(band.gate()) {
        why.push_str(&format!(
            " and not after tier {tier}'s gate at wave {}",
            band.gate()
        ));
    }
    Some(why)
}

/// Judges the Applications of the namespace, and the children their roots list but have not
/// created yet, against the bands in force.
pub(crate) fn judge(
    apps: &[ApplicationDoc],
    bands: &BTreeMap<Tier, Band>,
    settings: &SyncWavesSettings,
) -> Outcome {
    let label = &settings.label;
    let exempt = |name: &str| settings.exempt.iter().any(|e| e == name);
    let mut apps: Vec<&ApplicationDoc> = apps.iter().collect();
    apps.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let live: BTreeSet<&str> = apps.iter().map(|a| a.metadata.name.as_str()).collect();
    let tree = app_of_apps::read(
        apps.iter()
            .map(|a| (a.metadata.name.as_str(), &a.status.resources)),
        &settings.namespace,
    );
    // The wave a root lists a child at, when the root lists waves at all (ArgoCD 2.6 or later,
    // where an absent syncWave is wave 0).
    let listed_wave = |name: &str| {
        tree.child(name)
            .filter(|c| tree.lists_waves(c.root))
            .map(|c| (c.root, c.wave.unwrap_or(0)))
    };

    let mut subjects = Vec::new();
    for app in &apps {
        let name = app.metadata.name.as_str();
        if exempt(name) {
            continue;
        }
        let Some(Ok(tier)) = app.metadata.labels.get(label).map(|v| v.parse::<Tier>()) else {
            continue;
        };
        let annotation = app
            .metadata
            .annotations
            .get(SYNC_WAVE_ANNOTATION)
            .map(String::as_str);
        // ArgoCD reads a missing or non-integer annotation as wave 0.
        let live_wave = annotation.and_then(|t| t.parse::<i64>().ok()).unwrap_or(0);
        let wave = match listed_wave(name) {
            Some((root, wave)) if wave != live_wave => Wave::Relisted {
                root,
                wave,
                live: annotation,
            },
            _ => Wave::Annotation(annotation),
        };
        subjects.push(Subject { name, tier, wave });
    }
    let checked = subjects.len();

    // The platform's apps the roots list and have not created yet, at the wave listed; a root
    // listing no wave at all (ArgoCD before 2.6) says nothing about waves and is left alone.
    let mut roots: BTreeSet<&str> = BTreeSet::new();
    let mut waveless: BTreeMap<&str, usize> = BTreeMap::new();
    for child in &tree.children {
        if live.contains(child.name) || exempt(child.name) {
            continue;
        }
        let Some(app) = platform::app_named(child.name) else {
            continue;
        };
        if !tree.lists_waves(child.root) {
            *waveless.entry(child.root).or_default() += 1;
            continue;
        }
        roots.insert(child.root);
        subjects.push(Subject {
            name: app.name,
            tier: app.tier,
            wave: Wave::Listed {
                root: child.root,
                wave: child.wave.unwrap_or(0),
            },
        });
    }
    let not_created = subjects.len() - checked;

    let mut violations = Vec::new();
    let mut fixes: Vec<String> = Vec::new();
    for subject in &subjects {
        if let Some((text, fix)) = problem(subject, bands) {
            violations.push(text);
            if let Some(w) = fix {
                let fix = format!("\"{w}\" on {}", subject.name);
                if !fixes.contains(&fix) {
                    fixes.push(fix);
                }
            }
        }
    }
    let gates: Vec<String> = bands
        .iter()
        .map(|(t, b)| format!("{t}: {}", b.gate()))
        .collect();
    let unjudged = (!waveless.is_empty()).then(|| {
        let names: Vec<&str> = waveless.keys().copied().collect();
        format!(
            "Application(s) {} list no syncWave for any child (ArgoCD before 2.6), so their {} platform app(s) not created yet were not judged",
            names.join(", "),
            waveless.values().sum::<usize>()
        )
    });
    if violations.is_empty() && subjects.is_empty() && unjudged.is_none() {
        return Outcome::warn(
            "sync-waves-no-applications",
            format!(
                "no ArgoCD Application in {} carries the {label} label or lists a platform app",
                settings.namespace
            ),
        )
        .hint("Check checks.sync-waves.namespace and .label: ArgoCD's Applications live in its own namespace, labelled with their tier by the app-of-apps.");
    }
    let roots: Vec<&str> = roots.into_iter().collect();
    if violations.is_empty() {
        let mut message = format!(
            "{checked} tier-labelled Application(s) in {} sync inside their tier's band, after its gate",
            settings.namespace
        );
        if not_created > 0 {
            message.push_str(&format!(
                "; so do {not_created} not created yet, as Application(s) {} list them",
                roots.join(", ")
            ));
        }
        if let Some(unjudged) = &unjudged {
            message.push_str(&format!("; {unjudged}"));
        }
        let pass = Outcome::pass("sync-waves-in-band", message)
            .evidence("gateWaves", gates.join(", "))
            .evidence("listedNotCreated", not_created);
        return match unjudged {
            Some(_) => pass.evidence(
                "rootsWithoutWaves",
                name_list(&waveless.keys().collect::<Vec<_>>(), 10),
            ),
            None => pass,
        };
    }
    let mut hint = String::new();
    if !fixes.is_empty() {
        hint.push_str(&format!(
            "Set {SYNC_WAVE_ANNOTATION}: {} in the app-of-apps' Application templates. ",
            fixes.join(", ")
        ));
    }
    hint.push_str("Each tier's Applications sync after its gate, the PreSync hook at the wave before the tier's band, and inside the band: at a lower wave an app syncs before its gate has checked what it needs, and the root creates a child Application at the wave it lists it at.");
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

    /// Before tier 1 syncs, no Application of any tier may be placed before its gate: the
    /// root lists every child, with its wave, from the moment it renders them.
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
        fetch::judge_applications(
            ctx,
            &self.settings.namespace,
            "sync-waves-api-missing",
            "Install ArgoCD with its CRDs (argo-cd chart value crds.install=true).",
            |apps: &[ApplicationDoc]| judge(apps, &self.bands, &self.settings),
        )
        .await
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
    fn bands_are_configurable_tier_by_tier_and_each_gate_moves_with_its_band() {
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
        assert_eq!(o.status, Status::Pass, "{}", o.message);
        assert!(o.evidence["gateWaves"].contains("2: 94"));
        let o = run(&[app("extra", Some("2"), Some("94"))], &s);
        assert!(
            o.message.contains(
                "at wave 94, outside tier 2's band 95–102 and not after tier 2's gate at wave 94"
            ),
            "{}",
            o.message
        );
        assert!(o.hint.expect("hint").contains("\"95\" on extra"));
        // With the defaults, the gate is the wave before each tier's first app.
        for tier in Tier::ALL {
            assert_eq!(gate_wave(tier), platform::first_wave(tier).map(|w| w - 1));
        }
    }

    #[test]
    fn bands_that_cannot_order_the_tiers_are_a_configuration_error() {
        for (yaml, needle) in [
            (
                "\"2\": [102, 100]",
                "tier 2's band [102, 100] ends before it starts",
            ),
            (
                "\"2\": [40, 102]",
                "tier 2's band 40–102 (gate at wave 39) does not lie above tier 1.5's band 50–52",
            ),
            (
                "\"1.5\": [100, 110]",
                "tier 2's band 100–102 (gate at wave 99) does not lie above tier 1.5's band 100–110",
            ),
            (
                "\"1.5\": [41, 45]",
                "tier 1.5's band 41–45 (gate at wave 40) does not lie above tier 1's band 10–40",
            ),
            ("\"3\": [90, 95]", "tier 3's band 90–95"),
            ("\"0\": [5, 9]", "tier 1's band 10–40 (gate at wave 9)"),
        ] {
            let err = serde_saphyr::from_str::<SyncWavesSettings>(&format!("bands:\n  {yaml}\n"))
                .expect_err(yaml);
            assert!(err.to_string().contains(needle), "{yaml}: {err}");
        }
        for fine in ["\"0\": [1, 8]", "\"2\": [54, 60]", "\"3\": [104, 104]"] {
            serde_saphyr::from_str::<SyncWavesSettings>(&format!("bands:\n  {fine}\n"))
                .unwrap_or_else(|e| panic!("{fine}: {e}"));
        }
        assert!(
            serde_saphyr::from_str::<SyncWavesSettings>("bands:\n  \"2.5\": [1, 2]\n").is_err()
        );
        // Through the whole config file, the error names the place.
        let err = crate::config::Config::from_yaml(
            "checks:\n  sync-waves:\n    bands:\n      \"2\": [40, 102]\n",
            "preflight.yaml",
        )
        .expect_err("rejected");
        let text = err.to_string();
        assert!(
            text.contains("preflight.yaml") && text.contains("does not lie above"),
            "{text}"
        );
    }

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

    #[test]
    fn judges_the_children_a_root_lists_before_they_exist() {
        let s = settings();
        // The incident: loki listed at wave 45 is created and synced at 45, before tier 2's
        // gate at 99 could see it.
        let o = run(
            &[root(
                "platform-root",
                &[("kong", Some(30)), ("loki", Some(45))],
            )],
            &s,
        );
        assert_eq!(
            (o.status, o.code.as_str()),
            (Status::Fail, "sync-waves-violated"),
            "{}",
            o.message
        );
        assert_eq!(
            o.message,
            "1 Application(s) sync out of their tier's place: Application loki (tier 2, not created yet) is listed by Application platform-root at wave 45, outside tier 2's band 100–102 and not after tier 2's gate at wave 99"
        );
        assert!(
            o.hint
                .expect("hint")
                .starts_with("Set argocd.argoproj.io/sync-wave: \"101\" on loki")
        );

        // syncWave is omitempty: absent is wave 0 when the root lists waves at all.
        let o = run(
            &[root(
                "platform-root",
                &[("kong", Some(30)), ("keycloak", None)],
            )],
            &s,
        );
        assert!(
            o.message.contains("keycloak (tier 3, not created yet) is listed by Application platform-root at wave 0"),
            "{}",
            o.message
        );

        // In band: passes, counted apart from the live ones.
        let o = run(
            &[
                root("platform-root", &[("kong", Some(30)), ("loki", Some(101))]),
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
        assert_eq!(
            o.message,
            "1 tier-labelled Application(s) in argocd sync inside their tier's band, after its gate; so do 1 not created yet, as Application(s) platform-root list them"
        );

        // A child that exists is judged once, by its own label, at the wave its root lists:
        // the next sync applies that one, whatever the live annotation says.
        for (listed, live, status, needle) in [
            (
                Some(45),
                Some("101"),
                Status::Fail,
                "Application loki (tier 2) is listed by platform-root at wave 45 (the wave its next sync applies; the live Application says 101), outside tier 2's band 100–102 and not after tier 2's gate at wave 99",
            ),
            (
                None,
                Some("101"),
                Status::Fail,
                "Application loki (tier 2) is listed by platform-root at wave 0 (the wave its next sync applies; the live Application says 101)",
            ),
            (
                Some(45),
                None,
                Status::Fail,
                "listed by platform-root at wave 45 (the wave its next sync applies; the live Application has no argocd.argoproj.io/sync-wave)",
            ),
            (
                Some(45),
                Some("45"),
                Status::Fail,
                "Application loki (tier 2) is at wave 45, outside",
            ),
            (
                Some(101),
                Some("45"),
                Status::Pass,
                "1 tier-labelled Application(s) in argocd sync inside their tier's band",
            ),
        ] {
            let o = run(
                &[
                    root("platform-root", &[("kong", Some(30)), ("loki", listed)]),
                    app("loki", Some("2"), live),
                ],
                &s,
            );
            assert_eq!(o.status, status, "{listed:?} {live:?}: {}", o.message);
            assert!(o.message.contains(needle), "{needle:?} in {}", o.message);
            if status == Status::Fail {
                assert!(o.message.starts_with("1 Application(s)"), "{}", o.message);
                assert!(
                    o.hint
                        .expect("hint")
                        .starts_with("Set argocd.argoproj.io/sync-wave: \"101\" on loki"),
                );
            }
        }

        // Not an Application, not a platform app, exempt, or listed twice alike: left alone
        // or judged once.
        let mut other = root("platform-root", &[("loki", Some(45))]);
        other.status.resources[0].kind = "Deployment".into();
        let o = run(
            &[
                other,
                root(
                    "second-root",
                    &[("my-extra", Some(1)), ("platform-root", Some(0))],
                ),
            ],
            &s,
        );
        assert_eq!(o.code, "sync-waves-no-applications", "{}", o.message);
        let o = run(
            &[
                root("a-root", &[("loki", Some(45))]),
                root("b-root", &[("loki", Some(45))]),
            ],
            &s,
        );
        assert!(o.message.starts_with("1 Application(s)"), "{}", o.message);
    }

    #[test]
    fn a_root_listing_no_wave_at_all_is_not_judged() {
        // ArgoCD before 2.6 lists no syncWave: read as wave 0, every child would fail.
        let s = settings();
        let o = run(
            &[
                root("old-root", &[("loki", None), ("keycloak", None)]),
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
        assert_eq!(
            o.message,
            "1 tier-labelled Application(s) in argocd sync inside their tier's band, after its gate; Application(s) old-root list no syncWave for any child (ArgoCD before 2.6), so their 2 platform app(s) not created yet were not judged"
        );
        assert_eq!(o.evidence["rootsWithoutWaves"], "old-root");

        // Its existing children are judged by their annotations, not at wave 0.
        let o = run(
            &[
                root("old-root", &[("kong", None), ("loki", None)]),
                app("kong", Some("1"), Some("30")),
                app("grafana", Some("1.5"), Some("5")),
            ],
            &s,
        );
        assert_eq!(o.status, Status::Fail, "{}", o.message);
        assert_eq!(
            o.message,
            "1 Application(s) sync out of their tier's place: Application grafana (tier 1.5) is at wave 5, outside tier 1.5's band 50–52 and not after tier 1.5's gate at wave 49"
        );

        // Another root listing waves is judged alongside.
        let o = run(
            &[
                root("old-root", &[("loki", None)]),
                root("new-root", &[("my-extra", Some(45)), ("kong", None)]),
            ],
            &s,
        );
        assert_eq!(o.status, Status::Fail, "{}", o.message);
        assert!(
            o.message.contains("Application kong (tier 1, not created yet) is listed by Application new-root at wave 0")
                && !o.message.contains("loki"),
            "{}",
            o.message
        );
    }
}
