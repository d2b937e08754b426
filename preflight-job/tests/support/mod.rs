//! Shared harness of the end-to-end tests: a Kubernetes API server loaded with real object
//! shapes, either the in-repo fake (fast, and able to inject faults) or a real kube-apiserver
//! with etcd ([`control_plane`]), behind one interface ([`Kube`]); a kubeconfig pointing at
//! it; the real `preflight` binary; and a real PostgreSQL server (`pg`).

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]
#![allow(clippy::unwrap_used, reason = "the harness stops on a broken setup")]

pub(crate) mod blackhole;
pub(crate) mod control_plane;
pub(crate) mod moto;
pub(crate) mod pg;
pub(crate) mod platform;
pub(crate) mod registry;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use control_plane::ControlPlane;
use fake_kube::FakeKube;
use serde_json::{Value, json};
use tempfile::TempDir;

/// The identity of the tests' kubeconfig on both servers.
pub(crate) const PREFLIGHT_USER: &str = "system:serviceaccount:argocd:preflight";

impl Cluster {
    /// How many requests the server received on `path` since this cluster was made: watches,
    /// or (with `watch` false) everything else, i.e. lists and gets. On the real server,
    /// from its audit log (requests as [`PREFLIGHT_USER`]).
    pub(crate) fn requests_to(&self, path: &str, watch: bool) -> usize {
        match &self.kube {
            Kube::Fake(k) => k
                .requests()
                .iter()
                .filter(|r| {
                    r.path == path
                        && (r.query.contains("watch=true") || r.query.contains("watch=1")) == watch
                })
                .count(),
            Kube::Real(k) => k
                .audit(self.audit_mark, PREFLIGHT_USER)
                .iter()
                .filter(|(verb, uri, _)| {
                    uri.split('?').next() == Some(path) && (verb == "watch") == watch
                })
                .count(),
        }
    }

    /// The requests the server received on the collection at `path` since this cluster was
    /// made, oldest first, as (verb, query): `list` or `watch`, and the raw query string. On
    /// the real server, from its audit log (requests as [`PREFLIGHT_USER`]).
    pub(crate) fn queries(&self, path: &str) -> Vec<(String, String)> {
        match &self.kube {
            Kube::Fake(k) => k
                .requests()
                .into_iter()
                .filter(|r| r.path == path)
                .map(|r| {
                    let watch = r
                        .query
                        .split('&')
                        .any(|p| p == "watch=true" || p == "watch=1");
                    let verb = if watch { "watch" } else { "list" };
                    (verb.to_owned(), r.query)
                })
                .collect(),
            Kube::Real(k) => k
                .audit(self.audit_mark, PREFLIGHT_USER)
                .into_iter()
                .filter_map(|(verb, uri, _)| {
                    let (p, query) = uri.split_once('?').unwrap_or((&uri, ""));
                    (p == path).then(|| (verb, query.to_owned()))
                })
                .collect(),
        }
    }

