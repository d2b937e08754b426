//! The bootstrap contract: raw layers of values, their merge, and their validation into
//! [`Values`] with the platform's tier rules applied.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::source::{Origin, Source, Sourced};
use crate::tier::Tier;
use crate::yaml::{self, YamlError, is_blank};

/// The platform's base domain, owner of every cluster's hostnames.
pub const DEFAULT_BASE_DOMAIN: &str = "goldenpathidp.io";

/// Errors of loading and validating the bootstrap values.
#[derive(Debug, thiserror::Error)]
pub enum ValuesError {
    /// The values file could not be read.
    #[error("cannot read values file {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The document is not valid YAML of the contract's shape (unknown keys included).
    #[error("{}: {error}", origin.place(error.line, error.column))]
    Parse {
        /// Where the document came from.
        origin: Origin,
        /// What is wrong, at which line, column and key.
        error: Box<YamlError>,
    },
    /// The values parse but break the contract; every problem found is listed.
    #[error("invalid bootstrap values:\n{}", problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// Each problem, naming the field and the place that set it.
        problems: Vec<Problem>,
    },
}

/// One contract violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field, as written in the values file (`bootstrap.maxTier`).
    pub field: &'static str,
    /// Where the offending value came from, when one was given.
    pub source: Option<Source>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{source}: {}: {}", self.field, self.message),
            None => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

// ---- the document as written -------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Document {
    #[serde(default)]
    bootstrap: BootstrapDoc,
    #[serde(default)]
    platform: PlatformDoc,
    #[serde(default)]
    dns: DnsDoc,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BootstrapDoc {
    mode: Option<Spanned<String>>,
    max_tier: Option<Spanned<String>>,
    env: Option<Spanned<String>>,
    build_id: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PlatformDoc {
    rds_available: Option<Spanned<bool>>,
    storage_class_ready: Option<Spanned<bool>>,
    irsa_configured: Option<Spanned<bool>>,
    s3_available: Option<Spanned<bool>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DnsDoc {
    host_suffix: Option<Spanned<String>>,
    base_domain: Option<Spanned<String>>,
    owner_id: Option<Spanned<String>>,
}

// ---- raw layers ----------------------------------------------------------------------------

/// One unvalidated layer of contract values: a file, the cluster's ConfigMap, environment
/// variables or flags. Layers are merged (later wins per field), then validated once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValuesLayer {
    /// `bootstrap.mode`.
    pub mode: Option<Sourced<String>>,
    /// `bootstrap.maxTier`.
    pub max_tier: Option<Sourced<String>>,
    /// `bootstrap.env`.
    pub env: Option<Sourced<String>>,
    /// `bootstrap.buildId`.
    pub build_id: Option<Sourced<String>>,
    /// `platform.rdsAvailable`.
    pub rds_available: Option<Sourced<bool>>,
    /// `platform.storageClassReady`.
    pub storage_class_ready: Option<Sourced<bool>>,
    /// `platform.irsaConfigured`.
    pub irsa_configured: Option<Sourced<bool>>,
    /// `platform.s3Available`.
    pub s3_available: Option<Sourced<bool>>,
    /// `dns.hostSuffix`.
    pub host_suffix: Option<Sourced<String>>,
    /// `dns.baseDomain`.
    pub base_domain: Option<Sourced<String>>,
    /// `dns.ownerId`.
    pub owner_id: Option<Sourced<String>>,
}

fn located<T>(origin: &Origin, spanned: Option<Spanned<T>>) -> Option<Sourced<T>> {
    spanned.map(|s| Sourced::new(s.value, origin.at(Some(s.referenced.line() as u32))))
}

impl ValuesLayer {
    /// Parses a values document. Unknown keys are rejected with their line and column.
    pub fn from_yaml(text: &str, origin: Origin) -> Result<Self, ValuesError> {
        Self::from_document(yaml::from_str(text, &origin.to_string()), text, origin)
    }

    /// Parses a values document as read from a file or a ConfigMap: text that is not UTF-8 is
    /// reported at its first bad byte.
    pub fn from_bytes(bytes: &[u8], origin: Origin) -> Result<Self, ValuesError> {
        let text = String::from_utf8_lossy(bytes);
        Self::from_document(yaml::from_bytes(bytes, &origin.to_string()), &text, origin)
    }

    fn from_document(
        parsed: Result<Document, YamlError>,
        text: &str,
        origin: Origin,
    ) -> Result<Self, ValuesError> {
        let doc = match parsed {
            Ok(doc) => doc,
            // A document of nothing but comments says nothing: no layer, as an empty one.
            Err(_) if is_blank(text) => Document::default(),
            Err(mut error) => {
                // Each value is read with its place (`Spanned`), whose own field is `value`.
                if let Some(path) = error.path.strip_suffix(".value") {
                    error.path = path.to_owned();
                }
                return Err(ValuesError::Parse {
                    origin,
                    error: Box::new(error),
                });
            }
        };
        let o = &origin;
        Ok(ValuesLayer {
            mode: located(o, doc.bootstrap.mode),
            max_tier: located(o, doc.bootstrap.max_tier),
            env: located(o, doc.bootstrap.env),
            build_id: located(o, doc.bootstrap.build_id),
            rds_available: located(o, doc.platform.rds_available),
            storage_class_ready: located(o, doc.platform.storage_class_ready),
            irsa_configured: located(o, doc.platform.irsa_configured),
            s3_available: located(o, doc.platform.s3_available),
            host_suffix: located(o, doc.dns.host_suffix),
            base_domain: located(o, doc.dns.base_domain),
            owner_id: located(o, doc.dns.owner_id),
        })
    }

    /// Reads and parses a values file.
    pub fn from_file(path: &Path) -> Result<Self, ValuesError> {
        let bytes = std::fs::read(path).map_err(|source| ValuesError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_bytes(&bytes, Origin::File(path.to_owned()))
    }

    /// Overlays `over` on `self`: every field `over` sets wins.
    #[must_use]
    pub fn merge(self, over: ValuesLayer) -> ValuesLayer {
        ValuesLayer {
            mode: over.mode.or(self.mode),
            max_tier: over.max_tier.or(self.max_tier),
            env: over.env.or(self.env),
            build_id: over.build_id.or(self.build_id),
            rds_available: over.rds_available.or(self.rds_available),
            storage_class_ready: over.storage_class_ready.or(self.storage_class_ready),
            irsa_configured: over.irsa_configured.or(self.irsa_configured),
            s3_available: over.s3_available.or(self.s3_available),
            host_suffix: over.host_suffix.or(self.host_suffix),
            base_domain: over.base_domain.or(self.base_domain),
            owner_id: over.owner_id.or(self.owner_id),
        }
    }
}

// ---- validated values ----------------------------------------------------------------------

/// A cluster's lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// A throw-away build cluster: owns only its build subdomain, never runs tier 3.
    Ephemeral,
    /// A long-lived cluster: owns its environment's zone.
    Persistent,
}

impl Mode {
    /// The word used in the contract.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Ephemeral => "ephemeral",
            Mode::Persistent => "persistent",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The environments the platform knows.
pub const ENVIRONMENTS: [&str; 4] = ["dev", "test", "staging", "prod"];

/// Which of the platform's tier rules decide the ceiling. The platform's latest decision is
/// [`ContractRules::V1`]; ADR-0180's precedence stays available as an option a platform can
/// choose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub enum ContractRules {
    /// `maxTier` is derived from the mode (ephemeral 1.5, persistent 3) and cannot be
    /// overridden: an explicit `maxTier` that disagrees with the mode is a contract error.
    #[default]
    #[serde(rename = "v1")]
    V1,
    /// `maxTier` is the ceiling (derived from the mode when absent) and the mode only
    /// restricts inside it: an ephemeral cluster never gets tier 3.
    #[serde(rename = "adr-0180")]
    Adr0180,
}

impl ContractRules {
    /// The name used on the command line and in reports: `v1` or `adr-0180`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            ContractRules::V1 => "v1",
            ContractRules::Adr0180 => "adr-0180",
        }
    }
}

