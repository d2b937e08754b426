//! The fake API server against clients that know the real one: kube-rs (through a kubeconfig,
//! as preflight uses it) and, where installed, kubectl.

use std::path::Path;
use std::time::Duration;

use fake_kube::FakeKube;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

fn template() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/k8s-nodelist-eks-real.json");
    let list: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
    list["items"][0].clone()
}

async fn client(kube: &FakeKube) -> kube::Client {
    let kubeconfig = Kubeconfig::from_yaml(&kube.kubeconfig_yaml()).expect("kubeconfig parses");
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("config");
    // Injected 503s must reach the test, not the client's own retry layer.
    config.default_retry = false;
    kube::Client::try_from(config).expect("client")
}

fn api_error(err: kube::Error) -> kube::core::Status {
    match err {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other}"),
    }
}

fn config_map(name: &str, data: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}, "data": {"k": data}})
}

#[tokio::test]
async fn rejects_requests_without_the_token() {
    let kube = FakeKube::start().await.expect("starts");
    let nodes: Api<Node> = Api::all(client(&kube).await);
    nodes
        .list(&ListParams::default())
        .await
        .expect("authorised");
    kube.revoke_token();
    let status = api_error(
        nodes
            .list(&ListParams::default())
            .await
            .expect_err("revoked"),
    );
    assert_eq!(
        (status.code, status.reason.as_str(), status.message.as_str()),
        (401, "Unauthorized", "Unauthorized")
    );
}

#[tokio::test]
async fn answers_a_missing_object_with_a_real_not_found_status() {
    let kube = FakeKube::start().await.expect("starts");
    let nodes: Api<Node> = Api::all(client(&kube).await);
    let status = api_error(nodes.get("ghost").await.expect_err("missing"));
    assert_eq!(
        (status.code, status.reason.as_str(), status.message.as_str()),
        (404, "NotFound", "nodes \"ghost\" not found")
    );
    assert_eq!(
        status.details.map(|d| (d.name, d.kind)),
        Some(("ghost".into(), "nodes".into()))
    );
}

#[tokio::test]
async fn pages_lists_with_limit_and_continue() {
    let kube = FakeKube::start().await.expect("starts");
    for n in fake_kube::nodes_from_template(&template(), 5, true) {
        kube.apply(n).expect("applies");
    }
    let nodes: Api<Node> = Api::all(client(&kube).await);
    let mut names = Vec::new();
    let mut params = ListParams::default().limit(2);
    let mut pages = 0;
    let first_rv = loop {
        let page = nodes.list(&params).await.expect("lists");
        pages += 1;
        names.extend(page.items.iter().filter_map(|n| n.metadata.name.clone()));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => {
                assert_eq!(
                    page.metadata.remaining_item_count,
                    Some(5 - i64::try_from(names.len()).expect("small"))
                );
                params = params.continue_token(&token);
            }
            None => break page.metadata.resource_version,
        }
    };
    assert_eq!(pages, 3);
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        (names.len(), sorted.len()),
        (5, 5),
        "each node exactly once: {names:?}"
    );
    assert!(first_rv.is_some());
    let bad = api_error(
        nodes
            .list(&ListParams::default().continue_token("garbage"))
            .await
            .expect_err("bad token"),
    );
    assert_eq!(bad.code, 400);
}

