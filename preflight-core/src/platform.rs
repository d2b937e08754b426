//! The platform being gated: its apps with their tiers, sync waves and namespaces (brief §1),
//! what provides the thing a check verifies, who needs it, and the scope of a run (a tier's
//! gate, or one app's own hook).
//!
//! The platform is built while preflight gates it: each tier's gate runs on a cluster where
//! that tier's apps do not exist yet. So a gate may only check what the foundation or a lower
//! tier provides; what an app creates for itself is checked in that app's own hook.

use std::fmt;

use serde::Serialize;
use serde::ser::SerializeStruct as _;

use crate::tier::Tier;

/// An app of the app-of-apps.
#[derive(Debug, PartialEq, Eq)]
pub struct App {
    /// Its ArgoCD Application's name.
    pub name: &'static str,
    /// Its tier.
    pub tier: Tier,
    /// Its sync wave in the app-of-apps; `None` where the platform's records give none.
    pub wave: Option<i32>,
    /// The namespace it creates and runs in.
    pub namespace: &'static str,
}

/// The platform's apps, by sync wave (brief §1). cert-manager belongs to tier 1 (it provides
/// the ClusterIssuers) but has no wave in the platform's list. ArgoCD is not among them: it is
/// foundation, installed by Terraform before the app-of-apps exists.
pub const APPS: [App; 13] = [
    app("external-secrets", Tier::One, Some(10), "external-secrets"),
    app("cert-manager", Tier::One, None, "cert-manager"),
    app("external-dns", Tier::One, Some(20), "external-dns"),
    app("kong", Tier::One, Some(30), "kong"),
    app("cluster-autoscaler", Tier::One, Some(40), "kube-system"),
    app("prometheus", Tier::OneAndHalf, Some(50), "monitoring"),
    app("alertmanager", Tier::OneAndHalf, Some(51), "monitoring"),
    app("grafana-sqlite", Tier::OneAndHalf, Some(52), "monitoring"),
    app("backstage", Tier::Two, Some(100), "backstage"),
    app("loki", Tier::Two, Some(101), "monitoring"),
    app("grafana-postgresql", Tier::Two, Some(102), "monitoring"),
    app("keycloak", Tier::Three, Some(200), "keycloak"),
    app("oidc-config", Tier::Three, Some(201), "keycloak"),
];

const fn app(name: &'static str, tier: Tier, wave: Option<i32>, namespace: &'static str) -> App {
    App {
        name,
        tier,
        wave,
        namespace,
    }
}

/// The app named `name`.
#[must_use]
pub fn app_named(name: &str) -> Option<&'static App> {
    APPS.iter().find(|a| a.name == name)
}

/// The names of every app, for messages.
#[must_use]
pub fn app_names() -> Vec<&'static str> {
    APPS.iter().map(|a| a.name).collect()
}

/// The first sync wave of a tier's apps: its gate runs one wave earlier.
#[must_use]
pub fn first_wave(tier: Tier) -> Option<i32> {
    APPS.iter()
        .filter(|a| a.tier == tier)
        .filter_map(|a| a.wave)
        .min()
}

impl fmt::Display for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.wave {
            Some(w) => write!(f, "{} (tier {}, wave {w})", self.name, self.tier),
            None => write!(f, "{} (tier {})", self.name, self.tier),
        }
    }
}

/// What makes the thing a check verifies true on a fresh bootstrap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// There before ArgoCD syncs anything: what Terraform, EKS and AWS set up (ArgoCD
    /// included). The text names it.
    Foundation(&'static str),
    /// Installed by an app of the platform.
    App(&'static App),
    /// Installed by several apps of one tier; the text names them.
    Tier(Tier, &'static str),
}

impl Provider {
    /// The app that provides it; the one named must be in [`APPS`].
    ///
    /// # Panics
    /// When `name` is not an app of the platform: a check's definition names a wrong app,
    /// which the catalogue's tests catch.
    #[must_use]
    pub fn app(name: &str) -> Self {
        Provider::App(app_named(name).unwrap_or_else(|| panic!("{name} is not an app of APPS")))
    }

    /// The tier that provides it; the foundation comes before every tier.
    #[must_use]
    pub fn tier(&self) -> Option<Tier> {
        match self {
            Provider::Foundation(_) => None,
            Provider::App(a) => Some(a.tier),
            Provider::Tier(t, _) => Some(*t),
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Provider::Foundation(what) => write!(f, "foundation ({what})"),
            Provider::App(a) => a.fmt(f),
            Provider::Tier(t, what) => write!(f, "tier {t} ({what})"),
        }
    }
}

impl Serialize for Provider {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Provider::Foundation(what) => {
                let mut st = s.serialize_struct("Provider", 2)?;
                st.serialize_field("kind", "foundation")?;
                st.serialize_field("what", what)?;
                st.end()
            }
            Provider::App(a) => {
                let mut st = s.serialize_struct("Provider", 4)?;
                st.serialize_field("kind", "app")?;
                st.serialize_field("app", a.name)?;
                st.serialize_field("tier", &a.tier)?;
                st.serialize_field("wave", &a.wave)?;
                st.end()
            }
            Provider::Tier(t, what) => {
                let mut st = s.serialize_struct("Provider", 3)?;
                st.serialize_field("kind", "tier")?;
                st.serialize_field("tier", t)?;
                st.serialize_field("what", what)?;
                st.end()
            }
        }
    }
}