impl fmt::Display for ContractRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names neither set of contract rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a set of contract rules (expected v1 or adr-0180)")]
pub struct InvalidContractRules(pub String);

impl FromStr for ContractRules {
    type Err = InvalidContractRules;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [ContractRules::V1, ContractRules::Adr0180]
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| InvalidContractRules(s.to_owned()))
    }
}

/// The highest tier this cluster may run, and the rule that set it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ceiling {
    /// The highest tier allowed.
    pub tier: Tier,
    /// Why, naming the values and their sources.
    pub rule: String,
}

/// Declared prerequisites. preflight verifies them; it does not trust them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Platform {
    /// `platform.rdsAvailable`.
    pub rds_available: bool,
    /// `platform.storageClassReady`.
    pub storage_class_ready: bool,
    /// `platform.irsaConfigured`.
    pub irsa_configured: bool,
    /// `platform.s3Available`.
    pub s3_available: bool,
}

/// One of the declared prerequisites of the contract's `platform` section.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PlatformFlag {
    /// Terraform has created the RDS instance.
    RdsAvailable,
    /// The cluster has a default StorageClass.
    StorageClassReady,
    /// The IRSA roles exist and trust the cluster's OIDC provider.
    IrsaConfigured,
    /// Loki's S3 bucket exists.
    S3Available,
}

impl PlatformFlag {
    /// The flag's key in the contract, e.g. `platform.rdsAvailable`.
    #[must_use]
    pub const fn key(self) -> &'static str {
        match self {
            PlatformFlag::RdsAvailable => "platform.rdsAvailable",
            PlatformFlag::StorageClassReady => "platform.storageClassReady",
            PlatformFlag::IrsaConfigured => "platform.irsaConfigured",
            PlatformFlag::S3Available => "platform.s3Available",
        }
    }
}

impl fmt::Display for PlatformFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Where each `platform.*` flag declared true was set, so that a check which finds the
/// declaration wrong can point at the line that made it. A flag absent or false has none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
struct Declared {
    #[serde(skip_serializing_if = "Option::is_none")]
    rds_available: Option<Source>,
    #[serde(skip_serializing_if = "Option::is_none")]
    storage_class_ready: Option<Source>,
    #[serde(skip_serializing_if = "Option::is_none")]
    irsa_configured: Option<Source>,
    #[serde(skip_serializing_if = "Option::is_none")]
    s3_available: Option<Source>,
}

impl Declared {
    fn source(&self, flag: PlatformFlag) -> Option<&Source> {
        match flag {
            PlatformFlag::RdsAvailable => self.rds_available.as_ref(),
            PlatformFlag::StorageClassReady => self.storage_class_ready.as_ref(),
            PlatformFlag::IrsaConfigured => self.irsa_configured.as_ref(),
            PlatformFlag::S3Available => self.s3_available.as_ref(),
        }
    }
}

/// The validated bootstrap contract with the tier rules applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Values {
    /// `bootstrap.mode`.
    pub mode: Sourced<Mode>,
    /// `bootstrap.maxTier` as given, if it was.
    pub max_tier: Option<Sourced<Tier>>,
    /// `bootstrap.env`.
    pub env: Sourced<String>,
    /// `bootstrap.buildId` (always set for ephemeral clusters).
    pub build_id: Option<Sourced<String>>,
    /// Declared prerequisites.
    pub platform: Platform,
    /// Where each prerequisite declared true was declared; read with [`Values::declared`].
    declared: Declared,
    /// The base domain (`goldenpathidp.io` unless set).
    pub base_domain: Sourced<String>,
    /// The suffix under which this cluster's apps live.
    pub host_suffix: Sourced<String>,
    /// The ExternalDNS owner id of this cluster.
    pub owner_id: Sourced<String>,
    /// The tier rules the values were validated under.
    pub rules: ContractRules,
    /// The highest tier this cluster may run.
    pub ceiling: Ceiling,
}

impl Values {
    /// The hostname of an app on this cluster: `{app}.{hostSuffix}`.
    #[must_use]
    pub fn app_host(&self, app: &str) -> String {
        format!("{app}.{}", self.host_suffix.value)
    }

    /// Where `flag` was declared true (`values.yaml:7`), or `None` when it is absent or false.
    #[must_use]
    pub fn declared(&self, flag: PlatformFlag) -> Option<&Source> {
        self.declared.source(flag)
    }
}

