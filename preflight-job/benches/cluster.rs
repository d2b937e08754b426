//! Benchmarks of the Kubernetes side, each measured unconstrained and again inside a cgroup
//! with the hook's limits (500m CPU, 128 MiB), both sides of every ratio in the same setting:
//!
//! 1. nodes-ready on a 5,000-node cluster against `kubectl get nodes -o name` on the same
//!    server (kubectl's JSON printing left out; `-o json` shown for reference), on the in-repo
//!    fake API server and on the real kube-apiserver (target ratio at most 0.3);
//! 2. the peak RSS of one run that does nodes-ready on those 5,000 nodes and dns-scope on a
//!    hosted zone of 3,000 record sets in moto (target under 64 MiB; under the 128 MiB limit
//!    it must not be OOM-killed);
//! 3. the time from a watched condition turning true to preflight exiting (target under
//!    250 ms), on a 3-node cluster and on the 5,000-node one.
//!
//! Run with `cargo bench -p preflight-job --bench cluster` after `./tests/run.sh` (moto, GNU
//! time, the real control plane). Prints every measurement with the commands behind it, then
//! a summary; asserts only its setup.

#![expect(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark reports on stdout and stops on a broken setup"
)]

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Setting, Side, Summary, Target, describe, time_in_turn};
use fake_kube::FakeKube;
use serde_json::Value;
use support::moto::{Moto, external_dns_records};
use support::platform::{BUILD_OWNER, BUILD_SUFFIX};

const NODES: usize = 5_000;
const RECORD_SETS: usize = 3_000;
/// Runs of each side of a ratio.
const RUNS: usize = 7;

/// `preflight --tier 0 --check nodes-ready` (the ephemeral example values, none read from
/// the cluster) against `kubeconfig`, with `extra` arguments.
fn nodes_ready(kubeconfig: &Path, home: &Path, extra: &[&str]) -> Command {
    let mut cmd = support::preflight_cmd();
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--values")
        .arg(support::repo("examples/values.yaml"))
        .args([
            "--no-cluster-values",
            "--tier",
            "0",
            "--check",
            "nodes-ready",
            "--output",
            "json=/dev/null",
        ])
        .args(extra)
        .env("HOME", home)
        .env("PREFLIGHT_LOG", "warn");
    cmd.into_std()
}

fn kubectl_get_nodes(kubeconfig: &Path, home: &Path, output: &str) -> Command {
    let mut cmd = Command::new(common::kubectl());
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["get", "nodes", "-o", output])
        .env("HOME", home);
    cmd
}

/// 1. nodes-ready against `kubectl get nodes` on one server, taken in turn. Where the memory
///    limit kills a side, the ratios are taken again under the CPU limit alone.
fn against_kubectl(
    server: &str,
    kubeconfig: &Path,
    home: &Path,
    setting: &Setting,
    summary: &mut Summary,
) {
    let by_name = format!("nodes-ready / kubectl get nodes -o name, {NODES} nodes, {server}");
    let by_json = format!("nodes-ready / kubectl get nodes -o json, {NODES} nodes, {server}");
    let mut ours = || nodes_ready(kubeconfig, home, &[]);
    let mut name = || kubectl_get_nodes(kubeconfig, home, "name");
    let mut json = || kubectl_get_nodes(kubeconfig, home, "json");
    let sides = [
        "preflight nodes-ready",
        "kubectl get nodes -o name",
        "kubectl get nodes -o json",
    ];
    let t = match time_in_turn(setting, RUNS, &mut [&mut ours, &mut name, &mut json]) {
        Ok(t) => t,
        Err((side, why)) => {
            println!("[{}] {why}", setting.name);
            let brief = format!("{} OOM-killed by the 128 MiB limit", sides[side]);
            summary.not_taken(setting, &by_name, Target::AtMost(0.3), &brief);
            summary.not_taken(setting, &by_json, Target::None, &brief);
            if let Some(cpu_only) = setting.cpu_only() {
                against_kubectl(server, kubeconfig, home, cpu_only, summary);
            }
            return;
        }
    };
    let ours_side = Side {
        name: sides[0],
        timing: &t[0],
        command: describe(&ours()),
    };
    summary.ratio(
        setting,
        &by_name,
        Target::AtMost(0.3),
        &ours_side,
        &Side {
            name: sides[1],
            timing: &t[1],
            command: describe(&name()),
        },
    );
    summary.ratio(
        setting,
        &by_json,
        Target::None,
        &ours_side,
        &Side {
            name: sides[2],
            timing: &t[2],
            command: describe(&json()),
        },
    );
}