    /// Waits (at most 20 s) until preflight has opened a watch on `path`: a change made after
    /// this can be noticed at once only through that watch, however loaded the machine.
    pub(crate) async fn watching(&self, path: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.requests_to(path, true) == 0 {
            assert!(
                Instant::now() < deadline,
                "preflight opened no watch on {path}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The requests [`PREFLIGHT_USER`] made to the real server since this cluster was made:
    /// (verb, request URI, response code).
    pub(crate) fn audit(&self) -> Vec<(String, String, i64)> {
        self.kube.real().audit(self.audit_mark, PREFLIGHT_USER)
    }

    /// Sets one key of a Secret (base64-encoded, as the API holds it).
    pub(crate) fn set_secret_key(&self, namespace: &str, name: &str, key: &str, value: &str) {
        self.kube
            .update("v1", "Secret", Some(namespace), name, |s| {
                s["data"][key] = json!(b64(value));
            })
            .unwrap_or_else(|e| panic!("Secret {namespace}/{name}: {e}"));
    }
}

/// The value of `key` in a raw query string, decoded.
pub(crate) fn query_param(query: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// A path in the repository.
pub(crate) fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// A tool from the test virtualenv (`scripts/test-venv.sh`), or from the variable `env`.
pub(crate) fn venv_tool(name: &str, env: &str) -> PathBuf {
    let tool = std::env::var_os(env).map_or_else(
        || repo(&format!("target/test-venv/bin/{name}")),
        PathBuf::from,
    );
    assert!(
        tool.exists(),
        "{} is missing: run ./tests/run.sh",
        tool.display()
    );
    tool
}

/// Runs a linter on a file of the repository, showing what it said when it fails.
pub(crate) fn assert_lint_passes(tool: &Path, args: &[&str], file: &str) {
    let out = std::process::Command::new(tool)
        .args(args)
        .arg(repo(file))
        .output()
        .unwrap_or_else(|e| panic!("{} runs: {e}", tool.display()));
    assert!(
        out.status.success(),
        "{file}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A loopback address nothing listens on: connections to it are refused.
pub(crate) fn closed_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
}

/// Base64, as Secrets hold their data.
pub(crate) fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The in-repo copy of the real EKS node.
pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

pub(crate) fn eks_node() -> Value {
    let list: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("k8s-nodelist-eks-real.json")).unwrap(),
    )
    .unwrap();
    list["items"][0].clone()
}

pub(crate) const EPHEMERAL_VALUES: &str = "bootstrap:\n  mode: ephemeral\n  maxTier: \"1.5\"\n  env: dev\n  buildId: \"26-01-23-01\"\nplatform:\n  storageClassReady: true\n  rdsAvailable: true\ndns:\n  hostSuffix: b-26-01-23-01.dev.goldenpathidp.io\n";

/// A CRD as the API server stores it, `Established` or not.
pub(crate) fn crd(
    name: &str,
    kind: &str,
    scope: &str,
    versions: &[&str],
    established: bool,
) -> Value {
    let (plural, group) = name.split_once('.').unwrap();
    let status = if established { "True" } else { "False" };
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {
            "group": group,
            "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind, "listKind": format!("{kind}List")},
            "scope": scope,
            "versions": versions.iter().enumerate().map(|(i, v)| json!({
                "name": v, "served": true, "storage": i == 0,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
            })).collect::<Vec<_>>()
        },
        "status": {
            "acceptedNames": {"plural": plural, "kind": kind},
            "storedVersions": [versions[0]],
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": "2026-01-02T20:05:00Z"},
                {"type": "Established", "status": status, "reason": if established { "InitialNamesAccepted" } else { "Installing" }, "message": if established { "the initial names have been accepted" } else { "the CRD is being installed" }, "lastTransitionTime": "2026-01-02T20:05:01Z"}
            ]
        }
    })
}

pub(crate) fn coredns(available: bool) -> Value {
    let n = if available { 2 } else { 0 };
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": "kube-system", "labels": {"eks.amazonaws.com/component": "coredns", "k8s-app": "kube-dns"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
            "template": {"metadata": {"labels": {"k8s-app": "kube-dns"}}, "spec": {"containers": [{"name": "coredns", "image": "602401143452.dkr.ecr.eu-west-1.amazonaws.com/eks/coredns:v1.11.4-eksbuild.2"}]}}},
        "status": {
            "observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "readyReplicas": n, "availableReplicas": n,
            "conditions": [
                if available {
                    json!({"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."})
                } else {
                    json!({"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability."})
                },
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "ReplicaSet \"coredns-5d8b7d8d4f\" has successfully progressed."}
            ]
        }
    })
}

pub(crate) fn aws_node(desired: i64, ready: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "aws-node", "namespace": "kube-system", "labels": {"app.kubernetes.io/name": "aws-node", "k8s-app": "aws-node"}},
        "spec": {"selector": {"matchLabels": {"k8s-app": "aws-node"}},
            "template": {"metadata": {"labels": {"k8s-app": "aws-node"}}, "spec": {"containers": [{"name": "aws-node", "image": "602401143452.dkr.ecr.eu-west-1.amazonaws.com/amazon-k8s-cni:v1.19.2-eksbuild.1"}]}}},
        "status": {"currentNumberScheduled": desired, "desiredNumberScheduled": desired, "numberAvailable": ready, "numberMisscheduled": 0, "numberReady": ready, "observedGeneration": 1, "updatedNumberScheduled": desired}
    })
}

