//! `external-dns-confined`: ExternalDNS is confined to the domain this cluster owns. It reads
//! the flags of ExternalDNS's Deployment, not DNS records (the records are `dns-scope`'s
//! business), so a misconfigured ExternalDNS fails here even where it has written nothing yet.
//!
//! It is not a guard before ExternalDNS's first write: ExternalDNS (tier 1, wave 20) runs from
//! wave 20, and tier 1.5's gate (wave 49) is the first to run this check. By then whatever
//! tier 1's apps publish (an Ingress or Service with a public host) is already written. What it
//! guards is the first app with public hosts, tier 1.5's Grafana: a misconfigured ExternalDNS
//! stops the sync before Grafana's Ingress gets its record.
//!
//! Flags are read from the container's `command` and `args` (`--flag=value` or `--flag value`;
//! `--domain-filter` and `--exclude-domains` repeat and accumulate) and, for a flag absent from
//! them, from ExternalDNS's `EXTERNAL_DNS_<FLAG>` environment variables (one value a line), as
//! its flag parser (kingpin, with default envars) reads them. A flag set only through an
//! environment variable's `valueFrom` cannot be verified and fails.
//!
//! The rules, with `hostSuffix`, the owner id and the mode from the bootstrap contract, and the
//! environment's zone `{env}.{baseDomain}`:
//! - `--regex-domain-filter`, when set, replaces `--domain-filter` and `--exclude-domains` in
//!   ExternalDNS. preflight does not evaluate regular expressions: on an ephemeral cluster it
//!   fails (the confinement cannot be proven), on a persistent one it warns.
//! - **Ephemeral**: at least one `--domain-filter`, each equal to `hostSuffix` or under it.
//!   None at all fails (ExternalDNS manages every zone its IAM role reaches, the persistent
//!   `*.{env}` zone included); a wider one (`dev.goldenpathidp.io`) fails, naming it.
//! - **Persistent**: at least one `--domain-filter`, each equal to the environment's zone or
//!   under it (a wider one manages other environments' zones) and none inside a build
//!   subdomain `b-{buildId}.{env}.{baseDomain}`, which belongs to an ephemeral cluster. The
//!   build subdomains under the environment's zone cannot be excluded by name in advance
//!   (`--exclude-domains` takes names, not patterns, and build ids are new every day), so what
//!   keeps a persistent cluster's ExternalDNS away from them is ownership: the TXT registry,
//!   with this cluster's own owner id, never lets it change or delete a record another owner
//!   wrote. `--exclude-domains` may list build subdomains or nothing; it is reported.
//! - Both: `--txt-owner-id` equals the contract's owner id; missing fails (ExternalDNS then
//!   writes as `default`, an id every such cluster shares); another id fails.
//! - `--registry=noop` writes no ownership records: on an ephemeral cluster, confined to its
//!   build subdomain, it warns (it may overwrite what another writer put there, and
//!   `dns-scope` cannot see what it wrote); on a persistent cluster it fails, since ownership
//!   is what keeps it out of the build subdomains its filter covers.
//! - When no filter covers `hostSuffix`, or `--exclude-domains` excludes it, ExternalDNS
//!   publishes none of the apps' hosts: a warning, since it stays confined.
//! - `--policy` (`sync` deletes the records it no longer sees; `upsert-only` never deletes)
//!   and `--registry` are reported in the message and the evidence.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::fetch::{self, DEPLOYMENTS};
use crate::check::ObjectRef;
use crate::check::{Attempt, Check, Context};
use crate::check::{Built, Definition, Family, Site};
use crate::contract::{Mode, Values};
use crate::dns::{build_subdomain, is_within};
use crate::outcome::{Outcome, Status};
use crate::platform::{NeededBy, Provider};
use crate::reads::Reads;
use crate::tier::Tier;

/// `checks.external-dns-confined`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ExternalDnsConfinedSettings {
    /// ExternalDNS's Deployment, `namespace/name`.
    pub deployment: ObjectRef,
    /// The container running ExternalDNS; by default the one named `external-dns`, or the
    /// Deployment's only container.
    pub container: Option<String>,
}

impl Default for ExternalDnsConfinedSettings {
    fn default() -> Self {
        ExternalDnsConfinedSettings {
            deployment: ObjectRef::new("external-dns", "external-dns"),
            container: None,
        }
    }
}

/// The container name ExternalDNS's chart gives its container.
const CONTAINER: &str = "external-dns";

/// The prefix of ExternalDNS's environment variables: `--domain-filter` is
/// `EXTERNAL_DNS_DOMAIN_FILTER`.
const ENV_PREFIX: &str = "EXTERNAL_DNS_";