#[tokio::test]
async fn watches_from_a_resource_version_without_missing_changes_in_between() {
    let kube = FakeKube::start().await.expect("starts");
    kube.apply(config_map("a", "1")).expect("applies");
    let maps: Api<ConfigMap> = Api::namespaced(client(&kube).await, "default");
    let listed = maps.list(&ListParams::default()).await.expect("lists");
    let rv = listed.metadata.resource_version.expect("rv");
    // A change between the list and the watch must still be delivered.
    kube.update("v1", "ConfigMap", Some("default"), "a", |cm| {
        cm["data"]["k"] = json!("2")
    })
    .expect("updates");
    let mut events = maps
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .expect("watches")
        .boxed();
    let first = tokio::time::timeout(Duration::from_secs(5), events.try_next())
        .await
        .expect("in time")
        .expect("ok");
    assert!(
        matches!(first, Some(WatchEvent::Modified(cm)) if cm.data.as_ref().and_then(|d| d.get("k")).map(String::as_str) == Some("2"))
    );
    kube.delete("v1", "ConfigMap", Some("default"), "a")
        .expect("deletes");
    let second = tokio::time::timeout(Duration::from_secs(5), events.try_next())
        .await
        .expect("in time")
        .expect("ok");
    assert!(matches!(second, Some(WatchEvent::Deleted(_))));
}

#[tokio::test]
async fn watches_narrowed_by_a_field_selector() {
    let kube = FakeKube::start().await.expect("starts");
    kube.apply(config_map("a", "1")).expect("applies");
    kube.apply(config_map("b", "1")).expect("applies");
    let maps: Api<ConfigMap> = Api::namespaced(client(&kube).await, "default");
    let rv = maps
        .list(&ListParams::default())
        .await
        .expect("lists")
        .metadata
        .resource_version
        .expect("rv");
    let mut events = maps
        .watch(
            &WatchParams::default().fields("metadata.name=b").timeout(10),
            &rv,
        )
        .await
        .expect("watches")
        .boxed();
    kube.update("v1", "ConfigMap", Some("default"), "a", |cm| {
        cm["data"]["k"] = json!("2")
    })
    .expect("updates");
    kube.update("v1", "ConfigMap", Some("default"), "b", |cm| {
        cm["data"]["k"] = json!("2")
    })
    .expect("updates");
    let event = tokio::time::timeout(Duration::from_secs(5), events.try_next())
        .await
        .expect("in time")
        .expect("ok");
    assert!(
        matches!(event, Some(WatchEvent::Modified(cm)) if cm.metadata.name.as_deref() == Some("b"))
    );
}

#[tokio::test]
async fn a_too_old_resource_version_gets_410_gone() {
    let kube = FakeKube::start().await.expect("starts");
    kube.apply(config_map("a", "1")).expect("applies");
    let maps: Api<ConfigMap> = Api::namespaced(client(&kube).await, "default");
    let mut events = maps
        .watch(&WatchParams::default().timeout(10), "1")
        .await
        .expect("watches")
        .boxed();
    let event = tokio::time::timeout(Duration::from_secs(5), events.try_next())
        .await
        .expect("in time")
        .expect("ok");
    assert!(
        matches!(&event, Some(WatchEvent::Error(s)) if s.code == 410 && s.reason == "Expired"),
        "{event:?}"
    );
}

