//! Reading an image's platforms from its registry: the manifest and image index types, ECR
//! through `BatchGetImage` and `GetDownloadUrlForLayer`, and every other registry through the
//! OCI distribution API (`WWW-Authenticate` challenges, bearer and basic tokens, pull secrets'
//! `.dockerconfigjson`, blob redirects to storage).
//!
//! Apart from the check because it is a registry client, not a judgement: it answers which
//! platforms an image is built for, or why that could not be read, and knows nothing of
//! nodes, apps or gates. It imports nothing of the check.
//!
//! Registry URLs never reach a message, evidence or log with their query: ECR's download URLs
//! and registries' storage redirects are presigned, their query a bearer credential.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;

use super::reference::{DOCKER_HUB, EcrRegistry, ImageRef};
use crate::check::{Attempt, Retry};
use crate::checks::aws;
use crate::outcome::{Outcome, error_chain};

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
pub(super) struct Platform {
    pub(super) os: String,
    pub(super) architecture: String,
    pub(super) variant: Option<String>,
}

impl Platform {
    pub(super) fn new(os: &str, architecture: &str) -> Self {
        Platform {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: None,
        }
    }

    /// Whether a node of this platform runs an image built for `image`: same OS and
    /// architecture; nodes do not report a variant.
    pub(super) fn runs(&self, image: &Platform) -> bool {
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
enum Parsed {
    /// An image index (manifest list): the platforms of its entries.
    Index(BTreeSet<Platform>),
    /// A single-platform manifest: its platform is in the config blob.
    Single { config: String },
    /// A schema-1 manifest, which names its architecture.
    Platform(Platform),
}

/// Reads a manifest of `media_type` (the registry's `Content-Type`, or ECR's
/// `imageManifestMediaType`; the document's own `mediaType` when absent).
fn parse_manifest(media_type: Option<&str>, body: &[u8]) -> Result<Parsed, String> {
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
fn parse_config(body: &[u8]) -> Result<Platform, String> {
    let doc: PlatformDoc =
        serde_json::from_slice(body).map_err(|e| format!("the image config is not JSON: {e}"))?;
    doc.platform()
        .ok_or_else(|| "the image config declares no architecture".to_owned())
}

// ---------------------------------------------------------------------------------------------
// Pull secrets

/// Credentials for one registry, from a pull secret. Never printed.
#[derive(Clone)]
pub(super) struct Credentials {
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
pub(super) fn parse_docker_config(text: &str) -> Result<BTreeMap<String, Credentials>, String> {
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

// ---------------------------------------------------------------------------------------------
// Responses and failures

/// Why an image's platforms could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum LookupError {
    /// The tag or repository does not exist; the registry's words.
    NotFound(String),
    /// It could not be read (forbidden, unreachable, bad credentials): the outcome to report,
    /// and whether trying again may help.
    Unreadable { outcome: Outcome, transient: bool },
}

/// The most of a manifest, config or token response preflight reads.
const MAX_BODY: usize = 4 << 20;

/// Reads a response body, at most [`MAX_BODY`] bytes.
async fn body(mut response: reqwest::Response, what: &str) -> Result<Vec<u8>, LookupError> {
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
                    format!("reading {what} failed: {}", http_error(e)),
                    "",
                ));
            }
        }
    }
}

/// An image that could not be read: a failed outcome of `code` (with `hint` unless empty),
/// and whether trying again may help.
pub(super) fn unreadable(transient: bool, code: &str, message: String, hint: &str) -> LookupError {
    let mut outcome = Outcome::fail(code, message);
    if !hint.is_empty() {
        outcome = outcome.hint(hint);
    }
    LookupError::Unreadable { outcome, transient }
}

/// What a request's failure says, without its URL. reqwest's errors end with `for url (…)`,
/// and the URLs here may be presigned (ECR's download URL, a registry's redirect to its
/// storage): their query (`X-Amz-Signature`, `X-Amz-Security-Token`) is a bearer credential
/// that must reach no report or log.
fn http_error(e: reqwest::Error) -> String {
    error_chain(&e.without_url())
}

/// A URL as messages name it: its host only, for the same reason.
fn host_of(url: &reqwest::Url) -> String {
    url.host_str().unwrap_or("(no host)").to_owned()
}

/// A failure to reach a URL: refused, timed out, TLS.
fn unreachable(url: &reqwest::Url, e: reqwest::Error) -> LookupError {
    let host = host_of(url);
    unreadable(
        true,
        "registry-unreachable",
        format!("cannot reach {host}: {}", http_error(e)),
        "Check the network path from the nodes' subnets to the registry (NAT gateway, proxy, VPC endpoints for ECR), and for a registry served over plain HTTP list it in checks.image-architecture.insecureRegistries.",
    )
}

/// Follows up to five redirects of a blob download, as registries redirect to their storage.
async fn follow(
    http: &reqwest::Client,
    mut response: reqwest::Response,
    what: &str,
) -> Result<reqwest::Response, LookupError> {
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
            .map_err(|e| unreachable(&location, e))?;
    }
    Err(unreadable(
        false,
        "registry-error",
        format!("{what} redirects more than five times"),
        "",
    ))
}

// ---------------------------------------------------------------------------------------------
// The OCI distribution API

