//! `admission-webhooks`: a fail-closed webhook whose Service has no ready endpoint blocks
//! every sync that creates what it intercepts. On the real kube-apiserver the incident itself
//! is reproduced first (the server refuses the create), then preflight names the webhook, its
//! Service and what it intercepts, and notices through a watch when an endpoint turns ready.
//! A webhook whose namespace selector selects none of the platform's namespaces is left alone,
//! as the real server leaves the platform's objects alone. A namespace not created yet is
//! judged by the labels ArgoCD will create it with (its Application's
//! managedNamespaceMetadata): one a webhook keys on fails the gate, and without them a
//! broken webhook that may intercept it is a warning, never a silent pass.

#![allow(
    clippy::unwrap_used,
    reason = "scenarios run on both servers are not #[test] functions"
)]

mod support;

use fake_kube::FakeKeycloak;
use serde_json::{Value, json};
use support::*;

const CHECK: [&str; 6] = [
    "--tier",
    "1",
    "--check",
    "admission-webhooks",
    "--output",
    "json",
];

/// A webhook that is fail-open, and a fail-closed one on a resource no app creates: both
/// are left alone though neither has an endpoint.
fn harmless_webhooks() -> Vec<Value> {
    let webhook = |name: &str, policy: &str, group: &str, resource: &str| {
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [{
                "name": format!("{name}.example.com"),
                "admissionReviewVersions": ["v1"],
                "clientConfig": {"service": {"namespace": "kube-system", "name": format!("{name}-svc")}},
                "failurePolicy": policy,
                "rules": [{"apiGroups": [group], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": [resource]}],
                "sideEffects": "None",
            }],
        })
    };
    vec![
        webhook("fail-open", "Ignore", "apps", "deployments"),
        webhook("widgets", "Fail", "example.com", "widgets"),
    ]
}

/// Tier 1.5's namespace, labelled for the load balancer controller's readiness gates, as the
/// platform labels the namespaces whose pods sit behind an ALB.
fn monitoring_for_readiness_gates() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "monitoring", "labels": {"elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"}},
    })
}

fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "grafana-0", "namespace": "monitoring"},
        "spec": {"containers": [{"name": "grafana", "image": "grafana/grafana:11.4.0"}]},
    })
}

on_both_servers!(
    a_fail_closed_webhook_without_endpoints_fails_the_gate_until_one_is_ready,
    a_namespace_not_created_yet_is_judged_by_the_labels_argocd_gives_it,
    a_webhook_served_at_a_url_must_answer_over_tls,
    a_webhook_that_selects_no_platform_namespace_is_left_alone,
);

async fn a_fail_closed_webhook_without_endpoints_fails_the_gate_until_one_is_ready(
    backend: Backend,
) {
    let cluster = Cluster::healthy_on(backend).await;
    for webhook in harmless_webhooks() {
        cluster.kube.apply(webhook).unwrap();
    }
    let args = CHECK.to_vec();
    let ran = run(cluster.preflight(&args)).await;
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert_check(
        &ran,
        "admission-webhooks",
        "pass",
        "admission-webhooks-served",
    );
    assert!(
        ran.check("admission-webhooks")["message"]
            .as_str()
            .unwrap()
            .starts_with("no fail-closed admission webhook intercepts what the apps create"),
        "{}",
        ran.stdout
    );

    cluster.kube.apply(lb_controller_webhook()).unwrap();
    cluster
        .kube
        .apply(endpoint_slice("aws-load-balancer-webhook-service", false))
        .unwrap();
    // Some of the platform's namespaces do not exist yet (keycloak's, tier 3), and nothing
    // says they will not be labelled for the readiness gates: the webhook may intercept
    // them, a warning.
    let ran = run(cluster.preflight(&args)).await;
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert_check(
        &ran,
        "admission-webhooks",
        "warn",
        "admission-webhook-may-intercept",
    );
    cluster
        .kube
        .apply(monitoring_for_readiness_gates())
        .unwrap();
    if backend == Backend::Real {
        // The incident itself: the real server refuses what the webhook intercepts. (No
        // controller-manager creates the namespace's default ServiceAccount, which the
        // server's own admission wants before the webhook is called.)
        cluster
            .kube
            .apply(service_account("monitoring", "default", None))
            .unwrap();
        let refused = format!("{:#}", cluster.kube.apply(pod()).unwrap_err());
        assert!(
            refused.contains("failed calling webhook \"mpod.elbv2.k8s.aws\""),
            "{refused}"
        );
    }
    let ran = run(cluster.preflight(&args)).await;
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    assert_check(
        &ran,
        "admission-webhooks",
        "fail",
        "admission-webhook-unavailable",
    );
    let check = ran.check("admission-webhooks");
    assert_eq!(
        check["message"],
        "webhook mpod.elbv2.k8s.aws of MutatingWebhookConfiguration/aws-load-balancer-webhook (failurePolicy Fail) is served by Service kube-system/aws-load-balancer-webhook-service, which has no ready endpoint: every create or update of pods in namespace monitoring is refused (its objectSelector is not evaluated: the objects it would select do not exist yet, so it may intercept fewer)"
    );
    assert!(
        check["hint"]
            .as_str()
            .unwrap()
            .contains("kubectl delete validatingwebhookconfiguration|mutatingwebhookconfiguration"),
        "{check:#}"
    );

    // The controller's pod turns ready while the gate waits: noticed through the watch.
    let mut waiting = CHECK.to_vec();
    waiting.extend(["--wait", "30s"]);
    let child = cluster.preflight_watching(&waiting).spawn().unwrap();
    cluster
        .watching("/apis/discovery.k8s.io/v1/endpointslices")
        .await;
    cluster
        .kube
        .apply(endpoint_slice("aws-load-balancer-webhook-service", true))
        .unwrap();
    let ran = noticed_within_a_second(child).await;
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert_check(
        &ran,
        "admission-webhooks",
        "pass",
        "admission-webhooks-served",
    );
    assert!(
        ran.check("admission-webhooks")["message"]
            .as_str()
            .unwrap()
            .contains("mpod.elbv2.k8s.aws of MutatingWebhookConfiguration/aws-load-balancer-webhook (kube-system/aws-load-balancer-webhook-service)"),
        "{}",
        ran.stdout
    );
}