/// A hosted zone of the base domain with `RECORD_SETS` record sets (SOA and NS included):
/// A records and their ownership TXT records of this build's ExternalDNS, under its suffix.
async fn zone_of(moto: &Moto) {
    let zone = moto.create_zone("goldenpathidp.io", false).await;
    let hosts = (RECORD_SETS - 2) / 2;
    let records: Vec<_> = (0..hosts)
        .flat_map(|i| {
            external_dns_records(
                &format!("app-{i}.{BUILD_SUFFIX}"),
                BUILD_OWNER,
                &format!("ingress/apps/app-{i}"),
                true,
            )
        })
        .collect();
    moto.add_records(&zone, &records).await;
}

/// 2. The peak RSS of one run doing nodes-ready on the 5,000 nodes and dns-scope on the zone
///    (with route53-zone, which it needs), the largest of three.
fn peak_rss(moto: &Moto, kubeconfig: &Path, home: &Path, setting: &Setting, summary: &mut Summary) {
    let report = home.join("rss-report.json");
    let mut cmd = support::preflight_cmd();
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--values")
        .arg(support::repo("examples/values.yaml"))
        .args([
            "--no-cluster-values",
            "--tier",
            "1.5",
            "--check",
            "nodes-ready",
            "--check",
            "route53-zone",
            "--check",
            "dns-scope",
            "--output",
        ])
        .arg(format!("json={}", report.display()))
        .env("HOME", home)
        .env("PREFLIGHT_LOG", "warn");
    moto.env(&mut cmd);
    let cmd = cmd.into_std();
    let oom_before = setting.oom_kills();
    let mut peak = 0;
    let mut ends = Vec::new();
    for _ in 0..3 {
        let _ = std::fs::remove_file(&report);
        let (kib, ended) = common::peak_rss(setting, &cmd);
        peak = peak.max(kib);
        if ended == "exit 0" {
            check_rss_report(&report);
        }
        ends.push(ended);
    }
    summary.record(
        setting,
        &format!(
            "peak RSS, nodes-ready on {NODES} nodes + dns-scope on {RECORD_SETS} record sets (largest of 3)"
        ),
        Target::UnderMiB(64.0),
        peak as f64 / 1024.0,
    );
    println!("    runs ended: {}", ends.join("; "));
    if setting.is_memory_limited() {
        println!(
            "    OOM-killed under the 128 MiB limit: {}",
            match setting.oom_kills() - oom_before {
                0 => "no".to_owned(),
                n => format!("YES, {n} time(s)"),
            }
        );
    }
    println!(
        "      $ /usr/bin/time -f 'peak-rss-kib %M' {}",
        describe(&cmd)
    );
    // For scale: what kubectl needs for the same nodes (where no memory limit kills it).
    if !setting.is_memory_limited() {
        let kubectl = kubectl_get_nodes(kubeconfig, home, "name");
        let (kib, ended) = common::peak_rss(setting, &kubectl);
        summary.record(
            setting,
            &format!("peak RSS (MiB) of kubectl get nodes -o name, {NODES} nodes"),
            Target::None,
            kib as f64 / 1024.0,
        );
        println!("    ended: {ended}");
        println!(
            "      $ /usr/bin/time -f 'peak-rss-kib %M' {}",
            describe(&kubectl)
        );
    }
}

/// The run verified what it was meant to: every node, every record set.
fn check_rss_report(path: &Path) {
    let report: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let check = |id: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no {id} in {report:#}"))
    };
    let nodes = check("nodes-ready");
    assert!(
        nodes["status"] == "pass"
            && nodes["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{NODES} of {NODES} nodes")),
        "{nodes:#}"
    );
    let scope = check("dns-scope");
    let read: usize = scope["evidence"]["recordSetsRead"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        scope["status"] == "pass" && read >= RECORD_SETS,
        "{scope:#}"
    );
}

fn set_ready(node: &mut Value, ready: bool) {
    for c in node["status"]["conditions"].as_array_mut().unwrap() {
        if c["type"] == "Ready" {
            c["status"] = Value::String(if ready { "True" } else { "False" }.into());
        }
    }
}

fn watch_count(kube: &FakeKube) -> usize {
    kube.requests()
        .iter()
        .filter(|r| r.path == "/api/v1/nodes" && r.query.contains("watch="))
        .count()
}

