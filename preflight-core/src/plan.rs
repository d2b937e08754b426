//! The plan: which checks a run performs (a tier's gate, or one app's own hook), and why
//! every other check is left out. Building it contacts nothing.

use std::sync::Arc;

use serde::Serialize;

use crate::check::{Attempt, Check, CheckMeta, Context, Family, Site};
use crate::checks::{Entry, Registered, registry};
use crate::config::Config;
use crate::contract::{Ceiling, Mode, Values};
use crate::platform::{NeededBy, Provider, Scope, app_named, app_names};
use crate::tier::Tier;

/// Why a plan cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The requested tier (or the app's) is above what this cluster may run.
    #[error("{scope} is above this cluster's ceiling {}: {}", ceiling.tier, ceiling.rule)]
    AboveCeiling {
        /// What was asked for.
        scope: Scope,
        /// The ceiling and its rule.
        ceiling: Ceiling,
    },
    /// A check id (in the config or on the command line) that the catalogue does not have.
    #[error("{place}: unknown check {id:?} (known: {})", known.join(", "))]
    UnknownCheck {
        /// Where it was named.
        place: String,
        /// The id.
        id: String,
        /// Every known id.
        known: Vec<&'static str>,
    },
    /// An app name (in the config or `--app`) that the platform does not have.
    #[error("{place}: unknown app {name:?} (the platform's apps: {})", app_names().join(", "))]
    UnknownApp {
        /// Where it was named.
        place: String,
        /// The name.
        name: String,
    },
    /// `--app NAME` for an app whose hook would check nothing.
    #[error("app {app} has no hook: no check verifies what it creates for itself (apps with hooks: {})", hooks.join(", "))]
    NoHook {
        /// The app.
        app: &'static str,
        /// The apps that have hooks.
        hooks: Vec<String>,
    },
    /// A check placed at a gate that runs before what it verifies exists.
    #[error(
        "checks.{id}: needed by tier {needed}, but {provider} provides what it verifies; a tier's gate runs before that tier's apps exist, so it may only check what the foundation or a lower tier provides"
    )]
    Misplaced {
        /// The check.
        id: &'static str,
        /// The tier it was placed at.
        needed: Tier,
        /// What provides it.
        provider: Provider,
    },
    /// A check added to a plan ([`Plan::add`]) under an id the plan already has.
    #[error("check {id:?} is already in the plan")]
    Duplicate {
        /// The id.
        id: &'static str,
    },
    /// A check added to a plan ([`Plan::add`]) that needs a check the plan does not have.
    #[error("check {id:?} needs {need:?}, which is not in the plan")]
    MissingDependency {
        /// The check added.
        id: &'static str,
        /// What it needs.
        need: &'static str,
    },
}

/// A check left out of the plan, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeftOut {
    /// The check's id.
    pub id: &'static str,
    /// The tier it is listed under: the first gate that needs it, or the run's.
    pub tier: Tier,
    /// Who needs it.
    pub needed_by: NeededBy,
    /// Why it does not run.
    pub reason: String,
}

/// What a run will do.
#[derive(Debug)]
pub struct Plan {
    /// A tier's gate or an app's hook.
    pub scope: Scope,
    /// The run's tier: the gate's or the app's; tiers are cumulative.
    pub tier: Tier,
    /// The cluster's ceiling.
    pub ceiling: Ceiling,
    /// The checks to run, by tier.
    pub checks: Vec<Entry>,
    /// Every other check, with its reason.
    pub left_out: Vec<LeftOut>,
}

impl Plan {
    /// Adds a check of the caller's own after the planned ones: a tool built on this crate
    /// runs it with the built-in checks, through the same runner and reports. Its `needs` must
    /// name checks already in the plan (a failure of one blocks it), and its id must be new.
    ///
    /// # Errors
    /// [`PlanError::Duplicate`] or [`PlanError::MissingDependency`].
    pub fn add(&mut self, meta: CheckMeta, check: Arc<dyn Check>) -> Result<(), PlanError> {
        if self.checks.iter().any(|e| e.meta.id == meta.id) {
            return Err(PlanError::Duplicate { id: meta.id });
        }
        if let Some(need) = meta
            .needs
            .iter()
            .find(|n| !self.checks.iter().any(|e| e.meta.id == **n))
        {
            return Err(PlanError::MissingDependency { id: meta.id, need });
        }
        self.checks.push(Entry { meta, check });
        Ok(())
    }