/// The flags judged here; their values are what the evidence reports.
const JUDGED: [&str; 7] = [
    "domain-filter",
    "exclude-domains",
    "regex-domain-filter",
    "regex-domain-exclusion",
    "txt-owner-id",
    "policy",
    "registry",
];

/// A Deployment, reduced to its pod template's containers.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct DeploymentDoc {
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    spec: DeploymentSpec,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct DeploymentSpec {
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    template: PodTemplate,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct PodTemplate {
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    spec: PodSpec,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct PodSpec {
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    containers: Vec<ContainerDoc>,
}

/// A container's name, command line and environment.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ContainerDoc {
    #[serde(default)]
    name: String,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    command: Vec<String>,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    args: Vec<String>,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    env: Vec<EnvVar>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct EnvVar {
    name: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default, rename = "valueFrom")]
    value_from: Option<serde_json::Value>,
}

/// ExternalDNS's flags as a container sets them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Flags {
    /// Each flag's values, in order (a repeated flag accumulates).
    values: BTreeMap<String, Vec<String>>,
    /// Flags set only through an environment variable's `valueFrom`.
    unreadable: BTreeSet<String>,
}

impl Flags {
    /// The flags of `container`: its command line first, then the environment variables of
    /// the flags the command line does not set.
    pub(crate) fn of(container: &ContainerDoc) -> Flags {
        let mut flags = Flags::default();
        let tokens: Vec<&str> = container
            .command
            .iter()
            .chain(&container.args)
            .map(String::as_str)
            .collect();
        let mut i = 0;
        while let Some(token) = tokens.get(i) {
            i += 1;
            let Some(body) = token.strip_prefix("--") else {
                continue;
            };
            if body.is_empty() {
                break;
            }
            let (name, value) = match body.split_once('=') {
                Some((name, value)) => (name, value.to_owned()),
                // `--flag value`: ExternalDNS takes no positional arguments, so a token that
                // is not a flag after one is its value; a flag without one is a switch.
                None => match tokens.get(i) {
                    Some(next) if !next.starts_with('-') => {
                        i += 1;
                        (body, (*next).to_owned())
                    }
                    _ => (body, "true".to_owned()),
                },
            };
            flags.values.entry(name.to_owned()).or_default().push(value);
        }
        for var in &container.env {
            let Some(rest) = var.name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let name = rest.to_ascii_lowercase().replace('_', "-");
            if flags.values.contains_key(&name) {
                continue;
            }
            match (&var.value, &var.value_from) {
                (Some(value), _) if !value.is_empty() => {
                    let lines = value.lines().map(|l| l.trim_end_matches('\r').to_owned());
                    flags.values.entry(name).or_default().extend(lines);
                }
                (_, Some(_)) => {
                    flags.unreadable.insert(name);
                }
                _ => {}
            }
        }
        flags
    }

    /// Every non-empty value of `flag`, trimmed (ExternalDNS drops empty filters).
    fn all(&self, flag: &str) -> Vec<&str> {
        self.values
            .get(flag)
            .into_iter()
            .flatten()
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// The value of a single-valued flag: its last non-empty one.
    fn last(&self, flag: &str) -> Option<&str> {
        self.all(flag).last().copied()
    }
}

/// What this cluster's ExternalDNS may manage, from the contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confinement {
    /// The cluster's lifecycle.
    pub mode: Mode,
    /// Where this cluster's hostnames live.
    pub host_suffix: String,
    /// The environment's zone, `{env}.{baseDomain}`.
    pub env_zone: String,
    /// The ExternalDNS owner id of this cluster.
    pub owner_id: String,
    /// Where the owner id came from, for hints.
    pub owner_id_source: String,
}

impl Confinement {
    /// The confinement the contract's values set.
    #[must_use]
    pub fn of(values: &Values) -> Self {
        Confinement {
            mode: values.mode.value,
            host_suffix: values.host_suffix.value.clone(),
            env_zone: format!("{}.{}", values.env.value, values.base_domain.value),
            owner_id: values.owner_id.value.clone(),
            owner_id_source: values.owner_id.source.to_string(),
        }
    }

    /// The domain its `--domain-filter` must stay within.
    fn scope(&self) -> &str {
        match self.mode {
            Mode::Ephemeral => &self.host_suffix,
            Mode::Persistent => &self.env_zone,
        }
    }
}

