//! `image-architecture`: the images of the apps a gate admits exist in their registries and are
//! built for every architecture of the Ready nodes.
//!
//! An image pushed for arm64 only (a laptop's `docker build`) runs nowhere on amd64 nodes: its
//! pods crash with `exec format error` and loop in CrashLoopBackOff, although `nodes-ready`
//! passes. So at the gate of tier N this check reads the manifest (or image index) of each
//! image of the apps of tiers 1..=N from its registry and compares its platforms with the
//! nodes' `status.nodeInfo`: ECR through `BatchGetImage` (and, for a single-platform manifest,
//! the config blob through `GetDownloadUrlForLayer`), every other registry through the OCI
//! distribution API, anonymously or with a pull secret's credentials.
//!
//! The images are those found where ArgoCD records them: the Helm parameters and values of
//! the tier's Applications (the app-of-apps has created every Application before any gate
//! runs), plus a configured list.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::access::{IamGrant, KubeRead, Reads};
use crate::check::{Attempt, Check, Context, KubeWatch, Retry};
use crate::check::{Built, Definition, Family, Site};
use crate::checks::kubernetes::fetch::{self, APPLICATIONS, NODES, SECRETS};
use crate::config::ObjectRef;
use crate::outcome::{Outcome, Status, error_chain, name_list};
use crate::platform::{NeededBy, Provider, app_named, app_names};
use crate::tier::Tier;

// ---------------------------------------------------------------------------------------------
// Settings

/// `checks.image-architecture`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageArchitectureSettings {
    /// Read the images from the Helm parameters and values of ArgoCD's Applications.
    pub discover: bool,
    /// The namespace of ArgoCD's Applications.
    pub namespace: String,
    /// The label carrying an Application's tier.
    pub label: String,
    /// Images to check besides those discovered, each with the app that runs it (whose tier
    /// decides from which gate on it is checked).
    pub images: Vec<ConfiguredImage>,
    /// Secrets of type `kubernetes.io/dockerconfigjson` (`namespace/name`) whose credentials
    /// are used for the registries they name; read by name only.
    pub pull_secrets: Vec<ObjectRef>,
    /// Registries (`host[:port]`) spoken to over plain HTTP, as containerd's config allows.
    pub insecure_registries: Vec<String>,
    /// The ECR repositories (ARN patterns) that images discovered in Applications may come
    /// from, for `preflight iam-policy`. Discovered images are known only at run time, so the
    /// default is every repository; narrow it to the platform's account and region.
    pub ecr_repositories: Vec<String>,
}

impl Default for ImageArchitectureSettings {
    fn default() -> Self {
        ImageArchitectureSettings {
            discover: true,
            namespace: "argocd".into(),
            label: "goldenpath.idp/tier".into(),
            images: Vec::new(),
            pull_secrets: Vec::new(),
            insecure_registries: Vec::new(),
            ecr_repositories: vec![ANY_ECR_REPOSITORY.into()],
        }
    }
}

/// Every ECR repository: the only policy that covers images known only at run time.
const ANY_ECR_REPOSITORY: &str = "arn:aws:ecr:*:*:repository/*";

/// One configured image.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfiguredImage {
    /// The platform app that runs it, e.g. `backstage`.
    #[serde(deserialize_with = "platform_app")]
    pub app: String,
    /// The image reference, e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com/backstage:1.4.2`.
    #[serde(deserialize_with = "image_reference")]
    pub image: String,
}

fn platform_app<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = String::deserialize(d)?;
    if app_named(&name).is_none() {
        return Err(serde::de::Error::custom(format!(
            "unknown app {name:?} (the platform's apps: {})",
            app_names().join(", ")
        )));
    }
    Ok(name)
}

fn image_reference<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let raw = String::deserialize(d)?;
    ImageRef::parse(&raw).map_err(serde::de::Error::custom)?;
    Ok(raw)
}

// ---------------------------------------------------------------------------------------------
// Image references

/// A parsed image reference, normalized as containerd resolves it: a name without a registry
/// is on Docker Hub, and a single-component Docker Hub name is under `library/`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ImageRef {
    /// `host[:port]`; `docker.io` for Docker Hub.
    pub registry: String,
    /// The repository path, e.g. `library/nginx`.
    pub repository: String,
    /// The tag, when written.
    pub tag: Option<String>,
    /// The digest (`sha256:…`), when written; it wins over the tag, as for containerd.
    pub digest: Option<String>,
}

const DOCKER_HUB: &str = "docker.io";

impl ImageRef {
    /// Parses a reference by the grammar of the distribution project
    /// (`[host[:port]/]path[:tag][@digest]`).
    pub(crate) fn parse(raw: &str) -> Result<ImageRef, String> {
        let bad = |why: &str| Err(format!("{raw:?} is not an image reference: {why}"));
        if raw.is_empty() {
            return bad("it is empty");
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad("it contains whitespace");
        }
        let (name_tag, digest) = match raw.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (raw, None),
        };
        if let Some(d) = digest
            && !is_digest(d)
        {
            return bad("the digest is not algorithm:hex (e.g. sha256: and 64 hex digits)");
        }
        let slash = name_tag.rfind('/');
        let (name, tag) = match name_tag.rfind(':') {
            Some(colon) if slash.is_none_or(|s| colon > s) => {
                (&name_tag[..colon], Some(&name_tag[colon + 1..]))
            }
            _ => (name_tag, None),
        };
        if let Some(t) = tag
            && !is_tag(t)
        {
            return bad("the tag must be 1 to 128 letters, digits, '_', '.' or '-'");
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first, rest)
            }
            _ => (DOCKER_HUB, name),
        };
        if registry.is_empty()
            || !registry
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        {
            return bad("the registry is not a host name");
        }
        if path.len() > 255 {
            return bad("the name is longer than 255 characters");
        }
        if let Some(component) = path.split('/').find(|c| !is_path_component(c)) {
            return bad(&format!(
                "{component:?} is not a lowercase repository name component"
            ));
        }
        let registry = match registry {
            "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => DOCKER_HUB,
            other => other,
        };
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        };
        Ok(ImageRef {
            registry: registry.to_owned(),
            repository,
            tag: tag.map(str::to_owned),
            digest: digest.map(str::to_owned),
        })
    }

    /// What the registry is asked for: the digest when pinned, else the tag (`latest` when
    /// none is written).
    pub(crate) fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// Whether it floats on `latest`: no digest, and the tag `latest` or none.
    pub(crate) fn is_latest(&self) -> bool {
        self.digest.is_none() && self.tag.as_deref().is_none_or(|t| t == "latest")
    }

    /// Whether it is pulled from Docker Hub.
    pub(crate) fn is_docker_hub(&self) -> bool {
        self.registry == DOCKER_HUB
    }

    /// The ECR registry it lives in, if any.
    pub(crate) fn ecr(&self) -> Option<EcrRegistry> {
        EcrRegistry::parse(&self.registry)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn is_digest(d: &str) -> bool {
    let Some((algorithm, hex)) = d.split_once(':') else {
        return false;
    };
    let algorithm_ok = !algorithm.is_empty()
        && algorithm.split(['+', '.', '_', '-']).all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    let hex_ok = if algorithm == "sha256" {
        hex.len() == 64
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    } else {
        hex.len() >= 32
            && hex
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "=_-".contains(c))
    };
    algorithm_ok && hex_ok
}

fn is_tag(t: &str) -> bool {
    let mut chars = t.chars();
    t.len() <= 128
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// `[a-z0-9]+` runs joined by one `.`, one or two `_`, or any number of `-`.
fn is_path_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if alnum(b) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &c[start..i];
        if !(separator == "."
            || separator == "_"
            || separator == "__"
            || separator.bytes().all(|s| s == b'-'))
        {
            return false;
        }
    }
    true
}

/// An ECR registry, from its host name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EcrRegistry {
    /// The AWS account, the registry id of the API.
    pub account: String,
    /// The region.
    pub region: String,
    /// `aws`, or `aws-cn` for the China regions.
    pub partition: &'static str,
}

impl EcrRegistry {
    /// `{account}.dkr.ecr[-fips].{region}.amazonaws.com[.cn]`, or the dual-stack
    /// `{account}.dkr-ecr.{region}.on.aws`.
    fn parse(host: &str) -> Option<EcrRegistry> {
        let parts: Vec<&str> = host.split('.').collect();
        let account = *parts.first()?;
        if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let (region, partition) = match parts.as_slice() {
            [_, "dkr", "ecr" | "ecr-fips", region, "amazonaws", "com"] => (*region, "aws"),
            [_, "dkr", "ecr", region, "amazonaws", "com", "cn"] => (*region, "aws-cn"),
            [_, "dkr-ecr", region, "on", "aws"] => (*region, "aws"),
            _ => return None,
        };
        Some(EcrRegistry {
            account: account.to_owned(),
            region: region.to_owned(),
            partition,
        })
    }

