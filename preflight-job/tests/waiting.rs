//! Waiting: conditions watched (not polled) until the deadline, transient failures retried,
//! the deadline and signals honoured, a blackholed API server never hanging the run.

#![allow(
    clippy::unwrap_used,
    reason = "scenarios run on both servers are not #[test] functions"
)]

mod support;

use std::time::Duration;

use serde_json::Value;
use support::*;

on_both_servers!(nodes_that_become_ready_are_noticed_through_a_watch);

async fn nodes_that_become_ready_are_noticed_through_a_watch(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    set_all_nodes(&cluster, false);
    let child = cluster.preflight_watching(&WAIT_FOR_NODES).spawn().unwrap();
    cluster.watching("/api/v1/nodes").await;
    set_all_nodes(&cluster, true);
    let run = noticed_within_a_second(child).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let check = run.check("nodes-ready");
    assert_eq!(check["status"], "pass");
    assert!(check["attempts"].as_u64().unwrap() >= 2, "{check:#}");
    assert!(
        cluster.requests_to("/api/v1/nodes", true) >= 1,
        "waited with a watch"
    );
    let lists = cluster.requests_to("/api/v1/nodes", false);
    assert!(lists <= 5, "not polled: {lists} lists in 1.5 s");
    assert!(
        run.stderr.contains("waiting: 0 of 3 nodes are Ready"),
        "progress is logged: {}",
        run.stderr
    );
}

on_both_servers!(
    a_crd_and_a_store_created_while_waiting_are_noticed,
    every_check_that_turns_ready_while_waiting_passes
);

