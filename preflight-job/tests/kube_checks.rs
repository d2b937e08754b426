//! Every Kubernetes check of the tier gates and of Backstage's own hook, passing and failing,
//! through the real binary and a real kubeconfig: each scenario on both the fake and the real
//! API server, but those that inject faults (the fake's alone).

#![allow(
    clippy::unwrap_used,
    reason = "the scenarios run by on_both_servers! are not #[test] functions, which clippy's allow-unwrap-in-tests covers"
)]

mod support;

use serde_json::json;
use support::*;

on_both_servers!(a_healthy_cluster_passes_the_kubernetes_checks_of_tier_1_5);

async fn a_healthy_cluster_passes_the_kubernetes_checks_of_tier_1_5(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    let run = run(cluster.preflight(&["--tier", "1.5", "--output", "json"])).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.report();
    assert_eq!(report["schema"], "preflight.report/v1");
    assert_eq!(report["verdict"], "passed");
    let ids: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "kube-api",
            "nodes-ready",
            "coredns",
            "cni",
            "tier-gating",
            "sync-waves",
            "admission-webhooks",
            "lower-tiers-healthy",
            "crds",
            "ingress-class",
            "ingress-hosts",
            "irsa",
            "external-dns-confined",
            "storage-class"
        ]
    );
    for c in report["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "pass", "{c:#}");
    }
    assert_eq!(
        run.check("kube-api")["message"],
        format!(
            "Kubernetes {} reachable, authenticated as system:serviceaccount:argocd:preflight",
            cluster.kube.git_version()
        )
    );
    assert_eq!(
        run.check("nodes-ready")["message"],
        "3 of 3 nodes are Ready and schedulable (amd64: 3)"
    );
    assert_eq!(
        run.check("storage-class")["message"],
        "default StorageClass gp3 (ebs.csi.aws.com)"
    );
    let store = run_tier2_checks(&cluster, &["cluster-secret-store"]).await;
    assert_eq!(store.code, 0, "{}", store.stdout);
    assert_eq!(
        store.check("cluster-secret-store")["evidence"]["apiVersion"],
        "external-secrets.io/v1"
    );
}

/// A tier-2 run (tier 2 on the ephemeral test cluster needs the ADR-0180 rules) of some
/// checks only.
async fn run_tier2_checks(cluster: &Cluster, checks: &[&str]) -> Run {
    let mut args = tier_2_adr(&["--output", "json"]);
    for c in checks {
        args.extend(["--check", c]);
    }
    run(cluster.preflight(&args)).await
}

const CRD_API: &str = "apiextensions.k8s.io/v1";

/// The CRD `name` of an External Secrets release older than 0.17, which serves `v1beta1`
/// only, installed on an empty cluster (a served version cannot be dropped from an existing
/// CRD that stored objects at it). The real server's next reset reinstalls the platform's.
fn older_eso_crd(cluster: &Cluster, name: &str, kind: &str, scope: &str) {
    cluster
        .kube
        .apply(crd(name, kind, scope, &["v1beta1"], true))
        .unwrap();
}

// Fake-only: it revokes the token, a fault only the fake can inject.
#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_fails_the_api_check_and_blocks_the_rest() {
    let cluster = Cluster::healthy().await;
    cluster.kube.fake().revoke_token();
    let run = run(cluster.preflight(&tier_2_adr(&[
        "--check",
        "kube-api",
        "--check",
        "nodes-ready",
        "--check",
        "crds",
        "--check",
        "cluster-secret-store",
        "--output",
        "json",
        "--no-cluster-values",
    ])))
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_check(&run, "kube-api", "fail", "unauthorized");
    let nodes = run.check("nodes-ready");
    assert_eq!(
        (nodes["status"].as_str(), nodes["blockedBy"].as_str()),
        (Some("skip"), Some("kube-api"))
    );
    let store = run.check("cluster-secret-store");
    assert_eq!(
        store["blockedBy"], "crds",
        "blocked by its direct dependency: {store:#}"
    );
}

