//! The check abstraction: a check fetches facts and judges them once per attempt; the runner
//! decides when to attempt again.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::contract::{PlatformFlag, Values};
use crate::outcome::Outcome;
use crate::platform::{NeededBy, Provider, Scope};
use crate::tier::Tier;

/// Which outside system a check talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Family {
    /// The Kubernetes API.
    Kubernetes,
    /// A PostgreSQL server.
    Postgres,
    /// An AWS API.
    Aws,
    /// An HTTPS endpoint of an app (Keycloak).
    Http,
    /// Anything else: a check of a tool built on this crate, bringing its own clients.
    Other,
}

/// A check's identity and place in the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckMeta {
    /// Stable id, e.g. `nodes-ready`; also the key of its settings.
    pub id: &'static str,
    /// One line saying what it verifies.
    pub title: String,
    /// The tier reports list it under: the first gate that runs it, or its app's tier.
    pub tier: Tier,
    /// The system it talks to.
    pub family: Family,
    /// What makes the thing it verifies true.
    pub provided_by: Provider,
    /// The tiers and apps that need it.
    pub needed_by: NeededBy,
    /// Checks that must pass (or warn) before this one can run.
    pub needs: Vec<&'static str>,
    /// Whether its failure fails the run; advisory checks only report.
    pub required: bool,
    /// Whether it reads the Kubernetes API (a database login may not).
    pub uses_kubernetes: bool,
}

/// Where a check is being planned: the contract's values and the run's scope.
#[derive(Clone, Copy, Debug)]
pub struct Site<'a> {
    /// The validated bootstrap contract.
    pub values: &'a Values,
    /// A tier's gate, or one app's hook.
    pub scope: Scope,
}

/// A check made for one [`Site`].
#[derive(Clone, Debug)]
pub struct Built {
    /// The check.
    pub check: Arc<dyn Check>,
    /// One line saying what it verifies there.
    pub title: String,
    /// What provides what it verifies there.
    pub provided_by: Provider,
    /// Checks whose failure blocks it (dropped when not planned).
    pub needs: Vec<&'static str>,
}

impl Built {
    /// A check made for a site.
    #[must_use]
    pub fn new(
        check: impl Check + 'static,
        title: impl Into<String>,
        provided_by: Provider,
        needs: &[&'static str],
    ) -> Self {
        Built {
            check: Arc::new(check),
            title: title.into(),
            provided_by,
            needs: needs.to_vec(),
        }
    }
}

/// A check's definition, in its own module: its id, its family, its settings (with the
/// platform's defaults), who needs it, and how it is made for a site. Registering it in
/// [`checks`](crate::checks) is the only other line a new check adds.
pub trait Definition {
    /// Stable id, e.g. `nodes-ready`; also the key of its settings.
    const ID: &'static str;
    /// The system it talks to.
    const FAMILY: Family;
    /// The bootstrap contract's declaration it verifies, if any: a failure then says the
    /// declaration is false.
    const DECLARED_BY: Option<PlatformFlag> = None;
    /// Its settings, `checks.<id>` in the config file; `Default` is the platform's convention.
    type Settings: Clone
        + fmt::Debug
        + Default
        + PartialEq
        + Eq
        + Serialize
        + serde::de::DeserializeOwned
        + Send
        + Sync;

    /// Who needs it, as its settings place it.
    fn needed_by(settings: &Self::Settings) -> NeededBy;

    /// What provides what it verifies at a site, whether or not it is planned there.
    fn provided_by(settings: &Self::Settings, site: &Site<'_>) -> Provider;

    /// The check for `site`, or why it has nothing to verify there.
    fn build(settings: &Self::Settings, site: &Site<'_>) -> Result<Built, String>;
}

/// Where to wait for a Kubernetes condition to change: a watch on a collection, starting at
/// the resource version the facts were read at, so no change in between is missed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeWatch {
    /// The collection path, e.g. `/api/v1/nodes`.
    pub path: String,
    /// A field selector narrowing the watch, e.g. `metadata.name=kong`.
    pub field_selector: Option<String>,
    /// The resource version the judged facts were read at.
    pub resource_version: String,
}

/// What the runner may do after a failed attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Nothing will change by waiting (wrong credentials, forbidden, unsupported version).
    Never,
    /// A transient failure (refused, timed out, 429/5xx): try again after a backoff.
    Backoff,
    /// A condition that is not true yet: try again when any of the watched collections change.
    OnChange(Vec<KubeWatch>),
}

/// The result of one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// What was found.
    pub outcome: Outcome,
    /// What may change it; ignored when the outcome passes.
    pub retry: Retry,
}

impl Attempt {
    /// A final outcome: waiting will not change it.
    #[must_use]
    pub fn settled(outcome: Outcome) -> Self {
        Attempt {
            outcome,
            retry: Retry::Never,
        }
    }

    /// A transient failure, retried with backoff.
    #[must_use]
    pub fn transient(outcome: Outcome) -> Self {
        Attempt {
            outcome,
            retry: Retry::Backoff,
        }
    }

    /// A condition not yet true, re-judged when the watched objects change.
    #[must_use]
    pub fn until_changed(outcome: Outcome, watches: Vec<KubeWatch>) -> Self {
        Attempt {
            outcome,
            retry: Retry::OnChange(watches),
        }
    }
}

