//! `admission-webhooks`: no fail-closed admission webhook stands in the way of the tier's
//! sync. A Validating or Mutating webhook with `failurePolicy: Fail` (the default of
//! `admissionregistration.k8s.io/v1`) that intercepts what the apps create makes the API
//! server refuse every such create or update while the webhook's Service has no ready
//! endpoint: ArgoCD's sync then fails on `failed calling webhook ... no endpoints available
//! for service`. A webhook left behind by an uninstalled chart, or whose controller is
//! crash-looping, blocks every later sync this way.
//!
//! Which webhooks count: those whose rules match a `CREATE` or `UPDATE` of one of the
//! resources the apps create (`resources`, kubectl's `resource.group` form). A webhook's
//! `namespaceSelector` and `objectSelector` are not evaluated: the apps' namespaces may not
//! exist yet, so their labels are unknown; a fail-closed webhook without endpoints is broken
//! for whatever it selects, and the message says when a selector narrows it. A rule's `scope`
//! is not evaluated either, for the same reason of over-approximating.
//!
//! A webhook served by a Service passes when an EndpointSlice of that Service has a ready
//! endpoint; one served by a URL passes when the URL answers over TLS (any HTTP status), with
//! the webhook's own `caBundle` as the only trusted CA when it has one.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use futures::future::join_all;
use serde::{Deserialize, Serialize};

use super::fetch::{self, ENDPOINT_SLICES, MUTATING_WEBHOOKS, VALIDATING_WEBHOOKS};
use crate::access::Reads;
use crate::check::{Attempt, Check, Context, KubeWatch};
use crate::check::{Built, Definition, Family, Site};
use crate::outcome::{Outcome, error_chain};
use crate::platform::{NeededBy, Provider};
use crate::tier::Tier;

/// `checks.admission-webhooks`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct AdmissionWebhookSettings {
    /// The resources the apps create, as `resource.group` (`deployments.apps`; core resources
    /// without a group: `pods`). A fail-closed webhook matching none of them is left alone.
    pub resources: Vec<String>,
}

impl Default for AdmissionWebhookSettings {
    /// What the platform's charts create: workloads, their configuration and RBAC, Ingresses,
    /// CRDs, and the custom resources of External Secrets, cert-manager and Prometheus.
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
            "statefulsets.apps",
            "daemonsets.apps",
            "jobs.batch",
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
        ];
        AdmissionWebhookSettings {
            resources: resources.map(str::to_owned).to_vec(),
        }
    }
}

/// A resource as RBAC and webhook rules name it: group (empty for core) and plural.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Resource {
    group: String,
    plural: String,
}