// Fake-only: the real server's version is the one it was built from (set_version fakes another).
#[tokio::test(flavor = "multi_thread")]
async fn an_old_kubernetes_version_is_unsupported() {
    let cluster = Cluster::healthy().await;
    cluster
        .kube
        .fake()
        .set_version("v1.27.16-eks-a18cd3a", "1", "27+");
    let run = run(cluster.preflight(&["--tier", "0", "--output", "json"])).await;
    assert_eq!(run.code, 1);
    assert_check(&run, "kube-api", "fail", "version-unsupported");
    assert!(
        run.check("kube-api")["message"]
            .as_str()
            .unwrap()
            .contains("v1.27.16-eks-a18cd3a is older than the supported minimum 1.29")
    );
}

on_both_servers!(not_ready_unknown_and_cordoned_nodes_are_named);

async fn not_ready_unknown_and_cordoned_nodes_are_named(backend: Backend) {
    let cluster = Cluster::empty_on(backend).await;
    let mut nodes = fake_kube::nodes_from_template(&eks_node(), 4, true);
    set_node_ready(&mut nodes[1], false);
    nodes[2]["status"]["conditions"]
        .as_array_mut()
        .unwrap()
        .retain(|c| c["type"] != "Ready");
    nodes[3]["spec"]["unschedulable"] = json!(true);
    let names: Vec<String> = nodes
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    for n in nodes {
        cluster.kube.apply(n).unwrap();
    }
    cluster.write("config.yaml", "checks:\n  nodes-ready:\n    minReady: 2\n");
    let config = cluster.path("config.yaml");
    let run = run(cluster.preflight(&[
        "--tier",
        "0",
        "--check",
        "kube-api",
        "--check",
        "nodes-ready",
        "--output",
        "json",
        "--config",
        config.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_check(&run, "nodes-ready", "fail", "nodes-not-ready");
    let message = run.check("nodes-ready")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        message,
        format!(
            "1 of 4 nodes are Ready and schedulable on amd64, at least 2 needed; NotReady: {}; Unknown: {}; cordoned: {}",
            names[1], names[2], names[3]
        )
    );
}

on_both_servers!(arm64_nodes_cannot_run_amd64_images);

async fn arm64_nodes_cannot_run_amd64_images(backend: Backend) {
    let cluster = Cluster::empty_on(backend).await;
    for mut n in fake_kube::nodes_from_template(&eks_node(), 2, true) {
        n["status"]["nodeInfo"]["architecture"] = json!("arm64");
        cluster.kube.apply(n).unwrap();
    }
    let run =
        run(cluster.preflight(&["--tier", "0", "--check", "nodes-ready", "--output", "json"]))
            .await;
    assert_eq!(run.code, 1);
    assert_check(&run, "nodes-ready", "fail", "nodes-not-ready");
    let hint = run.check("nodes-ready")["hint"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(hint.contains("exec format error"), "{hint}");
}

on_both_servers!(system_workloads_missing_or_unavailable);

async fn system_workloads_missing_or_unavailable(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    cluster.kube.apply(coredns(false)).unwrap();
    cluster.kube.apply(aws_node(3, 1)).unwrap();
    let run1 = run(cluster.preflight(&["--tier", "0", "--output", "json"])).await;
    assert_eq!(run1.code, 1);
    assert_check(&run1, "coredns", "fail", "coredns-unavailable");
    assert!(
        run1.check("coredns")["message"]
            .as_str()
            .unwrap()
            .ends_with(
                "MinimumReplicasUnavailable: Deployment does not have minimum availability."
            )
    );
    assert_check(&run1, "cni", "fail", "cni-not-ready");
    assert_eq!(
        run1.check("cni")["message"],
        "DaemonSet kube-system/aws-node: 1/3 pods ready"
    );

    cluster
        .kube
        .delete("apps/v1", "Deployment", Some("kube-system"), "coredns")
        .unwrap();
    cluster
        .kube
        .delete("apps/v1", "DaemonSet", Some("kube-system"), "aws-node")
        .unwrap();
    let run2 = run(cluster.preflight(&["--tier", "0", "--output", "json"])).await;
    assert_check(&run2, "coredns", "fail", "coredns-missing");
    assert_check(&run2, "cni", "fail", "cni-missing");
}

// Fake-only: the real server establishes every CRD itself, so one still installing cannot be
// reproduced there.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_crd_fails_and_blocks_the_secret_store() {
    let cluster = Cluster::healthy().await;
    cluster
        .kube
        .delete(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "clustersecretstores.external-secrets.io",
        )
        .unwrap();
    cluster
        .kube
        .apply(crd(
            "certificates.cert-manager.io",
            "Certificate",
            "Namespaced",
            &["v1"],
            false,
        ))
        .unwrap();
    let run = run_tier2_checks(&cluster, &["kube-api", "crds", "cluster-secret-store"]).await;
    assert_eq!(run.code, 1);
    assert_check(&run, "crds", "fail", "crds-missing");
    let message = run.check("crds")["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("missing: clustersecretstores.external-secrets.io"),
        "{message}"
    );
    assert!(
        message.contains(
            "not established: certificates.cert-manager.io: Installing: the CRD is being installed"
        ),
        "{message}"
    );
    assert!(
        run.check("crds")["hint"]
            .as_str()
            .unwrap()
            .contains("installCRDs=true")
    );
    assert_eq!(run.check("cluster-secret-store")["blockedBy"], "crds");
    assert_eq!(run.report()["exitCode"], 1);
}

on_both_servers!(the_observability_crds_are_a_tier_2_requirement);

async fn the_observability_crds_are_a_tier_2_requirement(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    cluster
        .kube
        .delete(
            CRD_API,
            "CustomResourceDefinition",
            None,
            "prometheuses.monitoring.coreos.com",
        )
        .unwrap();
    // Tier 1.5 installs them: its own gate does not check them, tier 2's does.
    let tier15 = run(cluster.preflight(&["--tier", "1.5", "--output", "json"])).await;
    assert_eq!(tier15.code, 0, "{}", tier15.stdout);
    assert!(
        tier15.report()["leftOut"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["id"] == "observability-crds" && l["neededBy"]["tier"] == "2"),
        "{}",
        tier15.stdout
    );
    let tier2 = run_tier2_checks(&cluster, &["observability-crds"]).await;
    assert_eq!(tier2.code, 1);
    assert_check(&tier2, "observability-crds", "fail", "crds-missing");
    assert!(
        tier2.check("observability-crds")["hint"]
            .as_str()
            .unwrap()
            .contains("kube-prometheus-stack")
    );
}

on_both_servers!(a_missing_ingress_class_is_named);

async fn a_missing_ingress_class_is_named(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    cluster
        .kube
        .delete("networking.k8s.io/v1", "IngressClass", None, "kong")
        .unwrap();
    let run = run(cluster.preflight(&["--tier", "1.5", "--output", "json"])).await;
    assert_eq!(run.code, 1);
    assert_check(&run, "ingress-class", "fail", "ingress-class-missing");
    assert!(
        run.check("ingress-class")["message"]
            .as_str()
            .unwrap()
            .starts_with("IngressClass \"kong\" not found")
    );
}

on_both_servers!(a_secret_store_that_is_not_ready_shows_the_providers_message);

async fn a_secret_store_that_is_not_ready_shows_the_providers_message(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    cluster.kube.apply(secret_store("v1", false, "unable to validate store: AccessDeniedException: not authorized to perform secretsmanager:GetSecretValue")).unwrap();
    let run = run_tier2_checks(&cluster, &["cluster-secret-store"]).await;
    assert_eq!(run.code, 1);
    assert_check(
        &run,
        "cluster-secret-store",
        "fail",
        "secret-store-not-ready",
    );
    assert!(run.check("cluster-secret-store")["message"].as_str().unwrap().ends_with("InvalidProviderConfig: unable to validate store: AccessDeniedException: not authorized to perform secretsmanager:GetSecretValue"));
}

on_both_servers!(an_older_external_secrets_serving_only_v1beta1_is_understood);

async fn an_older_external_secrets_serving_only_v1beta1_is_understood(backend: Backend) {
    let cluster = Cluster::empty_on(backend).await;
    older_eso_crd(
        &cluster,
        "clustersecretstores.external-secrets.io",
        "ClusterSecretStore",
        "Cluster",
    );
    cluster
        .kube
        .apply(secret_store("v1beta1", true, "store validated"))
        .unwrap();
    let run = run_tier2_checks(&cluster, &["cluster-secret-store"]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        run.check("cluster-secret-store")["evidence"]["apiVersion"],
        "external-secrets.io/v1beta1"
    );
}

on_both_servers!(a_store_whose_api_group_is_not_served_fails_clearly);

async fn a_store_whose_api_group_is_not_served_fails_clearly(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    for name in [
        "externalsecrets.external-secrets.io",
        "clustersecretstores.external-secrets.io",
        "secretstores.external-secrets.io",
    ] {
        cluster
            .kube
            .delete(CRD_API, "CustomResourceDefinition", None, name)
            .unwrap();
    }
    let run = run_tier2_checks(&cluster, &["cluster-secret-store"]).await;
    assert_eq!(run.code, 1);
    assert_check(
        &run,
        "cluster-secret-store",
        "fail",
        "secret-store-api-missing",
    );
}

on_both_servers!(irsa_annotations_missing_or_malformed);

async fn irsa_annotations_missing_or_malformed(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    cluster
        .kube
        .apply(service_account(
            "external-secrets",
            "external-secrets",
            None,
        ))
        .unwrap();
    cluster
        .kube
        .apply(service_account(
            "external-dns",
            "external-dns",
            Some("arn:aws:iam::REPLACE_ME:role/dns"),
        ))
        .unwrap();
    let run = run(cluster.preflight(&["--tier", "1.5", "--output", "json"])).await;
    assert_eq!(run.code, 1);
    assert_check(&run, "irsa", "fail", "irsa-missing");
    assert_eq!(
        run.check("irsa")["message"],
        "ServiceAccount external-secrets/external-secrets has no eks.amazonaws.com/role-arn annotation; ServiceAccount external-dns/external-dns: eks.amazonaws.com/role-arn \"arn:aws:iam::REPLACE_ME:role/dns\" is not an IAM role ARN"
    );
}

on_both_servers!(storage_classes_none_default_two_defaults_named_and_in_tree);

async fn storage_classes_none_default_two_defaults_named_and_in_tree(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    cluster
        .kube
        .apply(storage_class("gp3", "ebs.csi.aws.com", false))
        .unwrap();
    let none = run(cluster.preflight(&[
        "--tier",
        "1.5",
        "--check",
        "storage-class",
        "--output",
        "json",
    ]))
    .await;
    assert_eq!(none.code, 1);
    assert_check(&none, "storage-class", "fail", "no-default-storage-class");
    // The values declare a StorageClass ready: the failure says the declaration is wrong.
    let message = none.check("storage-class")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message
            .starts_with("platform.storageClassReady is declared true in the bootstrap contract (")
            && message.contains("), but "),
        "{message}"
    );
    assert!(
        none.check("storage-class")["hint"]
            .as_str()
            .unwrap()
            .contains("EKS 1.30")
    );

    cluster
        .kube
        .apply(storage_class("gp3", "ebs.csi.aws.com", true))
        .unwrap();
    // A StorageClass's parameters are immutable: gp2 is annotated, as `kubectl annotate` does.
    cluster
        .kube
        .update("storage.k8s.io/v1", "StorageClass", None, "gp2", |sc| {
            sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] =
                json!("true");
        })
        .unwrap();
    let two = run(cluster.preflight(&[
        "--tier",
        "1.5",
        "--check",
        "storage-class",
        "--output",
        "json",
    ]))
    .await;
    assert_check(
        &two,
        "storage-class",
        "fail",
        "several-default-storage-classes",
    );

    cluster
        .kube
        .delete("storage.k8s.io/v1", "StorageClass", None, "gp3")
        .unwrap();
    let in_tree = run(cluster.preflight(&[
        "--tier",
        "1.5",
        "--check",
        "storage-class",
        "--output",
        "json",
    ]))
    .await;
    assert_eq!(in_tree.code, 0, "a warning does not fail the run");
    assert_check(&in_tree, "storage-class", "warn", "in-tree-ebs-provisioner");

    cluster.write("named.yaml", "checks:\n  storage-class:\n    name: gp3\n");
    let named = cluster.path("named.yaml");
    let run = run(cluster.preflight(&[
        "--tier",
        "1.5",
        "--check",
        "storage-class",
        "--output",
        "json",
        "--config",
        named.to_str().unwrap(),
    ]))
    .await;
    assert_check(&run, "storage-class", "fail", "storage-class-missing");
}

