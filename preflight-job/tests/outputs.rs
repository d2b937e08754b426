//! Several report outputs in one run, and the values read from the cluster's ConfigMap.

mod support;

use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn writes_every_output_at_once() {
    let cluster = Cluster::healthy().await;
    cluster
        .kube
        .delete("networking.k8s.io/v1", "IngressClass", None, "kong")
        .unwrap();
    let (json_path, junit_path, summary, termination) = (
        cluster.path("report.json"),
        cluster.path("report.xml"),
        cluster.path("summary.md"),
        cluster.path("termination-log"),
    );
    let mut cmd = cluster.preflight(&[
        "--tier",
        "1.5",
        "--output",
        "human",
        "--output",
        &format!("json={}", json_path.display()),
        "--output",
        &format!("junit={}", junit_path.display()),
        "--output",
        "github",
        "--termination-message-path",
        termination.to_str().unwrap(),
    ]);
    cmd.env("GITHUB_STEP_SUMMARY", &summary);
    let run = run(cmd).await;
    assert_eq!(run.code, 1, "{}", run.stderr);

    assert!(
        run.stdout.contains("× ingress-class"),
        "human on stdout:\n{}",
        run.stdout
    );
    assert!(run.stdout.contains("✔ kube-api"), "{}", run.stdout);
    assert!(
        !run.stdout.contains('\u{1b}'),
        "no colour when stdout is not a terminal"
    );
    assert!(
        run.stdout
            .contains("::error title=preflight ingress-class (ingress-class-missing)::"),
        "{}",
        run.stdout
    );

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(report["verdict"], "failed");
    let junit = std::fs::read_to_string(&junit_path).unwrap();
    assert!(
        junit.starts_with("<?xml") && junit.contains("ingress-class-missing"),
        "{junit}"
    );
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(summary.contains("ingress-class"), "{summary}");
    let termination = std::fs::read(&termination).unwrap();
    assert!(termination.len() <= 4096);
    assert!(
        String::from_utf8(termination)
            .unwrap()
            .contains("ingress-class")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn values_come_from_the_bootstrap_configmap_and_flags_override_them() {
    let cluster = Cluster::healthy().await;
    cluster
        .kube
        .apply(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "goldenpath-bootstrap", "namespace": "kube-system"},
            "data": {"values.yaml": "bootstrap:\n  mode: ephemeral\n  maxTier: \"1\"\n  env: dev\n  buildId: \"26-01-23-01\"\n"}
        }))
        .unwrap();
    // Under the V1 rules the cluster's maxTier must agree with its mode, and the error says
    // where it came from.
    let v1 = run(cluster.preflight(&["--tier", "1"])).await;
    assert_eq!(v1.code, 2, "{}", v1.stderr);
    assert!(
        v1.stderr.contains("ConfigMap kube-system/goldenpath-bootstrap (key values.yaml, line 3): bootstrap.maxTier: \"1\" disagrees with bootstrap.mode ephemeral"),
        "{}",
        v1.stderr
    );
    // Under ADR-0180 the cluster's maxTier (1) is the ceiling, overriding the file's (1.5).
    let adr = ["--contract-rules", "adr-0180"];
    let run1 = run(cluster.preflight(&[&adr[..], &["--tier", "1.5"]].concat())).await;
    assert_eq!(run1.code, 2, "{}", run1.stderr);
    assert!(
        run1.stderr.contains("tier 1.5 is above this cluster's ceiling 1: bootstrap.maxTier is 1 (ConfigMap kube-system/goldenpath-bootstrap (key values.yaml, line 3))"),
        "{}",
        run1.stderr
    );
    // A flag overrides the cluster.
    let run2 = run(cluster.preflight(
        &[
            &adr[..],
            &["--tier", "1.5", "--max-tier", "1.5", "--output", "json"],
        ]
        .concat(),
    ))
    .await;
    assert_eq!(run2.code, 0, "{}", run2.stderr);
    assert!(
        run2.report()["notes"].as_array().unwrap().iter().any(|n| n
            == "values read from ConfigMap kube-system/goldenpath-bootstrap (key values.yaml)")
    );
    // Without a tier, the ceiling is checked; the cluster's tier-1.5 Application is then
    // above it, which the tier-gating guard reports.
    let run3 = run(cluster.preflight(&[&adr[..], &["--output", "json"]].concat())).await;
    assert_eq!(run3.code, 1);
    assert_eq!(run3.report()["tier"], "1");
    assert_check(&run3, "tier-gating", "fail", "tier-gating-violated");
    assert!(
        run3.check("tier-gating")["message"]
            .as_str()
            .unwrap()
            .contains("kube-prometheus-stack is tier 1.5, above this cluster's ceiling 1")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_configmap_is_a_configuration_error() {
    let cluster = Cluster::healthy().await;
    cluster
        .kube
        .apply(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "goldenpath-bootstrap", "namespace": "kube-system"},
            "data": {"values.yaml": "bootstrap:\n  mode: ephemeral\n  colour: blue\n"}
        }))
        .unwrap();
    let run = run(cluster.preflight(&["--tier", "1"])).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("ConfigMap kube-system/goldenpath-bootstrap")
            && run.stderr.contains("unknown field `colour`"),
        "{}",
        run.stderr
    );
}
