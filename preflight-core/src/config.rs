//! Per-check settings: one optional file whose defaults follow the platform's conventions,
//! so that `preflight --tier 2` needs no configuration on a conventional cluster.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::tier::Tier;

/// Errors of loading the settings file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not valid YAML of the settings' shape, or an unknown key.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message, with line, column and a snippet.
        message: String,
    },
    /// A setting is out of range or names something that does not exist.
    #[error("{path}: {field}: {message}")]
    Invalid {
        /// The file (or `defaults`).
        path: String,
        /// The setting, as written in the file.
        field: String,
        /// What is wrong.
        message: String,
    },
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let raw = String::deserialize(d)?;
    humantime::parse_duration(&raw).map_err(|e| {
        serde::de::Error::custom(format!(
            "{raw:?} is not a duration ({e}); write e.g. 10s, 500ms, 2m"
        ))
    })
}

/// How the runner treats time.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct RunnerSettings {
    /// Longest a single attempt of a check may take.
    #[serde(deserialize_with = "duration", serialize_with = "humantime_ser")]
    pub attempt_timeout: Duration,
    /// First delay between attempts of a transient failure.
    #[serde(deserialize_with = "duration", serialize_with = "humantime_ser")]
    pub backoff_initial: Duration,
    /// Longest delay between attempts; also the longest a watch waits before re-checking.
    #[serde(deserialize_with = "duration", serialize_with = "humantime_ser")]
    pub backoff_max: Duration,
}

fn humantime_ser<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

impl Default for RunnerSettings {
    fn default() -> Self {
        RunnerSettings {
            attempt_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(15),
        }
    }
}

/// `checks.kube-api`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct KubeApiSettings {
    /// The oldest supported Kubernetes minor version, `"1.29"`.
    pub min_version: String,
}

impl Default for KubeApiSettings {
    fn default() -> Self {
        KubeApiSettings {
            min_version: "1.29".into(),
        }
    }
}

/// `checks.nodes-ready`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct NodesSettings {
    /// Fewest Ready, schedulable nodes.
    pub min_ready: usize,
    /// CPU architectures the platform's images are built for; nodes of another
    /// architecture would fail with `exec format error`. Empty: any.
    pub architectures: Vec<String>,
}

impl Default for NodesSettings {
    fn default() -> Self {
        NodesSettings {
            min_ready: 1,
            architectures: vec!["amd64".into()],
        }
    }
}

/// A namespaced object, `namespace/name`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectRef {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl ObjectRef {
    /// `namespace/name`.
    #[must_use]
    pub fn new(namespace: &str, name: &str) -> Self {
        ObjectRef {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl<'de> Deserialize<'de> for ObjectRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        match raw.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(ObjectRef::new(ns, name))
            }
            _ => Err(serde::de::Error::custom(format!(
                "{raw:?} is not namespace/name"
            ))),
        }
    }
}

/// `checks.coredns` and `checks.cni`: one workload.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkloadSettings {
    /// The workload, `namespace/name`.
    pub workload: ObjectRef,
}

/// `checks.crds` and `checks.observability-crds`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CrdSettings {
    /// CRD names, `plural.group`.
    pub names: Vec<String>,
}

/// `checks.ingress-class`, `checks.cluster-secret-store`: one named cluster-scoped object.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NamedSettings {
    /// The object's name.
    pub name: String,
}

/// `checks.irsa`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IrsaSettings {
    /// Service accounts that must carry `eks.amazonaws.com/role-arn`.
    pub service_accounts: Vec<ObjectRef>,
}

/// One ExternalSecret and the keys its target Secret must hold.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SyncedSecret {
    /// The ExternalSecret, `namespace/name`.
    pub external_secret: ObjectRef,
    /// The Secret it writes (its `spec.target.name`), when not named like the ExternalSecret.
    /// preflight reads Secrets only by name, so the name is known before the run.
    #[serde(default)]
    pub secret: Option<String>,
    /// Keys the app reads from the synced Secret.
    pub keys: Vec<String>,
}

impl SyncedSecret {
    /// The name of the Secret it writes.
    #[must_use]
    pub fn target(&self) -> &str {
        self.secret.as_deref().unwrap_or(&self.external_secret.name)
    }
}

/// `checks.external-secrets`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExternalSecretSettings {
    /// The ExternalSecrets tier 2's apps depend on.
    pub secrets: Vec<SyncedSecret>,
}

/// How strictly the PostgreSQL client checks the server's certificate (libpq's `sslmode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Encrypt, but trust any certificate (reported as a warning).
    Require,
    /// Encrypt and check the certificate chains to a trusted CA.
    VerifyCa,
    /// Also check the certificate names the host.
    #[default]
    VerifyFull,
}

