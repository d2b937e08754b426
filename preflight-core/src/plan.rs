//! The plan: which checks a run of a tier performs, and why every other check is left out.
//! Building it contacts nothing.

use serde::Serialize;

use crate::checks::{Entry, catalogue};
use crate::config::Config;
use crate::contract::{Ceiling, Mode, Values};
use crate::tier::Tier;

/// Why a plan cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The requested tier is above what this cluster may run.
    #[error("tier {requested} is above this cluster's ceiling {}: {}", ceiling.tier, ceiling.rule)]
    AboveCeiling {
        /// The tier asked for.
        requested: Tier,
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
}

/// A check left out of the plan, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeftOut {
    /// The check's id.
    pub id: &'static str,
    /// Its tier.
    pub tier: Tier,
    /// What it would verify.
    pub title: String,
    /// Why it does not run.
    pub reason: String,
}

/// What a run will do.
#[derive(Debug)]
pub struct Plan {
    /// The tier asked for; tiers are cumulative.
    pub tier: Tier,
    /// The cluster's ceiling.
    pub ceiling: Ceiling,
    /// The checks to run, by tier.
    pub checks: Vec<Entry>,
    /// Every other check, with its reason.
    pub left_out: Vec<LeftOut>,
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

/// Plans a run of `tier` on the cluster described by `values`, of the checks `selection`
/// picks.
pub fn plan(
    values: &Values,
    config: &Config,
    tier: Tier,
    selection: &Selection,
) -> Result<Plan, PlanError> {
    let only = &selection.only;
    if tier > values.ceiling.tier {
        return Err(PlanError::AboveCeiling {
            requested: tier,
            ceiling: values.ceiling.clone(),
        });
    }
    let all = catalogue(values, config);
    let known: Vec<&'static str> = all.iter().map(|e| e.meta.id).collect();
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

    let mut checks = Vec::new();
    let mut left_out = Vec::new();
    for entry in all {
        let meta = &entry.meta;
        let reason = if meta.tier > tier {
            let mut reason = format!("tier {} is above the requested tier {tier}", meta.tier);
            if meta.tier == Tier::Three && values.mode.value == Mode::Ephemeral {
                reason.push_str("; an ephemeral cluster never runs tier 3");
            }
            Some(reason)
        } else if config.disable.iter().any(|d| d == meta.id) {
            Some("disabled in the config (disable)".to_owned())
        } else if selection.skip.iter().any(|d| d == meta.id) {
            Some("skipped with --skip".to_owned())
        } else if !only.is_empty() && !only.iter().any(|o| o == meta.id) {
            Some("not selected with --check".to_owned())
        } else {
            None
        };
        match reason {
            Some(reason) => left_out.push(LeftOut {
                id: meta.id,
                tier: meta.tier,
                title: meta.title.clone(),
                reason,
            }),
            None => checks.push(entry),
        }
    }
    // A dependency that does not run blocks nothing: the dependant runs on its own.
    let planned: Vec<&'static str> = checks.iter().map(|e| e.meta.id).collect();
    for entry in &mut checks {
        entry.meta.needs.retain(|n| planned.contains(n));
    }
    Ok(Plan {
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
    use crate::contract::{Origin, ValuesLayer};

    fn values(yaml: &str) -> Values {
        ValuesLayer::from_yaml(yaml, Origin::File(PathBuf::from("values.yaml")))
            .expect("parses")
            .validate()
            .expect("valid")
    }

    const EPHEMERAL: &str = "bootstrap: {mode: ephemeral, maxTier: '1.5', env: dev, buildId: b1}\n";

    fn ids(plan: &Plan) -> Vec<&'static str> {
        plan.checks.iter().map(|e| e.meta.id).collect()
    }

    #[test]
    fn runs_every_tier_up_to_the_requested_one() {
        let v = values(EPHEMERAL);
        let p = plan(&v, &Config::default(), Tier::Zero, &Selection::default()).expect("plans");
        assert_eq!(ids(&p), ["kube-api", "nodes-ready", "coredns", "cni"]);
        let storage = p
            .left_out
            .iter()
            .find(|l| l.id == "storage-class")
            .expect("left out");
        assert_eq!(storage.reason, "tier 1.5 is above the requested tier 0");
        let p = plan(
            &v,
            &Config::default(),
            Tier::OneAndHalf,
            &Selection::default(),
        )
        .expect("plans");
        assert_eq!(p.checks.len(), 13);
        let left: Vec<(&str, &str)> = p
            .left_out
            .iter()
            .map(|l| (l.id, l.reason.as_str()))
            .collect();
        assert_eq!(
            left,
            [
                ("external-secrets", "tier 2 is above the requested tier 1.5"),
                ("postgres", "tier 2 is above the requested tier 1.5"),
                ("rds-instance", "tier 2 is above the requested tier 1.5"),
                ("cluster-issuers", "tier 2 is above the requested tier 1.5"),
                (
                    "keycloak-realm",
                    "tier 3 is above the requested tier 1.5; an ephemeral cluster never runs tier 3"
                )
            ]
        );
        let persistent = values("bootstrap: {mode: persistent, env: prod}\n");
        let p = plan(
            &persistent,
            &Config::default(),
            Tier::Three,
            &Selection::default(),
        )
        .expect("plans");
        assert!(p.left_out.is_empty(), "{:?}", p.left_out);
    }

    #[test]
    fn refuses_a_tier_above_the_ceiling_naming_the_rule() {
        let err = plan(
            &values(EPHEMERAL),
            &Config::default(),
            Tier::Two,
            &Selection::default(),
        )
        .expect_err("above");
        assert_eq!(
            err.to_string(),
            "tier 2 is above this cluster's ceiling 1.5: bootstrap.maxTier is 1.5 (values.yaml:1)"
        );
    }

    #[test]
    fn leaves_out_disabled_and_unselected_checks_and_drops_their_edges() {
        let config = Config {
            disable: vec!["irsa".into()],
            ..Config::default()
        };
        let p = plan(
            &values(EPHEMERAL),
            &config,
            Tier::One,
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
        let reason = |id: &str| {
            p.left_out
                .iter()
                .find(|l| l.id == id)
                .map(|l| l.reason.clone())
        };
        assert_eq!(
            reason("irsa").as_deref(),
            Some("disabled in the config (disable)")
        );
        assert_eq!(reason("crds").as_deref(), Some("not selected with --check"));
        assert_eq!(
            reason("ingress-class").as_deref(),
            Some("skipped with --skip")
        );
    }

    #[test]
    fn rejects_unknown_check_ids() {
        let err = plan(
            &values(EPHEMERAL),
            &Config::default(),
            Tier::One,
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
            Tier::OneAndHalf,
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