/// Whether `name` is a DNS name of lowercase labels (RFC 1123), as hostnames here must be.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn is_dns_label(label: &str) -> bool {
    !label.contains('.') && is_dns_name(label)
}

fn derived(rule: impl Into<String>) -> Source {
    Source::Derived { rule: rule.into() }
}

impl ValuesLayer {
    /// Validates the merged layers into [`Values`] under the platform's latest tier rules
    /// ([`ContractRules::V1`]), reporting every problem at once.
    pub fn validate(self) -> Result<Values, ValuesError> {
        self.validate_with(ContractRules::V1)
    }

    /// Validates the merged layers into [`Values`] under `rules`, reporting every problem at
    /// once.
    pub fn validate_with(self, rules: ContractRules) -> Result<Values, ValuesError> {
        let mut problems = Vec::new();
        let mut problem = |field, source: Option<&Source>, message: String| {
            problems.push(Problem {
                field,
                source: source.cloned(),
                message,
            });
        };

        let mode = match &self.mode {
            None => {
                problem(
                    "bootstrap.mode",
                    None,
                    "is required (ephemeral or persistent)".into(),
                );
                None
            }
            Some(m) => match m.value.as_str() {
                "ephemeral" => Some(Sourced::new(Mode::Ephemeral, m.source.clone())),
                "persistent" => Some(Sourced::new(Mode::Persistent, m.source.clone())),
                other => {
                    problem(
                        "bootstrap.mode",
                        Some(&m.source),
                        format!("{other:?} is not a mode (expected ephemeral or persistent)"),
                    );
                    None
                }
            },
        };

        let max_tier = self
            .max_tier
            .as_ref()
            .and_then(|t| match t.value.parse::<Tier>() {
                Ok(tier) => Some(Sourced::new(tier, t.source.clone())),
                Err(e) => {
                    problem("bootstrap.maxTier", Some(&t.source), e.to_string());
                    None
                }
            });

        let env = match &self.env {
            None => {
                problem(
                    "bootstrap.env",
                    None,
                    format!("is required (one of {})", ENVIRONMENTS.join(", ")),
                );
                None
            }
            Some(e) if ENVIRONMENTS.contains(&e.value.as_str()) => Some(e.clone()),
            Some(e) => {
                problem(
                    "bootstrap.env",
                    Some(&e.source),
                    format!(
                        "{:?} is not an environment (expected one of {})",
                        e.value,
                        ENVIRONMENTS.join(", ")
                    ),
                );
                None
            }
        };

        let build_id = match (&self.build_id, mode.as_ref().map(|m| m.value)) {
            (Some(b), _) if !is_dns_label(&b.value) || b.value.len() > 40 => {
                problem(
                    "bootstrap.buildId",
                    Some(&b.source),
                    format!(
                        "{:?} cannot be part of a hostname (lowercase letters, digits and '-', at most 40 characters)",
                        b.value
                    ),
                );
                None
            }
            (Some(b), _) => Some(b.clone()),
            (None, Some(Mode::Ephemeral)) => {
                problem(
                    "bootstrap.buildId",
                    mode.as_ref().map(|m| &m.source),
                    "is required when bootstrap.mode is ephemeral".into(),
                );
                None
            }
            (None, _) => None,
        };

        let base_domain = match &self.base_domain {
            Some(d) if !is_dns_name(&d.value) => {
                problem(
                    "dns.baseDomain",
                    Some(&d.source),
                    format!("{:?} is not a DNS name", d.value),
                );
                None
            }
            Some(d) => Some(d.clone()),
            None => Some(Sourced::new(
                DEFAULT_BASE_DOMAIN.to_owned(),
                derived("the platform's base domain"),
            )),
        };

        // Derivations need mode, env and (ephemeral) buildId; without them the problems above
        // already say what is missing.
        let (Some(mode), Some(env), Some(base_domain)) = (mode, env, base_domain) else {
            return Err(ValuesError::Invalid { problems });
        };
        if mode.value == Mode::Ephemeral && build_id.is_none() {
            return Err(ValuesError::Invalid { problems });
        }

        let zone = match (mode.value, &build_id) {
            (Mode::Ephemeral, Some(b)) => {
                format!("b-{}.{}.{}", b.value, env.value, base_domain.value)
            }
            _ => format!("{}.{}", env.value, base_domain.value),
        };
        let host_suffix = match &self.host_suffix {
            Some(h) if !is_dns_name(&h.value) => {
                problem(
                    "dns.hostSuffix",
                    Some(&h.source),
                    format!("{:?} is not a DNS name", h.value),
                );
                None
            }
            Some(h) if h.value != zone && !h.value.ends_with(&format!(".{zone}")) => {
                let owner = match mode.value {
                    Mode::Ephemeral => "an ephemeral cluster owns only its build subdomain",
                    Mode::Persistent => "a persistent cluster owns its environment's zone",
                };
                problem(
                    "dns.hostSuffix",
                    Some(&h.source),
                    format!("{:?} is outside {zone:?} ({owner})", h.value),
                );
                None
            }
            Some(h)
                if mode.value == Mode::Persistent
                    && crate::dns::build_subdomain(&h.value, &zone).is_some() =>
            {
                problem(
                    "dns.hostSuffix",
                    Some(&h.source),
                    format!(
                        "{:?} lies in a build subdomain, which belongs to an ephemeral cluster",
                        h.value
                    ),
                );
                None
            }
            Some(h) => Some(h.clone()),
            None => Some(Sourced::new(
                zone.clone(),
                derived(match mode.value {
                    Mode::Ephemeral => "b-{buildId}.{env}.{baseDomain}",
                    Mode::Persistent => "{env}.{baseDomain}",
                }),
            )),
        };

        let owner_id = match (&self.owner_id, &build_id) {
            (Some(o), _) if o.value.trim().is_empty() => {
                problem("dns.ownerId", Some(&o.source), "must not be empty".into());
                None
            }
            (Some(o), _) => Some(o.clone()),
            (None, Some(b)) if mode.value == Mode::Ephemeral => Some(Sourced::new(
                format!("goldenpath-{}-{}", env.value, b.value),
                derived("goldenpath-{env}-{buildId}"),
            )),
            (None, _) => Some(Sourced::new(
                format!("goldenpath-{}", env.value),
                derived("goldenpath-{env}"),
            )),
        };

        // A maxTier that is not a tier is already a problem; a ceiling guessed without it
        // would only add noise.
        let ceiling = (self.max_tier.is_none() || max_tier.is_some()).then(|| {
            let (ceiling, set_by, disagreement) = ceiling(rules, &mode, max_tier.as_ref());
            if let Some(p) = disagreement {
                problem(p.field, p.source.as_ref(), p.message);
            }
            if ceiling.tier >= Tier::Two && !self.rds_available.as_ref().is_some_and(|r| r.value) {
                let (source, stated) = match &self.rds_available {
                    Some(r) => (&r.source, "is false"),
                    None => (&set_by, "is absent"),
                };
                let lower = match rules {
                    ContractRules::V1 => {
                        "under the V1 contract rules it follows bootstrap.mode; a lower bootstrap.maxTier needs --contract-rules adr-0180"
                    }
                    ContractRules::Adr0180 => "with bootstrap.maxTier",
                };
                problem(
                    PlatformFlag::RdsAvailable.key(),
                    Some(source),
                    format!(
                        "{stated}, but tier {} needs RDS (Backstage, Grafana's PostgreSQL, Keycloak): set platform.rdsAvailable: true once Terraform has created the instance, or lower the ceiling ({lower})",
                        ceiling.tier
                    ),
                );
            }
            ceiling
        });

        let flag =
            |f: &Option<Sourced<bool>>| f.as_ref().filter(|v| v.value).map(|v| v.source.clone());
        let declared = Declared {
            rds_available: flag(&self.rds_available),
            storage_class_ready: flag(&self.storage_class_ready),
            irsa_configured: flag(&self.irsa_configured),
            s3_available: flag(&self.s3_available),
        };
        let platform = Platform {
            rds_available: declared.rds_available.is_some(),
            storage_class_ready: declared.storage_class_ready.is_some(),
            irsa_configured: declared.irsa_configured.is_some(),
            s3_available: declared.s3_available.is_some(),
        };

        match (host_suffix, owner_id, ceiling) {
            (Some(host_suffix), Some(owner_id), Some(ceiling)) if problems.is_empty() => {
                Ok(Values {
                    mode,
                    max_tier,
                    env,
                    build_id,
                    platform,
                    declared,
                    base_domain,
                    host_suffix,
                    owner_id,
                    rules,
                    ceiling,
                })
            }
            _ => Err(ValuesError::Invalid { problems }),
        }
    }
}