/// Which keys of the synced Secret hold each connection parameter.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct CredentialKeys {
    /// Host key.
    pub host: String,
    /// Port key.
    pub port: String,
    /// User key.
    pub user: String,
    /// Password key.
    pub password: String,
    /// Database key, when the Secret names the database.
    pub database: Option<String>,
}

impl Default for CredentialKeys {
    /// The `POSTGRES_*` keys app charts read.
    fn default() -> Self {
        CredentialKeys {
            host: "POSTGRES_HOST".into(),
            port: "POSTGRES_PORT".into(),
            user: "POSTGRES_USER".into(),
            password: "POSTGRES_PASSWORD".into(),
            database: None,
        }
    }
}

impl CredentialKeys {
    /// The shape of an RDS-managed secret: `username`, `password`, `host`, `port`, `dbname`.
    #[must_use]
    pub fn rds() -> Self {
        CredentialKeys {
            host: "host".into(),
            port: "port".into(),
            user: "username".into(),
            password: "password".into(),
            database: Some("dbname".into()),
        }
    }
}

/// One app database preflight logs in to, with the app's own credentials.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PostgresTarget {
    /// The app, for messages.
    pub app: String,
    /// The synced Secret holding the credentials, `namespace/name`.
    #[serde(default)]
    pub secret: Option<ObjectRef>,
    /// Its key names.
    #[serde(default)]
    pub keys: CredentialKeys,
    /// Host, overriding the Secret's.
    #[serde(default)]
    pub host: Option<String>,
    /// Port, overriding the Secret's.
    #[serde(default)]
    pub port: Option<u16>,
    /// User, overriding the Secret's.
    #[serde(default)]
    pub user: Option<String>,
    /// Database, overriding the Secret's.
    #[serde(default)]
    pub database: Option<String>,
    /// An environment variable holding the password (CI and local runs), overriding the Secret's.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Certificate checking.
    #[serde(default)]
    pub ssl_mode: SslMode,
    /// A PEM bundle of CAs to trust, such as the RDS global bundle; default: the system's.
    #[serde(default)]
    pub ca_bundle: Option<std::path::PathBuf>,
    /// Whether the role must have `CREATEDB` (Backstage creates its plugin databases).
    #[serde(default)]
    pub require_createdb: bool,
    /// Also check, as advice, that the server refuses a plaintext connection.
    #[serde(default)]
    pub check_plaintext_refused: bool,
}

/// `checks.postgres`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PostgresSettings {
    /// The app databases of tier 2.
    pub databases: Vec<PostgresTarget>,
}

/// Where the app's Secret names the database host.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HostInSecret {
    /// The Secret, `namespace/name`.
    pub secret: ObjectRef,
    /// Its key holding the host.
    pub key: String,
}

/// `checks.rds-instance`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RdsSettings {
    /// The DB instance identifier.
    pub identifier: String,
    /// The Secret whose host must equal the instance's endpoint; none: no comparison.
    #[serde(default)]
    pub host_secret: Option<HostInSecret>,
}

/// `checks.cluster-issuers`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterIssuerSettings {
    /// The ClusterIssuers that must be Ready.
    pub names: Vec<String>,
    /// The tier that first needs TLS certificates, where the check runs.
    pub tier: Tier,
}

impl Default for ClusterIssuerSettings {
    fn default() -> Self {
        ClusterIssuerSettings {
            names: names(&["selfsigned", "letsencrypt-staging", "letsencrypt-prod"]),
            tier: Tier::Two,
        }
    }
}

/// `checks.tier-gating`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct TierGatingSettings {
    /// The namespace of ArgoCD's Applications.
    pub namespace: String,
    /// The label carrying an Application's tier.
    pub label: String,
    /// Applications exempt from the rule, such as the app-of-apps root.
    pub exempt: Vec<String>,
}

impl Default for TierGatingSettings {
    fn default() -> Self {
        TierGatingSettings {
            namespace: "argocd".into(),
            label: "goldenpath.idp/tier".into(),
            exempt: Vec::new(),
        }
    }
}

/// `checks.route53-zone`, also the zones `dns-scope` reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Route53ZoneSettings {
    /// The zone's domain; default: the contract's base domain.
    pub domain: Option<String>,
    /// A private hosted zone (associated with the cluster's VPC) rather than a public one.
    pub private: bool,
}

