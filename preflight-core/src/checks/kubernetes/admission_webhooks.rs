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
//! app-of-apps creates the Applications). A namespace that exists is judged by its live
//! labels. One that does not exist yet is known in part: it will carry the immutable
//! `kubernetes.io/metadata.name: <name>` label, and the labels ArgoCD gives the namespaces it
//! creates (`spec.syncPolicy.managedNamespaceMetadata.labels` of the Applications deploying
//! into it); a chart's own Namespace manifest may add others. A webhook's
//! `namespaceSelector` (`matchLabels` and `matchExpressions`) is evaluated on those labels,
//! as the API server evaluates it: a webhook that selects none of the namespaces is left
//! alone, except where it only lacks labels a namespace not created yet may still be given
//! (a `matchLabels` pair, an `In` or `Exists` on another key than the name): such a webhook,
//! when not served, is a warning naming the namespace and the label, never a silent pass. A
//! cluster-scoped resource is
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

use super::fetch::{
    self, APPLICATIONS, ENDPOINT_SLICES, MUTATING_WEBHOOKS, NAMESPACES, VALIDATING_WEBHOOKS,
};
use crate::check::{Attempt, Check, Context, KubeWatch};
use crate::check::{Built, Definition, Family, Site};
use crate::outcome::{Outcome, error_chain};
use crate::platform::{APPS, NeededBy, Provider, Scope};
use crate::reads::Reads;
use crate::tier::Tier;
use crate::tls::{Bundle, Roots, TlsError, TlsSettings};
use crate::trust::CaBundleError;

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
    /// Where ArgoCD's Applications are: the `managedNamespaceMetadata` labels of those
    /// deploying into a namespace not created yet are the labels it will be created with.
    pub applications_namespace: String,
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
        let argocd = super::TierGatingSettings::default().namespace;
        AdmissionWebhookSettings {
            resources: resources.map(str::to_owned).to_vec(),
            namespaces: vec![argocd.clone()],
            applications_namespace: argocd,
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

    /// Whether it selects a namespace with `labels`, as the API server decides: every
    /// `matchLabels` pair and every expression must hold (`NotIn` holds without the key).
    /// For a namespace not created yet (`pending`), whose `labels` are only those known in
    /// advance, a selector that fails only for lack of labels on other keys than the name
    /// (a `matchLabels` pair, `In`, `Exists`) may still select it: [`Selection::Maybe`].
    fn selection(&self, labels: &BTreeMap<String, String>, pending: bool) -> Selection {
        // Each requirement that does not hold: its key, whether adding that label could make
        // it hold, and how to name the label it wants.
        let mut unmet: Vec<(&str, bool, String)> = Vec::new();
        for (k, v) in &self.match_labels {
            if labels.get(k) != Some(v) {
                unmet.push((k, true, format!("{k}={v}")));
            }
        }
        for r in &self.match_expressions {
            let value = labels.get(&r.key);
            let (holds, wants_label) = match r.operator.as_str() {
                "In" => (value.is_some_and(|v| r.values.contains(v)), true),
                "NotIn" => (value.is_none_or(|v| !r.values.contains(v)), false),
                "Exists" => (value.is_some(), true),
                "DoesNotExist" => (value.is_none(), false),
                // The API server accepts no other operator: were one there, the webhook
                // is kept, as over-approximating is the safe side.
                _ => (true, false),
            };
            if !holds {
                let named = match (r.operator.as_str(), r.values.as_slice()) {
                    ("In", [one]) => format!("{}={one}", r.key),
                    ("In", values) => format!("{} in ({})", r.key, values.join(", ")),
                    _ => r.key.clone(),
                };
                unmet.push((&r.key, wants_label, named));
            }
        }
        if unmet.is_empty() {
            return Selection::Selected;
        }
        let addable = |(key, wants_label, _): &(&str, bool, String)| {
            *wants_label && *key != NAME_LABEL && !labels.contains_key(*key)
        };
        if pending && unmet.iter().all(addable) {
            let mut wanted: Vec<String> = unmet.into_iter().map(|(_, _, n)| n).collect();
            wanted.dedup();
            return Selection::Maybe(wanted);
        }
        Selection::Not
    }
}

