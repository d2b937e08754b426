//! `admission-webhooks`: a fail-closed webhook whose Service has no ready endpoint blocks
//! every sync that creates what it intercepts. On the real kube-apiserver the incident itself
//! is reproduced first (the server refuses the create), then preflight names the webhook, its
//! Service and what it intercepts, and notices through a watch when an endpoint turns ready.

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

fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "grafana-0", "namespace": "default"},
        "spec": {"containers": [{"name": "grafana", "image": "grafana/grafana:11.4.0"}]},
    })
}

on_both_servers!(
    a_fail_closed_webhook_without_endpoints_fails_the_gate_until_one_is_ready,
    a_webhook_served_at_a_url_must_answer_over_tls
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
    if backend == Backend::Real {
        // The incident itself: the real server refuses what the webhook intercepts. (No
        // controller-manager creates the namespace's default ServiceAccount, which the
        // server's own admission wants before the webhook is called.)
        cluster
            .kube
            .apply(service_account("default", "default", None))
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
        "webhook mpod.elbv2.k8s.aws of MutatingWebhookConfiguration/aws-load-balancer-webhook (failurePolicy Fail) is served by Service kube-system/aws-load-balancer-webhook-service, which has no ready endpoint: every create or update of pods is refused"
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