/// On the real server the CRD is established by the server itself, at once: the fake also
/// shows it installing first.
async fn a_crd_and_a_store_created_while_waiting_are_noticed(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    let store_crd = "clustersecretstores.external-secrets.io";
    cluster
        .kube
        .delete(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            store_crd,
        )
        .unwrap();
    let child = cluster
        .preflight(&tier_2_adr(&[
            "--check",
            "crds",
            "--check",
            "cluster-secret-store",
            "--wait",
            "30s",
            "--output",
            "json",
        ]))
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    cluster
        .kube
        .apply(crd(
            store_crd,
            "ClusterSecretStore",
            "Cluster",
            &["v1", "v1beta1"],
            false,
        ))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster
        .kube
        .apply(crd(
            store_crd,
            "ClusterSecretStore",
            "Cluster",
            &["v1", "v1beta1"],
            true,
        ))
        .unwrap();
    cluster
        .kube
        .apply(secret_store("v1", false, "could not get provider client"))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    cluster
        .kube
        .apply(secret_store("v1", true, "store validated"))
        .unwrap();
    let run = finish(child, Duration::from_secs(20)).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.check("crds")["attempts"].as_u64().unwrap() >= 2);
    assert!(
        run.check("cluster-secret-store")["attempts"]
            .as_u64()
            .unwrap()
            >= 2
    );
    assert!(
        cluster.requests_to(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            true
        ) >= 1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_deadline_ends_the_wait_with_exit_3() {
    let cluster = Cluster::healthy().await;
    set_all_nodes(&cluster, false);
    let run = run(cluster.preflight(&["--tier", "0", "--wait", "3s", "--output", "json"])).await;
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    let report = run.report();
    assert_eq!(
        (report["end"].as_str(), report["verdict"].as_str()),
        (Some("deadline-reached"), Some("unsettled"))
    );
    let nodes = run.check("nodes-ready");
    assert_eq!(
        (
            nodes["status"].as_str(),
            nodes["code"].as_str(),
            nodes["settled"].as_bool()
        ),
        (Some("fail"), Some("nodes-not-ready"), Some(false))
    );
    assert_eq!(run.check("coredns")["settled"], true);
    assert!(run.elapsed < Duration::from_secs(5), "{:?}", run.elapsed);
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_server_errors_are_retried_while_waiting_and_fail_without() {
    let cluster = Cluster::healthy().await;
    cluster.kube.fake().fail_next(2, 503);
    let once = run(cluster.preflight(&[
        "--tier",
        "0",
        "--check",
        "nodes-ready",
        "--no-cluster-values",
        "--output",
        "json",
    ]))
    .await;
    assert_eq!(once.code, 1);
    assert_check(&once, "nodes-ready", "fail", "api-error");

    cluster.kube.fake().fail_next(2, 503);
    let waited = run(cluster.preflight(&[
        "--tier",
        "0",
        "--check",
        "nodes-ready",
        "--no-cluster-values",
        "--wait",
        "20s",
        "--output",
        "json",
    ]))
    .await;
    assert_eq!(waited.code, 0, "{}", waited.stdout);
    assert_eq!(waited.check("nodes-ready")["attempts"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blackholed_api_server_times_out_within_the_deadline() {
    let cluster = Cluster::healthy().await;
    cluster.kube.fake().blackhole(true);
    let once =
        run(cluster.preflight(&["--tier", "0", "--attempt-timeout", "1s", "--output", "json"]))
            .await;
    assert_eq!(once.code, 1, "{}\n{}", once.stdout, once.stderr);
    assert_check(&once, "kube-api", "fail", "timed-out");
    let notes = once.report()["notes"].to_string();
    assert!(
        notes.contains("goldenpath-bootstrap")
            && (notes.contains("timed out") || notes.contains("no answer")),
        "{notes}"
    );
    assert!(once.elapsed < Duration::from_secs(5), "{:?}", once.elapsed);

    let waited = run(cluster.preflight(&[
        "--tier",
        "0",
        "--attempt-timeout",
        "2s",
        "--wait",
        "4s",
        "--output",
        "json",
    ]))
    .await;
    assert_eq!(waited.code, 3, "{}\n{}", waited.stdout, waited.stderr);
    assert!(
        waited.elapsed < Duration::from_secs(6),
        "deadline 4 s, took {:?}",
        waited.elapsed
    );
    assert_eq!(waited.check("kube-api")["settled"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_ends_the_run_with_the_partial_report() {
    let cluster = Cluster::healthy().await;
    set_all_nodes(&cluster, false);
    let child = cluster
        .preflight(&["--tier", "0", "--wait", "60s", "--output", "json"])
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    send_sigterm(child.id().unwrap());
    let run = finish(child, Duration::from_secs(5)).await;
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    let report: Value = run.report();
    assert_eq!(report["end"], "interrupted");
    assert_eq!(
        run.check("kube-api")["status"],
        "pass",
        "what was known is kept"
    );
    assert_eq!(run.check("nodes-ready")["settled"], false);
    assert!(run.stderr.contains("SIGTERM"), "{}", run.stderr);
}

fn send_sigterm(pid: u32) {
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success());
}

async fn every_check_that_turns_ready_while_waiting_passes(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    let k = &cluster.kube;
    k.apply(coredns(false)).unwrap();
    k.apply(aws_node(3, 0)).unwrap();
    k.delete("networking.k8s.io/v1", "IngressClass", None, "kong")
        .unwrap();
    k.apply(service_account("external-dns", "external-dns", None))
        .unwrap();
    let prometheus = "prometheuses.monitoring.coreos.com";
    k.delete(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
        prometheus,
    )
    .unwrap();
    k.apply(storage_class("gp3", "ebs.csi.aws.com", false))
        .unwrap();
    k.apply(secret_store("v1", false, "could not get provider client"))
        .unwrap();

    // Tier 2's gate (the ADR-0180 rules allow it on the ephemeral test cluster), without the
    // checks of AWS (RDS, Secrets Manager, S3) and the database, which have tests of their own.
    let child = cluster
        .preflight(&tier_2_adr(&[
            "--skip",
            "rds-instance",
            "--skip",
            "secrets-manager",
            "--skip",
            "postgres",
            "--skip",
            "s3-bucket",
            "--wait",
            "30s",
            "--output",
            "json",
        ]))
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    k.apply(coredns(true)).unwrap();
    k.apply(aws_node(3, 3)).unwrap();
    k.load_file(&fixture("cluster-healthy.yaml")).unwrap();
    // Tier 1.5's Application finishes its sync.
    k.update(
        "argoproj.io/v1alpha1",
        "Application",
        Some("argocd"),
        "kube-prometheus-stack",
        |a| {
            a["status"] =
                serde_json::json!({"sync": {"status": "Synced"}, "health": {"status": "Healthy"}})
        },
    )
    .unwrap();
    k.apply(crd(prometheus, "Prometheus", "Namespaced", &["v1"], true))
        .unwrap();
    let run = finish(child, Duration::from_secs(20)).await;

    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for id in [
        "coredns",
        "cni",
        "lower-tiers-healthy",
        "ingress-class",
        "irsa",
        "cluster-secret-store",
        "observability-crds",
        "storage-class",
    ] {
        let check = run.check(id);
        assert_eq!(check["status"], "pass", "{check:#}");
        assert!(
            check["attempts"].as_u64().unwrap() >= 2,
            "{id} was re-checked after a change: {check:#}"
        );
    }
    for path in [
        "/apis/apps/v1/namespaces/kube-system/deployments",
        "/apis/apps/v1/namespaces/kube-system/daemonsets",
        "/apis/networking.k8s.io/v1/ingressclasses",
        "/api/v1/namespaces/external-dns/serviceaccounts",
        "/apis/external-secrets.io/v1/clustersecretstores",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        "/apis/storage.k8s.io/v1/storageclasses",
        // lower-tiers-healthy waits on the Applications with a watch too.
        "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications",
    ] {
        assert!(cluster.requests_to(path, true) >= 1, "{path} watched");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_connection_is_a_clear_failure() {
    let cluster = Cluster::healthy().await;
    let kubeconfig = cluster.path("kubeconfig");
    // Point the kubeconfig at a port nobody listens on.
    let closed = closed_addr();
    let text = std::fs::read_to_string(&kubeconfig)
        .unwrap()
        .replace(&cluster.kube.url(), &format!("https://{closed}"));
    std::fs::write(&kubeconfig, text).unwrap();
    let run = run(cluster.preflight(&["--tier", "0", "--output", "json"])).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_check(&run, "kube-api", "fail", "api-unreachable");
    assert!(
        run.check("kube-api")["message"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{}",
        run.stdout
    );
    assert!(run.elapsed < Duration::from_secs(5));
}
