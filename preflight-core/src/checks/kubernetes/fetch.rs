//! How Kubernetes checks read the API: typed resource descriptors, reads that return the
//! resource version to watch from, and the mapping of API errors to outcomes.

use std::borrow::Cow;
use std::fmt::Write as _;

use futures::AsyncBufReadExt as _;
use futures::future::join_all;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta;
use serde::Deserialize as _;
use serde::de::DeserializeOwned;

use super::list_body::ListReader;
use crate::check::{Attempt, Context, KubeWatch};
use crate::outcome::{Outcome, error_chain};

/// A resource type a check reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResourceType {
    /// API group; empty for the core group.
    pub group: &'static str,
    /// API version within the group.
    pub version: Cow<'static, str>,
    /// Plural resource name, as in URLs and RBAC rules.
    pub plural: &'static str,
    /// Kind, for messages.
    pub kind: &'static str,
}

impl ResourceType {
    pub(crate) const fn new(
        group: &'static str,
        version: &'static str,
        plural: &'static str,
        kind: &'static str,
    ) -> Self {
        ResourceType {
            group,
            version: Cow::Borrowed(version),
            plural,
            kind,
        }
    }

    /// The same resource at another version (for CRDs served at several).
    pub(crate) fn at_version(&self, version: String) -> Self {
        ResourceType {
            version: Cow::Owned(version),
            ..self.clone()
        }
    }

    /// Reading every object of this (cluster-scoped) type.
    pub(crate) fn everywhere(&self) -> crate::reads::KubeRead {
        crate::reads::KubeRead::cluster(self.group, self.plural)
    }

    /// Reading every object of this type in one namespace.
    pub(crate) fn within(&self, namespace: &str) -> crate::reads::KubeRead {
        crate::reads::KubeRead::namespaced(self.group, self.plural, namespace)
    }

    /// `/api/v1/...` or `/apis/{group}/{version}/...` for the collection, in a namespace or not.
    pub(crate) fn collection_path(&self, namespace: Option<&str>) -> String {
        let mut path = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        if let Some(ns) = namespace {
            let _ = write!(path, "/namespaces/{ns}");
        }
        let _ = write!(path, "/{}", self.plural);
        path
    }
}

pub(crate) static NODES: ResourceType = ResourceType::new("", "v1", "nodes", "Node");
pub(crate) static NAMESPACES: ResourceType = ResourceType::new("", "v1", "namespaces", "Namespace");
pub(crate) static SECRETS: ResourceType = ResourceType::new("", "v1", "secrets", "Secret");
pub(crate) static EXTERNAL_SECRETS: ResourceType = ResourceType::new(
    "external-secrets.io",
    "v1",
    "externalsecrets",
    "ExternalSecret",
);
pub(crate) static SERVICE_ACCOUNTS: ResourceType =
    ResourceType::new("", "v1", "serviceaccounts", "ServiceAccount");
pub(crate) static DEPLOYMENTS: ResourceType =
    ResourceType::new("apps", "v1", "deployments", "Deployment");
pub(crate) static DAEMON_SETS: ResourceType =
    ResourceType::new("apps", "v1", "daemonsets", "DaemonSet");
pub(crate) static CRDS: ResourceType = ResourceType::new(
    "apiextensions.k8s.io",
    "v1",
    "customresourcedefinitions",
    "CustomResourceDefinition",
);
pub(crate) static INGRESS_CLASSES: ResourceType =
    ResourceType::new("networking.k8s.io", "v1", "ingressclasses", "IngressClass");
pub(crate) static STORAGE_CLASSES: ResourceType =
    ResourceType::new("storage.k8s.io", "v1", "storageclasses", "StorageClass");
pub(crate) static CLUSTER_SECRET_STORES: ResourceType = ResourceType::new(
    "external-secrets.io",
    "v1",
    "clustersecretstores",
    "ClusterSecretStore",
);

pub(crate) static CLUSTER_ISSUERS: ResourceType =
    ResourceType::new("cert-manager.io", "v1", "clusterissuers", "ClusterIssuer");
pub(crate) static VALIDATING_WEBHOOKS: ResourceType = ResourceType::new(
    "admissionregistration.k8s.io",
    "v1",
    "validatingwebhookconfigurations",
    "ValidatingWebhookConfiguration",
);
pub(crate) static MUTATING_WEBHOOKS: ResourceType = ResourceType::new(
    "admissionregistration.k8s.io",
    "v1",
    "mutatingwebhookconfigurations",
    "MutatingWebhookConfiguration",
);
pub(crate) static ENDPOINT_SLICES: ResourceType =
    ResourceType::new("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice");
