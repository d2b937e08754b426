//! `admission-webhooks`: no fail-closed admission webhook stands in the way of the tier's
//! sync. A Validating or Mutating webhook with `failurePolicy: Fail` (the default of
//! `admissionregistration.k8s.io/v1`) that intercepts what the apps create makes the API
//! server refuse every such create or update while the webhook's Service has no ready
//! endpoint: ArgoCD's sync then fails on `failed calling webhook ... no endpoints available
//! for service`. A webhook left behind by an uninstalled chart, or whose controller is
//! crash-looping, blocks every later sync this way.
//!
//! Which webhooks count: those whose rules match a `CREATE` or `UPDATE` of one of the
//! resources the apps create (`resources`, kubectl's `resource.group` form; a rule's `scope`
//! is honoured, from the scope of each resource), in a namespace the platform writes to. Those
//! namespaces are the apps' (the platform's list) and `namespaces` (ArgoCD's, where the
//! app-of-apps creates the Applications). A namespace's labels are known before it exists:
//! every namespace carries the immutable `kubernetes.io/metadata.name: <name>` label, and
//! ArgoCD's `CreateNamespace` adds no other (beyond `managedNamespaceMetadata`); a namespace
//! that already exists adds its live labels. A webhook's `namespaceSelector` (`matchLabels`
//! and `matchExpressions`) is evaluated on those labels, as the API server evaluates it: a
//! webhook that selects none of the namespaces is left alone. A cluster-scoped resource is
//! matched whatever the selector (the API server skips no webhook for one), a Namespace by its
//! own labels. An `objectSelector` cannot be evaluated before the objects exist: such a
//! webhook still counts, and the message says so.
//!
//! A webhook served by a Service passes when an EndpointSlice of that Service has a ready
//! endpoint; one served by a URL passes when the URL answers over TLS (any HTTP status), with
//! the webhook's own `caBundle` as the only trusted CA when it has one.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use futures::future::join_all;
use serde::{Deserialize, Serialize};

use super::fetch::{self, ENDPOINT_SLICES, MUTATING_WEBHOOKS, NAMESPACES, VALIDATING_WEBHOOKS};
use crate::access::Reads;
use crate::check::{Attempt, Check, Context, KubeWatch};
use crate::check::{Built, Definition, Family, Site};
use crate::outcome::{Outcome, error_chain};
use crate::platform::{APPS, NeededBy, Provider, Scope};
use crate::tier::Tier;

/// `checks.admission-webhooks`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct AdmissionWebhookSettings {
    /// The resources the apps create, as `resource.group` (`deployments.apps`; core resources
    /// without a group: `pods`). A fail-closed webhook matching none of them is left alone.
    pub resources: Vec<String>,
    /// Namespaces the platform writes to besides its apps' own: ArgoCD's, where the
    /// app-of-apps creates the Applications.
    pub namespaces: Vec<String>,
}

impl Default for AdmissionWebhookSettings {
    /// What the platform's charts create: workloads, their configuration and RBAC, Ingresses,
    /// CRDs, the custom resources of External Secrets, cert-manager and Prometheus, and the
    /// app-of-apps' Applications.
    fn default() -> Self {
        let resources = [
            "namespaces",
            "pods",
            "services",
            "configmaps",
            "secrets",
            "serviceaccounts",
            "persistentvolumeclaims",
            "deployments.apps",
            "replicasets.apps",
            "statefulsets.apps",
            "daemonsets.apps",
            "jobs.batch",
            "poddisruptionbudgets.policy",
            "ingresses.networking.k8s.io",
            "roles.rbac.authorization.k8s.io",
            "rolebindings.rbac.authorization.k8s.io",
            "clusterroles.rbac.authorization.k8s.io",
            "clusterrolebindings.rbac.authorization.k8s.io",
            "customresourcedefinitions.apiextensions.k8s.io",
            "externalsecrets.external-secrets.io",
            "certificates.cert-manager.io",
            "servicemonitors.monitoring.coreos.com",
            "prometheusrules.monitoring.coreos.com",
            "applications.argoproj.io",
        ];
        AdmissionWebhookSettings {
            resources: resources.map(str::to_owned).to_vec(),
            namespaces: vec![super::TierGatingSettings::default().namespace],
        }
    }
}

/// A resource as RBAC and webhook rules name it: group (empty for core) and plural.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Resource {
    group: String,
    plural: String,
}

