//! The fake API server against clients that know the real one: kube-rs through the generated
//! kubeconfig (as preflight uses it), raw HTTPS requests through the same client where the
//! exact bytes matter, and, where installed, kubectl.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fake_kube::FakeKube;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Secret};
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

fn template() -> Value {
    let text = std::fs::read_to_string(fixture("k8s-nodelist-eks-real.json")).expect("fixture");
    let list: Value = serde_json::from_str(&text).expect("json");
    list["items"][0].clone()
}

async fn client(kube: &FakeKube) -> kube::Client {
    let kubeconfig = Kubeconfig::from_yaml(&kube.kubeconfig_yaml()).expect("kubeconfig parses");
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("config");
    // Injected 5xx must reach the test, not the client's own retry layer.
    config.default_retry = false;
    kube::Client::try_from(config).expect("client")
}

/// A raw response: status, content type and body.
struct Raw {
    code: u16,
    content_type: String,
    headers: http::HeaderMap,
    body: String,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

/// Sends a request through kube-rs' stack (TLS, token) and returns what came back, unparsed.
async fn raw(client: &kube::Client, method: &str, path: &str, body: &str) -> Raw {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(kube::client::Body::from(body.as_bytes().to_vec()))
        .expect("request");
    let response = client.send(request).await.expect("a response");
    let code = response.status().as_u16();
    let headers = response.headers().clone();
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = response.into_body().collect_bytes().await.expect("a body");
    Raw {
        code,
        content_type,
        headers,
        body: String::from_utf8(bytes.to_vec()).expect("UTF-8"),
    }
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

fn set_data(value: &'static str) -> impl FnOnce(&mut Value) {
    move |cm| cm["data"]["k"] = json!(value)
}

const WIDGET_CRD: &str = r"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.io
spec:
  group: example.io
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - {name: v1beta1, served: true, storage: false}
  - {name: v1, served: true, storage: true, subresources: {status: {}}}
";

/// The next event of a watch, within a second.
async fn next_event<K>(
    events: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<K>>> + Unpin),
) -> Option<WatchEvent<K>> {
    tokio::time::timeout(Duration::from_secs(5), events.try_next())
        .await
        .expect("an event in time")
        .expect("a well-formed event")
}

fn name_of<K: kube::Resource>(event: &WatchEvent<K>) -> (&'static str, String) {
    let (kind, object) = match event {
        WatchEvent::Added(o) => ("ADDED", o),
        WatchEvent::Modified(o) => ("MODIFIED", o),
        WatchEvent::Deleted(o) => ("DELETED", o),
        WatchEvent::Bookmark(b) => return ("BOOKMARK", b.metadata.resource_version.clone()),
        WatchEvent::Error(s) => return ("ERROR", s.message.clone()),
    };
    (kind, object.meta().name.clone().unwrap_or_default())
}

#[tokio::test]
async fn rejects_requests_without_the_token_with_a_real_401() {
    let kube = FakeKube::start().await.expect("starts");
    let nodes: Api<Node> = Api::all(client(&kube).await);
    nodes
        .list(&ListParams::default())
        .await
        .expect("authorised");

    // A wrong token, sent raw so that the bytes can be compared.
    let mut wrong = kube.kubeconfig_yaml();
    wrong = wrong.replace(&kube.token(), "not-the-token");
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::from_yaml(&wrong).expect("yaml"),
        &KubeConfigOptions::default(),
    )
    .await
    .expect("config");
    let stranger = kube::Client::try_from(config).expect("client");
    let answer = raw(&stranger, "GET", "/api/v1/nodes", "").await;
    assert_eq!(
        (
            answer.code,
            answer.content_type.as_str(),
            answer.body.as_str()
        ),
        (
            401,
            "application/json",
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#
        )
    );

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
    let discovery = raw(&client(&kube).await, "GET", "/version", "").await;
    assert_eq!(discovery.code, 401, "every endpoint needs the token");
}

#[tokio::test]
async fn reports_version_and_identity() {
    let kube = FakeKube::start().await.expect("starts");
    let client = client(&kube).await;
    let version = client.apiserver_version().await.expect("version");
    assert_eq!(
        (
            version.git_version.as_str(),
            version.major.as_str(),
            version.minor.as_str()
        ),
        ("v1.31.13-eks-ecaa3a6", "1", "31+")
    );
    kube.set_version("v1.27.16-eks-a18cd3a", "1", "27+");
    let version = client.apiserver_version().await.expect("version");
    assert_eq!(version.git_version, "v1.27.16-eks-a18cd3a");

    kube.set_user("arn:aws:sts::123456789012:assumed-role/deployer/ci");
    let review = raw(
        &client,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        r#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#,
    )
    .await;
    assert_eq!(review.code, 201);
    assert_eq!(
        review.json(),
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": {"creationTimestamp": null},
            "status": {"userInfo": {"username": "arn:aws:sts::123456789012:assumed-role/deployer/ci", "groups": ["system:serviceaccounts", "system:authenticated"]}}})
    );
}