pub(crate) static APPLICATIONS: ResourceType =
    ResourceType::new("argoproj.io", "v1alpha1", "applications", "Application");
pub(crate) static INGRESSES: ResourceType =
    ResourceType::new("networking.k8s.io", "v1", "ingresses", "Ingress");
pub(crate) static CERTIFICATES: ResourceType =
    ResourceType::new("cert-manager.io", "v1", "certificates", "Certificate");

/// Deserializes a JSON `null` as the type's default. The API server writes Go's nil slices and
/// maps as `null` where a field has no `omitempty` (a CRD's `status.conditions` right after its
/// creation), and `#[serde(default)]` alone covers only an absent field.
pub(crate) fn or_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// A Secret's data, base64 as the API sends it. Values are decoded only when asked for, key
/// by key, so a Secret's other keys never reach memory as text.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub(crate) struct SecretDoc {
    #[serde(default, deserialize_with = "or_default")]
    pub data: std::collections::BTreeMap<String, String>,
}

/// The text under `key` of a Secret's data: `None` when absent; a failure naming the key,
/// never the value, when it is not base64 of UTF-8 text.
pub(crate) fn secret_text(
    data: &std::collections::BTreeMap<String, String>,
    key: &str,
) -> Result<Option<String>, Outcome> {
    use base64::Engine as _;
    let Some(raw) = data.get(key) else {
        return Ok(None);
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .map_err(|_| {
            Outcome::fail(
                "credentials-invalid",
                format!("key {key} of the Secret is not valid base64"),
            )
        })?;
    String::from_utf8(bytes).map(Some).map_err(|_| {
        Outcome::fail(
            "credentials-invalid",
            format!("key {key} of the Secret is not UTF-8 text"),
        )
    })
}

/// One request, described well enough to name the RBAC permission it needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Access<'a> {
    pub verb: &'static str,
    pub resource: &'a ResourceType,
    pub namespace: Option<&'a str>,
    /// The object's name, for a type read by name only ([`crate::reads::read_by_name`]).
    pub name: Option<&'a str>,
}

impl Access<'_> {
    fn scope(&self) -> String {
        match self.namespace {
            Some(ns) => format!("in the namespace {ns:?}"),
            None => "at the cluster scope".to_owned(),
        }
    }

    /// The read as preflight's RBAC declares it.
    fn read(&self) -> crate::reads::KubeRead {
        crate::reads::KubeRead {
            group: self.resource.group,
            resource: self.resource.plural,
            namespace: self.namespace.map(str::to_owned),
            names: self.name.map(str::to_owned).into_iter().collect(),
        }
    }

    /// The RBAC rule that grants this access, exactly as `preflight rbac` writes it: the
    /// three read verbs preflight asks for together, or the one verb of another request.
    fn rule(&self) -> String {
        let verbs: &[&str] = match self.verb {
            "get" | "list" | "watch" => &["get", "list", "watch"],
            other => &[other],
        };
        crate::reads::grant(&self.read(), verbs)
    }
}

