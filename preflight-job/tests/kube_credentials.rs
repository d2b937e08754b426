//! Kubernetes credentials as production hands them to preflight, through the real binary:
//! the in-cluster ServiceAccount of a hook Pod (token, CA and namespace files under
//! `PREFLIGHT_SERVICEACCOUNT_ROOT`, the server from `KUBERNETES_SERVICE_HOST`/`PORT`), and a
//! kubeconfig whose user is an exec credential plugin (EKS's `aws eks get-token`), passing
//! and failing. On the real kube-apiserver, a token's identity and RBAC are the server's own:
//! what a run may read proves which token it sent.

#![allow(clippy::unwrap_used, reason = "a test stops on a broken setup")]

mod support;

use std::path::Path;

use serde_json::json;
use support::*;

/// The ServiceAccount the runs authenticate as: it may read nodes, and nothing else.
const ACCOUNT: (&str, &str) = ("argocd", "preflight-nodes");

/// The checks of the runs: `kube-api` names the identity, `nodes-ready` is allowed,
/// `coredns` is not.
const CHECKS: [&str; 10] = [
    "--tier",
    "0",
    "--no-cluster-values",
    "--check",
    "kube-api",
    "--check",
    "nodes-ready",
    "--check",
    "coredns",
    "--output",
];

/// The healthy cluster on the real server, with [`ACCOUNT`] allowed to read nodes only.
async fn cluster_with_node_reader() -> Cluster {
    let cluster = Cluster::healthy_on(Backend::Real).await;
    let (namespace, name) = ACCOUNT;
    for obj in [
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
            "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]}),
    ] {
        cluster.kube.apply(obj).unwrap();
    }
    cluster
}

/// A token of [`ACCOUNT`], minted by the server.
fn account_token(cluster: &Cluster) -> String {
    let (namespace, name) = ACCOUNT;
    cluster.kube.real().token_for(namespace, name).unwrap()
}

/// Asserts that a run authenticated as [`ACCOUNT`] and got exactly its permissions: the server
/// named it, let it read the nodes and refused the rest.
fn assert_ran_as_the_account(run: &Run) {
    let (namespace, name) = ACCOUNT;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_check(run, "kube-api", "pass", "api-ready");
    assert_eq!(
        run.check("kube-api")["evidence"]["user"],
        format!("system:serviceaccount:{namespace}:{name}")
    );
    assert_check(run, "nodes-ready", "pass", "nodes-ready");
    assert_check(run, "coredns", "fail", "forbidden");
}

/// A Pod's ServiceAccount files, laid out under `root` as the kubelet mounts them.
fn lay_out(root: &Path, token: &str, ca_pem: &str, namespace: Option<&str>) {
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(root.join("token"), token).unwrap();
    std::fs::write(root.join("ca.crt"), ca_pem).unwrap();
    if let Some(namespace) = namespace {
        std::fs::write(root.join("namespace"), namespace).unwrap();
    }
}

/// `preflight` as a hook Pod runs it: no kubeconfig anywhere (`HOME` without `.kube`), the
/// API server from the service variables, the ServiceAccount's files under `root`; the
/// test's values file.
fn in_pod(cluster: &Cluster, root: &Path, args: &[&str]) -> tokio::process::Command {
    let mut cmd = in_pod_without_values(cluster, root);
    cmd.arg("--values").arg(cluster.path("values.yaml"));
    cmd.args(args);
    cmd
}