// Fake-only: it injects an RBAC denial for a user of another name (deny, set_user).
#[tokio::test(flavor = "multi_thread")]
async fn a_403_names_the_missing_permission_and_the_rule_that_grants_it() {
    let cluster = Cluster::healthy().await;
    cluster
        .kube
        .fake()
        .set_user("arn:aws:sts::123456789012:assumed-role/prowler/i-0b4asdfasdfasdfc584");
    cluster.kube.fake().deny("list", "", "nodes");
    let run = run(cluster.preflight(&["--tier", "0", "--output", "json"])).await;
    assert_eq!(run.code, 1);
    assert_check(&run, "nodes-ready", "fail", "forbidden");
    let c = run.check("nodes-ready");
    assert_eq!(
        c["message"],
        "missing permission: cannot list nodes (API group \"\") at the cluster scope; the server said: nodes is forbidden: User \"arn:aws:sts::123456789012:assumed-role/prowler/i-0b4asdfasdfasdfc584\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"
    );
    assert_eq!(
        c["hint"],
        "grant it to preflight's ServiceAccount in a ClusterRole:\n  - apiGroups:\n    - \"\"\n    resources:\n    - nodes\n    verbs:\n    - get\n    - list\n    - watch"
    );
    assert_eq!(
        (
            c["evidence"]["verb"].as_str(),
            c["evidence"]["resource"].as_str()
        ),
        (Some("list"), Some("nodes"))
    );
    assert_eq!(c["attempts"], 1);
}