pub(crate) fn secret_store(version: &str, ready: bool, message: &str) -> Value {
    json!({
        "apiVersion": format!("external-secrets.io/{version}"), "kind": "ClusterSecretStore",
        "metadata": {"name": "aws-secretsmanager"},
        "spec": {"provider": {"aws": {"service": "SecretsManager", "region": "eu-west-1", "auth": {"jwt": {"serviceAccountRef": {"name": "external-secrets", "namespace": "external-secrets"}}}}}},
        "status": {
            "capabilities": "ReadWrite",
            "conditions": [{"lastTransitionTime": "2022-05-21T21:02:47Z", "message": message, "reason": if ready { "Valid" } else { "InvalidProviderConfig" }, "status": if ready { "True" } else { "False" }, "type": "Ready"}]
        }
    })
}

pub(crate) fn service_account(namespace: &str, name: &str, role: Option<&str>) -> Value {
    let mut sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}});
    if let Some(role) = role {
        sa["metadata"]["annotations"] = json!({"eks.amazonaws.com/role-arn": role});
    }
    sa
}

pub(crate) fn storage_class(name: &str, provisioner: &str, default: bool) -> Value {
    let mut sc = json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": name},
        "provisioner": provisioner, "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer"
    });
    if provisioner == "ebs.csi.aws.com" {
        sc["parameters"] = json!({"type": name, "encrypted": "true"});
    }
    if default {
        sc["metadata"]["annotations"] =
            json!({"storageclass.kubernetes.io/is-default-class": "true"});
    }
    sc
}

/// Sets the Ready condition of the three nodes of [`Cluster::healthy`], one update each.
pub(crate) fn set_all_nodes(cluster: &Cluster, ready: bool) {
    for node in fake_kube::nodes_from_template(&eks_node(), 3, true) {
        let name = node["metadata"]["name"].as_str().unwrap();
        cluster
            .kube
            .update("v1", "Node", None, name, |node| set_node_ready(node, ready))
            .unwrap_or_else(|e| panic!("node {name}: {e}"));
    }
}

/// Sets the Ready condition of a node.
pub(crate) fn set_node_ready(node: &mut Value, ready: bool) {
    for c in node["status"]["conditions"].as_array_mut().unwrap() {
        if c["type"] == "Ready" {
            c["status"] = json!(if ready { "True" } else { "False" });
            c["reason"] = json!(if ready {
                "KubeletReady"
            } else {
                "KubeletNotReady"
            });
            c["message"] = json!(if ready {
                "kubelet is posting ready status"
            } else {
                "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"
            });
        }
    }
}

/// `--tier 2` on the ephemeral test cluster, then `args`: tier 2 is above an ephemeral
/// cluster's ceiling under the V1 contract rules, so these runs choose the ADR-0180
/// precedence with `maxTier` 2 (the values declare RDS, which tier 2 needs).
pub(crate) fn tier_2_adr<'a>(args: &[&'a str]) -> Vec<&'a str> {
    [
        "--contract-rules",
        "adr-0180",
        "--max-tier",
        "2",
        "--tier",
        "2",
    ]
    .into_iter()
    .chain(args.iter().copied())
    .collect()
}

/// Tier 0's nodes-ready alone, waiting up to 30 s, with a JSON report.
pub(crate) const WAIT_FOR_NODES: [&str; 8] = [
    "--tier",
    "0",
    "--check",
    "nodes-ready",
    "--wait",
    "30s",
    "--output",
    "json",
];