/// [`in_pod`] with the contract from the bootstrap ConfigMap alone, as in a hook.
fn in_pod_without_values(cluster: &Cluster, root: &Path) -> tokio::process::Command {
    let url = cluster.kube.url();
    let port = url.rsplit(':').next().unwrap().to_owned();
    let mut cmd = preflight_cmd();
    cmd.env("HOME", cluster.path("home"))
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", port)
        .env("PREFLIGHT_SERVICEACCOUNT_ROOT", root);
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn in_cluster_the_service_accounts_token_and_ca_are_used() {
    let cluster = cluster_with_node_reader().await;
    let plane = cluster.kube.real();
    let root = cluster.path("serviceaccount");
    lay_out(
        &root,
        &account_token(&cluster),
        &plane.ca_pem,
        Some("argocd"),
    );
    std::fs::create_dir_all(cluster.path("home")).unwrap();

    let out = run(in_pod(&cluster, &root, &[&CHECKS[..], &["json"]].concat())).await;
    assert_ran_as_the_account(&out);
    // The refusal is the server's, for this account, and the hint is the rule to add.
    let coredns = out.check("coredns");
    assert!(
        coredns["message"]
            .as_str()
            .unwrap()
            .contains("system:serviceaccount:argocd:preflight-nodes"),
        "{coredns:#}"
    );

    // The bootstrap ConfigMap, read as a hook reads it, with the account's permission.
    cluster
        .kube
        .apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "goldenpath-bootstrap", "namespace": "kube-system"},
            "data": {"values.yaml": EPHEMERAL_VALUES}}))
        .unwrap();
    let refused = run(in_pod(
        &cluster,
        &root,
        &["--tier", "0", "--output", "json"],
    ))
    .await;
    assert_eq!(refused.code, 2, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused
            .stderr
            .contains("cannot read the bootstrap ConfigMap kube-system/goldenpath-bootstrap"),
        "{}",
        refused.stderr
    );
    cluster
        .kube
        .apply(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "bootstrap-reader", "namespace": "kube-system"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["goldenpath-bootstrap"], "verbs": ["get", "list", "watch"]}]}))
        .unwrap();
    cluster
        .kube
        .apply(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "bootstrap-reader", "namespace": "kube-system"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "bootstrap-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT.1, "namespace": ACCOUNT.0}]}))
        .unwrap();
    let mut from_cluster = in_pod_without_values(&cluster, &root);
    from_cluster.args(["--tier", "0", "--check", "nodes-ready", "--output", "json"]);
    let from_cluster = run(from_cluster).await;
    assert_eq!(
        from_cluster.code, 0,
        "{}\n{}",
        from_cluster.stdout, from_cluster.stderr
    );
    let notes = from_cluster.report()["notes"].to_string();
    assert!(
        notes.contains("values read from ConfigMap kube-system/goldenpath-bootstrap"),
        "{notes}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn in_cluster_a_ca_that_did_not_sign_the_server_fails_clearly() {
    let cluster = cluster_with_node_reader().await;
    let root = cluster.path("serviceaccount");
    let other = fake_kube::test_certificates().unwrap();
    lay_out(&root, &account_token(&cluster), &other.ca_pem, None);
    std::fs::create_dir_all(cluster.path("home")).unwrap();
    let mark = cluster.kube.real().audit_mark();
    let run = run(in_pod(&cluster, &root, &[&CHECKS[..], &["json"]].concat())).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, "kube-api", "fail", "api-certificate-untrusted");
    let api = run.check("kube-api");
    assert!(
        api["message"]
            .as_str()
            .unwrap()
            .starts_with("the Kubernetes API server's certificate is not trusted (certificate signature failure): the CA preflight was given did not sign it"),
        "{api:#}"
    );
    assert!(
        api["hint"]
            .as_str()
            .unwrap()
            .contains("ServiceAccount's ca.crt"),
        "{api:#}"
    );
    // Nothing was read with the token: the server saw no request from the account.
    let (namespace, name) = ACCOUNT;
    let user = format!("system:serviceaccount:{namespace}:{name}");
    let seen = cluster.kube.real().audit(mark, &user).len();
    assert_eq!(seen, 0, "requests reached the server as {user}");
}

#[tokio::test(flavor = "multi_thread")]
async fn in_cluster_missing_or_broken_files_are_configuration_errors() {
    let cluster = Cluster::empty().await;
    std::fs::create_dir_all(cluster.path("home")).unwrap();
    let root = cluster.path("serviceaccount");
    let args = ["--tier", "0", "--no-cluster-values", "--output", "json"];

    // No token file: exit 2, naming it.
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("ca.crt"), cluster.kube.fake().ca_pem()).unwrap();
    let no_token = run(in_pod(&cluster, &root, &args)).await;
    assert_eq!(no_token.code, 2, "{}", no_token.stderr);
    assert!(
        no_token.stderr.contains(&format!(
            "cannot read the ServiceAccount's {}",
            root.join("token").display()
        )),
        "{}",
        no_token.stderr
    );

    // A CA bundle with no certificate in it: exit 2, naming it.
    std::fs::write(root.join("token"), cluster.kube.fake().token()).unwrap();
    std::fs::write(root.join("ca.crt"), "not a certificate\n").unwrap();
    let bad_ca = run(in_pod(&cluster, &root, &args)).await;
    assert_eq!(bad_ca.code, 2, "{}", bad_ca.stderr);
    assert!(
        bad_ca.stderr.contains(&format!(
            "the ServiceAccount's CA bundle {} is unusable",
            root.join("ca.crt").display()
        )),
        "{}",
        bad_ca.stderr
    );

    // Not in a Pod and no kubeconfig: exit 2, saying where configuration comes from.
    let mut outside = in_pod(&cluster, &root, &args);
    outside.env_remove("KUBERNETES_SERVICE_HOST");
    let outside = run(outside).await;
    assert_eq!(outside.code, 2, "{}", outside.stderr);
    assert!(
        outside.stderr.contains("no Kubernetes configuration"),
        "{}",
        outside.stderr
    );

    // The fake server, with its own token and CA: the files are all it takes.
    std::fs::write(root.join("ca.crt"), cluster.kube.fake().ca_pem()).unwrap();
    let fine = run(in_pod(
        &cluster,
        &root,
        &[
            "--tier",
            "0",
            "--check",
            "kube-api",
            "--no-cluster-values",
            "--output",
            "json",
        ],
    ))
    .await;
    assert_eq!(fine.code, 0, "{}\n{}", fine.stdout, fine.stderr);
}