/// The Application deploying tier 3's Keycloak, whose namespace ArgoCD creates with `labels`.
fn keycloak_application(labels: Value) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "keycloak", "namespace": "argocd", "labels": {"goldenpath.idp/tier": "3"}, "annotations": {"argocd.argoproj.io/sync-wave": "200"}},
        "spec": {
            "project": "platform",
            "source": {"repoURL": "https://github.com/goldenpath/platform.git", "path": "apps/keycloak", "targetRevision": "main"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "keycloak"},
            "syncPolicy": {
                "syncOptions": ["CreateNamespace=true"],
                "managedNamespaceMetadata": {"labels": labels},
            },
        },
    })
}

/// A namespace that does not exist yet has only its name for sure: a broken fail-closed
/// webhook keyed on another label is a warning naming the namespace and the label, and a
/// failure once the Application deploying into it says ArgoCD creates it with that label.
async fn a_namespace_not_created_yet_is_judged_by_the_labels_argocd_gives_it(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    let args = CHECK.to_vec();
    let not_there = cluster.kube.get("v1", "Namespace", None, "keycloak");
    assert!(not_there.is_none(), "{not_there:?}");
    cluster.kube.apply(lb_controller_webhook()).unwrap();
    cluster
        .kube
        .apply(endpoint_slice("aws-load-balancer-webhook-service", false))
        .unwrap();
    // ArgoCD will create keycloak with another label only: still a warning.
    cluster
        .kube
        .apply(keycloak_application(json!({"team": "identity"})))
        .unwrap();
    let ran = run(cluster.preflight(&args)).await;
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert_check(
        &ran,
        "admission-webhooks",
        "warn",
        "admission-webhook-may-intercept",
    );
    let check = ran.check("admission-webhooks");
    let message = check["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "webhook mpod.elbv2.k8s.aws of MutatingWebhookConfiguration/aws-load-balancer-webhook (failurePolicy Fail) is served by Service kube-system/aws-load-balancer-webhook-service, which has no ready endpoint: it intercepts namespace"
        ),
        "{message}"
    );
    let (namespaces, rest) = message
        .split_once(" created with label elbv2.k8s.aws/pod-readiness-gate-inject=enabled, and would then refuse every create or update of pods there")
        .unwrap_or_else(|| panic!("{message}"));
    assert!(namespaces.contains("keycloak"), "{message}");
    assert!(
        rest.starts_with(" (its objectSelector is not evaluated"),
        "{message}"
    );
    assert!(
        check["hint"]
            .as_str()
            .unwrap()
            .contains("spec.syncPolicy.managedNamespaceMetadata.labels"),
        "{check:#}"
    );

    // The Application gives the namespace the webhook's label: it surely intercepts it.
    cluster
        .kube
        .apply(keycloak_application(
            json!({"team": "identity", "elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"}),
        ))
        .unwrap();
    let ran = run(cluster.preflight(&args)).await;
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    assert_check(
        &ran,
        "admission-webhooks",
        "fail",
        "admission-webhook-unavailable",
    );
    let message = ran.check("admission-webhooks")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.starts_with(
            "webhook mpod.elbv2.k8s.aws of MutatingWebhookConfiguration/aws-load-balancer-webhook (failurePolicy Fail) is served by Service kube-system/aws-load-balancer-webhook-service, which has no ready endpoint: every create or update of pods in namespace keycloak is refused"
        ),
        "{message}"
    );
}