/// Whether a namespace selector selects a namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Selection {
    Selected,
    /// The namespace does not exist yet, and is selected if created with these labels (as
    /// `key=value`, `key in (a, b)` or a bare key for `Exists`), all of them.
    Maybe(Vec<String>),
    Not,
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
    /// The platform's namespaces, not created yet, it selects if they are created with more
    /// labels than are known in advance: each with the labels it wants.
    maybe: Vec<(String, Vec<String>)>,
    /// It has an object selector, which cannot be evaluated before the objects exist.
    object_selector: bool,
}

/// The fail-closed webhooks among `configs` (kind, document) that intercept any of
/// `resources` in the namespaces of `namespaces` (name → labels; those of `pending` not
/// created yet) or, for cluster-scoped resources, anywhere.
pub(crate) fn intercepts(
    configs: &[(&str, WebhookConfigDoc)],
    resources: &[Resource],
    namespaces: &BTreeMap<String, BTreeMap<String, String>>,
    pending: &BTreeSet<String>,
) -> Vec<Intercept> {
    let mut found = Vec::new();
    for (kind, config) in configs {
        for webhook in &config.webhooks {
            if webhook.failure_policy.as_deref().unwrap_or("Fail") != "Fail" {
                continue;
            }
            let selector = &webhook.namespace_selector;
            let mut selected: Vec<String> = Vec::new();
            let mut maybe = Vec::new();
            for (name, labels) in namespaces {
                match selector.selection(labels, pending.contains(name)) {
                    Selection::Selected => selected.push(name.clone()),
                    Selection::Maybe(wanted) => maybe.push((name.clone(), wanted)),
                    Selection::Not => {}
                }
            }
            // The API server evaluates the namespace selector on a namespaced object's
            // namespace and on a Namespace itself; never on another cluster-scoped object.
            let matched: Vec<Resource> = resources
                .iter()
                .filter(|r| webhook.rules.iter().any(|rule| rule.intercepts(r)))
                .filter(|r| {
                    (r.is_cluster_scoped() && !r.is_namespace())
                        || !selected.is_empty()
                        || !maybe.is_empty()
                })
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
                maybe: if narrowed { maybe } else { Vec::new() },
                object_selector: !webhook.object_selector.is_empty(),
            });
        }
    }
    found
}

/// The labels of each namespace the platform writes to: the `kubernetes.io/metadata.name`
/// label every namespace carries, with the live labels of those that exist (`live`) and, for
/// those that do not yet, the labels ArgoCD will create them with (`managed`).
pub(crate) fn namespace_labels(
    names: &[String],
    live: &BTreeMap<String, BTreeMap<String, String>>,
    managed: &BTreeMap<String, BTreeMap<String, String>>,
) -> BTreeMap<String, BTreeMap<String, String>> {
    names
        .iter()
        .map(|name| {
            let mut labels = match live.get(name) {
                Some(labels) => labels.clone(),
                None => managed.get(name).cloned().unwrap_or_default(),
            };
            labels.insert(NAME_LABEL.to_owned(), name.clone());
            (name.clone(), labels)
        })
        .collect()
}

/// The labels ArgoCD gives each namespace it creates: the
/// `spec.syncPolicy.managedNamespaceMetadata.labels` of the Applications deploying into it
/// (`spec.destination.namespace`), merged.
pub(crate) fn managed_labels(
    apps: &[ApplicationDoc],
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut managed: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for app in apps {
        let (Some(ns), Some(meta)) = (
            app.spec.destination.namespace.as_deref(),
            app.spec.sync_policy.managed_namespace_metadata.as_ref(),
        ) else {
            continue;
        };
        managed
            .entry(ns.to_owned())
            .or_default()
            .extend(meta.labels.clone());
    }
    managed
}

