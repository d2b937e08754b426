//! The bootstrap contract: raw layers of values, their merge, and their validation into
//! [`Values`] with the platform's tier rules applied.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::source::{Origin, Source, Sourced};
use crate::tier::Tier;

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
    #[error("{origin}: {message}")]
    Parse {
        /// Where the document came from.
        origin: String,
        /// The parser's message, with line, column and a snippet.
        message: String,
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
        let doc: Document = if text.trim().is_empty() {
            Document::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| ValuesError::Parse {
                origin: origin.to_string(),
                message: e.to_string(),
            })?
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
        let text = std::fs::read_to_string(path).map_err(|source| ValuesError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text, Origin::File(path.to_owned()))
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
    /// The base domain (`goldenpathidp.io` unless set).
    pub base_domain: Sourced<String>,
    /// The suffix under which this cluster's apps live.
    pub host_suffix: Sourced<String>,
    /// The ExternalDNS owner id of this cluster.
    pub owner_id: Sourced<String>,
    /// The highest tier this cluster may run.
    pub ceiling: Ceiling,
}

impl Values {
    /// The hostname of an app on this cluster: `{app}.{hostSuffix}`.
    #[must_use]
    pub fn app_host(&self, app: &str) -> String {
        format!("{app}.{}", self.host_suffix.value)
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
    /// Validates the merged layers into [`Values`], reporting every problem at once.
    pub fn validate(self) -> Result<Values, ValuesError> {
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
                    && h.value
                        .trim_end_matches(&format!(".{zone}"))
                        .split('.')
                        .any(|l| l.starts_with("b-")) =>
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

        let ceiling = ceiling(&mode, max_tier.as_ref());

        let platform = Platform {
            rds_available: self.rds_available.is_some_and(|v| v.value),
            storage_class_ready: self.storage_class_ready.is_some_and(|v| v.value),
            irsa_configured: self.irsa_configured.is_some_and(|v| v.value),
            s3_available: self.s3_available.is_some_and(|v| v.value),
        };

        match (host_suffix, owner_id) {
            (Some(host_suffix), Some(owner_id)) if problems.is_empty() => Ok(Values {
                mode,
                max_tier,
                env,
                build_id,
                platform,
                base_domain,
                host_suffix,
                owner_id,
                ceiling,
            }),
            _ => Err(ValuesError::Invalid { problems }),
        }
    }
}

/// The V1 tier rules: `maxTier` is the ceiling, derived from the mode when absent; the mode
/// only restricts inside it (an ephemeral cluster never gets tier 3).
fn ceiling(mode: &Sourced<Mode>, max_tier: Option<&Sourced<Tier>>) -> Ceiling {
    let (declared, why) = match max_tier {
        Some(t) => (
            t.value,
            format!("bootstrap.maxTier is {} ({})", t.value, t.source),
        ),
        None => {
            let tier = match mode.value {
                Mode::Ephemeral => Tier::OneAndHalf,
                Mode::Persistent => Tier::Three,
            };
            (
                tier,
                format!(
                    "bootstrap.maxTier is absent, so it is derived from bootstrap.mode {} ({}): ephemeral 1.5, persistent 3",
                    mode.value, mode.source
                ),
            )
        }
    };
    if mode.value == Mode::Ephemeral && declared == Tier::Three {
        return Ceiling {
            tier: Tier::Two,
            rule: format!(
                "{why}, but bootstrap.mode is ephemeral ({}) and an ephemeral cluster never gets tier 3",
                mode.source
            ),
        };
    }
    Ceiling {
        tier: declared,
        rule: why,
    }
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

    fn problems(yaml: &str) -> Vec<String> {
        match layer(yaml).validate() {
            Err(ValuesError::Invalid { problems }) => {
                problems.iter().map(ToString::to_string).collect()
            }
            other => panic!("expected problems, got {other:?}"),
        }
    }

    const EPHEMERAL: &str = "bootstrap:\n  mode: ephemeral\n  maxTier: \"1.5\"\n  env: dev\n  buildId: \"26-01-23-01\"\n";

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
            v.ceiling.rule.contains("values.yaml:3"),
            "{}",
            v.ceiling.rule
        );
    }

    #[test]
    fn derives_the_ceiling_from_the_mode_when_max_tier_is_absent() {
        let v = values("bootstrap:\n  mode: persistent\n  env: prod\n");
        assert_eq!(v.ceiling.tier, Tier::Three);
        assert_eq!(v.host_suffix.value, "prod.goldenpathidp.io");
        let v = values("bootstrap:\n  mode: ephemeral\n  env: dev\n  buildId: b1\n");
        assert_eq!(v.ceiling.tier, Tier::OneAndHalf);
        assert!(v.ceiling.rule.contains("derived from bootstrap.mode"));
    }

    #[test]
    fn an_ephemeral_cluster_never_gets_tier_three() {
        let v =
            values("bootstrap:\n  mode: ephemeral\n  maxTier: \"3\"\n  env: dev\n  buildId: b1\n");
        assert_eq!(v.ceiling.tier, Tier::Two);
        assert!(v.ceiling.rule.contains("never gets tier 3"));
    }

    #[test]
    fn a_numeric_max_tier_is_read_as_written() {
        assert_eq!(
            values("bootstrap:\n  mode: persistent\n  env: dev\n  maxTier: 1.5\n")
                .ceiling
                .tier,
            Tier::OneAndHalf
        );
        assert!(
            problems("bootstrap:\n  mode: persistent\n  env: dev\n  maxTier: 2.0\n")[0]
                .contains("\"2.0\" is not a tier")
        );
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
        let v = values(
            "bootstrap:\n  mode: persistent\n  env: dev\ndns:\n  hostSuffix: apps.dev.goldenpathidp.io\n",
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
            msg.starts_with("v.yaml: ")
                && msg.contains("line 3")
                && msg.contains("unknown field `maxTeir`"),
            "{msg}"
        );
        let err = ValuesLayer::from_yaml("bootstrap: [\n", Origin::File("v.yaml".into()))
            .expect_err("malformed");
        assert!(err.to_string().starts_with("v.yaml: "), "{err}");
    }

    #[test]
    fn later_layers_win_field_by_field() {
        let file = layer(EPHEMERAL);
        let flags = ValuesLayer {
            max_tier: Some(Sourced::new(
                "1".into(),
                Source::Flag {
                    flag: "--max-tier".into(),
                },
            )),
            ..ValuesLayer::default()
        };
        let v = file.merge(flags).validate().expect("valid");
        assert_eq!(v.ceiling.tier, Tier::One);
        assert!(v.ceiling.rule.contains("--max-tier"));
        assert_eq!(v.env.value, "dev");
    }
}