    /// The ARN of one of its repositories, for IAM.
    fn repository_arn(&self, repository: &str) -> String {
        format!(
            "arn:{}:ecr:{}:{}:repository/{repository}",
            self.partition, self.region, self.account
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Images in ArgoCD Applications

/// The parts of an ArgoCD Application that name images.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ApplicationDoc {
    #[serde(default)]
    metadata: AppMetadata,
    #[serde(default)]
    spec: AppSpec,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct AppMetadata {
    #[serde(default)]
    name: String,
    #[serde(default, deserialize_with = "fetch::or_default")]
    labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct AppSpec {
    #[serde(default)]
    source: Option<AppSource>,
    #[serde(default, deserialize_with = "fetch::or_default")]
    sources: Vec<AppSource>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct AppSource {
    #[serde(default)]
    helm: Option<Helm>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Helm {
    #[serde(default, deserialize_with = "fetch::or_default")]
    parameters: Vec<HelmParameter>,
    #[serde(default)]
    values_object: Option<Value>,
    #[serde(default)]
    values: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct HelmParameter {
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
}

/// An image reference found in an Application, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Discovered {
    /// E.g. `spec.source.helm: image` (the path in the Helm values).
    pub place: String,
    /// The reference as the values hold it.
    pub reference: String,
}

impl ApplicationDoc {
    fn tier(&self, label: &str) -> Option<Tier> {
        self.metadata.labels.get(label)?.parse().ok()
    }
}

/// The image references an Application's Helm sources set: its values as Helm would receive
/// them (`valuesObject`, or else `values`, with the `parameters` set over them, as ArgoCD
/// passes them), walked for a map with `repository` and `tag` (or `digest`), and an optional
/// `registry`, or a string named `image`. Images set only in a chart's own values files are
/// not visible here.
pub(crate) fn images_in(app: &ApplicationDoc) -> Vec<Discovered> {
    let sources = app
        .spec
        .source
        .iter()
        .map(|s| ("spec.source".to_owned(), s))
        .chain(
            app.spec
                .sources
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("spec.sources[{i}]"), s)),
        );
    let mut found = Vec::new();
    for (where_, source) in sources {
        let Some(helm) = &source.helm else { continue };
        let values = effective_values(helm);
        let mut images = Vec::new();
        walk(&values, &mut Vec::new(), &mut images);
        for (path, reference) in images {
            let path = if path.is_empty() {
                "(root)".to_owned()
            } else {
                path
            };
            found.push(Discovered {
                place: format!("{where_}.helm: {path}"),
                reference,
            });
        }
    }
    found
}

/// The values an Application's Helm source renders with. ArgoCD uses `valuesObject` when
/// set, else the `values` text, and passes each parameter with `--set` over them.
fn effective_values(helm: &Helm) -> Value {
    let mut values = match (&helm.values_object, &helm.values) {
        (Some(object @ Value::Object(_)), _) => object.clone(),
        (_, Some(text)) => serde_saphyr::from_str::<Value>(text)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| Value::Object(Map::new())),
        _ => Value::Object(Map::new()),
    };
    for p in &helm.parameters {
        set_path(&mut values, &p.name, Value::String(p.value.clone()));
    }
    values
}

/// One step of a `--set` path.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Splits a `--set` name as Helm does: `.` between keys (`\.` for a literal dot) and `[n]`
/// for a list index.
fn steps(name: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut key = String::new();
    let mut chars = name.chars().peekable();
    let push_key = |key: &mut String, steps: &mut Vec<Step>| {
        if !key.is_empty() {
            steps.push(Step::Key(std::mem::take(key)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    key.push(next);
                }
            }
            '.' => push_key(&mut key, &mut steps),
            '[' => {
                push_key(&mut key, &mut steps);
                let digits: String = chars.by_ref().take_while(|c| *c != ']').collect();
                if let Ok(i) = digits.parse() {
                    steps.push(Step::Index(i));
                }
            }
            other => key.push(other),
        }
    }
    push_key(&mut key, &mut steps);
    steps
}

fn set_path(root: &mut Value, name: &str, value: Value) {
    let steps = steps(name);
    if steps.is_empty() {
        return;
    }
    let mut node = root;
    for step in &steps {
        node = match step {
            Step::Key(k) => {
                if !node.is_object() {
                    *node = Value::Object(Map::new());
                }
                let Value::Object(map) = node else { return };
                map.entry(k.clone()).or_insert(Value::Null)
            }
            Step::Index(i) => {
                if !node.is_array() {
                    *node = Value::Array(Vec::new());
                }
                let Value::Array(items) = node else { return };
                if items.len() <= *i {
                    items.resize(*i + 1, Value::Null);
                }
                &mut items[*i]
            }
        };
    }
    *node = value;
}

/// A scalar as Helm would template it into a string (`tag: 1.4` is a number in YAML).
fn scalar(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The reference a values map names with `repository` and `tag` (or `digest`), and an
/// optional `registry`.
fn image_of_map(map: &Map<String, Value>) -> Option<String> {
    let repository = scalar(map.get("repository"))?;
    let tag = scalar(map.get("tag"));
    let digest = scalar(map.get("digest"));
    if tag.is_none() && digest.is_none() {
        // The chart's appVersion fills the tag: not knowable here.
        return None;
    }
    let mut reference = match scalar(map.get("registry")) {
        Some(registry) => format!("{}/{repository}", registry.trim_end_matches('/')),
        None => repository,
    };
    if let Some(t) = tag {
        reference = format!("{reference}:{t}");
    }
    if let Some(d) = digest {
        reference = format!("{reference}@{d}");
    }
    Some(reference)
}

fn walk(value: &Value, path: &mut Vec<String>, found: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            if let Some(reference) = image_of_map(map) {
                found.push((path.join("."), reference));
            }
            for (key, child) in map {
                match child {
                    Value::String(s) if key == "image" && !s.trim().is_empty() => {
                        path.push(key.clone());
                        found.push((path.join("."), s.trim().to_owned()));
                        path.pop();
                    }
                    Value::Object(_) | Value::Array(_) => {
                        path.push(key.clone());
                        walk(child, path, found);
                        path.pop();
                    }
                    _ => {}
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let last = path.pop().unwrap_or_default();
                path.push(format!("{last}[{i}]"));
                walk(item, path, found);
                path.pop();
                path.push(last);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Manifests and platforms

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Schema 1, which old registries still send: the architecture is in the manifest itself.
const DOCKER_V1: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
];
/// The media types asked for, image indexes first, as containerd asks.
const ACCEPTED: [&str; 4] = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

/// An operating system and architecture (and variant, for 32-bit ARM), as nodes report them
/// and images declare them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub(crate) fn new(os: &str, architecture: &str) -> Self {
        Platform {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: None,
        }
    }

    /// Whether a node of this platform runs an image built for `image`: same OS and
    /// architecture; nodes do not report a variant.
    fn runs(&self, image: &Platform) -> bool {
        self.os == image.os && self.architecture == image.architecture
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        // arm64's only variant is v8; 32-bit ARM's (v6, v7) tell builds apart.
        match &self.variant {
            Some(v) if self.architecture == "arm" => write!(f, "/{v}"),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestDoc {
    #[serde(default)]
    schema_version: Option<i64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<IndexEntry>>,
    #[serde(default)]
    config: Option<Descriptor>,
    /// Schema 1 only.
    #[serde(default)]
    architecture: Option<String>,
}

#[derive(Debug, Deserialize)]
struct IndexEntry {
    #[serde(default)]
    platform: Option<PlatformDoc>,
}

#[derive(Debug, Deserialize)]
struct Descriptor {
    digest: String,
}

/// `platform` of an index entry, and the same fields of an image config.
#[derive(Debug, Default, Deserialize)]
struct PlatformDoc {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
}

impl PlatformDoc {
    /// The platform, unless it is `unknown/unknown`: buildx's attestation manifests.
    fn platform(self) -> Option<Platform> {
        if self.architecture.is_empty() || self.architecture == "unknown" {
            return None;
        }
        Some(Platform {
            os: if self.os.is_empty() {
                "linux".into()
            } else {
                self.os
            },
            architecture: self.architecture,
            variant: self.variant.filter(|v| !v.is_empty()),
        })
    }
}

/// What a manifest says about platforms.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// An image index (manifest list): the platforms of its entries.
    Index(BTreeSet<Platform>),
    /// A single-platform manifest: its platform is in the config blob.
    Single { config: String },
    /// A schema-1 manifest, which names its architecture.
    Platform(Platform),
}

/// Reads a manifest of `media_type` (the registry's `Content-Type`, or ECR's
/// `imageManifestMediaType`; the document's own `mediaType` when absent).
pub(crate) fn parse_manifest(media_type: Option<&str>, body: &[u8]) -> Result<Parsed, String> {
    let doc: ManifestDoc = serde_json::from_slice(body)
        .map_err(|e| format!("the manifest is not a JSON manifest: {e}"))?;
    let media_type = media_type
        .map(|m| m.split(';').next().unwrap_or(m).trim())
        .filter(|m| !m.is_empty() && *m != "application/json" && *m != "application/octet-stream")
        .or(doc.media_type.as_deref());
    let is_index = match media_type {
        Some(OCI_INDEX | DOCKER_LIST) => true,
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
        Some(m) if DOCKER_V1.contains(&m) => {
            return Ok(Parsed::Platform(Platform::new(
                "linux",
                doc.architecture.as_deref().unwrap_or("unknown"),
            )));
        }
        _ if doc.schema_version == Some(1) => {
            return Ok(Parsed::Platform(Platform::new(
                "linux",
                doc.architecture.as_deref().unwrap_or("unknown"),
            )));
        }
        _ => doc.manifests.is_some(),
    };
    if is_index {
        let platforms = doc
            .manifests
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.platform.and_then(PlatformDoc::platform))
            .collect();
        return Ok(Parsed::Index(platforms));
    }
    match doc.config {
        Some(config) => Ok(Parsed::Single {
            config: config.digest,
        }),
        None => Err(format!(
            "the manifest ({}) has neither entries nor a config",
            media_type.unwrap_or("no media type")
        )),
    }
}

/// The platform an image config declares.
pub(crate) fn parse_config(body: &[u8]) -> Result<Platform, String> {
    let doc: PlatformDoc =
        serde_json::from_slice(body).map_err(|e| format!("the image config is not JSON: {e}"))?;
    doc.platform()
        .ok_or_else(|| "the image config declares no architecture".to_owned())
}

// ---------------------------------------------------------------------------------------------
// Nodes

/// The fields of a Node the check reads.
#[derive(Clone, Debug, Deserialize)]
struct NodeDoc {
    #[serde(default)]
    spec: NodeSpec,
    #[serde(default)]
    status: NodeStatus,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct NodeSpec {
    #[serde(default)]
    unschedulable: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeStatus {
    #[serde(default, deserialize_with = "fetch::or_default")]
    conditions: Vec<NodeCondition>,
    #[serde(default)]
    node_info: NodeInfo,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct NodeCondition {
    #[serde(rename = "type")]
    type_: String,
    status: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeInfo {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    operating_system: String,
}

/// How many Ready, schedulable nodes of each platform there are.
pub(crate) type NodePlatforms = BTreeMap<Platform, usize>;

/// Counts a node when it is Ready and schedulable: pods land only there.
fn count_node(platforms: &mut NodePlatforms, node: NodeDoc) {
    let ready = node
        .status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if !ready || node.spec.unschedulable {
        return;
    }
    let info = node.status.node_info;
    let os = if info.operating_system.is_empty() {
        "linux"
    } else {
        &info.operating_system
    };
    *platforms
        .entry(Platform::new(os, &info.architecture))
        .or_default() += 1;
}

fn describe_nodes(nodes: &NodePlatforms) -> String {
    nodes
        .iter()
        .map(|(p, n)| format!("{p} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------------
// Judging

/// What the registry said about one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// The platforms it is built for.
    Platforms(BTreeSet<Platform>),
    /// The tag or repository does not exist; the registry's words.
    NotFound(String),
    /// The reference does not parse.
    Invalid(String),
    /// It could not be read (forbidden, unreachable, bad credentials): the outcome to report,
    /// and whether trying again may help.
    Unreadable { outcome: Outcome, transient: bool },
}

/// One image to check: the apps that run it, where it was found, and what the registry said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ImageFact {
    /// The reference as written (for an invalid one) or normalized.
    pub shown: String,
    /// Parsed, when it parses.
    pub image: Option<ImageRef>,
    /// The apps that run it.
    pub apps: Vec<String>,
    /// Where it was found: `Application kong (spec.source.helm: image)`, or the config.
    pub places: Vec<String>,
    /// The registry's answer.
    pub lookup: Lookup,
}

struct Finding {
    status: Status,
    code: String,
    message: String,
    hint: String,
}

/// Order of the codes a failing run is reported under: definite findings first.
fn rank(code: &str) -> usize {
    match code {
        "image-architecture-mismatch" => 0,
        "image-not-found" => 1,
        "image-reference-invalid" => 2,
        _ => 3,
    }
}

fn findings_of(fact: &ImageFact, nodes: &NodePlatforms) -> Vec<Finding> {
    let who = format!("{} image {}", fact.apps.join(", "), fact.shown);
    let found_in = format!("It is set in {}.", fact.places.join("; "));
    let mut findings = Vec::new();
    match &fact.lookup {
        Lookup::Invalid(why) => findings.push(Finding {
            status: Status::Fail,
            code: "image-reference-invalid".into(),
            message: format!("{}: {why}", fact.apps.join(", ")),
            hint: format!("Correct the reference ([registry/]repository[:tag][@sha256:digest], lowercase). {found_in}"),
        }),
        Lookup::NotFound(why) => {
            let image = fact.image.as_ref();
            let ecr_hint = match image.and_then(|i| i.ecr().map(|e| (i, e))) {
                Some((i, e)) => format!(
                    " List what the repository holds: aws ecr describe-images --registry-id {} --region {} --repository-name {}.",
                    e.account, e.region, i.repository
                ),
                None => String::new(),
            };
            findings.push(Finding {
                status: Status::Fail,
                code: "image-not-found".into(),
                message: format!("{who} does not exist: {why}"),
                hint: format!(
                    "Push the tag (the app's CI image build, `docker buildx build --platform linux/amd64,linux/arm64 -t {} --push .`) or correct the tag in the app's Helm values.{ecr_hint} {found_in}",
                    fact.shown
                ),
                });
        }
        Lookup::Unreadable { outcome, .. } => findings.push(Finding {
            status: Status::Fail,
            code: outcome.code.clone(),
            message: format!("{who}: {}", outcome.message),
            hint: outcome.hint.clone().unwrap_or_default(),
        }),
        Lookup::Platforms(platforms) => {
            let unserved: Vec<&Platform> = nodes
                .keys()
                .filter(|n| !platforms.iter().any(|p| n.runs(p)))
                .collect();
            if !unserved.is_empty() {
                let built = if platforms.is_empty() {
                    "built for no platform (its index lists none)".to_owned()
                } else {
                    let list: Vec<String> = platforms.iter().map(ToString::to_string).collect();
                    format!(
                        "built for {}{}",
                        list.join(", "),
                        if list.len() == 1 { " only" } else { "" }
                    )
                };
                let on = if unserved.len() == nodes.len() {
                    String::new()
                } else {
                    let list: Vec<String> = unserved.iter().map(ToString::to_string).collect();
                    format!(" on {} nodes", list.join(", "))
                };
                let wanted: Vec<String> = nodes
                    .keys()
                    .chain(platforms.iter())
                    .map(|p| format!("{}/{}", p.os, p.architecture))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                findings.push(Finding {
                    status: Status::Fail,
                    code: "image-architecture-mismatch".into(),
                    message: format!(
                        "{who} is {built}; the Ready nodes are {}: pods{on} would crash with `exec format error`",
                        describe_nodes(nodes)
                    ),
                    hint: format!(
                        "Rebuild and push it for every node architecture: `docker buildx build --platform {} -t {} --push .` (a multi-arch image index); or run the app only on matching nodes (nodeSelector kubernetes.io/arch), or add a node group of its architecture. {found_in}",
                        wanted.join(","),
                        fact.shown
                    ),
                        });
            }
        }
    }
    if let Some(image) = &fact.image {
        if image.is_latest() {
            findings.push(Finding {
                status: Status::Warn,
                code: "image-tag-latest".into(),
                message: format!(
                    "{who} {}: nodes pull whatever it points to when they start a pod, so they may run different builds",
                    if image.tag.is_some() { "floats on :latest" } else { "has no tag (so :latest)" }
                ),
                hint: format!("Pin a version tag or a digest (@sha256:…) in the app's Helm values. {found_in}"),
                });
        }
        if image.is_docker_hub() && image.digest.is_none() {
            findings.push(Finding {
                status: Status::Warn,
                code: "image-unpinned-docker-hub".into(),
                message: format!(
                    "{who} is pulled from Docker Hub without a digest: Docker Hub rate-limits pulls (anonymous ones per source IP, which every node behind one NAT gateway shares), and a tag may be moved"
                ),
                hint: format!("Pin a digest ({}@sha256:…) or mirror it to ECR (an ECR pull-through cache rule for docker.io) and point the chart at the mirror. {found_in}", fact.shown),
                });
        }
    }
    findings
}

/// Judges the images against the Ready nodes. `looked` says where images were looked for,
/// for the message when there are none.
pub(crate) fn judge(images: &[ImageFact], nodes: &NodePlatforms, looked: &str) -> Outcome {
    if images.is_empty() {
        return Outcome::pass(
            "no-images",
            format!("no images to check: none found in {looked}"),
        )
        .evidence("images", 0);
    }
    let lookups_need_nodes = images
        .iter()
        .any(|i| matches!(i.lookup, Lookup::Platforms(_)));
    if nodes.is_empty() && lookups_need_nodes {
        return Outcome::fail(
            "no-ready-nodes",
            format!(
                "no Ready, schedulable node to compare {} image(s) with",
                images.len()
            ),
        )
        .hint("See nodes-ready: the node group has no Ready instance yet.")
        .evidence("images", images.len());
    }
    let mut findings: Vec<Finding> = images.iter().flat_map(|i| findings_of(i, nodes)).collect();
    let shown_nodes = describe_nodes(nodes);
    let outcome = if findings.is_empty() {
        let list: Vec<String> = images
            .iter()
            .map(|i| match &i.lookup {
                Lookup::Platforms(p) => format!(
                    "{} ({})",
                    i.shown,
                    p.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                _ => i.shown.clone(),
            })
            .collect();
        Outcome::pass(
            "image-architecture-matches",
            format!(
                "{} image(s) run on the Ready nodes' {shown_nodes}: {}",
                images.len(),
                name_list(&list, 10)
            ),
        )
    } else {
        findings.sort_by_key(|f| (std::cmp::Reverse(f.status), rank(&f.code)));
        let first = &findings[0];
        let mut hints: Vec<&str> = Vec::new();
        for f in &findings {
            if !f.hint.is_empty() && !hints.contains(&f.hint.as_str()) {
                hints.push(&f.hint);
            }
        }
        let messages: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
        let mut outcome = Outcome::new(first.status, first.code.clone(), messages.join("; "));
        if !hints.is_empty() {
            outcome = outcome.hint(hints.join("\n"));
        }
        outcome
    };
    outcome
        .evidence("images", images.len())
        .evidence("nodes", shown_nodes)
}

/// Whether a failing judgement came from an image that could not be read, and whether
/// trying again may help: `None` when the judgement rests on what the registries said.
fn unreadable_retry(outcome: &Outcome, images: &[ImageFact]) -> Option<bool> {
    if outcome.status != Status::Fail {
        return None;
    }
    images.iter().find_map(|i| match &i.lookup {
        Lookup::Unreadable {
            outcome: o,
            transient,
        } if o.code == outcome.code => Some(*transient),
        _ => None,
    })
}

// ---------------------------------------------------------------------------------------------
// Registries

/// Credentials for one registry, from a pull secret. Never printed.
#[derive(Clone)]
struct Credentials {
    username: String,
    password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(…)")
    }
}

/// `.dockerconfigjson`: `{"auths": {"host": {"username", "password"} or {"auth"}}}`.
#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
}

#[derive(Deserialize)]
struct DockerAuth {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    auth: Option<String>,
}

/// The registry host a `.dockerconfigjson` key names (`https://index.docker.io/v1/` is
/// Docker Hub).
fn registry_of_key(key: &str) -> String {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => DOCKER_HUB.into(),
        other => other.to_owned(),
    }
}

/// The credentials of a `.dockerconfigjson`, by registry host. The error names the problem,
/// never a value.
fn parse_docker_config(text: &str) -> Result<BTreeMap<String, Credentials>, String> {
    use base64::Engine as _;
    let config: DockerConfig = serde_json::from_str(text).map_err(|e| {
        format!(
            ".dockerconfigjson is not a Docker config (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let mut out = BTreeMap::new();
    for (key, auth) in config.auths {
        let credentials = match (auth.username, auth.password, auth.auth) {
            (Some(username), Some(password), _) => Credentials { username, password },
            (_, _, Some(encoded)) => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| format!("the auth of {key} is not base64 of user:password"))?;
                let (username, password) = decoded
                    .split_once(':')
                    .ok_or_else(|| format!("the auth of {key} is not base64 of user:password"))?;
                Credentials {
                    username: username.to_owned(),
                    password: password.to_owned(),
                }
            }
            _ => {
                return Err(format!(
                    "the entry for {key} has neither username and password nor auth"
                ));
            }
        };
        out.insert(registry_of_key(&key), credentials);
    }
    Ok(out)
}

/// A `WWW-Authenticate` challenge: the scheme and its parameters.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

/// Parses `Bearer realm="…",service="…",scope="…"` (quoted values may hold commas).
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.is_empty() {
        return None;
    }
    let mut params = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    other => value.push(other),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        params.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

/// The most of a manifest, config or token response preflight reads.
const MAX_BODY: usize = 4 << 20;

/// Reads a response body, at most [`MAX_BODY`] bytes.
async fn body(mut response: reqwest::Response, what: &str) -> Result<Vec<u8>, Lookup> {
    let mut out = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                out.extend_from_slice(&chunk);
                if out.len() > MAX_BODY {
                    return Err(unreadable(
                        false,
                        "registry-error",
                        format!("{what} is larger than {} MiB", MAX_BODY >> 20),
                        "",
                    ));
                }
            }
            Ok(None) => return Ok(out),
            Err(e) => {
                return Err(unreadable(
                    true,
                    "registry-unreachable",
                    format!("reading {what} failed: {}", error_chain(&e)),
                    "",
                ));
            }
        }
    }
}

fn unreadable(transient: bool, code: &str, message: String, hint: &str) -> Lookup {
    let mut outcome = Outcome::fail(code, message);
    if !hint.is_empty() {
        outcome = outcome.hint(hint);
    }
    Lookup::Unreadable { outcome, transient }
}

/// A failure to reach a URL: refused, timed out, TLS.
fn unreachable(url: &reqwest::Url, e: &reqwest::Error) -> Lookup {
    let host = url.host_str().unwrap_or_default();
    unreadable(
        true,
        "registry-unreachable",
        format!("cannot reach {host}: {}", error_chain(e)),
        "Check the network path from the nodes' subnets to the registry (NAT gateway, proxy, VPC endpoints for ECR), and for a registry served over plain HTTP list it in checks.image-architecture.insecureRegistries.",
    )
}

/// The first `errors[].code` and message of a distribution API error body.
fn registry_error(bytes: &[u8]) -> Option<(String, String)> {
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<RegistryError>,
    }
    #[derive(Deserialize)]
    struct RegistryError {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let errors: Errors = serde_json::from_slice(bytes).ok()?;
    errors
        .errors
        .into_iter()
        .next()
        .map(|e| (e.code, e.message))
}

/// A session with one repository of a registry through the OCI distribution API: the
/// authorization it earned (a bearer token, or basic credentials) is reused for the blob.
struct Distribution<'a> {
    http: &'a reqwest::Client,
    base: String,
    image: &'a ImageRef,
    credentials: Option<&'a Credentials>,
    authorization: Option<String>,
}

impl<'a> Distribution<'a> {
    fn new(
        http: &'a reqwest::Client,
        image: &'a ImageRef,
        insecure: bool,
        credentials: Option<&'a Credentials>,
    ) -> Self {
        let host = if image.is_docker_hub() {
            "registry-1.docker.io"
        } else {
            image.registry.as_str()
        };
        Distribution {
            http,
            base: format!("{}://{host}", if insecure { "http" } else { "https" }),
            image,
            credentials,
            authorization: None,
        }
    }

    fn url(&self, path: &str) -> Result<reqwest::Url, Lookup> {
        let text = format!("{}/v2/{}/{path}", self.base, self.image.repository);
        reqwest::Url::parse(&text).map_err(|e| {
            unreadable(
                false,
                "registry-error",
                format!("{text} is not a URL: {e}"),
                "",
            )
        })
    }

    async fn send(&self, url: &reqwest::Url, accept: &str) -> Result<reqwest::Response, Lookup> {
        let mut request = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, accept);
        if let Some(a) = &self.authorization {
            request = request.header(reqwest::header::AUTHORIZATION, a);
        }
        request.send().await.map_err(|e| unreachable(url, &e))
    }

    /// GETs a path of the repository, answering one `401` challenge (a token from the
    /// realm, or basic credentials) and trying once more.
    async fn get(&mut self, path: &str, accept: &str) -> Result<reqwest::Response, Lookup> {
        let url = self.url(path)?;
        let response = self.send(&url, accept).await?;
        if response.status() != reqwest::StatusCode::UNAUTHORIZED || self.authorization.is_some() {
            return Ok(response);
        }
        let challenge = response
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .and_then(parse_challenge);
        self.authorization = Some(self.authorize(challenge).await?);
        self.send(&url, accept).await
    }

    /// The `Authorization` value a challenge asks for.
    async fn authorize(&self, challenge: Option<Challenge>) -> Result<String, Lookup> {
        use base64::Engine as _;
        let registry = &self.image.registry;
        let basic = self.credentials.map(|c| {
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", c.username, c.password))
        });
        match challenge {
            Some(c) if c.scheme == "bearer" => {
                let Some(realm) = c.params.get("realm") else {
                    return Err(unreadable(
                        false,
                        "registry-auth-failed",
                        format!("{registry} asked for a bearer token without naming its realm"),
                        "",
                    ));
                };
                let mut url = reqwest::Url::parse(realm).map_err(|e| {
                    unreadable(
                        false,
                        "registry-auth-failed",
                        format!("{registry}'s token realm {realm:?} is not a URL: {e}"),
                        "",
                    )
                })?;
                {
                    let mut query = url.query_pairs_mut();
                    if let Some(service) = c.params.get("service") {
                        query.append_pair("service", service);
                    }
                    let scope =
                        c.params.get("scope").cloned().unwrap_or_else(|| {
                            format!("repository:{}:pull", self.image.repository)
                        });
                    query.append_pair("scope", &scope);
                }
                let mut request = self.http.get(url.clone());
                if let Some(b) = &basic {
                    request = request.header(reqwest::header::AUTHORIZATION, format!("Basic {b}"));
                }
                let response = request.send().await.map_err(|e| unreachable(&url, &e))?;
                let status = response.status();
                if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                    return Err(unreadable(
                        true,
                        "registry-unavailable",
                        format!("the token service of {registry} answered {status}"),
                        "",
                    ));
                }
                if !status.is_success() {
                    return Err(self.auth_failed(&format!("its token service answered {status}")));
                }
                #[derive(Deserialize)]
                struct Token {
                    #[serde(default)]
                    token: Option<String>,
                    #[serde(default)]
                    access_token: Option<String>,
                }
                let bytes = body(response, "the token response").await?;
                let token: Token = serde_json::from_slice(&bytes).map_err(|_| {
                    unreadable(
                        false,
                        "registry-auth-failed",
                        format!("the token service of {registry} sent no JSON token"),
                        "",
                    )
                })?;
                token
                    .token
                    .or(token.access_token)
                    .filter(|t| !t.is_empty())
                    .map(|t| format!("Bearer {t}"))
                    .ok_or_else(|| {
                        unreadable(
                            false,
                            "registry-auth-failed",
                            format!("the token service of {registry} sent no token"),
                            "",
                        )
                    })
            }
            Some(c) if c.scheme == "basic" => {
                basic.map(|b| format!("Basic {b}")).ok_or_else(|| {
                    self.auth_failed("it asks for credentials and no pull secret has any for it")
                })
            }
            _ => Err(self.auth_failed("it answered 401 without a challenge preflight can answer")),
        }
    }

    fn auth_failed(&self, why: &str) -> Lookup {
        let registry = &self.image.registry;
        let with = if self.credentials.is_some() {
            "with the pull secret's credentials"
        } else {
            "anonymously"
        };
        unreadable(
            false,
            "registry-auth-failed",
            format!(
                "{registry} refused to let preflight read {} {with}: {why}",
                self.image.repository
            ),
            &format!(
                "If the repository is private, give its credentials in a kubernetes.io/dockerconfigjson Secret listed in checks.image-architecture.pullSecrets (the same the pods pull with: imagePullSecrets); otherwise check that the repository {}/{} exists (some registries answer 401 for a missing one).",
                registry, self.image.repository
            ),
        )
    }

    /// The manifest (or index) of the image and its media type.
    async fn manifest(&mut self) -> Result<(Option<String>, Vec<u8>), Lookup> {
        let reference = self.image.reference().to_owned();
        let response = self
            .get(&format!("manifests/{reference}"), &ACCEPTED.join(", "))
            .await?;
        let status = response.status();
        if status.is_success() {
            let media_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned);
            let bytes = body(response, "the manifest").await?;
            return Ok((media_type, bytes));
        }
        Err(self.refused(status, response, "the manifest").await)
    }

    /// A failed answer, as a lookup.
    async fn refused(
        &self,
        status: reqwest::StatusCode,
        response: reqwest::Response,
        what: &str,
    ) -> Lookup {
        let registry = &self.image.registry;
        let bytes = body(response, "the error").await.unwrap_or_default();
        let error = registry_error(&bytes);
        let said = match &error {
            Some((code, message)) => format!("{status} {code}: {message}"),
            None => status.to_string(),
        };
        match status.as_u16() {
            404 => Lookup::NotFound(format!("{registry} answered {said}")),
            401 => self.auth_failed(&format!("it answered {said} even with a token")),
            403 => self.auth_failed(&format!("it answered {said}")),
            429 | 500..=599 => unreadable(
                true,
                "registry-unavailable",
                format!("{registry} answered {said} for {what}"),
                "Docker Hub answers 429 when its pull rate limit is reached: pin and mirror the image to ECR. Otherwise the registry is having trouble: try again later.",
            ),
            _ => unreadable(
                false,
                "registry-error",
                format!("{registry} answered {said} for {what}"),
                "",
            ),
        }
    }

    /// The config blob, following the registry's redirects to its storage (without the
    /// registry's authorization, which is not the storage's).
    async fn blob(&mut self, digest: &str) -> Result<Vec<u8>, Lookup> {
        let response = self.get(&format!("blobs/{digest}"), "*/*").await?;
        let response = follow(self.http, response, "the image config").await?;
        let status = response.status();
        if status.is_success() {
            return body(response, "the image config").await;
        }
        Err(self.refused(status, response, "the image config").await)
    }
}

/// Follows up to five redirects of a blob download, as registries redirect to their storage.
async fn follow(
    http: &reqwest::Client,
    mut response: reqwest::Response,
    what: &str,
) -> Result<reqwest::Response, Lookup> {
    for _ in 0..5 {
        if !response.status().is_redirection() {
            return Ok(response);
        }
        let Some(location) = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| response.url().join(l).ok())
        else {
            return Ok(response);
        };
        response = http
            .get(location.clone())
            .send()
            .await
            .map_err(|e| unreachable(&location, &e))?;
    }
    Err(unreadable(
        false,
        "registry-error",
        format!("{what} redirects more than five times"),
        "",
    ))
}

/// GETs a URL ECR handed out (a presigned S3 URL), as it needs no other authorization.
async fn download(http: &reqwest::Client, url: &str, what: &str) -> Result<Vec<u8>, Lookup> {
    let url = reqwest::Url::parse(url).map_err(|e| {
        unreadable(
            false,
            "registry-error",
            format!("ECR's download URL for {what} is not a URL: {e}"),
            "",
        )
    })?;
    let response = http
        .get(url.clone())
        .send()
        .await
        .map_err(|e| unreachable(&url, &e))?;
    let response = follow(http, response, what).await?;
    let status = response.status();
    if status.is_success() {
        return body(response, what).await;
    }
    Err(unreadable(
        status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS,
        "registry-unavailable",
        format!("the download of {what} from ECR's storage answered {status}"),
        "",
    ))
}

/// An AWS failure as a lookup.
fn aws_failure(attempt: Attempt) -> Lookup {
    Lookup::Unreadable {
        transient: attempt.retry != Retry::Never,
        outcome: attempt.outcome,
    }
}

/// Reads an ECR image's platforms: `BatchGetImage` in the image's region and registry, and
/// for a single-platform manifest its config through `GetDownloadUrlForLayer`.
async fn ecr_platforms(
    ecr: &aws_sdk_ecr::Client,
    http: Option<&reqwest::Client>,
    image: &ImageRef,
    registry: &EcrRegistry,
) -> Result<BTreeSet<Platform>, Lookup> {
    use aws_sdk_ecr::operation::batch_get_image::BatchGetImageError;
    use aws_sdk_ecr::operation::get_download_url_for_layer::GetDownloadUrlForLayerError;
    use aws_sdk_ecr::types::ImageIdentifier;

    let in_region = || {
        aws_sdk_ecr::config::Builder::default()
            .region(aws_sdk_ecr::config::Region::new(registry.region.clone()))
    };
    let id = match &image.digest {
        Some(d) => ImageIdentifier::builder().image_digest(d),
        None => ImageIdentifier::builder().image_tag(image.reference()),
    }
    .build();
    let what = format!("{}/{}", registry.account, image.repository);
    let got = ecr
        .batch_get_image()
        .registry_id(&registry.account)
        .repository_name(&image.repository)
        .image_ids(id)
        .set_accepted_media_types(Some(ACCEPTED.iter().map(|m| (*m).to_owned()).collect()))
        .customize()
        .config_override(in_region())
        .send()
        .await;
    let output = match got {
        Ok(o) => o,
        Err(e) => {
            if let Some(BatchGetImageError::RepositoryNotFoundException(err)) = e.as_service_error()
            {
                return Err(Lookup::NotFound(format!(
                    "ECR answered RepositoryNotFoundException: {}",
                    err.message().unwrap_or("the repository does not exist")
                )));
            }
            return Err(aws_failure(super::failure("ecr:BatchGetImage", &what, &e)));
        }
    };
    let Some(found) = output.images().first() else {
        let failure = output.failures().first();
        let code = failure
            .and_then(|f| f.failure_code())
            .map_or("ImageNotFound", |c| c.as_str());
        let reason = failure
            .and_then(|f| f.failure_reason())
            .unwrap_or("Requested image not found");
        return Err(match code {
            "ImageNotFound"
            | "ImageTagDoesNotMatchDigest"
            | "InvalidImageTag"
            | "InvalidImageDigest"
            | "MissingDigestAndTag" => Lookup::NotFound(format!("ECR answered {code}: {reason}")),
            "UpstreamAccessDenied" => unreadable(
                false,
                "registry-auth-failed",
                format!("ECR's pull-through cache answered {code}: {reason}"),
                "Check the credentials of the pull-through cache rule (its Secrets Manager secret).",
            ),
            _ => unreadable(
                true,
                "aws-error",
                format!("ECR answered {code} for {what}: {reason}"),
                "",
            ),
        });
    };
    let manifest = found.image_manifest().unwrap_or_default();
    let parsed =
        parse_manifest(found.image_manifest_media_type(), manifest.as_bytes()).map_err(|why| {
            unreadable(
                false,
                "manifest-invalid",
                format!("ECR's manifest of {what}: {why}"),
                "",
            )
        })?;
    let config = match parsed {
        Parsed::Index(platforms) => return Ok(platforms),
        Parsed::Platform(p) => return Ok(BTreeSet::from([p])),
        Parsed::Single { config } => config,
    };
    let Some(http) = http else {
        return Err(unreadable(
            false,
            "no-http-client",
            "no HTTP client is configured to read the image config".into(),
            "",
        ));
    };
    let url = ecr
        .get_download_url_for_layer()
        .registry_id(&registry.account)
        .repository_name(&image.repository)
        .layer_digest(&config)
        .customize()
        .config_override(in_region())
        .send()
        .await;
    let url = match url {
        Ok(o) => o.download_url().unwrap_or_default().to_owned(),
        Err(e) => {
            if let Some(
                GetDownloadUrlForLayerError::LayersNotFoundException(_)
                | GetDownloadUrlForLayerError::LayerInaccessibleException(_),
            ) = e.as_service_error()
            {
                return Err(Lookup::NotFound(format!(
                    "ECR has no config blob {config} for it ({})",
                    e.as_service_error()
                        .and_then(|s| s.meta().code())
                        .unwrap_or("LayersNotFoundException")
                )));
            }
            return Err(aws_failure(super::failure(
                "ecr:GetDownloadUrlForLayer",
                &what,
                &e,
            )));
        }
    };
    let bytes = download(http, &url, "the image config").await?;
    let platform = parse_config(&bytes).map_err(|why| {
        unreadable(
            false,
            "manifest-invalid",
            format!("the config of {what}: {why}"),
            "",
        )
    })?;
    Ok(BTreeSet::from([platform]))
}

/// Reads a non-ECR image's platforms through the OCI distribution API.
async fn registry_platforms(
    http: &reqwest::Client,
    image: &ImageRef,
    insecure: bool,
    credentials: Option<&Credentials>,
) -> Result<BTreeSet<Platform>, Lookup> {
    let mut session = Distribution::new(http, image, insecure, credentials);
    let (media_type, bytes) = session.manifest().await?;
    let parsed = parse_manifest(media_type.as_deref(), &bytes).map_err(|why| {
        unreadable(
            false,
            "manifest-invalid",
            format!("the manifest from {}: {why}", image.registry),
            "",
        )
    })?;
    let config = match parsed {
        Parsed::Index(platforms) => return Ok(platforms),
        Parsed::Platform(p) => return Ok(BTreeSet::from([p])),
        Parsed::Single { config } => config,
    };
    let bytes = session.blob(&config).await?;
    let platform = parse_config(&bytes).map_err(|why| {
        unreadable(
            false,
            "manifest-invalid",
            format!("the config from {}: {why}", image.registry),
            "",
        )
    })?;
    Ok(BTreeSet::from([platform]))
}

// ---------------------------------------------------------------------------------------------
// The check

/// The `image-architecture` check, for the gate of one tier.
#[derive(Debug)]
pub struct ImageArchitecture {
    settings: ImageArchitectureSettings,
    tier: Tier,
}

impl ImageArchitecture {
    /// A check of the images of the apps of tiers 1..=`tier`.
    #[must_use]
    pub fn new(settings: ImageArchitectureSettings, tier: Tier) -> Self {
        ImageArchitecture { settings, tier }
    }

