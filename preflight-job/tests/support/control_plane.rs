//! A real Kubernetes control plane for the end-to-end tests: etcd and kube-apiserver, built
//! from the Go modules pinned in `tests/kube-control-plane/` (`scripts/kube-control-plane.sh`,
//! which `tests/run.sh` runs), started once per test binary on loopback ports.
//!
//! Each run makes its own CA and serving certificate, ServiceAccount signing key and admin
//! token; the server authorizes with RBAC, so a token minted for a ServiceAccount
//! ([`ControlPlane::token_for`]) has exactly the permissions its Roles grant. The CRDs
//! preflight reads are installed from `tests/fixtures/crds/`.
//!
//! Cleanup does not depend on the test binary ending well: a supervisor shell owns both
//! servers and the scratch directory, and stops them and removes it when its stdin, a pipe
//! held by this process, closes, which the kernel does however the process ends. The
//! servers also get SIGKILL should the supervisor itself die (`setpriv --pdeathsig`).

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use serde_json::{Value, json};

use super::repo;

/// The field manager of every write the harness makes.
const MANAGER: &str = "preflight-tests";

/// The control plane of this test binary, started on first use.
///
/// It starts on a thread of its own, off the calling test's runtime (a failed start drops the
/// harness's runtime, which must not happen inside another), and a failure is kept: every
/// later test of the binary reports it at once rather than trying again.
pub(crate) fn control_plane() -> &'static ControlPlane {
    static PLANE: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
    let plane = PLANE.get_or_init(|| {
        std::thread::spawn(|| ControlPlane::start().map_err(|e| format!("{e:#}")))
            .join()
            .unwrap_or_else(|_| Err("the start-up panicked".to_owned()))
    });
    match plane {
        Ok(plane) => plane,
        Err(e) => panic!("the real control plane did not start: {e}"),
    }
}

/// Extra arguments of this test binary's kube-apiserver, set before it starts.
static APISERVER_ARGS: OnceLock<Vec<String>> = OnceLock::new();

/// Starts this test binary's kube-apiserver with `args` besides the usual ones. Every test of
/// the binary must ask for the same (the server is started once).
pub(crate) fn apiserver_args(args: &[&str]) {
    let wanted: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let set = APISERVER_ARGS.get_or_init(|| wanted.clone());
    assert_eq!(
        *set, wanted,
        "one test binary, one kube-apiserver configuration"
    );
}

/// Serializes the tests of one binary that use the real server: its cluster-scoped objects
/// (nodes, CRDs, StorageClasses) are shared, so each test gets the server to itself, reset.
pub(crate) fn exclusive() -> &'static tokio::sync::Mutex<()> {
    static LOCK: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(()))
}

/// An object the harness created, to delete when the next test resets the server.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Created {
    api_version: String,
    kind: String,
    namespace: Option<String>,
    name: String,
}