/// The tier a mode gets when nothing else restricts it: ephemeral 1.5, persistent 3.
const fn tier_of_mode(mode: Mode) -> Tier {
    match mode {
        Mode::Ephemeral => Tier::OneAndHalf,
        Mode::Persistent => Tier::Three,
    }
}

/// The ceiling under `rules`, the source that set it (where a problem about the ceiling points
/// when nothing closer was given), and under V1 the problem of an explicit `maxTier` that
/// disagrees with the mode. Under V1 the ceiling is the mode's even then, so the rules that
/// follow from it are still checked and every problem is reported at once.
fn ceiling(
    rules: ContractRules,
    mode: &Sourced<Mode>,
    max_tier: Option<&Sourced<Tier>>,
) -> (Ceiling, Source, Option<Problem>) {
    match rules {
        ContractRules::V1 => ceiling_v1(mode, max_tier),
        ContractRules::Adr0180 => ceiling_adr_0180(mode, max_tier),
    }
}

/// V1: `maxTier` is derived from the mode and cannot be overridden.
fn ceiling_v1(
    mode: &Sourced<Mode>,
    max_tier: Option<&Sourced<Tier>>,
) -> (Ceiling, Source, Option<Problem>) {
    let tier = tier_of_mode(mode.value);
    let derived = format!(
        "under the V1 contract rules bootstrap.maxTier is derived from bootstrap.mode {} ({}): ephemeral 1.5, persistent 3",
        mode.value, mode.source
    );
    let (rule, disagreement) = match max_tier {
        None => (derived, None),
        Some(t) if t.value == tier => (
            format!(
                "{derived}; bootstrap.maxTier {} ({}) agrees",
                t.value, t.source
            ),
            None,
        ),
        Some(t) => (
            derived,
            Some(Problem {
                field: "bootstrap.maxTier",
                source: Some(t.source.clone()),
                message: format!(
                    "{:?} disagrees with bootstrap.mode {} ({}): under the V1 contract rules maxTier is derived from the mode (ephemeral 1.5, persistent 3) and cannot be overridden; remove it, or choose the ADR-0180 precedence with --contract-rules adr-0180",
                    t.value.as_str(),
                    mode.value,
                    mode.source
                ),
            }),
        ),
    };
    (Ceiling { tier, rule }, mode.source.clone(), disagreement)
}