#[tokio::test]
async fn answers_a_missing_object_with_a_real_not_found_status() {
    let kube = FakeKube::start().await.expect("starts");
    let client = client(&kube).await;
    let nodes: Api<Node> = Api::all(client.clone());
    let status = api_error(nodes.get("ghost").await.expect_err("missing"));
    assert_eq!(
        (status.code, status.reason.as_str(), status.message.as_str()),
        (404, "NotFound", "nodes \"ghost\" not found")
    );
    assert_eq!(
        status.details.map(|d| (d.name, d.kind)),
        Some(("ghost".into(), "nodes".into()))
    );
    let grouped = raw(
        &client,
        "GET",
        "/apis/apps/v1/namespaces/kube-system/deployments/coredns",
        "",
    )
    .await;
    assert_eq!(
        grouped.body,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"deployments.apps \"coredns\" not found","reason":"NotFound","details":{"name":"coredns","group":"apps","kind":"deployments"},"code":404}"#
    );
    assert_eq!(grouped.content_type, "application/json");
}

#[tokio::test]
async fn paths_nothing_serves_get_the_plain_text_404_and_other_methods_405() {
    let kube = FakeKube::start().await.expect("starts");
    let client = client(&kube).await;
    for path in [
        "/apis/example.io/v1/widgets",
        "/apis/apps/v2/deployments",
        "/apis/example.io",
        "/healthz/nothing",
        "/api/v1/pods",
        "/api/v1/namespaces/default/nodes",
        "/api/v1/configmaps/no-namespace",
        "/api/v1/nodes/n1/proxy",
    ] {
        let answer = raw(&client, "GET", path, "").await;
        assert_eq!(
            (
                answer.code,
                answer.content_type.as_str(),
                answer.body.as_str()
            ),
            (404, "text/plain; charset=utf-8", "404 page not found\n"),
            "{path}"
        );
    }
    let delete = raw(&client, "DELETE", "/api/v1/nodes/n1", "").await;
    assert_eq!(
        (delete.code, delete.json()["reason"].as_str()),
        (405, Some("MethodNotAllowed"))
    );
}

#[tokio::test]
async fn serves_discovery_as_kube_rs_reads_it() {
    let kube = FakeKube::start().await.expect("starts");
    let client = client(&kube).await;
    let core = client.list_core_api_versions().await.expect("/api");
    assert_eq!(core.versions, ["v1"]);
    let resources = client.list_core_api_resources("v1").await.expect("/api/v1");
    let nodes = resources
        .resources
        .iter()
        .find(|r| r.name == "nodes")
        .expect("nodes");
    assert_eq!(
        (
            nodes.kind.as_str(),
            nodes.namespaced,
            nodes.short_names.clone()
        ),
        ("Node", false, Some(vec!["no".to_owned()]))
    );
    assert!(resources.resources.iter().any(|r| r.name == "nodes/status"));
    let groups = client.list_api_groups().await.expect("/apis");
    for group in [
        "apps",
        "storage.k8s.io",
        "networking.k8s.io",
        "apiextensions.k8s.io",
        "authentication.k8s.io",
    ] {
        assert!(groups.groups.iter().any(|g| g.name == group), "{group}");
    }
    let apps = client
        .list_api_group_resources("apps/v1")
        .await
        .expect("apps/v1");
    assert!(
        apps.resources
            .iter()
            .any(|r| r.name == "deployments/status")
    );
}

