//! Image registries for the `image-architecture` tests, on loopback:
//!
//! - [`Registry`]: an OCI distribution endpoint (`/v2/…`) over plain HTTP serving real
//!   manifests (Docker schema 2 and OCI, single-platform with their config blobs, and image
//!   indexes) under digests computed with SHA-256 over their exact bytes, answering
//!   `404 MANIFEST_UNKNOWN` for a missing tag, and guarding everything behind the bearer-token
//!   flow registries use (`401` with `WWW-Authenticate: Bearer realm=…`, then a token from
//!   its `/token` endpoint), anonymous or for a user with a password. Blob downloads redirect
//!   to a `/storage/` path that needs no token, as registries redirect to their storage.
//! - [`EcrFront`]: a stub in front of moto's ECR. moto raises `NotImplementedError` for
//!   `GetDownloadUrlForLayer`, so the stub answers that one operation itself, in the shape
//!   AWS documents (`downloadUrl`, `layerDigest`; `LayersNotFoundException` for an unknown
//!   digest), with a URL of the registry's storage, and forwards every other request to
//!   moto unchanged. It first forwards that one to moto too, which authorizes it like any
//!   ECR action before failing: when moto enforces IAM and refuses the caller, its refusal
//!   is the answer.
//!
//! Both can instead point their storage URLs somewhere else ([`Registry::redirect_storage_to`],
//! [`EcrFront::hand_out`]), e.g. a closed port with a presigned query, to see what a failed
//! download reports.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::{CancellationToken, DropGuard};

pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// `sha256:` and the hex SHA-256 of `bytes`: a content digest.
pub(crate) fn digest(bytes: &[u8]) -> String {
    let hash = openssl::sha::sha256(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The bytes of a JSON document, as a registry stores them.
fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// An image config as `docker buildx` writes it for one platform.
pub(crate) fn config_blob(os: &str, architecture: &str) -> Vec<u8> {
    let mut config = json!({
        "architecture": architecture,
        "os": os,
        "created": "2026-11-30T10:00:00Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Entrypoint": ["/app"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"]},
        "history": [{"created": "2026-11-30T10:00:00Z", "created_by": "COPY app /app # buildkit"}]
    });
    if architecture == "arm64" {
        config["variant"] = json!("v8");
    }
    to_bytes(&config)
}

/// A single-platform manifest of `media_type` (Docker schema 2 or OCI) for a config.
pub(crate) fn manifest(media_type: &str, config: &[u8]) -> Vec<u8> {
    let (config_type, layer_type) = if media_type == OCI_MANIFEST {
        (
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip",
        )
    } else {
        (
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        )
    };
    to_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config_type, "digest": digest(config), "size": config.len()},
        "layers": [{"mediaType": layer_type, "digest": "sha256:4abcf20661432fb2d719aaf90656f55c287f8ca915dc1c92ec14ff61e67fbaf8", "size": 3623807}]
    }))
}

/// An image index (OCI, or a Docker manifest list) over single-platform manifests
/// `(manifest bytes, its media type, os, architecture)`, with buildx's attestation entry.
pub(crate) fn index(media_type: &str, entries: &[(Vec<u8>, &str, &str, &str)]) -> Vec<u8> {
    let mut manifests: Vec<Value> = entries
        .iter()
        .map(|(bytes, mt, os, arch)| {
            let mut platform = json!({"architecture": arch, "os": os});
            if *arch == "arm64" {
                platform["variant"] = json!("v8");
            }
            json!({"mediaType": mt, "digest": digest(bytes), "size": bytes.len(), "platform": platform})
        })
        .collect();
    if media_type == OCI_INDEX {
        manifests.push(json!({
            "mediaType": OCI_MANIFEST,
            "digest": "sha256:d1d8a4a2cb5e8c2c2b8c8c3b36e1dd0e4a9cb0ce3d0c3d1b5c9e2b8f6a7c4e21",
            "size": 566,
            "annotations": {"vnd.docker.reference.digest": digest(&entries[0].0), "vnd.docker.reference.type": "attestation-manifest"},
            "platform": {"architecture": "unknown", "os": "unknown"}
        }));
    }
    to_bytes(&json!({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}))
}