/// Who needs what a check verifies: the gates from a tier up, the hooks of some apps, or both
/// (a database login runs at the gate with the credentials in AWS, and in the app's hook with
/// the credentials its ExternalSecret synced).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NeededBy {
    /// The first tier whose gate runs it.
    pub tier: Option<Tier>,
    /// The apps whose own hooks run it.
    pub apps: Vec<String>,
}

impl NeededBy {
    /// The gates of `tier` and above.
    #[must_use]
    pub fn tier(tier: Tier) -> Self {
        NeededBy {
            tier: Some(tier),
            apps: Vec::new(),
        }
    }

    /// The hooks of these apps only.
    #[must_use]
    pub fn apps<S: AsRef<str>>(apps: impl IntoIterator<Item = S>) -> Self {
        let mut names: Vec<String> = apps.into_iter().map(|a| a.as_ref().to_owned()).collect();
        names.sort_unstable();
        names.dedup();
        NeededBy {
            tier: None,
            apps: names,
        }
    }

    /// Also the hooks of these apps.
    #[must_use]
    pub fn and_apps<S: AsRef<str>>(self, apps: impl IntoIterator<Item = S>) -> Self {
        NeededBy {
            tier: self.tier,
            apps: NeededBy::apps(apps).apps,
        }
    }
}

impl fmt::Display for NeededBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(t) = self.tier {
            parts.push(format!("tier {t}"));
        }
        if !self.apps.is_empty() {
            parts.push(format!("app {}", self.apps.join(", ")));
        }
        if parts.is_empty() {
            f.write_str("nothing")
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}

/// What a run checks: a tier's gate, or one app's own hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `--tier N`: what tiers 0..N need, before tier N's first app.
    Gate(Tier),
    /// `--app NAME`: what the app created for itself, before its workloads start.
    App(&'static App),
}

impl Scope {
    /// The tier of the run: the gate's, or the app's.
    #[must_use]
    pub fn tier(self) -> Tier {
        match self {
            Scope::Gate(t) => t,
            Scope::App(a) => a.tier,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Gate(t) => write!(f, "tier {t}"),
            Scope::App(a) => write!(f, "app {} (tier {})", a.name, a.tier),
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Scope", 2)?;
        match self {
            Scope::Gate(t) => {
                st.serialize_field("kind", "gate")?;
                st.serialize_field("tier", t)?;
            }
            Scope::App(a) => {
                st.serialize_field("kind", "app")?;
                st.serialize_field("app", a.name)?;
            }
        }
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_are_unique_and_each_tier_starts_at_the_briefs_wave() {
        let mut names = app_names();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), APPS.len());
        let firsts: Vec<Option<i32>> = Tier::ALL.into_iter().map(first_wave).collect();
        assert_eq!(firsts, [None, Some(10), Some(50), Some(100), Some(200)]);
    }

    #[test]
    fn says_who_provides_and_who_needs() {
        assert_eq!(
            Provider::app("backstage").to_string(),
            "backstage (tier 2, wave 100)"
        );
        assert_eq!(Provider::app("kong").tier(), Some(Tier::One));
        assert_eq!(Provider::Foundation("EKS").tier(), None);
        let both = NeededBy::tier(Tier::Two).and_apps(["backstage", "backstage"]);
        assert_eq!(both.to_string(), "tier 2; app backstage");
    }
}