#[tokio::test]
async fn serves_aggregated_discovery_as_1_30_and_later_servers_do() {
    let kube = FakeKube::start().await.expect("starts");
    kube.apply_yaml(WIDGET_CRD).expect("applies");
    let client = client(&kube).await;
    let discovery = kube::discovery::Discovery::new(client.clone())
        .run_aggregated()
        .await
        .expect("aggregated discovery");
    let (widgets, caps) = discovery
        .get("example.io")
        .expect("the CRD's group")
        .recommended_kind("Widget")
        .expect("widgets");
    assert_eq!(
        (widgets.api_version.as_str(), widgets.plural.as_str()),
        ("example.io/v1", "widgets")
    );
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    assert!(discovery.has_group("apps"));
    let core = discovery.get("").expect("the core group");
    let (nodes, caps) = core.recommended_kind("Node").expect("nodes");
    assert_eq!(nodes.plural, "nodes");
    assert_eq!(caps.scope, kube::discovery::Scope::Cluster);
    assert!(caps.subresources.iter().any(|(s, _)| s.plural == "status"));
    assert_eq!(
        kube.requests()
            .iter()
            .filter(|r| r.path.starts_with("/api"))
            .count(),
        2,
        "one request for /api, one for /apis"
    );
    // The legacy walk finds the same.
    let legacy = kube::discovery::Discovery::new(client)
        .run()
        .await
        .expect("legacy discovery");
    assert!(legacy.has_group("example.io") && legacy.has_group("apps"));
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
    let mut versions = Vec::new();
    loop {
        let page = nodes.list(&params).await.expect("lists");
        pages += 1;
        versions.push(page.metadata.resource_version.clone().expect("rv"));
        names.extend(page.items.iter().filter_map(|n| n.metadata.name.clone()));
        // A change mid-list must not make an object appear twice or go missing.
        if pages == 1 {
            kube.delete("v1", "Node", None, "ip-10-0-0-4.ec2.internal")
                .expect("deletes");
            kube.apply(fake_kube::nodes_from_template(&template(), 6, true)[5].clone())
                .expect("adds");
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => {
                assert_eq!(
                    page.metadata.remaining_item_count,
                    Some(5 - i64::try_from(names.len()).expect("small"))
                );
                params = params.continue_token(&token);
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        names,
        (1..=5)
            .map(|i| format!("ip-10-0-0-{i}.ec2.internal"))
            .collect::<Vec<_>>(),
        "each node exactly once, as of the first page"
    );
    assert!(
        versions.windows(2).all(|w| w[0] == w[1]),
        "one snapshot: {versions:?}"
    );
    let now = nodes.list(&ListParams::default()).await.expect("lists");
    assert_eq!(now.items.len(), 5, "4 went, 6 came");

    let bad = api_error(
        nodes
            .list(&ListParams::default().continue_token("garbage"))
            .await
            .expect_err("bad token"),
    );
    assert_eq!((bad.code, bad.reason.as_str()), (400, "BadRequest"));
    let paged = kube
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/nodes" && r.query.contains("continue="))
        .count();
    assert_eq!(paged, 3, "two continued pages and the bad token");
}

/// A list at resource version 0 is served whole by a watch cache, on every release, whatever
/// its `limit`; without the cache (etcd) it is paged like any other, and its pages continue
/// from the token alone.
#[tokio::test]
async fn lists_at_version_0_whole_from_the_watch_cache_and_paged_without_it() {
    let kube = FakeKube::start().await.expect("starts");
    for n in fake_kube::nodes_from_template(&template(), 5, true) {
        kube.apply(n).expect("applies");
    }
    let client = client(&kube).await;
    let cached = raw(
        &client,
        "GET",
        "/api/v1/nodes?resourceVersion=0&limit=2",
        "",
    )
    .await;
    let list = cached.json();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(5), "{list:#}");
    assert!(list["metadata"].get("continue").is_none(), "{list:#}");

    kube.set_watch_cache(false);
    let first = raw(
        &client,
        "GET",
        "/api/v1/nodes?resourceVersion=0&limit=2",
        "",
    )
    .await
    .json();
    assert_eq!(first["items"].as_array().map(Vec::len), Some(2));
    let token = first["metadata"]["continue"]
        .as_str()
        .expect("a continue token");
    let next = raw(
        &client,
        "GET",
        &format!("/api/v1/nodes?limit=2&continue={token}"),
        "",
    )
    .await;
    assert_eq!(
        (next.code, next.json()["items"].as_array().map(Vec::len)),
        (200, Some(2))
    );
    let with_zero = raw(
        &client,
        "GET",
        &format!("/api/v1/nodes?limit=2&continue={token}&resourceVersion=0"),
        "",
    )
    .await;
    assert_eq!(
        with_zero.code, 200,
        "version 0 may come with a token: {}",
        with_zero.body
    );
}

/// The list options a real server refuses before reading, with its codes and messages, and
/// a version it has not reached yet.
#[tokio::test]
async fn rejects_the_list_options_a_real_server_rejects() {
    let kube = FakeKube::start().await.expect("starts");
    kube.apply(config_map("a", "1")).expect("applies");
    let client = client(&kube).await;
    let path = "/api/v1/namespaces/default/configmaps";
    let current = raw(&client, "GET", path, "").await.json()["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .parse::<u64>()
        .expect("a number");
    let token = "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTAwMSwic3RhcnQiOiJkZWZhdWx0L2FcdTAwMDAifQ";
    for (query, code, message) in [
        ("resourceVersionMatch=NotOlderThan", 422, "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided".to_owned()),
        (&format!("resourceVersion=1001&resourceVersionMatch=NotOlderThan&continue={token}"), 422, "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided".to_owned()),
        ("resourceVersion=1001&resourceVersionMatch=Newest", 422, "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Unsupported value: \"Newest\": supported values: \"Exact\", \"NotOlderThan\", \"\"".to_owned()),
        ("resourceVersion=0&resourceVersionMatch=Exact", 422, "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"".to_owned()),
        (&format!("resourceVersion=1001&continue={token}"), 400, "specifying resource version is not allowed when using continue".to_owned()),
        (&format!("resourceVersion={}&resourceVersionMatch=NotOlderThan", current + 5), 504, format!("Timeout: Too large resource version: {}, current: {current}", current + 5)),
    ] {
        let answer = raw(&client, "GET", &format!("{path}?{query}"), "").await;
        let status = answer.json();
        assert_eq!(
            (answer.code, status["message"].as_str()),
            (code, Some(message.as_str())),
            "{query}: {status:#}"
        );
    }
    let too_large = raw(
        &client,
        "GET",
        &format!(
            "{path}?resourceVersion={}&resourceVersionMatch=NotOlderThan",
            current + 5
        ),
        "",
    )
    .await
    .json();
    assert_eq!(
        (
            too_large["reason"].as_str(),
            too_large["details"]["causes"][0]["reason"].as_str()
        ),
        (Some("Timeout"), Some("ResourceVersionTooLarge"))
    );
    for query in [
        format!("resourceVersion={current}&resourceVersionMatch=NotOlderThan"),
        "resourceVersion=1000&resourceVersionMatch=NotOlderThan".to_owned(),
        "resourceVersion=0&resourceVersionMatch=NotOlderThan".to_owned(),
    ] {
        let answer = raw(&client, "GET", &format!("{path}?{query}"), "").await;
        assert_eq!(
            (
                answer.code,
                answer.json()["metadata"]["resourceVersion"].as_str()
            ),
            (200, Some(current.to_string().as_str())),
            "{query}: the latest, never older than asked"
        );
    }
}

#[tokio::test]
async fn lists_across_namespaces_and_by_selector() {
    let kube = FakeKube::start().await.expect("starts");
    kube.apply_yaml(
        r"
apiVersion: v1
kind: SecretList
items:
- metadata: {name: db, namespace: backstage, labels: {app: backstage, tier: db}}
  type: Opaque
- metadata: {name: tls, namespace: backstage, labels: {app: backstage}}
  type: kubernetes.io/tls
---
apiVersion: v1
kind: Secret
metadata: {name: grafana, namespace: monitoring, labels: {app: grafana}}
type: Opaque
",
    )
    .expect("applies");
    let client = client(&kube).await;
    let all: Api<Secret> = Api::all(client.clone());
    let names = |list: kube::core::ObjectList<Secret>| -> Vec<String> {
        list.items
            .into_iter()
            .filter_map(|s| s.metadata.name)
            .collect()
    };
    assert_eq!(
        names(all.list(&ListParams::default()).await.expect("all")),
        ["db", "tls", "grafana"]
    );
    let backstage: Api<Secret> = Api::namespaced(client.clone(), "backstage");
    assert_eq!(
        names(backstage.list(&ListParams::default()).await.expect("ns")),
        ["db", "tls"]
    );
    assert_eq!(
        names(
            all.list(&ListParams::default().labels("app=backstage,tier!=db"))
                .await
                .expect("labels")
        ),
        ["tls"]
    );
    assert_eq!(
        names(
            all.list(&ListParams::default().labels("app in (grafana, other)"))
                .await
                .expect("set")
        ),
        ["grafana"]
    );
    assert_eq!(
        names(
            all.list(&ListParams::default().fields("metadata.namespace=monitoring"))
                .await
                .expect("fields")
        ),
        ["grafana"]
    );
    assert_eq!(
        names(
            all.list(&ListParams::default().fields("type=Opaque"))
                .await
                .expect("type")
        ),
        ["db", "grafana"]
    );
    let bad = api_error(
        all.list(&ListParams::default().fields("spec.nodeName=x"))
            .await
            .expect_err("unsupported"),
    );
    assert_eq!(
        (bad.code, bad.message.as_str()),
        (400, "field label not supported: spec.nodeName")
    );
}

#[tokio::test]
async fn watches_from_a_resource_version_without_missing_changes_in_between() {
    let kube = FakeKube::start().await.expect("starts");
    kube.apply(config_map("a", "1")).expect("applies");
    let maps: Api<ConfigMap> = Api::namespaced(client(&kube).await, "default");
    let listed = maps.list(&ListParams::default()).await.expect("lists");
    let rv = listed.metadata.resource_version.expect("rv");
    // A change between the list and the watch must still be delivered.
    kube.update("v1", "ConfigMap", Some("default"), "a", set_data("2"))
        .expect("updates");
    let mut events = maps
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .expect("watches")
        .boxed();
    let first = next_event(&mut events).await;
    assert!(
        matches!(&first, Some(WatchEvent::Modified(cm)) if cm.data.as_ref().and_then(|d| d.get("k")).map(String::as_str) == Some("2")),
        "{:?}",
        first.as_ref().map(name_of)
    );
    // And one made once the watch is open.
    kube.update("v1", "ConfigMap", Some("default"), "a", set_data("3"))
        .expect("updates");
    let second = next_event(&mut events).await;
    assert!(
        matches!(&second, Some(WatchEvent::Modified(cm)) if cm.data.as_ref().and_then(|d| d.get("k")).map(String::as_str) == Some("3"))
    );
    kube.delete("v1", "ConfigMap", Some("default"), "a")
        .expect("deletes");
    let third = next_event(&mut events).await;
    assert_eq!(
        third.as_ref().map(name_of),
        Some(("DELETED", "a".to_owned()))
    );
}

#[tokio::test]
async fn a_watch_without_a_version_starts_with_every_object_and_ends_on_time() {
    let kube = FakeKube::start().await.expect("starts");
    kube.apply(config_map("a", "1")).expect("applies");
    kube.apply(config_map("b", "1")).expect("applies");
    let maps: Api<ConfigMap> = Api::namespaced(client(&kube).await, "default");
    let started = Instant::now();
    let mut events = maps
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .expect("watches")
        .boxed();
    let mut seen = Vec::new();
    while let Some(event) = next_event(&mut events).await {
        seen.push(name_of(&event));
        if seen.len() == 2 {
            kube.apply(config_map("c", "1")).expect("applies");
        }
    }
    assert_eq!(
        seen[..3],
        [
            ("ADDED", "a".to_owned()),
            ("ADDED", "b".to_owned()),
            ("ADDED", "c".to_owned())
        ]
    );
    assert_eq!(
        seen[3..],
        [("BOOKMARK", "1003".to_owned())],
        "a bookmark with the version reached closes the watch"
    );
    let elapsed = started.elapsed();
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(3)).contains(&elapsed),
        "timeoutSeconds=1 ended the stream after {elapsed:?}"
    );
}

#[tokio::test]
async fn watches_narrowed_by_a_field_or_label_selector() {
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
    let mut by_name = maps
        .watch(
            &WatchParams::default().fields("metadata.name=b").timeout(10),
            &rv,
        )
        .await
        .expect("watches")
        .boxed();
    let mut by_label = maps
        .watch(&WatchParams::default().labels("team=a").timeout(10), &rv)
        .await
        .expect("watches")
        .boxed();
    kube.update("v1", "ConfigMap", Some("default"), "a", set_data("2"))
        .expect("updates");
    kube.update("v1", "ConfigMap", Some("default"), "b", set_data("2"))
        .expect("updates");
    let event = next_event(&mut by_name).await;
    assert_eq!(
        event.as_ref().map(name_of),
        Some(("MODIFIED", "b".to_owned()))
    );

    // An object that comes to match a label selector is ADDED to that watch, and DELETED
    // from it when it stops matching, as a real server reports it.
    kube.update("v1", "ConfigMap", Some("default"), "a", |cm| {
        cm["metadata"]["labels"] = json!({"team": "a"});
    })
    .expect("labels");
    kube.update("v1", "ConfigMap", Some("default"), "a", |cm| {
        cm["metadata"]["labels"] = json!({"team": "b"});
    })
    .expect("relabels");
    let mut seen = Vec::new();
    for _ in 0..2 {
        seen.extend(next_event(&mut by_label).await.as_ref().map(name_of));
    }
    assert_eq!(
        seen,
        [("ADDED", "a".to_owned()), ("DELETED", "a".to_owned())]
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
    let event = next_event(&mut events).await;
    assert!(
        matches!(&event, Some(WatchEvent::Error(s)) if s.code == 410 && s.reason == "Expired" && s.message == "too old resource version: 1 (1000)"),
        "{:?}",
        event.as_ref().map(name_of)
    );
    assert!(
        next_event(&mut events).await.is_none(),
        "the stream ends after the error"
    );
}

/// A server that ends watches sooner than the client asked ends each with a bookmark of the
/// version it reached, changes to other types included, so the client can resume from there.
#[tokio::test]
async fn watches_end_at_the_servers_limit_with_a_bookmark() {
    let kube = FakeKube::start().await.expect("starts");
    kube.apply(config_map("a", "1")).expect("applies");
    kube.limit_watches(Some(Duration::from_millis(500)));
    let maps: Api<ConfigMap> = Api::namespaced(client(&kube).await, "default");
    let rv = maps
        .list(&ListParams::default())
        .await
        .expect("lists")
        .metadata
        .resource_version
        .expect("rv");
    let started = Instant::now();
    let mut events = maps
        .watch(&WatchParams::default().timeout(60), &rv)
        .await
        .expect("watches")
        .boxed();
    kube.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "elsewhere"}}))
        .expect("applies");
    let reached = kube
        .get("v1", "Namespace", None, "elsewhere")
        .expect("exists")["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_owned();
    assert_ne!(reached, rv);
    let event = next_event(&mut events).await;
    assert_eq!(event.as_ref().map(name_of), Some(("BOOKMARK", reached)));
    assert!(
        next_event(&mut events).await.is_none(),
        "then the stream ends"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// An injected expiry answers the next watches as a compacted version is answered.
#[tokio::test]
async fn expired_watches_can_be_injected() {
    let kube = FakeKube::start().await.expect("starts");
    kube.apply(config_map("a", "1")).expect("applies");
    let maps: Api<ConfigMap> = Api::namespaced(client(&kube).await, "default");
    let rv = maps
        .list(&ListParams::default())
        .await
        .expect("lists")
        .metadata
        .resource_version
        .expect("rv");
    kube.expire_next_watches(1);
    let mut events = maps
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .expect("watches")
        .boxed();
    let event = next_event(&mut events).await;
    assert!(
        matches!(&event, Some(WatchEvent::Error(s)) if s.code == 410 && s.reason == "Expired" && s.message == format!("too old resource version: {rv} ({rv})")),
        "{:?}",
        event.as_ref().map(name_of)
    );
    assert!(next_event(&mut events).await.is_none());
    let mut events = maps
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .expect("watches")
        .boxed();
    kube.update("v1", "ConfigMap", Some("default"), "a", set_data("2"))
        .expect("updates");
    let event = next_event(&mut events).await;
    assert_eq!(
        event.as_ref().map(name_of),
        Some(("MODIFIED", "a".to_owned())),
        "only the next one"
    );
}

#[tokio::test]
async fn serves_custom_resources_only_while_their_crd_exists() {
    let kube = FakeKube::start().await.expect("starts");
    let client = client(&kube).await;
    let path = "/apis/example.io/v1/namespaces/default/widgets";
    let widget = json!({"apiVersion": "example.io/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"}});
    assert_eq!(raw(&client, "GET", path, "").await.code, 404);
    assert!(kube.apply(widget.clone()).is_err(), "no CRD, no kind");

    kube.apply_yaml(WIDGET_CRD).expect("applies");
    kube.apply(widget.clone()).expect("served now");
    let list = raw(&client, "GET", path, "").await.json();
    assert_eq!(
        (
            list["kind"].as_str(),
            list["apiVersion"].as_str(),
            list["items"][0]["metadata"]["name"].as_str()
        ),
        (Some("WidgetList"), Some("example.io/v1"), Some("w"))
    );
    // Every served version answers, with the object at that version.
    let old = raw(
        &client,
        "GET",
        "/apis/example.io/v1beta1/namespaces/default/widgets/w",
        "",
    )
    .await
    .json();
    assert_eq!(old["apiVersion"], "example.io/v1beta1");
    let status = raw(
        &client,
        "GET",
        "/apis/example.io/v1/namespaces/default/widgets/w/status",
        "",
    )
    .await;
    assert_eq!(status.code, 200, "the status subresource is declared");

    let groups = client.list_api_groups().await.expect("discovery");
    let group = groups
        .groups
        .iter()
        .find(|g| g.name == "example.io")
        .expect("the CRD's group");
    assert_eq!(
        group.preferred_version.as_ref().map(|p| p.version.as_str()),
        Some("v1"),
        "GA before beta, whatever the CRD's order"
    );
    let resources = client
        .list_api_group_resources("example.io/v1")
        .await
        .expect("resources");
    let names: Vec<&str> = resources
        .resources
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, ["widgets", "widgets/status"]);
    assert!(resources.resources[0].namespaced);

    kube.delete(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
        "widgets.example.io",
    )
    .expect("deletes");
    let gone = raw(&client, "GET", path, "").await;
    assert_eq!(
        (gone.code, gone.content_type.as_str(), gone.body.as_str()),
        (404, "text/plain; charset=utf-8", "404 page not found\n")
    );
    let groups = client.list_api_groups().await.expect("discovery");
    assert!(!groups.groups.iter().any(|g| g.name == "example.io"));
    assert!(
        kube.get("example.io/v1", "Widget", Some("default"), "w")
            .is_none()
    );
}

