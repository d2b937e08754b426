//! `preflight rbac` and `preflight iam-policy`: what a tier's gate (or an app's hook) reads, as
//! the RBAC of its ServiceAccount and the IAM policy of its role.
//!
//! Both are written before any cluster exists (into `hooks/`, or a Terraform role), so they
//! need only the values that change what they print:
//! - the mode, when given (`--mode`, `PREFLIGHT_MODE`, `--values`), picks that mode's plan;
//!   without it, they grant what the plan of either mode reads (a mode whose cluster cannot
//!   run the tier, e.g. an ephemeral one above tier 1.5, is left out, and the output says so);
//! - the values that only name things (`bootstrap.env`, `bootstrap.buildId`) are filled in with
//!   each possible value in turn: when the output is the same for all of them, it does not
//!   depend on them and they are not needed; when it differs (the IAM policy names the
//!   environment's resources), the command asks for the one it needs (exit 2);
//! - `platform.rdsAvailable`, when no source sets it, is taken as true: a cluster that runs
//!   tier 2 has RDS by the contract, so the tiers that read it are granted what they read.
//!
//! Values that are given are never replaced, and are validated as for a run.

use std::io::Write as _;

use anyhow::bail;
use clap::ArgMatches;
use preflight_core::access;
use preflight_core::contract::{ENVIRONMENTS, Mode, Source, Sourced, ValuesLayer};
use preflight_core::exit;
use preflight_core::plan::Plan;
use preflight_core::platform::Scope;
use preflight_core::reads::KubeRead;

use crate::cli::{Common, IamPolicyArgs, RbacArgs};

/// Two build ids: an output that differs between them names the build.
const BUILD_IDS: [&str; 2] = ["00-00-00-00", "99-99-99-99"];

/// How the values left unset were filled in for one rendering.
#[derive(Clone, Copy, Debug)]
struct Filling {
    env: Option<&'static str>,
    build_id: Option<&'static str>,
}

/// The plans of one filling: one per mode that can run the scope.
struct Plans {
    /// Each mode's plan (one when the mode was given).
    plans: Vec<(Mode, Plan)>,
    /// The modes left out, and why (their cluster cannot run the scope).
    left_out: Vec<(Mode, String)>,
    /// Whether the mode was given, rather than every mode tried.
    mode_given: bool,
}

impl Plans {
    /// One plan whose checks are every mode's: what it reads is the union of what they read
    /// (the RBAC and IAM renderings merge duplicate reads).
    fn union(self) -> Plan {
        let mut plans = self.plans.into_iter().map(|(_, p)| p);
        let mut union = plans.next().expect("at least one mode plans");
        for plan in plans {
            union.checks.extend(plan.checks);
        }
        union
    }

    /// What the output was generated for, when no mode was given: a sentence per line.
    fn note(&self, what: &str) -> Option<Vec<String>> {
        if self.mode_given {
            return None;
        }
        let scope = match self.plans.first()?.1.scope {
            Scope::Gate(tier) => format!("tier-{tier} gate"),
            Scope::App(app) => format!("{} hook", app.name),
        };
        let modes: Vec<&str> = self.plans.iter().map(|(m, _)| m.as_str()).collect();
        let mut lines = vec![match modes.as_slice() {
            [mode] => format!(
                "{what} of preflight's {scope} on a {mode} cluster: no bootstrap mode was given \
                 (--mode, PREFLIGHT_MODE or --values), and only {} {mode} cluster can run it.",
                article(mode)
            ),
            _ => format!(
                "{what} of preflight's {scope} on a cluster of either mode ({}): no bootstrap \
                 mode was given (--mode, PREFLIGHT_MODE or --values), so what either mode's \
                 plan reads is granted.",
                modes.join(" or ")
            ),
        }];
        for (mode, why) in &self.left_out {
            lines.push(format!(
                "Not for {} {} cluster: {why}",
                article(mode.as_str()),
                mode.as_str()
            ));
        }
        Some(lines)
    }
}

/// A value assumed for generating access, not read from any source.
fn assumed(value: &str, why: &str) -> Sourced<String> {
    Sourced::new(
        value.to_owned(),
        Source::Derived {
            rule: format!("assumed for access: {why}"),
        },
    )
}