/// A domain as ExternalDNS compares filters: trimmed, lowercase, without the trailing dot, and
/// without a filter's leading dot (which only limits it to subdomains).
fn domain(text: &str) -> String {
    text.trim()
        .trim_end_matches('.')
        .trim_start_matches('.')
        .to_ascii_lowercase()
}

/// One thing wrong with the flags.
struct Finding {
    status: Status,
    code: &'static str,
    text: String,
    hint: String,
}

impl Finding {
    fn fail(code: &'static str, text: String, hint: String) -> Self {
        Finding {
            status: Status::Fail,
            code,
            text,
            hint,
        }
    }

    fn warn(code: &'static str, text: String, hint: String) -> Self {
        Finding {
            status: Status::Warn,
            code,
            text,
            hint,
        }
    }
}

/// Judges ExternalDNS's flags against the cluster's confinement; `what` names the Deployment
/// and container in messages.
pub(crate) fn judge_flags(flags: &Flags, c: &Confinement, what: &str) -> Outcome {
    let mut findings = Vec::new();
    let scope = c.scope();
    let filters = flags.all("domain-filter");
    let excludes = flags.all("exclude-domains");
    let regex = flags.last("regex-domain-filter");
    let owner = flags.last("txt-owner-id");
    let registry = flags.last("registry").unwrap_or("txt");
    let policy = flags.last("policy").unwrap_or("sync");

    let unreadable: Vec<&str> = JUDGED
        .into_iter()
        .filter(|f| flags.unreadable.contains(*f))
        .collect();
    for flag in &unreadable {
        findings.push(Finding::fail(
            "external-dns-flag-unreadable",
            format!("--{flag} is set through an environment variable's valueFrom, which preflight does not read"),
            format!("Pass --{flag} as a container argument (the external-dns chart's values) so that it can be verified."),
        ));
    }

    let domain_flags_unreadable = ["domain-filter", "regex-domain-filter"]
        .iter()
        .any(|f| unreadable.contains(f));
    if let Some(regex) = regex {
        let text = format!(
            "--regex-domain-filter={regex} replaces --domain-filter and --exclude-domains, and preflight does not evaluate regular expressions"
        );
        findings.push(match c.mode {
            Mode::Ephemeral => Finding::fail(
                "external-dns-regex-filter",
                text,
                format!("Confine an ephemeral cluster with domainFilters: [{scope}] (--domain-filter={scope}) and no --regex-domain-filter: that confinement preflight verifies."),
            ),
            Mode::Persistent => Finding::warn(
                "external-dns-regex-filter",
                text,
                format!("Confirm that --regex-domain-filter matches only {scope} and --regex-domain-exclusion its build subdomains (b-<buildId>.{scope}), or use domainFilters: [{scope}], which preflight verifies."),
            ),
        });
    } else if filters.is_empty() && !domain_flags_unreadable {
        let owns = match c.mode {
            Mode::Ephemeral => format!(
                "the persistent zone *.{} included, while an ephemeral cluster owns only {scope}",
                c.env_zone
            ),
            Mode::Persistent => format!("while this cluster owns only {scope}"),
        };
        findings.push(Finding::fail(
            "external-dns-unconfined",
            format!("no --domain-filter: ExternalDNS manages every hosted zone its IAM role can reach, {owns}"),
            format!("Set the external-dns chart value domainFilters: [{scope}] (the flag --domain-filter={scope})."),
        ));
    } else {
        for filter in &filters {
            let name = domain(filter);
            if !is_within(&name, scope) {
                let how = if is_within(scope, &name) {
                    "wider than"
                } else {
                    "outside"
                };
                let owner = match c.mode {
                    Mode::Ephemeral => "this build's",
                    Mode::Persistent => "this environment's",
                };
                findings.push(Finding::fail(
                    "external-dns-filter-too-wide",
                    format!("--domain-filter={filter} is {how} {owner} {scope}"),
                    format!("Narrow the external-dns chart value domainFilters to [{scope}]: ExternalDNS would otherwise write into zones this cluster does not own."),
                ));
            } else if c.mode == Mode::Persistent
                && let Some(build) = build_subdomain(&name, &c.env_zone)
            {
                findings.push(Finding::fail(
                    "external-dns-filter-in-build",
                    format!("--domain-filter={filter} lies in the build subdomain {build}, which belongs to an ephemeral cluster"),
                    format!("Remove {filter} from the external-dns chart value domainFilters: build subdomains (b-<buildId>.{}) are the ephemeral clusters' own.", c.env_zone),
                ));
            }
        }
    }

    let noop = registry == "noop";
    if noop {
        findings.push(match c.mode {
            Mode::Ephemeral => Finding::warn(
                "external-dns-registry-noop",
                format!("--registry=noop: ExternalDNS writes no ownership records, so it may overwrite records another writer put under {scope}, and dns-scope cannot see what it wrote"),
                "Use --registry=txt (the external-dns chart's default registry).".to_owned(),
            ),
            Mode::Persistent => Finding::fail(
                "external-dns-registry-noop",
                format!("--registry=noop: without ownership records a persistent cluster's ExternalDNS takes every record of {scope} for its own, the build subdomains' included: it overwrites them and, with --policy=sync, deletes those it does not see"),
                "Use --registry=txt (the external-dns chart's default registry) with this cluster's owner id.".to_owned(),
            ),
        });
    } else if !unreadable.contains(&"txt-owner-id") {
        match owner {
            None => findings.push(Finding::fail(
                "external-dns-owner-id-missing",
                "no --txt-owner-id: ExternalDNS writes its ownership records as owner \"default\", which every cluster that leaves it unset shares, so each may take over or delete the others' records".to_owned(),
                format!("Set the external-dns chart value txtOwnerId: {} (the flag --txt-owner-id={}; {}).", c.owner_id, c.owner_id, c.owner_id_source),
            )),
            Some(id) if id != c.owner_id => findings.push(Finding::fail(
                "external-dns-owner-id-wrong",
                format!("--txt-owner-id={id}, not this cluster's owner id {}", c.owner_id),
                format!("Set the external-dns chart value txtOwnerId: {} ({}): records are told apart by owner id, and dns-scope audits this cluster's records by it.", c.owner_id, c.owner_id_source),
            )),
            Some(_) => {}
        }
    }

    if regex.is_none() && !filters.is_empty() {
        let covered = filters
            .iter()
            .any(|f| is_within(&c.host_suffix, &domain(f)));
        let excluded: Vec<&str> = excludes
            .iter()
            .copied()
            .filter(|e| is_within(&c.host_suffix, &domain(e)))
            .collect();
        if !covered || !excluded.is_empty() {
            let why = if covered {
                format!("--exclude-domains={} excludes it", excluded.join(","))
            } else {
                "no --domain-filter covers it".to_owned()
            };
            findings.push(Finding::warn(
                "external-dns-misses-hosts",
                format!("ExternalDNS publishes none of the apps' hosts under {}: {why}", c.host_suffix),
                format!("Set the external-dns chart value domainFilters: [{scope}] and keep {} out of excludeDomains.", c.host_suffix),
            ));
        }
    }

    let settings = format!(
        "--policy={policy}{}, --registry={registry}{}",
        if flags.last("policy").is_none() {
            " (default)"
        } else {
            ""
        },
        if flags.last("registry").is_none() {
            " (default)"
        } else {
            ""
        }
    );
    let evidence = |o: Outcome| {
        let mut o = o
            .evidence("mode", c.mode)
            .evidence("domainFilters", filters.join(","))
            .evidence("txtOwnerId", owner.unwrap_or(""))
            .evidence("policy", policy)
            .evidence("registry", registry);
        if !excludes.is_empty() {
            o = o.evidence("excludeDomains", excludes.join(","));
        }
        if let Some(regex) = regex {
            o = o.evidence("regexDomainFilter", regex);
        }
        if let Some(exclusion) = flags.last("regex-domain-exclusion") {
            o = o.evidence("regexDomainExclusion", exclusion);
        }
        o
    };

    let worst = findings.iter().map(|f| f.status).max();
    let Some(worst) = worst else {
        let confined = match c.mode {
            Mode::Ephemeral => format!("confined to this build's {scope}"),
            Mode::Persistent => format!(
                "confined to {scope}, kept out of other owners' records in its build subdomains by owner id {}",
                c.owner_id
            ),
        };
        return evidence(Outcome::pass(
            "external-dns-confined",
            format!(
                "{what} is {confined}: --domain-filter={}, --txt-owner-id={}, {settings}",
                filters.join(","),
                owner.unwrap_or_default()
            ),
        ));
    };
    let code = findings
        .iter()
        .find(|f| f.status == worst)
        .map_or("external-dns-unconfined", |f| f.code);
    let texts: Vec<&str> = findings.iter().map(|f| f.text.as_str()).collect();
    let mut hints: Vec<&str> = Vec::new();
    for f in &findings {
        if !hints.contains(&f.hint.as_str()) {
            hints.push(&f.hint);
        }
    }
    evidence(
        Outcome::new(
            worst,
            code,
            format!("{what}: {} ({settings})", texts.join("; ")),
        )
        .hint(hints.join(" ")),
    )
}