/// The documents of one image: its top manifest (pushed under the tag) and what it
/// references (manifests by digest, config blobs).
pub(crate) struct ImageDocs {
    /// The media type of the top manifest.
    pub(crate) media_type: &'static str,
    /// The top manifest's bytes.
    pub(crate) manifest: Vec<u8>,
    /// Manifests an index references, with their media types.
    pub(crate) children: Vec<(&'static str, Vec<u8>)>,
    /// Config blobs.
    pub(crate) blobs: Vec<Vec<u8>>,
}

impl ImageDocs {
    /// A single-platform image, as an OCI or a Docker schema-2 manifest.
    pub(crate) fn single(architecture: &str, oci: bool) -> ImageDocs {
        let media_type = if oci { OCI_MANIFEST } else { DOCKER_MANIFEST };
        let config = config_blob("linux", architecture);
        ImageDocs {
            media_type,
            manifest: manifest(media_type, &config),
            children: Vec::new(),
            blobs: vec![config],
        }
    }

    /// A multi-platform image: an OCI index (with an attestation entry) or a Docker
    /// manifest list, over one manifest per architecture.
    pub(crate) fn multi(architectures: &[&str], oci: bool) -> ImageDocs {
        let (index_type, child_type) = if oci {
            (OCI_INDEX, OCI_MANIFEST)
        } else {
            (DOCKER_LIST, DOCKER_MANIFEST)
        };
        let mut children = Vec::new();
        let mut blobs = Vec::new();
        for arch in architectures {
            let config = config_blob("linux", arch);
            children.push((child_type, manifest(child_type, &config)));
            blobs.push(config);
        }
        let entries: Vec<(Vec<u8>, &str, &str, &str)> = children
            .iter()
            .zip(architectures)
            .map(|((mt, bytes), arch)| (bytes.clone(), *mt, "linux", *arch))
            .collect();
        ImageDocs {
            media_type: index_type,
            manifest: index(index_type, &entries),
            children,
            blobs,
        }
    }

    /// The digest of the top manifest.
    pub(crate) fn digest(&self) -> String {
        digest(&self.manifest)
    }
}

/// Who may read the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Auth {
    /// Anyone, with an anonymous token from `/token` (as Docker Hub and GHCR serve public
    /// images).
    AnonymousToken,
    /// Only a token issued to this user and password (basic credentials at `/token`).
    User(String, String),
}

/// One request the registry answered.
#[derive(Clone, Debug)]
pub(crate) struct Logged {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) status: u16,
    pub(crate) authorization: Option<String>,
}

#[derive(Default)]
struct State {
    /// (repository, tag or digest) → (media type, bytes).
    manifests: BTreeMap<(String, String), (String, Vec<u8>)>,
    blobs: BTreeMap<String, Vec<u8>>,
    tokens: BTreeSet<String>,
    log: Vec<Logged>,
    /// Where blob downloads redirect instead of `/storage/`.
    storage: Option<String>,
}

/// A local OCI distribution registry (see the module doc).
pub(crate) struct Registry {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    _stop: DropGuard,
}

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

fn respond(status: StatusCode, headers: &[(&str, String)], body: Vec<u8>) -> Response<Body> {
    let mut r = Response::builder().status(status);
    for (k, v) in headers {
        r = r.header(*k, v);
    }
    r.body(full(body)).unwrap()
}

fn errors(
    status: StatusCode,
    code: &str,
    message: &str,
    headers: &[(&str, String)],
) -> Response<Body> {
    let mut all = vec![("Content-Type", "application/json".to_owned())];
    all.extend(headers.iter().cloned());
    respond(
        status,
        &all,
        to_bytes(&json!({"errors": [{"code": code, "message": message, "detail": null}]})),
    )
}

/// Accepts plain-HTTP connections until the token is cancelled.
async fn serve<F, Fut>(listener: TcpListener, cancel: CancellationToken, handle: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    loop {
        let (tcp, _) = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => continue,
            },
        };
        let handle = handle.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let handle = handle.clone();
                async move { Ok::<_, Infallible>(handle(req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service);
            tokio::select! {
                () = cancel.cancelled() => {}
                _ = conn => {}
            }
        });
    }
}