/// A client whose client-credentials grant proves the realm issues tokens.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientCredentials {
    /// The client id.
    pub client_id: String,
    /// The Secret holding the client secret, `namespace/name`.
    pub secret: ObjectRef,
    /// Its key.
    #[serde(default = "client_secret_key")]
    pub key: String,
}

fn client_secret_key() -> String {
    "client-secret".into()
}

/// `checks.keycloak-realm`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct KeycloakSettings {
    /// Keycloak's public base URL; default `https://keycloak.{hostSuffix}`.
    pub url: Option<String>,
    /// The realm the platform's apps log in with.
    pub realm: String,
    /// A PEM bundle of CAs to trust besides the system's (a private CA).
    pub ca_bundle: Option<std::path::PathBuf>,
    /// Also obtain a token with a client-credentials grant.
    pub client_credentials: Option<ClientCredentials>,
}

impl Default for KeycloakSettings {
    fn default() -> Self {
        KeycloakSettings {
            url: None,
            realm: "goldenpath".into(),
            ca_bundle: None,
            client_credentials: None,
        }
    }
}

/// `checks.storage-class`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct StorageClassSettings {
    /// A class that must exist (e.g. `gp3`); when unset, exactly one default class must exist.
    pub name: Option<String>,
}

/// Settings of every check.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct CheckSettings {
    /// `kube-api`.
    pub kube_api: KubeApiSettings,
    /// `nodes-ready`.
    pub nodes_ready: NodesSettings,
    /// `coredns`.
    pub coredns: WorkloadSettings,
    /// `cni`.
    pub cni: WorkloadSettings,
    /// `crds`.
    pub crds: CrdSettings,
    /// `observability-crds`.
    pub observability_crds: CrdSettings,
    /// `ingress-class`.
    pub ingress_class: NamedSettings,
    /// `cluster-secret-store`.
    pub cluster_secret_store: NamedSettings,
    /// `irsa`.
    pub irsa: IrsaSettings,
    /// `storage-class`.
    pub storage_class: StorageClassSettings,
    /// `external-secrets`.
    pub external_secrets: ExternalSecretSettings,
    /// `postgres`.
    pub postgres: PostgresSettings,
    /// `rds-instance`.
    pub rds_instance: RdsSettings,
    /// `cluster-issuers`.
    pub cluster_issuers: ClusterIssuerSettings,
    /// `tier-gating`.
    pub tier_gating: TierGatingSettings,
    /// `route53-zone` (and the zones `dns-scope` reads).
    pub route53_zone: Route53ZoneSettings,
    /// `keycloak-realm`.
    pub keycloak_realm: KeycloakSettings,
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

impl Default for CheckSettings {
    fn default() -> Self {
        CheckSettings {
            kube_api: KubeApiSettings::default(),
            nodes_ready: NodesSettings::default(),
            coredns: WorkloadSettings {
                workload: ObjectRef::new("kube-system", "coredns"),
            },
            cni: WorkloadSettings {
                workload: ObjectRef::new("kube-system", "aws-node"),
            },
            crds: CrdSettings {
                names: names(&[
                    "externalsecrets.external-secrets.io",
                    "clustersecretstores.external-secrets.io",
                    "secretstores.external-secrets.io",
                    "applications.argoproj.io",
                    "appprojects.argoproj.io",
                    "certificates.cert-manager.io",
                    "clusterissuers.cert-manager.io",
                    "issuers.cert-manager.io",
                ]),
            },
            observability_crds: CrdSettings {
                names: names(&[
                    "prometheuses.monitoring.coreos.com",
                    "alertmanagers.monitoring.coreos.com",
                    "servicemonitors.monitoring.coreos.com",
                    "podmonitors.monitoring.coreos.com",
                    "prometheusrules.monitoring.coreos.com",
                ]),
            },
            ingress_class: NamedSettings {
                name: "kong".into(),
            },
            cluster_secret_store: NamedSettings {
                name: "aws-secretsmanager".into(),
            },
            irsa: IrsaSettings {
                service_accounts: vec![
                    ObjectRef::new("external-secrets", "external-secrets"),
                    ObjectRef::new("external-dns", "external-dns"),
                ],
            },
            storage_class: StorageClassSettings::default(),
            // The app databases of tier 2: Backstage reads the POSTGRES_* keys its chart
            // expects; Grafana reads the shape RDS-managed secrets have.
            external_secrets: ExternalSecretSettings {
                secrets: vec![
                    SyncedSecret {
                        external_secret: ObjectRef::new("backstage", "backstage-postgres"),
                        secret: None,
                        keys: names(&[
                            "POSTGRES_HOST",
                            "POSTGRES_PORT",
                            "POSTGRES_USER",
                            "POSTGRES_PASSWORD",
                        ]),
                    },
                    SyncedSecret {
                        external_secret: ObjectRef::new("monitoring", "grafana-postgres"),
                        secret: Some("grafana-db".into()),
                        keys: names(&["username", "password", "host", "port", "dbname"]),
                    },
                ],
            },
            postgres: PostgresSettings {
                databases: vec![
                    PostgresTarget {
                        app: "backstage".into(),
                        secret: Some(ObjectRef::new("backstage", "backstage-postgres")),
                        keys: CredentialKeys::default(),
                        host: None,
                        port: None,
                        user: None,
                        database: Some("backstage".into()),
                        password_env: None,
                        ssl_mode: SslMode::VerifyFull,
                        ca_bundle: None,
                        require_createdb: true,
                        check_plaintext_refused: false,
                    },
                    PostgresTarget {
                        app: "grafana".into(),
                        secret: Some(ObjectRef::new("monitoring", "grafana-db")),
                        keys: CredentialKeys::rds(),
                        host: None,
                        port: None,
                        user: None,
                        database: None,
                        password_env: None,
                        ssl_mode: SslMode::VerifyFull,
                        ca_bundle: None,
                        require_createdb: false,
                        check_plaintext_refused: false,
                    },
                ],
            },
            rds_instance: RdsSettings {
                identifier: "goldenpath-platform".into(),
                host_secret: Some(HostInSecret {
                    secret: ObjectRef::new("backstage", "backstage-postgres"),
                    key: "POSTGRES_HOST".into(),
                }),
            },
            cluster_issuers: ClusterIssuerSettings::default(),
            tier_gating: TierGatingSettings::default(),
            route53_zone: Route53ZoneSettings::default(),
            keycloak_realm: KeycloakSettings::default(),
        }
    }
}