/// Judges ExternalDNS's Deployment (`None` when absent): picks its container and judges its
/// flags.
pub(crate) fn judge(
    settings: &ExternalDnsConfinedSettings,
    found: Option<&DeploymentDoc>,
    c: &Confinement,
) -> Outcome {
    let deployment = &settings.deployment;
    let Some(doc) = found else {
        return Outcome::fail(
            "external-dns-deployment-missing",
            format!("Deployment {deployment} not found: ExternalDNS is not installed, or not under this name"),
        )
        .hint(format!(
            "ExternalDNS comes with the tier-1 external-dns Application (wave 20): check its sync in ArgoCD. If it runs under another name, set checks.external-dns-confined.deployment (now {deployment})."
        ));
    };
    let containers = &doc.spec.template.spec.containers;
    let chosen = match &settings.container {
        Some(name) => containers.iter().find(|k| &k.name == name),
        None => containers
            .iter()
            .find(|k| k.name == CONTAINER)
            .or(match containers.as_slice() {
                [only] => Some(only),
                _ => None,
            }),
    };
    let Some(container) = chosen else {
        let names: Vec<&str> = containers.iter().map(|k| k.name.as_str()).collect();
        let wanted = settings.container.as_deref().map_or_else(
            || format!("named {CONTAINER} (nor a single container)"),
            |n| format!("named {n}"),
        );
        return Outcome::fail(
            "external-dns-container-not-found",
            format!(
                "Deployment {deployment} has no container {wanted}; its containers: {}",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ),
        )
        .hint(
            "Set checks.external-dns-confined.container to the container that runs ExternalDNS.",
        );
    };
    let what = format!(
        "ExternalDNS (Deployment {deployment}, container {})",
        container.name
    );
    judge_flags(&Flags::of(container), c, &what)
}