    /// The configured images of the apps the gate admits.
    fn configured(&self) -> impl Iterator<Item = &ConfiguredImage> {
        self.settings
            .images
            .iter()
            .filter(|i| app_named(&i.app).is_some_and(|a| a.tier <= self.tier))
    }

    fn tiers(&self) -> String {
        if self.tier == Tier::One {
            "tier 1".to_owned()
        } else {
            format!("tiers 1 to {}", self.tier)
        }
    }

    /// The images of the gate's apps, deduplicated, in the order found.
    fn collect(&self, apps: &[ApplicationDoc]) -> Vec<ImageFact> {
        let mut facts: Vec<ImageFact> = Vec::new();
        let mut add = |app: &str, place: String, raw: &str| {
            let (shown, image, lookup) = match ImageRef::parse(raw) {
                Ok(i) => (i.to_string(), Some(i), Lookup::Platforms(BTreeSet::new())),
                Err(why) => (raw.to_owned(), None, Lookup::Invalid(why)),
            };
            match facts.iter_mut().find(|f| f.shown == shown) {
                Some(f) => {
                    if !f.apps.iter().any(|a| a == app) {
                        f.apps.push(app.to_owned());
                    }
                    if !f.places.contains(&place) {
                        f.places.push(place);
                    }
                }
                None => facts.push(ImageFact {
                    shown,
                    image,
                    apps: vec![app.to_owned()],
                    places: vec![place],
                    lookup,
                }),
            }
        };
        for app in apps {
            if app.tier(&self.settings.label).is_none_or(|t| t > self.tier) {
                continue;
            }
            for d in images_in(app) {
                add(
                    &app.metadata.name,
                    format!("Application {} ({})", app.metadata.name, d.place),
                    &d.reference,
                );
            }
        }
        for c in self.configured() {
            add(
                &c.app,
                "checks.image-architecture.images".to_owned(),
                &c.image,
            );
        }
        facts
    }