/// The plans of `common`'s scope with the values left unset filled in as `filling` says.
fn plans(common: &Common, matches: &ArgMatches, filling: Filling) -> anyhow::Result<Plans> {
    let config = crate::load_config(common)?;
    let given = crate::file_layer(common)?.merge(common.layer(matches));
    let mode_given = given.mode.is_some();
    let modes: Vec<Option<Mode>> = if mode_given {
        vec![None]
    } else {
        vec![Some(Mode::Ephemeral), Some(Mode::Persistent)]
    };
    let mut plans = Plans {
        plans: Vec::new(),
        left_out: Vec::new(),
        mode_given,
    };
    let mut errors = Vec::new();
    for mode in modes {
        let mut layer: ValuesLayer = given.clone();
        if let Some(mode) = mode {
            layer.mode = Some(assumed(mode.as_str(), "each mode in turn, none was given"));
        }
        if let (None, Some(env)) = (&layer.env, filling.env) {
            layer.env = Some(assumed(env, "no environment was given"));
        }
        let ephemeral = layer
            .mode
            .as_ref()
            .is_some_and(|m| m.value == Mode::Ephemeral.as_str());
        if let (true, None, Some(id)) = (ephemeral, &layer.build_id, filling.build_id) {
            layer.build_id = Some(assumed(id, "no build id was given"));
        }
        if layer.rds_available.is_none() {
            layer.rds_available = Some(Sourced::new(
                true,
                Source::Derived {
                    rule: "assumed for access: a cluster that runs tier 2 has RDS".to_owned(),
                },
            ));
        }
        let planned = crate::validate(layer, common)
            .and_then(|values| crate::make_plan(&values, &config, common).map(|p| (values, p)));
        match (mode, planned) {
            (_, Ok((values, plan))) => plans.plans.push((values.mode.value, plan)),
            // The mode given is the cluster's: its error is the answer.
            (None, Err(e)) => return Err(e),
            (Some(mode), Err(e)) => {
                errors.push(format!(
                    "{} {} cluster: {e:#}",
                    article(mode.as_str()),
                    mode.as_str()
                ));
                plans.left_out.push((mode, format!("{e:#}")));
            }
        }
    }
    if plans.plans.is_empty() {
        bail!(
            "no cluster of either mode can run this (give the bootstrap values with --values or \
             flags):\n  {}",
            errors.join("\n  ")
        );
    }
    Ok(plans)
}

/// Renders the output for every filling of the values left unset, and returns it when they
/// all agree, with the union plan's note; otherwise names the value the output depends on.
fn generate<T: PartialEq>(
    common: &Common,
    matches: &ArgMatches,
    what: &str,
    render: impl Fn(&Plan) -> T,
) -> anyhow::Result<(T, Option<Vec<String>>)> {
    let given = crate::file_layer(common)?.merge(common.layer(matches));
    let envs: Vec<Option<&'static str>> = match given.env {
        Some(_) => vec![None],
        None => ENVIRONMENTS.iter().copied().map(Some).collect(),
    };
    let build_ids: Vec<Option<&'static str>> = match given.build_id {
        Some(_) => vec![None],
        None => BUILD_IDS.iter().copied().map(Some).collect(),
    };
    let first = Filling {
        env: envs[0],
        build_id: build_ids[0],
    };
    let plans_of_first = plans(common, matches, first)?;
    let note = plans_of_first.note(what);
    let output = render(&plans_of_first.union());
    // Each unset value varied alone: the one the output changes with is the one it names.
    for env in &envs[1..] {
        let other = plans(common, matches, Filling { env: *env, ..first })?;
        if render(&other.union()) != output {
            bail!(
                "{what} names the environment's resources (goldenpath-{{env}}-…): give \
                 bootstrap.env with --env, PREFLIGHT_ENV or --values FILE"
            );
        }
    }
    for id in &build_ids[1..] {
        let other = plans(
            common,
            matches,
            Filling {
                build_id: *id,
                ..first
            },
        )?;
        if render(&other.union()) != output {
            bail!(
                "{what} names the build's resources: give bootstrap.buildId with --build-id, \
                 PREFLIGHT_BUILD_ID or --values FILE"
            );
        }
    }
    Ok((output, note))
}