// Fake-only: it injects an RBAC denial (deny).
#[tokio::test(flavor = "multi_thread")]
async fn a_403_is_not_retried_while_waiting() {
    let cluster = Cluster::healthy().await;
    cluster
        .kube
        .fake()
        .deny("list", "networking.k8s.io", "ingressclasses");
    let run = run(cluster.preflight(&[
        "--tier",
        "1.5",
        "--check",
        "ingress-class",
        "--wait",
        "20s",
        "--output",
        "json",
    ]))
    .await;
    assert_eq!(
        run.code, 1,
        "a permanent failure settles at once, exit 1 not 3"
    );
    assert_check(&run, "ingress-class", "fail", "forbidden");
    assert_eq!(run.check("ingress-class")["attempts"], 1);
    assert!(run.elapsed.as_secs() < 10, "{:?}", run.elapsed);
    assert!(
        run.check("ingress-class")["message"]
            .as_str()
            .unwrap()
            .contains(
                "cannot list ingressclasses (API group \"networking.k8s.io\") at the cluster scope"
            )
    );
}

/// Backstage's own hook (`--app backstage`), checking the fixture's two ExternalSecrets as
/// if both were Backstage's, so that one run judges several.
/// Backstage is tier 2: the cluster is a persistent one.
fn app_hook(cluster: &Cluster, args: &[&str]) -> Vec<String> {
    cluster.write("values.yaml", support::platform::PERSISTENT_VALUES);
    let config = cluster.write(
        "external-secrets.yaml",
        "checks:\n  external-secrets:\n    secrets:\n    - {app: backstage, externalSecret: backstage/backstage-postgres, keys: [POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD]}\n    - {app: backstage, externalSecret: monitoring/grafana-postgres, secret: grafana-db, keys: [username, password, host, port, dbname]}\n",
    );
    [
        "--app",
        "backstage",
        "--check",
        "external-secrets",
        "--config",
        config.to_str().expect("a UTF-8 path"),
        "--output",
        "json",
    ]
    .iter()
    .chain(args)
    .map(|s| (*s).to_owned())
    .collect()
}

