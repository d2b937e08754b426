//! Expired resource versions on the real server. etcd's history is compacted while preflight
//! reads, as the API server does every few minutes on a busy cluster: a list's continue token,
//! or a watch's starting point, then no longer exists, and the server answers `410 Gone`.
//! preflight must read again and still decide on every object.
//!
//! This binary's kube-apiserver runs with its watch cache off, so that every list page and
//! every watch is served by etcd and a compaction expires them at once; with the cache, the
//! same 410s come when a version falls out of the cache's window, which a test cannot time.
//! Without the cache, etcd also pages a list at `resourceVersion=0`, which a cache serves
//! whole: the pages are followed.

#![allow(
    clippy::unwrap_used,
    reason = "scenarios run on both servers are not #[test] functions"
)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use support::*;

fn real() -> Backend {
    control_plane::apiserver_args(&["--watch-cache=false"]);
    Backend::Real
}

/// Writes and compacts etcd in a loop until dropped: each round moves etcd's revision on (a
/// key outside the API server's) and compacts its history up to it, a millisecond or two.
struct Compactions {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Compactions {
    fn start(cluster: &Cluster) -> Compactions {
        let plane = cluster.kube.real();
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicUsize::new(0));
        let (s, r) = (stop.clone(), rounds.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                r.fetch_add(1, Ordering::SeqCst);
                plane.bump_etcd_revision().unwrap();
                plane.compact_etcd().unwrap();
            }
        });
        Compactions {
            stop,
            rounds,
            thread: Some(thread),
        }
    }

    fn rounds(&self) -> usize {
        self.rounds.load(Ordering::SeqCst)
    }
}

impl Drop for Compactions {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

on_both_servers!(lists_are_followed_page_by_page_without_a_watch_cache);

/// Without a watch cache, a list at `resourceVersion=0` is paged like any other: 1,200 nodes
/// in three pages of 500, the next ones asked for by their continue token alone (a version
/// or a match next to it is refused), and every node judged.
async fn lists_are_followed_page_by_page_without_a_watch_cache(backend: Backend) {
    let backend = match backend {
        Backend::Real => real(),
        Backend::Fake => Backend::Fake,
    };
    let cluster = Cluster::empty_on(backend).await;
    let nodes = fake_kube::nodes_from_template(&eks_node(), 1200, true);
    match &cluster.kube {
        Kube::Real(plane) => plane.apply_all(nodes).unwrap(),
        Kube::Fake(fake) => {
            fake.set_watch_cache(false);
            for n in nodes {
                fake.apply(n).unwrap();
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
    let lists: Vec<String> = cluster
        .queries("/api/v1/nodes")
        .into_iter()
        .map(|(_, query)| query)
        .collect();
    assert_eq!(lists.len(), 3, "{lists:#?}");
    assert_eq!(
        query_param(&lists[0], "resourceVersion").as_deref(),
        Some("0")
    );
    for page in &lists {
        assert_eq!(query_param(page, "limit").as_deref(), Some("500"), "{page}");
    }
    for next in &lists[1..] {
        assert!(query_param(next, "continue").is_some(), "{next}");
        assert_eq!(query_param(next, "resourceVersion"), None, "{next}");
        assert_eq!(query_param(next, "resourceVersionMatch"), None, "{next}");
    }
}

/// 1,200 nodes are listed in three pages of 500. Compactions between the pages expire the
/// continue token: preflight lists again, whole (as client-go's pager does), and judges all
/// 1,200 nodes once each, the NotReady one on the last page included.
#[tokio::test(flavor = "multi_thread")]
async fn an_expired_list_is_read_again_whole_and_every_node_is_judged() {
    let cluster = Cluster::empty_on(real()).await;
    let mut nodes = fake_kube::nodes_from_template(&eks_node(), 1200, true);
    nodes.sort_by_key(|n| n["metadata"]["name"].as_str().unwrap().to_owned());
    let last = nodes.last_mut().unwrap();
    set_node_ready(last, false);
    let last_name = last["metadata"]["name"].as_str().unwrap().to_owned();
    cluster.kube.real().apply_all(nodes).unwrap();

    // A compaction may miss the moment between two pages; the run is repeated until the
    // audit log shows an expired continue token, then judged.
    for round in 1..=5 {
        let compactions = Compactions::start(&cluster);
        let mark = cluster.audit().len();
        let run =
            run(cluster.preflight(&["--tier", "0", "--check", "nodes-ready", "--output", "json"]))
                .await;
        let rounds = compactions.rounds();
        drop(compactions);
        let lists: Vec<_> = cluster
            .audit()
            .into_iter()
            .skip(mark)
            .filter(|(verb, uri, _)| verb == "list" && uri.starts_with("/api/v1/nodes"))
            .collect();
        let Some(expired) = lists
            .iter()
            .position(|(_, uri, code)| uri.contains("continue=") && *code == 410)
        else {
            assert!(round < 5, "no continue token expired in 5 runs: {lists:#?}");
            continue;
        };
        assert!(
            lists[expired + 1..]
                .iter()
                .any(|(_, uri, code)| !uri.contains("limit=") && *code == 200),
            "after the 410, a whole list: {lists:#?}"
        );
        assert!(
            run.stderr.contains("continue token expired (410 Gone)"),
            "{}",
            run.stderr
        );
        let c = run.check("nodes-ready");
        assert_eq!(c["code"], "nodes-partially-ready", "{c:#}");
        assert_eq!(
            (
                c["evidence"]["nodes"].as_str(),
                c["evidence"]["ready"].as_str()
            ),
            (Some("1200"), Some("1199")),
            "every node judged once ({rounds} compactions): {c:#}"
        );
        assert!(c["message"].as_str().unwrap().contains(&last_name), "{c:#}");
        return;
    }
}

/// While preflight waits for nodes to become Ready, compactions expire its watch: it reads
/// again and watches from there, and the change is still noticed within a second, with the
/// backoff at minutes (so only a watch explains it). A watch expires only when a compaction
/// falls between the read and the watch's start, so the run is repeated until one did.
#[tokio::test(flavor = "multi_thread")]
async fn an_expired_watch_is_followed_by_a_fresh_read_and_the_change_is_noticed() {
    let cluster = Cluster::healthy_on(real()).await;
    for round in 1..=10 {
        set_all_nodes(&cluster, false);
        let compactions = Compactions::start(&cluster);
        let child = cluster.preflight_watching(&WAIT_FOR_NODES).spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        drop(compactions);
        cluster.watching("/api/v1/nodes").await;
        set_all_nodes(&cluster, true);
        let run = noticed_within_a_second(child).await;
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        let c = run.check("nodes-ready");
        assert_eq!(
            c["message"],
            "3 of 3 nodes are Ready and schedulable (amd64: 3)"
        );
        if run.stderr.contains("the watch expired (410 Gone)") {
            return;
        }
        assert!(round < 10, "no watch expired in 10 runs: {}", run.stderr);
    }
}