/// Maps a failed API call to an attempt: permanent for credentials and permissions, transient
/// for the network and the server's own trouble.
pub(crate) fn failure(err: &kube::Error, access: Access<'_>) -> Attempt {
    let what = format!(
        "{} {} (API group {:?}) {}",
        access.verb,
        access.resource.plural,
        access.resource.group,
        access.scope()
    );
    match err {
        kube::Error::Api(status) => match status.code {
            401 => Attempt::settled(
                Outcome::fail(
                    "unauthorized",
                    format!("the Kubernetes API rejected preflight's credentials ({}): {}", status.code, status.message),
                )
                .hint("The token is missing, expired or revoked. Refresh the kubeconfig (aws eks update-kubeconfig --name <cluster>) or, in the cluster, check the ServiceAccount token."),
            ),
            403 => {
                let mut outcome = Outcome::fail("forbidden", format!("missing permission: cannot {what}; the server said: {}", status.message))
                    .hint(access.rule())
                    .evidence("verb", access.verb)
                    .evidence("resource", access.resource.plural)
                    .evidence("apiGroup", access.resource.group);
                if let Some(ns) = access.namespace {
                    outcome = outcome.evidence("namespace", ns);
                }
                if let Some(name) = access.name {
                    outcome = outcome.evidence("resourceName", name);
                }
                Attempt::settled(outcome)
            }
            // A plain-text 404 is what the server sends for a group/version it does not serve:
            // the CRD is missing, which may still change while waiting for an earlier wave.
            404 if status.reason == "Failed to parse error data" => Attempt::transient(
                Outcome::fail(
                    "api-not-served",
                    format!(
                        "the API server does not serve {}/{} (404 page not found), so the {} CRD is not installed",
                        access.resource.group, access.resource.version, access.resource.kind
                    ),
                )
                .hint(format!(
                    "Install the CustomResourceDefinition {}.{} (the chart that owns it, with its CRDs enabled).",
                    access.resource.plural, access.resource.group
                )),
            ),
            429 | 500..=599 => Attempt::transient(Outcome::fail(
                "api-error",
                format!("the Kubernetes API answered {} to {what}: {}", status.code, status.message),
            )),
            code => Attempt::settled(Outcome::fail(
                "api-error",
                format!("the Kubernetes API answered {code} to {what}: {}", status.message),
            )),
        },
        kube::Error::Auth(e) => Attempt::settled(
            Outcome::fail("auth-failed", format!("cannot obtain Kubernetes credentials: {}", error_chain(e)))
                .hint("The kubeconfig's credential plugin failed (for EKS, `aws eks get-token`): check the AWS credentials and region it runs with."),
        ),
        kube::Error::SerdeError(e) => Attempt::settled(Outcome::fail(
            "unexpected-response",
            format!("the Kubernetes API sent a response preflight cannot read for {what}: {e}"),
        )),
        other if untrusted_certificate(other).is_some() => {
            let why = untrusted_certificate(other).unwrap_or_default();
            Attempt::settled(
                Outcome::fail(
                    "api-certificate-untrusted",
                    format!("the Kubernetes API server's certificate is not trusted ({why}): the CA preflight was given did not sign it, or it does not name the server's address"),
                )
                .hint("Trust the cluster's own CA: in a Pod, the ServiceAccount's ca.crt (the kubelet mounts it from the kube-root-ca.crt ConfigMap); elsewhere, the kubeconfig's certificate-authority-data (aws eks update-kubeconfig writes it)."),
            )
        }
        other => Attempt::transient(
            Outcome::fail("api-unreachable", format!("cannot reach the Kubernetes API: {}", error_chain(other)))
                .hint("Check the server address in the kubeconfig, the network path to it (VPC endpoint access, security groups, proxy) and that the cluster is running."),
        ),
    }
}

/// Why TLS refused the API server's certificate, when that is why a request failed: the last
/// of OpenSSL's reasons (`certificate signature failure`, `unable to get local issuer
/// certificate`, `hostname mismatch`).
fn untrusted_certificate(err: &kube::Error) -> Option<String> {
    let chain = error_chain(err);
    if !chain.contains("certificate verify failed") {
        return None;
    }
    let why = chain.rsplit(": ").next().unwrap_or_default().trim();
    Some(
        if why.is_empty() || why.contains("certificate verify failed") {
            "certificate verify failed".to_owned()
        } else {
            why.to_owned()
        },
    )
}

/// The Kubernetes client, or a failed attempt saying there is none.
pub(crate) fn client(ctx: &Context) -> Fetched<&kube::Client> {
    ctx.kube().ok_or_else(|| {
        Box::new(Attempt::settled(
            Outcome::fail("no-kubernetes-client", "no Kubernetes client is configured")
                .hint("Run with a kubeconfig (--kubeconfig, $KUBECONFIG) or inside the cluster."),
        ))
    })
}

/// A read's result: the facts, or the failed attempt to report instead (boxed: outcomes are
/// large next to the facts).
pub(crate) type Fetched<T> = Result<T, Box<Attempt>>;

/// A page size that keeps the server's work bounded where it pages a list at all (see
/// [`Recency`]), like kubectl's `--chunk-size`. preflight's own memory does not depend on it:
/// list bodies are read item by item ([`ListReader`]).
const PAGE: u32 = 500;