impl Registry {
    /// Starts a registry on a free loopback port.
    pub(crate) async fn start(auth: Auth) -> Registry {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let cancel = CancellationToken::new();
        let shared = state.clone();
        tokio::spawn(serve(listener, cancel.clone(), move |req| {
            let state = shared.clone();
            let auth = auth.clone();
            async move { handle(&state, &auth, addr, &req) }
        }));
        Registry {
            addr,
            state,
            _stop: cancel.drop_guard(),
        }
    }

    /// `127.0.0.1:PORT`: the registry part of image references.
    pub(crate) fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stores an image's documents and tags its top manifest; returns its digest.
    pub(crate) fn push(&self, repository: &str, tag: &str, image: &ImageDocs) -> String {
        let mut s = self.state.lock().unwrap();
        let top = (image.media_type.to_owned(), image.manifest.clone());
        s.manifests
            .insert((repository.to_owned(), tag.to_owned()), top.clone());
        s.manifests
            .insert((repository.to_owned(), image.digest()), top);
        for (mt, bytes) in &image.children {
            s.manifests.insert(
                (repository.to_owned(), digest(bytes)),
                ((*mt).to_owned(), bytes.clone()),
            );
        }
        for blob in &image.blobs {
            s.blobs.insert(digest(blob), blob.clone());
        }
        image.digest()
    }

    /// Stores a blob only (a config another registry's manifest refers to).
    pub(crate) fn add_blob(&self, blob: &[u8]) -> String {
        let d = digest(blob);
        self.state
            .lock()
            .unwrap()
            .blobs
            .insert(d.clone(), blob.to_vec());
        d
    }

    /// Redirects every blob download to `url` (absolute) instead of its own storage.
    pub(crate) fn redirect_storage_to(&self, url: &str) {
        self.state.lock().unwrap().storage = Some(url.to_owned());
    }

    /// Every request answered so far.
    pub(crate) fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    fn has_blob(state: &Mutex<State>, digest: &str) -> bool {
        state.lock().unwrap().blobs.contains_key(digest)
    }
}