    fn looked(&self, applications: Option<usize>) -> String {
        let mut places = Vec::new();
        if self.settings.discover {
            places.push(match applications {
                Some(n) => format!(
                    "the Helm parameters and values of {n} Application(s) of {} in {} (labelled {})",
                    self.tiers(),
                    self.settings.namespace,
                    self.settings.label
                ),
                None => format!(
                    "ArgoCD Applications in {}: the Application API is not served",
                    self.settings.namespace
                ),
            });
        }
        places.push(format!(
            "checks.image-architecture.images (for the apps of {})",
            self.tiers()
        ));
        places.join(" or ")
    }

    /// The credentials of the configured pull secrets, by registry.
    async fn credentials(
        &self,
        ctx: &Context,
        watches: &mut Vec<KubeWatch>,
    ) -> Result<BTreeMap<String, Credentials>, Box<Attempt>> {
        let mut all = BTreeMap::new();
        for secret in &self.settings.pull_secrets {
            let (doc, watch) = fetch::get_watchable::<fetch::SecretDoc>(
                ctx,
                &SECRETS,
                Some(&secret.namespace),
                &secret.name,
            )
            .await?;
            watches.push(watch);
            let Some(doc) = doc else {
                return Err(Box::new(Attempt::until_changed(
                    Outcome::fail("pull-secret-missing", format!("the pull secret {secret} does not exist"))
                        .hint("Create it (type kubernetes.io/dockerconfigjson, e.g. kubectl create secret docker-registry), or remove it from checks.image-architecture.pullSecrets."),
                    watches.clone(),
                )));
            };
            let invalid = |why: String| {
                Box::new(Attempt::settled(
                    Outcome::fail("pull-secret-invalid", format!("the pull secret {secret}: {why}"))
                        .hint("Give it the key .dockerconfigjson holding {\"auths\": {\"<registry>\": {\"username\": …, \"password\": …}}} (kubectl create secret docker-registry writes it)."),
                ))
            };
            let text = fetch::secret_text(&doc.data, ".dockerconfigjson")
                .map_err(|o| invalid(o.message))?
                .ok_or_else(|| invalid("it has no key .dockerconfigjson".into()))?;
            all.extend(parse_docker_config(&text).map_err(invalid)?);
        }
        Ok(all)
    }
}

impl Definition for ImageArchitecture {
    const ID: &'static str = "image-architecture";
    const FAMILY: Family = Family::Aws;
    type Settings = ImageArchitectureSettings;