/// The cluster-scoped resources, as `resource.group`, among those a platform may create;
/// any other resource is taken as namespaced.
const CLUSTER_SCOPED: [&str; 15] = [
    "namespaces",
    "nodes",
    "persistentvolumes",
    "customresourcedefinitions.apiextensions.k8s.io",
    "clusterroles.rbac.authorization.k8s.io",
    "clusterrolebindings.rbac.authorization.k8s.io",
    "storageclasses.storage.k8s.io",
    "ingressclasses.networking.k8s.io",
    "priorityclasses.scheduling.k8s.io",
    "validatingwebhookconfigurations.admissionregistration.k8s.io",
    "mutatingwebhookconfigurations.admissionregistration.k8s.io",
    "apiservices.apiregistration.k8s.io",
    "clusterissuers.cert-manager.io",
    "clustersecretstores.external-secrets.io",
    "clusterexternalsecrets.external-secrets.io",
];

impl Resource {
    /// Parses kubectl's `resource.group` form (`deployments.apps`, `pods`).
    fn parse(text: &str) -> Self {
        let (plural, group) = text.split_once('.').unwrap_or((text, ""));
        Resource {
            group: group.to_owned(),
            plural: plural.to_owned(),
        }
    }

    fn is_cluster_scoped(&self) -> bool {
        CLUSTER_SCOPED.contains(&self.to_string().as_str())
    }

    fn is_namespace(&self) -> bool {
        self.group.is_empty() && self.plural == "namespaces"
    }
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.plural)
        } else {
            write!(f, "{}.{}", self.plural, self.group)
        }
    }
}

/// A Validating- or MutatingWebhookConfiguration, with only what is judged.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct WebhookConfigDoc {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    webhooks: Vec<WebhookDoc>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Metadata {
    #[serde(default)]
    name: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookDoc {
    #[serde(default)]
    name: String,
    #[serde(default)]
    client_config: ClientConfig,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    rules: Vec<RuleDoc>,
    /// Absent means `Fail` in `admissionregistration.k8s.io/v1`.
    #[serde(default)]
    failure_policy: Option<String>,
    /// Absent or empty selects every namespace.
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    namespace_selector: LabelSelector,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    object_selector: LabelSelector,
}

/// A label selector, `metav1.LabelSelector`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LabelSelector {
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    match_labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    match_expressions: Vec<Requirement>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Requirement {
    #[serde(default)]
    key: String,
    #[serde(default)]
    operator: String,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    values: Vec<String>,
}