/// `preflight rbac`: the RBAC as YAML; when no mode was given, a comment header says which
/// modes it covers.
pub(crate) fn show_rbac(args: &RbacArgs, matches: &ArgMatches) -> anyhow::Result<i32> {
    let mut extra = Vec::new();
    if !args.no_cluster_values {
        let cm = args.values_configmap.clone();
        extra.push(KubeRead {
            group: "",
            resource: "configmaps",
            namespace: Some(cm.namespace),
            names: vec![cm.name],
        });
    }
    let (rbac, note) = generate(&args.common, matches, "the RBAC", |plan| {
        access::rbac(plan, &args.namespace, &extra)
    })?;
    let header: String = note
        .into_iter()
        .flatten()
        .map(|line| format!("# {}\n", capitalised(&line)))
        .collect();
    crate::print(&format!("{header}{rbac}"))
}

/// `preflight iam-policy`: the policy as JSON, which has no comments: when no mode was given,
/// which modes it covers is said on stderr.
pub(crate) fn show_iam_policy(args: &IamPolicyArgs, matches: &ArgMatches) -> anyhow::Result<i32> {
    let (policy, note) = generate(&args.common, matches, "the IAM policy", |plan| {
        access::iam_policy(plan).ok_or(plan.scope)
    })?;
    let mut err = std::io::stderr();
    for line in note.into_iter().flatten() {
        let _ = writeln!(err, "preflight: {}", capitalised(&line));
    }
    match policy {
        Ok(policy) => crate::print(&policy),
        Err(scope) => {
            let _ = writeln!(
                err,
                "preflight: no AWS check is planned for {scope}: no IAM policy is needed"
            );
            Ok(exit::PASSED)
        }
    }
}

/// "a" or "an", before `word`.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// A sentence's first letter in upper case.
fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::PathBuf;

    use preflight_core::Tier;
    use preflight_core::config::Config;
    use preflight_core::contract::{Origin, ValuesLayer};
    use preflight_core::plan::{Selection, plan};

    use super::*;

    fn planned(yaml: &str, tier: Tier) -> Plan {
        let values = ValuesLayer::from_yaml(yaml, Origin::File(PathBuf::from("values.yaml")))
            .and_then(ValuesLayer::validate)
            .expect("valid values");
        plan(
            &values,
            &Config::default(),
            Scope::Gate(tier),
            &Selection::default(),
        )
        .expect("plans")
    }

    /// The rules of the RBAC, by kind and namespace (object names follow the first plan).
    fn rules(plan: &Plan) -> BTreeMap<(String, String), BTreeSet<String>> {
        let mut rules: BTreeMap<_, BTreeSet<String>> = BTreeMap::new();
        for doc in access::rbac(plan, "argocd", &[]).split("---\n") {
            let doc: serde_json::Value = serde_saphyr::from_str(doc).expect("YAML");
            let key = (
                doc["kind"].as_str().unwrap_or_default().to_owned(),
                doc["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
            let entry = rules.entry(key).or_default();
            for rule in doc["rules"].as_array().into_iter().flatten() {
                entry.insert(rule.to_string());
            }
        }
        rules
    }

    const EPHEMERAL: &str = "bootstrap: {mode: ephemeral, env: dev, buildId: b1}\n";
    const PERSISTENT: &str =
        "bootstrap: {mode: persistent, env: dev}\nplatform: {rdsAvailable: true}\n";

    /// The union grants exactly what its plans read together: here a plan that reads less
    /// (tier 1) and one that reads more (tier 3), so that dropping either would show.
    #[test]
    fn the_union_grants_what_every_plan_reads() {
        let small = rules(&planned(EPHEMERAL, Tier::One));
        let large = rules(&planned(PERSISTENT, Tier::Three));
        assert_ne!(small, large, "the two plans read different things");
        let mut expected = small.clone();
        for (key, set) in &large {
            expected
                .entry(key.clone())
                .or_default()
                .extend(set.iter().cloned());
        }
        for order in [
            [
                (Mode::Ephemeral, Tier::One),
                (Mode::Persistent, Tier::Three),
            ],
            [
                (Mode::Persistent, Tier::Three),
                (Mode::Ephemeral, Tier::One),
            ],
        ] {
            let plans = Plans {
                plans: order
                    .iter()
                    .map(|&(mode, tier)| {
                        let yaml = match mode {
                            Mode::Ephemeral => EPHEMERAL,
                            Mode::Persistent => PERSISTENT,
                        };
                        (mode, planned(yaml, tier))
                    })
                    .collect(),
                left_out: Vec::new(),
                mode_given: false,
            };
            assert_eq!(rules(&plans.union()), expected, "{order:?}");
        }
    }
}
