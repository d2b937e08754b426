//! fake-kube: an in-process fake Kubernetes API server for preflight's tests.
//!
//! It speaks enough of the real API for kube-rs and kubectl: HTTPS with bearer-token auth,
//! discovery (`/api`, `/apis`, group and resource lists), get, list with `limit`/`continue`,
//! watch from a resource version (with the history that makes list-then-watch race-free),
//! field and label selectors, and the real error bodies: `Status` objects for 401/403/404/410
//! and the plain-text `404 page not found` for a group/version nobody serves. Custom resources
//! are served only once their CustomResourceDefinition is applied, as on a real cluster.
//! Faults can be injected: revoked tokens, RBAC denials, transient 5xx, a blackholed endpoint.

mod api;
mod store;
mod tls;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use anyhow::Context as _;
use base64::Engine as _;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use openssl::ssl::Ssl;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_openssl::SslStream;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::store::State;
pub use crate::tls::{TestCertificates, test_certificates};

/// One request the server received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `POST`…
    pub method: String,
    /// The path, e.g. `/api/v1/nodes`.
    pub path: String,
    /// The raw query string, e.g. `limit=500&continue=…`.
    pub query: String,
}

/// State shared by the handle and the connection tasks.
pub(crate) struct Shared {
    state: RwLock<State>,
    token: String,
    user: Mutex<String>,
    version: Mutex<Value>,
    revoked: AtomicBool,
    blackhole: AtomicBool,
    fail_next: AtomicUsize,
    fail_code: AtomicU16,
    denied: Mutex<Vec<(String, String, String)>>,
    requests: Mutex<Vec<RequestRecord>>,
    cancel: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not turn every later request into a second panic.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn state_mut(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn user(&self) -> String {
        lock(&self.user).clone()
    }

    pub(crate) fn version(&self) -> Value {
        lock(&self.version).clone()
    }

    pub(crate) fn is_denied(&self, verb: &str, group: &str, resource: &str) -> bool {
        lock(&self.denied)
            .iter()
            .any(|(v, g, r)| (v == "*" || v == verb) && g == group && r == resource)
    }
}

/// A running fake API server. Cloning shares it; dropping the last handle stops it and every
/// connection and watch it serves.
#[derive(Clone)]
pub struct FakeKube {
    shared: Arc<Shared>,
    addr: SocketAddr,
    ca_pem: String,
    _stop: Arc<DropGuard>,
}

impl std::fmt::Debug for FakeKube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKube")
            .field("url", &self.url())
            .finish()
    }
}

fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 24];
    openssl::rand::rand_bytes(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

impl FakeKube {
    /// Starts a server on an ephemeral port of 127.0.0.1. Call inside a Tokio runtime.
    pub async fn start() -> anyhow::Result<FakeKube> {
        let tls = tls::generate().context("cannot make the test certificates")?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let shared = Arc::new(Shared {
            state: RwLock::new(State::new()),
            token: random_token()?,
            user: Mutex::new("system:serviceaccount:argocd:preflight".into()),
            version: Mutex::new(version_info("v1.31.13-eks-ecaa3a6", "1", "31+")),
            revoked: AtomicBool::new(false),
            blackhole: AtomicBool::new(false),
            fail_next: AtomicUsize::new(0),
            fail_code: AtomicU16::new(503),
            denied: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            cancel: cancel.clone(),
        });
        tokio::spawn(serve(listener, Arc::new(tls.acceptor), shared.clone()));
        Ok(FakeKube {
            shared,
            addr,
            ca_pem: tls.ca_pem,
            _stop: Arc::new(cancel.drop_guard()),
        })
    }

    /// `https://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The bearer token the server accepts.
    #[must_use]
    pub fn token(&self) -> String {
        self.shared.token.clone()
    }

    /// The PEM of the CA that signed the server's certificate.
    #[must_use]
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// A kubeconfig for this server: cluster, user and context `fake`.
    #[must_use]
    pub fn kubeconfig_yaml(&self) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\nusers:\n- name: fake\n  user:\n    token: {}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\n",
            self.url(),
            self.shared.token
        )
    }

    /// Writes [`Self::kubeconfig_yaml`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    /// The user name 403 messages and SelfSubjectReview report.
    pub fn set_user(&self, name: &str) {
        *lock(&self.shared.user) = name.to_owned();
    }

    /// From now on every request gets 401, as with an expired token.
    pub fn revoke_token(&self) {
        self.shared.revoked.store(true, Ordering::SeqCst);
    }

    /// What `/version` reports.
    pub fn set_version(&self, git_version: &str, major: &str, minor: &str) {
        *lock(&self.shared.version) = version_info(git_version, major, minor);
    }

    /// Creates or replaces an object; watches see ADDED or MODIFIED.
    pub fn apply(&self, obj: Value) -> anyhow::Result<()> {
        self.shared.state_mut().apply(obj)
    }

    /// Applies every object of a YAML stream; a `*List` document applies its items.
    pub fn apply_yaml(&self, yaml: &str) -> anyhow::Result<()> {
        let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).context("invalid YAML")?;
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            self.apply_document(doc)?;
        }
        Ok(())
    }

    fn apply_document(&self, doc: Value) -> anyhow::Result<()> {
        if doc["kind"].as_str().is_some_and(|k| k.ends_with("List")) {
            let api_version = doc["apiVersion"].clone();
            let kind = doc["kind"]
                .as_str()
                .unwrap_or_default()
                .trim_end_matches("List")
                .to_owned();
            for mut item in doc["items"].as_array().cloned().unwrap_or_default() {
                // Items of built-in lists omit their type, as real servers send them.
                if item.get("kind").is_none() {
                    item["kind"] = json!(kind);
                    item["apiVersion"] = api_version.clone();
                }
                self.apply(item)?;
            }
            Ok(())
        } else {
            self.apply(doc)
        }
    }

    /// Loads a `.json` or `.yaml` file of objects or lists.
    pub fn load_file(&self, path: &Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if path.extension().is_some_and(|e| e == "json") {
            self.apply_document(
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not JSON", path.display()))?,
            )
        } else {
            self.apply_yaml(&text)
                .with_context(|| format!("cannot load {}", path.display()))
        }
    }

    /// Deletes an object; watches see DELETED. Deleting a CRD stops serving its resources.
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> anyhow::Result<()> {
        self.shared
            .state_mut()
            .delete(api_version, kind, namespace, name)
    }

    /// The stored object, if any.
    #[must_use]
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        self.shared.state().get(api_version, kind, namespace, name)
    }

    /// Changes an object in place; watches see MODIFIED.
    pub fn update(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> anyhow::Result<()> {
        let mut state = self.shared.state_mut();
        let mut obj = state
            .get(api_version, kind, namespace, name)
            .with_context(|| format!("{kind} {name} does not exist"))?;
        f(&mut obj);
        state.apply(obj)
    }

    /// RBAC: `verb` (`get`, `list`, `watch`, `create` or `*`) on `resource` in `group` is
    /// answered 403, with the real message shape.
    pub fn deny(&self, verb: &str, group: &str, resource: &str) {
        lock(&self.shared.denied).push((verb.into(), group.into(), resource.into()));
    }

    /// Accepts connections but never answers: packets dropped by a firewall look like this.
    pub fn blackhole(&self, on: bool) {
        self.shared.blackhole.store(on, Ordering::SeqCst);
    }

    /// The next `n` API requests answer `code` (429, 500, 503…) with a `Status` body.
    pub fn fail_next(&self, n: usize, code: u16) {
        self.shared.fail_code.store(code, Ordering::SeqCst);
        self.shared.fail_next.store(n, Ordering::SeqCst);
    }

    /// Every request served so far.
    #[must_use]
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.requests).clone()
    }
}