#[tokio::test]
async fn refuses_the_updates_a_real_server_refuses() {
    let kube = FakeKube::start().await.expect("starts");
    kube.apply(json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "gp2"},
        "provisioner": "kubernetes.io/aws-ebs", "parameters": {"type": "gp2"}}))
    .expect("applies");
    let sc = ("storage.k8s.io/v1", "StorageClass", None, "gp2");
    kube.update(sc.0, sc.1, sc.2, sc.3, |s| {
        s["metadata"]["annotations"] =
            json!({"storageclass.kubernetes.io/is-default-class": "true"});
    })
    .expect("an annotation may change");
    let err = kube
        .update(sc.0, sc.1, sc.2, sc.3, |s| s["parameters"] = json!({}))
        .expect_err("parameters may not");
    assert_eq!(
        err.to_string(),
        "StorageClass.storage.k8s.io \"gp2\" is invalid: parameters: Forbidden: updates to parameters are forbidden."
    );

    // A CRD may serve more versions, never drop one it stored objects at.
    kube.apply_yaml(WIDGET_CRD).expect("applies");
    let crd = (
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
        "widgets.example.io",
    );
    kube.update(crd.0, crd.1, crd.2, crd.3, |c| {
        c.as_object_mut().expect("an object").remove("status");
        c["spec"]["versions"][0]["storage"] = json!(true);
        c["spec"]["versions"][1]["storage"] = json!(false);
    })
    .expect("the storage version may change");
    let stored = kube.get(crd.0, crd.1, crd.2, crd.3).expect("the CRD");
    assert_eq!(stored["status"]["storedVersions"], json!(["v1", "v1beta1"]));
    let err = kube
        .update(crd.0, crd.1, crd.2, crd.3, |c| {
            c["spec"]["versions"]
                .as_array_mut()
                .expect("versions")
                .remove(1);
        })
        .expect_err("v1 was stored");
    assert!(
        err.to_string().ends_with("is invalid: status.storedVersions[0]: Invalid value: \"v1\": missing from spec.versions; v1 was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in v1 and removes v1 from status.storedVersions"),
        "{err}"
    );
}