/// How recent a list must be, which decides where an API server reads it from. Lists are
/// never consistent reads (no `resourceVersion`): before ConsistentListFromCache (beta and on
/// by default in 1.31, GA in 1.34) those are served by etcd, and a check only needs a recent
/// view, never older than what the run has already seen.
///
/// What each request shape gets from a collection with a watch cache (every built-in type
/// and custom resource, unless the server runs with `--watch-cache=false`), from
/// k8s.io/apiserver's cacher: `shouldDelegateList` up to 1.32, `delegator.ShouldDelegateList`
/// and `Cacher.GetList` since 1.33:
///
/// | request | 1.29, 1.30 | 1.31 to 1.33 | 1.34 |
/// |---|---|---|---|
/// | no `resourceVersion`, `limit` | etcd, paged | cache once caught up with etcd¹, first page; the next pages from etcd | cache¹, every page (ListFromCacheSnapshot, beta) |
/// | `resourceVersion=0`, `limit` | cache, whole: `limit` ignored | the same | the same |
/// | `resourceVersion=N`, `NotOlderThan`, `limit` | etcd, paged: any `limit` with a version but 0 is delegated | cache, first page; the next pages from etcd | cache, every page |
/// | `resourceVersion=N`, `NotOlderThan`, no `limit` | cache, whole | the same | the same |
///
/// ¹ ConsistentListFromCache, which also needs etcd's progress notifications.
///
/// A cache that is not ready yet (the server just started) sends some of these lists to etcd
/// (with `limit`, paged) and answers others `429` or `503`, which are retried. A server
/// without a watch cache reads everything from etcd, paged wherever `limit` is given.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Recency {
    /// `resourceVersion=0`: any recent view, from the watch cache on every version. `limit`
    /// goes with it: the cache ignores it, and etcd (no cache, or one not ready yet) pages.
    Any,
    /// `resourceVersion=N&resourceVersionMatch=NotOlderThan`: from the watch cache on every
    /// version, at N or later. Without `limit`: up to 1.30 a `limit` with a version other than 0
    /// sends the list to etcd, and up to 1.33 its next pages; the whole list costs this
    /// process nothing more ([`ListReader`]), and it is what `resourceVersion=0` returns anyway.
    NotOlderThan(String),
}

impl Recency {
    /// The recency of a list of the collection at `path`: not older than what the run's
    /// watches have seen of it, else any.
    fn of(ctx: &Context, path: &str) -> Recency {
        ctx.floors()
            .get(path)
            .map_or(Recency::Any, Recency::NotOlderThan)
    }
}

/// The query of one list request. A continue token carries the list's resource version
/// itself: the server forbids `resourceVersionMatch`, and any version but 0, next to it.
fn list_query(
    field_selector: Option<&str>,
    recency: &Recency,
    limit: Option<u32>,
    continue_token: Option<&str>,
) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(fs) = field_selector {
        query.append_pair("fieldSelector", fs);
    }
    match (continue_token, recency) {
        (Some(token), _) => {
            query.append_pair("continue", token);
        }
        (None, Recency::Any) => {
            query.append_pair("resourceVersion", "0");
        }
        (None, Recency::NotOlderThan(rv)) => {
            query.append_pair("resourceVersion", rv);
            query.append_pair("resourceVersionMatch", "NotOlderThan");
        }
    }
    if let (Some(limit), Recency::Any) = (limit, recency) {
        query.append_pair("limit", &limit.to_string());
    }
    query.finish()
}

/// Whether a list's answer says the server has not reached the resource version asked for:
/// its watch cache waited three seconds for it and gave up (`504`, cause
/// `ResourceVersionTooLarge`). On a highly available control plane another API server may have
/// served the watch that saw that version.
fn is_too_large_resource_version(status: &kube::core::Status) -> bool {
    status.code == 504
        && (status.details.as_ref().is_some_and(|d| {
            d.causes
                .iter()
                .any(|c| c.reason == "ResourceVersionTooLarge")
        }) || status.message.contains("Too large resource version"))
}

