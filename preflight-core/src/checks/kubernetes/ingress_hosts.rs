//! `ingress-hosts`: the platform's Ingresses ask for what this cluster can serve. Every host
//! (`spec.rules[].host`, `spec.tls[].hosts[]`) is the build's `hostSuffix` or under it (and, on
//! a persistent cluster, outside the build subdomains `b-{buildId}.{env}.{baseDomain}`, which
//! belong to ephemeral clusters, as `dns-scope` and `external-dns-confined` hold it), the
//! IngressClass is Kong's, and an Ingress that asks cert-manager for a certificate names a
//! ClusterIssuer that exists and is Ready, and its Certificates are Ready (waited on).
//!
//! cert-manager's ingress-shim creates one Certificate per `spec.tls[]` entry of an Ingress
//! annotated `cert-manager.io/cluster-issuer` (or `cert-manager.io/issuer`), named after the
//! entry's `secretName`, in the Ingress's namespace. The platform issues through ClusterIssuers:
//! a namespaced Issuer is a warning. The class named in the deprecated annotation
//! `kubernetes.io/ingress.class` is accepted with a warning.
//!
//! Each gate checks the Ingresses that exist when it runs. On a first sync those are the lower
//! tiers' apps' Ingresses: by default it reads the namespaces of the platform's apps of the
//! tiers below the gate (the others do not exist yet, and neither could the hook's Roles in
//! them). No Ingress at all passes.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;
use serde::{Deserialize, Serialize};

use super::IngressClassSettings;
use super::cluster_issuers::{self, IssuerDoc, IssuerState, Readiness};
use super::conditions::{self, Condition};
use super::fetch::{self, CERTIFICATES, CLUSTER_ISSUERS, Fetched, INGRESSES};
use crate::check::{Attempt, Check, Context, KubeWatch};
use crate::check::{Built, Definition, Family, Site};
use crate::contract::Mode;
use crate::dns::{build_subdomain, is_within};
use crate::outcome::{Outcome, Status, name_list};
use crate::platform::{APPS, NeededBy, Provider, Scope};
use crate::reads::Reads;
use crate::tier::Tier;

/// `checks.ingress-hosts`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct IngressHostsSettings {
    /// The namespaces whose Ingresses are checked at every gate; by default, at each gate,
    /// the namespaces of the platform's apps of the tiers below it.
    pub namespaces: Option<Vec<String>>,
    /// The IngressClass every Ingress must name; by default `checks.ingress-class.name`'s
    /// default, `kong`.
    pub ingress_class: Option<String>,
}

/// The annotation asking cert-manager for a certificate from a ClusterIssuer.
const CLUSTER_ISSUER_ANNOTATION: &str = "cert-manager.io/cluster-issuer";
/// The annotation asking cert-manager for a certificate from an Issuer of the namespace.
const ISSUER_ANNOTATION: &str = "cert-manager.io/issuer";
/// The IngressClass annotation that `spec.ingressClassName` replaced (Kubernetes 1.18).
const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// The namespaces of the platform's apps below `tier`, in the platform's order.
fn namespaces_below(tier: Tier) -> Vec<String> {
    let mut namespaces: Vec<String> = Vec::new();
    for app in APPS.iter().filter(|a| a.tier < tier) {
        if !namespaces.iter().any(|n| n == app.namespace) {
            namespaces.push(app.namespace.to_owned());
        }
    }
    namespaces
}

/// An Ingress: its name, class, hosts, TLS entries and cert-manager annotations.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct IngressDoc {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    spec: IngressSpec,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Metadata {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    generation: Option<i64>,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IngressSpec {
    #[serde(default)]
    ingress_class_name: Option<String>,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    rules: Vec<Rule>,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    tls: Vec<Tls>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Rule {
    #[serde(default)]
    host: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tls {
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    hosts: Vec<String>,
    #[serde(default)]
    secret_name: Option<String>,
}

/// A Certificate's name, generation and conditions.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct CertificateDoc {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    status: CertificateStatus,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct CertificateStatus {
    #[serde(default, deserialize_with = "super::fetch::or_default")]
    conditions: Vec<Condition>,
}

impl IngressDoc {
    fn id(&self) -> String {
        format!("{}/{}", self.metadata.namespace, self.metadata.name)
    }