fn header(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn handle(
    state: &Mutex<State>,
    auth: &Auth,
    addr: SocketAddr,
    req: &Request<Incoming>,
) -> Response<Body> {
    let response = answer(state, auth, addr, req);
    state.lock().unwrap().log.push(Logged {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        status: response.status().as_u16(),
        authorization: header(req, "authorization"),
    });
    response
}

fn answer(
    state: &Mutex<State>,
    auth: &Auth,
    addr: SocketAddr,
    req: &Request<Incoming>,
) -> Response<Body> {
    use base64::Engine as _;
    let path = req.uri().path().to_owned();
    if path == "/token" {
        if let Auth::User(user, password) = auth {
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            );
            if header(req, "authorization").as_deref() != Some(expected.as_str()) {
                return errors(
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHORIZED",
                    "authentication required",
                    &[],
                );
            }
        }
        let query = req.uri().query().unwrap_or_default();
        let params: BTreeMap<String, String> = form_pairs(query);
        if params.get("service").map(String::as_str) != Some("test-registry")
            || !params.contains_key("scope")
        {
            return errors(
                StatusCode::BAD_REQUEST,
                "UNSUPPORTED",
                "service and scope are required",
                &[],
            );
        }
        let mut s = state.lock().unwrap();
        let token = format!("tok-{}-{}", s.tokens.len() + 1, params["scope"].len());
        s.tokens.insert(token.clone());
        return respond(
            StatusCode::OK,
            &[("Content-Type", "application/json".to_owned())],
            to_bytes(
                &json!({"token": token, "access_token": token, "expires_in": 300, "issued_at": "2026-12-03T10:00:00Z"}),
            ),
        );
    }
    if let Some(digest) = path.strip_prefix("/storage/") {
        // Presigned storage: the URL is the authorization.
        return match state.lock().unwrap().blobs.get(digest) {
            Some(b) => respond(
                StatusCode::OK,
                &[("Content-Type", "application/octet-stream".to_owned())],
                b.clone(),
            ),
            None => respond(StatusCode::NOT_FOUND, &[], b"NoSuchKey".to_vec()),
        };
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return errors(StatusCode::NOT_FOUND, "NOT_FOUND", "not found", &[]);
    };
    let (name, kind, reference) = if let Some((n, r)) = rest.rsplit_once("/manifests/") {
        (n, "manifests", r)
    } else if let Some((n, r)) = rest.rsplit_once("/blobs/") {
        (n, "blobs", r)
    } else {
        ("", "base", "")
    };
    let authorized = header(req, "authorization")
        .and_then(|a| a.strip_prefix("Bearer ").map(str::to_owned))
        .is_some_and(|t| state.lock().unwrap().tokens.contains(&t));
    if !authorized {
        let scope = if name.is_empty() {
            String::new()
        } else {
            format!(",scope=\"repository:{name}:pull\"")
        };
        return errors(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "authentication required",
            &[(
                "WWW-Authenticate",
                format!("Bearer realm=\"http://{addr}/token\",service=\"test-registry\"{scope}"),
            )],
        );
    }
    match kind {
        "manifests" => {
            let found = state
                .lock()
                .unwrap()
                .manifests
                .get(&(name.to_owned(), reference.to_owned()))
                .cloned();
            let Some((media_type, bytes)) = found else {
                return errors(
                    StatusCode::NOT_FOUND,
                    "MANIFEST_UNKNOWN",
                    "manifest unknown",
                    &[],
                );
            };
            let accept = header(req, "accept").unwrap_or_default();
            if !accept.split(',').any(|a| a.trim() == media_type) {
                // What distribution answers a client that does not accept the stored type.
                return errors(
                    StatusCode::NOT_FOUND,
                    "MANIFEST_UNKNOWN",
                    &format!("{media_type} found, but the accept header does not support it"),
                    &[],
                );
            }
            respond(
                StatusCode::OK,
                &[
                    ("Content-Type", media_type),
                    ("Docker-Content-Digest", digest(&bytes)),
                ],
                bytes,
            )
        }
        "blobs" if Registry::has_blob(state, reference) => {
            let location = state
                .lock()
                .unwrap()
                .storage
                .clone()
                .unwrap_or_else(|| format!("/storage/{reference}"));
            respond(
                StatusCode::TEMPORARY_REDIRECT,
                &[("Location", location)],
                Vec::new(),
            )
        }
        "blobs" => errors(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            "blob unknown to registry",
            &[],
        ),
        _ => respond(
            StatusCode::OK,
            &[("Content-Type", "application/json".to_owned())],
            b"{}".to_vec(),
        ),
    }
}