/// ADR-0180: `maxTier` is the ceiling, derived from the mode when absent; the mode only
/// restricts inside it (an ephemeral cluster never gets tier 3).
fn ceiling_adr_0180(
    mode: &Sourced<Mode>,
    max_tier: Option<&Sourced<Tier>>,
) -> (Ceiling, Source, Option<Problem>) {
    let (declared, why, set_by) = match max_tier {
        Some(t) => (
            t.value,
            format!("bootstrap.maxTier is {} ({})", t.value, t.source),
            t.source.clone(),
        ),
        None => (
            tier_of_mode(mode.value),
            format!(
                "bootstrap.maxTier is absent, so it is derived from bootstrap.mode {} ({}): ephemeral 1.5, persistent 3",
                mode.value, mode.source
            ),
            mode.source.clone(),
        ),
    };
    let ceiling = if mode.value == Mode::Ephemeral && declared == Tier::Three {
        Ceiling {
            tier: Tier::Two,
            rule: format!(
                "{why}, but bootstrap.mode is ephemeral ({}) and an ephemeral cluster never gets tier 3",
                mode.source
            ),
        }
    } else {
        Ceiling {
            tier: declared,
            rule: why,
        }
    };
    (ceiling, set_by, None)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn layer(yaml: &str) -> ValuesLayer {
        ValuesLayer::from_yaml(yaml, Origin::File(PathBuf::from("values.yaml"))).expect("parses")
    }

    fn values(yaml: &str) -> Values {
        layer(yaml).validate().expect("valid")
    }

    fn problems_with(rules: ContractRules, yaml: &str) -> Vec<String> {
        match layer(yaml).validate_with(rules) {
            Err(ValuesError::Invalid { problems }) => {
                problems.iter().map(ToString::to_string).collect()
            }
            other => panic!("expected problems, got {other:?}"),
        }
    }

    fn problems(yaml: &str) -> Vec<String> {
        problems_with(ContractRules::V1, yaml)
    }

    const EPHEMERAL: &str = "bootstrap:\n  mode: ephemeral\n  maxTier: \"1.5\"\n  env: dev\n  buildId: \"26-01-23-01\"\n";

    /// The V1 rule as a disagreeing `maxTier` must quote it.
    const V1_RULE: &str = "under the V1 contract rules maxTier is derived from the mode (ephemeral 1.5, persistent 3) and cannot be overridden; remove it, or choose the ADR-0180 precedence with --contract-rules adr-0180";

    /// What validating a fixture must give.
    enum Expect {
        /// This ceiling, with a rule containing each fragment.
        Ceiling(Tier, &'static [&'static str]),
        /// Exactly these problems, in order.
        Problems(&'static [&'static str]),
    }

    #[test]
    fn the_tier_rules_decide_the_ceiling() {
        use ContractRules::{Adr0180, V1};
        use Expect::{Ceiling, Problems};
        // Lines: 2 mode, 3 maxTier (when given), then env, buildId, platform.
        let cases: &[(&str, ContractRules, String, Expect)] = &[
            (
                "V1: an ephemeral maxTier above the mode's is an error quoting the rule",
                V1,
                "bootstrap:\n  mode: ephemeral\n  maxTier: \"2\"\n  env: dev\n  buildId: b1\n"
                    .into(),
                Problems(&[
                    "values.yaml:3: bootstrap.maxTier: \"2\" disagrees with bootstrap.mode ephemeral (values.yaml:2): under the V1 contract rules maxTier is derived from the mode (ephemeral 1.5, persistent 3) and cannot be overridden; remove it, or choose the ADR-0180 precedence with --contract-rules adr-0180",
                ]),
            ),
            (
                "V1: a persistent maxTier below the mode's is an error too",
                V1,
                "bootstrap:\n  mode: persistent\n  maxTier: \"1.5\"\n  env: dev\nplatform:\n  rdsAvailable: true\n"
                    .into(),
                Problems(&[
                    "values.yaml:3: bootstrap.maxTier: \"1.5\" disagrees with bootstrap.mode persistent (values.yaml:2): under the V1 contract rules maxTier is derived from the mode (ephemeral 1.5, persistent 3) and cannot be overridden; remove it, or choose the ADR-0180 precedence with --contract-rules adr-0180",
                ]),
            ),
            (
                "V1: the disagreement and the derived ceiling's missing RDS are reported at once",
                V1,
                "bootstrap:\n  mode: persistent\n  maxTier: \"1.5\"\n  env: dev\n".into(),
                Problems(&[
                    "values.yaml:3: bootstrap.maxTier: \"1.5\" disagrees with bootstrap.mode persistent (values.yaml:2): under the V1 contract rules",
                    "values.yaml:2: platform.rdsAvailable: is absent, but tier 3 needs RDS (Backstage, Grafana's PostgreSQL, Keycloak): set platform.rdsAvailable: true once Terraform has created the instance, or lower the ceiling",
                ]),
            ),
            (
                "V1: a maxTier that agrees with the mode is fine and said to agree",
                V1,
                "bootstrap:\n  mode: persistent\n  maxTier: \"3\"\n  env: dev\nplatform:\n  rdsAvailable: true\n"
                    .into(),
                Ceiling(
                    Tier::Three,
                    &[
                        "derived from bootstrap.mode persistent (values.yaml:2)",
                        "bootstrap.maxTier 3 (values.yaml:3) agrees",
                    ],
                ),
            ),
            (
                "V1: without maxTier an ephemeral cluster gets 1.5",
                V1,
                "bootstrap:\n  mode: ephemeral\n  env: dev\n  buildId: b1\n".into(),
                Ceiling(
                    Tier::OneAndHalf,
                    &["V1 contract rules", "derived from bootstrap.mode ephemeral (values.yaml:2)"],
                ),
            ),
            (
                "V1: without maxTier a persistent cluster gets 3",
                V1,
                "bootstrap:\n  mode: persistent\n  env: dev\nplatform:\n  rdsAvailable: true\n"
                    .into(),
                Ceiling(
                    Tier::Three,
                    &["derived from bootstrap.mode persistent (values.yaml:2)"],
                ),
            ),
            (
                "V1: a persistent cluster without rdsAvailable breaks the RDS rule at its mode",
                V1,
                "bootstrap:\n  mode: persistent\n  env: dev\n".into(),
                Problems(&[
                    "values.yaml:2: platform.rdsAvailable: is absent, but tier 3 needs RDS (Backstage, Grafana's PostgreSQL, Keycloak): set platform.rdsAvailable: true once Terraform has created the instance, or lower the ceiling (under the V1 contract rules it follows bootstrap.mode; a lower bootstrap.maxTier needs --contract-rules adr-0180)",
                ]),
            ),
            (
                "V1: rdsAvailable false is reported at its own line",
                V1,
                "bootstrap:\n  mode: persistent\n  env: dev\nplatform:\n  rdsAvailable: false\n"
                    .into(),
                Problems(&[
                    "values.yaml:5: platform.rdsAvailable: is false, but tier 3 needs RDS",
                ]),
            ),
            (
                "ADR-0180: an ephemeral maxTier 3 is capped at 2, saying why",
                Adr0180,
                "bootstrap:\n  mode: ephemeral\n  maxTier: \"3\"\n  env: dev\n  buildId: b1\nplatform:\n  rdsAvailable: true\n"
                    .into(),
                Ceiling(
                    Tier::Two,
                    &[
                        "bootstrap.maxTier is 3 (values.yaml:3), but bootstrap.mode is ephemeral (values.yaml:2) and an ephemeral cluster never gets tier 3",
                    ],
                ),
            ),
            (
                "ADR-0180: a persistent maxTier 1.5 is the ceiling",
                Adr0180,
                "bootstrap:\n  mode: persistent\n  maxTier: \"1.5\"\n  env: dev\n".into(),
                Ceiling(Tier::OneAndHalf, &["bootstrap.maxTier is 1.5 (values.yaml:3)"]),
            ),
            (
                "ADR-0180: without maxTier the ceiling is derived from the mode",
                Adr0180,
                "bootstrap:\n  mode: ephemeral\n  env: dev\n  buildId: b1\n".into(),
                Ceiling(
                    Tier::OneAndHalf,
                    &["bootstrap.maxTier is absent, so it is derived from bootstrap.mode ephemeral (values.yaml:2)"],
                ),
            ),
            (
                "ADR-0180: a ceiling of 2 without rdsAvailable breaks the RDS rule at maxTier",
                Adr0180,
                "bootstrap:\n  mode: ephemeral\n  maxTier: \"3\"\n  env: dev\n  buildId: b1\n".into(),
                Problems(&[
                    "values.yaml:3: platform.rdsAvailable: is absent, but tier 2 needs RDS (Backstage, Grafana's PostgreSQL, Keycloak): set platform.rdsAvailable: true once Terraform has created the instance, or lower the ceiling (with bootstrap.maxTier)",
                ]),
            ),
            (
                "ADR-0180: a derived persistent ceiling without rdsAvailable breaks it at the mode",
                Adr0180,
                "bootstrap:\n  mode: persistent\n  env: dev\n".into(),
                Problems(&["values.yaml:2: platform.rdsAvailable: is absent, but tier 3 needs RDS"]),
            ),
            (
                "ADR-0180: rdsAvailable false is reported at its own line",
                Adr0180,
                "bootstrap:\n  mode: persistent\n  maxTier: \"2\"\n  env: dev\nplatform:\n  rdsAvailable: false\n"
                    .into(),
                Problems(&["values.yaml:6: platform.rdsAvailable: is false, but tier 2 needs RDS"]),
            ),
            (
                "both: an invalid maxTier is the only problem, no ceiling is guessed",
                V1,
                "bootstrap:\n  mode: persistent\n  maxTier: \"2.5\"\n  env: dev\n".into(),
                Problems(&["values.yaml:3: bootstrap.maxTier: \"2.5\" is not a tier"]),
            ),
        ];
        for (name, rules, yaml, expect) in cases {
            let got = layer(yaml).validate_with(*rules);
            match (expect, got) {
                (Ceiling(tier, fragments), Ok(v)) => {
                    assert_eq!(v.ceiling.tier, *tier, "{name}: {}", v.ceiling.rule);
                    assert_eq!(v.rules, *rules, "{name}");
                    for fragment in *fragments {
                        assert!(
                            v.ceiling.rule.contains(fragment),
                            "{name}: {:?} lacks {fragment:?}",
                            v.ceiling.rule
                        );
                    }
                }
                (Problems(expected), Err(ValuesError::Invalid { problems })) => {
                    let got: Vec<String> = problems.iter().map(ToString::to_string).collect();
                    assert_eq!(got.len(), expected.len(), "{name}: {got:#?}");
                    for (g, e) in got.iter().zip(expected.iter()) {
                        assert!(g.starts_with(e), "{name}:\n got {g:?}\nwant {e:?}");
                    }
                }
                (_, got) => panic!("{name}: unexpected {got:?}"),
            }
        }
    }

    #[test]
    fn a_disagreeing_max_tier_names_the_flag_or_variable_that_set_it() {
        for source in [
            Source::Flag {
                flag: "--max-tier".into(),
            },
            Source::Env {
                var: "PREFLIGHT_MAX_TIER".into(),
            },
        ] {
            let flags = ValuesLayer {
                max_tier: Some(Sourced::new("2".into(), source.clone())),
                ..ValuesLayer::default()
            };
            let Err(ValuesError::Invalid { problems }) = layer(EPHEMERAL).merge(flags).validate()
            else {
                panic!("expected problems");
            };
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert_eq!(problems[0].field, "bootstrap.maxTier");
            assert_eq!(problems[0].source.as_ref(), Some(&source));
            assert!(problems[0].message.ends_with(V1_RULE), "{}", problems[0]);
        }
    }

    #[test]
    fn contract_rules_are_named_v1_and_adr_0180() {
        assert_eq!(ContractRules::default(), ContractRules::V1);
        for (rules, name) in [
            (ContractRules::V1, "v1"),
            (ContractRules::Adr0180, "adr-0180"),
        ] {
            assert_eq!(rules.to_string(), name);
            assert_eq!(name.parse::<ContractRules>(), Ok(rules));
            assert_eq!(
                serde_json::to_value(rules).expect("serializes"),
                serde_json::json!(name)
            );
        }
        for bad in ["", "V1", "adr0180", "adr-180", "v2"] {
            assert_eq!(
                bad.parse::<ContractRules>(),
                Err(InvalidContractRules(bad.to_owned())),
                "{bad:?}"
            );
        }
        let v = values(EPHEMERAL);
        assert_eq!(v.rules, ContractRules::V1);
        assert_eq!(serde_json::to_value(&v).expect("serializes")["rules"], "v1");
    }

    #[test]
    fn records_where_each_flag_was_declared_true() {
        let file = layer(&format!(
            "{EPHEMERAL}platform:\n  rdsAvailable: false\n  storageClassReady: true\n  irsaConfigured: true\n"
        ));
        let cluster = ValuesLayer::from_yaml(
            "platform:\n  irsaConfigured: false\n  s3Available: true\n",
            Origin::ConfigMap {
                object: "kube-system/goldenpath-bootstrap".into(),
                key: "values.yaml".into(),
            },
        )
        .expect("parses");
        let v = file.merge(cluster).validate().expect("valid");
        let at = |flag| v.declared(flag).map(ToString::to_string);
        assert_eq!(at(PlatformFlag::RdsAvailable), None, "declared false");
        assert_eq!(
            at(PlatformFlag::StorageClassReady).as_deref(),
            Some("values.yaml:8")
        );
        assert_eq!(at(PlatformFlag::IrsaConfigured), None, "overridden false");
        assert_eq!(
            at(PlatformFlag::S3Available).as_deref(),
            Some("ConfigMap kube-system/goldenpath-bootstrap (key values.yaml, line 3)")
        );
        assert_eq!(
            v.platform,
            Platform {
                rds_available: false,
                storage_class_ready: true,
                irsa_configured: false,
                s3_available: true,
            }
        );
        assert_eq!(
            values(EPHEMERAL).declared(PlatformFlag::StorageClassReady),
            None,
            "absent"
        );
        let keys = [
            PlatformFlag::RdsAvailable,
            PlatformFlag::StorageClassReady,
            PlatformFlag::IrsaConfigured,
            PlatformFlag::S3Available,
        ]
        .map(PlatformFlag::key);
        assert_eq!(
            keys,
            [
                "platform.rdsAvailable",
                "platform.storageClassReady",
                "platform.irsaConfigured",
                "platform.s3Available"
            ]
        );
    }

    #[test]
    fn derives_host_suffix_and_owner_id_for_an_ephemeral_build() {
        let v = values(EPHEMERAL);
        assert_eq!(v.host_suffix.value, "b-26-01-23-01.dev.goldenpathidp.io");
        assert_eq!(v.owner_id.value, "goldenpath-dev-26-01-23-01");
        assert_eq!(
            v.app_host("keycloak"),
            "keycloak.b-26-01-23-01.dev.goldenpathidp.io"
        );
        assert_eq!(v.ceiling.tier, Tier::OneAndHalf);
        assert!(
            v.ceiling
                .rule
                .contains("bootstrap.maxTier 1.5 (values.yaml:3) agrees"),
            "{}",
            v.ceiling.rule
        );
    }

    #[test]
    fn derives_the_ceiling_from_the_mode_when_max_tier_is_absent() {
        for rules in [ContractRules::V1, ContractRules::Adr0180] {
            let v = layer(
                "bootstrap:\n  mode: persistent\n  env: prod\nplatform:\n  rdsAvailable: true\n",
            )
            .validate_with(rules)
            .expect("valid");
            assert_eq!(v.ceiling.tier, Tier::Three, "{rules}");
            assert_eq!(v.host_suffix.value, "prod.goldenpathidp.io");
            let v = layer("bootstrap:\n  mode: ephemeral\n  env: dev\n  buildId: b1\n")
                .validate_with(rules)
                .expect("valid");
            assert_eq!(v.ceiling.tier, Tier::OneAndHalf, "{rules}");
            assert!(
                v.ceiling.rule.contains("derived from bootstrap.mode"),
                "{rules}"
            );
        }
    }

    #[test]
    fn an_ephemeral_cluster_never_gets_tier_three() {
        let yaml = "bootstrap:\n  mode: ephemeral\n  maxTier: \"3\"\n  env: dev\n  buildId: b1\nplatform:\n  rdsAvailable: true\n";
        // ADR-0180: capped inside the declared ceiling.
        let v = layer(yaml)
            .validate_with(ContractRules::Adr0180)
            .expect("valid");
        assert_eq!(v.ceiling.tier, Tier::Two);
        assert!(
            v.ceiling.rule.contains("never gets tier 3"),
            "{}",
            v.ceiling.rule
        );
        // V1: asking for it at all is a contract error.
        let p = problems(yaml);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with(
                "values.yaml:3: bootstrap.maxTier: \"3\" disagrees with bootstrap.mode ephemeral"
            ),
            "{p:?}"
        );
    }

    #[test]
    fn a_numeric_max_tier_is_read_as_written() {
        assert_eq!(
            layer("bootstrap:\n  mode: persistent\n  env: dev\n  maxTier: 1.5\n")
                .validate_with(ContractRules::Adr0180)
                .expect("valid")
                .ceiling
                .tier,
            Tier::OneAndHalf
        );
        assert_eq!(
            values("bootstrap:\n  mode: persistent\n  env: dev\n  maxTier: 3\nplatform:\n  rdsAvailable: true\n")
                .max_tier
                .map(|t| t.value),
            Some(Tier::Three)
        );
        for rules in [ContractRules::V1, ContractRules::Adr0180] {
            assert!(
                problems_with(
                    rules,
                    "bootstrap:\n  mode: persistent\n  env: dev\n  maxTier: 2.0\n"
                )[0]
                .contains("\"2.0\" is not a tier"),
                "{rules}"
            );
        }
    }

    #[test]
    fn reports_every_problem_with_field_and_line() {
        let p = problems("bootstrap:\n  mode: sometimes\n  maxTier: \"2.5\"\n  env: qa\n");
        assert_eq!(p.len(), 3, "{p:?}");
        assert_eq!(
            p[0],
            "values.yaml:2: bootstrap.mode: \"sometimes\" is not a mode (expected ephemeral or persistent)"
        );
        assert!(p[1].starts_with("values.yaml:3: bootstrap.maxTier: \"2.5\" is not a tier"));
        assert!(p[2].starts_with("values.yaml:4: bootstrap.env: \"qa\" is not an environment"));
    }

    #[test]
    fn requires_a_build_id_for_ephemeral_clusters() {
        let p = problems("bootstrap:\n  mode: ephemeral\n  env: dev\n");
        assert_eq!(
            p,
            ["values.yaml:2: bootstrap.buildId: is required when bootstrap.mode is ephemeral"]
        );
        assert!(
            problems("bootstrap:\n  mode: ephemeral\n  env: dev\n  buildId: Bad_Id\n")[0]
                .contains("cannot be part of a hostname")
        );
    }

    #[test]
    fn rejects_a_host_suffix_outside_the_clusters_zone() {
        let p = problems(&format!(
            "{EPHEMERAL}dns:\n  hostSuffix: dev.goldenpathidp.io\n"
        ));
        assert!(
            p[0].contains("outside \"b-26-01-23-01.dev.goldenpathidp.io\""),
            "{p:?}"
        );
        let p = problems(
            "bootstrap:\n  mode: persistent\n  env: dev\ndns:\n  hostSuffix: b-1.dev.goldenpathidp.io\n",
        );
        assert!(p[0].contains("build subdomain"), "{p:?}");
        // An ephemeral cluster's build id may be any DNS label (`buildId: b1`): its subdomain
        // `b-b1` is as much a build's as a dated one.
        let p = problems(
            "bootstrap:\n  mode: persistent\n  env: dev\ndns:\n  hostSuffix: b-b1.dev.goldenpathidp.io\n",
        );
        assert!(p[0].contains("build subdomain"), "{p:?}");
        let v = values(
            "bootstrap:\n  mode: persistent\n  env: dev\nplatform:\n  rdsAvailable: true\ndns:\n  hostSuffix: apps.dev.goldenpathidp.io\n",
        );
        assert_eq!(v.host_suffix.value, "apps.dev.goldenpathidp.io");
    }

    #[test]
    fn rejects_unknown_keys_and_malformed_yaml_with_their_place() {
        let err = ValuesLayer::from_yaml(
            "bootstrap:\n  mode: ephemeral\n  maxTeir: 1\n",
            Origin::File("v.yaml".into()),
        )
        .expect_err("unknown key");
        let msg = err.to_string();
        assert!(
            msg.starts_with("v.yaml:3:3: bootstrap.maxTeir: unknown field `maxTeir`"),
            "{msg}"
        );
        let err = ValuesLayer::from_yaml("bootstrap: [\n", Origin::File("v.yaml".into()))
            .expect_err("malformed");
        assert!(
            err.to_string().starts_with("v.yaml:1:12: bootstrap: "),
            "{err}"
        );
        // A value read with its place is named by its key alone.
        let err = ValuesLayer::from_yaml(
            "platform:\n  rdsAvailable: maybe\n",
            Origin::ConfigMap {
                object: "kube-system/goldenpath-bootstrap".into(),
                key: "values.yaml".into(),
            },
        )
        .expect_err("not a boolean");
        assert!(
            err.to_string().starts_with(
                "ConfigMap kube-system/goldenpath-bootstrap (key values.yaml, line 2, column 17): platform.rdsAvailable: invalid boolean"
            ),
            "{err}"
        );
        let err =
            ValuesLayer::from_bytes(b"bootstrap:\n  mode: \xff\n", Origin::File("v.yaml".into()))
                .expect_err("not UTF-8");
        assert!(
            err.to_string()
                .starts_with("v.yaml:2:9: not UTF-8 text (byte 0xff)"),
            "{err}"
        );
        let layer =
            ValuesLayer::from_yaml("# filled in by Terraform\n", Origin::File("v.yaml".into()))
                .expect("comments only");
        assert_eq!(layer, ValuesLayer::default());
    }

    #[test]
    fn later_layers_win_field_by_field() {
        let flags = ValuesLayer {
            max_tier: Some(Sourced::new(
                "1".into(),
                Source::Flag {
                    flag: "--max-tier".into(),
                },
            )),
            ..ValuesLayer::default()
        };
        // ADR-0180: the flag's maxTier replaces the file's and sets the ceiling.
        let v = layer(EPHEMERAL)
            .merge(flags.clone())
            .validate_with(ContractRules::Adr0180)
            .expect("valid");
        assert_eq!(v.ceiling.tier, Tier::One);
        assert!(v.ceiling.rule.contains("--max-tier"), "{}", v.ceiling.rule);
        assert_eq!(v.env.value, "dev");
        // V1: the flag still wins over the file's (agreeing) 1.5, so it is the one reported.
        let Err(ValuesError::Invalid { problems }) = layer(EPHEMERAL).merge(flags).validate()
        else {
            panic!("expected problems");
        };
        assert_eq!(
            problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [format!(
                "--max-tier: bootstrap.maxTier: \"1\" disagrees with bootstrap.mode ephemeral (values.yaml:2): {V1_RULE}"
            )]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(128))]

        /// Values written in a file read back as written, each at its line, and validate (or
        /// not) without a panic; a valid contract's ceiling follows the V1 rule.
        #[test]
        fn written_values_read_back_at_their_lines(
            mode in "(ephemeral|persistent|[a-z]{0,8})",
            env in "(dev|prod|[a-z]{1,6})",
            build_id in proptest::option::of("[a-z0-9-]{1,12}"),
            rds in proptest::option::of(proptest::bool::ANY),
            suffix in proptest::option::of("[a-z0-9.-]{1,24}"),
        ) {
            let mut text = format!("bootstrap:\n  mode: \"{mode}\"\n  env: \"{env}\"\n");
            let mut line = 3;
            let mut build_line = None;
            if let Some(b) = &build_id {
                text.push_str(&format!("  buildId: \"{b}\"\n"));
                line += 1;
                build_line = Some(line);
            }
            if let Some(r) = rds {
                text.push_str(&format!("platform:\n  rdsAvailable: {r}\n"));
                line += 2;
            }
            if let Some(h) = &suffix {
                text.push_str(&format!("dns:\n  hostSuffix: \"{h}\"\n"));
                line += 2;
            }
            let layer = layer(&text);
            let at = |s: &Option<Sourced<String>>| s.as_ref().map(|s| (s.value.clone(), s.source.to_string()));
            proptest::prop_assert_eq!(at(&layer.mode), Some((mode.clone(), "values.yaml:2".to_owned())));
            proptest::prop_assert_eq!(at(&layer.env), Some((env.clone(), "values.yaml:3".to_owned())));
            proptest::prop_assert_eq!(
                at(&layer.build_id),
                build_id.clone().zip(build_line).map(|(b, l)| (b, format!("values.yaml:{l}")))
            );
            proptest::prop_assert_eq!(layer.rds_available.as_ref().map(|r| r.value), rds);
            proptest::prop_assert_eq!(at(&layer.host_suffix).map(|h| h.0), suffix.clone());
            proptest::prop_assert_eq!(
                at(&layer.host_suffix).map(|h| h.1),
                suffix.as_ref().map(|_| format!("values.yaml:{line}"))
            );
            let _ = layer.clone().validate_with(ContractRules::Adr0180);
            if let Ok(v) = layer.validate() {
                let tier = if mode == "ephemeral" { Tier::OneAndHalf } else { Tier::Three };
                proptest::prop_assert_eq!(v.ceiling.tier, tier);
                proptest::prop_assert!(is_dns_name(&v.host_suffix.value));
            }
        }
    }
}