    fn annotation(&self, key: &str) -> Option<&str> {
        self.metadata
            .annotations
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Whether it asks cert-manager for a certificate.
    fn asks_cert_manager(&self) -> bool {
        self.annotation(CLUSTER_ISSUER_ANNOTATION).is_some()
            || self.annotation(ISSUER_ANNOTATION).is_some()
    }

    /// Its hosts, rules' first, each once.
    fn hosts(&self) -> Vec<&str> {
        let mut hosts: Vec<&str> = Vec::new();
        let named = self
            .spec
            .rules
            .iter()
            .filter_map(|r| r.host.as_deref())
            .chain(
                self.spec
                    .tls
                    .iter()
                    .flat_map(|t| t.hosts.iter().map(String::as_str)),
            );
        for host in named.filter(|h| !h.is_empty()) {
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
        hosts
    }
}

/// What the check expects, from the contract and its settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Expect {
    pub host_suffix: String,
    pub ingress_class: String,
    pub namespaces: Vec<String>,
    /// On a persistent cluster, the environment's zone, whose build subdomains belong to
    /// ephemeral clusters; `None` on an ephemeral one, whose suffix is its build subdomain.
    pub build_zone: Option<String>,
}

/// What was read.
#[derive(Clone, Debug, Default)]
pub(crate) struct Found {
    /// The Ingresses of every namespace read.
    pub ingresses: Vec<IngressDoc>,
    /// ClusterIssuers by name; `None` when cert-manager's API is not served.
    pub issuers: Option<BTreeMap<String, IssuerDoc>>,
    /// Certificates by (namespace, name), in the namespaces of Ingresses that ask for one.
    pub certificates: BTreeMap<(String, String), CertificateDoc>,
}

/// What is wrong, most serious first: the code of an outcome is its worst problem's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    HostOutsideSuffix,
    HostInBuild,
    ClassWrong,
    IssuerMissing,
    IssuerNotReady,
    TlsWithoutSecret,
    CertificateNotReady,
    NamespacedIssuer,
    ClassAnnotation,
}

impl Kind {
    fn code(self) -> &'static str {
        match self {
            Kind::HostOutsideSuffix => "ingress-host-outside-suffix",
            Kind::HostInBuild => "ingress-host-in-build",
            Kind::ClassWrong => "ingress-class-wrong",
            Kind::IssuerMissing => "ingress-issuer-missing",
            Kind::IssuerNotReady => "ingress-issuer-not-ready",
            Kind::TlsWithoutSecret => "ingress-tls-without-secret",
            Kind::CertificateNotReady => "certificate-not-ready",
            Kind::NamespacedIssuer => "ingress-namespaced-issuer",
            Kind::ClassAnnotation => "ingress-class-annotation",
        }
    }

    fn status(self) -> Status {
        match self {
            Kind::NamespacedIssuer | Kind::ClassAnnotation => Status::Warn,
            _ => Status::Fail,
        }
    }
}