async fn run_app_hook(cluster: &Cluster, extra: &[&str]) -> Run {
    let args = app_hook(cluster, extra);
    run(cluster.preflight(&args.iter().map(String::as_str).collect::<Vec<_>>())).await
}

on_both_servers!(synced_external_secrets_with_their_keys_pass);

async fn synced_external_secrets_with_their_keys_pass(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    let run = run_app_hook(&cluster, &[]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        run.check("external-secrets")["message"],
        "2 ExternalSecret(s) synced with the expected keys: backstage/backstage-postgres, monitoring/grafana-postgres"
    );
    assert!(
        !run.stdout.contains("cGxhY2Vob2xkZXI="),
        "no secret value in the report"
    );
}

on_both_servers!(an_external_secret_in_secret_synced_error_shows_the_providers_message);

async fn an_external_secret_in_secret_synced_error_shows_the_providers_message(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    cluster
        .kube
        .update("external-secrets.io/v1", "ExternalSecret", Some("backstage"), "backstage-postgres", |es| {
            es["status"]["conditions"] = json!([{"type": "Ready", "status": "False", "reason": "SecretSyncedError",
                "message": "could not get secret data from provider", "lastTransitionTime": "2026-01-02T20:10:02Z"}]);
        })
        .unwrap();
    cluster
        .kube
        .update("v1", "Secret", Some("monitoring"), "grafana-db", |s| {
            s["data"].as_object_mut().unwrap().remove("dbname");
        })
        .unwrap();
    let run = run_app_hook(&cluster, &[]).await;
    assert_eq!(run.code, 1);
    assert_check(&run, "external-secrets", "fail", "secret-not-synced");
    assert_eq!(
        run.check("external-secrets")["message"],
        "ExternalSecret backstage/backstage-postgres is not synced: SecretSyncedError: could not get secret data from provider; Secret monitoring/grafana-db lacks the key(s) dbname"
    );
}