    /// Tier 1's apps are the first to pull the platform's images.
    fn needed_by(_: &ImageArchitectureSettings) -> NeededBy {
        NeededBy::tier(Tier::One)
    }

    fn provided_by(_: &ImageArchitectureSettings, _: &Site<'_>) -> Provider {
        Provider::Foundation("CI's image builds in the registries, and EKS's node groups")
    }

    fn build(settings: &ImageArchitectureSettings, site: &Site<'_>) -> Result<Built, String> {
        let check = ImageArchitecture::new(settings.clone(), site.scope.tier());
        if !settings.discover && check.configured().next().is_none() {
            return Err(format!(
                "no images to check: discovery is off and checks.image-architecture.images names none of the apps of {}",
                check.tiers()
            ));
        }
        let title = format!(
            "the images of the apps of {} exist and are built for the Ready nodes' architectures",
            check.tiers()
        );
        Ok(Built::new(
            check,
            title,
            Self::provided_by(settings, site),
            &[crate::checks::kubernetes::KubeApi::ID],
        ))
    }
}

#[async_trait::async_trait]
impl Check for ImageArchitecture {
    fn reads(&self) -> Reads {
        let mut kube = vec![NODES.everywhere()];
        if self.settings.discover {
            kube.push(APPLICATIONS.within(&self.settings.namespace));
        }
        kube.extend(
            self.settings
                .pull_secrets
                .iter()
                .map(|s| KubeRead::secret(&s.namespace, &s.name)),
        );
        let mut resources: Vec<String> = self
            .configured()
            .filter_map(|c| {
                let image = ImageRef::parse(&c.image).ok()?;
                Some(image.ecr()?.repository_arn(&image.repository))
            })
            .collect();
        if self.settings.discover {
            // Images discovered in Applications are known only at run time, so the policy
            // names the repositories they may come from: by default every repository
            // (ECR's read actions have no condition keys to narrow them by), narrowed with
            // checks.image-architecture.ecrRepositories.
            resources.extend(self.settings.ecr_repositories.iter().cloned());
        }
        let mut iam: Vec<IamGrant> = resources
            .into_iter()
            .flat_map(|resource| {
                ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"].map(|action| IamGrant {
                    action,
                    resource: resource.clone(),
                })
            })
            .collect();
        iam.sort();
        iam.dedup();
        Reads { kube, iam }
    }

    fn uses_http(&self) -> bool {
        true
    }

    async fn attempt(&self, ctx: &Context) -> Attempt {
        let nodes = fetch::list_fold(
            ctx,
            &NODES,
            None,
            None,
            NodePlatforms::new(),
            |platforms: &mut NodePlatforms, page: Vec<NodeDoc>| {
                for node in page {
                    count_node(platforms, node);
                }
            },
        )
        .await;
        let (nodes, version) = match nodes {
            Ok(n) => n,
            Err(failed) => return *failed,
        };
        let mut watches = vec![KubeWatch {
            path: NODES.collection_path(None),
            field_selector: None,
            resource_version: version,
        }];

        let mut applications = None;
        if self.settings.discover {
            match fetch::served_version(ctx, &APPLICATIONS, &["v1alpha1"]).await {
                Ok(Some(version)) => {
                    match fetch::list_all::<ApplicationDoc>(
                        ctx,
                        &APPLICATIONS.at_version(version),
                        Some(&self.settings.namespace),
                    )
                    .await
                    {
                        Ok((apps, watch)) => {
                            watches.push(watch);
                            applications = Some(apps);
                        }
                        Err(failed) => return *failed,
                    }
                }
                // Without ArgoCD's API there is nothing to discover; configured images remain.
                Ok(None) => {}
                Err(failed) => return *failed,
            }
        }
        let apps = applications.as_deref().unwrap_or_default();
        let in_scope = apps
            .iter()
            .filter(|a| a.tier(&self.settings.label).is_some_and(|t| t <= self.tier))
            .count();
        let mut images = self.collect(apps);
        let looked = self.looked(applications.as_ref().map(|_| in_scope));

        let needs_registry = images
            .iter()
            .any(|i| i.image.as_ref().is_some_and(|r| r.ecr().is_none()));
        let credentials = if needs_registry && !self.settings.pull_secrets.is_empty() {
            match self.credentials(ctx, &mut watches).await {
                Ok(c) => c,
                Err(failed) => return *failed,
            }
        } else {
            BTreeMap::new()
        };
        let http = match ctx.http() {
            Some(pending) if !images.is_empty() => match pending.client().await {
                Ok(client) => Some(client),
                Err(why) => {
                    return Attempt::settled(Outcome::fail("http-client-failed", why.to_string()));
                }
            },
            _ => None,
        };

        let lookups = futures::future::join_all(images.iter().map(|fact| {
            let http = http.as_ref();
            let credentials = &credentials;
            async move {
                let Some(image) = &fact.image else {
                    return fact.lookup.clone();
                };
                let result = match image.ecr() {
                    Some(registry) => match ctx.ecr() {
                        Some(ecr) => ecr_platforms(ecr, http, image, &registry).await,
                        None => Err(aws_failure(super::no_client())),
                    },
                    None => match http {
                        Some(http) => {
                            let insecure = self
                                .settings
                                .insecure_registries
                                .iter()
                                .any(|r| r == &image.registry);
                            registry_platforms(
                                http,
                                image,
                                insecure,
                                credentials.get(&image.registry),
                            )
                            .await
                        }
                        None => Err(unreadable(
                            false,
                            "no-http-client",
                            "no HTTP client is configured".into(),
                            "",
                        )),
                    },
                };
                result.map_or_else(|l| l, Lookup::Platforms)
            }
        }))
        .await;
        for (fact, lookup) in images.iter_mut().zip(lookups) {
            fact.lookup = lookup;
        }

        let outcome = judge(&images, &nodes, &looked);
        match unreadable_retry(&outcome, &images) {
            Some(true) => Attempt::transient(outcome),
            Some(false) => Attempt::settled(outcome),
            // A node group added, an Application's tag changed, or an image pushed (seen at
            // the latest when the watch gives up waiting) may change the verdict.
            None => Attempt::until_changed(outcome, watches),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_image_references_as_containerd_resolves_them() {
        for (raw, registry, repository, tag, digest) in [
            ("nginx", "docker.io", "library/nginx", None, None),
            (
                "nginx:1.27",
                "docker.io",
                "library/nginx",
                Some("1.27"),
                None,
            ),
            (
                "bitnami/postgresql:16.4.0",
                "docker.io",
                "bitnami/postgresql",
                Some("16.4.0"),
                None,
            ),
            (
                "docker.io/grafana/grafana:11.3.0",
                "docker.io",
                "grafana/grafana",
                Some("11.3.0"),
                None,
            ),
            (
                "index.docker.io/library/busybox",
                "docker.io",
                "library/busybox",
                None,
                None,
            ),
            (
                "quay.io/prometheus/prometheus:v3.0.1",
                "quay.io",
                "prometheus/prometheus",
                Some("v3.0.1"),
                None,
            ),
            (
                "localhost:5000/app:dev",
                "localhost:5000",
                "app",
                Some("dev"),
                None,
            ),
            (
                "127.0.0.1:5000/team/app",
                "127.0.0.1:5000",
                "team/app",
                None,
                None,
            ),
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/backstage:1.4.2",
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                "backstage",
                Some("1.4.2"),
                None,
            ),
            (
                "ghcr.io/org/app:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "ghcr.io",
                "org/app",
                Some("1"),
                Some("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            ),
            (
                "a__b/c-d--e.f_g",
                "docker.io",
                "a__b/c-d--e.f_g",
                None,
                None,
            ),
        ] {
            let r = ImageRef::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(
                (
                    r.registry.as_str(),
                    r.repository.as_str(),
                    r.tag.as_deref(),
                    r.digest.as_deref()
                ),
                (registry, repository, tag, digest),
                "{raw}"
            );
        }
    }

    #[test]
    fn rejects_malformed_references_naming_the_problem() {
        for (raw, needle) in [
            ("", "empty"),
            ("Nginx:1", "lowercase"),
            ("nginx:", "tag"),
            ("nginx:-x", "tag"),
            ("nginx@sha256:abc", "digest"),
            ("nginx:1 ", "whitespace"),
            ("ghcr.io//app", "lowercase"),
            ("ghcr.io/app..x", "lowercase"),
            ("ghcr.io/-app", "lowercase"),
        ] {
            let e = ImageRef::parse(raw).expect_err(raw);
            assert!(e.contains(needle), "{raw:?}: {e}");
        }
    }

    #[test]
    fn knows_latest_docker_hub_and_ecr() {
        let r = |s: &str| ImageRef::parse(s).expect("parses");
        assert!(r("nginx").is_latest());
        assert!(r("nginx:latest").is_latest());
        assert!(!r("nginx:1.27").is_latest());
        assert!(
            !r("nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
                .is_latest()
        );
        assert!(r("nginx").is_docker_hub());
        assert!(!r("quay.io/a/b").is_docker_hub());
        assert_eq!(r("nginx").to_string(), "docker.io/library/nginx");
        assert_eq!(r("nginx").reference(), "latest");
        let ecr = r("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/backstage:1").ecr();
        assert_eq!(
            ecr,
            Some(EcrRegistry {
                account: "123456789012".into(),
                region: "eu-west-1".into(),
                partition: "aws"
            })
        );
        assert_eq!(
            ecr.expect("ecr").repository_arn("team/backstage"),
            "arn:aws:ecr:eu-west-1:123456789012:repository/team/backstage"
        );
        assert_eq!(
            r("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/a:1")
                .ecr()
                .map(|e| e.partition),
            Some("aws-cn")
        );
        assert_eq!(
            r("123456789012.dkr-ecr.us-east-1.on.aws/a:1")
                .ecr()
                .map(|e| e.region),
            Some("us-east-1".to_owned())
        );
        assert_eq!(r("public.ecr.aws/eks/coredns:v1").ecr(), None);
        assert_eq!(r("12345.dkr.ecr.eu-west-1.amazonaws.com/a:1").ecr(), None);
    }

    fn app(yaml: &str) -> ApplicationDoc {
        serde_saphyr::from_str(yaml).expect("fixture parses")
    }

    fn discovered(yaml: &str) -> Vec<(String, String)> {
        images_in(&app(yaml))
            .into_iter()
            .map(|d| (d.place, d.reference))
            .collect()
    }

    #[test]
    fn discovers_images_in_helm_parameters_values_and_sources() {
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect()
        };
        for (yaml, want) in [
            // A repository and tag pair in parameters, with a registry.
            (
                "metadata: {name: backstage}\nspec:\n  source:\n    helm:\n      parameters:\n      - {name: backstage.image.registry, value: 123456789012.dkr.ecr.eu-west-1.amazonaws.com}\n      - {name: backstage.image.repository, value: backstage}\n      - {name: backstage.image.tag, value: 1.4.2}\n",
                pairs(&[(
                    "spec.source.helm: backstage.image",
                    "123456789012.dkr.ecr.eu-west-1.amazonaws.com/backstage:1.4.2",
                )]),
            ),
            // A full reference in a parameter named image or ending in .image.
            (
                "spec:\n  source:\n    helm:\n      parameters:\n      - {name: image, value: 'ghcr.io/org/app:1'}\n      - {name: sidecar.image, value: 'quay.io/a/b:2'}\n      - {name: replicas, value: '2'}\n",
                pairs(&[
                    ("spec.source.helm: image", "ghcr.io/org/app:1"),
                    ("spec.source.helm: sidecar.image", "quay.io/a/b:2"),
                ]),
            ),
            // valuesObject: nested maps, lists, numeric tags, digests.
            (
                "spec:\n  source:\n    helm:\n      valuesObject:\n        controller:\n          image: {repository: kong/kong-gateway, tag: 3.9}\n        initContainers:\n        - {name: wait, image: 'busybox:1.36'}\n        proxy: {image: {repository: ghcr.io/a/b, digest: 'sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'}}\n",
                pairs(&[
                    (
                        "spec.source.helm: controller.image",
                        "kong/kong-gateway:3.9",
                    ),
                    ("spec.source.helm: initContainers[0].image", "busybox:1.36"),
                    (
                        "spec.source.helm: proxy.image",
                        "ghcr.io/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                    ),
                ]),
            ),
            // Parameters override valuesObject, as ArgoCD's --set does.
            (
                "spec:\n  source:\n    helm:\n      valuesObject: {image: {repository: ghcr.io/a/b, tag: '1.0'}}\n      parameters:\n      - {name: image.tag, value: '1.1'}\n",
                pairs(&[("spec.source.helm: image", "ghcr.io/a/b:1.1")]),
            ),
            // The values text counts when there is no valuesObject; a tag left to the chart
            // (empty) is not knowable and skipped.
            (
                "spec:\n  source:\n    helm:\n      values: |\n        image:\n          repository: grafana/grafana\n          tag: 11.3.0\n        sidecar:\n          image: {repository: kiwigrid/k8s-sidecar, tag: ''}\n",
                pairs(&[("spec.source.helm: image", "grafana/grafana:11.3.0")]),
            ),
            // Every source of a multi-source Application.
            (
                "spec:\n  sources:\n  - {repoURL: 'https://charts.example', chart: a}\n  - helm: {parameters: [{name: image.repository, value: ghcr.io/a/b}, {name: image.tag, value: '2'}]}\n",
                pairs(&[("spec.sources[1].helm: image", "ghcr.io/a/b:2")]),
            ),
            // No Helm, no images.
            (
                "spec:\n  source: {repoURL: 'https://github.com/goldenpath/platform.git', path: apps/kong}\n",
                vec![],
            ),
            // A repository without a tag is the chart's appVersion: skipped.
            (
                "spec:\n  source:\n    helm:\n      parameters: [{name: image.repository, value: ghcr.io/a/b}]\n",
                vec![],
            ),
        ] {
            assert_eq!(discovered(yaml), want, "{yaml}");
        }
    }

    #[test]
    fn splits_set_paths_as_helm_does() {
        assert_eq!(
            steps(r"a.b\.c[2].d"),
            vec![
                Step::Key("a".into()),
                Step::Key("b.c".into()),
                Step::Index(2),
                Step::Key("d".into())
            ]
        );
        let mut v = Value::Object(Map::new());
        set_path(&mut v, "list[1].image", Value::String("x:1".into()));
        assert_eq!(v, serde_json::json!({"list": [null, {"image": "x:1"}]}));
    }

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn reads_platforms_from_indexes_and_manifests() {
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
            {{"mediaType":"{OCI_MANIFEST}","digest":"{DIGEST}","size":1,"platform":{{"architecture":"amd64","os":"linux"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{DIGEST}","size":1,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{DIGEST}","size":1,"platform":{{"architecture":"unknown","os":"unknown"}},"annotations":{{"vnd.docker.reference.type":"attestation-manifest"}}}}]}}"#
        );
        let list = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_LIST}","manifests":[{{"mediaType":"{DOCKER_MANIFEST}","digest":"{DIGEST}","size":1,"platform":{{"architecture":"arm","os":"linux","variant":"v7"}}}}]}}"#
        );
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":1,"digest":"{DIGEST}"}},"layers":[]}}"#
        );
        // OCI manifests need not carry their media type: the response's header says it.
        let oci_bare = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":1,"digest":"{DIGEST}"}},"layers":[]}}"#
        );
        let v1 = r#"{"schemaVersion":1,"name":"a","tag":"1","architecture":"amd64","fsLayers":[]}"#;
        let arm = |a: &str, v: Option<&str>| Platform {
            os: "linux".into(),
            architecture: a.into(),
            variant: v.map(str::to_owned),
        };
        for (media_type, body, want) in [
            (
                Some(OCI_INDEX),
                index.clone(),
                Ok(Parsed::Index(BTreeSet::from([
                    Platform::new("linux", "amd64"),
                    arm("arm64", Some("v8")),
                ]))),
            ),
            (
                None,
                index,
                Ok(Parsed::Index(BTreeSet::from([
                    Platform::new("linux", "amd64"),
                    arm("arm64", Some("v8")),
                ]))),
            ),
            (
                Some(DOCKER_LIST),
                list,
                Ok(Parsed::Index(BTreeSet::from([arm("arm", Some("v7"))]))),
            ),
            (
                Some(DOCKER_MANIFEST),
                manifest,
                Ok(Parsed::Single {
                    config: DIGEST.into(),
                }),
            ),
            (
                Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
                oci_bare.clone(),
                Ok(Parsed::Single {
                    config: DIGEST.into(),
                }),
            ),
            (
                Some("application/json"),
                oci_bare,
                Ok(Parsed::Single {
                    config: DIGEST.into(),
                }),
            ),
            (
                Some(DOCKER_V1[0]),
                v1.to_owned(),
                Ok(Parsed::Platform(Platform::new("linux", "amd64"))),
            ),
        ] {
            assert_eq!(parse_manifest(media_type, body.as_bytes()), want, "{body}");
        }
        assert!(parse_manifest(Some(OCI_MANIFEST), b"<html>").is_err());
        assert!(parse_manifest(Some(OCI_MANIFEST), b"{\"schemaVersion\":2}").is_err());
        assert_eq!(
            parse_config(br#"{"architecture":"arm64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#),
            Ok(Platform::new("linux", "arm64"))
        );
        assert!(parse_config(b"{}").is_err());
        assert_eq!(arm("arm", Some("v7")).to_string(), "linux/arm/v7");
        assert_eq!(arm("arm64", Some("v8")).to_string(), "linux/arm64");
    }

    #[test]
    fn parses_www_authenticate_challenges() {
        let c = parse_challenge(r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull,push""#).expect("parses");
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.docker.io/token");
        assert_eq!(c.params["service"], "registry.docker.io");
        assert_eq!(c.params["scope"], "repository:library/nginx:pull,push");
        let b = parse_challenge(r#"Basic realm="Registry Realm""#).expect("parses");
        assert_eq!(b.scheme, "basic");
        assert_eq!(b.params["realm"], "Registry Realm");
        let unquoted = parse_challenge("Bearer realm=https://r/token, service=r").expect("parses");
        assert_eq!(unquoted.params["service"], "r");
        assert_eq!(parse_challenge(""), None);
    }

    #[test]
    fn reads_docker_configs_without_showing_secrets() {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode("robot:s3cret-pass");
        let text = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"ghcr.io":{{"username":"u","password":"p"}}}}}}"#
        );
        let c = parse_docker_config(&text).expect("parses");
        assert_eq!(c["docker.io"].username, "robot");
        assert_eq!(c["docker.io"].password, "s3cret-pass");
        assert_eq!(c["ghcr.io"].username, "u");
        assert!(!format!("{c:?}").contains("s3cret"));
        for bad in [
            r#"{"auths":{"r":{"auth":"!!"}}}"#.to_owned(),
            r#"{"auths":{"r":{}}}"#.to_owned(),
            "not json s3cret".to_owned(),
        ] {
            let e = parse_docker_config(&bad).expect_err(&bad);
            assert!(!e.contains("s3cret") && !e.contains("!!"), "{e}");
        }
    }

    fn nodes(list: &[(&str, usize)]) -> NodePlatforms {
        list.iter()
            .map(|(a, n)| (Platform::new("linux", a), *n))
            .collect()
    }

    fn fact(reference: &str, apps: &[&str], lookup: Lookup) -> ImageFact {
        let image = ImageRef::parse(reference).ok();
        ImageFact {
            shown: image
                .as_ref()
                .map_or_else(|| reference.to_owned(), ToString::to_string),
            image,
            apps: apps.iter().map(|a| (*a).to_owned()).collect(),
            places: vec!["checks.image-architecture.images".into()],
            lookup,
        }
    }

    fn built_for(archs: &[&str]) -> Lookup {
        Lookup::Platforms(archs.iter().map(|a| Platform::new("linux", a)).collect())
    }

    const ECR: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/backstage:1.4.2";

    #[test]
    fn judges_every_case() {
        let amd = nodes(&[("amd64", 3)]);
        let mixed = nodes(&[("amd64", 2), ("arm64", 1)]);
        let none = NodePlatforms::new();
        let forbidden = Lookup::Unreadable {
            outcome: Outcome::fail("aws-forbidden", "not allowed to ecr:BatchGetImage")
                .hint("Allow it"),
            transient: false,
        };
        let cases: Vec<(Vec<ImageFact>, &NodePlatforms, Status, &str, &str)> = vec![
            (
                vec![],
                &amd,
                Status::Pass,
                "no-images",
                "none found in the Applications",
            ),
            (
                vec![fact(ECR, &["backstage"], built_for(&["amd64", "arm64"]))],
                &amd,
                Status::Pass,
                "image-architecture-matches",
                "1 image(s) run on the Ready nodes' linux/amd64 (3): 123456789012.dkr.ecr.eu-west-1.amazonaws.com/backstage:1.4.2 (linux/amd64, linux/arm64)",
            ),
            (
                vec![fact(ECR, &["backstage"], built_for(&["arm64"]))],
                &amd,
                Status::Fail,
                "image-architecture-mismatch",
                "backstage image 123456789012.dkr.ecr.eu-west-1.amazonaws.com/backstage:1.4.2 is built for linux/arm64 only; the Ready nodes are linux/amd64 (3): pods would crash with `exec format error`",
            ),
            (
                vec![fact(ECR, &["backstage"], built_for(&["amd64"]))],
                &mixed,
                Status::Fail,
                "image-architecture-mismatch",
                "is built for linux/amd64 only; the Ready nodes are linux/amd64 (2), linux/arm64 (1): pods on linux/arm64 nodes would crash",
            ),
            (
                vec![fact(
                    ECR,
                    &["backstage"],
                    Lookup::NotFound(
                        "ECR answered ImageNotFound: Requested image not found".into(),
                    ),
                )],
                &amd,
                Status::Fail,
                "image-not-found",
                "backstage image 123456789012.dkr.ecr.eu-west-1.amazonaws.com/backstage:1.4.2 does not exist: ECR answered ImageNotFound",
            ),
            (
                vec![fact(
                    "Kong:3",
                    &["kong"],
                    Lookup::Invalid("\"Kong:3\" is not an image reference: x".into()),
                )],
                &amd,
                Status::Fail,
                "image-reference-invalid",
                "kong: \"Kong:3\" is not an image reference",
            ),
            (
                vec![fact(
                    "ghcr.io/a/kong:latest",
                    &["kong"],
                    built_for(&["amd64"]),
                )],
                &amd,
                Status::Warn,
                "image-tag-latest",
                "kong image ghcr.io/a/kong:latest floats on :latest",
            ),
            (
                vec![fact("ghcr.io/a/kong", &["kong"], built_for(&["amd64"]))],
                &amd,
                Status::Warn,
                "image-tag-latest",
                "has no tag (so :latest)",
            ),
            (
                vec![fact("kong:3.9", &["kong"], built_for(&["amd64", "arm64"]))],
                &amd,
                Status::Warn,
                "image-unpinned-docker-hub",
                "kong image docker.io/library/kong:3.9 is pulled from Docker Hub without a digest",
            ),
            (
                vec![fact(
                    &format!("kong:3.9@{DIGEST}"),
                    &["kong"],
                    built_for(&["amd64"]),
                )],
                &amd,
                Status::Pass,
                "image-architecture-matches",
                "1 image(s)",
            ),
            // A definite finding outranks a warning and an image that could not be read.
            (
                vec![
                    fact("kong", &["kong"], built_for(&["amd64"])),
                    fact("ghcr.io/a/b:1", &["grafana-sqlite"], forbidden.clone()),
                    fact(ECR, &["backstage"], built_for(&["arm64"])),
                ],
                &amd,
                Status::Fail,
                "image-architecture-mismatch",
                "grafana-sqlite image ghcr.io/a/b:1: not allowed to ecr:BatchGetImage",
            ),
            (
                vec![fact("ghcr.io/a/b:1", &["kong"], forbidden)],
                &amd,
                Status::Fail,
                "aws-forbidden",
                "kong image ghcr.io/a/b:1: not allowed",
            ),
            (
                vec![fact(ECR, &["backstage"], built_for(&["amd64"]))],
                &none,
                Status::Fail,
                "no-ready-nodes",
                "no Ready, schedulable node",
            ),
            (
                vec![fact(
                    ECR,
                    &["backstage"],
                    Lookup::Platforms(BTreeSet::new()),
                )],
                &amd,
                Status::Fail,
                "image-architecture-mismatch",
                "built for no platform",
            ),
        ];
        for (images, nodes, status, code, needle) in cases {
            let o = judge(&images, nodes, "the Applications of tier 1");
            assert_eq!((o.status, o.code.as_str()), (status, code), "{o:#?}");
            assert!(
                o.message.contains(needle),
                "{:?} lacks {needle:?}",
                o.message
            );
            if status != Status::Pass {
                assert!(o.hint.is_some(), "{o:#?}");
            }
        }
    }

    #[test]
    fn hints_say_how_to_fix_and_where_the_image_is_set() {
        let amd = nodes(&[("amd64", 3)]);
        let o = judge(
            &[fact(ECR, &["backstage"], built_for(&["arm64"]))],
            &amd,
            "",
        );
        let hint = o.hint.expect("hint");
        assert!(hint.contains("docker buildx build --platform linux/amd64,linux/arm64 -t 123456789012.dkr.ecr.eu-west-1.amazonaws.com/backstage:1.4.2 --push ."), "{hint}");
        assert!(
            hint.contains("It is set in checks.image-architecture.images."),
            "{hint}"
        );
        let missing = judge(
            &[fact(ECR, &["backstage"], Lookup::NotFound("x".into()))],
            &amd,
            "",
        );
        assert!(missing.hint.expect("hint").contains("aws ecr describe-images --registry-id 123456789012 --region eu-west-1 --repository-name backstage"));
        let hub = judge(
            &[fact(
                "grafana/grafana:11.3.0",
                &["grafana-sqlite"],
                built_for(&["amd64"]),
            )],
            &amd,
            "",
        );
        assert!(hub.hint.expect("hint").contains("ECR pull-through cache"));
    }

    #[test]
    fn an_unreadable_image_retries_only_when_it_may_help() {
        let amd = nodes(&[("amd64", 1)]);
        let unreachable = |transient| {
            vec![fact(
                "ghcr.io/a/b:1",
                &["kong"],
                Lookup::Unreadable {
                    outcome: Outcome::fail("registry-unreachable", "cannot reach ghcr.io"),
                    transient,
                },
            )]
        };
        for transient in [true, false] {
            let images = unreachable(transient);
            let o = judge(&images, &amd, "");
            assert_eq!(unreadable_retry(&o, &images), Some(transient));
        }
        let images = vec![fact(ECR, &["backstage"], built_for(&["arm64"]))];
        assert_eq!(unreadable_retry(&judge(&images, &amd, ""), &images), None);
    }

    #[test]
    fn counts_ready_schedulable_nodes_by_platform() {
        let docs: Vec<NodeDoc> = serde_saphyr::from_str(
            "- status: {nodeInfo: {architecture: amd64, operatingSystem: linux}, conditions: [{type: Ready, status: 'True'}]}\n- status: {nodeInfo: {architecture: arm64, operatingSystem: linux}, conditions: [{type: Ready, status: 'True'}]}\n- status: {nodeInfo: {architecture: arm64, operatingSystem: linux}, conditions: [{type: Ready, status: 'False'}]}\n- spec: {unschedulable: true}\n  status: {nodeInfo: {architecture: s390x, operatingSystem: linux}, conditions: [{type: Ready, status: 'True'}]}\n",
        )
        .expect("parses");
        let mut platforms = NodePlatforms::new();
        for d in docs {
            count_node(&mut platforms, d);
        }
        assert_eq!(platforms, nodes(&[("amd64", 1), ("arm64", 1)]));
    }

    fn settings(yaml: &str) -> ImageArchitectureSettings {
        serde_saphyr::from_str(yaml).expect("settings parse")
    }

    #[test]
    fn settings_reject_unknown_apps_and_bad_references() {
        for (yaml, needle) in [
            (
                "images: [{app: nope, image: 'a:1'}]",
                "unknown app \"nope\"",
            ),
            (
                "images: [{app: kong, image: 'Kong:1'}]",
                "not an image reference",
            ),
            ("pullSecrets: [just-a-name]", "not namespace/name"),
        ] {
            let e = serde_saphyr::from_str::<ImageArchitectureSettings>(yaml).expect_err(yaml);
            assert!(e.to_string().contains(needle), "{yaml}: {e}");
        }
    }

    #[test]
    fn collects_the_images_of_the_gates_tiers_once() {
        let s = settings(
            "images:\n- {app: kong, image: 'ghcr.io/a/kong:1'}\n- {app: backstage, image: 'ghcr.io/a/backstage:1'}\n",
        );
        let apps: Vec<ApplicationDoc> = serde_saphyr::from_str(
            "- metadata: {name: kong, labels: {goldenpath.idp/tier: '1'}}\n  spec: {source: {helm: {parameters: [{name: image, value: 'ghcr.io/a/kong:1'}]}}}\n- metadata: {name: prometheus, labels: {goldenpath.idp/tier: '1.5'}}\n  spec: {source: {helm: {valuesObject: {image: {repository: quay.io/p/p, tag: v3}}}}}\n- metadata: {name: root}\n  spec: {source: {helm: {parameters: [{name: image, value: 'ghcr.io/root:1'}]}}}\n",
        )
        .expect("parses");
        let at = |tier| {
            ImageArchitecture::new(s.clone(), tier)
                .collect(&apps)
                .into_iter()
                .map(|f| (f.shown, f.apps, f.places.len()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            at(Tier::One),
            vec![("ghcr.io/a/kong:1".to_owned(), vec!["kong".to_owned()], 2)]
        );
        assert_eq!(at(Tier::OneAndHalf).len(), 2);
        assert_eq!(at(Tier::Two).len(), 3);
    }

    #[test]
    fn reads_declare_the_repositories_nodes_applications_and_pull_secrets() {
        let s = settings(&format!(
            "discover: false\nimages: [{{app: kong, image: '{ECR}'}}, {{app: kong, image: 'ghcr.io/a/b:1'}}]\npullSecrets: [kong/registry]\n"
        ));
        let reads = ImageArchitecture::new(s, Tier::One).reads();
        assert_eq!(
            reads.iam,
            [
                IamGrant {
                    action: "ecr:BatchGetImage",
                    resource: "arn:aws:ecr:eu-west-1:123456789012:repository/backstage".into()
                },
                IamGrant {
                    action: "ecr:GetDownloadUrlForLayer",
                    resource: "arn:aws:ecr:eu-west-1:123456789012:repository/backstage".into()
                },
            ]
        );
        assert_eq!(
            reads.kube,
            vec![NODES.everywhere(), KubeRead::secret("kong", "registry")]
        );
        let discovering =
            ImageArchitecture::new(ImageArchitectureSettings::default(), Tier::One).reads();
        assert!(discovering.kube.contains(&APPLICATIONS.within("argocd")));
        assert!(
            discovering
                .iam
                .iter()
                .all(|g| g.resource == ANY_ECR_REPOSITORY),
            "{discovering:?}"
        );
    }
}