/// The `external-dns-confined` check.
#[derive(Debug)]
pub struct ExternalDnsConfined {
    settings: ExternalDnsConfinedSettings,
    confinement: Confinement,
}

impl ExternalDnsConfined {
    /// A check with these settings, against the contract's confinement.
    #[must_use]
    pub fn new(settings: ExternalDnsConfinedSettings, confinement: Confinement) -> Self {
        ExternalDnsConfined {
            settings,
            confinement,
        }
    }
}

impl Definition for ExternalDnsConfined {
    const ID: &'static str = "external-dns-confined";
    const FAMILY: Family = Family::Kubernetes;
    type Settings = ExternalDnsConfinedSettings;

    /// Before tier 1.5's apps publish the first hosts through it.
    fn needed_by(_: &ExternalDnsConfinedSettings) -> NeededBy {
        NeededBy::tier(Tier::OneAndHalf)
    }

    fn provided_by(_: &ExternalDnsConfinedSettings, _: &Site<'_>) -> Provider {
        Provider::app("external-dns")
    }

    fn build(settings: &ExternalDnsConfinedSettings, site: &Site<'_>) -> Result<Built, String> {
        let confinement = Confinement::of(site.values);
        let title = format!(
            "ExternalDNS (Deployment {}) confined to {} with owner id {}",
            settings.deployment,
            confinement.scope(),
            confinement.owner_id
        );
        Ok(Built::new(
            ExternalDnsConfined::new(settings.clone(), confinement),
            title,
            Self::provided_by(settings, site),
            &[super::KubeApi::ID],
        ))
    }
}

