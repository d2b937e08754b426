//! cert-manager's ClusterIssuers and the tier-gating guard on ArgoCD's Applications, against
//! both API servers, the fake and the real one: each failure produced on the objects' real
//! shapes, and an issuer that turns Ready while preflight waits.

#![allow(
    clippy::unwrap_used,
    reason = "the scenarios run by on_both_servers! are not #[test] functions, which clippy's allow-unwrap-in-tests covers"
)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

async fn issuers(cluster: &Cluster, extra: &[&str]) -> Run {
    let mut args = tier_2_adr(&["--check", "cluster-issuers", "--output", "json"]);
    args.extend_from_slice(extra);
    run(cluster.preflight(&args)).await
}

fn set_ready(cluster: &Cluster, name: &str, status: &str, reason: &str, message: &str) {
    cluster
        .kube
        .update("cert-manager.io/v1", "ClusterIssuer", None, name, |i| {
            i["status"]["conditions"] = json!([{"type": "Ready", "status": status, "reason": reason, "message": message, "observedGeneration": 1, "lastTransitionTime": "2026-01-02T20:06:12Z"}]);
        })
        .expect("the fixture has the issuer");
}

on_both_servers!(
    the_platforms_issuers_are_ready,
    missing_and_failing_issuers_are_named_with_their_reason,
    without_cert_manager_the_api_is_missing,
    an_issuer_registering_while_waiting_is_noticed,
    the_issuers_tier_is_configurable,
    applications_above_the_ceiling_or_unlabelled_are_named,
);

async fn the_platforms_issuers_are_ready(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    let run = issuers(&cluster, &[]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, "cluster-issuers", "pass", "cluster-issuers-ready");
}

async fn missing_and_failing_issuers_are_named_with_their_reason(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    cluster
        .kube
        .delete(
            "cert-manager.io/v1",
            "ClusterIssuer",
            None,
            "letsencrypt-prod",
        )
        .unwrap();
    let missing = issuers(&cluster, &[]).await;
    assert_eq!(missing.code, 1);
    assert_check(
        &missing,
        "cluster-issuers",
        "fail",
        "cluster-issuer-missing",
    );
    let check = missing.check("cluster-issuers");
    assert!(
        check["message"]
            .as_str()
            .unwrap()
            .contains("not found: letsencrypt-prod"),
        "{check:#}"
    );
    assert!(
        check["hint"].as_str().unwrap().contains("never deployed"),
        "{check:#}"
    );

    set_ready(
        &cluster,
        "letsencrypt-staging",
        "False",
        "ErrRegisterACMEAccount",
        "Failed to register ACME account: Get \"https://acme-staging-v02.api.letsencrypt.org/directory\": dial tcp: lookup acme-staging-v02.api.letsencrypt.org: i/o timeout",
    );
    let acme = issuers(
        &cluster,
        &[
            "--config",
            cluster
                .write(
                    "c.yaml",
                    "checks:\n  cluster-issuers:\n    names: [selfsigned, letsencrypt-staging]\n",
                )
                .to_str()
                .unwrap(),
        ],
    )
    .await;
    assert_check(&acme, "cluster-issuers", "fail", "cluster-issuer-not-ready");
    let check = acme.check("cluster-issuers");
    assert!(check["message"].as_str().unwrap().contains("letsencrypt-staging (acme) is not Ready: ErrRegisterACMEAccount: Failed to register ACME account"), "{check:#}");
    assert!(
        check["hint"]
            .as_str()
            .unwrap()
            .starts_with("ACME registration failed"),
        "{check:#}"
    );

    cluster
        .kube
        .apply(json!({
            "apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
            "metadata": {"name": "platform-ca", "generation": 1},
            "spec": {"ca": {"secretName": "platform-ca"}},
            "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "ErrGetKeyPair", "message": "Error getting keypair for CA issuer: secrets \"platform-ca\" not found", "observedGeneration": 1}]}
        }))
        .unwrap();
    let ca = issuers(
        &cluster,
        &[
            "--config",
            cluster
                .write(
                    "c.yaml",
                    "checks:\n  cluster-issuers:\n    names: [platform-ca]\n",
                )
                .to_str()
                .unwrap(),
        ],
    )
    .await;
    assert_check(&ca, "cluster-issuers", "fail", "cluster-issuer-not-ready");
    assert!(
        ca.check("cluster-issuers")["hint"]
            .as_str()
            .unwrap()
            .starts_with("The CA key pair is missing")
    );
}

async fn without_cert_manager_the_api_is_missing(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    cluster
        .kube
        .delete(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "clusterissuers.cert-manager.io",
        )
        .unwrap();
    let run = issuers(&cluster, &[]).await;
    assert_check(
        &run,
        "cluster-issuers",
        "fail",
        "cluster-issuer-api-missing",
    );
}