fn version_info(git_version: &str, major: &str, minor: &str) -> Value {
    json!({
        "major": major, "minor": minor, "gitVersion": git_version,
        "gitCommit": "1e4f2c5d0d7b1c4a0f1e9e1b2d3c4a5b6c7d8e9f", "gitTreeState": "clean",
        "buildDate": "2025-10-22T09:12:33Z", "goVersion": "go1.22.5", "compiler": "gc", "platform": "linux/amd64"
    })
}

async fn serve(
    listener: TcpListener,
    acceptor: Arc<openssl::ssl::SslAcceptor>,
    shared: Arc<Shared>,
) {
    loop {
        let tcp = tokio::select! {
            () = shared.cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(_) => continue,
            },
        };
        let shared = shared.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let cancel = shared.cancel.clone();
            if shared.blackhole.load(Ordering::SeqCst) {
                // Hold the connection open and say nothing, like a dropped-packets firewall.
                cancel.cancelled().await;
                drop(tcp);
                return;
            }
            let Ok(ssl) = Ssl::new(acceptor.context()) else {
                return;
            };
            let Ok(mut stream) = SslStream::new(ssl, tcp) else {
                return;
            };
            if std::pin::Pin::new(&mut stream).accept().await.is_err() {
                return;
            }
            let service = service_fn(move |req| api::handle(shared.clone(), req));
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                () = cancel.cancelled() => {}
                _ = connection => {}
            }
        });
    }
}

/// `n` realistic nodes cloned from `template` (e.g. the real EKS node fixture), each with its
/// own name, hostname, address, provider id and uid; `ready` sets their Ready condition.
/// Names are deterministic: `ip-10-0-{i / 250}-{i % 250 + 1}.ec2.internal`.
#[must_use]
pub fn nodes_from_template(template: &Value, n: usize, ready: bool) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let ip = format!("10.0.{}.{}", i / 250, i % 250 + 1);
            let name = format!("ip-{}.ec2.internal", ip.replace('.', "-"));
            let mut node = template.clone();
            // Items of a NodeList carry no type; a stored object must.
            node["apiVersion"] = json!("v1");
            node["kind"] = json!("Node");
            let meta = &mut node["metadata"];
            meta["name"] = json!(name);
            meta["uid"] = json!(format!("d06a4e91-b2e9-4907-a60a-{i:012x}"));
            meta["labels"]["kubernetes.io/hostname"] = json!(name);
            meta["annotations"]["alpha.kubernetes.io/provided-node-ip"] = json!(ip);
            if let Some(obj) = meta.as_object_mut() {
                obj.remove("resourceVersion");
            }
            node["spec"]["providerID"] = json!(format!("aws:///us-east-1a/i-{i:017x}"));
            node["status"]["addresses"] = json!([
                {"type": "InternalIP", "address": ip},
                {"type": "InternalDNS", "address": name},
                {"type": "Hostname", "address": name}
            ]);
            node["status"]["nodeInfo"]["machineID"] = json!(format!("{i:032x}"));
            node["status"]["nodeInfo"]["systemUUID"] = json!(format!("ec2b3bde-c96c-7af6-1cce-{i:012x}"));
            node["status"]["nodeInfo"]["bootID"] = json!(format!("3c2f687e-27bd-4642-bee9-{i:012x}"));
            if let Some(conditions) = node["status"]["conditions"].as_array_mut() {
                for c in conditions.iter_mut().filter(|c| c["type"] == "Ready") {
                    c["status"] = json!(if ready { "True" } else { "False" });
                    c["reason"] = json!(if ready { "KubeletReady" } else { "KubeletNotReady" });
                    c["message"] = json!(if ready { "kubelet is posting ready status" } else { "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized" });
                }
            }
            node
        })
        .collect()
}