/// A `WWW-Authenticate` challenge: the scheme and its parameters.
#[derive(Debug, PartialEq, Eq)]
struct Challenge {
    scheme: String,
    params: BTreeMap<String, String>,
}

/// Parses `Bearer realm="…",service="…",scope="…"` (quoted values may hold commas).
fn parse_challenge(header: &str) -> Option<Challenge> {
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

    fn url(&self, path: &str) -> Result<reqwest::Url, LookupError> {
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

    async fn send(
        &self,
        url: &reqwest::Url,
        accept: &str,
    ) -> Result<reqwest::Response, LookupError> {
        let mut request = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, accept);
        if let Some(a) = &self.authorization {
            request = request.header(reqwest::header::AUTHORIZATION, a);
        }
        request.send().await.map_err(|e| unreachable(url, e))
    }

    /// GETs a path of the repository, answering one `401` challenge (a token from the
    /// realm, or basic credentials) and trying once more.
    async fn get(&mut self, path: &str, accept: &str) -> Result<reqwest::Response, LookupError> {
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
    async fn authorize(&self, challenge: Option<Challenge>) -> Result<String, LookupError> {
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
                    // Named without its query, which only the token service should read.
                    let shown = realm.split(['?', '#']).next().unwrap_or_default();
                    unreadable(
                        false,
                        "registry-auth-failed",
                        format!("{registry}'s token realm {shown:?} is not a URL: {e}"),
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
                let response = request.send().await.map_err(|e| unreachable(&url, e))?;
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

    fn auth_failed(&self, why: &str) -> LookupError {
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
    async fn manifest(&mut self) -> Result<(Option<String>, Vec<u8>), LookupError> {
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
    ) -> LookupError {
        let registry = &self.image.registry;
        let bytes = body(response, "the error").await.unwrap_or_default();
        let error = registry_error(&bytes);
        let said = match &error {
            Some((code, message)) => format!("{status} {code}: {message}"),
            None => status.to_string(),
        };
        match status.as_u16() {
            404 => LookupError::NotFound(format!("{registry} answered {said}")),
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
    async fn blob(&mut self, digest: &str) -> Result<Vec<u8>, LookupError> {
        let response = self.get(&format!("blobs/{digest}"), "*/*").await?;
        let response = follow(self.http, response, "the image config").await?;
        let status = response.status();
        if status.is_success() {
            return body(response, "the image config").await;
        }
        Err(self.refused(status, response, "the image config").await)
    }
}

/// Reads a non-ECR image's platforms through the OCI distribution API.
pub(super) async fn registry_platforms(
    http: &reqwest::Client,
    image: &ImageRef,
    insecure: bool,
    credentials: Option<&Credentials>,
) -> Result<BTreeSet<Platform>, LookupError> {
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
// ECR

/// GETs a URL ECR handed out (a presigned S3 URL), as it needs no other authorization.
async fn download(http: &reqwest::Client, url: &str, what: &str) -> Result<Vec<u8>, LookupError> {
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
        .map_err(|e| unreachable(&url, e))?;
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
pub(super) fn aws_failure(attempt: Attempt) -> LookupError {
    LookupError::Unreadable {
        transient: attempt.retry != Retry::Never,
        outcome: attempt.outcome,
    }
}

/// Reads an ECR image's platforms: `BatchGetImage` in the image's region and registry, and
/// for a single-platform manifest its config through `GetDownloadUrlForLayer`.
pub(super) async fn ecr_platforms(
    ecr: &aws_sdk_ecr::Client,
    http: Option<&reqwest::Client>,
    image: &ImageRef,
    registry: &EcrRegistry,
) -> Result<BTreeSet<Platform>, LookupError> {
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
                return Err(LookupError::NotFound(format!(
                    "ECR answered RepositoryNotFoundException: {}",
                    err.message().unwrap_or("the repository does not exist")
                )));
            }
            return Err(aws_failure(aws::failure("ecr:BatchGetImage", &what, &e)));
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
            | "MissingDigestAndTag" => {
                LookupError::NotFound(format!("ECR answered {code}: {reason}"))
            }
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
                return Err(LookupError::NotFound(format!(
                    "ECR has no config blob {config} for it ({})",
                    e.as_service_error()
                        .and_then(|s| s.meta().code())
                        .unwrap_or("LayersNotFoundException")
                )));
            }
            return Err(aws_failure(aws::failure(
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

#[cfg(test)]
mod tests {
    use super::*;

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

    /// reqwest names the URL in its errors; a presigned one's query is a credential.
    #[tokio::test]
    async fn failed_requests_name_no_presigned_url() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let url = reqwest::Url::parse(&format!(
            "http://{closed}/layer?X-Amz-Security-Token=canary-token&X-Amz-Signature=canary-signature"
        ))
        .expect("a URL");
        let e = reqwest::Client::new()
            .get(url.clone())
            .send()
            .await
            .expect_err("the port is closed");
        assert!(
            e.to_string().contains("canary"),
            "reqwest names the URL: {e}"
        );
        let LookupError::Unreadable { outcome, transient } = unreachable(&url, e) else {
            panic!("unreadable")
        };
        assert!(transient);
        assert!(
            outcome.message.starts_with("cannot reach 127.0.0.1: ")
                && !format!("{outcome:?}").contains("canary")
                && !format!("{outcome:?}").contains("X-Amz"),
            "{outcome:?}"
        );
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
}