/// Judges every Ingress found against what is expected.
pub(crate) fn judge(found: &Found, expect: &Expect) -> Outcome {
    let suffix = &expect.host_suffix;
    let class = &expect.ingress_class;
    let mut problems: Vec<(Kind, String)> = Vec::new();
    let mut hints: BTreeMap<Kind, String> = BTreeMap::new();
    let mut certificates_ready = 0;
    let mut ingresses: Vec<&IngressDoc> = found.ingresses.iter().collect();
    ingresses.sort_by_key(|i| i.id());
    let issuer_names = || {
        found.issuers.as_ref().map_or_else(
            || "none".to_owned(),
            |m| {
                if m.is_empty() {
                    "none".to_owned()
                } else {
                    m.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            },
        )
    };
    for ingress in &ingresses {
        let id = ingress.id();
        for host in ingress.hosts() {
            if !is_within(host, suffix) {
                problems.push((
                    Kind::HostOutsideSuffix,
                    format!("Ingress {id}: host {host} is outside {suffix}"),
                ));
                hints.entry(Kind::HostOutsideSuffix).or_insert_with(|| format!(
                    "Build each host from the contract's suffix ({{app}}.{suffix}, the Helm value global.hostSuffix) instead of hard-coding it: this cluster owns only {suffix}, ExternalDNS publishes nothing else and cert-manager cannot prove another name."
                ));
            } else if let Some((zone, build)) = expect
                .build_zone
                .as_deref()
                .and_then(|zone| Some((zone, build_subdomain(host, zone)?)))
            {
                problems.push((
                    Kind::HostInBuild,
                    format!("Ingress {id}: host {host} lies in the build subdomain {build}, which belongs to an ephemeral cluster"),
                ));
                hints.entry(Kind::HostInBuild).or_insert_with(|| format!(
                    "Build each host as {{app}}.{suffix} (the Helm value global.hostSuffix) outside the build subdomains b-<buildId>.{zone}: an ephemeral cluster owns its build subdomain, and a persistent cluster's record there would shadow or be deleted with it."
                ));
            }
        }

        let class_hint = || {
            format!(
                "Set spec.ingressClassName: {class} on the Ingress (the chart's ingress.className value): Kong serves only the Ingresses of its IngressClass {class}."
            )
        };
        match (
            &ingress.spec.ingress_class_name,
            ingress.annotation(CLASS_ANNOTATION),
        ) {
            (Some(name), _) if name == class => {}
            (Some(name), _) => {
                problems.push((
                    Kind::ClassWrong,
                    format!("Ingress {id} has ingressClassName {name}, not {class}"),
                ));
                hints.entry(Kind::ClassWrong).or_insert_with(class_hint);
            }
            (None, Some(name)) if name == class => {
                problems.push((
                    Kind::ClassAnnotation,
                    format!("Ingress {id} names its class with the deprecated annotation {CLASS_ANNOTATION}"),
                ));
                hints.entry(Kind::ClassAnnotation).or_insert_with(|| format!(
                    "Replace the annotation {CLASS_ANNOTATION} with spec.ingressClassName: {class}."
                ));
            }
            (None, Some(name)) => {
                problems.push((
                    Kind::ClassWrong,
                    format!(
                        "Ingress {id} has the annotation {CLASS_ANNOTATION}: {name}, not {class}"
                    ),
                ));
                hints.entry(Kind::ClassWrong).or_insert_with(class_hint);
            }
            (None, None) => {
                problems.push((
                    Kind::ClassWrong,
                    format!("Ingress {id} names no IngressClass (spec.ingressClassName)"),
                ));
                hints.entry(Kind::ClassWrong).or_insert_with(class_hint);
            }
        }

        if let Some(issuer) = ingress.annotation(CLUSTER_ISSUER_ANNOTATION) {
            let state = found
                .issuers
                .as_ref()
                .map(|map| cluster_issuers::issuer_state(issuer, map.get(issuer)));
            match state {
                None => {
                    problems.push((
                        Kind::IssuerMissing,
                        format!("Ingress {id} asks ClusterIssuer {issuer}, but cert-manager's ClusterIssuer API is not served"),
                    ));
                    hints.entry(Kind::IssuerMissing).or_insert_with(|| {
                        "Install cert-manager with its CRDs (tier 1) and the platform's ClusterIssuers.".to_owned()
                    });
                }
                Some(IssuerState::Missing) => {
                    problems.push((
                        Kind::IssuerMissing,
                        format!(
                            "Ingress {id} asks ClusterIssuer {issuer}, which does not exist (ClusterIssuers: {})",
                            issuer_names()
                        ),
                    ));
                    hints.entry(Kind::IssuerMissing).or_insert_with(|| format!(
                        "Set the annotation {CLUSTER_ISSUER_ANNOTATION} to one of the ClusterIssuers ({}), or create the one it names.",
                        issuer_names()
                    ));
                }
                Some(IssuerState::Problem { text, hint }) => {
                    problems.push((
                        Kind::IssuerNotReady,
                        format!("Ingress {id} asks ClusterIssuer {text}"),
                    ));
                    hints.entry(Kind::IssuerNotReady).or_insert_with(|| {
                        hint.unwrap_or("cert-manager has not reconciled the issuer yet: wait for it (--wait), or check that the cert-manager controller is running.").to_owned()
                    });
                }
                Some(IssuerState::Ready(_)) => {}
            }
        } else if let Some(issuer) = ingress.annotation(ISSUER_ANNOTATION) {
            problems.push((
                Kind::NamespacedIssuer,
                format!("Ingress {id} asks the namespaced Issuer {issuer} ({ISSUER_ANNOTATION}); the platform issues through ClusterIssuers"),
            ));
            hints.entry(Kind::NamespacedIssuer).or_insert_with(|| format!(
                "Use the annotation {CLUSTER_ISSUER_ANNOTATION} with one of the platform's ClusterIssuers ({}).",
                issuer_names()
            ));
        }

        if !ingress.asks_cert_manager() {
            continue;
        }
        for (i, tls) in ingress.spec.tls.iter().enumerate() {
            let Some(secret) = tls.secret_name.as_deref().filter(|s| !s.is_empty()) else {
                problems.push((
                    Kind::TlsWithoutSecret,
                    format!("Ingress {id}: spec.tls[{i}] has no secretName, so cert-manager issues no certificate for it"),
                ));
                hints.entry(Kind::TlsWithoutSecret).or_insert_with(|| {
                    "Give every spec.tls[] entry a secretName: cert-manager names the Certificate and its Secret after it.".to_owned()
                });
                continue;
            };
            let namespace = &ingress.metadata.namespace;
            let key = (namespace.clone(), secret.to_owned());
            let problem = match found.certificates.get(&key) {
                None => Some(format!(
                    "Certificate {namespace}/{secret} of Ingress {id} does not exist yet"
                )),
                Some(cert) => match cluster_issuers::readiness(
                    &cert.status.conditions,
                    cert.metadata.generation,
                ) {
                    Readiness::Ready => None,
                    Readiness::Unreported => Some(format!(
                        "Certificate {namespace}/{secret} of Ingress {id} has no Ready condition yet"
                    )),
                    Readiness::Stale => Some(format!(
                        "Certificate {namespace}/{secret} of Ingress {id}: its Ready condition predates the latest change to its spec"
                    )),
                    Readiness::NotReady(c) => Some(format!(
                        "Certificate {namespace}/{secret} of Ingress {id} is not Ready{}",
                        conditions::explain(Some(c))
                    )),
                },
            };
            match problem {
                None => certificates_ready += 1,
                Some(text) => {
                    problems.push((Kind::CertificateNotReady, text));
                    hints.entry(Kind::CertificateNotReady).or_insert_with(|| {
                        "cert-manager creates the Certificate from the Ingress and marks it Ready once issued: kubectl describe certificate <name> (and its CertificateRequest and Order) says what it waits for; the hosts must be under the suffix and resolvable for the ACME challenge.".to_owned()
                    });
                }
            }
        }
    }

    let namespaces = expect.namespaces.join(", ");
    if problems.is_empty() {
        if ingresses.is_empty() {
            return Outcome::pass(
                "ingress-hosts-none",
                format!("no Ingress found in {namespaces}"),
            );
        }
        return Outcome::pass(
            "ingress-hosts-valid",
            format!(
                "{} Ingress(es) in {namespaces}: hosts under {suffix}, class {class}, {certificates_ready} certificate(s) Ready",
                ingresses.len()
            ),
        )
        .evidence("ingresses", ingresses.len())
        .evidence("certificatesReady", certificates_ready);
    }
    problems.sort_by_key(|(kind, _)| kind.status() != Status::Fail);
    let worst = problems
        .iter()
        .map(|(kind, _)| kind.status())
        .max()
        .unwrap_or(Status::Fail);
    let code = problems
        .iter()
        .map(|(kind, _)| *kind)
        .filter(|k| k.status() == worst)
        .min()
        .map_or("ingress-hosts-invalid", Kind::code);
    let texts: Vec<&str> = problems.iter().map(|(_, t)| t.as_str()).collect();
    let kinds: BTreeSet<Kind> = problems.iter().map(|(k, _)| *k).collect();
    let hint: Vec<&str> = kinds
        .iter()
        .filter_map(|k| hints.get(k).map(String::as_str))
        .collect();
    Outcome::new(worst, code, name_list(&texts, 10))
        .hint(hint.join(" "))
        .evidence("ingresses", ingresses.len())
        .evidence("hostSuffix", suffix)
}

/// The `ingress-hosts` check.
#[derive(Debug)]
pub struct IngressHosts {
    expect: Expect,
}

impl IngressHosts {
    /// A check of the Ingresses of `namespaces`.
    #[must_use]
    pub fn new(host_suffix: String, ingress_class: String, namespaces: Vec<String>) -> Self {
        IngressHosts {
            expect: Expect {
                host_suffix,
                ingress_class,
                namespaces,
                build_zone: None,
            },
        }
    }

    /// The same check on a persistent cluster, whose hosts must also stay out of the build
    /// subdomains of `env_zone` (`{env}.{baseDomain}`).
    #[must_use]
    pub fn persistent(mut self, env_zone: String) -> Self {
        self.expect.build_zone = Some(env_zone);
        self
    }

    /// Lists one resource in several namespaces at once.
    async fn list_in<T: serde::de::DeserializeOwned + Clone>(
        ctx: &Context,
        resource: &fetch::ResourceType,
        namespaces: &[&str],
    ) -> Fetched<(Vec<T>, Vec<KubeWatch>)> {
        let reads = join_all(
            namespaces
                .iter()
                .map(|ns| fetch::list_all::<T>(ctx, resource, Some(ns))),
        )
        .await;
        let mut all = Vec::new();
        let mut watches = Vec::new();
        for read in reads {
            let (items, watch) = read?;
            all.extend(items);
            watches.push(watch);
        }
        Ok((all, watches))
    }

    async fn read(&self, ctx: &Context) -> Fetched<(Found, Vec<KubeWatch>)> {
        let namespaces: Vec<&str> = self.expect.namespaces.iter().map(String::as_str).collect();
        let (ingresses, mut watches) =
            Self::list_in::<IngressDoc>(ctx, &INGRESSES, &namespaces).await?;
        let mut found = Found {
            ingresses,
            ..Found::default()
        };
        // The issuers and Certificates are read whether or not an Ingress asks for one yet:
        // every read the hook's RBAC grants is then exercised on every run, and a missing
        // permission shows on the first gate rather than when the first TLS Ingress appears.
        // Without cert-manager's ClusterIssuer API the issuers stay unknown (`None`): the
        // judge says so of each Ingress that names one.
        if let Some(version) =
            fetch::served_version(ctx, &CLUSTER_ISSUERS, &cluster_issuers::VERSIONS).await?
        {
            let (issuers, watch) =
                fetch::list_all::<IssuerDoc>(ctx, &CLUSTER_ISSUERS.at_version(version), None)
                    .await?;
            found.issuers = Some(
                issuers
                    .into_iter()
                    .map(|i| (i.name().to_owned(), i))
                    .collect(),
            );
            watches.push(watch);
        }
        // Without cert-manager's Certificate API no Certificate exists: the judge says so of
        // each, and the issuers' absence says why.
        if let Some(version) =
            fetch::served_version(ctx, &CERTIFICATES, &cluster_issuers::VERSIONS).await?
        {
            let (certificates, cert_watches) = Self::list_in::<CertificateDoc>(
                ctx,
                &CERTIFICATES.at_version(version),
                &namespaces,
            )
            .await?;
            found.certificates = certificates
                .into_iter()
                .map(|c| ((c.metadata.namespace.clone(), c.metadata.name.clone()), c))
                .collect();
            watches.extend(cert_watches);
        }
        Ok((found, watches))
    }
}

impl Definition for IngressHosts {
    const ID: &'static str = "ingress-hosts";
    const FAMILY: Family = Family::Kubernetes;
    type Settings = IngressHostsSettings;

    /// From tier 1.5, whose gate first finds Ingresses: those of tier 1's apps.
    fn needed_by(_: &IngressHostsSettings) -> NeededBy {
        NeededBy::tier(Tier::OneAndHalf)
    }

    /// The Ingresses a gate reads are the lower tiers' apps': at tier 2's gate tier 1.5's
    /// too, whose apps then provide some of what it verifies.
    fn provided_by(_: &IngressHostsSettings, site: &Site<'_>) -> Provider {
        match site.scope {
            Scope::Gate(Tier::Two) => Provider::Tier(
                Tier::OneAndHalf,
                "the Ingresses of the apps of tiers 1 and 1.5; Kong and cert-manager",
            ),
            Scope::Gate(Tier::Three) => Provider::Tier(
                Tier::Two,
                "the Ingresses of the apps of tiers 1 to 2; Kong and cert-manager",
            ),
            _ => Provider::Tier(Tier::One, "the apps' Ingresses, Kong and cert-manager"),
        }
    }

    fn build(settings: &IngressHostsSettings, site: &Site<'_>) -> Result<Built, String> {
        let Scope::Gate(tier) = site.scope else {
            return Err("checked by the tier gates".to_owned());
        };
        let namespaces = settings
            .namespaces
            .clone()
            .unwrap_or_else(|| namespaces_below(tier));
        let class = settings
            .ingress_class
            .clone()
            .unwrap_or_else(|| IngressClassSettings::default().name);
        let suffix = site.values.host_suffix.value.clone();
        let title = format!(
            "Ingresses in {} have hosts under {suffix}, class {class} and Ready certificates",
            namespaces.join(", ")
        );
        let mut check = IngressHosts::new(suffix, class, namespaces);
        if site.values.mode.value == Mode::Persistent {
            check = check.persistent(format!(
                "{}.{}",
                site.values.env.value, site.values.base_domain.value
            ));
        }
        Ok(Built::new(
            check,
            title,
            Self::provided_by(settings, site),
            &[super::KubeApi::ID],
        ))
    }
}

#[async_trait::async_trait]
impl Check for IngressHosts {
    fn reads(&self) -> Reads {
        let mut reads = vec![CLUSTER_ISSUERS.everywhere()];
        for ns in &self.expect.namespaces {
            reads.push(INGRESSES.within(ns));
            reads.push(CERTIFICATES.within(ns));
        }
        Reads::kube(reads)
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        match self.read(ctx).await {
            Ok((found, watches)) => Attempt::until_changed(judge(&found, &self.expect), watches),
            Err(failed) => *failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUFFIX: &str = "b-26-01-23-01.dev.goldenpathidp.io";

    fn expect() -> Expect {
        Expect {
            host_suffix: SUFFIX.into(),
            ingress_class: "kong".into(),
            namespaces: vec!["monitoring".into(), "kong".into()],
            build_zone: None,
        }
    }

    fn ingress(yaml: &str) -> IngressDoc {
        serde_saphyr::from_str(yaml).expect("parses")
    }

    fn grafana(annotations: &str, spec: &str) -> IngressDoc {
        ingress(&format!(
            "metadata: {{name: grafana, namespace: monitoring, annotations: {annotations}}}\nspec: {spec}\n"
        ))
    }

    const TLS_SPEC: &str = "{ingressClassName: kong, rules: [{host: grafana.b-26-01-23-01.dev.goldenpathidp.io}], tls: [{hosts: [grafana.b-26-01-23-01.dev.goldenpathidp.io], secretName: grafana-tls}]}";
    const PROD: &str = "{cert-manager.io/cluster-issuer: letsencrypt-prod}";

    fn issuers(ready: bool) -> Option<BTreeMap<String, IssuerDoc>> {
        let status = if ready {
            "{type: Ready, status: 'True', reason: ACMEAccountRegistered, observedGeneration: 1}"
        } else {
            "{type: Ready, status: 'False', reason: ErrRegisterACMEAccount, message: 'Failed to register ACME account: 429 rateLimited', observedGeneration: 1}"
        };
        let doc: IssuerDoc = serde_saphyr::from_str(&format!(
            "metadata: {{name: letsencrypt-prod, generation: 1}}\nspec: {{acme: {{}}}}\nstatus:\n  conditions: [{status}]\n"
        ))
        .expect("parses");
        Some(BTreeMap::from([("letsencrypt-prod".to_owned(), doc)]))
    }

    fn certificate(yaml_status: &str) -> BTreeMap<(String, String), CertificateDoc> {
        let doc: CertificateDoc = serde_saphyr::from_str(&format!(
            "metadata: {{name: grafana-tls, namespace: monitoring, generation: 1}}\nstatus: {yaml_status}\n"
        ))
        .expect("parses");
        BTreeMap::from([(("monitoring".to_owned(), "grafana-tls".to_owned()), doc)])
    }

    const CERT_READY: &str = "{conditions: [{type: Ready, status: 'True', reason: Ready, message: Certificate is up to date and has not expired, observedGeneration: 1}]}";

    #[test]
    fn defaults_read_the_namespaces_below_each_gate() {
        assert_eq!(
            namespaces_below(Tier::OneAndHalf),
            [
                "external-secrets",
                "cert-manager",
                "external-dns",
                "kong",
                "kube-system"
            ]
        );
        assert_eq!(
            namespaces_below(Tier::Two).last().map(String::as_str),
            Some("monitoring")
        );
        assert!(namespaces_below(Tier::Three).contains(&"backstage".to_owned()));
        assert!(!namespaces_below(Tier::Three).contains(&"keycloak".to_owned()));
        assert!(is_within(&format!("*.{SUFFIX}"), SUFFIX));
        assert!(is_within(&format!("Grafana.{SUFFIX}."), SUFFIX));
        assert!(!is_within("grafana.dev.goldenpathidp.io", SUFFIX));
        assert!(!is_within(&format!("x{SUFFIX}"), SUFFIX));
    }

    #[test]
    fn a_persistent_clusters_hosts_stay_out_of_build_subdomains() {
        let persistent = Expect {
            host_suffix: "dev.goldenpathidp.io".into(),
            build_zone: Some("dev.goldenpathidp.io".into()),
            ..expect()
        };
        let with_host = |host: &str| Found {
            ingresses: vec![grafana(
                "{}",
                &format!("{{ingressClassName: kong, rules: [{{host: {host}}}]}}"),
            )],
            ..Found::default()
        };
        for (host, status, code) in [
            (
                "grafana.dev.goldenpathidp.io",
                Status::Pass,
                "ingress-hosts-valid",
            ),
            (
                "'*.dev.goldenpathidp.io'",
                Status::Pass,
                "ingress-hosts-valid",
            ),
            (
                "broll.dev.goldenpathidp.io",
                Status::Pass,
                "ingress-hosts-valid",
            ),
            // Build ids are any DNS label: `b-roll` may be a build's subdomain.
            (
                "b-roll.dev.goldenpathidp.io",
                Status::Fail,
                "ingress-host-in-build",
            ),
            (
                "grafana.apps.dev.goldenpathidp.io",
                Status::Pass,
                "ingress-hosts-valid",
            ),
            (
                "grafana.b-26-01-23-01.dev.goldenpathidp.io",
                Status::Fail,
                "ingress-host-in-build",
            ),
            (
                "'*.B-26-01-24-02.dev.goldenpathidp.io.'",
                Status::Fail,
                "ingress-host-in-build",
            ),
            (
                "b-1.dev.goldenpathidp.io",
                Status::Fail,
                "ingress-host-in-build",
            ),
            (
                "grafana.test.goldenpathidp.io",
                Status::Fail,
                "ingress-host-outside-suffix",
            ),
        ] {
            let o = judge(&with_host(host), &persistent);
            assert_eq!(
                (o.status, o.code.as_str()),
                (status, code),
                "{host}: {}",
                o.message
            );
            if code == "ingress-host-in-build" {
                assert!(
                    o.message.contains("lies in the build subdomain b-")
                        && o.message.contains(
                            ".dev.goldenpathidp.io, which belongs to an ephemeral cluster"
                        ),
                    "{}",
                    o.message
                );
                assert!(
                    o.hint
                        .expect("hint")
                        .contains("outside the build subdomains b-<buildId>.dev.goldenpathidp.io")
                );
            }
        }
        // An ephemeral cluster's own suffix is a build subdomain: that is its to use.
        let o = judge(&with_host(&format!("grafana.{SUFFIX}")), &expect());
        assert_eq!(o.status, Status::Pass, "{}", o.message);
    }

    #[test]
    fn passes_with_no_ingress_or_valid_ones() {
        let o = judge(&Found::default(), &expect());
        assert_eq!(
            (o.status, o.code.as_str(), o.message.as_str()),
            (
                Status::Pass,
                "ingress-hosts-none",
                "no Ingress found in monitoring, kong"
            )
        );
        let found = Found {
            ingresses: vec![
                grafana(PROD, TLS_SPEC),
                ingress(
                    "metadata: {name: plain, namespace: kong}\nspec: {ingressClassName: kong, rules: [{host: kong.b-26-01-23-01.dev.goldenpathidp.io}, {}]}\n",
                ),
            ],
            issuers: issuers(true),
            certificates: certificate(CERT_READY),
        };
        let o = judge(&found, &expect());
        assert_eq!(
            (o.status, o.code.as_str()),
            (Status::Pass, "ingress-hosts-valid"),
            "{}",
            o.message
        );
        assert!(
            o.message.contains("2 Ingress(es)") && o.message.contains("1 certificate(s) Ready"),
            "{}",
            o.message
        );
    }

    #[test]
    fn names_each_ingress_that_asks_for_the_wrong_thing() {
        let ready_issuers = issuers(true);
        let cert = certificate(CERT_READY);
        for (ingress, issuers, certificates, status, code, needle, hint) in [
            (
                grafana(
                    PROD,
                    "{ingressClassName: kong, rules: [{host: grafana.example.com}]}",
                ),
                ready_issuers.clone(),
                cert.clone(),
                Status::Fail,
                "ingress-host-outside-suffix",
                "Ingress monitoring/grafana: host grafana.example.com is outside b-26-01-23-01.dev.goldenpathidp.io",
                "global.hostSuffix",
            ),
            (
                grafana("{}", "{ingressClassName: nginx}"),
                ready_issuers.clone(),
                cert.clone(),
                Status::Fail,
                "ingress-class-wrong",
                "Ingress monitoring/grafana has ingressClassName nginx, not kong",
                "spec.ingressClassName: kong",
            ),
            (
                grafana("{}", "{}"),
                ready_issuers.clone(),
                cert.clone(),
                Status::Fail,
                "ingress-class-wrong",
                "names no IngressClass",
                "spec.ingressClassName: kong",
            ),
            (
                grafana("{kubernetes.io/ingress.class: nginx}", "{}"),
                ready_issuers.clone(),
                cert.clone(),
                Status::Fail,
                "ingress-class-wrong",
                "has the annotation kubernetes.io/ingress.class: nginx, not kong",
                "spec.ingressClassName: kong",
            ),
            (
                grafana("{kubernetes.io/ingress.class: kong}", "{}"),
                ready_issuers.clone(),
                cert.clone(),
                Status::Warn,
                "ingress-class-annotation",
                "deprecated annotation kubernetes.io/ingress.class",
                "Replace the annotation",
            ),
            (
                grafana(
                    "{cert-manager.io/cluster-issuer: letsencrypt-prd}",
                    TLS_SPEC,
                ),
                ready_issuers.clone(),
                BTreeMap::new(),
                Status::Fail,
                "ingress-issuer-missing",
                "Ingress monitoring/grafana asks ClusterIssuer letsencrypt-prd, which does not exist (ClusterIssuers: letsencrypt-prod)",
                "one of the ClusterIssuers (letsencrypt-prod)",
            ),
            (
                grafana(PROD, TLS_SPEC),
                None,
                BTreeMap::new(),
                Status::Fail,
                "ingress-issuer-missing",
                "cert-manager's ClusterIssuer API is not served",
                "Install cert-manager",
            ),
            (
                grafana(PROD, TLS_SPEC),
                issuers(false),
                BTreeMap::new(),
                Status::Fail,
                "ingress-issuer-not-ready",
                "asks ClusterIssuer letsencrypt-prod (acme) is not Ready: ErrRegisterACMEAccount",
                "ACME registration failed",
            ),
            (
                grafana(PROD, TLS_SPEC),
                ready_issuers.clone(),
                BTreeMap::new(),
                Status::Fail,
                "certificate-not-ready",
                "Certificate monitoring/grafana-tls of Ingress monitoring/grafana does not exist yet",
                "kubectl describe certificate",
            ),
            (
                grafana(PROD, TLS_SPEC),
                ready_issuers.clone(),
                certificate(
                    "{conditions: [{type: Ready, status: 'False', reason: DoesNotExist, message: Issuing certificate as Secret does not exist, observedGeneration: 1}]}",
                ),
                Status::Fail,
                "certificate-not-ready",
                "Certificate monitoring/grafana-tls of Ingress monitoring/grafana is not Ready: DoesNotExist: Issuing certificate as Secret does not exist",
                "kubectl describe certificate",
            ),
            (
                grafana(PROD, TLS_SPEC),
                ready_issuers.clone(),
                certificate(
                    "{conditions: [{type: Ready, status: 'True', reason: Ready, observedGeneration: 0}]}",
                ),
                Status::Fail,
                "certificate-not-ready",
                "its Ready condition predates the latest change",
                "kubectl describe certificate",
            ),
            (
                grafana(
                    PROD,
                    "{ingressClassName: kong, tls: [{hosts: [grafana.b-26-01-23-01.dev.goldenpathidp.io]}]}",
                ),
                ready_issuers.clone(),
                BTreeMap::new(),
                Status::Fail,
                "ingress-tls-without-secret",
                "spec.tls[0] has no secretName",
                "secretName",
            ),
            (
                grafana("{cert-manager.io/issuer: local-ca}", TLS_SPEC),
                ready_issuers.clone(),
                cert.clone(),
                Status::Warn,
                "ingress-namespaced-issuer",
                "asks the namespaced Issuer local-ca",
                "cert-manager.io/cluster-issuer",
            ),
        ] {
            let found = Found {
                ingresses: vec![ingress],
                issuers,
                certificates,
            };
            let o = judge(&found, &expect());
            assert_eq!((o.status, o.code.as_str()), (status, code), "{}", o.message);
            assert!(o.message.contains(needle), "{needle:?} in {}", o.message);
            let h = o.hint.expect("hint");
            assert!(h.contains(hint), "{hint:?} in {h}");
        }
    }

    #[test]
    fn the_worst_problem_sets_the_code_and_every_one_is_named() {
        let found = Found {
            ingresses: vec![
                grafana(
                    "{kubernetes.io/ingress.class: kong}",
                    "{rules: [{host: grafana.example.com}]}",
                ),
                ingress(
                    "metadata: {name: proxy, namespace: kong}\nspec: {ingressClassName: nginx}\n",
                ),
            ],
            issuers: issuers(true),
            certificates: BTreeMap::new(),
        };
        let o = judge(&found, &expect());
        assert_eq!(
            (o.status, o.code.as_str()),
            (Status::Fail, "ingress-host-outside-suffix")
        );
        for needle in [
            "kong/proxy has ingressClassName nginx",
            "host grafana.example.com",
            "deprecated annotation",
        ] {
            assert!(o.message.contains(needle), "{needle:?} in {}", o.message);
        }
        let hint = o.hint.expect("hint");
        assert!(
            hint.contains("global.hostSuffix") && hint.contains("spec.ingressClassName: kong"),
            "{hint}"
        );
    }
}