/// The whole settings file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Time limits and backoff.
    pub runner: RunnerSettings,
    /// Check ids left out of every plan.
    pub disable: Vec<String>,
    /// Check ids whose failure is reported but does not fail the run.
    pub advisory: Vec<String>,
    /// Per-check settings.
    pub checks: CheckSettings,
}

impl Config {
    /// Parses a settings document; `path` names it in errors.
    pub fn from_yaml(text: &str, path: &str) -> Result<Config, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Reads and parses a settings file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::from_yaml(&text, &shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_means_the_platforms_conventions() {
        let c = Config::from_yaml("", "c.yaml").expect("empty is fine");
        assert_eq!(c, Config::default());
        assert_eq!(c.checks.ingress_class.name, "kong");
        assert_eq!(c.checks.cni.workload.to_string(), "kube-system/aws-node");
    }

    #[test]
    fn overrides_only_what_is_written() {
        let c = Config::from_yaml(
            "runner:\n  attemptTimeout: 3s\nchecks:\n  nodes-ready:\n    minReady: 3\n  storage-class:\n    name: gp3\n",
            "c.yaml",
        )
        .expect("valid");
        assert_eq!(c.runner.attempt_timeout, Duration::from_secs(3));
        assert_eq!(c.runner.backoff_max, Duration::from_secs(15));
        assert_eq!(c.checks.nodes_ready.min_ready, 3);
        assert_eq!(c.checks.nodes_ready.architectures, ["amd64"]);
        assert_eq!(c.checks.storage_class.name.as_deref(), Some("gp3"));
    }

    #[test]
    fn rejects_unknown_keys_bad_durations_and_bad_refs_with_their_line() {
        for (yaml, needle) in [
            ("checks:\n  nodes-ready:\n    minready: 3\n", "line 3"),
            ("runner:\n  attemptTimeout: soon\n", "not a duration"),
            (
                "checks:\n  irsa:\n    serviceAccounts: [just-a-name]\n",
                "not namespace/name",
            ),
            (
                "checks:\n  no-such-check: {}\n",
                "unknown field `no-such-check`",
            ),
        ] {
            let err = Config::from_yaml(yaml, "c.yaml")
                .expect_err(yaml)
                .to_string();
            assert!(
                err.starts_with("c.yaml: ") && err.contains(needle),
                "{yaml:?} -> {err}"
            );
        }
    }

    /// The documented example must stay exactly the defaults it claims to show.
    #[test]
    fn the_example_config_shows_the_defaults() {
        let example = Config::from_yaml(
            include_str!("../../examples/preflight.yaml"),
            "examples/preflight.yaml",
        )
        .expect("parses");
        assert_eq!(example, Config::default());
    }
}
