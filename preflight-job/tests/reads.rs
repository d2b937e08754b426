//! Cheap reads at scale: lists that only need a recent view are served from the API server's
//! watch cache (`resourceVersion=0`, or `NotOlderThan` what a watch has already seen), and a
//! watch that ends without a change is opened again where it left off rather than read again.
//! The evidence is what the server received: the fake's request log, the real server's audit
//! log.

#![allow(
    clippy::unwrap_used,
    reason = "scenarios run on both servers are not #[test] functions"
)]

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

const NODES: &str = "/api/v1/nodes";

/// The first node of [`Cluster::healthy`], which [`set_all_nodes`] changes first.
fn first_node() -> String {
    let nodes = fake_kube::nodes_from_template(&eks_node(), 3, true);
    nodes[0]["metadata"]["name"].as_str().unwrap().to_owned()
}

fn resource_version(cluster: &Cluster, kind: &str, name: &str) -> String {
    cluster.kube.get("v1", kind, None, name).unwrap()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn param(query: &str, key: &str) -> Option<String> {
    query_param(query, key)
}

on_both_servers!(a_change_is_read_no_older_than_the_watch_saw_it);

/// The first list of the nodes asks for any recent view (`resourceVersion=0`, which every
/// release serves from its watch cache), and the watch starts from that list's version.
/// The change that wakes the check is read `NotOlderThan` its own version, so the judgement
/// sees it even from a cache.
async fn a_change_is_read_no_older_than_the_watch_saw_it(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    set_all_nodes(&cluster, false);
    let child = cluster.preflight_watching(&WAIT_FOR_NODES).spawn().unwrap();
    cluster.watching(NODES).await;
    set_all_nodes(&cluster, true);
    let run = noticed_within_a_second(child).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);

    let requests = cluster.queries(NODES);
    let (verb, first) = &requests[0];
    assert_eq!(verb, "list", "{requests:#?}");
    assert_eq!(
        param(first, "resourceVersion").as_deref(),
        Some("0"),
        "{first}"
    );
    assert_eq!(param(first, "resourceVersionMatch"), None, "{first}");
    assert_eq!(param(first, "limit").as_deref(), Some("500"), "{first}");
    let (verb, watch) = &requests[1];
    assert_eq!(verb, "watch", "{requests:#?}");
    let listed_at = param(watch, "resourceVersion").unwrap();
    assert_ne!(
        listed_at, "0",
        "the watch starts from the list's version: {watch}"
    );
    assert_eq!(param(watch, "allowWatchBookmarks").as_deref(), Some("true"));

    let (verb, again) = &requests[2];
    assert_eq!(verb, "list", "{requests:#?}");
    assert_eq!(
        param(again, "resourceVersionMatch").as_deref(),
        Some("NotOlderThan"),
        "{again}"
    );
    // The first node's change woke the check: its version is the floor of the next read.
    assert_eq!(
        param(again, "resourceVersion"),
        Some(resource_version(&cluster, "Node", &first_node())),
        "{requests:#?}"
    );
    assert_eq!(
        param(again, "limit"),
        None,
        "a limit would send the list to etcd before 1.31: {again}"
    );
}

on_both_servers!(a_large_cluster_is_read_whole_from_the_watch_cache);

/// With a watch cache (every real server's default), a list at version 0 comes back whole in
/// one answer whatever its `limit`, and every node is judged. Read item by item, it keeps
/// preflight's memory flat (see the cluster benchmark).
async fn a_large_cluster_is_read_whole_from_the_watch_cache(backend: Backend) {
    let cluster = Cluster::empty_on(backend).await;
    let nodes = fake_kube::nodes_from_template(&eks_node(), 1200, true);
    match &cluster.kube {
        Kube::Real(plane) => plane.apply_all(nodes).unwrap(),
        Kube::Fake(_) => {
            for n in nodes {
                cluster.kube.apply(n).unwrap();
            }
        }
    }
    let run =
        run(cluster.preflight(&["--tier", "0", "--check", "nodes-ready", "--output", "json"]))
            .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.check("nodes-ready")["message"],
        "1200 of 1200 nodes are Ready and schedulable (amd64: 1200)"
    );
    let lists = cluster.queries(NODES);
    assert_eq!(lists.len(), 1, "one answer, no pages: {lists:?}");
    assert_eq!(param(&lists[0].1, "resourceVersion").as_deref(), Some("0"));
}

/// A watch the server ends without a change (its request timeout, a dropped connection) is
/// opened again from the version of its last bookmark, with no read in between: nothing
/// changed, so nothing is judged again.
#[tokio::test(flavor = "multi_thread")]
async fn a_closed_watch_is_opened_again_from_its_bookmark_without_a_read() {
    let cluster = Cluster::healthy().await;
    let fake = cluster.kube.fake();
    fake.limit_watches(Some(Duration::from_millis(1500)));
    set_all_nodes(&cluster, false);
    let child = cluster.preflight_watching(&WAIT_FOR_NODES).spawn().unwrap();
    cluster.watching(NODES).await;
    // Something else changes: the server's version moves on, the nodes' watch sees no event,
    // and the bookmark that ends it carries the new version.
    fake.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "elsewhere"}}))
        .unwrap();
    let moved_to = resource_version(&cluster, "Namespace", "elsewhere");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while cluster.requests_to(NODES, true) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the watch was not opened again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    set_all_nodes(&cluster, true);
    let run = noticed_within_a_second(child).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        run.check("nodes-ready")["attempts"],
        2,
        "the closed watch woke no attempt"
    );

    let requests = cluster.queries(NODES);
    let verbs: Vec<&str> = requests.iter().map(|(v, _)| v.as_str()).collect();
    assert_eq!(
        verbs[..4],
        ["list", "watch", "watch", "list"],
        "no read between the two watches: {requests:#?}"
    );
    assert_eq!(
        param(&requests[2].1, "resourceVersion"),
        Some(moved_to),
        "opened again from the bookmark: {requests:#?}"
    );
}

/// A watch whose version the server no longer has (`410 Expired`) cannot resume: the nodes
/// are read again, not older than the version the watch started from, and watched from there.
#[tokio::test(flavor = "multi_thread")]
async fn an_expired_watch_leads_to_a_read_not_older_than_its_start() {
    let cluster = Cluster::healthy().await;
    cluster.kube.fake().expire_next_watches(1);
    set_all_nodes(&cluster, false);
    let child = cluster.preflight_watching(&WAIT_FOR_NODES).spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while cluster.requests_to(NODES, true) < 2 {
        assert!(std::time::Instant::now() < deadline, "no second watch");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    set_all_nodes(&cluster, true);
    let run = noticed_within_a_second(child).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("the watch expired (410 Gone): reading again"),
        "{}",
        run.stderr
    );

    let requests = cluster.queries(NODES);
    let verbs: Vec<&str> = requests.iter().map(|(v, _)| v.as_str()).collect();
    assert_eq!(
        verbs[..4],
        ["list", "watch", "list", "watch"],
        "{requests:#?}"
    );
    let started_at = param(&requests[1].1, "resourceVersion").unwrap();
    let again = &requests[2].1;
    assert_eq!(param(again, "resourceVersion"), Some(started_at), "{again}");
    assert_eq!(
        param(again, "resourceVersionMatch").as_deref(),
        Some("NotOlderThan"),
        "{again}"
    );
}