/// The AWS load balancer controller's pod webhook, as its chart installs it: fail-closed,
/// served by a Service in kube-system, for the pods of the namespaces labelled
/// `elbv2.k8s.aws/pod-readiness-gate-inject: enabled` (but the controller's own).
pub(crate) fn lb_controller_webhook() -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "aws-load-balancer-webhook"},
        "webhooks": [{
            "name": "mpod.elbv2.k8s.aws",
            "admissionReviewVersions": ["v1beta1"],
            "clientConfig": {"service": {"namespace": "kube-system", "name": "aws-load-balancer-webhook-service", "path": "/mutate-v1-pod"}},
            "failurePolicy": "Fail",
            "matchPolicy": "Equivalent",
            "namespaceSelector": {"matchExpressions": [{"key": "elbv2.k8s.aws/pod-readiness-gate-inject", "operator": "In", "values": ["enabled"]}]},
            "objectSelector": {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "NotIn", "values": ["aws-load-balancer-controller"]}]},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}],
            "sideEffects": "None",
        }],
    })
}

/// An EndpointSlice of a Service in kube-system with one endpoint, ready or not, as the
/// EndpointSlice controller writes it.
pub(crate) fn endpoint_slice(service: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{service}-x7k2p"), "namespace": "kube-system",
            "labels": {"kubernetes.io/service-name": service, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.12.34"], "conditions": {"ready": ready}}],
        "ports": [{"name": "webhook-server", "port": 9443, "protocol": "TCP"}],
    })
}

/// The checks of tiers 0 to 1.5 that talk to AWS rather than the cluster.
pub(crate) const AWS_CHECKS: [&str; 4] = [
    "route53-zone",
    "image-architecture",
    "irsa-roles",
    "dns-scope",
];

/// Which API server a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    /// The in-repo fake: a fresh server per test.
    Fake,
    /// The real kube-apiserver of this test binary, reset for each test.
    Real,
}

/// Runs each named scenario, an `async fn(Backend)`, as two tests, `NAME::fake` and
/// `NAME::real`: a difference between the servers shows up as one of them failing.
#[allow(
    unused_macros,
    reason = "each test binary uses a different part of the harness"
)]
macro_rules! on_both_servers {
    ($($scenario:ident),+ $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread")]
            async fn fake() {
                super::$scenario($crate::support::Backend::Fake).await;
            }
            #[tokio::test(flavor = "multi_thread")]
            async fn real() {
                super::$scenario($crate::support::Backend::Real).await;
            }
        }
    )+};
}
#[allow(
    unused_imports,
    reason = "each test binary uses a different part of the harness"
)]
pub(crate) use on_both_servers;

/// The API server of a test cluster, fake or real, with one interface for what tests do to
/// it: apply, change, read and delete objects. Fault injection (403s, 429s, stalls, revoked
/// tokens) is the fake's alone ([`Kube::fake`]).
pub(crate) enum Kube {
    Fake(FakeKube),
    Real(&'static ControlPlane),
}

impl Kube {
    /// Creates or replaces an object, status included (on the real server through the
    /// status subresource, as a controller writes it; namespaces are created as needed).
    pub(crate) fn apply(&self, obj: Value) -> anyhow::Result<()> {
        match self {
            Kube::Fake(k) => k.apply(obj),
            Kube::Real(k) => k.apply(obj),
        }
    }

    /// Applies every object of a YAML stream.
    pub(crate) fn apply_yaml(&self, yaml: &str) -> anyhow::Result<()> {
        fake_kube::objects_of_yaml(yaml)?
            .into_iter()
            .try_for_each(|obj| self.apply(obj))
    }

    /// Applies every object of a `.yaml` or `.json` file.
    pub(crate) fn load_file(&self, path: &Path) -> anyhow::Result<()> {
        match self {
            Kube::Fake(k) => k.load_file(path),
            Kube::Real(_) => self.apply_yaml(&std::fs::read_to_string(path)?),
        }
    }

    /// The object, if it exists.
    pub(crate) fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        match self {
            Kube::Fake(k) => k.get(api_version, kind, namespace, name),
            Kube::Real(k) => k.get(api_version, kind, namespace, name).unwrap(),
        }
    }