#[tokio::test]
async fn denies_with_the_real_forbidden_message() {
    let kube = FakeKube::start().await.expect("starts");
    kube.set_user("arn:aws:sts::123456789012:assumed-role/prowler/i-0b4asdfasdfasdfc584");
    kube.deny("list", "", "nodes");
    let client = client(&kube).await;
    // Byte for byte what EKS sent.
    let fixture = std::fs::read_to_string(fixture("k8s-status-403-forbidden-list-nodes-eks.json"))
        .expect("fixture");
    let answer = raw(&client, "GET", "/api/v1/nodes", "").await;
    assert_eq!(
        (answer.code, answer.body.as_str()),
        (403, fixture.trim_end())
    );

    let nodes: Api<Node> = Api::all(client.clone());
    let status = api_error(
        nodes
            .list(&ListParams::default())
            .await
            .expect_err("denied"),
    );
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    nodes.get_opt("x").await.expect("get is still allowed");
    let _stream = nodes
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .expect("so is watch");

    kube.deny("get", "", "secrets");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "backstage");
    let status = api_error(secrets.get("db").await.expect_err("denied"));
    assert_eq!(
        status.message,
        "secrets \"db\" is forbidden: User \"arn:aws:sts::123456789012:assumed-role/prowler/i-0b4asdfasdfasdfc584\" cannot get resource \"secrets\" in API group \"\" in the namespace \"backstage\""
    );
    kube.deny("*", "networking.k8s.io", "ingressclasses");
    let grouped = raw(
        &client,
        "GET",
        "/apis/networking.k8s.io/v1/ingressclasses?watch=1",
        "",
    )
    .await;
    assert_eq!(
        grouped.json()["message"],
        "ingressclasses.networking.k8s.io is forbidden: User \"arn:aws:sts::123456789012:assumed-role/prowler/i-0b4asdfasdfasdfc584\" cannot watch resource \"ingressclasses\" in API group \"networking.k8s.io\" at the cluster scope"
    );
    assert_eq!(
        grouped.json()["details"],
        json!({"group": "networking.k8s.io", "kind": "ingressclasses"})
    );
}