/// A running etcd and kube-apiserver.
pub(crate) struct ControlPlane {
    /// `https://127.0.0.1:PORT`.
    pub(crate) url: String,
    /// The CA that signed the serving certificate.
    pub(crate) ca_pem: String,
    /// The etcd client URL (plain HTTP on loopback), for compactions.
    pub(crate) etcd_url: String,
    /// The scratch directory: certificates, logs, the audit log.
    pub(crate) dir: PathBuf,
    /// What `/version` reports.
    pub(crate) git_version: String,
    admin_token: String,
    /// The token of `argocd/preflight`, which may read everything.
    reader_token: String,
    /// The admin client lives on a runtime of its own, so that every test (each on its own
    /// runtime) can use it and the harness can stay synchronous, as the fake's is.
    runtime: tokio::runtime::Runtime,
    client: kube::Client,
    created: Arc<Mutex<Vec<Created>>>,
    /// Platform CRDs a test replaced with another shape (an older release's versions): the
    /// next reset deletes them, so that they are installed again as the manifests say.
    reshaped_crds: Mutex<BTreeSet<String>>,
    /// Held, never written: closing it (at exit) stops the supervisor.
    _supervisor: Mutex<(Child, ChildStdin)>,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The directory `scripts/kube-control-plane.sh` builds the binaries into.
pub(crate) fn binaries() -> PathBuf {
    if let Some(dir) = std::env::var_os("PREFLIGHT_KUBE_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let go_mod = std::fs::read_to_string(repo("tests/kube-control-plane/go.mod")).unwrap();
    let release = go_mod
        .lines()
        .find_map(|l| l.trim().strip_prefix("k8s.io/kubernetes "))
        .expect("go.mod pins k8s.io/kubernetes")
        .trim();
    repo(&format!("target/kube-control-plane/{release}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

/// A kubeconfig for `url` with `token`.
pub(crate) fn kubeconfig_yaml(url: &str, ca_pem: &str, token: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: real\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\nusers:\n- name: real\n  user:\n    token: \"{token}\"\ncontexts:\n- name: real\n  context:\n    cluster: real\n    user: real\ncurrent-context: real\npreferences: {{}}\n"
    )
}

/// The audit policy: every request but the servers' own, with its response code, so that
/// tests can see which requests preflight made and what they were answered.
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: None\n  users: [\"system:apiserver\", \"system:kube-controller-manager\"]\n- level: None\n  userGroups: [\"system:masters\"]\n- level: Metadata\n";

/// The supervisor: starts both servers, then waits for its stdin to close and cleans up.
const SUPERVISOR: &str = r#"
set -u
trap '' INT
# Cancelled (SIGTERM, SIGHUP): stop the servers and remove the directory, which holds the
# admin token and the keys.
trap 'kill -KILL "${apiserver:-}" "${etcd:-}" 2>/dev/null; rm -rf "$DIR"; exit 143' TERM HUP
setpriv --pdeathsig KILL "$BIN/etcd" --name preflight --data-dir "$DIR/etcd" \
  --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
  --listen-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --initial-cluster "preflight=http://127.0.0.1:$PEER_PORT" \
  --unsafe-no-fsync --log-level warn >"$DIR/etcd.log" 2>&1 &
etcd=$!
setpriv --pdeathsig KILL "$BIN/kube-apiserver" --etcd-servers "$ETCD_URL" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
  --tls-cert-file "$DIR/serving.pem" --tls-private-key-file "$DIR/serving.key" \
  --token-auth-file "$DIR/tokens.csv" --authorization-mode RBAC \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$DIR/sa.pub" --service-account-signing-key-file "$DIR/sa.key" \
  --service-cluster-ip-range 10.0.0.0/24 --allow-privileged=true \
  --audit-policy-file "$DIR/audit-policy.yaml" --audit-log-path "$DIR/audit.log" \
  --audit-log-format json --audit-log-maxbackup 1 $EXTRA_ARGS >"$DIR/apiserver.log" 2>&1 &
apiserver=$!
read -r _
# Throwaway servers: no graceful shutdown (kube-apiserver's waits for an etcd already gone).
kill -KILL "$apiserver" "$etcd" 2>/dev/null
wait
rm -rf "$DIR"
"#;

impl ControlPlane {
    #[allow(
        clippy::print_stderr,
        reason = "the start-up time, for a test run with --nocapture"
    )]
    fn start() -> anyhow::Result<ControlPlane> {
        let bin = binaries();
        for tool in ["etcd", "kube-apiserver"] {
            if !bin.join(tool).exists() {
                bail!(
                    "{} is missing: run ./scripts/kube-control-plane.sh (./tests/run.sh does)",
                    bin.join(tool).display()
                );
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("preflight-kube-")
            .tempdir()?
            .keep();
        let certs = fake_kube::test_certificates()?;
        std::fs::write(dir.join("serving.pem"), &certs.cert_pem)?;
        std::fs::write(dir.join("serving.key"), &certs.key_pem)?;
        let (sa_key, sa_pub) = signing_key()?;
        std::fs::write(dir.join("sa.key"), sa_key)?;
        std::fs::write(dir.join("sa.pub"), sa_pub)?;
        let admin_token = random_token();
        std::fs::write(
            dir.join("tokens.csv"),
            format!("{admin_token},preflight-tests-admin,0,\"system:masters\"\n"),
        )?;
        std::fs::write(dir.join("audit-policy.yaml"), AUDIT_POLICY)?;
        let etcd_url = format!("http://127.0.0.1:{}", free_port());
        let api_port = free_port();
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(SUPERVISOR)
            .env("BIN", &bin)
            .env("DIR", &dir)
            .env("ETCD_URL", &etcd_url)
            .env("PEER_PORT", free_port().to_string())
            .env("API_PORT", api_port.to_string())
            .env("EXTRA_ARGS", APISERVER_ARGS.get_or_init(Vec::new).join(" "))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start bash")?;
        let stdin = child.stdin.take().context("no stdin")?;
        let url = format!("https://127.0.0.1:{api_port}");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let kubeconfig = kubeconfig_yaml(&url, &certs.ca_pem, &admin_token);
        let client = run_on(&runtime, client_for(kubeconfig))?;
        let plane = ControlPlane {
            url,
            ca_pem: certs.ca_pem,
            etcd_url,
            dir: dir.clone(),
            git_version: String::new(),
            admin_token,
            reader_token: String::new(),
            runtime,
            client,
            created: Arc::new(Mutex::new(Vec::new())),
            reshaped_crds: Mutex::new(BTreeSet::new()),
            _supervisor: Mutex::new((child, stdin)),
        };
        let started = Instant::now();
        let git_version = plane
            .block(wait_ready(plane.client.clone()))
            .with_context(|| plane.logs())?;
        let plane = ControlPlane {
            git_version,
            ..plane
        };
        plane.install_crds()?;
        let plane = ControlPlane {
            reader_token: plane.baseline()?,
            ..plane
        };
        eprintln!(
            "kube-apiserver {} ready in {:.1} s at {}",
            plane.git_version,
            started.elapsed().as_secs_f64(),
            plane.url
        );
        Ok(plane)
    }

    /// What every test starts with, never deleted: the ServiceAccount `argocd/preflight`
    /// (the fake's user) allowed to read every resource, as the tests' default identity;
    /// returns its token. The hooks' own, least-privilege RBAC is tested with tokens of
    /// their own ServiceAccounts ([`Self::kubeconfig_for`]).
    fn baseline(&self) -> anyhow::Result<String> {
        let reader = "preflight-tests-reader";
        for obj in [
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "preflight", "namespace": "argocd"}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": reader},
                "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]}]}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": reader},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": reader},
                "subjects": [{"kind": "ServiceAccount", "name": "preflight", "namespace": "argocd"}]}),
        ] {
            self.apply(obj)?;
        }
        self.created
            .lock()
            .unwrap()
            .retain(|c| c.kind == "CustomResourceDefinition");
        self.token_for("argocd", "preflight")
    }

    /// A kubeconfig as `argocd/preflight`, which may read everything.
    pub(crate) fn reader_kubeconfig(&self) -> String {
        kubeconfig_yaml(&self.url, &self.ca_pem, &self.reader_token)
    }

    /// The last lines the servers logged, for a failure message.
    fn logs(&self) -> String {
        let tail = |name: &str| {
            let text = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(20)..].join("\n")
        };
        format!(
            "etcd.log:\n{}\napiserver.log:\n{}",
            tail("etcd.log"),
            tail("apiserver.log")
        )
    }