#[async_trait::async_trait]
impl Check for ExternalDnsConfined {
    fn reads(&self) -> Reads {
        Reads::kube(vec![
            DEPLOYMENTS.within(&self.settings.deployment.namespace),
        ])
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        let deployment = &self.settings.deployment;
        fetch::judge_object(
            ctx,
            &DEPLOYMENTS,
            Some(&deployment.namespace),
            &deployment.name,
            |found: Option<&DeploymentDoc>| judge(&self.settings, found, &self.confinement),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUFFIX: &str = "b-26-01-23-01.dev.goldenpathidp.io";

    fn ephemeral() -> Confinement {
        Confinement {
            mode: Mode::Ephemeral,
            host_suffix: SUFFIX.into(),
            env_zone: "dev.goldenpathidp.io".into(),
            owner_id: "goldenpath-dev-26-01-23-01".into(),
            owner_id_source: "derived: goldenpath-{env}-{buildId}".into(),
        }
    }

    fn persistent() -> Confinement {
        Confinement {
            mode: Mode::Persistent,
            host_suffix: "dev.goldenpathidp.io".into(),
            env_zone: "dev.goldenpathidp.io".into(),
            owner_id: "goldenpath-dev".into(),
            owner_id_source: "derived: goldenpath-{env}".into(),
        }
    }

    fn container(yaml: &str) -> ContainerDoc {
        serde_saphyr::from_str(yaml).expect("parses")
    }

    fn flags(args: &[&str]) -> Flags {
        Flags::of(&ContainerDoc {
            name: CONTAINER.into(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            ..ContainerDoc::default()
        })
    }

    fn judged(args: &[&str], c: &Confinement) -> Outcome {
        judge_flags(&flags(args), c, "ExternalDNS")
    }

    #[test]
    fn reads_flags_in_both_forms_repeated_and_from_the_environment() {
        let f = Flags::of(&container(
            "name: external-dns\ncommand: [/bin/external-dns, --provider, aws]\nargs: ['--domain-filter=a.example.io', --domain-filter, b.example.io, --once, --policy=upsert-only, '--domain-filter=']\nenv:\n- {name: EXTERNAL_DNS_TXT_OWNER_ID, value: owner-1}\n- {name: EXTERNAL_DNS_POLICY, value: sync}\n- {name: EXTERNAL_DNS_EXCLUDE_DOMAINS, value: \"x.example.io\\ny.example.io\"}\n- {name: EXTERNAL_DNS_REGISTRY, valueFrom: {configMapKeyRef: {name: dns, key: registry}}}\n- {name: AWS_REGION, value: eu-west-1}\n",
        ));
        assert_eq!(f.all("domain-filter"), ["a.example.io", "b.example.io"]);
        assert_eq!(f.last("provider"), Some("aws"));
        assert_eq!(f.last("once"), Some("true"));
        assert_eq!(
            f.last("policy"),
            Some("upsert-only"),
            "the command line wins over the environment"
        );
        assert_eq!(f.last("txt-owner-id"), Some("owner-1"));
        assert_eq!(f.all("exclude-domains"), ["x.example.io", "y.example.io"]);
        assert!(f.unreadable.contains("registry"));
        assert_eq!(f.last("aws-region"), None);
    }

    #[test]
    fn compares_domains_label_by_label() {
        assert!(is_within(SUFFIX, SUFFIX));
        assert!(is_within(&format!("grafana.{SUFFIX}"), SUFFIX));
        assert!(!is_within("xb-26-01-23-01.dev.goldenpathidp.io", SUFFIX));
        assert!(!is_within("dev.goldenpathidp.io", SUFFIX));
        assert_eq!(
            domain(" .B-1.Dev.goldenpathidp.io. "),
            "b-1.dev.goldenpathidp.io"
        );
        let zone = "dev.goldenpathidp.io";
        assert_eq!(
            build_subdomain(&format!("www.{SUFFIX}"), zone).as_deref(),
            Some(SUFFIX)
        );
        // Any `b-` label under the environment's zone: build ids are any DNS label.
        assert_eq!(
            build_subdomain("b-roll.dev.goldenpathidp.io", zone).as_deref(),
            Some("b-roll.dev.goldenpathidp.io")
        );
        assert_eq!(build_subdomain(zone, zone), None);
        assert_eq!(build_subdomain("b-1.prod.goldenpathidp.io", zone), None);
    }

    const OWNER: &str = "--txt-owner-id=goldenpath-dev-26-01-23-01";

    #[test]
    fn confines_an_ephemeral_cluster_to_its_build() {
        let filter = format!("--domain-filter={SUFFIX}");
        let sub = format!("--domain-filter=grafana.{SUFFIX}");
        let dotted = format!("--domain-filter=.{SUFFIX}");
        let cases: Vec<(Vec<&str>, Status, &str, &str)> = vec![
            (
                vec![&filter, OWNER, "--policy=upsert-only", "--registry=txt"],
                Status::Pass,
                "external-dns-confined",
                "is confined to this build's b-26-01-23-01.dev.goldenpathidp.io: --domain-filter=b-26-01-23-01.dev.goldenpathidp.io, --txt-owner-id=goldenpath-dev-26-01-23-01, --policy=upsert-only, --registry=txt",
            ),
            (
                vec![&dotted, OWNER],
                Status::Pass,
                "external-dns-confined",
                "--policy=sync (default), --registry=txt (default)",
            ),
            (
                vec![OWNER, "--source=ingress"],
                Status::Fail,
                "external-dns-unconfined",
                "no --domain-filter: ExternalDNS manages every hosted zone its IAM role can reach, the persistent zone *.dev.goldenpathidp.io included",
            ),
            (
                vec![&filter, "--domain-filter=dev.goldenpathidp.io", OWNER],
                Status::Fail,
                "external-dns-filter-too-wide",
                "--domain-filter=dev.goldenpathidp.io is wider than this build's b-26-01-23-01.dev.goldenpathidp.io",
            ),
            (
                vec!["--domain-filter=example.com", OWNER],
                Status::Fail,
                "external-dns-filter-too-wide",
                "--domain-filter=example.com is outside this build's",
            ),
            (
                vec!["--domain-filter=.dev.goldenpathidp.io", OWNER],
                Status::Fail,
                "external-dns-filter-too-wide",
                "is wider than",
            ),
            (
                vec![&filter],
                Status::Fail,
                "external-dns-owner-id-missing",
                "no --txt-owner-id: ExternalDNS writes its ownership records as owner \"default\"",
            ),
            (
                vec![&filter, "--txt-owner-id", "goldenpath-dev"],
                Status::Fail,
                "external-dns-owner-id-wrong",
                "--txt-owner-id=goldenpath-dev, not this cluster's owner id goldenpath-dev-26-01-23-01",
            ),
            (
                vec![&filter, "--registry=noop"],
                Status::Warn,
                "external-dns-registry-noop",
                "--registry=noop: ExternalDNS writes no ownership records",
            ),
            (
                vec![&sub, OWNER],
                Status::Warn,
                "external-dns-misses-hosts",
                "publishes none of the apps' hosts under b-26-01-23-01.dev.goldenpathidp.io: no --domain-filter covers it",
            ),
            (
                vec![&filter, OWNER, "--exclude-domains", SUFFIX],
                Status::Warn,
                "external-dns-misses-hosts",
                "--exclude-domains=b-26-01-23-01.dev.goldenpathidp.io excludes it",
            ),
            (
                vec!["--regex-domain-filter=.*", OWNER],
                Status::Fail,
                "external-dns-regex-filter",
                "--regex-domain-filter=.* replaces --domain-filter",
            ),
            (
                // The worst finding sets the code; every finding is in the message.
                vec!["--registry=noop", "--domain-filter=goldenpathidp.io"],
                Status::Fail,
                "external-dns-filter-too-wide",
                "wider than this build's b-26-01-23-01.dev.goldenpathidp.io; --registry=noop",
            ),
        ];
        for (args, status, code, needle) in cases {
            let o = judged(&args, &ephemeral());
            assert_eq!(
                (o.status, o.code.as_str()),
                (status, code),
                "{args:?}: {}",
                o.message
            );
            assert!(
                o.message.contains(needle),
                "{args:?}: {needle:?} in {}",
                o.message
            );
            assert_eq!(o.hint.is_some(), status != Status::Pass, "{args:?}");
        }
        let o = judged(&[OWNER], &ephemeral());
        assert!(
            o.hint
                .expect("hint")
                .contains("domainFilters: [b-26-01-23-01.dev.goldenpathidp.io]")
        );
        let o = judged(&[&filter, "--txt-owner-id=x"], &ephemeral());
        assert!(o.hint.expect("hint").contains(
            "txtOwnerId: goldenpath-dev-26-01-23-01 (derived: goldenpath-{env}-{buildId})"
        ));
    }

    #[test]
    fn confines_a_persistent_cluster_to_its_environment_outside_the_builds() {
        let owner = "--txt-owner-id=goldenpath-dev";
        for (args, status, code, needle) in [
            (
                vec![
                    "--domain-filter=dev.goldenpathidp.io",
                    owner,
                    "--policy=sync",
                ],
                Status::Pass,
                "external-dns-confined",
                "confined to dev.goldenpathidp.io, kept out of other owners' records in its build subdomains by owner id goldenpath-dev",
            ),
            (
                vec![
                    "--domain-filter=dev.goldenpathidp.io",
                    owner,
                    "--exclude-domains=b-26-01-23-01.dev.goldenpathidp.io",
                ],
                Status::Pass,
                "external-dns-confined",
                "--policy=sync (default)",
            ),
            (
                vec![owner],
                Status::Fail,
                "external-dns-unconfined",
                "while this cluster owns only dev.goldenpathidp.io",
            ),
            (
                vec!["--domain-filter=goldenpathidp.io", owner],
                Status::Fail,
                "external-dns-filter-too-wide",
                "--domain-filter=goldenpathidp.io is wider than this environment's dev.goldenpathidp.io",
            ),
            (
                vec![
                    "--domain-filter=dev.goldenpathidp.io",
                    "--domain-filter=b-26-01-23-01.dev.goldenpathidp.io",
                    owner,
                ],
                Status::Fail,
                "external-dns-filter-in-build",
                "--domain-filter=b-26-01-23-01.dev.goldenpathidp.io lies in the build subdomain b-26-01-23-01.dev.goldenpathidp.io",
            ),
            (
                vec!["--domain-filter=dev.goldenpathidp.io", "--registry=noop"],
                Status::Fail,
                "external-dns-registry-noop",
                "the build subdomains' included",
            ),
            (
                vec![
                    "--regex-domain-filter=^([a-z0-9-]+\\.)?dev\\.goldenpathidp\\.io$",
                    "--regex-domain-exclusion=b-[0-9]",
                    owner,
                ],
                Status::Warn,
                "external-dns-regex-filter",
                "preflight does not evaluate regular expressions",
            ),
            (
                vec![
                    "--domain-filter=dev.goldenpathidp.io",
                    "--txt-owner-id=goldenpath-dev-26-01-23-01",
                ],
                Status::Fail,
                "external-dns-owner-id-wrong",
                "not this cluster's owner id goldenpath-dev",
            ),
        ] {
            let o = judged(&args, &persistent());
            assert_eq!(
                (o.status, o.code.as_str()),
                (status, code),
                "{args:?}: {}",
                o.message
            );
            assert!(
                o.message.contains(needle),
                "{args:?}: {needle:?} in {}",
                o.message
            );
        }
    }

    #[test]
    fn finds_the_deployment_and_its_container() {
        let settings = ExternalDnsConfinedSettings::default();
        let o = judge(&settings, None, &ephemeral());
        assert_eq!(
            (o.status, o.code.as_str()),
            (Status::Fail, "external-dns-deployment-missing")
        );
        assert!(
            o.message
                .starts_with("Deployment external-dns/external-dns not found")
        );
        assert!(
            o.hint
                .expect("hint")
                .contains("external-dns Application (wave 20)")
        );

        let doc = |yaml: &str| -> DeploymentDoc { serde_saphyr::from_str(yaml).expect("parses") };
        let two = doc(&format!(
            "spec:\n  template:\n    spec:\n      containers:\n      - {{name: sidecar, args: [--domain-filter=example.com]}}\n      - {{name: external-dns, args: ['--domain-filter={SUFFIX}', '{OWNER}']}}\n"
        ));
        let o = judge(&settings, Some(&two), &ephemeral());
        assert_eq!(o.status, Status::Pass, "{}", o.message);
        assert!(o.message.starts_with(
            "ExternalDNS (Deployment external-dns/external-dns, container external-dns) is confined"
        ));

        let named = ExternalDnsConfinedSettings {
            container: Some("sidecar".into()),
            ..ExternalDnsConfinedSettings::default()
        };
        assert_eq!(
            judge(&named, Some(&two), &ephemeral()).code,
            "external-dns-filter-too-wide"
        );

        let only = doc(&format!(
            "spec:\n  template:\n    spec:\n      containers:\n      - {{name: dns, args: ['--domain-filter={SUFFIX}', '{OWNER}']}}\n"
        ));
        assert_eq!(
            judge(&settings, Some(&only), &ephemeral()).status,
            Status::Pass
        );

        let neither = doc(
            "spec:\n  template:\n    spec:\n      containers:\n      - {name: a}\n      - {name: b}\n",
        );
        let o = judge(&settings, Some(&neither), &ephemeral());
        assert_eq!(o.code, "external-dns-container-not-found");
        assert!(o.message.contains("its containers: a, b"), "{}", o.message);
        let missing = ExternalDnsConfinedSettings {
            container: Some("c".into()),
            ..ExternalDnsConfinedSettings::default()
        };
        assert_eq!(
            judge(&missing, Some(&neither), &ephemeral()).code,
            "external-dns-container-not-found"
        );

        let hidden = doc(
            "spec:\n  template:\n    spec:\n      containers:\n      - name: external-dns\n        env:\n        - {name: EXTERNAL_DNS_DOMAIN_FILTER, valueFrom: {configMapKeyRef: {name: dns, key: filter}}}\n        - {name: EXTERNAL_DNS_TXT_OWNER_ID, value: goldenpath-dev-26-01-23-01}\n",
        );
        let o = judge(&settings, Some(&hidden), &ephemeral());
        assert_eq!(o.code, "external-dns-flag-unreadable");
        assert!(!o.message.contains("no --domain-filter"), "{}", o.message);
    }
}
