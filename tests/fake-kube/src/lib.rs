//! fake-kube: an in-process fake Kubernetes API server for preflight's tests and benchmarks,
//! and, on the same HTTPS plumbing, a fake Keycloak ([`FakeKeycloak`]).
//!
//! It speaks enough of the real API for kube-rs and kubectl, over HTTPS with bearer-token auth:
//! discovery (`/version`, `/api`, `/apis`, group and resource lists), get, list with
//! `limit`/`continue` (pages consistent with the first page's resource version), watch from a
//! resource version (replaying the changes made since, so list-then-watch loses nothing), field
//! and label selectors, and the real error bodies: `Status` objects for 401/403/404/405/410 and
//! the plain-text `404 page not found` for a path nothing serves. Custom resources are served
//! only while their CustomResourceDefinition exists, as on a real cluster. Faults can be
//! injected: a revoked token, RBAC denials, transient 429/5xx, a blackholed endpoint, watches
//! that end early or expire.
//!
//! Lists follow a real server's rules for `resourceVersion` and `resourceVersionMatch`: the
//! combinations it rejects are rejected, `Exact` serves the list as it was then, a version the
//! server has not reached is `504 Too large resource version`, and a list at version `0` is
//! served whole whatever its `limit`, as a watch cache serves it (see
//! [`FakeKube::set_watch_cache`]).
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! let kube = fake_kube::FakeKube::start().await?;
//! kube.apply(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "backstage"}}))?;
//! kube.write_kubeconfig(std::path::Path::new("/tmp/kubeconfig"))?;
//! // ... run the client under test with KUBECONFIG=/tmp/kubeconfig ...
//! assert!(kube.requests().iter().any(|r| r.path == "/api/v1/namespaces"));
//! # Ok(()) }
//! ```

mod api;
mod discovery;
mod immutable;
pub mod keycloak;
mod nodes;
mod registry;
mod selector;
mod server;
mod store;
mod tls;
mod watch;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};

pub use crate::keycloak::FakeKeycloak;
pub use crate::nodes::nodes_from_template;
use crate::store::State;
pub use crate::tls::{TestCertificates, test_certificates};

/// One request the server received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `POST`…
    pub method: String,
    /// The path, e.g. `/api/v1/nodes`.
    pub path: String,
    /// The raw query string, e.g. `limit=500&continue=…`; empty when there is none.
    pub query: String,
}

/// One RBAC denial: (verb, group, resource).
type Denial = (String, String, String);

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
    denied: Mutex<Vec<Denial>>,
    requests: Mutex<Vec<RequestRecord>>,
    /// Whether lists at resource version 0 are served whole, as from a watch cache.
    watch_cache: AtomicBool,
    /// The longest a watch lasts, whatever the client asks for.
    watch_limit: Mutex<Option<std::time::Duration>>,
    /// How many of the next watches expire at once.
    expiring_watches: AtomicUsize,
    cancel: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding a lock must not turn every later request into a
    // second panic.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// The store, for reading. Never held across an await.
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

    pub(crate) fn record(&self, request: RequestRecord) {
        lock(&self.requests).push(request);
    }

    /// Whether the `Authorization` header carries the (unrevoked) token.
    pub(crate) fn authorized(&self, header: Option<&http::HeaderValue>) -> bool {
        !self.revoked.load(Ordering::SeqCst)
            && header
                .and_then(|h| h.to_str().ok())
                .and_then(|h| h.strip_prefix("Bearer "))
                .is_some_and(|t| t == self.token)
    }

    /// The status code to fail this request with, if failures are still due.
    pub(crate) fn take_failure(&self) -> Option<u16> {
        self.fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .ok()
            .map(|_| self.fail_code.load(Ordering::SeqCst))
    }

    /// Whether lists at resource version 0 ignore `limit`.
    pub(crate) fn has_watch_cache(&self) -> bool {
        self.watch_cache.load(Ordering::SeqCst)
    }

    /// The longest a watch may last, if the server caps it.
    pub(crate) fn watch_limit(&self) -> Option<std::time::Duration> {
        *lock(&self.watch_limit)
    }

    /// Whether this watch is one of those due to expire at once.
    pub(crate) fn take_expiring_watch(&self) -> bool {
        self.expiring_watches
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    pub(crate) fn is_denied(&self, verb: &str, group: &str, resource: &str) -> bool {
        lock(&self.denied)
            .iter()
            .any(|(v, g, r)| (v == "*" || v == verb) && g == group && r == resource)
    }
}

/// The API server's answers, over the shared listener.
#[derive(Clone)]
struct ApiHandler(Arc<Shared>);