    /// Runs a future on the harness's runtime and waits for it.
    fn block<F>(&self, f: F) -> F::Output
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        run_on(&self.runtime, f)
    }

    /// A kubeconfig with the admin token (group `system:masters`).
    pub(crate) fn admin_kubeconfig(&self) -> String {
        kubeconfig_yaml(&self.url, &self.ca_pem, &self.admin_token)
    }

    /// A kubeconfig for a ServiceAccount, with a token minted by TokenRequest.
    pub(crate) fn kubeconfig_for(&self, namespace: &str, name: &str) -> anyhow::Result<String> {
        Ok(kubeconfig_yaml(
            &self.url,
            &self.ca_pem,
            &self.token_for(namespace, name)?,
        ))
    }

    /// A token for the ServiceAccount `namespace/name` (which must exist), from the server's
    /// own issuer, valid for an hour.
    pub(crate) fn token_for(&self, namespace: &str, name: &str) -> anyhow::Result<String> {
        let client = self.client.clone();
        let path = format!("/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token");
        self.block(async move {
            let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": 3600}});
            let request = http::Request::post(path)
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&body)?)?;
            let answer: Value = client.request(request).await?;
            answer["status"]["token"]
                .as_str()
                .map(str::to_owned)
                .context("the TokenRequest has no token")
        })
    }

    /// Whether the real authorizer lets ServiceAccount `account` (namespace, name) do `verb`
    /// on `resource` of `group`, in `namespace` or cluster-wide, on the object `name` or all:
    /// a SubjectAccessReview, which sees RBAC changes as soon as requests do.
    pub(crate) fn allows(
        &self,
        account: (&str, &str),
        verb: &str,
        (group, resource): (&str, &str),
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> anyhow::Result<bool> {
        let (sa_ns, sa) = account;
        let review = json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {
                "user": format!("system:serviceaccount:{sa_ns}:{sa}"),
                "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{sa_ns}"), "system:authenticated"],
                "resourceAttributes": {"verb": verb, "group": group, "resource": resource,
                    "namespace": namespace.unwrap_or_default(), "name": name.unwrap_or_default()},
            },
        });
        let client = self.client.clone();
        self.block(async move {
            let request = http::Request::post("/apis/authorization.k8s.io/v1/subjectaccessreviews")
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&review)?)?;
            let answer: Value = client.request(request).await?;
            Ok(answer["status"]["allowed"] == true)
        })
    }

    /// Creates or updates an object by server-side apply, as its owner would, creating its
    /// namespace first when it has none yet. Its status, when the type has a status
    /// subresource, is written through it, as a controller writes it.
    pub(crate) fn apply(&self, obj: Value) -> anyhow::Result<()> {
        self.write(obj, true)
    }

    /// [`Self::apply`] of many objects at once, a few requests in flight (for clusters of
    /// hundreds of nodes).
    pub(crate) fn apply_all(&self, objects: Vec<Value>) -> anyhow::Result<()> {
        use futures::StreamExt as _;
        let client = self.client.clone();
        let log = self.created.clone();
        self.block(async move {
            let results: Vec<anyhow::Result<()>> = futures::stream::iter(objects)
                .map(|obj| write(client.clone(), log.clone(), obj, true))
                .buffer_unordered(8)
                .collect()
                .await;
            results.into_iter().collect::<anyhow::Result<()>>()
        })
    }

    /// Creates thousands of new objects of one cluster-scoped kind (a benchmark's nodes), as
    /// [`Self::apply`] would but faster: one discovery for all, then per object its apply and
    /// its status, many objects in flight.
    pub(crate) fn create_all(&self, objects: Vec<Value>) -> anyhow::Result<()> {
        use futures::StreamExt as _;
        let Some(first) = objects.first() else {
            return Ok(());
        };
        let api_version = first["apiVersion"].as_str().context("no apiVersion")?;
        let kind = first["kind"].as_str().context("no kind")?;
        let gvk = gvk(api_version, kind);
        let client = self.client.clone();
        let log = self.created.clone();
        self.block(async move {
            let (api, caps, _) = api_for(&client, &gvk, None).await?;
            anyhow::ensure!(
                matches!(caps.scope, Scope::Cluster),
                "{} is namespaced: use apply_all",
                gvk.kind
            );
            let results: Vec<anyhow::Result<()>> = futures::stream::iter(objects)
                .map(|mut obj| {
                    let api = api.clone();
                    let log = log.clone();
                    let gvk = gvk.clone();
                    async move {
                        let name = obj["metadata"]["name"]
                            .as_str()
                            .context("no metadata.name")?
                            .to_owned();
                        let status = obj.as_object_mut().and_then(|o| o.remove("status"));
                        if let Some(meta) = obj["metadata"].as_object_mut() {
                            for field in SERVER_FIELDS {
                                meta.remove(field);
                            }
                        }
                        let params = PatchParams::apply(MANAGER).force();
                        api.patch(&name, &params, &Patch::Apply(&obj))
                            .await
                            .with_context(|| format!("cannot create {} {name}", gvk.kind))?;
                        log.lock().unwrap().push(Created {
                            api_version: obj["apiVersion"].as_str().unwrap_or_default().into(),
                            kind: gvk.kind.clone(),
                            namespace: None,
                            name: name.clone(),
                        });
                        if let Some(status) = status {
                            let patch = json!({"apiVersion": obj["apiVersion"], "kind": gvk.kind, "metadata": {"name": name}, "status": status});
                            api.patch_status(&name, &params, &Patch::Apply(&patch))
                                .await
                                .with_context(|| format!("cannot write the status of {name}"))?;
                        }
                        Ok(())
                    }
                })
                .buffer_unordered(32)
                .collect()
                .await;
            results.into_iter().collect::<anyhow::Result<()>>()
        })
    }

    /// [`Self::apply`] without creating the namespace: what a client such as ArgoCD sees.
    pub(crate) fn apply_strict(&self, obj: Value) -> anyhow::Result<()> {
        self.write(obj, false)
    }

    fn write(&self, obj: Value, make_namespace: bool) -> anyhow::Result<()> {
        // A CRD's resources can be written once the server has established it.
        let crd = (obj["kind"] == "CustomResourceDefinition")
            .then(|| obj["metadata"]["name"].as_str().map(str::to_owned))
            .flatten();
        if let Some(name) = &crd {
            let manifest = Self::crd_manifests()
                .into_iter()
                .find(|m| m["metadata"]["name"] == name.as_str());
            if manifest.is_some_and(|m| m["spec"] != obj["spec"]) {
                self.reshaped_crds.lock().unwrap().insert(name.clone());
            }
        }
        let client = self.client.clone();
        let log = self.created.clone();
        self.block(async move { write(client, log, obj, make_namespace).await })?;
        match crd {
            Some(name) => self.wait_established(&BTreeSet::from([name])),
            None => Ok(()),
        }
    }

    /// The object, if it exists.
    pub(crate) fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> anyhow::Result<Option<Value>> {
        let client = self.client.clone();
        let gvk = gvk(api_version, kind);
        let (namespace, name) = (namespace.map(str::to_owned), name.to_owned());
        self.block(async move {
            let (api, _, _) = api_for(&client, &gvk, namespace.as_deref()).await?;
            Ok(api.get_opt(&name).await?.map(|o| to_value(&o)))
        })
    }

    /// Deletes an object (gone already is fine).
    pub(crate) fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> anyhow::Result<()> {
        let client = self.client.clone();
        let gvk = gvk(api_version, kind);
        let (namespace, name) = (namespace.map(str::to_owned), name.to_owned());
        self.block(async move { delete(&client, &gvk, namespace.as_deref(), &name).await })
    }

    /// Returns the server to its state after start-up, keeping the CRDs of `keep_crds`
    /// (by name) installed and removing every other CRD: deletes every object the harness
    /// created, then the namespaces it created (finalized by hand: no namespace controller
    /// runs here).
    pub(crate) fn reset(&self, keep_crds: &BTreeSet<String>) -> anyhow::Result<()> {
        let created = std::mem::take(&mut *self.created.lock().unwrap());
        let client = self.client.clone();
        let reshaped = std::mem::take(&mut *self.reshaped_crds.lock().unwrap());
        let keep: BTreeSet<String> = keep_crds.difference(&reshaped).cloned().collect();
        let kept = self.block(async move { reset(client, created, keep).await })?;
        self.created.lock().unwrap().extend(kept);
        self.install_crds_named(keep_crds)
    }

    /// The CRD manifests of `tests/fixtures/crds/`, by name.
    pub(crate) fn crd_manifests() -> Vec<Value> {
        static MANIFESTS: OnceLock<Vec<Value>> = OnceLock::new();
        MANIFESTS.get_or_init(Self::read_crd_manifests).clone()
    }

    fn read_crd_manifests() -> Vec<Value> {
        let dir = repo("tests/fixtures/crds");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        files
            .iter()
            .flat_map(|f| {
                fake_kube::objects_of_yaml(&std::fs::read_to_string(f).unwrap())
                    .unwrap_or_else(|e| panic!("{}: {e:#}", f.display()))
            })
            .collect()
    }

    fn install_crds(&self) -> anyhow::Result<()> {
        let all = Self::crd_manifests()
            .iter()
            .map(|c| c["metadata"]["name"].as_str().unwrap().to_owned())
            .collect();
        self.install_crds_named(&all)
    }

    /// Installs the named CRDs of `tests/fixtures/crds/` that are not installed, and waits
    /// until the server establishes them.
    fn install_crds_named(&self, names: &BTreeSet<String>) -> anyhow::Result<()> {
        for crd in Self::crd_manifests() {
            let name = crd["metadata"]["name"].as_str().unwrap().to_owned();
            if names.contains(&name)
                && self
                    .get(
                        "apiextensions.k8s.io/v1",
                        "CustomResourceDefinition",
                        None,
                        &name,
                    )?
                    .is_none()
            {
                self.apply(crd)?;
            }
        }
        self.wait_established(names)
    }

    /// Waits until each named CRD is `Established` (and its resources discoverable).
    pub(crate) fn wait_established(&self, names: &BTreeSet<String>) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        for name in names {
            loop {
                let crd = self.get(
                    "apiextensions.k8s.io/v1",
                    "CustomResourceDefinition",
                    None,
                    name,
                )?;
                let established = crd.as_ref().is_some_and(|c| {
                    c["status"]["conditions"].as_array().is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["type"] == "Established" && c["status"] == "True")
                    })
                });
                if established && self.cache_ready(crd.as_ref().unwrap())? {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("CRD {name} is not Established after 30 s: {crd:#?}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// Whether the server's cache of a CRD's resources is ready: until it is, lists answer
    /// 429 "storage is (re)initializing", and a CRD deleted then can stay Terminating (its
    /// finalizer cannot list the instances, and each of its status updates restarts the
    /// cache), so the harness never deletes one before.
    fn cache_ready(&self, crd: &Value) -> anyhow::Result<bool> {
        let spec = &crd["spec"];
        let version = spec["versions"]
            .as_array()
            .and_then(|vs| vs.iter().find(|v| v["served"] == true))
            .and_then(|v| v["name"].as_str())
            .context("the CRD serves no version")?;
        let path = format!(
            "/apis/{}/{version}/{}?limit=1&resourceVersion=0",
            spec["group"].as_str().unwrap_or_default(),
            spec["names"]["plural"].as_str().unwrap_or_default()
        );
        let client = self.client.clone();
        self.block(async move {
            match client
                .request_text(http::Request::get(path).body(Vec::new())?)
                .await
            {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(status)) if status.code == 429 || status.code == 404 => {
                    Ok(false)
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    /// etcd's current revision.
    pub(crate) fn etcd_revision(&self) -> anyhow::Result<i64> {
        let answer = self.etcd("/v3/kv/range", &json!({"key": "AA==", "limit": 1}))?;
        answer["header"]["revision"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .context("etcd's answer has no revision")
    }

    /// Writes a key outside the API server's prefix: etcd's revision moves on, and nothing
    /// the API server serves changes.
    pub(crate) fn bump_etcd_revision(&self) -> anyhow::Result<()> {
        // base64 of "preflight-tests/churn" and "x".
        self.etcd(
            "/v3/kv/put",
            &json!({"key": "cHJlZmxpZ2h0LXRlc3RzL2NodXJu", "value": "eA=="}),
        )
        .map(drop)
    }

    /// Compacts etcd's history up to its current revision: every older resource version is
    /// gone, as after the API server's periodic compaction on a busy cluster.
    pub(crate) fn compact_etcd(&self) -> anyhow::Result<i64> {
        let revision = self.etcd_revision()?;
        self.etcd(
            "/v3/kv/compaction",
            &json!({"revision": revision.to_string(), "physical": true}),
        )?;
        Ok(revision)
    }

    /// A call to etcd's JSON gateway (plain HTTP on loopback, so a socket and a few lines).
    fn etcd(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let addr = self.etcd_url.trim_start_matches("http://");
        let body = serde_json::to_string(body)?;
        let mut stream = std::net::TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut stream, &mut answer)?;
        let (head, body) = answer
            .split_once("\r\n\r\n")
            .context("etcd sent no HTTP answer")?;
        if !head.starts_with("HTTP/1.1 200") {
            bail!("etcd answered {head}: {body}");
        }
        // Content-Length framing: the body is the whole rest (Connection: close).
        serde_json::from_str(body).with_context(|| format!("etcd's answer: {body}"))
    }

    /// How many events the audit log holds: a mark to read the log from ([`Self::audit`]).
    pub(crate) fn audit_mark(&self) -> usize {
        std::fs::read_to_string(self.dir.join("audit.log"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    /// The audit log's events since `mark` for requests by `user` (the servers' own and the
    /// harness's are not logged), one per request: (verb, request URI, response code). A
    /// watch is logged when its response starts (it completes only when it ends), anything
    /// else when it completes.
    pub(crate) fn audit(&self, mark: usize, user: &str) -> Vec<(String, String, i64)> {
        let text = std::fs::read_to_string(self.dir.join("audit.log")).unwrap_or_default();
        text.lines()
            .skip(mark)
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| {
                let stage = if e["verb"] == "watch" {
                    "ResponseStarted"
                } else {
                    "ResponseComplete"
                };
                e["user"]["username"] == user && e["stage"] == stage
            })
            .map(|e| {
                (
                    e["verb"].as_str().unwrap_or_default().to_owned(),
                    e["requestURI"].as_str().unwrap_or_default().to_owned(),
                    e["responseStatus"]["code"].as_i64().unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// Runs a future on `runtime` and waits for it, from any thread, inside a test's runtime
/// or not.
fn run_on<F>(runtime: &tokio::runtime::Runtime, f: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    runtime.spawn(async move {
        let _ = tx.send(f.await);
    });
    rx.recv().expect("the harness's runtime is running")
}

/// An admin client from a kubeconfig.
async fn client_for(kubeconfig: String) -> anyhow::Result<kube::Client> {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(&kubeconfig)?,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    Ok(kube::Client::try_from(config)?)
}

/// Waits for `/readyz`, then returns the server's `gitVersion`.
async fn wait_ready(client: kube::Client) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let ready = client
            .request_text(http::Request::get("/readyz").body(Vec::new())?)
            .await;
        match ready {
            Ok(text) if text.trim() == "ok" => break,
            other if Instant::now() > deadline => {
                bail!("kube-apiserver is not ready after 90 s: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    Ok(client.apiserver_version().await?.git_version)
}

fn random_token() -> String {
    let mut bytes = [0u8; 24];
    openssl::rand::rand_bytes(&mut bytes).unwrap();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An ECDSA P-256 key pair for signing ServiceAccount tokens: (private PEM, public PEM).
fn signing_key() -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)?;
    let key = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group)?)?;
    Ok((key.private_key_to_pem_pkcs8()?, key.public_key_to_pem()?))
}

fn gvk(api_version: &str, kind: &str) -> GroupVersionKind {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    GroupVersionKind::gvk(group, version, kind)
}

fn to_value(obj: &DynamicObject) -> Value {
    serde_json::to_value(obj).expect("an object is JSON")
}

/// The API for a type (its namespace, or `default`, for a namespaced one) and what the
/// server says it supports.
async fn api_for(
    client: &kube::Client,
    gvk: &GroupVersionKind,
    namespace: Option<&str>,
) -> anyhow::Result<(Api<DynamicObject>, ApiCapabilities, ApiResource)> {
    let (resource, caps) = kube::discovery::pinned_kind(client, gvk)
        .await
        .with_context(|| format!("the server does not serve {gvk:?}"))?;
    let api = match caps.scope {
        Scope::Namespaced => {
            Api::namespaced_with(client.clone(), namespace.unwrap_or("default"), &resource)
        }
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    };
    Ok((api, caps, resource))
}

/// The fields only the server sets, which an apply must not carry.
const SERVER_FIELDS: [&str; 6] = [
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
];

/// Applies one object (see [`ControlPlane::apply`]), recording in `log` what it creates as
/// soon as it exists, so that a write failing halfway leaks nothing into the next test.
async fn write(
    client: kube::Client,
    log: Arc<Mutex<Vec<Created>>>,
    mut obj: Value,
    make_namespace: bool,
) -> anyhow::Result<()> {
    let record = |c: Created| {
        let mut list = log.lock().unwrap();
        if !list.contains(&c) {
            list.push(c);
        }
    };
    let api_version = obj["apiVersion"]
        .as_str()
        .context("no apiVersion")?
        .to_owned();
    let kind = obj["kind"].as_str().context("no kind")?.to_owned();
    let name = obj["metadata"]["name"]
        .as_str()
        .context("no metadata.name")?
        .to_owned();
    let namespace = obj["metadata"]["namespace"].as_str().map(str::to_owned);
    let gvk = gvk(&api_version, &kind);
    let (api, caps, _) = api_for(&client, &gvk, namespace.as_deref()).await?;
    let namespace = match caps.scope {
        Scope::Namespaced => Some(namespace.unwrap_or_else(|| "default".to_owned())),
        Scope::Cluster => None,
    };
    if let Some(ns) = &namespace {
        obj["metadata"]["namespace"] = json!(ns);
        if make_namespace && !namespace_exists(&client, ns).await? {
            let namespaces: Api<DynamicObject> =
                Api::all_with(client.clone(), &ApiResource::erase::<Namespace>(&()));
            namespaces
                .patch(
                    ns,
                    &PatchParams::apply(MANAGER).force(),
                    &Patch::Apply(
                        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                    ),
                )
                .await
                .with_context(|| format!("cannot create namespace {ns}"))?;
            record(Created {
                api_version: "v1".into(),
                kind: "Namespace".into(),
                namespace: None,
                name: ns.clone(),
            });
        }
    } else if let Some(meta) = obj["metadata"].as_object_mut() {
        meta.remove("namespace");
    }
    if let Some(meta) = obj["metadata"].as_object_mut() {
        for field in SERVER_FIELDS {
            meta.remove(field);
        }
    }
    // The server owns a CRD's status; other types' status goes through the subresource when
    // there is one (there the main endpoint ignores it), else with the object.
    let status_subresource = caps.subresources.iter().any(|(s, _)| s.plural == "status");
    let status = if kind == "CustomResourceDefinition" {
        obj.as_object_mut().and_then(|o| o.remove("status"));
        None
    } else if status_subresource {
        obj.as_object_mut().and_then(|o| o.remove("status"))
    } else {
        None
    };
    let existed = api.get_opt(&name).await?.is_some();
    api.patch(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&obj),
    )
    .await
    .with_context(|| format!("cannot apply {kind} {name}"))?;
    if !existed {
        record(Created {
            api_version: api_version.clone(),
            kind: kind.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
        });
    }
    if let Some(status) = status {
        let mut patch = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, "status": status});
        if let Some(ns) = &namespace {
            patch["metadata"]["namespace"] = json!(ns);
        }
        api.patch_status(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .with_context(|| format!("cannot write the status of {kind} {name}"))?;
    }
    Ok(())
}

async fn namespace_exists(client: &kube::Client, ns: &str) -> anyhow::Result<bool> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    Ok(namespaces.get_opt(ns).await?.is_some())
}

async fn delete(
    client: &kube::Client,
    gvk: &GroupVersionKind,
    namespace: Option<&str>,
    name: &str,
) -> anyhow::Result<()> {
    let (api, _, _) = api_for(client, gvk, namespace).await?;
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Deletes what the harness created, but the CRDs to keep; returns those.
async fn reset(
    client: kube::Client,
    created: Vec<Created>,
    keep_crds: BTreeSet<String>,
) -> anyhow::Result<Vec<Created>> {
    let is_crd = |c: &Created| c.kind == "CustomResourceDefinition";
    let (kept, gone): (Vec<Created>, Vec<Created>) = created
        .into_iter()
        .partition(|c| is_crd(c) && keep_crds.contains(&c.name));
    // Objects first (newest first), custom resources before their CRDs, namespaces last.
    let order = |c: &Created| match c.kind.as_str() {
        "Namespace" => 2,
        "CustomResourceDefinition" => 1,
        _ => 0,
    };
    let mut gone = gone;
    gone.reverse();
    gone.sort_by_key(order);
    for c in &gone {
        // A custom resource whose CRD went earlier in another test's reset is gone too.
        match delete(
            &client,
            &gvk(&c.api_version, &c.kind),
            c.namespace.as_deref(),
            &c.name,
        )
        .await
        {
            Ok(()) => {}
            Err(e) if format!("{e:#}").contains("does not serve") => {}
            Err(e) => return Err(e.context(format!("cannot delete {} {}", c.kind, c.name))),
        }
        if c.kind == "Namespace" {
            finalize_namespace(&client, &c.name).await?;
        }
    }
    // Deleted CRDs linger until the server has removed their custom resources.
    for c in gone.iter().filter(|c| is_crd(c)) {
        let crds: Api<DynamicObject> = Api::all_with(
            client.clone(),
            &ApiResource::erase::<CustomResourceDefinition>(&()),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(crd) = crds.get_opt(&c.name).await? {
            if Instant::now() > deadline {
                bail!(
                    "CRD {} is still there 30 s after its deletion: {:?}",
                    c.name,
                    crd.data.get("status")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(kept)
}

/// Finishes a namespace's deletion as the namespace controller (which does not run here)
/// would once it has emptied it: the harness deleted what it had created in it.
async fn finalize_namespace(client: &kube::Client, ns: &str) -> anyhow::Result<()> {
    let path = format!("/api/v1/namespaces/{ns}/finalize");
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "spec": {"finalizers": []}});
    let request = http::Request::put(path)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body)?)?;
    match client.request::<Value>(request).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
