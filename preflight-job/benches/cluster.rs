//! Benchmarks of the Kubernetes side, against the in-repo fake API server on loopback:
//!
//! 1. nodes-ready on a 5,000-node cluster against `kubectl get nodes -o json` on the same
//!    server (median wall time of several runs; target ratio at most 1.0);
//! 2. the peak RSS of that preflight run (GNU time's `%M`; target under 64 MiB);
//! 3. the time from a watched condition turning true to preflight exiting (target under 1 s),
//!    on a small cluster and on the 5,000-node one.
//!
//! Run with `cargo bench -p preflight-job --bench cluster`. Prints a table; asserts nothing.

#![expect(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark reports on stdout and stops on a broken setup"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fake_kube::FakeKube;
use serde_json::Value;

const NODES: usize = 5_000;
const RUNS: usize = 7;

fn fixture() -> Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/k8s-nodelist-eks-real.json");
    let list: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    list["items"][0].clone()
}

fn values() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/values.yaml")
}

fn preflight(kubeconfig: &Path, home: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_preflight"));
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--values")
        .arg(values());
    cmd.args([
        "--tier",
        "0",
        "--check",
        "nodes-ready",
        "--no-cluster-values",
        "--output",
        "json=/dev/null",
    ]);
    cmd.args(extra);
    cmd.env("HOME", home)
        .env("PREFLIGHT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// The real kubectl from the test virtualenv (`scripts/test-venv.sh`), else the one on PATH
/// (on some machines a dispatcher that adds its own process and a /version request).
fn kubectl_program() -> std::path::PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-venv/bin/kubectl");
    if venv.exists() {
        venv
    } else {
        "kubectl".into()
    }
}

fn kubectl(kubeconfig: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(kubectl_program());
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["get", "nodes", "-o", "json"]);
    cmd.env("HOME", home)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Median wall time of `RUNS` runs, after one warm-up run (kubectl fills its discovery cache).
fn median_time(mut make: impl FnMut() -> Command, expect_success: bool) -> Duration {
    let warm = make().status().unwrap();
    assert_eq!(warm.success(), expect_success, "warm-up run: {warm}");
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            let status = make().status().unwrap();
            assert_eq!(status.success(), expect_success);
            start.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

/// Peak RSS in KiB of one run, by GNU time.
fn peak_rss_kib(cmd: &Command) -> u64 {
    let mut timed = Command::new("/usr/bin/time");
    timed
        .args(["-f", "%M"])
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            timed.env(k, v);
        }
    }
    let out = timed
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    text.lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("GNU time said: {text}"))
}

fn node_name(n: &Value) -> String {
    n["metadata"]["name"].as_str().unwrap().to_owned()
}

fn set_ready(node: &mut Value, ready: bool) {
    for c in node["status"]["conditions"].as_array_mut().unwrap() {
        if c["type"] == "Ready" {
            c["status"] = Value::String(if ready { "True" } else { "False" }.into());
        }
    }
}

/// Starts preflight waiting on one NotReady node, turns the node Ready once preflight is
/// watching, and measures from that change to preflight's exit.
async fn watch_latency(
    kube: &FakeKube,
    kubeconfig: &Path,
    home: &Path,
    name: &str,
    min_ready: usize,
) -> Duration {
    kube.update("v1", "Node", None, name, |n| set_ready(n, false))
        .unwrap();
    let config = home.join(format!("min-{min_ready}.yaml"));
    std::fs::write(
        &config,
        format!("checks:\n  nodes-ready:\n    minReady: {min_ready}\n"),
    )
    .unwrap();
    let mut cmd = tokio::process::Command::from(preflight(
        kubeconfig,
        home,
        &["--wait", "60s", "--config", config.to_str().unwrap()],
    ));
    let watches_before = watch_count(kube);
    let mut child = cmd.spawn().unwrap();
    // Wait until preflight has listed, judged "not ready" and opened its watch.
    let opened = Instant::now();
    while watch_count(kube) == watches_before {
        assert!(
            opened.elapsed() < Duration::from_secs(30),
            "preflight never watched"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let changed = Instant::now();
    kube.update("v1", "Node", None, name, |n| set_ready(n, true))
        .unwrap();
    let status = child.wait().await.unwrap();
    let latency = changed.elapsed();
    assert!(status.success(), "preflight exit {status}");
    latency
}

fn watch_count(kube: &FakeKube) -> usize {
    kube.requests()
        .iter()
        .filter(|r| r.path == "/api/v1/nodes" && r.query.contains("watch="))
        .count()
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = home.path().join("kubeconfig");

    let small = FakeKube::start().await.unwrap();
    let small_nodes = fake_kube::nodes_from_template(&fixture(), 3, true);
    for n in &small_nodes {
        small.apply(n.clone()).unwrap();
    }
    let small_config = home.path().join("small-kubeconfig");
    small.write_kubeconfig(&small_config).unwrap();

    let kube = FakeKube::start().await.unwrap();
    let nodes = fake_kube::nodes_from_template(&fixture(), NODES, true);
    let sample = nodes[NODES / 2].clone();
    for n in nodes {
        kube.apply(n).unwrap();
    }
    kube.write_kubeconfig(&kubeconfig).unwrap();
    let node_bytes = serde_json::to_vec(&sample).unwrap().len();

    println!(
        "preflight benchmarks (fake API server on loopback, {} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "cluster: {NODES} nodes of ~{} KiB each (the real EKS node shape)",
        node_bytes / 1024
    );

    let have_kubectl = Command::new(kubectl_program())
        .arg("version")
        .arg("--client")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let ours = tokio::task::block_in_place(|| {
        median_time(|| preflight(&kubeconfig, home.path(), &[]), true)
    });
    println!(
        "preflight nodes-ready             median of {RUNS}: {}",
        ms(ours)
    );
    if have_kubectl {
        let theirs =
            tokio::task::block_in_place(|| median_time(|| kubectl(&kubeconfig, home.path()), true));
        println!(
            "kubectl get nodes -o json         median of {RUNS}: {}",
            ms(theirs)
        );
        println!(
            "ratio preflight / kubectl         {:.2}   (target <= 1.0)",
            ours.as_secs_f64() / theirs.as_secs_f64()
        );
    } else {
        println!("kubectl not found: ratio not measured");
    }
    let rss =
        tokio::task::block_in_place(|| peak_rss_kib(&preflight(&kubeconfig, home.path(), &[])));
    println!(
        "preflight peak RSS (5,000 nodes)  {:.1} MiB   (target < 64 MiB)",
        rss as f64 / 1024.0
    );

    let mut small_latencies = Vec::new();
    for _ in 0..5 {
        small_latencies.push(
            watch_latency(
                &small,
                &small_config,
                home.path(),
                &node_name(&small_nodes[0]),
                3,
            )
            .await,
        );
    }
    small_latencies.sort();
    println!(
        "condition true -> exit, 3 nodes    median of 5: {}  (max {})  (target < 1 s)",
        ms(small_latencies[2]),
        ms(small_latencies[4])
    );
    let large = watch_latency(&kube, &kubeconfig, home.path(), &node_name(&sample), NODES).await;
    println!(
        "condition true -> exit, {NODES} nodes: {}  (target < 1 s)",
        ms(large)
    );
}