/// Starts preflight (in `setting`) waiting on one NotReady node, turns the node Ready once
/// preflight is watching, and measures from that change to preflight's exit.
fn watch_latency(
    kube: &FakeKube,
    kubeconfig: &Path,
    home: &Path,
    name: &str,
    min_ready: usize,
    setting: &Setting,
) -> (Duration, String) {
    kube.update("v1", "Node", None, name, |n| set_ready(n, false))
        .unwrap();
    let config = home.join(format!("min-{min_ready}.yaml"));
    std::fs::write(
        &config,
        format!("checks:\n  nodes-ready:\n    minReady: {min_ready}\n"),
    )
    .unwrap();
    let cmd = nodes_ready(
        kubeconfig,
        home,
        &["--wait", "60s", "--config", config.to_str().unwrap()],
    );
    let shown = describe(&cmd);
    let watches_before = watch_count(kube);
    let mut child = setting.spawn(cmd, false);
    // Wait until preflight has listed, judged "not ready" and opened its watch.
    let opened = Instant::now();
    while watch_count(kube) == watches_before {
        assert!(
            opened.elapsed() < Duration::from_secs(60),
            "preflight never watched"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    let changed = Instant::now();
    kube.update("v1", "Node", None, name, |n| set_ready(n, true))
        .unwrap();
    let status = child.wait().unwrap();
    let latency = changed.elapsed();
    assert!(status.success(), "preflight exit {status}: {shown}");
    (latency, shown)
}

/// 3. Condition true -> exit, `runs` times, the median against the target.
#[expect(clippy::too_many_arguments, reason = "one call per cluster, all named")]
fn latency(
    what: &str,
    kube: &FakeKube,
    kubeconfig: &Path,
    home: &Path,
    node: &str,
    min_ready: usize,
    runs: usize,
    setting: &Setting,
    summary: &mut Summary,
) {
    let mut times = Vec::new();
    let mut shown = String::new();
    for _ in 0..runs {
        let (t, cmd) = watch_latency(kube, kubeconfig, home, node, min_ready, setting);
        times.push(t);
        shown = cmd;
    }
    let timing = common::Timing::of(times);
    summary.record(
        setting,
        &format!("condition true -> exit, {what} (median of {runs})"),
        Target::UnderMs(250.0),
        timing.ms(),
    );
    println!("    {}", timing.show());
    println!("      $ {shown}   (node {node} turned Ready once preflight watches)");
}

fn node_name(n: &Value) -> String {
    n["metadata"]["name"].as_str().unwrap().to_owned()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let kubeconfig = home.join("kubeconfig");

    let small = FakeKube::start().await.unwrap();
    let small_nodes = fake_kube::nodes_from_template(&support::eks_node(), 3, true);
    for n in &small_nodes {
        small.apply(n.clone()).unwrap();
    }
    let small_config = home.join("small-kubeconfig");
    small.write_kubeconfig(&small_config).unwrap();

    let kube = FakeKube::start().await.unwrap();
    let nodes = fake_kube::nodes_from_template(&support::eks_node(), NODES, true);
    let sample = nodes[NODES / 2].clone();
    for n in nodes.iter().cloned() {
        kube.apply(n).unwrap();
    }
    kube.write_kubeconfig(&kubeconfig).unwrap();
    let node_bytes = serde_json::to_vec(&sample).unwrap().len();

    println!(
        "cluster benchmarks (loopback, {} cores; servers outside any limit, clients timed)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "cluster: {NODES} nodes of ~{} KiB each (the real EKS node shape)",
        node_bytes / 1024
    );

    let moto = Moto::start();
    zone_of(&moto).await;

    // The same nodes on the real kube-apiserver, created a few requests at a time.
    let real_config = home.join("real-kubeconfig");
    let real = if support::control_plane::binaries()
        .join("kube-apiserver")
        .exists()
    {
        tokio::task::block_in_place(|| {
            let plane = support::control_plane::control_plane();
            let start = Instant::now();
            plane.create_all(nodes).unwrap();
            println!(
                "real kube-apiserver {}: {NODES} nodes created in {:.1} s",
                plane.git_version,
                start.elapsed().as_secs_f64()
            );
            std::fs::write(&real_config, plane.reader_kubeconfig()).unwrap();
        });
        true
    } else {
        println!(
            "real kube-apiserver: NOT MEASURED, {} is missing (./scripts/kube-control-plane.sh builds it)",
            support::control_plane::binaries().display()
        );
        false
    };

    let settings = common::settings();
    let mut summary = Summary::default();
    for setting in &settings {
        println!();
        println!("== {} ==", setting.name);
        tokio::task::block_in_place(|| {
            against_kubectl("fake API server", &kubeconfig, home, setting, &mut summary);
            if real {
                against_kubectl(
                    "real kube-apiserver",
                    &real_config,
                    home,
                    setting,
                    &mut summary,
                );
            }
            peak_rss(&moto, &kubeconfig, home, setting, &mut summary);
            latency(
                "3 nodes",
                &small,
                &small_config,
                home,
                &node_name(&small_nodes[0]),
                3,
                5,
                setting,
                &mut summary,
            );
            latency(
                &format!("{NODES} nodes"),
                &kube,
                &kubeconfig,
                home,
                &node_name(&sample),
                NODES,
                3,
                setting,
                &mut summary,
            );
        });
        if let Some(events) = setting.memory_events() {
            println!("cgroup after this setting: {events}");
        }
    }
    summary.print();
}