/// Lists a collection, folding its items into a state that starts as `init` as they arrive,
/// and returns the state and the resource version of the list, from which a watch misses
/// nothing. The list is as recent as [`Recency::of`] the collection says, pages are followed.
///
/// Starting again, from `init`:
/// - a continue token expires when the server compacts its history past the list's resource
///   version (`410 Gone`, "the provided continue parameter is too old"), as happens on a
///   large, busy cluster: the list is read again whole, without a limit, as client-go's pager
///   does, since new pages could expire again for the same reason;
/// - a server that has not reached the floor ([`is_too_large_resource_version`]), or that
///   no longer has it (`410`), is asked for any recent view instead: the watch it came from
///   then replays whatever the view misses, and the check is attempted again.
pub(crate) async fn list_fold<T, S, F>(
    ctx: &Context,
    resource: &ResourceType,
    namespace: Option<&str>,
    field_selector: Option<&str>,
    init: S,
    mut fold: F,
) -> Fetched<(S, String)>
where
    T: DeserializeOwned,
    S: Clone,
    F: FnMut(&mut S, Vec<T>),
{
    let client = client(ctx)?;
    let access = Access {
        verb: "list",
        resource,
        namespace,
        // A read by name is a list with a name's field selector, which RBAC authorizes
        // against `resourceNames` as it would a get.
        name: field_selector
            .and_then(|fs| fs.strip_prefix("metadata.name="))
            .filter(|_| crate::reads::read_by_name(resource.group, resource.plural)),
    };
    let path = resource.collection_path(namespace);
    let mut recency = Recency::of(ctx, &path);
    let mut limit = Some(PAGE);
    let mut token: Option<String> = None;
    let mut state = init.clone();
    let mut version = None;
    loop {
        let query = list_query(field_selector, &recency, limit, token.as_deref());
        let http = http_get(&format!("{path}?{query}"))?;
        let meta = match read_list(client, http, &mut state, &mut fold).await {
            Ok(meta) => meta,
            Err(kube::Error::Api(status)) if status.code == 410 && token.is_some() => {
                tracing::info!(
                    resource = resource.plural,
                    "the list's continue token expired (410 Gone): listing it again, whole"
                );
                (token, limit, version) = (None, None, None);
                state = init.clone();
                continue;
            }
            Err(kube::Error::Api(status))
                if matches!(recency, Recency::NotOlderThan(_))
                    && (status.code == 410 || is_too_large_resource_version(&status)) =>
            {
                tracing::info!(
                    resource = resource.plural,
                    code = status.code,
                    "the server cannot list at the version already seen ({}): listing any recent version",
                    status.message
                );
                (recency, token, version) = (Recency::Any, None, None);
                state = init.clone();
                continue;
            }
            Err(e) => return Err(Box::new(failure(&e, access))),
        };
        version.get_or_insert(meta.resource_version.unwrap_or_default());
        match meta.continue_.filter(|c| !c.is_empty()) {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    Ok((state, version.unwrap_or_default()))
}

/// Sends one list request and folds its items as the body arrives ([`ListReader`]); returns
/// the list's metadata.
async fn read_list<T, S, F>(
    client: &kube::Client,
    request: http::Request<Vec<u8>>,
    state: &mut S,
    fold: &mut F,
) -> Result<ListMeta, kube::Error>
where
    T: DeserializeOwned,
    F: FnMut(&mut S, Vec<T>),
{
    let body = client.request_stream(request).await?;
    futures::pin_mut!(body);
    let mut list = ListReader::<T>::default();
    loop {
        let piece = body
            .fill_buf()
            .await
            .map_err(|e| kube::Error::Service(Box::new(e)))?;
        if piece.is_empty() {
            break;
        }
        let read = piece.len();
        let items = list.feed(piece).map_err(kube::Error::SerdeError)?;
        body.consume_unpin(read);
        if !items.is_empty() {
            fold(state, items);
        }
    }
    list.finish().map_err(kube::Error::SerdeError)
}

/// Lists a whole collection into memory; for small collections.
pub(crate) async fn list_all<T: DeserializeOwned + Clone>(
    ctx: &Context,
    resource: &ResourceType,
    namespace: Option<&str>,
) -> Fetched<(Vec<T>, KubeWatch)> {
    let (all, version) = list_fold(ctx, resource, namespace, None, Vec::new(), |all, page| {
        all.extend(page);
    })
    .await?;
    Ok((
        all,
        KubeWatch {
            path: resource.collection_path(namespace),
            field_selector: None,
            resource_version: version,
        },
    ))
}

/// Every ArgoCD Application in `namespace` (at the `argoproj.io` versions preflight reads) and
/// a watch on them; when ArgoCD's CRD is not served, a failure under `missing_code`.
pub(crate) async fn applications<T: DeserializeOwned + Clone>(
    ctx: &Context,
    namespace: &str,
    missing_code: &str,
    hint: &str,
) -> Fetched<(Vec<T>, KubeWatch)> {
    let resource = served(ctx, &APPLICATIONS, &["v1alpha1"], missing_code, hint).await?;
    list_all(ctx, &resource, Some(namespace)).await
}

/// Reads the Applications of `namespace` (see [`applications`]) and judges them together; a
/// failing judgement is re-checked when any of them changes.
pub(crate) async fn judge_applications<T, F>(
    ctx: &Context,
    namespace: &str,
    missing_code: &str,
    hint: &str,
    judge: F,
) -> Attempt
where
    T: DeserializeOwned + Clone,
    F: FnOnce(&[T]) -> Outcome,
{
    match applications::<T>(ctx, namespace, missing_code, hint).await {
        Ok((apps, watch)) => Attempt::until_changed(judge(&apps), vec![watch]),
        Err(failed) => *failed,
    }
}

/// Reads one object by name. Uses a list with a `metadata.name` field selector rather than a
/// get, so that a missing object still yields a resource version to watch for its creation.
pub(crate) async fn get_watchable<T: DeserializeOwned + Clone>(
    ctx: &Context,
    resource: &ResourceType,
    namespace: Option<&str>,
    name: &str,
) -> Fetched<(Option<T>, KubeWatch)> {
    let selector = format!("metadata.name={name}");
    let (found, version) = list_fold(
        ctx,
        resource,
        namespace,
        Some(&selector),
        None,
        |found, page: Vec<T>| {
            if found.is_none() {
                *found = page.into_iter().next();
            }
        },
    )
    .await?;
    Ok((
        found,
        KubeWatch {
            path: resource.collection_path(namespace),
            field_selector: Some(selector),
            resource_version: version,
        },
    ))
}

/// Reads objects by (namespace, name) concurrently and judges them together. A failed read is
/// the attempt's result; otherwise a failing judgement is re-checked when any of them changes.
pub(crate) async fn judge_objects<T, F>(
    ctx: &Context,
    resource: &ResourceType,
    refs: &[(Option<&str>, &str)],
    judge: F,
) -> Attempt
where
    T: DeserializeOwned + Clone,
    F: FnOnce(Vec<Option<T>>) -> Outcome,
{
    let reads = join_all(
        refs.iter()
            .map(|(namespace, name)| get_watchable::<T>(ctx, resource, *namespace, name)),
    )
    .await;
    let mut found = Vec::with_capacity(reads.len());
    let mut watches = Vec::with_capacity(reads.len());
    for read in reads {
        match read {
            Ok((doc, watch)) => {
                found.push(doc);
                watches.push(watch);
            }
            Err(failed) => return *failed,
        }
    }
    Attempt::until_changed(judge(found), watches)
}

/// [`judge_objects`] for one object.
pub(crate) async fn judge_object<T, F>(
    ctx: &Context,
    resource: &ResourceType,
    namespace: Option<&str>,
    name: &str,
    judge: F,
) -> Attempt
where
    T: DeserializeOwned + Clone,
    F: FnOnce(Option<&T>) -> Outcome,
{
    judge_objects(
        ctx,
        resource,
        &[(namespace, name)],
        |mut found: Vec<Option<T>>| judge(found.pop().flatten().as_ref()),
    )
    .await
}

/// The version of a custom resource that the server serves, among those preflight
/// understands (the group's preferred version first), or `None` when it serves none of them:
/// its CRD is missing. The resource itself is looked for in each version's resource list,
/// because the CRDs of one group need not be upgraded together.
pub(crate) async fn served_version(
    ctx: &Context,
    resource: &ResourceType,
    understood: &[&str],
) -> Fetched<Option<String>> {
    let client = client(ctx)?;
    let access = Access {
        verb: "get",
        resource,
        namespace: None,
        name: None,
    };
    let http = http_get(&format!("/apis/{}", resource.group))?;
    let group: k8s_openapi::apimachinery::pkg::apis::meta::v1::APIGroup =
        match client.request(http).await {
            Ok(g) => g,
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(None),
            Err(e) => return Err(Box::new(failure(&e, access))),
        };
    let preferred = group.preferred_version.as_ref().map(|p| p.version.as_str());
    let mut candidates: Vec<&str> = preferred
        .into_iter()
        .filter(|p| understood.contains(p))
        .collect();
    candidates.extend(understood.iter().copied().filter(|u| Some(*u) != preferred));
    for version in candidates {
        if !group.versions.iter().any(|v| v.version == version) {
            continue;
        }
        match client
            .list_api_group_resources(&format!("{}/{version}", resource.group))
            .await
        {
            Ok(list) if list.resources.iter().any(|r| r.name == resource.plural) => {
                return Ok(Some(version.to_owned()));
            }
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(Box::new(failure(&e, access))),
        }
    }
    Ok(None)
}

/// The resource at the version the server serves, among those preflight understands. When it
/// serves none, the CRD is not installed (yet: an earlier wave may still install it): a
/// failure under `code`, worth waiting for, with `hint` naming the chart that installs it.
pub(crate) async fn served(
    ctx: &Context,
    resource: &ResourceType,
    understood: &[&str],
    code: &str,
    hint: &str,
) -> Fetched<ResourceType> {
    match served_version(ctx, resource, understood).await? {
        Some(version) => Ok(resource.at_version(version)),
        None => {
            let versions: Vec<String> = understood
                .iter()
                .map(|v| format!("{}/{v}", resource.group))
                .collect();
            Err(Box::new(Attempt::transient(
                Outcome::fail(
                    code,
                    format!(
                        "the API server serves {} at none of the versions preflight reads ({}): its CRD is not installed",
                        resource.kind,
                        versions.join(", ")
                    ),
                )
                .hint(hint),
            )))
        }
    }
}

/// A bodiless GET request for a raw path.
pub(crate) fn http_get(path: &str) -> Fetched<http::Request<Vec<u8>>> {
    http::Request::get(path).body(Vec::new()).map_err(|e| {
        Box::new(Attempt::settled(Outcome::fail(
            "bad-request",
            format!("cannot build a request for {path}: {e}"),
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Retry;

    #[test]
    fn null_collections_read_as_empty() {
        #[derive(serde::Deserialize)]
        struct Status {
            #[serde(default, deserialize_with = "or_default")]
            conditions: Vec<String>,
        }
        for text in [r#"{"conditions": null}"#, "{}"] {
            let s: Status = serde_json::from_str(text).expect("reads");
            assert!(s.conditions.is_empty(), "{text}");
        }
    }

    #[test]
    fn builds_collection_paths() {
        assert_eq!(NODES.collection_path(None), "/api/v1/nodes");
        assert_eq!(
            DEPLOYMENTS.collection_path(Some("kube-system")),
            "/apis/apps/v1/namespaces/kube-system/deployments"
        );
        assert_eq!(
            CLUSTER_SECRET_STORES
                .at_version("v1beta1".into())
                .collection_path(None),
            "/apis/external-secrets.io/v1beta1/clustersecretstores"
        );
    }

    #[test]
    fn list_queries_ask_the_watch_cache_and_continue_by_token_alone() {
        let at = Recency::NotOlderThan("4711".into());
        for (selector, recency, limit, token, want) in [
            (
                None,
                &Recency::Any,
                Some(500),
                None,
                "resourceVersion=0&limit=500",
            ),
            (None, &Recency::Any, None, None, "resourceVersion=0"),
            (
                None,
                &Recency::Any,
                Some(500),
                Some("eyJ2"),
                "continue=eyJ2&limit=500",
            ),
            (
                Some("metadata.name=kong"),
                &at,
                Some(500),
                None,
                "fieldSelector=metadata.name%3Dkong&resourceVersion=4711&resourceVersionMatch=NotOlderThan",
            ),
            (None, &at, None, Some("eyJ2"), "continue=eyJ2"),
        ] {
            assert_eq!(list_query(selector, recency, limit, token), want);
        }
    }

    #[test]
    fn tells_a_version_the_server_has_not_reached_from_other_timeouts() {
        let status = |code: u16, message: &str, cause: Option<&str>| {
            let mut doc = serde_json::json!({"kind": "Status", "code": code, "message": message, "reason": "Timeout"});
            if let Some(cause) = cause {
                doc["details"] = serde_json::json!({"causes": [{"reason": cause, "message": "Too large resource version"}], "retryAfterSeconds": 1});
            }
            serde_json::from_value::<kube::core::Status>(doc).expect("a Status")
        };
        let too_large = "Timeout: Too large resource version: 1200, current: 1100";
        assert!(is_too_large_resource_version(&status(
            504,
            too_large,
            Some("ResourceVersionTooLarge")
        )));
        assert!(is_too_large_resource_version(&status(504, too_large, None)));
        assert!(!is_too_large_resource_version(&status(
            504,
            "Timeout: request did not complete within the allotted timeout",
            None
        )));
        assert!(!is_too_large_resource_version(&status(
            410, too_large, None
        )));
    }

    fn api_error(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure(message, reason)
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn maps_a_403_to_the_missing_permission_and_the_rule_that_grants_it() {
        let access = Access {
            verb: "list",
            resource: &NODES,
            namespace: None,
            name: None,
        };
        let err = api_error(
            403,
            "Forbidden",
            "nodes is forbidden: User \"x\" cannot list resource \"nodes\" in API group \"\" at the cluster scope",
        );
        let a = failure(&err, access);
        assert_eq!(a.retry, Retry::Never);
        assert_eq!(a.outcome.code, "forbidden");
        assert!(a.outcome.message.starts_with(
            "missing permission: cannot list nodes (API group \"\") at the cluster scope"
        ));
        assert_eq!(
            a.outcome.hint.as_deref(),
            Some(
                "grant it to preflight's ServiceAccount in a ClusterRole:\n  - apiGroups:\n    - \"\"\n    resources:\n    - nodes\n    verbs:\n    - get\n    - list\n    - watch"
            )
        );
    }

    #[test]
    fn a_403_on_a_secret_names_the_rule_by_its_resource_name() {
        let access = Access {
            verb: "list",
            resource: &SECRETS,
            namespace: Some("backstage"),
            name: Some("backstage-secrets"),
        };
        let err = api_error(
            403,
            "Forbidden",
            "secrets \"backstage-secrets\" is forbidden",
        );
        let a = failure(&err, access);
        let hint = a.outcome.hint.expect("hint");
        assert!(
            hint.starts_with(
                "grant it to preflight's ServiceAccount in a Role in the namespace \"backstage\":"
            ),
            "{hint}"
        );
        assert!(
            hint.contains("resourceNames:\n    - backstage-secrets"),
            "{hint}"
        );
        assert_eq!(a.outcome.evidence["namespace"], "backstage");
        assert_eq!(a.outcome.evidence["resourceName"], "backstage-secrets");
    }

    #[test]
    fn classifies_errors_as_permanent_or_transient() {
        let access = Access {
            verb: "get",
            resource: &DEPLOYMENTS,
            namespace: Some("kube-system"),
            name: None,
        };
        for (code, reason, retry, outcome_code) in [
            (401, "Unauthorized", Retry::Never, "unauthorized"),
            (503, "ServiceUnavailable", Retry::Backoff, "api-error"),
            (429, "TooManyRequests", Retry::Backoff, "api-error"),
            (
                404,
                "Failed to parse error data",
                Retry::Backoff,
                "api-not-served",
            ),
            (400, "BadRequest", Retry::Never, "api-error"),
        ] {
            let a = failure(&api_error(code, reason, "m"), access);
            assert_eq!(
                (a.retry, a.outcome.code.as_str()),
                (retry, outcome_code),
                "{code}"
            );
        }
    }

    #[test]
    fn an_untrusted_certificate_is_permanent_and_says_why() {
        let access = Access {
            verb: "get",
            resource: &DEPLOYMENTS,
            namespace: Some("kube-system"),
            name: None,
        };
        for (text, why) in [
            (
                "client error (Connect): error:0A000086:SSL routines:tls_post_process_server_certificate:certificate verify failed:../ssl/statem/statem_clnt.c:1889:: unable to get local issuer certificate",
                "unable to get local issuer certificate",
            ),
            (
                "client error (Connect): error:0A000086:SSL routines::certificate verify failed",
                "certificate verify failed",
            ),
        ] {
            let a = failure(&kube::Error::Service(text.into()), access);
            assert_eq!(a.retry, Retry::Never, "{text}");
            assert_eq!(a.outcome.code, "api-certificate-untrusted");
            assert!(
                a.outcome.message.starts_with(&format!(
                    "the Kubernetes API server's certificate is not trusted ({why})"
                )),
                "{}",
                a.outcome.message
            );
        }
        let refused = failure(
            &kube::Error::Service("client error (Connect): Connection refused".into()),
            access,
        );
        assert_eq!(
            (refused.retry, refused.outcome.code.as_str()),
            (Retry::Backoff, "api-unreachable")
        );
    }
}