    /// Whether a planned check speaks HTTP through [`Context::http`](crate::check::Context::http):
    /// an HTTPS check, or one that calls a registry's API. The client is built only then.
    #[must_use]
    pub fn uses_http(&self) -> bool {
        self.checks
            .iter()
            .any(|e| e.meta.family == Family::Http || e.check.uses_http())
    }

    /// The CA bundles its checks trust, each with the setting that names it: read them
    /// ([`trust::check_all`](crate::trust::check_all)) before the run.
    #[must_use]
    pub fn ca_bundles(&self) -> Vec<crate::trust::BundleSetting> {
        let mut bundles: Vec<crate::trust::BundleSetting> = Vec::new();
        for bundle in self.checks.iter().flat_map(|e| e.check.ca_bundles()) {
            if !bundles.contains(&bundle) {
                bundles.push(bundle);
            }
        }
        bundles
    }
}

/// The checks picked on the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// `--check`: when not empty, only these run.
    pub only: Vec<String>,
    /// `--skip`: these do not run (e.g. the AWS checks from a machine without AWS access).
    pub skip: Vec<String>,
}

impl Selection {
    /// Only these checks.
    #[must_use]
    pub fn only(ids: &[&str]) -> Self {
        Selection {
            only: ids.iter().map(|id| (*id).to_owned()).collect(),
            skip: Vec::new(),
        }
    }
}

/// Resolves `--app NAME` to the platform's app.
pub fn app_scope(name: &str) -> Result<Scope, PlanError> {
    app_named(name)
        .map(Scope::App)
        .ok_or_else(|| PlanError::UnknownApp {
            place: "--app".to_owned(),
            name: name.to_owned(),
        })
}