fn form_pairs(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The stub in front of moto's ECR (see the module doc).
pub(crate) struct EcrFront {
    addr: SocketAddr,
    download_urls: Arc<Mutex<usize>>,
    handed_out: Arc<Mutex<Option<String>>>,
    _stop: DropGuard,
}

const GET_DOWNLOAD_URL: &str = "AmazonEC2ContainerRegistry_V20150921.GetDownloadUrlForLayer";

impl EcrFront {
    /// Starts the stub, forwarding to moto at `moto_url` and handing out URLs of
    /// `registry`'s storage.
    pub(crate) async fn start(moto_url: &str, registry: &Registry) -> EcrFront {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let moto: SocketAddr = moto_url.trim_start_matches("http://").parse().unwrap();
        let cancel = CancellationToken::new();
        let download_urls = Arc::new(Mutex::new(0));
        let handed_out: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let storage = registry.url();
        let blobs = registry.state.clone();
        let counter = download_urls.clone();
        let fixed = handed_out.clone();
        tokio::spawn(serve(listener, cancel.clone(), move |req| {
            let storage = storage.clone();
            let blobs = blobs.clone();
            let counter = counter.clone();
            let fixed = fixed.lock().unwrap().clone();
            async move { front(req, moto, &storage, fixed, &blobs, &counter).await }
        }));
        EcrFront {
            addr,
            download_urls,
            handed_out,
            _stop: cancel.drop_guard(),
        }
    }

    /// Answers `GetDownloadUrlForLayer` with `url` (for a blob ECR has) from now on.
    pub(crate) fn hand_out(&self, url: &str) {
        *self.handed_out.lock().unwrap() = Some(url.to_owned());
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_ECR`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many `GetDownloadUrlForLayer` calls it answered.
    pub(crate) fn download_urls(&self) -> usize {
        *self.download_urls.lock().unwrap()
    }

    /// Points a preflight run at moto for AWS and at this stub for ECR.
    pub(crate) fn env(&self, cmd: &mut tokio::process::Command) {
        cmd.env("AWS_ENDPOINT_URL_ECR", self.url());
    }
}

async fn front(
    req: Request<Incoming>,
    moto: SocketAddr,
    storage: &str,
    fixed: Option<String>,
    blobs: &Mutex<State>,
    counter: &Mutex<usize>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if target == GET_DOWNLOAD_URL {
        // moto authorizes the action before finding it not implemented (500): a 4xx is the
        // caller refused.
        let authorized = forward(parts.clone(), body.clone(), moto).await;
        if authorized.status().is_client_error() {
            return authorized;
        }
        *counter.lock().unwrap() += 1;
        let request: Value = serde_json::from_slice(&body).unwrap_or_default();
        let layer = request["layerDigest"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let json_type = ("Content-Type", "application/x-amz-json-1.1".to_owned());
        if !Registry::has_blob(blobs, &layer) {
            return respond(
                StatusCode::BAD_REQUEST,
                &[json_type],
                to_bytes(
                    &json!({"__type": "LayersNotFoundException", "message": format!("The layer with digest '{layer}' does not exist in the repository")}),
                ),
            );
        }
        let url = fixed.unwrap_or_else(|| format!("{storage}/storage/{layer}"));
        return respond(
            StatusCode::OK,
            &[json_type],
            to_bytes(&json!({"downloadUrl": url, "layerDigest": layer})),
        );
    }
    forward(parts, body, moto).await
}

/// Sends a request to moto as it came, and its answer back as it went.
async fn forward(parts: http::request::Parts, body: Bytes, moto: SocketAddr) -> Response<Body> {
    let failed = |why: String| respond(StatusCode::BAD_GATEWAY, &[], why.into_bytes());
    let tcp = match TcpStream::connect(moto).await {
        Ok(t) => t,
        Err(e) => return failed(format!("moto: {e}")),
    };
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await {
        Ok(c) => c,
        Err(e) => return failed(format!("moto: {e}")),
    };
    tokio::spawn(conn);
    let request = Request::from_parts(parts, Full::new(body));
    match sender.send_request(request).await {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            let bytes = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Response::from_parts(parts, full(bytes))
        }
        Err(e) => failed(format!("moto: {e}")),
    }
}

/// ECR in moto, for setting up repositories and images.
pub(crate) async fn ecr(moto: &super::moto::Moto) -> aws_sdk_ecr::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto.url)
        .region(aws_config::Region::new(super::moto::REGION))
        .credentials_provider(aws_sdk_ecr::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await;
    aws_sdk_ecr::Client::new(&config)
}

/// Creates an ECR repository in moto's account and returns the registry host
/// (`123456789012.dkr.ecr.eu-west-1.amazonaws.com`).
pub(crate) async fn create_repository(moto: &super::moto::Moto, name: &str) -> String {
    let created = ecr(moto)
        .await
        .create_repository()
        .repository_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("moto creates repository {name}: {e:?}"));
    let uri = created
        .repository()
        .and_then(|r| r.repository_uri())
        .expect("a repository URI")
        .to_owned();
    uri.split('/').next().unwrap().to_owned()
}

/// Pushes an image's manifests to an ECR repository as `docker push` does (PutImage with
/// the manifest and its media type; an index's children by digest first), under their real
/// digests.
pub(crate) async fn put_image(
    moto: &super::moto::Moto,
    repository: &str,
    tag: &str,
    image: &ImageDocs,
) {
    let ecr = ecr(moto).await;
    for (mt, bytes) in &image.children {
        ecr.put_image()
            .repository_name(repository)
            .image_manifest(String::from_utf8(bytes.clone()).unwrap())
            .image_manifest_media_type(*mt)
            .image_digest(digest(bytes))
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto takes the child manifest: {e:?}"));
    }
    ecr.put_image()
        .repository_name(repository)
        .image_manifest(String::from_utf8(image.manifest.clone()).unwrap())
        .image_manifest_media_type(image.media_type)
        .image_tag(tag)
        .image_digest(image.digest())
        .send()
        .await
        .unwrap_or_else(|e| panic!("moto takes the image {repository}:{tag}: {e:?}"));
}