on_both_servers!(external_secrets_of_an_older_release_are_read_at_v1beta1);

async fn external_secrets_of_an_older_release_are_read_at_v1beta1(backend: Backend) {
    let cluster = Cluster::empty_on(backend).await;
    older_eso_crd(
        &cluster,
        "externalsecrets.external-secrets.io",
        "ExternalSecret",
        "Namespaced",
    );
    // The healthy cluster's ExternalSecrets as that release stores them, and their Secrets.
    let healthy = std::fs::read_to_string(fixture("cluster-healthy.yaml")).unwrap();
    for mut obj in fake_kube::objects_of_yaml(&healthy).unwrap() {
        match obj["kind"].as_str() {
            Some("ExternalSecret") => obj["apiVersion"] = json!("external-secrets.io/v1beta1"),
            Some("Secret") => {}
            _ => continue,
        }
        cluster.kube.apply(obj).unwrap();
    }
    let run = run_app_hook(&cluster, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        run.check("external-secrets")["message"],
        "2 ExternalSecret(s) synced with the expected keys: backstage/backstage-postgres, monitoring/grafana-postgres"
    );
    assert_eq!(
        run.check("external-secrets")["evidence"]["apiVersion"],
        "external-secrets.io/v1beta1"
    );
}

on_both_servers!(an_external_secret_that_syncs_while_waiting_is_noticed);

async fn an_external_secret_that_syncs_while_waiting_is_noticed(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    cluster
        .kube
        .delete("v1", "Secret", Some("backstage"), "backstage-postgres")
        .unwrap();
    let args = app_hook(&cluster, &["--wait", "20s"]);
    let child = cluster
        .preflight(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    cluster
        .kube
        .load_file(&fixture("cluster-healthy.yaml"))
        .unwrap();
    let run = finish(child, std::time::Duration::from_secs(15)).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.check("external-secrets")["attempts"].as_u64().unwrap() >= 2);
}