#[tokio::test]
async fn injects_transient_failures() {
    let kube = FakeKube::start().await.expect("starts");
    let client = client(&kube).await;
    let nodes: Api<Node> = Api::all(client.clone());
    kube.fail_next(1, 503);
    let status = api_error(nodes.list(&ListParams::default()).await.expect_err("503"));
    assert_eq!(
        (status.code, status.reason.as_str()),
        (503, "ServiceUnavailable")
    );
    nodes.list(&ListParams::default()).await.expect("recovered");

    kube.fail_next(2, 429);
    for _ in 0..2 {
        let answer = raw(&client, "GET", "/version", "").await;
        assert_eq!(
            (
                answer.code,
                answer.json()["reason"].as_str(),
                answer.headers.get("retry-after").map(|h| h.as_bytes())
            ),
            (429, Some("TooManyRequests"), Some(&b"1"[..])),
            "discovery counts too"
        );
    }
    kube.fail_next(1, 500);
    let status = api_error(nodes.list(&ListParams::default()).await.expect_err("500"));
    assert_eq!(
        (status.code, status.reason.as_str()),
        (500, "InternalError")
    );
    nodes.list(&ListParams::default()).await.expect("recovered");
}

#[tokio::test]
async fn a_blackholed_server_never_answers() {
    let kube = FakeKube::start().await.expect("starts");
    let open = client(&kube).await;
    let nodes: Api<Node> = Api::all(open.clone());
    nodes
        .list(&ListParams::default())
        .await
        .expect("answers before");
    kube.blackhole(true);
    let on_open_connection = tokio::time::timeout(
        Duration::from_millis(300),
        nodes.list(&ListParams::default()),
    )
    .await;
    assert!(
        on_open_connection.is_err(),
        "no answer on a kept-alive connection"
    );
    let fresh: Api<Node> = Api::all(client(&kube).await);
    let on_new_connection = tokio::time::timeout(
        Duration::from_millis(300),
        fresh.list(&ListParams::default()),
    )
    .await;
    assert!(on_new_connection.is_err(), "no TLS handshake either");
    kube.blackhole(false);
    let after: Api<Node> = Api::all(client(&kube).await);
    after
        .list(&ListParams::default())
        .await
        .expect("answers again on new connections");
}