async fn an_issuer_registering_while_waiting_is_noticed(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    set_ready(
        &cluster,
        "letsencrypt-prod",
        "False",
        "ErrRegisterACMEAccount",
        "Failed to register ACME account: 429 urn:ietf:params:acme:error:rateLimited",
    );
    let child = cluster
        .preflight(&tier_2_adr(&[
            "--check",
            "cluster-issuers",
            "--wait",
            "30s",
            "--output",
            "json",
        ]))
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    set_ready(
        &cluster,
        "letsencrypt-prod",
        "True",
        "ACMEAccountRegistered",
        "The ACME account was registered with the ACME server",
    );
    let run = finish(child, Duration::from_secs(20)).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.check("cluster-issuers")["attempts"].as_u64().unwrap() >= 2);
}

/// The first tier with TLS Ingresses is configurable, above tier 1 (which installs
/// cert-manager): tier 1 itself is a configuration error naming the rule.
async fn the_issuers_tier_is_configurable(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    let config = cluster.write("c.yaml", "checks:\n  cluster-issuers:\n    tier: \"1.5\"\n");
    let run = run(cluster.preflight(&[
        "--tier",
        "1.5",
        "--config",
        config.to_str().unwrap(),
        "--output",
        "json",
    ]))
    .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.check("cluster-issuers")["tier"], "1.5");
    let too_early = cluster.write(
        "early.yaml",
        "checks:\n  cluster-issuers:\n    tier: \"1\"\n",
    );
    let refused =
        support::run(cluster.preflight(&["--tier", "1", "--config", too_early.to_str().unwrap()]))
            .await;
    assert_eq!(refused.code, 2, "{}", refused.stdout);
    assert!(
        refused.stderr.contains(
            "checks.cluster-issuers: needed by tier 1, but cert-manager (tier 1) provides what it verifies"
        ),
        "{}",
        refused.stderr
    );
}

fn application(name: &str, tier: Option<&str>) -> Value {
    let mut app = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd", "annotations": {"argocd.argoproj.io/sync-wave": "100"}},
        "spec": {"project": "platform", "source": {"repoURL": "https://github.com/goldenpath/platform.git", "path": format!("apps/{name}"), "targetRevision": "main"}, "destination": {"server": "https://kubernetes.default.svc", "namespace": name}}
    });
    if let Some(t) = tier {
        app["metadata"]["labels"] = json!({"goldenpath.idp/tier": t});
    }
    app
}

async fn gating(cluster: &Cluster, extra: &[&str]) -> Run {
    let mut args = vec!["--tier", "1", "--check", "tier-gating", "--output", "json"];
    args.extend_from_slice(extra);
    run(cluster.preflight(&args)).await
}

async fn applications_above_the_ceiling_or_unlabelled_are_named(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    let fine = gating(&cluster, &[]).await;
    assert_eq!(fine.code, 0, "{}\n{}", fine.stdout, fine.stderr);
    assert_check(&fine, "tier-gating", "pass", "tier-gating-enforced");

    for app in [
        application("backstage", Some("2")),
        application("keycloak", Some("3")),
        application("loki", None),
        application("grafana", Some("one-point-five")),
    ] {
        cluster.kube.apply(app).unwrap();
    }
    let run = gating(&cluster, &[]).await;
    assert_eq!(run.code, 1);
    assert_check(&run, "tier-gating", "fail", "tier-gating-violated");
    let check = run.check("tier-gating");
    let message = check["message"].as_str().unwrap();
    for needle in [
        "1 Application(s) without the goldenpath.idp/tier label: loki",
        "Application backstage is tier 2, above this cluster's ceiling 1.5",
        "Application keycloak is tier 3 on an ephemeral cluster",
        "Application grafana: label goldenpath.idp/tier: \"one-point-five\" is not a tier",
    ] {
        assert!(message.contains(needle), "{needle:?} in {message}");
    }
    assert!(
        check["hint"]
            .as_str()
            .unwrap()
            .contains("maxTier is derived from bootstrap.mode ephemeral"),
        "the hint quotes the rule that set the ceiling: {check:#}"
    );

    // With the ceiling raised to 2 and the unlabelled app exempt, only keycloak and the
    // bad label remain.
    let config = cluster.write("c.yaml", "checks:\n  tier-gating:\n    exempt: [loki]\n");
    let raised = gating(
        &cluster,
        &[
            "--contract-rules",
            "adr-0180",
            "--max-tier",
            "2",
            "--config",
            config.to_str().unwrap(),
        ],
    )
    .await;
    let message = raised.check("tier-gating")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !message.contains("loki") && !message.contains("backstage"),
        "{message}"
    );
    assert!(
        message.contains("keycloak") && message.contains("one-point-five"),
        "{message}"
    );
}