impl LabelSelector {
    /// Whether it selects everything (`{}` or absent).
    fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// Whether it selects an object with `labels`, as the API server decides: every
    /// `matchLabels` pair and every expression must hold (`NotIn` holds without the key).
    fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| {
                let value = labels.get(&r.key);
                match r.operator.as_str() {
                    "In" => value.is_some_and(|v| r.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !r.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    // The API server accepts no other operator: were one there, the webhook
                    // is kept, as over-approximating is the safe side.
                    _ => true,
                }
            })
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClientConfig {
    #[serde(default)]
    service: Option<ServiceRef>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    ca_bundle: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
struct ServiceRef {
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    name: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuleDoc {
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    api_groups: Vec<String>,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    operations: Vec<String>,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    resources: Vec<String>,
    /// `Cluster`, `Namespaced`, or `*` (the default).
    #[serde(default)]
    scope: Option<String>,
}

impl RuleDoc {
    /// Whether the rule intercepts a create or update of `r` itself (not a subresource).
    fn intercepts(&self, r: &Resource) -> bool {
        let scoped = match self.scope.as_deref() {
            Some("Cluster") => r.is_cluster_scoped(),
            Some("Namespaced") => !r.is_cluster_scoped(),
            _ => true,
        };
        let writes = self
            .operations
            .iter()
            .any(|o| matches!(o.as_str(), "*" | "CREATE" | "UPDATE"));
        let group = self.api_groups.iter().any(|g| g == "*" || *g == r.group);
        // `*` and `*/*` match every resource; `pods/*` only the subresources of pods.
        let resource = self
            .resources
            .iter()
            .any(|x| x == "*" || x == "*/*" || *x == r.plural);
        scoped && writes && group && resource
    }
}

/// An EndpointSlice, with only what is judged.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct EndpointSliceDoc {
    #[serde(default)]
    metadata: SliceMetadata,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    endpoints: Vec<EndpointDoc>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct SliceMetadata {
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct EndpointDoc {
    #[serde(default)]
    conditions: EndpointConditions,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct EndpointConditions {
    /// Absent means ready (the API's documented default for consumers).
    #[serde(default)]
    ready: Option<bool>,
}

/// The label EndpointSlices carry naming their Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The ready endpoints of `service` among the slices of its namespace.
fn ready_endpoints(slices: &[EndpointSliceDoc], service: &str) -> usize {
    slices
        .iter()
        .filter(|s| {
            s.metadata
                .labels
                .get(SERVICE_NAME_LABEL)
                .map(String::as_str)
                == Some(service)
        })
        .flat_map(|s| &s.endpoints)
        .filter(|e| e.conditions.ready != Some(false))
        .count()
}

/// Where a webhook is served.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Backend {
    Service(ServiceRef),
    Url(String),
    /// Neither: the API server rejects such a configuration, but a report must not panic.
    Nowhere,
}

/// A fail-closed webhook that intercepts what the apps create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Intercept {
    /// `ValidatingWebhookConfiguration/name`.
    config: String,
    /// The webhook's own name.
    webhook: String,
    backend: Backend,
    /// The base64 PEM the API server trusts for it.
    ca_bundle: Option<String>,
    /// The apps' resources it intercepts in the namespaces it selects, and the
    /// cluster-scoped ones it intercepts whatever its namespace selector.
    resources: Vec<Resource>,
    /// When its namespace selector narrows it: the platform's namespaces it selects.
    namespaces: Option<Vec<String>>,
    /// It has an object selector, which cannot be evaluated before the objects exist.
    object_selector: bool,
}

/// The fail-closed webhooks among `configs` (kind, document) that intercept any of
/// `resources` in the namespaces of `namespaces` (name → labels) or, for cluster-scoped
/// resources, anywhere.
pub(crate) fn intercepts(
    configs: &[(&str, WebhookConfigDoc)],
    resources: &[Resource],
    namespaces: &BTreeMap<String, BTreeMap<String, String>>,
) -> Vec<Intercept> {
    let mut found = Vec::new();
    for (kind, config) in configs {
        for webhook in &config.webhooks {
            if webhook.failure_policy.as_deref().unwrap_or("Fail") != "Fail" {
                continue;
            }
            let selector = &webhook.namespace_selector;
            let selected: Vec<String> = namespaces
                .iter()
                .filter(|(_, labels)| selector.selects(labels))
                .map(|(name, _)| name.clone())
                .collect();
            // The API server evaluates the namespace selector on a namespaced object's
            // namespace and on a Namespace itself; never on another cluster-scoped object.
            let matched: Vec<Resource> = resources
                .iter()
                .filter(|r| webhook.rules.iter().any(|rule| rule.intercepts(r)))
                .filter(|r| (r.is_cluster_scoped() && !r.is_namespace()) || !selected.is_empty())
                .cloned()
                .collect();
            if matched.is_empty() {
                continue;
            }
            let cc = &webhook.client_config;
            let backend = match (&cc.service, &cc.url) {
                (Some(s), _) => Backend::Service(s.clone()),
                (None, Some(url)) => Backend::Url(url.clone()),
                (None, None) => Backend::Nowhere,
            };
            let narrowed = !selector.is_empty()
                && matched
                    .iter()
                    .any(|r| !r.is_cluster_scoped() || r.is_namespace());
            found.push(Intercept {
                config: format!("{kind}/{}", config.metadata.name),
                webhook: webhook.name.clone(),
                backend,
                ca_bundle: cc.ca_bundle.clone(),
                resources: matched,
                namespaces: narrowed.then_some(selected),
                object_selector: !webhook.object_selector.is_empty(),
            });
        }
    }
    found
}

/// The labels of each namespace the platform writes to: the `kubernetes.io/metadata.name`
/// label every namespace carries, with the live labels of those that exist (`live`).
pub(crate) fn namespace_labels(
    names: &[String],
    live: &BTreeMap<String, BTreeMap<String, String>>,
) -> BTreeMap<String, BTreeMap<String, String>> {
    names
        .iter()
        .map(|name| {
            let mut labels = live.get(name).cloned().unwrap_or_default();
            labels.insert(NAME_LABEL.to_owned(), name.clone());
            (name.clone(), labels)
        })
        .collect()
}

/// The label the API server sets on every namespace to its name (immutable, GA in 1.22).
const NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A Namespace's name and labels.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct NamespaceDoc {
    #[serde(default)]
    metadata: NamespaceMetadata,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct NamespaceMetadata {
    #[serde(default)]
    name: String,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    labels: BTreeMap<String, String>,
}

/// Whether a webhook's backend answered: ready endpoints of its Service, or its URL's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reached {
    /// This many ready endpoints.
    Endpoints(usize),
    /// The URL answered over TLS.
    Answered,
    /// The URL did not answer; why.
    NoAnswer(String),
}

/// Judges each intercepting webhook with what its backend showed.
pub(crate) fn judge(found: &[(Intercept, Reached)], checked: usize) -> Outcome {
    let mut problems = Vec::new();
    let mut fine = Vec::new();
    for (w, reached) in found {
        let what = format!("webhook {} of {}", w.webhook, w.config);
        let intercepted = intercepted(w);
        let narrowed = if w.object_selector {
            " (its objectSelector is not evaluated: the objects it would select do not exist yet, so it may intercept fewer)"
        } else {
            ""
        };
        match (&w.backend, reached) {
            (Backend::Service(s), Reached::Endpoints(0)) => problems.push(format!(
                "{what} (failurePolicy Fail) is served by Service {}/{}, which has no ready endpoint: every create or update of {intercepted} is refused{narrowed}",
                s.namespace, s.name
            )),
            (Backend::Url(url), Reached::NoAnswer(why)) => problems.push(format!(
                "{what} (failurePolicy Fail) is served at {url}, which does not answer ({why}): every create or update of {intercepted} is refused{narrowed}"
            )),
            (Backend::Nowhere, _) => problems.push(format!(
                "{what} (failurePolicy Fail) names neither a Service nor a URL"
            )),
            (Backend::Service(s), _) => fine.push(format!("{what} ({}/{})", s.namespace, s.name)),
            (Backend::Url(url), _) => fine.push(format!("{what} ({url})")),
        }
    }
    if problems.is_empty() {
        let message = if fine.is_empty() {
            format!(
                "no fail-closed admission webhook intercepts what the apps create ({checked} webhook configuration(s) read)"
            )
        } else {
            format!(
                "{} fail-closed admission webhook(s) intercepting what the apps create are served: {}",
                fine.len(),
                fine.join(", ")
            )
        };
        return Outcome::pass("admission-webhooks-served", message);
    }
    Outcome::fail("admission-webhook-unavailable", problems.join("; ")).hint(
        "Bring the webhook's server back (its Deployment's pods Ready: kubectl -n <namespace> get pods,endpointslices), or, if the app that installed it is gone, delete the leftover configuration (kubectl delete validatingwebhookconfiguration|mutatingwebhookconfiguration <name>). While it has no endpoint, the API server refuses what it intercepts and the sync fails with `failed calling webhook`.",
    )
}

/// What a webhook intercepts, for a message: its resources, and the namespaces its selector
/// narrows the namespaced ones to.
fn intercepted(w: &Intercept) -> String {
    let list = |rs: Vec<&Resource>| {
        let names: Vec<String> = rs.iter().map(ToString::to_string).collect();
        crate::outcome::name_list(&names, 4)
    };
    let Some(namespaces) = &w.namespaces else {
        return list(w.resources.iter().collect());
    };
    let (cluster, namespaced): (Vec<&Resource>, Vec<&Resource>) = w
        .resources
        .iter()
        .partition(|r| r.is_cluster_scoped() && !r.is_namespace());
    let mut parts = Vec::new();
    if !namespaced.is_empty() {
        parts.push(format!(
            "{} in {} {}",
            list(namespaced),
            if namespaces.len() == 1 {
                "namespace"
            } else {
                "namespaces"
            },
            crate::outcome::name_list(namespaces, 6)
        ));
    }
    if !cluster.is_empty() {
        parts.push(list(cluster));
    }
    parts.join(", and of ")
}

/// The `admission-webhooks` check.
#[derive(Debug)]
pub struct AdmissionWebhooks {
    resources: Vec<Resource>,
    /// The namespaces the platform writes to: its apps' and the settings'.
    namespaces: Vec<String>,
}

impl AdmissionWebhooks {
    /// A check with these settings.
    #[must_use]
    pub fn new(settings: &AdmissionWebhookSettings) -> Self {
        let mut namespaces: Vec<String> = Vec::new();
        for ns in APPS
            .iter()
            .map(|a| a.namespace)
            .chain(settings.namespaces.iter().map(String::as_str))
        {
            if !namespaces.iter().any(|n| n == ns) {
                namespaces.push(ns.to_owned());
            }
        }
        AdmissionWebhooks {
            resources: settings
                .resources
                .iter()
                .map(|r| Resource::parse(r))
                .collect(),
            namespaces,
        }
    }
}

impl Definition for AdmissionWebhooks {
    const ID: &'static str = "admission-webhooks";
    const FAMILY: Family = Family::Kubernetes;
    type Settings = AdmissionWebhookSettings;

    /// Tier 1's apps are the first whose creates a webhook can refuse.
    fn needed_by(_: &AdmissionWebhookSettings) -> NeededBy {
        NeededBy::tier(Tier::One)
    }

    /// What serves a webhook was installed before the gate: at tier 1's, by the foundation
    /// (EKS and its add-ons, such as the AWS load balancer controller); at the later gates,
    /// also by the apps of the tiers below (External Secrets' and cert-manager's webhooks
    /// from tier 1 on).
    fn provided_by(_: &AdmissionWebhookSettings, site: &Site<'_>) -> Provider {
        match site.scope {
            Scope::Gate(Tier::OneAndHalf) => Provider::Tier(
                Tier::One,
                "the webhook servers of the foundation and of tier 1's apps (External Secrets, cert-manager)",
            ),
            Scope::Gate(Tier::Two) => Provider::Tier(
                Tier::OneAndHalf,
                "the webhook servers of the foundation and of the apps of tiers 1 and 1.5",
            ),
            Scope::Gate(Tier::Three) => Provider::Tier(
                Tier::Two,
                "the webhook servers of the foundation and of the apps of tiers 1 to 2",
            ),
            _ => Provider::Foundation(
                "the webhook servers of EKS and its add-ons, such as the AWS load balancer controller's",
            ),
        }
    }

    fn build(settings: &AdmissionWebhookSettings, site: &Site<'_>) -> Result<Built, String> {
        if settings.resources.is_empty() {
            return Err("checks.admission-webhooks.resources is empty".to_owned());
        }
        Ok(Built::new(
            AdmissionWebhooks::new(settings),
            "fail-closed admission webhooks intercepting the apps' resources are served",
            Self::provided_by(settings, site),
            &[super::KubeApi::ID],
        ))
    }
}

/// Asks a webhook's URL for any answer over TLS: an HTTP status of any kind proves the server
/// is up and its certificate is trusted as the API server would trust it.
async fn probe_url(url: &str, ca_bundle: Option<&str>) -> Reached {
    let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    if let Some(bundle) = ca_bundle {
        let pem = match base64::engine::general_purpose::STANDARD.decode(bundle.trim()) {
            Ok(pem) => pem,
            Err(e) => return Reached::NoAnswer(format!("its caBundle is not base64: {e}")),
        };
        match reqwest::Certificate::from_pem_bundle(&pem) {
            Ok(certs) => builder = builder.tls_certs_only(certs),
            Err(e) => return Reached::NoAnswer(format!("its caBundle is not PEM: {e}")),
        }
    }
    let client = match builder.build() {
        Ok(c) => c,
        Err(e) => return Reached::NoAnswer(error_chain(&e)),
    };
    match client.post(url).send().await {
        Ok(_) => Reached::Answered,
        Err(e) => Reached::NoAnswer(error_chain(&e)),
    }
}

/// The EndpointSlices of one namespace, read as RBAC grants them: cluster-wide, narrowed by a
/// field selector, so that a missing permission names the ClusterRole rule preflight ships.
async fn endpoint_slices(
    ctx: &Context,
    namespace: &str,
) -> fetch::Fetched<(Vec<EndpointSliceDoc>, KubeWatch)> {
    let selector = format!("metadata.namespace={namespace}");
    let (slices, version) = fetch::list_fold(
        ctx,
        &ENDPOINT_SLICES,
        None,
        Some(&selector),
        Vec::new(),
        |all, page| all.extend(page),
    )
    .await?;
    Ok((
        slices,
        KubeWatch {
            path: ENDPOINT_SLICES.collection_path(None),
            field_selector: Some(selector),
            resource_version: version,
        },
    ))
}

#[async_trait::async_trait]
impl Check for AdmissionWebhooks {
    fn reads(&self) -> Reads {
        // The webhooks' Services may live in any namespace, some not created yet when the
        // hook's RBAC is applied: EndpointSlices are read cluster-wide (they hold addresses,
        // nothing secret).
        // Namespaces are read cluster-wide for their labels, which a namespace selector
        // is evaluated on (names and labels, nothing secret).
        Reads::kube(vec![
            VALIDATING_WEBHOOKS.everywhere(),
            MUTATING_WEBHOOKS.everywhere(),
            ENDPOINT_SLICES.everywhere(),
            NAMESPACES.everywhere(),
        ])
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        let mut configs = Vec::new();
        let mut watches = Vec::new();
        for (kind, resource) in [
            ("ValidatingWebhookConfiguration", &VALIDATING_WEBHOOKS),
            ("MutatingWebhookConfiguration", &MUTATING_WEBHOOKS),
        ] {
            match fetch::list_all::<WebhookConfigDoc>(ctx, resource, None).await {
                Ok((docs, watch)) => {
                    configs.extend(docs.into_iter().map(|d| (kind, d)));
                    watches.push(watch);
                }
                Err(failed) => return *failed,
            }
        }
        let live = match fetch::list_all::<NamespaceDoc>(ctx, &NAMESPACES, None).await {
            Ok((docs, watch)) => {
                watches.push(watch);
                docs.into_iter()
                    .map(|d| (d.metadata.name, d.metadata.labels))
                    .collect()
            }
            Err(failed) => return *failed,
        };
        let found = intercepts(
            &configs,
            &self.resources,
            &namespace_labels(&self.namespaces, &live),
        );
        let namespaces: BTreeSet<&str> = found
            .iter()
            .filter_map(|w| match &w.backend {
                Backend::Service(s) => Some(s.namespace.as_str()),
                _ => None,
            })
            .collect();
        let mut slices: BTreeMap<&str, Vec<EndpointSliceDoc>> = BTreeMap::new();
        for (ns, read) in join_all(
            namespaces
                .iter()
                .map(|ns| async move { (*ns, endpoint_slices(ctx, ns).await) }),
        )
        .await
        {
            match read {
                Ok((docs, watch)) => {
                    slices.insert(ns, docs);
                    watches.push(watch);
                }
                Err(failed) => return *failed,
            }
        }
        let reached = join_all(found.iter().map(|w| async {
            let reached = match &w.backend {
                Backend::Service(s) => Reached::Endpoints(ready_endpoints(
                    slices.get(s.namespace.as_str()).map_or(&[], Vec::as_slice),
                    &s.name,
                )),
                Backend::Url(url) => probe_url(url, w.ca_bundle.as_deref()).await,
                Backend::Nowhere => Reached::Endpoints(0),
            };
            (w.clone(), reached)
        }))
        .await;
        let outcome = judge(&reached, configs.len());
        if reached
            .iter()
            .any(|(_, r)| matches!(r, Reached::NoAnswer(_)))
        {
            // A URL that does not answer may come back: try again after a backoff.
            return Attempt::transient(outcome);
        }
        // Endpoints turn ready, and a configuration may be fixed or deleted: wait for either.
        Attempt::until_changed(outcome, watches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;

    fn config(yaml: &str) -> WebhookConfigDoc {
        serde_saphyr::from_str(yaml).expect("parses")
    }

    fn defaults() -> Vec<Resource> {
        AdmissionWebhooks::new(&AdmissionWebhookSettings::default()).resources
    }

    /// The platform's namespaces as they are before any exists: named, nothing else.
    fn fresh() -> BTreeMap<String, BTreeMap<String, String>> {
        let check = AdmissionWebhooks::new(&AdmissionWebhookSettings::default());
        namespace_labels(&check.namespaces, &BTreeMap::new())
    }

    fn found(yaml: &str) -> Vec<Intercept> {
        intercepts(
            &[("ValidatingWebhookConfiguration", config(yaml))],
            &defaults(),
            &fresh(),
        )
    }

    const ESO: &str = "metadata: {name: externalsecret-validate}\nwebhooks:\n- name: validate.externalsecret.external-secrets.io\n  clientConfig:\n    service: {namespace: external-secrets, name: external-secrets-webhook, path: /validate-external-secrets-io-v1-externalsecret}\n  rules:\n  - {apiGroups: [external-secrets.io], apiVersions: [v1], operations: [CREATE, UPDATE, DELETE], resources: [externalsecrets], scope: Namespaced}\n  failurePolicy: Fail\n  sideEffects: None\n  admissionReviewVersions: [v1]\n";

    #[test]
    fn finds_the_fail_closed_webhooks_that_intercept_the_apps_resources() {
        let eso = found(ESO);
        assert_eq!(eso.len(), 1);
        assert_eq!(
            eso[0].config,
            "ValidatingWebhookConfiguration/externalsecret-validate"
        );
        assert_eq!(
            eso[0].resources,
            [Resource::parse("externalsecrets.external-secrets.io")]
        );
        assert_eq!(eso[0].namespaces, None);
        assert!(!eso[0].object_selector);

        // Ignore and an unmatched resource: left alone; no policy means Fail.
        let cases = [
            (
                ESO.replace("failurePolicy: Fail", "failurePolicy: Ignore"),
                0,
            ),
            (ESO.replace("  failurePolicy: Fail\n", ""), 1),
            (ESO.replace("[externalsecrets]", "[pushsecrets]"), 0),
            (
                ESO.replace("[externalsecrets]", "['externalsecrets/status']"),
                0,
            ),
            (ESO.replace("[CREATE, UPDATE, DELETE]", "[DELETE]"), 0),
            (ESO.replace("[CREATE, UPDATE, DELETE]", "['*']"), 1),
            (
                ESO.replace("[external-secrets.io]", "['*']")
                    .replace("[externalsecrets]", "['*']"),
                // Its rule's scope is Namespaced: not the cluster-scoped resources.
                defaults().iter().filter(|r| !r.is_cluster_scoped()).count(),
            ),
        ];
        for (yaml, matched) in cases {
            let hits = found(&yaml);
            assert_eq!(
                hits.first().map_or(0, |w| w.resources.len()),
                matched,
                "{yaml}"
            );
        }
    }

    /// The AWS load balancer controller's pod webhook as its chart renders it.
    const MPOD: &str = "metadata: {name: aws-load-balancer-webhook}\nwebhooks:\n- name: mpod.elbv2.k8s.aws\n  clientConfig:\n    service: {namespace: kube-system, name: aws-load-balancer-webhook-service, path: /mutate-v1-pod}\n  failurePolicy: Fail\n  namespaceSelector:\n    matchExpressions:\n    - {key: elbv2.k8s.aws/pod-readiness-gate-inject, operator: In, values: [enabled]}\n  objectSelector:\n    matchExpressions:\n    - {key: app.kubernetes.io/name, operator: NotIn, values: [aws-load-balancer-controller]}\n  rules:\n  - {apiGroups: [''], apiVersions: [v1], operations: [CREATE], resources: [pods]}\n";

    #[test]
    fn evaluates_the_namespace_selector_on_the_platforms_namespaces() {
        // Before any namespace is labelled for it, the pod webhook touches no platform app.
        assert_eq!(found(MPOD), []);
        let mut labelled = fresh();
        labelled
            .get_mut("monitoring")
            .expect("an app namespace")
            .insert(
                "elbv2.k8s.aws/pod-readiness-gate-inject".into(),
                "enabled".into(),
            );
        let w = intercepts(
            &[("MutatingWebhookConfiguration", config(MPOD))],
            &defaults(),
            &labelled,
        )
        .remove(0);
        assert_eq!(w.resources, [Resource::parse("pods")]);
        assert_eq!(w.namespaces, Some(vec!["monitoring".to_owned()]));
        assert!(w.object_selector);
        let o = judge(&[(w, Reached::Endpoints(0))], 1);
        assert_eq!(
            o.message,
            "webhook mpod.elbv2.k8s.aws of MutatingWebhookConfiguration/aws-load-balancer-webhook (failurePolicy Fail) is served by Service kube-system/aws-load-balancer-webhook-service, which has no ready endpoint: every create or update of pods in namespace monitoring is refused (its objectSelector is not evaluated: the objects it would select do not exist yet, so it may intercept fewer)"
        );

        let selector = |s: &str| {
            ESO.replace(
                "  failurePolicy: Fail\n",
                &format!("  failurePolicy: Fail\n  namespaceSelector: {s}\n"),
            )
        };
        for (sel, selected) in [
            ("{}", None),
            ("null", None),
            (
                "{matchLabels: {kubernetes.io/metadata.name: backstage}}",
                Some(vec!["backstage"]),
            ),
            (
                "{matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [keycloak, team-a]}]}",
                Some(vec!["keycloak"]),
            ),
            // Every namespace but the system ones: the platform's are all selected but
            // kube-system.
            (
                "{matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [kube-system]}]}",
                Some(vec![
                    "argocd",
                    "backstage",
                    "cert-manager",
                    "external-dns",
                    "external-secrets",
                    "keycloak",
                    "kong",
                    "monitoring",
                ]),
            ),
            (
                "{matchExpressions: [{key: team, operator: Exists}]}",
                Some(vec![]),
            ),
            (
                "{matchExpressions: [{key: team, operator: DoesNotExist}]}",
                Some(vec!["all"]),
            ),
            ("{matchLabels: {team: payments}}", Some(vec![])),
        ] {
            let found = found(&selector(sel));
            match selected {
                Some(names) if names.is_empty() => assert_eq!(found, [], "{sel}"),
                Some(names) if names == ["all"] => {
                    assert_eq!(found[0].namespaces.as_ref().map(Vec::len), Some(9), "{sel}");
                }
                Some(names) => assert_eq!(
                    found[0].namespaces,
                    Some(names.iter().map(|n| (*n).to_owned()).collect()),
                    "{sel}"
                ),
                None => assert_eq!(found[0].namespaces, None, "{sel}"),
            }
        }

        // Cluster-scoped resources are intercepted whatever the namespace selector; a
        // Namespace by its own labels; a rule's scope is honoured.
        let crd_hook = ESO
            .replace("[external-secrets.io]", "['*']")
            .replace(
                "[externalsecrets]",
                "[customresourcedefinitions, namespaces, pods]",
            )
            .replace("scope: Namespaced", "scope: '*'")
            .replace(
                "  failurePolicy: Fail\n",
                "  failurePolicy: Fail\n  namespaceSelector: {matchLabels: {team: payments}}\n",
            );
        let w = found(&crd_hook).remove(0);
        assert_eq!(
            w.resources,
            [Resource::parse(
                "customresourcedefinitions.apiextensions.k8s.io"
            )]
        );
        assert_eq!(w.namespaces, None, "nothing namespaced is narrowed");
        let namespaced_only = crd_hook.replace("scope: '*'", "scope: Namespaced");
        assert_eq!(found(&namespaced_only), []);
        let cluster_only = ESO
            .replace("[external-secrets.io]", "['*']")
            .replace("[externalsecrets]", "['*']")
            .replace("scope: Namespaced", "scope: Cluster");
        let w = found(&cluster_only).remove(0);
        assert!(
            w.resources.iter().all(Resource::is_cluster_scoped),
            "{:?}",
            w.resources
        );
        assert!(w.resources.contains(&Resource::parse("namespaces")));
        assert!(!w.resources.contains(&Resource::parse("pods")));

        // Live labels join the name label; a namespace not there yet has only its name.
        let live = BTreeMap::from([(
            "kong".to_owned(),
            BTreeMap::from([("team".to_owned(), "edge".to_owned())]),
        )]);
        let labels = namespace_labels(&["kong".into(), "keycloak".into()], &live);
        assert_eq!(labels["kong"]["team"], "edge");
        assert_eq!(labels["kong"][NAME_LABEL], "kong");
        assert_eq!(labels["keycloak"].len(), 1);
    }

    #[test]
    fn counts_ready_endpoints_of_the_service() {
        let slices: Vec<EndpointSliceDoc> = serde_saphyr::from_str(
            "- metadata: {labels: {kubernetes.io/service-name: external-secrets-webhook}}\n  endpoints:\n  - {addresses: [10.0.1.4], conditions: {ready: false}}\n  - {addresses: [10.0.1.5], conditions: {}}\n- metadata: {labels: {kubernetes.io/service-name: other}}\n  endpoints:\n  - {addresses: [10.0.1.6], conditions: {ready: true}}\n- metadata: {labels: {kubernetes.io/service-name: external-secrets-webhook}}\n  endpoints: null\n",
        )
        .expect("parses");
        assert_eq!(ready_endpoints(&slices, "external-secrets-webhook"), 1);
        assert_eq!(ready_endpoints(&slices, "other"), 1);
        assert_eq!(ready_endpoints(&slices, "missing"), 0);
    }

    #[test]
    fn judges_each_webhook_by_its_backend() {
        let eso = found(ESO).remove(0);
        let o = judge(&[(eso.clone(), Reached::Endpoints(2))], 1);
        assert_eq!(
            (o.status, o.code.as_str()),
            (Status::Pass, "admission-webhooks-served")
        );
        assert!(
            o.message
                .contains("external-secrets/external-secrets-webhook")
        );

        let o = judge(&[(eso.clone(), Reached::Endpoints(0))], 1);
        assert_eq!(
            (o.status, o.code.as_str()),
            (Status::Fail, "admission-webhook-unavailable")
        );
        assert_eq!(
            o.message,
            "webhook validate.externalsecret.external-secrets.io of ValidatingWebhookConfiguration/externalsecret-validate (failurePolicy Fail) is served by Service external-secrets/external-secrets-webhook, which has no ready endpoint: every create or update of externalsecrets.external-secrets.io is refused"
        );
        assert!(
            o.hint
                .as_deref()
                .is_some_and(|h| h.contains("kubectl delete"))
        );

        let url = Intercept {
            backend: Backend::Url("https://10.0.0.9:9443/validate".into()),
            ..eso
        };
        let o = judge(
            &[(url.clone(), Reached::NoAnswer("connection refused".into()))],
            1,
        );
        assert!(
            o.message
                .contains("served at https://10.0.0.9:9443/validate, which does not answer (connection refused)"),
            "{}",
            o.message
        );
        assert_eq!(judge(&[(url, Reached::Answered)], 1).status, Status::Pass);

        let o = judge(&[], 3);
        assert_eq!(o.status, Status::Pass);
        assert!(o.message.contains("3 webhook configuration(s) read"));
    }
}