    /// Changes an object: read, `f`, written back (status included).
    pub(crate) fn update(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> anyhow::Result<()> {
        match self {
            Kube::Fake(k) => k.update(api_version, kind, namespace, name, f),
            Kube::Real(_) => {
                let mut obj = self
                    .get(api_version, kind, namespace, name)
                    .ok_or_else(|| anyhow::anyhow!("{kind} {name:?} does not exist"))?;
                f(&mut obj);
                self.apply(obj)
            }
        }
    }

    /// Deletes an object.
    pub(crate) fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> anyhow::Result<()> {
        match self {
            Kube::Fake(k) => k.delete(api_version, kind, namespace, name),
            Kube::Real(k) => {
                k.delete(api_version, kind, namespace, name)?;
                // A deleted CRD lingers (Terminating) until the server has removed its
                // objects; the fake removes it at once.
                let deadline = Instant::now() + Duration::from_secs(30);
                while kind == "CustomResourceDefinition"
                    && k.get(api_version, kind, None, name)?.is_some()
                {
                    anyhow::ensure!(Instant::now() < deadline, "CRD {name} is not deleted");
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(())
            }
        }
    }

    /// The fake server, for fault injection and its request log.
    pub(crate) fn fake(&self) -> &FakeKube {
        match self {
            Kube::Fake(k) => k,
            Kube::Real(_) => panic!("this test injects faults: only the fake server can"),
        }
    }

    /// The real control plane.
    pub(crate) fn real(&self) -> &'static ControlPlane {
        match self {
            Kube::Real(k) => k,
            Kube::Fake(_) => panic!("this test needs the real server"),
        }
    }

    /// A kubeconfig as `system:serviceaccount:argocd:preflight`, which may read everything.
    pub(crate) fn kubeconfig_yaml(&self) -> String {
        match self {
            Kube::Fake(k) => k.kubeconfig_yaml(),
            Kube::Real(k) => k.reader_kubeconfig(),
        }
    }

    /// What the server's `/version` reports as its `gitVersion`.
    pub(crate) fn git_version(&self) -> String {
        match self {
            Kube::Fake(k) => k.git_version(),
            Kube::Real(k) => k.git_version.clone(),
        }
    }

    /// The server's URL.
    pub(crate) fn url(&self) -> String {
        match self {
            Kube::Fake(k) => k.url(),
            Kube::Real(k) => k.url.clone(),
        }
    }
}

/// The names of the CRDs of `tests/fixtures/crds/`.
pub(crate) fn crd_names() -> std::collections::BTreeSet<String> {
    ControlPlane::crd_manifests()
        .iter()
        .map(|c| c["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

/// A test cluster: an API server, a scratch directory with its kubeconfig and values.
pub(crate) struct Cluster {
    pub(crate) kube: Kube,
    pub(crate) dir: TempDir,
    /// On the real server, this test's exclusive use of it.
    _exclusive: Option<tokio::sync::MutexGuard<'static, ()>>,
    /// On the real server, where its audit log stood when this cluster was made.
    audit_mark: usize,
}

impl Cluster {
    /// A cluster on which every check of tiers 0 to 1.5 passes: three real EKS nodes, the
    /// platform's CRDs (`tests/fixtures/crds/`) and `tests/fixtures/cluster-healthy.yaml`.
    pub(crate) async fn healthy() -> Cluster {
        Cluster::healthy_on(Backend::Fake).await
    }

    /// [`Cluster::healthy`] on either server.
    pub(crate) async fn healthy_on(backend: Backend) -> Cluster {
        let cluster = Cluster::with_crds(backend, &crd_names()).await;
        for node in fake_kube::nodes_from_template(&eks_node(), 3, true) {
            cluster.kube.apply(node).unwrap();
        }
        cluster
            .kube
            .load_file(&fixture("cluster-healthy.yaml"))
            .unwrap();
        cluster
    }

    /// A cluster with nothing in it.
    pub(crate) async fn empty() -> Cluster {
        Cluster::empty_on(Backend::Fake).await
    }

    /// [`Cluster::empty`] on either server.
    pub(crate) async fn empty_on(backend: Backend) -> Cluster {
        Cluster::with_crds(backend, &std::collections::BTreeSet::new()).await
    }

    /// A cluster with only the named CRDs of `tests/fixtures/crds/`.
    async fn with_crds(backend: Backend, crds: &std::collections::BTreeSet<String>) -> Cluster {
        let (kube, exclusive) = match backend {
            Backend::Fake => {
                let kube = FakeKube::start().await.unwrap();
                for crd in ControlPlane::crd_manifests() {
                    if crds.contains(crd["metadata"]["name"].as_str().unwrap()) {
                        kube.apply(crd).unwrap();
                    }
                }
                (Kube::Fake(kube), None)
            }
            Backend::Real => {
                let guard = control_plane::exclusive().lock().await;
                let plane = control_plane::control_plane();
                plane.reset(crds).unwrap();
                (Kube::Real(plane), Some(guard))
            }
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kubeconfig"), kube.kubeconfig_yaml()).unwrap();
        std::fs::write(dir.path().join("values.yaml"), EPHEMERAL_VALUES).unwrap();
        let audit_mark = match &kube {
            Kube::Real(k) => k.audit_mark(),
            Kube::Fake(_) => 0,
        };
        Cluster {
            kube,
            dir,
            _exclusive: exclusive,
            audit_mark,
        }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `preflight --kubeconfig … --values … <args>`, with a clean environment and without the
    /// AWS checks, which have tests of their own against moto ([`Cluster::preflight_aws`]).
    pub(crate) fn preflight(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = self.command(args);
        cmd.args(AWS_CHECKS.iter().flat_map(|id| ["--skip", id]));
        cmd
    }

    /// [`Cluster::preflight`] without leaving the AWS checks out: the caller points them at an
    /// endpoint of its own.
    pub(crate) fn preflight_every_check(&self, args: &[&str]) -> tokio::process::Command {
        self.command(args)
    }

    /// [`Cluster::preflight`] with every check, the AWS ones against `moto`.
    pub(crate) fn preflight_aws(
        &self,
        moto: &moto::Moto,
        args: &[&str],
    ) -> tokio::process::Command {
        let mut cmd = self.command(args);
        moto.env(&mut cmd);
        cmd
    }

    /// [`Cluster::preflight`] with the backoff between attempts, and the longest wait for a
    /// watch event, set to minutes: a run that notices a change within a second of it while
    /// waiting can only have been told by a watch.
    ///
    /// nodes-ready then needs all three of the test cluster's nodes: on the real server, the
    /// harness changes them one request each, and a check reading between two of them must
    /// keep waiting rather than settle on a warning.
    pub(crate) fn preflight_watching(&self, args: &[&str]) -> tokio::process::Command {
        let config = self.write(
            "long-backoff.yaml",
            "runner:\n  backoffInitial: 2m\n  backoffMax: 4m\nchecks:\n  nodes-ready:\n    minReady: 3\n",
        );
        let mut cmd = self.preflight(args);
        cmd.env("PREFLIGHT_CONFIG", config);
        cmd
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = preflight_cmd();
        cmd.arg("--kubeconfig").arg(self.path("kubeconfig"));
        cmd.arg("--values").arg(self.path("values.yaml"));
        cmd.args(args);
        cmd.env("HOME", self.dir.path());
        cmd
    }
}

/// The real binary with an environment free of the caller's PREFLIGHT_* and kube settings
/// (the in-cluster ones too: the tests may themselves run in a Pod).
pub(crate) fn preflight_cmd() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_preflight"));
    for (key, _) in std::env::vars() {
        if key.starts_with("PREFLIGHT_")
            || key == "KUBECONFIG"
            || key.starts_with("KUBERNETES_SERVICE_")
            || key.starts_with("GITHUB_")
        {
            cmd.env_remove(key);
        }
    }
    cmd.env("PREFLIGHT_LOG", "info");
    cmd.env("NO_COLOR", "1");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.kill_on_drop(true);
    cmd
}

/// What a run of the binary left behind.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) elapsed: Duration,
}

impl Run {
    /// The JSON report, when the run was asked for `--output json` on stdout; it must follow
    /// the published schema. (Or the plan document, from `preflight plan -o json`.)
    pub(crate) fn report(&self) -> Value {
        let report: Value = serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not a JSON report ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        });
        // The plan document (`preflight plan -o json`) is read here too, with its own schema.
        if report["schema"] != "preflight.plan/v1" {
            assert_follows_schema(&report);
        }
        report
    }

    /// The result of one check in the JSON report.
    pub(crate) fn check(&self, id: &str) -> Value {
        let report = self.report();
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no check {id} in {report:#}"))
    }
}

/// Fails unless `report` is valid under the published JSON Schema of the report, closed: the
/// published schema leaves objects open for readers of a growing v1, and here every field the
/// binary writes must be one the schema describes.
pub(crate) fn assert_follows_schema(report: &Value) {
    fn closed(schema: &mut Value) {
        if let Some(object) = schema.as_object_mut() {
            if object.contains_key("properties") && object.get("type") == Some(&"object".into()) {
                object.insert("additionalProperties".into(), false.into());
            }
            object.values_mut().for_each(closed);
        } else if let Some(items) = schema.as_array_mut() {
            items.iter_mut().for_each(closed);
        }
    }
    static VALIDATOR: std::sync::LazyLock<jsonschema::Validator> = std::sync::LazyLock::new(|| {
        let mut schema = serde_json::from_str(preflight_core::report::JSON_SCHEMA).unwrap();
        closed(&mut schema);
        jsonschema::validator_for(&schema).unwrap()
    });
    let errors: Vec<String> = VALIDATOR
        .iter_errors(report)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "the report breaks its schema: {errors:#?}\n{report:#}"
    );
}

/// Runs a command to completion (with a generous safety timeout: a hang is a failure).
pub(crate) async fn run(mut cmd: tokio::process::Command) -> Run {
    finish(cmd.spawn().unwrap(), Duration::from_secs(60)).await
}

/// Waits for a started preflight, failing the test if it outlives `limit`.
pub(crate) async fn finish(child: tokio::process::Child, limit: Duration) -> Run {
    let start = Instant::now();
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("preflight did not exit within {limit:?}"))
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

/// Waits for a run started before a change the test just made, and asserts that it ended
/// within a second of it.
pub(crate) async fn noticed_within_a_second(child: tokio::process::Child) -> Run {
    let changed = Instant::now();
    let run = finish(child, Duration::from_secs(60)).await;
    let after = changed.elapsed();
    assert!(
        after < Duration::from_secs(1),
        "the run ended {after:?} after the change: not noticed through a watch\n{}\n{}",
        run.stdout,
        run.stderr
    );
    run
}

/// Asserts the status and code of a check, showing the whole report when they differ.
pub(crate) fn assert_check(run: &Run, id: &str, status: &str, code: &str) {
    let c = run.check(id);
    assert_eq!(
        (c["status"].as_str(), c["code"].as_str()),
        (Some(status), Some(code)),
        "check {id}:\n{c:#}\nstderr:\n{}",
        run.stderr
    );
}

/// The YAML documents of a multi-document text (comments dropped).
pub(crate) fn documents(yaml: &str) -> Vec<Value> {
    yaml.split("\n---\n")
        .map(|d| {
            d.lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_saphyr::from_str(&d).unwrap_or_else(|e| panic!("{e}\n{d}")))
        .collect()
}

/// The objects `kubectl kustomize` renders from a directory of the repository (a hook).
pub(crate) fn render(dir: &str) -> Vec<Value> {
    let kubectl = venv_tool("kubectl", "PREFLIGHT_KUBECTL");
    let out = std::process::Command::new(kubectl)
        .arg("kustomize")
        .arg(repo(dir))
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "{dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    documents(&String::from_utf8_lossy(&out.stdout))
}

/// A credential plugin: a script printing `stdout` and `stderr`, then exiting with `status`.
pub(crate) fn plugin(dir: &Path, name: &str, stdout: &str, stderr: &str, status: i32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\ncat <<'EOF'\n{stdout}\nEOF\nprintf '%s\\n' '{stderr}' >&2\nexit {status}\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// An `ExecCredential` of `client.authentication.k8s.io/v1` carrying `token`.
pub(crate) fn exec_credential(token: &str) -> String {
    serde_json::json!({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
        "status": {"token": token, "expirationTimestamp": "2099-01-01T00:00:00Z"}})
    .to_string()
}