#[tokio::test]
async fn serves_custom_resources_only_while_their_crd_exists() {
    let kube = FakeKube::start().await.expect("starts");
    let client = client(&kube).await;
    let path = "/apis/example.io/v1/widgets";
    let text = |client: kube::Client| async move {
        client
            .request_text(http::Request::get(path).body(Vec::new()).expect("request"))
            .await
    };
    let status = api_error(text(client.clone()).await.expect_err("not served"));
    assert_eq!(
        (status.code, status.message.as_str()),
        (404, "404 page not found")
    );
    assert!(
        kube.apply(
            json!({"apiVersion": "example.io/v1", "kind": "Widget", "metadata": {"name": "w"}})
        )
        .is_err(),
        "no CRD, no kind"
    );

    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "widgets.example.io"},
        "spec": {"group": "example.io", "scope": "Cluster", "names": {"plural": "widgets", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": true, "storage": true}]}});
    kube.apply(crd).expect("applies");
    kube.apply(json!({"apiVersion": "example.io/v1", "kind": "Widget", "metadata": {"name": "w"}}))
        .expect("served now");
    let list: Value =
        serde_json::from_str(&text(client.clone()).await.expect("served")).expect("json");
    assert_eq!(
        (
            list["kind"].as_str(),
            list["items"][0]["metadata"]["name"].as_str()
        ),
        (Some("WidgetList"), Some("w"))
    );
    let groups = client.list_api_groups().await.expect("discovery");
    assert!(groups.groups.iter().any(|g| g.name == "example.io"));
    let resources = client
        .list_api_group_resources("example.io/v1")
        .await
        .expect("resources");
    assert!(
        resources
            .resources
            .iter()
            .any(|r| r.name == "widgets" && !r.namespaced)
    );

    kube.delete(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
        "widgets.example.io",
    )
    .expect("deletes");
    assert_eq!(api_error(text(client).await.expect_err("gone")).code, 404);
}

#[tokio::test]
async fn denies_with_the_real_forbidden_message() {
    let kube = FakeKube::start().await.expect("starts");
    kube.set_user("arn:aws:sts::123456789012:assumed-role/prowler/i-0b4asdfasdfasdfc584");
    kube.deny("list", "", "nodes");
    let nodes: Api<Node> = Api::all(client(&kube).await);
    let status = api_error(
        nodes
            .list(&ListParams::default())
            .await
            .expect_err("denied"),
    );
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../fixtures/k8s-status-403-forbidden-list-nodes-eks.json"),
        )
        .expect("fixture"),
    )
    .expect("json");
    assert_eq!(
        status.message,
        fixture["message"].as_str().expect("message")
    );
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    nodes.get_opt("x").await.expect("get is still allowed");
    kube.deny("get", "", "secrets");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client(&kube).await, "backstage");
    let status = api_error(secrets.get("db").await.expect_err("denied"));
    assert_eq!(
        status.message,
        "secrets \"db\" is forbidden: User \"arn:aws:sts::123456789012:assumed-role/prowler/i-0b4asdfasdfasdfc584\" cannot get resource \"secrets\" in API group \"\" in the namespace \"backstage\""
    );
}

#[tokio::test]
async fn injects_transient_failures_and_blackholes() {
    let kube = FakeKube::start().await.expect("starts");
    let nodes: Api<Node> = Api::all(client(&kube).await);
    kube.fail_next(1, 503);
    assert_eq!(
        api_error(nodes.list(&ListParams::default()).await.expect_err("503")).code,
        503
    );
    nodes.list(&ListParams::default()).await.expect("recovered");
    kube.blackhole(true);
    let fresh: Api<Node> = Api::all(client(&kube).await);
    let hung = tokio::time::timeout(
        Duration::from_millis(500),
        fresh.list(&ListParams::default()),
    )
    .await;
    assert!(hung.is_err(), "a blackholed server never answers");
}

#[tokio::test(flavor = "multi_thread")]
async fn real_kubectl_lists_nodes_in_chunks() {
    if std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        eprintln!("kubectl not installed: skipping the kubectl compatibility test");
        return;
    }
    let kube = FakeKube::start().await.expect("starts");
    for n in fake_kube::nodes_from_template(&template(), 5, true) {
        kube.apply(n).expect("applies");
    }
    let home = tempfile::tempdir().expect("tempdir");
    let kubeconfig = home.path().join("kubeconfig");
    kube.write_kubeconfig(&kubeconfig).expect("writes");
    let kubectl = |args: &[&str]| {
        let out = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .env("HOME", home.path())
            .output()
            .expect("kubectl runs");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = tokio::task::block_in_place(|| {
        kubectl(&["get", "nodes", "-o", "json", "--chunk-size", "2"])
    });
    let list: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(5));
    let limits = kube
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/nodes" && r.query.contains("limit=2"))
        .count();
    assert_eq!(limits, 3, "kubectl paged through the fake server");
    let groups = tokio::task::block_in_place(|| kubectl(&["get", "--raw", "/apis"]));
    assert!(groups.contains("\"APIGroupList\""));
}
