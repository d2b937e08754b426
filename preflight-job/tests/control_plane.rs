//! The real control plane the end-to-end tests use: built from the pinned release, it
//! reports that release, enforces RBAC and mints ServiceAccount tokens.

#![allow(
    clippy::unwrap_used,
    reason = "scenarios run on both servers are not #[test] functions"
)]

mod support;

use serde_json::json;
use support::{Backend, Cluster, run};

#[tokio::test]
async fn the_real_server_reports_its_release_and_enforces_rbac() {
    let cluster = Cluster::empty_on(Backend::Real).await;
    let plane = cluster.kube.real();
    let go_mod = std::fs::read_to_string(support::repo("tests/kube-control-plane/go.mod")).unwrap();
    assert!(
        go_mod.contains(&format!("k8s.io/kubernetes {}", plane.git_version)),
        "/version says {}, go.mod pins another release",
        plane.git_version
    );

    // A ServiceAccount with no Role: its token is authenticated, and refused.
    cluster
        .kube
        .apply(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "nobody", "namespace": "argocd"}}))
        .unwrap();
    let kubeconfig = cluster.write(
        "sa.kubeconfig",
        &plane.kubeconfig_for("argocd", "nobody").unwrap(),
    );
    let preflight = |extra: &[&str]| {
        let mut cmd = support::preflight_cmd();
        cmd.arg("--kubeconfig").arg(&kubeconfig);
        cmd.arg("--values").arg(cluster.path("values.yaml"));
        cmd.args(["--tier", "0", "--output", "json"]).args(extra);
        cmd
    };
    // Its first read, the bootstrap ConfigMap, is refused: the run stops, naming the rule.
    let out = run(preflight(&[])).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("cannot read the bootstrap ConfigMap kube-system/goldenpath-bootstrap")
            && out
                .stderr
                .contains("resourceNames:\n    - goldenpath-bootstrap"),
        "{}",
        out.stderr
    );
    // Without it, the nodes are refused, with the account named as the server names it.
    let out = run(preflight(&["--no-cluster-values"])).await;
    support::assert_check(&out, "nodes-ready", "fail", "forbidden");
    let c = out.check("nodes-ready");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("system:serviceaccount:argocd:nobody"),
        "{c:#}"
    );
}