impl server::Handler for ApiHandler {
    fn is_blackholed(&self) -> bool {
        self.0.blackhole.load(Ordering::SeqCst)
    }

    fn handle(
        self,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> impl std::future::Future<
        Output = Result<hyper::Response<api::Body>, std::convert::Infallible>,
    > + Send
    + 'static {
        api::handle(self.0, req)
    }
}

/// A running fake API server on an ephemeral port of 127.0.0.1.
///
/// Cloning shares the server; dropping the last handle stops it, with every connection and
/// watch it serves.
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
            .finish_non_exhaustive()
    }
}

fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 24];
    openssl::rand::rand_bytes(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The objects of a YAML stream (`---`-separated documents), with the items of each `*List`
/// document in its place, as `kubectl apply -f` takes them.
pub fn objects_of_yaml(yaml: &str) -> anyhow::Result<Vec<Value>> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).context("invalid YAML")?;
    let mut objects = Vec::new();
    for doc in docs.into_iter().filter(|d| !d.is_null()) {
        objects.extend(list_items(doc)?);
    }
    Ok(objects)
}

/// One document's objects: itself, or a list's items.
fn list_items(doc: Value) -> anyhow::Result<Vec<Value>> {
    let Some(list_kind) = doc["kind"].as_str().filter(|k| k.ends_with("List")) else {
        return Ok(vec![doc]);
    };
    // Items of typed lists (NodeList…) carry no type of their own, as real servers send
    // them; those of a plain `List` do.
    let kind = list_kind.trim_end_matches("List").to_owned();
    let api_version = doc["apiVersion"].clone();
    let Value::Array(items) = doc["items"].clone() else {
        bail!("{list_kind} has no items");
    };
    Ok(items
        .into_iter()
        .map(|mut item| {
            if item.get("kind").is_none() && !kind.is_empty() {
                item["kind"] = json!(kind);
                item["apiVersion"] = api_version.clone();
            }
            item
        })
        .collect())
}