/// An ArgoCD Application, with only the labels it gives the namespace it deploys into.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ApplicationDoc {
    #[serde(default)]
    spec: ApplicationSpec,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApplicationSpec {
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    destination: Destination,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    sync_policy: SyncPolicy,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Destination {
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SyncPolicy {
    #[serde(default)]
    managed_namespace_metadata: Option<ManagedNamespaceMetadata>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct ManagedNamespaceMetadata {
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    labels: BTreeMap<String, String>,
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

/// Judges each intercepting webhook with what its backend showed: one not served fails when
/// it surely intercepts what the apps create, and is a warning when it does only if a
/// namespace not created yet is given a label it keys on.
pub(crate) fn judge(found: &[(Intercept, Reached)], checked: usize) -> Outcome {
    let mut problems = Vec::new();
    let mut risks = Vec::new();
    let mut fine = Vec::new();
    for (w, reached) in found {
        let what = format!("webhook {} of {}", w.webhook, w.config);
        let narrowed = if w.object_selector {
            " (its objectSelector is not evaluated: the objects it would select do not exist yet, so it may intercept fewer)"
        } else {
            ""
        };
        let down = match (&w.backend, reached) {
            (Backend::Service(s), Reached::Endpoints(0)) => format!(
                "is served by Service {}/{}, which has no ready endpoint",
                s.namespace, s.name
            ),
            (Backend::Url(url), Reached::NoAnswer(why)) => {
                format!("is served at {url}, which does not answer ({why})")
            }
            (Backend::Nowhere, _) => {
                problems.push(format!(
                    "{what} (failurePolicy Fail) names neither a Service nor a URL"
                ));
                continue;
            }
            (Backend::Service(s), _) => {
                fine.push(format!("{what} ({}/{})", s.namespace, s.name));
                continue;
            }
            (Backend::Url(url), _) => {
                fine.push(format!("{what} ({url})"));
                continue;
            }
        };
        if w.surely_intercepts() {
            problems.push(format!(
                "{what} (failurePolicy Fail) {down}: every create or update of {} is refused{narrowed}",
                intercepted(w)
            ));
        } else {
            risks.push(format!(
                "{what} (failurePolicy Fail) {down}: it intercepts {}, and would then refuse every create or update of {} there{narrowed}",
                may_intercept(w),
                crate::outcome::name_list(&w.namespaced(), 4)
            ));
        }
    }
    if !problems.is_empty() {
        problems.extend(risks);
        return Outcome::fail("admission-webhook-unavailable", problems.join("; ")).hint(
            "Bring the webhook's server back (its Deployment's pods Ready: kubectl -n <namespace> get pods,endpointslices), or, if the app that installed it is gone, delete the leftover configuration (kubectl delete validatingwebhookconfiguration|mutatingwebhookconfiguration <name>). While it has no endpoint, the API server refuses what it intercepts and the sync fails with `failed calling webhook`.",
        );
    }
    if !risks.is_empty() {
        return Outcome::warn("admission-webhook-may-intercept", risks.join("; ")).hint(
            "If the namespace will be created with that label (its Namespace manifest in a chart, or spec.syncPolicy.managedNamespaceMetadata.labels of the Application deploying into it), bring the webhook's server back before the sync (kubectl -n <namespace> get pods,endpointslices), or delete the leftover configuration (kubectl delete validatingwebhookconfiguration|mutatingwebhookconfiguration <name>); otherwise the webhook leaves the namespace alone. To have preflight judge it exactly, give the label in the Application's managedNamespaceMetadata, or create the namespace first.",
        );
    }
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
    Outcome::pass("admission-webhooks-served", message)
}

impl Intercept {
    /// Whether it intercepts something whatever labels the namespaces not created yet get:
    /// a cluster-scoped resource, or anything in a namespace its selector selects.
    fn surely_intercepts(&self) -> bool {
        self.resources
            .iter()
            .any(|r| r.is_cluster_scoped() && !r.is_namespace())
            || self.namespaces.as_ref().is_none_or(|n| !n.is_empty())
    }

    /// The resources it intercepts in the namespaces it selects (and Namespaces themselves).
    fn namespaced(&self) -> Vec<String> {
        self.resources
            .iter()
            .filter(|r| !r.is_cluster_scoped() || r.is_namespace())
            .map(ToString::to_string)
            .collect()
    }
}

/// The namespaces not created yet a webhook intercepts if they get the labels it keys on,
/// for a message: `namespace monitoring if it is created with label k=v`.
fn may_intercept(w: &Intercept) -> String {
    let mut by_labels: BTreeMap<&[String], Vec<String>> = BTreeMap::new();
    for (ns, wanted) in &w.maybe {
        by_labels.entry(wanted).or_default().push(ns.clone());
    }
    by_labels
        .into_iter()
        .map(|(wanted, namespaces)| {
            let (noun, pronoun) = if namespaces.len() == 1 {
                ("namespace", "it is")
            } else {
                ("namespaces", "they are")
            };
            // All named: they are among the platform's few, and the one a reader looks for
            // must not hide behind "and N more".
            format!(
                "{noun} {} if {pronoun} created with {} {}",
                namespaces.join(", "),
                if wanted.len() == 1 { "label" } else { "labels" },
                wanted.join(" and ")
            )
        })
        .collect::<Vec<_>>()
        .join(", and ")
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
    if !namespaced.is_empty() && !namespaces.is_empty() {
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
    /// Where ArgoCD's Applications are.
    applications_namespace: String,
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
            applications_namespace: settings.applications_namespace.clone(),
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
/// is up and its certificate is trusted as the API server would trust it (its `caBundle`
/// only, else the system's CAs), through the run's shared connector for that trust.
async fn probe_url(ctx: &Context, url: &str, ca_bundle: Option<&str>) -> Reached {
    let roots = match ca_bundle {
        Some(bundle) => match base64::engine::general_purpose::STANDARD.decode(bundle.trim()) {
            Ok(pem) => Roots::Only(Bundle::Inline(pem.into())),
            Err(e) => return Reached::NoAnswer(format!("its caBundle is not base64: {e}")),
        },
        None => Roots::System,
    };
    let connector = match ctx.tls().get(&TlsSettings::verified(roots)).await {
        Ok(c) => c,
        Err(TlsError::Bundle(e)) => {
            return Reached::NoAnswer(format!("its caBundle {}", inline_problem(&e)));
        }
        Err(e) => return Reached::NoAnswer(e.to_string()),
    };
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .use_preconfigured_tls(connector)
        .build()
    {
        Ok(c) => c,
        Err(e) => return Reached::NoAnswer(error_chain(&e)),
    };
    match client.post(url).send().await {
        Ok(_) => Reached::Answered,
        Err(e) => Reached::NoAnswer(error_chain(&e)),
    }
}

/// What is wrong with an inline bundle, worded after "its caBundle".
fn inline_problem(e: &CaBundleError) -> String {
    match e {
        CaBundleError::Invalid { problem, .. } => problem.to_string(),
        CaBundleError::Read { .. } => error_chain(e),
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
        // is evaluated on (names and labels, nothing secret); ArgoCD's Applications for the
        // labels they give the namespaces they create.
        Reads::kube(vec![
            VALIDATING_WEBHOOKS.everywhere(),
            MUTATING_WEBHOOKS.everywhere(),
            ENDPOINT_SLICES.everywhere(),
            NAMESPACES.everywhere(),
            APPLICATIONS.within(&self.applications_namespace),
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
        let live: BTreeMap<String, BTreeMap<String, String>> =
            match fetch::list_all::<NamespaceDoc>(ctx, &NAMESPACES, None).await {
                Ok((docs, watch)) => {
                    watches.push(watch);
                    docs.into_iter()
                        .map(|d| (d.metadata.name, d.metadata.labels))
                        .collect()
                }
                Err(failed) => return *failed,
            };
        let pending: BTreeSet<String> = self
            .namespaces
            .iter()
            .filter(|ns| !live.contains_key(*ns))
            .cloned()
            .collect();
        // The labels ArgoCD will create them with, when its API is served (before ArgoCD is
        // installed there is none to read, and no Application to create them).
        let mut managed = BTreeMap::new();
        if !pending.is_empty() {
            match fetch::served_version(ctx, &APPLICATIONS, &["v1alpha1"]).await {
                Ok(Some(version)) => {
                    match fetch::list_all::<ApplicationDoc>(
                        ctx,
                        &APPLICATIONS.at_version(version),
                        Some(&self.applications_namespace),
                    )
                    .await
                    {
                        Ok((apps, watch)) => {
                            watches.push(watch);
                            managed = managed_labels(&apps);
                        }
                        Err(failed) => return *failed,
                    }
                }
                Ok(None) => {}
                Err(failed) => return *failed,
            }
        }
        let found = intercepts(
            &configs,
            &self.resources,
            &namespace_labels(&self.namespaces, &live, &managed),
            &pending,
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
                Backend::Url(url) => probe_url(ctx, url, w.ca_bundle.as_deref()).await,
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

    /// The platform's namespaces, each labelled with its name only.
    fn fresh() -> BTreeMap<String, BTreeMap<String, String>> {
        let check = AdmissionWebhooks::new(&AdmissionWebhookSettings::default());
        namespace_labels(&check.namespaces, &BTreeMap::new(), &BTreeMap::new())
    }

    /// What `yaml` intercepts once the platform's namespaces exist, with their names only.
    fn found(yaml: &str) -> Vec<Intercept> {
        intercepts(
            &[("ValidatingWebhookConfiguration", config(yaml))],
            &defaults(),
            &fresh(),
            &BTreeSet::new(),
        )
    }

    /// What `yaml` intercepts before the namespaces `pending` exist, with `labels`.
    fn found_before(
        yaml: &str,
        pending: &[&str],
        labels: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> Vec<Intercept> {
        intercepts(
            &[("MutatingWebhookConfiguration", config(yaml))],
            &defaults(),
            labels,
            &pending.iter().map(|n| (*n).to_owned()).collect(),
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
        // Once the namespaces exist unlabelled for it, the pod webhook touches no platform
        // app. (Before they exist, it may: see the test below.)
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
            &BTreeSet::new(),
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
        let labels = namespace_labels(&["kong".into(), "keycloak".into()], &live, &BTreeMap::new());
        assert_eq!(labels["kong"]["team"], "edge");
        assert_eq!(labels["kong"][NAME_LABEL], "kong");
        assert_eq!(labels["keycloak"].len(), 1);
    }

    const INJECT: &str = "elbv2.k8s.aws/pod-readiness-gate-inject";

    #[test]
    fn a_namespace_not_created_yet_may_be_given_the_label_a_webhook_keys_on() {
        // Before the app namespaces exist, the pod webhook may intercept each of them: it
        // keys on a label they may be created with.
        let names = AdmissionWebhooks::new(&AdmissionWebhookSettings::default()).namespaces;
        let all: Vec<&str> = names.iter().map(String::as_str).collect();
        let w = found_before(MPOD, &all, &fresh()).remove(0);
        assert_eq!(w.namespaces, Some(vec![]));
        assert_eq!(w.maybe.len(), 9);
        assert!(
            w.maybe
                .iter()
                .all(|(_, wanted)| *wanted == [format!("{INJECT}=enabled")])
        );
        let o = judge(&[(w.clone(), Reached::Endpoints(0))], 1);
        assert_eq!(
            (o.status, o.code.as_str()),
            (Status::Warn, "admission-webhook-may-intercept")
        );
        assert!(
            o.hint
                .as_deref()
                .is_some_and(|h| h.contains("managedNamespaceMetadata"))
        );
        // Served, it is fine however the namespaces are labelled.
        assert_eq!(judge(&[(w, Reached::Endpoints(1))], 1).status, Status::Pass);

        // One namespace pending, the others there unlabelled: that one only, by name.
        let w = found_before(MPOD, &["monitoring"], &fresh()).remove(0);
        assert_eq!(
            w.maybe,
            [("monitoring".to_owned(), vec![format!("{INJECT}=enabled")])]
        );
        let o = judge(&[(w, Reached::Endpoints(0))], 1);
        assert_eq!(
            o.message,
            "webhook mpod.elbv2.k8s.aws of MutatingWebhookConfiguration/aws-load-balancer-webhook (failurePolicy Fail) is served by Service kube-system/aws-load-balancer-webhook-service, which has no ready endpoint: it intercepts namespace monitoring if it is created with label elbv2.k8s.aws/pod-readiness-gate-inject=enabled, and would then refuse every create or update of pods there (its objectSelector is not evaluated: the objects it would select do not exist yet, so it may intercept fewer)"
        );

        // The Application deploying into it gives it the label: the webhook surely
        // intercepts it, and fails.
        let apps: Vec<ApplicationDoc> = serde_saphyr::from_str(&format!(
            "- spec:\n    destination: {{namespace: monitoring}}\n    syncPolicy:\n      syncOptions: [CreateNamespace=true]\n      managedNamespaceMetadata: {{labels: {{{INJECT}: enabled}}}}\n- spec:\n    destination: {{namespace: kong}}\n    syncPolicy: null\n- spec: {{}}\n"
        ))
        .expect("parses");
        let managed = managed_labels(&apps);
        assert_eq!(managed.len(), 1, "{managed:?}");
        let names = vec!["monitoring".to_owned(), "kong".to_owned()];
        let labels = namespace_labels(&names, &BTreeMap::new(), &managed);
        assert_eq!(labels["monitoring"][INJECT], "enabled");
        assert_eq!(labels["monitoring"][NAME_LABEL], "monitoring");
        let w = found_before(MPOD, &["monitoring", "kong"], &labels).remove(0);
        assert_eq!(w.namespaces, Some(vec!["monitoring".to_owned()]));
        assert_eq!(
            w.maybe,
            [("kong".to_owned(), vec![format!("{INJECT}=enabled")])]
        );
        let o = judge(&[(w, Reached::Endpoints(0))], 1);
        assert_eq!(
            (o.status, o.code.as_str()),
            (Status::Fail, "admission-webhook-unavailable")
        );
        assert!(
            o.message
                .contains("every create or update of pods in namespace monitoring is refused"),
            "{}",
            o.message
        );
        // A live namespace's own labels win over what an Application would give it.
        let live = BTreeMap::from([("monitoring".to_owned(), BTreeMap::new())]);
        let labels = namespace_labels(&names, &live, &managed);
        assert!(!labels["monitoring"].contains_key(INJECT));

        // Which selectors may still select a namespace not created yet.
        let selector = |s: &str| {
            ESO.replace(
                "  failurePolicy: Fail\n",
                &format!("  failurePolicy: Fail\n  namespaceSelector: {s}\n"),
            )
        };
        let named = fresh();
        for (sel, maybe) in [
            (
                "{matchLabels: {team: payments}}",
                Some(vec!["team=payments"]),
            ),
            (
                "{matchExpressions: [{key: team, operator: Exists}]}",
                Some(vec!["team"]),
            ),
            (
                "{matchExpressions: [{key: team, operator: In, values: [a, b]}]}",
                Some(vec!["team in (a, b)"]),
            ),
            (
                "{matchLabels: {team: payments}, matchExpressions: [{key: tier, operator: Exists}]}",
                Some(vec!["team=payments", "tier"]),
            ),
            // The name is known: no label makes the webhook select another namespace.
            (
                "{matchLabels: {kubernetes.io/metadata.name: backstage}}",
                None,
            ),
            (
                "{matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [team-a]}, {key: team, operator: Exists}]}",
                None,
            ),
            // Adding a label never makes NotIn or DoesNotExist hold.
            (
                "{matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [monitoring]}]}",
                None,
            ),
        ] {
            let hits = intercepts(
                &[("ValidatingWebhookConfiguration", config(&selector(sel)))],
                &defaults(),
                &named,
                &BTreeSet::from(["monitoring".to_owned()]),
            );
            let monitoring = hits
                .first()
                .and_then(|w| w.maybe.iter().find(|(ns, _)| ns == "monitoring"))
                .map(|(_, wanted)| wanted.clone());
            assert_eq!(
                monitoring,
                maybe.map(|m| m.iter().map(|l| (*l).to_owned()).collect::<Vec<_>>()),
                "{sel}"
            );
            // The same selector on a namespace that exists: its labels are all known.
            assert!(
                found(&selector(sel)).iter().all(|w| w.maybe.is_empty()),
                "{sel}"
            );
        }
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