/// Whether the registry holds up the gating model: every app named exists, and no check is
/// placed at a gate that runs before what it verifies exists.
fn validate(registry: &[Registered<'_>], values: &Values) -> Result<(), PlanError> {
    for r in registry {
        if let Some(name) = r.needed_by.apps.iter().find(|a| app_named(a).is_none()) {
            return Err(PlanError::UnknownApp {
                place: format!("checks.{}", r.id),
                name: name.clone(),
            });
        }
        if let Some(needed) = r.needed_by.tier {
            let provider = r.provided_by(&Site {
                values,
                scope: Scope::Gate(needed),
            });
            if provider.tier().is_some_and(|p| p >= needed) {
                return Err(PlanError::Misplaced {
                    id: r.id,
                    needed,
                    provider,
                });
            }
        }
    }
    Ok(())
}

/// Why a registered check does not belong in `scope`, if it does not.
fn out_of_scope(r: &Registered<'_>, scope: Scope, values: &Values) -> Option<String> {
    let hooks = || {
        r.needed_by
            .apps
            .iter()
            .map(|a| format!("preflight --app {a}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match scope {
        Scope::Gate(tier) => match r.needed_by.tier {
            None => Some(format!(
                "what an app creates for itself is checked in its own hook ({})",
                hooks()
            )),
            Some(needed) if needed > tier => {
                let mut reason = format!("above the requested tier {tier}");
                if needed == Tier::Three && values.mode.value == Mode::Ephemeral {
                    reason.push_str("; an ephemeral cluster never runs tier 3");
                }
                Some(reason)
            }
            Some(_) => None,
        },
        Scope::App(app) if r.needed_by.apps.iter().any(|a| a == app.name) => None,
        Scope::App(app) => Some(match r.needed_by.tier {
            Some(_) if r.needed_by.apps.is_empty() => {
                format!("checked by the tier gates, not by {}'s hook", app.name)
            }
            Some(_) => format!(
                "checked by the tier gates and in other apps' hooks ({})",
                hooks()
            ),
            None => format!("checked in other apps' hooks ({})", hooks()),
        }),
    }
}

/// A check that verifies a declaration of the bootstrap contract: its failure says the
/// declaration is false.
#[derive(Debug)]
struct Declared {
    inner: Arc<dyn Check>,
    declaration: String,
}

#[async_trait::async_trait]
impl Check for Declared {
    async fn attempt(&self, ctx: &Context) -> Attempt {
        let mut attempt = self.inner.attempt(ctx).await;
        // Only a finding contradicts the declaration; a check that could not look (no
        // credentials, forbidden, unreachable) says nothing about it.
        let could_not_look = attempt.outcome.code.starts_with("aws-")
            || attempt.outcome.code.starts_with("api-")
            || matches!(
                attempt.outcome.code.as_str(),
                "forbidden" | "unauthorized" | "auth-failed" | "timed-out" | "no-aws-client"
            );
        if attempt.outcome.status == crate::outcome::Status::Fail && !could_not_look {
            attempt.outcome.message =
                format!("{}, but {}", self.declaration, attempt.outcome.message);
        }
        attempt
    }

    fn reads(&self) -> crate::reads::Reads {
        self.inner.reads()
    }

    fn ca_bundles(&self) -> Vec<crate::trust::BundleSetting> {
        self.inner.ca_bundles()
    }

    fn uses_http(&self) -> bool {
        self.inner.uses_http()
    }
}

/// Plans a run of `scope` on the cluster described by `values`, of the checks `selection`
/// picks.
pub fn plan(
    values: &Values,
    config: &Config,
    scope: Scope,
    selection: &Selection,
) -> Result<Plan, PlanError> {
    let tier = scope.tier();
    if tier > values.ceiling.tier {
        return Err(PlanError::AboveCeiling {
            scope,
            ceiling: values.ceiling.clone(),
        });
    }
    let all = registry(&config.checks);
    let known: Vec<&'static str> = all.iter().map(|r| r.id).collect();
    let only = &selection.only;
    let named = config
        .disable
        .iter()
        .map(|id| ("config: disable", id))
        .chain(config.advisory.iter().map(|id| ("config: advisory", id)))
        .chain(only.iter().map(|id| ("--check", id)))
        .chain(selection.skip.iter().map(|id| ("--skip", id)));
    for (place, id) in named {
        if !known.contains(&id.as_str()) {
            return Err(PlanError::UnknownCheck {
                place: place.to_owned(),
                id: id.clone(),
                known,
            });
        }
    }
    validate(&all, values)?;
    if let Scope::App(app) = scope {
        let mut hooks: Vec<String> = all.iter().flat_map(|r| r.needed_by.apps.clone()).collect();
        hooks.sort_unstable();
        hooks.dedup();
        if !hooks.iter().any(|h| h == app.name) {
            return Err(PlanError::NoHook {
                app: app.name,
                hooks,
            });
        }
    }

    let site = Site { values, scope };
    let mut checks = Vec::new();
    let mut left_out = Vec::new();
    for r in &all {
        let listed_tier = match scope {
            Scope::Gate(_) => r.needed_by.tier.unwrap_or(tier),
            Scope::App(app) => app.tier,
        };
        let reason = out_of_scope(r, scope, values).or_else(|| {
            if config.disable.iter().any(|d| d == r.id) {
                Some("disabled in the config (disable)".to_owned())
            } else if selection.skip.iter().any(|d| d == r.id) {
                Some("skipped with --skip".to_owned())
            } else if !only.is_empty() && !only.iter().any(|o| o == r.id) {
                Some("not selected with --check".to_owned())
            } else {
                None
            }
        });
        let built = match reason {
            Some(reason) => Err(reason),
            None => r.build(&site),
        };
        match built {
            Err(reason) => left_out.push(LeftOut {
                id: r.id,
                tier: listed_tier,
                needed_by: r.needed_by.clone(),
                reason,
            }),
            Ok(built) => {
                let declaration = r.declared_by.and_then(|flag| {
                    values.declared(flag).map(|source| {
                        format!(
                            "{} is declared true in the bootstrap contract ({source})",
                            flag.key()
                        )
                    })
                });
                let check: Arc<dyn Check> = match declaration {
                    Some(declaration) => Arc::new(Declared {
                        inner: built.check,
                        declaration,
                    }),
                    None => built.check,
                };
                let uses_kubernetes =
                    r.family == Family::Kubernetes || !check.reads().kube.is_empty();
                checks.push(Entry {
                    meta: CheckMeta {
                        id: r.id,
                        title: built.title,
                        tier: listed_tier,
                        family: r.family,
                        provided_by: built.provided_by,
                        needed_by: r.needed_by.clone(),
                        needs: built.needs,
                        required: !config.advisory.iter().any(|a| a == r.id),
                        uses_kubernetes,
                    },
                    check,
                });
            }
        }
    }
    // Reports list by tier; within a tier, in registration order.
    checks.sort_by_key(|e| e.meta.tier);
    left_out.sort_by_key(|l| l.tier);
    // A dependency that does not run blocks nothing: the dependant runs on its own.
    let planned: Vec<&'static str> = checks.iter().map(|e| e.meta.id).collect();
    for entry in &mut checks {
        entry.meta.needs.retain(|n| planned.contains(n));
    }
    Ok(Plan {
        scope,
        tier,
        ceiling: values.ceiling.clone(),
        checks,
        left_out,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::contract::{ContractRules, Origin, ValuesLayer};
    use crate::platform::{APPS, Provider, Scope};

    fn values(yaml: &str) -> Values {
        ValuesLayer::from_yaml(yaml, Origin::File(PathBuf::from("values.yaml")))
            .expect("parses")
            .validate()
            .expect("valid")
    }

    const EPHEMERAL: &str = "bootstrap: {mode: ephemeral, maxTier: '1.5', env: dev, buildId: b1}\n";
    const PERSISTENT: &str =
        "bootstrap: {mode: persistent, env: prod}\nplatform: {rdsAvailable: true}\n";

    fn ids(plan: &Plan) -> Vec<&'static str> {
        plan.checks.iter().map(|e| e.meta.id).collect()
    }

    fn gate(v: &Values, tier: Tier) -> Plan {
        plan(
            v,
            &Config::default(),
            Scope::Gate(tier),
            &Selection::default(),
        )
        .expect("plans")
    }

    fn reason<'a>(p: &'a Plan, id: &str) -> Option<&'a str> {
        p.left_out
            .iter()
            .find(|l| l.id == id)
            .map(|l| l.reason.as_str())
    }

    /// The gating model (brief §1): a tier's gate runs before that tier's apps exist, so
    /// nothing it checks may be provided by its own tier or a higher one. Checked for every
    /// gate over the whole catalogue, with the platform's defaults; and for every app hook,
    /// nothing comes from a later app or a higher tier.
    #[test]
    fn no_gate_checks_what_its_own_tier_or_a_later_one_provides() {
        let v = values(PERSISTENT);
        for tier in Tier::ALL {
            let p = gate(&v, tier);
            for e in &p.checks {
                assert!(
                    e.meta.provided_by.tier().is_none_or(|t| t < tier),
                    "the tier-{tier} gate checks {}, which {} provides",
                    e.meta.id,
                    e.meta.provided_by
                );
                assert!(
                    e.meta.needed_by.tier.is_some_and(|n| n <= tier),
                    "{}",
                    e.meta.id
                );
            }
        }
        for app in &APPS {
            let Ok(p) = plan(
                &v,
                &Config::default(),
                Scope::App(app),
                &Selection::default(),
            ) else {
                continue;
            };
            for e in &p.checks {
                let ok = match e.meta.provided_by {
                    Provider::Foundation(_) => true,
                    Provider::App(by) => {
                        by.name == app.name
                            || by.tier < app.tier
                            || (by.tier == app.tier && by.wave < app.wave)
                    }
                    Provider::Tier(t, _) => t < app.tier,
                };
                assert!(
                    ok,
                    "{}'s hook checks {}, provided by {}",
                    app.name, e.meta.id, e.meta.provided_by
                );
            }
        }
    }

    #[test]
    fn each_gate_runs_what_its_tier_needs_and_nothing_it_installs() {
        let v = values(PERSISTENT);
        assert_eq!(
            ids(&gate(&v, Tier::Zero)),
            ["kube-api", "nodes-ready", "coredns", "cni"]
        );
        let tier1 = gate(&v, Tier::One);
        assert_eq!(
            ids(&tier1)[4..],
            [
                "route53-zone",
                "image-architecture",
                "irsa-roles",
                "tier-gating",
                "sync-waves",
                "admission-webhooks"
            ],
            "tier 1 installs External Secrets, cert-manager, Kong and ExternalDNS: its gate checks none of them"
        );
        assert_eq!(reason(&tier1, "crds"), Some("above the requested tier 1"));
        assert_eq!(
            ids(&gate(&v, Tier::OneAndHalf))[10..],
            [
                "lower-tiers-healthy",
                "crds",
                "ingress-class",
                "ingress-hosts",
                "irsa",
                "external-dns-confined",
                "dns-scope",
                "storage-class"
            ]
        );
        let tier2 = gate(&v, Tier::Two);
        assert_eq!(
            ids(&tier2)[18..],
            [
                "cluster-secret-store",
                "observability-crds",
                "rds-instance",
                "s3-bucket",
                "secrets-manager",
                "cluster-issuers",
                "postgres"
            ]
        );
        assert_eq!(
            reason(&tier2, "external-secrets"),
            Some(
                "what an app creates for itself is checked in its own hook (preflight --app backstage)"
            )
        );
        let postgres = tier2
            .checks
            .iter()
            .find(|e| e.meta.id == "postgres")
            .expect("planned");
        assert_eq!(postgres.meta.needs, ["secrets-manager", "rds-instance"]);
        assert!(
            postgres
                .meta
                .title
                .contains("remote secret goldenpath/prod/backstage/postgres")
        );
        assert!(
            !postgres.meta.title.contains("keycloak"),
            "Keycloak's database waits for tier 3: {}",
            postgres.meta.title
        );
        let tier3 = gate(&v, Tier::Three);
        assert_eq!(
            ids(&tier3),
            ids(&tier2),
            "tier 3's realm is checked by oidc-config's hook"
        );
        // Keycloak's own database login is checked before Keycloak syncs, with its remote
        // secret.
        let postgres = tier3
            .checks
            .iter()
            .find(|e| e.meta.id == "postgres")
            .expect("planned");
        assert!(
            postgres
                .meta
                .title
                .contains("keycloak from remote secret goldenpath/prod/keycloak/postgres"),
            "{}",
            postgres.meta.title
        );
    }

    #[test]
    fn an_apps_hook_runs_what_the_app_creates_for_itself() {
        let v = values(PERSISTENT);
        let backstage = app_scope("backstage").expect("an app");
        let p = plan(&v, &Config::default(), backstage, &Selection::default()).expect("plans");
        assert_eq!(ids(&p), ["external-secrets", "postgres"]);
        let postgres = &p.checks[1];
        assert_eq!(postgres.meta.needs, ["external-secrets"]);
        assert!(
            postgres
                .meta
                .title
                .contains("Secret backstage/backstage-secrets")
        );
        assert_eq!(
            postgres.meta.provided_by.to_string(),
            "backstage (tier 2, wave 100)"
        );
        let oidc = plan(
            &v,
            &Config::default(),
            app_scope("oidc-config").expect("an app"),
            &Selection::default(),
        )
        .expect("plans");
        assert_eq!(ids(&oidc), ["keycloak-realm"]);
        let err = plan(
            &v,
            &Config::default(),
            app_scope("kong").expect("an app"),
            &Selection::default(),
        )
        .expect_err("no hook");
        assert_eq!(
            err.to_string(),
            "app kong has no hook: no check verifies what it creates for itself (apps with hooks: backstage, oidc-config)"
        );
        assert!(
            app_scope("nope")
                .expect_err("unknown")
                .to_string()
                .starts_with("--app: unknown app \"nope\"")
        );
        let ephemeral = values(EPHEMERAL);
        assert!(
            plan(
                &ephemeral,
                &Config::default(),
                backstage,
                &Selection::default()
            )
            .expect_err("above the ceiling")
            .to_string()
            .starts_with("app backstage (tier 2) is above this cluster's ceiling 1.5")
        );
    }

    /// A database is checked where its app's tier is gated (or in its app's hook), wherever
    /// its credentials come from.
    #[test]
    fn a_database_is_checked_at_its_apps_tier_only() {
        let mut config = Config::default();
        config
            .checks
            .postgres
            .databases
            .push(crate::checks::postgres::PostgresTarget {
                host: Some("keycloak-db.internal".into()),
                user: Some("keycloak_app".into()),
                database: Some("keycloak".into()),
                password_env: Some("KEYCLOAK_DB_PASSWORD".into()),
                ..crate::checks::postgres::PostgresTarget::for_app("keycloak")
            });
        let v = values(PERSISTENT);
        let title = |scope: Scope| {
            plan(&v, &config, scope, &Selection::only(&["postgres"]))
                .expect("plans")
                .checks
                .first()
                .map(|e| e.meta.title.clone())
                .unwrap_or_default()
        };
        assert!(!title(Scope::Gate(Tier::Two)).contains("keycloak"));
        assert!(title(Scope::Gate(Tier::Three)).contains("keycloak from the config"));
        let backstage = title(app_scope("backstage").expect("an app"));
        assert!(
            backstage.contains("backstage from Secret") && !backstage.contains("keycloak"),
            "{backstage}"
        );
    }

    #[test]
    fn a_check_placed_before_its_provider_is_a_configuration_error() {
        let mut config = Config::default();
        config.checks.cluster_issuers.tier = Tier::One;
        let err = plan(
            &values(PERSISTENT),
            &config,
            Scope::Gate(Tier::Zero),
            &Selection::default(),
        )
        .expect_err("misplaced");
        assert_eq!(
            err.to_string(),
            "checks.cluster-issuers: needed by tier 1, but cert-manager (tier 1) provides what it verifies; a tier's gate runs before that tier's apps exist, so it may only check what the foundation or a lower tier provides"
        );
        config.checks.cluster_issuers.tier = Tier::OneAndHalf;
        let p = plan(
            &values(PERSISTENT),
            &config,
            Scope::Gate(Tier::OneAndHalf),
            &Selection::default(),
        )
        .expect("plans");
        assert!(ids(&p).contains(&"cluster-issuers"));
        let mut config = Config::default();
        config.checks.external_secrets.secrets[0].app = "bakstage".into();
        assert_eq!(
            plan(
                &values(PERSISTENT),
                &config,
                Scope::Gate(Tier::One),
                &Selection::default()
            )
            .expect_err("unknown app")
            .to_string()
            .split(" (")
            .next(),
            Some("checks.external-secrets: unknown app \"bakstage\"")
        );
    }

    #[test]
    fn a_failed_declaration_says_it_was_declared() {
        let v = values(
            "bootstrap: {mode: persistent, env: prod}\nplatform:\n  rdsAvailable: true\n  storageClassReady: true\n",
        );
        let p = gate(&v, Tier::Two);
        let storage = p
            .checks
            .iter()
            .find(|e| e.meta.id == "storage-class")
            .expect("planned");
        assert!(format!("{:?}", storage.check).contains(
            "platform.storageClassReady is declared true in the bootstrap contract (values.yaml:4)"
        ));
        let nodes = p
            .checks
            .iter()
            .find(|e| e.meta.id == "nodes-ready")
            .expect("planned");
        assert!(!format!("{:?}", nodes.check).contains("declared"));
    }

    #[derive(Debug)]
    struct Fails;

    #[async_trait::async_trait]
    impl Check for Fails {
        async fn attempt(&self, _: &Context) -> Attempt {
            Attempt::settled(crate::outcome::Outcome::fail(
                "rds-instance-not-found",
                "RDS instance goldenpath-prod does not exist",
            ))
        }
        fn reads(&self) -> crate::reads::Reads {
            crate::reads::Reads::default()
        }
    }

    #[tokio::test]
    async fn a_declaration_found_false_is_named_in_the_failure() {
        let declared = Declared {
            inner: Arc::new(Fails),
            declaration:
                "platform.rdsAvailable is declared true in the bootstrap contract (values.yaml:6)"
                    .into(),
        };
        let attempt = declared.attempt(&Context::default()).await;
        assert_eq!(
            attempt.outcome.message,
            "platform.rdsAvailable is declared true in the bootstrap contract (values.yaml:6), but RDS instance goldenpath-prod does not exist"
        );
        assert_eq!(attempt.outcome.code, "rds-instance-not-found");
        let unreachable = Declared {
            inner: Arc::new(Unreachable),
            declaration: "platform.rdsAvailable is declared true".into(),
        };
        let attempt = unreachable.attempt(&Context::default()).await;
        assert_eq!(attempt.outcome.message, "cannot reach the RDS API");
    }

    #[derive(Debug)]
    struct Unreachable;

    #[async_trait::async_trait]
    impl Check for Unreachable {
        async fn attempt(&self, _: &Context) -> Attempt {
            Attempt::transient(crate::outcome::Outcome::fail(
                "aws-unreachable",
                "cannot reach the RDS API",
            ))
        }
        fn reads(&self) -> crate::reads::Reads {
            crate::reads::Reads::default()
        }
    }

    #[test]
    fn refuses_a_tier_above_the_ceiling_naming_the_rule() {
        let err = plan(
            &values(EPHEMERAL),
            &Config::default(),
            Scope::Gate(Tier::Two),
            &Selection::default(),
        )
        .expect_err("above");
        assert!(
            err.to_string().starts_with(
                "tier 2 is above this cluster's ceiling 1.5: under the V1 contract rules"
            ),
            "{err}"
        );
        let adr = ValuesLayer::from_yaml(
            "bootstrap: {mode: ephemeral, maxTier: '2', env: dev, buildId: b1}\nplatform: {rdsAvailable: true}\n",
            Origin::File(PathBuf::from("values.yaml")),
        )
        .and_then(|l| l.validate_with(ContractRules::Adr0180))
        .expect("valid under ADR-0180");
        assert_eq!(gate(&adr, Tier::Two).tier, Tier::Two);
    }

    #[test]
    fn leaves_out_disabled_and_unselected_checks_and_drops_their_edges() {
        let config = Config {
            disable: vec!["irsa".into()],
            ..Config::default()
        };
        let p = plan(
            &values(PERSISTENT),
            &config,
            Scope::Gate(Tier::Two),
            &Selection {
                only: vec!["cluster-secret-store".into(), "irsa".into()],
                skip: vec!["ingress-class".into()],
            },
        )
        .expect("plans");
        assert_eq!(ids(&p), ["cluster-secret-store"]);
        assert!(
            p.checks[0].meta.needs.is_empty(),
            "crds is not planned, so it blocks nothing"
        );
        assert_eq!(reason(&p, "irsa"), Some("disabled in the config (disable)"));
        assert_eq!(reason(&p, "crds"), Some("not selected with --check"));
        assert_eq!(reason(&p, "ingress-class"), Some("skipped with --skip"));
    }

    #[test]
    fn rejects_unknown_check_ids() {
        let err = plan(
            &values(EPHEMERAL),
            &Config::default(),
            Scope::Gate(Tier::One),
            &Selection::only(&["nodes"]),
        )
        .expect_err("unknown");
        assert!(
            err.to_string()
                .starts_with("--check: unknown check \"nodes\" (known: kube-api, nodes-ready"),
            "{err}"
        );
    }

    #[test]
    fn marks_advisory_checks_not_required() {
        let config = Config {
            advisory: vec!["storage-class".into()],
            ..Config::default()
        };
        let p = plan(
            &values(EPHEMERAL),
            &config,
            Scope::Gate(Tier::OneAndHalf),
            &Selection::default(),
        )
        .expect("plans");
        let required: Vec<bool> = p
            .checks
            .iter()
            .filter(|e| e.meta.id == "storage-class")
            .map(|e| e.meta.required)
            .collect();
        assert_eq!(required, [false]);
    }
}