async fn a_webhook_served_at_a_url_must_answer_over_tls(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    // A real HTTPS server, trusted through the webhook's own caBundle only.
    let server = FakeKeycloak::start().await.unwrap();
    let url_webhook = |url: &str| {
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "policy"},
            "webhooks": [{
                "name": "validate.policy.example.com",
                "admissionReviewVersions": ["v1"],
                "clientConfig": {"url": url, "caBundle": b64(server.ca_pem())},
                "failurePolicy": "Fail",
                "rules": [{"apiGroups": ["networking.k8s.io"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["ingresses"]}],
                "sideEffects": "None",
            }],
        })
    };
    let answering = format!("{}/validate", server.url());
    cluster.kube.apply(url_webhook(&answering)).unwrap();
    let args = CHECK.to_vec();
    let ran = run(cluster.preflight(&args)).await;
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.check("admission-webhooks")["message"]
            .as_str()
            .unwrap()
            .contains(&format!("({answering})")),
        "{}",
        ran.stdout
    );

    let silent = format!("https://{}/validate", closed_addr());
    cluster
        .kube
        .update(
            "admissionregistration.k8s.io/v1",
            "ValidatingWebhookConfiguration",
            None,
            "policy",
            |w| w["webhooks"][0]["clientConfig"]["url"] = json!(silent),
        )
        .unwrap();
    let ran = run(cluster.preflight(&args)).await;
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    assert_check(
        &ran,
        "admission-webhooks",
        "fail",
        "admission-webhook-unavailable",
    );
    let message = ran.check("admission-webhooks")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains(&format!("is served at {silent}, which does not answer (")),
        "{message}"
    );
    assert!(
        message.ends_with("every create or update of ingresses.networking.k8s.io is refused"),
        "{message}"
    );
}

/// A fail-closed webhook on ConfigMaps, without endpoints, for the namespaces `names`.
fn configmap_webhook(names: &[&str]) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "team-policy"},
        "webhooks": [{
            "name": "validate.team-policy.example.com",
            "admissionReviewVersions": ["v1"],
            "clientConfig": {"service": {"namespace": "kube-system", "name": "team-policy-webhook"}},
            "failurePolicy": "Fail",
            "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": names}]},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["configmaps"], "scope": "Namespaced"}],
            "sideEffects": "None",
        }],
    })
}

fn configmap(namespace: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "grafana-dashboards", "namespace": namespace},
        "data": {"k": "v"},
    })
}

async fn a_webhook_that_selects_no_platform_namespace_is_left_alone(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    // A team's fail-closed webhook, broken, for its own namespaces only: every namespace
    // carries its name as the label kubernetes.io/metadata.name, so the selector's reach is
    // known before the platform's namespaces exist.
    cluster
        .kube
        .apply(configmap_webhook(&["team-a", "team-b"]))
        .unwrap();
    cluster
        .kube
        .apply(endpoint_slice("team-policy-webhook", false))
        .unwrap();
    if backend == Backend::Real {
        // The real server agrees: the platform's objects pass, the team's are refused.
        cluster.kube.apply(configmap("monitoring")).unwrap();
        let refused = format!("{:#}", cluster.kube.apply(configmap("team-a")).unwrap_err());
        assert!(
            refused.contains("failed calling webhook \"validate.team-policy.example.com\""),
            "{refused}"
        );
    }
    let args = CHECK.to_vec();
    let ran = run(cluster.preflight(&args)).await;
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert_check(
        &ran,
        "admission-webhooks",
        "pass",
        "admission-webhooks-served",
    );
    assert!(
        ran.check("admission-webhooks")["message"]
            .as_str()
            .unwrap()
            .starts_with("no fail-closed admission webhook intercepts what the apps create"),
        "{}",
        ran.stdout
    );

    // The same webhook reaching tier 1.5's namespace blocks its sync: the gate fails.
    cluster
        .kube
        .apply(configmap_webhook(&["team-a", "monitoring"]))
        .unwrap();
    if backend == Backend::Real {
        let refused = format!(
            "{:#}",
            cluster.kube.apply(configmap("monitoring")).unwrap_err()
        );
        assert!(
            refused.contains("failed calling webhook \"validate.team-policy.example.com\""),
            "{refused}"
        );
    }
    let ran = run(cluster.preflight(&args)).await;
    assert_eq!(ran.code, 1, "{}\n{}", ran.stdout, ran.stderr);
    assert_check(
        &ran,
        "admission-webhooks",
        "fail",
        "admission-webhook-unavailable",
    );
    assert_eq!(
        ran.check("admission-webhooks")["message"],
        "webhook validate.team-policy.example.com of ValidatingWebhookConfiguration/team-policy (failurePolicy Fail) is served by Service kube-system/team-policy-webhook, which has no ready endpoint: every create or update of configmaps in namespace monitoring is refused"
    );
}