impl FakeKube {
    /// Starts a server on an ephemeral port of 127.0.0.1, with a fresh CA, server certificate
    /// and token. Call it inside a Tokio runtime; the server runs on that runtime's tasks.
    ///
    /// It starts as a real cluster does, with nothing but the built-in resource types: the
    /// user is `system:serviceaccount:argocd:preflight` and the version `v1.31.13-eks-ecaa3a6`.
    pub async fn start() -> anyhow::Result<FakeKube> {
        let tls = tls::generate().context("cannot make the test certificates")?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot listen on 127.0.0.1")?;
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let shared = Arc::new(Shared {
            state: RwLock::new(State::new()),
            token: random_token()?,
            user: Mutex::new("system:serviceaccount:argocd:preflight".into()),
            version: Mutex::new(discovery::version_info("v1.31.13-eks-ecaa3a6", "1", "31+")),
            revoked: AtomicBool::new(false),
            blackhole: AtomicBool::new(false),
            fail_next: AtomicUsize::new(0),
            fail_code: AtomicU16::new(503),
            denied: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            watch_cache: AtomicBool::new(true),
            watch_limit: Mutex::new(None),
            expiring_watches: AtomicUsize::new(0),
            cancel: cancel.clone(),
        });
        tokio::spawn(server::serve(
            listener,
            Arc::new(tls.acceptor),
            cancel.clone(),
            ApiHandler(shared.clone()),
        ));
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

    /// A kubeconfig for this server: cluster `fake` (its URL and CA), user `fake` (the
    /// token), context `fake`, which is the current context.
    #[must_use]
    pub fn kubeconfig_yaml(&self) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\nusers:\n- name: fake\n  user:\n    token: \"{}\"\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\npreferences: {{}}\n",
            self.url(),
            self.shared.token
        )
    }

    /// Writes [`Self::kubeconfig_yaml`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    /// What `/version` reports as `gitVersion`.
    #[must_use]
    pub fn git_version(&self) -> String {
        self.shared.version()["gitVersion"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The user name that 403 messages and SelfSubjectReviews report.
    pub fn set_user(&self, name: &str) {
        name.clone_into(&mut lock(&self.shared.user));
    }

    /// From now on every request gets 401 Unauthorized, as with an expired token.
    pub fn revoke_token(&self) {
        self.shared.revoked.store(true, Ordering::SeqCst);
    }

    /// What `/version` reports, e.g. `("v1.31.13-eks-ecaa3a6", "1", "31+")`.
    pub fn set_version(&self, git_version: &str, major: &str, minor: &str) {
        *lock(&self.shared.version) = discovery::version_info(git_version, major, minor);
    }

    /// Creates or replaces the object with this apiVersion, kind, namespace and name, and sets
    /// its `resourceVersion` (and, when new, its `uid` and `creationTimestamp` unless given);
    /// watches see ADDED or MODIFIED. A namespaced object without a namespace goes to
    /// `default`, as with `kubectl apply`. Applying a CustomResourceDefinition serves the
    /// resources it declares; an object of a type nobody serves is an error, and so is an
    /// update that changes a field the real server holds immutable (a StorageClass's
    /// parameters, a Deployment's selector, a CRD's stored versions…), with its message.
    pub fn apply(&self, obj: Value) -> anyhow::Result<()> {
        self.shared.state_mut().apply(obj)
    }

    /// Applies every object of a YAML stream ([`objects_of_yaml`]).
    pub fn apply_yaml(&self, yaml: &str) -> anyhow::Result<()> {
        for obj in objects_of_yaml(yaml)? {
            self.apply(obj)?;
        }
        Ok(())
    }

    /// Loads a `.json` file, or a `.yaml`/`.yml` stream, of objects and lists, as
    /// [`Self::apply_yaml`] does.
    pub fn load_file(&self, path: &Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if path.extension().is_some_and(|e| e == "json") {
            let doc = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", path.display()))?;
            list_items(doc)?
                .into_iter()
                .try_for_each(|obj| self.apply(obj))
        } else {
            self.apply_yaml(&text)
        }
        .with_context(|| format!("cannot load {}", path.display()))
    }

    /// Deletes an object; watches see DELETED. Deleting a CustomResourceDefinition also
    /// deletes its custom resources and stops serving them.
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

    /// Changes an object in place; watches see MODIFIED. `f` runs under the store's lock, so
    /// the change is atomic, and must not call back into this server.
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
            .with_context(|| format!("{kind} {name:?} does not exist"))?;
        let identity = |o: &Value| {
            (
                o["apiVersion"].clone(),
                o["kind"].clone(),
                o["metadata"]["namespace"].clone(),
                o["metadata"]["name"].clone(),
            )
        };
        let before = identity(&obj);
        f(&mut obj);
        if identity(&obj) != before {
            bail!("update of {kind} {name:?} changed its apiVersion, kind, namespace or name");
        }
        state.apply(obj)
    }

    /// RBAC: `verb` (`get`, `list`, `watch`, `create`, … or `*` for all) on `resource`
    /// (`nodes`, or a subresource such as `nodes/status`) in `group` (`""` for the core group)
    /// is answered 403 Forbidden, with the real message.
    pub fn deny(&self, verb: &str, group: &str, resource: &str) {
        lock(&self.shared.denied).push((verb.into(), group.into(), resource.into()));
    }

    /// While on, new connections are accepted but get no TLS handshake, and requests on open
    /// connections get no answer: what a client sees when a firewall drops packets.
    pub fn blackhole(&self, on: bool) {
        self.shared.blackhole.store(on, Ordering::SeqCst);
    }

    /// The next `n` requests (discovery included) answer `code` (429, 500, 503, 504…) with
    /// the `Status` body a real server sends for it.
    pub fn fail_next(&self, n: usize, code: u16) {
        self.shared.fail_code.store(code, Ordering::SeqCst);
        self.shared.fail_next.store(n, Ordering::SeqCst);
    }

    /// Whether the server has a watch cache (it starts with one, as real servers do for every
    /// type). With it, a list at `resourceVersion=0` is served whole, its `limit` ignored, as
    /// every kube-apiserver release serves it from its cache; without it (`--watch-cache=false`,
    /// or a cache not ready yet), such a list is paged like any other, as etcd pages it.
    pub fn set_watch_cache(&self, on: bool) {
        self.shared.watch_cache.store(on, Ordering::SeqCst);
    }

    /// From now on every watch ends after at most `limit`, whatever `timeoutSeconds` the client
    /// asked for, as a real server ends watches at its own request timeout or a load balancer
    /// drops idle connections; a watch that allows bookmarks gets one first, as from a real
    /// server. `None` lifts the cap.
    pub fn limit_watches(&self, limit: Option<std::time::Duration>) {
        *lock(&self.shared.watch_limit) = limit;
    }

    /// The next `n` watch requests find their resource version compacted away: each gets one
    /// `ERROR` event, `410 Expired` "too old resource version", and ends, as a real server's
    /// watch from a version older than its window does.
    pub fn expire_next_watches(&self, n: usize) {
        self.shared.expiring_watches.store(n, Ordering::SeqCst);
    }

    /// Every request received so far, oldest first.
    #[must_use]
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.requests).clone()
    }
}