impl Resource {
    /// Parses kubectl's `resource.group` form (`deployments.apps`, `pods`).
    fn parse(text: &str) -> Self {
        let (plural, group) = text.split_once('.').unwrap_or((text, ""));
        Resource {
            group: group.to_owned(),
            plural: plural.to_owned(),
        }
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
    #[serde(default)]
    namespace_selector: Option<serde_json::Value>,
    #[serde(default)]
    object_selector: Option<serde_json::Value>,
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
}

impl RuleDoc {
    /// Whether the rule intercepts a create or update of `r` itself (not a subresource).
    fn intercepts(&self, r: &Resource) -> bool {
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
        writes && group && resource
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
    /// The apps' resources it intercepts.
    resources: Vec<Resource>,
    /// It has a namespace or object selector, so it may not apply everywhere.
    selective: bool,
}

/// The fail-closed webhooks among `configs` (kind, document) that intercept any of
/// `resources`.
pub(crate) fn intercepts(
    configs: &[(&str, WebhookConfigDoc)],
    resources: &[Resource],
) -> Vec<Intercept> {
    let mut found = Vec::new();
    for (kind, config) in configs {
        for webhook in &config.webhooks {
            if webhook.failure_policy.as_deref().unwrap_or("Fail") != "Fail" {
                continue;
            }
            let matched: Vec<Resource> = resources
                .iter()
                .filter(|r| webhook.rules.iter().any(|rule| rule.intercepts(r)))
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
            let selective = [&webhook.namespace_selector, &webhook.object_selector]
                .iter()
                .any(|s| selector_narrows(s.as_ref()));
            found.push(Intercept {
                config: format!("{kind}/{}", config.metadata.name),
                webhook: webhook.name.clone(),
                backend,
                ca_bundle: cc.ca_bundle.clone(),
                resources: matched,
                selective,
            });
        }
    }
    found
}

/// Whether a label selector selects less than everything (`{}` and absent select all).
fn selector_narrows(selector: Option<&serde_json::Value>) -> bool {
    selector
        .and_then(serde_json::Value::as_object)
        .is_some_and(|s| {
            s.values().any(|v| match v {
                serde_json::Value::Array(a) => !a.is_empty(),
                serde_json::Value::Object(o) => !o.is_empty(),
                serde_json::Value::Null => false,
                _ => true,
            })
        })
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
        let intercepted = name_resources(&w.resources);
        let narrowed = if w.selective {
            " (its namespace/object selector may narrow it)"
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

/// A short list of resources for a message.
fn name_resources(resources: &[Resource]) -> String {
    let names: Vec<String> = resources.iter().map(ToString::to_string).collect();
    crate::outcome::name_list(&names, 4)
}

/// The `admission-webhooks` check.
#[derive(Debug)]
pub struct AdmissionWebhooks {
    resources: Vec<Resource>,
}

impl AdmissionWebhooks {
    /// A check with these settings.
    #[must_use]
    pub fn new(settings: &AdmissionWebhookSettings) -> Self {
        AdmissionWebhooks {
            resources: settings
                .resources
                .iter()
                .map(|r| Resource::parse(r))
                .collect(),
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

    /// What serves a webhook was installed before the gate: by EKS and its add-ons, or by an
    /// app of a lower tier (External Secrets' and cert-manager's webhooks at the later gates).
    fn provided_by(_: &AdmissionWebhookSettings, _: &Site<'_>) -> Provider {
        Provider::Foundation("the controllers serving the cluster's admission webhooks")
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
        Reads::kube(vec![
            VALIDATING_WEBHOOKS.everywhere(),
            MUTATING_WEBHOOKS.everywhere(),
            ENDPOINT_SLICES.everywhere(),
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
        let found = intercepts(&configs, &self.resources);
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

    const ESO: &str = "metadata: {name: externalsecret-validate}\nwebhooks:\n- name: validate.externalsecret.external-secrets.io\n  clientConfig:\n    service: {namespace: external-secrets, name: external-secrets-webhook, path: /validate-external-secrets-io-v1-externalsecret}\n  rules:\n  - {apiGroups: [external-secrets.io], apiVersions: [v1], operations: [CREATE, UPDATE, DELETE], resources: [externalsecrets], scope: Namespaced}\n  failurePolicy: Fail\n  sideEffects: None\n  admissionReviewVersions: [v1]\n";

    #[test]
    fn finds_the_fail_closed_webhooks_that_intercept_the_apps_resources() {
        let eso = config(ESO);
        let found = intercepts(&[("ValidatingWebhookConfiguration", eso)], &defaults());
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].config,
            "ValidatingWebhookConfiguration/externalsecret-validate"
        );
        assert_eq!(
            found[0].resources,
            [Resource::parse("externalsecrets.external-secrets.io")]
        );
        assert!(!found[0].selective);

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
                defaults().len(),
            ),
        ];
        for (yaml, matched) in cases {
            let found = intercepts(
                &[("ValidatingWebhookConfiguration", config(&yaml))],
                &defaults(),
            );
            assert_eq!(
                found.first().map_or(0, |w| w.resources.len()),
                matched,
                "{yaml}"
            );
        }
        let selective = ESO.replace(
            "  failurePolicy: Fail\n",
            "  failurePolicy: Fail\n  namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [kube-system]}]}\n  objectSelector: {}\n",
        );
        let found = intercepts(
            &[("ValidatingWebhookConfiguration", config(&selective))],
            &defaults(),
        );
        assert!(found[0].selective);
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
        let eso = intercepts(
            &[("ValidatingWebhookConfiguration", config(ESO))],
            &defaults(),
        )
        .remove(0);
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