#[tokio::test]
async fn dropping_the_last_handle_stops_the_server_and_its_watches() {
    let kube = FakeKube::start().await.expect("starts");
    let port = kube.url().rsplit(':').next().map(str::to_owned);
    let second = kube.clone();
    let maps: Api<ConfigMap> = Api::namespaced(client(&kube).await, "default");
    let mut events = maps
        .watch(&WatchParams::default().timeout(60), "0")
        .await
        .expect("watches")
        .boxed();
    drop(kube);
    second
        .apply(config_map("a", "1"))
        .expect("a clone keeps it running");
    assert_eq!(
        next_event(&mut events).await.as_ref().map(name_of),
        Some(("ADDED", "a".to_owned()))
    );
    drop(second);
    let ended = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("the watch ends with the server");
    assert!(
        ended.is_none_or(|e| e.is_err()),
        "no event after the server stopped"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    let connect =
        tokio::net::TcpStream::connect(format!("127.0.0.1:{}", port.expect("port"))).await;
    assert!(connect.is_err(), "the listener is closed");
}

#[tokio::test]
async fn loads_fixtures_from_files() {
    let kube = FakeKube::start().await.expect("starts");
    kube.load_file(&fixture("k8s-nodelist-eks-real.json"))
        .expect("loads a NodeList");
    let node = kube
        .get("v1", "Node", None, "ip-10-0-10-170.ec2.internal")
        .expect("the fixture's node");
    assert_eq!(node["kind"], "Node");
    assert_ne!(
        node["metadata"]["resourceVersion"], "2161",
        "the server sets resource versions"
    );
    // The platform's CRDs, then the objects that need them.
    for crds in [
        "argocd",
        "cert-manager",
        "external-secrets",
        "prometheus-operator",
    ] {
        kube.load_file(&fixture(&format!("crds/{crds}.yaml")))
            .expect("loads a YAML stream of CRDs");
    }
    kube.load_file(&fixture("cluster-healthy.yaml"))
        .expect("loads a YAML stream");
    assert!(
        kube.get(
            "external-secrets.io/v1",
            "ExternalSecret",
            Some("backstage"),
            "backstage-postgres"
        )
        .is_some()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n").expect("writes");
    let err = kube.load_file(&broken).expect_err("pods are not served");
    assert!(format!("{err:#}").contains("broken.yaml"), "{err:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_thousands_of_real_nodes_in_a_few_milliseconds_a_page() {
    const NODES: usize = 5000;
    let kube = FakeKube::start().await.expect("starts");
    for n in fake_kube::nodes_from_template(&template(), NODES, true) {
        kube.apply(n).expect("applies");
    }
    let client = client(&kube).await;
    let mut path = "/api/v1/nodes?limit=500".to_owned();
    let (mut items, mut bytes, mut pages) = (0, 0, Vec::new());
    loop {
        let started = Instant::now();
        let page = raw(&client, "GET", &path, "").await;
        pages.push(started.elapsed());
        bytes += page.body.len();
        let page = page.json();
        items += page["items"].as_array().map_or(0, Vec::len);
        match page["metadata"]["continue"].as_str() {
            Some(token) => {
                path = format!(
                    "/api/v1/nodes?limit=500&continue={}",
                    form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
                );
            }
            None => break,
        }
    }
    assert_eq!((items, pages.len()), (NODES, 10));
    let slowest = pages.iter().max().copied().unwrap_or_default();
    let total: Duration = pages.iter().sum();
    println!(
        "{NODES} nodes, {} MB, in pages of 500: {total:?} in all, the slowest {slowest:?} (request to last byte)",
        bytes / 1_000_000
    );
    // Generous for an unoptimised build on a busy 2-core machine.
    assert!(slowest < Duration::from_millis(500), "{pages:?}");
}

/// The real kubectl, from the test virtualenv (`scripts/test-venv.sh`, which `tests/run.sh`
/// runs), or the one `PREFLIGHT_KUBECTL` names. Missing, it fails the test: a compatibility
/// test that passes without the client it is about proves nothing.
fn kubectl_program() -> PathBuf {
    let path = std::env::var_os("PREFLIGHT_KUBECTL").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/kubectl"),
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "kubectl is missing at {}: run ./scripts/test-venv.sh (./tests/run.sh does), or name one \
         with PREFLIGHT_KUBECTL",
        path.display()
    );
    path
}

/// kubectl reads the fake server as it reads a real one: `--chunk-size` pages the node list
/// with `limit` and the server's `continue` tokens, the pages together hold every node once and
/// in order; aggregated discovery, `auth whoami` and a real `NotFound` status.
#[tokio::test(flavor = "multi_thread")]
async fn real_kubectl_lists_nodes_in_chunks() {
    let kubectl_path = kubectl_program();
    let kube = FakeKube::start().await.expect("starts");
    for n in fake_kube::nodes_from_template(&template(), 5, true) {
        kube.apply(n).expect("applies");
    }
    let home = tempfile::tempdir().expect("tempdir");
    let kubeconfig = home.path().join("kubeconfig");
    kube.write_kubeconfig(&kubeconfig).expect("writes");
    let kubectl = |args: &[&str]| {
        let out = std::process::Command::new(&kubectl_path)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            // Its discovery cache goes to $HOME/.kube/cache.
            .env("HOME", home.path())
            .env_remove("KUBECONFIG")
            .output()
            .expect("kubectl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let run = |args: &[&str]| {
        let (ok, stdout, stderr) = tokio::task::block_in_place(|| kubectl(args));
        assert!(ok, "kubectl {args:?}: {stderr}");
        stdout
    };
    let out = run(&["get", "nodes", "-o", "json", "--chunk-size", "2"]);
    let list: Value = serde_json::from_str(&out).expect("json");
    let names: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|n| n["metadata"]["name"].as_str())
        .collect();
    assert_eq!(
        names,
        (1..=5)
            .map(|i| format!("ip-10-0-0-{i}.ec2.internal"))
            .collect::<Vec<_>>()
    );
    // Three pages of at most two: the first without a continue token, each next one with the
    // token the page before it returned.
    let pages: Vec<String> = kube
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/nodes" && r.query.contains("limit=2"))
        .map(|r| r.query.clone())
        .collect();
    assert_eq!(
        pages.len(),
        3,
        "kubectl paged through the fake server: {pages:?}"
    );
    assert!(!pages[0].contains("continue="), "{pages:?}");
    assert!(
        pages[1..].iter().all(|q| q.contains("continue=")),
        "{pages:?}"
    );

    assert!(
        !kube.requests().iter().any(|r| r.path == "/apis/apps/v1"),
        "kubectl took the aggregated discovery: {:?}",
        kube.requests()
    );
    let groups = run(&["get", "--raw", "/apis"]);
    assert!(groups.contains("\"APIGroupList\""), "{groups}");
    let whoami = run(&["auth", "whoami", "-o", "json"]);
    assert!(
        whoami.contains("system:serviceaccount:argocd:preflight"),
        "{whoami}"
    );
    let (ok, _, stderr) = tokio::task::block_in_place(|| kubectl(&["get", "node", "ghost"]));
    assert!(!ok);
    assert!(
        stderr.contains(r#"Error from server (NotFound): nodes "ghost" not found"#),
        "{stderr}"
    );
}