/// A kubeconfig for the server at `url` whose user runs `plugin`, as `aws eks
/// update-kubeconfig` writes one (with `interactiveMode`, which client.authentication v1
/// requires; IfAvailable, which is interactive only on a terminal).
fn exec_kubeconfig(url: &str, ca_pem: &str, plugin: &Path) -> String {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: eks\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\nusers:\n- name: eks\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n      args: [--region, eu-west-1, eks, get-token, --cluster-name, goldenpath-dev]\n      interactiveMode: IfAvailable\n      provideClusterInfo: false\ncontexts:\n- name: eks\n  context:\n    cluster: eks\n    user: eks\ncurrent-context: eks\n",
        plugin.display()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exec_plugins_token_is_used() {
    let cluster = cluster_with_node_reader().await;
    let plane = cluster.kube.real();
    let script = plugin(
        cluster.dir.path(),
        "get-token",
        &exec_credential(&account_token(&cluster)),
        "",
        0,
    );
    let kubeconfig = cluster.write(
        "exec.kubeconfig",
        &exec_kubeconfig(&plane.url, &plane.ca_pem, &script),
    );
    let mut cmd = preflight_cmd();
    cmd.arg("--kubeconfig").arg(&kubeconfig);
    cmd.arg("--values").arg(cluster.path("values.yaml"));
    cmd.args(CHECKS).arg("json");
    let run = run(cmd).await;
    assert_ran_as_the_account(&run);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_exec_plugin_is_auth_failed_with_its_stderr_and_not_its_output() {
    let cluster = Cluster::healthy().await;
    let fake = cluster.kube.fake();
    // What `aws eks get-token` says when its SSO session has expired; it also printed a
    // credential before failing, which must not be shown.
    const STDERR: &str =
        "Error when retrieving token from sso: Token has expired and refresh failed";
    const PRINTED: &str = "canary-exec-half-written-token-4b1d";
    let script = plugin(
        cluster.dir.path(),
        "get-token",
        &exec_credential(PRINTED),
        STDERR,
        1,
    );
    let kubeconfig = cluster.write(
        "exec.kubeconfig",
        &exec_kubeconfig(&fake.url(), &fake.ca_pem(), &script),
    );
    let mut cmd = preflight_cmd();
    cmd.arg("--kubeconfig").arg(&kubeconfig);
    cmd.arg("--values").arg(cluster.path("values.yaml"));
    cmd.args(["--tier", "0", "--output", "json"]);
    let run = run(cmd).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    for id in ["kube-api", "nodes-ready", "coredns", "cni"] {
        let c = run.check(id);
        assert!(
            c["code"] == "auth-failed"
                || (c["status"] == "skip" && c["blockedBy"].to_string().contains("kube-api")),
            "{c:#}"
        );
    }
    assert_check(&run, "kube-api", "fail", "auth-failed");
    let message = run.check("kube-api")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains(&format!(
            "the kubeconfig's credential plugin (user.exec) exited with exit status: 1: {STDERR}"
        )),
        "{message}"
    );
    assert!(
        run.check("kube-api")["hint"]
            .as_str()
            .unwrap()
            .contains("aws eks get-token")
    );
    // The bootstrap ConfigMap, read first, says the same in the report's notes.
    let notes = run.report()["notes"].to_string();
    assert!(notes.contains(STDERR), "{notes}");
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        !all.contains(PRINTED),
        "the plugin's output was shown:\n{all}"
    );
    // Not one request reached the server: there was no token to send.
    assert!(
        fake.requests().is_empty(),
        "{:?}",
        fake.requests().iter().map(|r| &r.path).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_kubeconfig_is_named_without_its_text() {
    let cluster = Cluster::empty().await;
    const TOKEN: &str = "canary-kubeconfig-token-0c9e";
    for (name, text, said) in [
        (
            "unclosed.kubeconfig",
            format!(
                "apiVersion: v1\nkind: Config\nusers:\n- name: x\n  user:\n    token: \"{TOKEN}\n    exec: [\n"
            ),
            "unclosed quote at line 6, column 12",
        ),
        (
            "misplaced.kubeconfig",
            format!(
                "apiVersion: v1\nkind: Config\nusers:\n- name: x\n  user:\n    token: {TOKEN}\n  - bad\n"
            ),
            "at line 7, column 5",
        ),
    ] {
        let path = cluster.write(name, &text);
        let mut cmd = preflight_cmd();
        cmd.arg("--kubeconfig").arg(&path);
        cmd.arg("--values").arg(cluster.path("values.yaml"));
        cmd.args(["--tier", "0", "--output", "json"]);
        let run = run(cmd).await;
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("cannot load the kubeconfig {}: ", path.display()))
                && run.stderr.contains(said),
            "{}",
            run.stderr
        );
        assert!(
            !run.stderr.contains(TOKEN) && !run.stdout.contains(TOKEN),
            "{}",
            run.stderr
        );
    }
}