/// The clients a check may use. Checks never build their own, so tests can hand them fakes.
#[derive(Clone, Default)]
pub struct Context {
    kube: Option<kube::Client>,
    rds: Option<aws_sdk_rds::Client>,
    route53: Option<aws_sdk_route53::Client>,
    secrets_manager: Option<aws_sdk_secretsmanager::Client>,
    ecr: Option<aws_sdk_ecr::Client>,
    eks: Option<aws_sdk_eks::Client>,
    iam: Option<aws_sdk_iam::Client>,
    s3: Option<aws_sdk_s3::Client>,
    http: Option<crate::connect::HttpClient>,
    tls: Arc<crate::tls::Connectors>,
    floors: crate::freshness::Floors,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("kube", &self.kube.is_some())
            .field("aws", &self.rds.is_some())
            .field("http", &self.http.is_some())
            .finish()
    }
}

impl Context {
    /// A context with a Kubernetes client.
    #[must_use]
    pub fn with_kube(mut self, client: kube::Client) -> Self {
        self.kube = Some(client);
        self
    }

    /// A context with AWS clients made from `aws-config`'s shared configuration.
    #[must_use]
    pub fn with_aws(mut self, config: &aws_config::SdkConfig) -> Self {
        self.rds = Some(aws_sdk_rds::Client::new(config));
        self.route53 = Some(aws_sdk_route53::Client::new(config));
        self.secrets_manager = Some(aws_sdk_secretsmanager::Client::new(config));
        self.ecr = Some(aws_sdk_ecr::Client::new(config));
        self.eks = Some(aws_sdk_eks::Client::new(config));
        self.iam = Some(aws_sdk_iam::Client::new(config));
        self.s3 = Some(aws_sdk_s3::Client::new(config));
        self
    }

    /// A context with an HTTP client (see [`connect::http_client`](crate::connect::http_client)).
    #[must_use]
    pub fn with_http(mut self, client: crate::connect::HttpClient) -> Self {
        self.http = Some(client);
        self
    }

    /// The Route53 client, if AWS was configured.
    #[must_use]
    pub fn route53(&self) -> Option<&aws_sdk_route53::Client> {
        self.route53.as_ref()
    }

    /// The Secrets Manager client, if AWS was configured.
    #[must_use]
    pub fn secrets_manager(&self) -> Option<&aws_sdk_secretsmanager::Client> {
        self.secrets_manager.as_ref()
    }

    /// The ECR client, if AWS was configured.
    #[must_use]
    pub fn ecr(&self) -> Option<&aws_sdk_ecr::Client> {
        self.ecr.as_ref()
    }

    /// The EKS client, if AWS was configured.
    #[must_use]
    pub fn eks(&self) -> Option<&aws_sdk_eks::Client> {
        self.eks.as_ref()
    }

    /// The IAM client, if AWS was configured.
    #[must_use]
    pub fn iam(&self) -> Option<&aws_sdk_iam::Client> {
        self.iam.as_ref()
    }

    /// The S3 client, if AWS was configured.
    #[must_use]
    pub fn s3(&self) -> Option<&aws_sdk_s3::Client> {
        self.s3.as_ref()
    }

    /// The HTTP client, if one was configured.
    #[must_use]
    pub fn http(&self) -> Option<&crate::connect::HttpClient> {
        self.http.as_ref()
    }

    /// The run's TLS connectors, one per trust setting, shared by every check and client.
    #[must_use]
    pub fn tls(&self) -> &Arc<crate::tls::Connectors> {
        &self.tls
    }

    /// The RDS client, if AWS was configured.
    #[must_use]
    pub fn rds(&self) -> Option<&aws_sdk_rds::Client> {
        self.rds.as_ref()
    }

    /// The Kubernetes client, if one was configured.
    #[must_use]
    pub fn kube(&self) -> Option<&kube::Client> {
        self.kube.as_ref()
    }

    /// The resource versions the run's watches have seen, shared by every clone.
    pub(crate) fn floors(&self) -> &crate::freshness::Floors {
        &self.floors
    }
}

/// One readiness check.
#[async_trait::async_trait]
pub trait Check: Send + Sync + fmt::Debug {
    /// Fetches the facts and judges them, once. Must not sleep, retry or time itself out:
    /// the runner owns time.
    async fn attempt(&self, ctx: &Context) -> Attempt;

    /// What it reads, from the Kubernetes API and from AWS: the least privilege it needs
    /// (`preflight rbac`, `preflight iam-policy`).
    fn reads(&self) -> crate::reads::Reads;

    /// The CA bundles it trusts, each with the setting that names it. They are read before
    /// the run ([`Plan::ca_bundles`](crate::plan::Plan::ca_bundles)), so that a bundle that
    /// cannot be used is a configuration error, not a finding of this check.
    fn ca_bundles(&self) -> Vec<crate::trust::BundleSetting> {
        Vec::new()
    }

    /// Whether it makes HTTP requests through [`Context::http`] although its family is not
    /// [`Family::Http`] (a registry's API), so the binary builds that client for it.
    fn uses_http(&self) -> bool {
        false
    }
}

/// A namespaced object, `namespace/name`, written so in the settings file and printed so.
#[derive(Clone, Debug, PartialEq, Eq)]
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

impl Serialize for ObjectRef {
    /// As it is read: settings printed read back as the same settings.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ObjectRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <String as serde::Deserialize>::deserialize(d)?;
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
