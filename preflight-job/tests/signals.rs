//! SIGTERM (Kubernetes stopping a hook Pod) and SIGINT (Ctrl-C) at each moment of a run: while
//! it loads its settings and values, connects, reads the bootstrap ConfigMap, builds its
//! clients and runs its checks. Each time the run ends within 2 s with exit 3 and the partial
//! report in every requested output, the termination message included. Each moment is made
//! to hang for real (a FIFO nobody writes, an API server that never answers), so the signal
//! is proven to land there.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::*;

/// The outputs a run is asked for, all at once.
struct Outputs {
    dir: PathBuf,
}

impl Outputs {
    fn new(dir: &Path) -> Self {
        Outputs {
            dir: dir.to_path_buf(),
        }
    }

    fn add(&self, cmd: &mut tokio::process::Command) {
        let path = |name: &str| self.dir.join(name).display().to_string();
        cmd.args(["--output", "human", "--output", "github"])
            .args(["--output", &format!("json={}", path("report.json"))])
            .args(["--output", &format!("junit={}", path("report.xml"))])
            .args(["--termination-message-path", &path("termination-log")])
            .env("GITHUB_STEP_SUMMARY", path("summary.md"));
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name))
            .unwrap_or_else(|e| panic!("{name} was not written: {e}"))
    }

    /// Every output says the run was interrupted, and the JSON report follows its schema.
    fn assert_interrupted(&self, run: &Run, subject: &str) -> Value {
        assert_eq!(
            run.code, 3,
            "stdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        assert!(
            run.elapsed < Duration::from_secs(2),
            "ended {:?} after the signal",
            run.elapsed
        );
        let report: Value = serde_json::from_str(&self.read("report.json")).expect("a JSON report");
        assert_follows_schema(&report);
        assert_eq!(report["end"], "interrupted", "{report:#}");
        assert_eq!(report["exitCode"], 3);
        assert!(
            run.stdout.contains("INTERRUPTED") && run.stdout.contains("(exit 3)"),
            "human on stdout:\n{}",
            run.stdout
        );
        let termination = self.read("termination-log");
        assert!(
            termination.starts_with(&format!("preflight {subject}: INTERRUPTED (exit 3)")),
            "{termination}"
        );
        assert!(self.read("summary.md").contains("INTERRUPTED"));
        assert!(
            self.read("report.xml").contains("<failure"),
            "JUnit never reads as a green suite: {}",
            self.read("report.xml")
        );
        report
    }
}

/// Sends `signal` to a started run once `after` has passed, and waits for it to end.
async fn signal_after(child: tokio::process::Child, signal: &str, after: Duration) -> Run {
    tokio::time::sleep(after).await;
    let pid = child.id().expect("still running");
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success());
    finish(child, Duration::from_secs(10)).await
}

/// A named pipe nobody writes: reading it blocks forever.
fn fifo(path: &Path) -> PathBuf {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
    path.to_path_buf()
}

fn notes(report: &Value) -> String {
    report["notes"].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn while_loading_the_values() {
    let dir = tempfile::tempdir().unwrap();
    let values = fifo(&dir.path().join("values.yaml"));
    let outputs = Outputs::new(dir.path());
    let mut cmd = preflight_cmd();
    cmd.arg("--values")
        .arg(&values)
        .args(["--no-cluster-values", "--tier", "1"]);
    outputs.add(&mut cmd);
    let run = signal_after(cmd.spawn().unwrap(), "TERM", Duration::from_millis(800)).await;
    let report = outputs.assert_interrupted(&run, "tier 1");
    assert!(
        notes(&report).contains("stopped while loading the values file: no check ran"),
        "{report:#}"
    );
    assert_eq!(report["checks"], serde_json::json!([]));
    assert!(report.get("cluster").is_none(), "the values were not known");
}

#[tokio::test(flavor = "multi_thread")]
async fn while_loading_the_settings_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let config = fifo(&dir.path().join("preflight.yaml"));
    let outputs = Outputs::new(dir.path());
    let mut cmd = preflight_cmd();
    cmd.env("PREFLIGHT_CONFIG", &config)
        .args(["--no-cluster-values", "--app", "backstage"]);
    outputs.add(&mut cmd);
    let run = signal_after(cmd.spawn().unwrap(), "INT", Duration::from_millis(800)).await;
    let report = outputs.assert_interrupted(&run, "app backstage");
    assert!(
        notes(&report).contains("stopped while loading the settings"),
        "{report:#}"
    );
    assert_eq!(report["tier"], "2", "an app's tier is known from its name");
    assert!(run.stderr.contains("SIGINT"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn while_connecting_to_the_api_server() {
    let cluster = Cluster::healthy().await;
    let kubeconfig = fifo(&cluster.path("kubeconfig-fifo"));
    let outputs = Outputs::new(cluster.dir.path());
    let mut cmd = preflight_cmd();
    cmd.arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--tier", "0"]);
    outputs.add(&mut cmd);
    let run = signal_after(cmd.spawn().unwrap(), "TERM", Duration::from_millis(800)).await;
    let report = outputs.assert_interrupted(&run, "tier 0");
    assert!(
        notes(&report).contains("stopped while connecting to the Kubernetes API"),
        "{report:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn while_reading_the_bootstrap_configmap() {
    let cluster = Cluster::healthy().await;
    cluster.kube.fake().blackhole(true);
    let outputs = Outputs::new(cluster.dir.path());
    // The attempt timeout would end the read after a minute: only the signal ends it sooner.
    let mut cmd = cluster.preflight(&["--tier", "0", "--attempt-timeout", "60s"]);
    outputs.add(&mut cmd);
    let run = signal_after(cmd.spawn().unwrap(), "TERM", Duration::from_millis(1500)).await;
    let report = outputs.assert_interrupted(&run, "tier 0");
    assert!(
        notes(&report).contains("stopped while reading the bootstrap ConfigMap"),
        "{report:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn while_building_the_clients() {
    let cluster = Cluster::healthy().await;
    // The AWS SDK reads its shared config file while the clients are built: a FIFO there
    // holds the run at that moment, after the values are known and the plan is made.
    let aws_config = fifo(&cluster.path("aws-config"));
    let outputs = Outputs::new(cluster.dir.path());
    let mut cmd = preflight_cmd();
    cmd.arg("--kubeconfig")
        .arg(cluster.path("kubeconfig"))
        .arg("--values")
        .arg(cluster.path("values.yaml"))
        .args([
            "--tier",
            "1",
            "--check",
            "kube-api",
            "--check",
            "route53-zone",
        ])
        .env("AWS_CONFIG_FILE", &aws_config)
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    outputs.add(&mut cmd);
    let run = signal_after(cmd.spawn().unwrap(), "TERM", Duration::from_millis(1500)).await;
    let report = outputs.assert_interrupted(&run, "tier 1");
    assert!(
        notes(&report).contains("stopped while building the clients"),
        "{report:#}"
    );
    // The plan was known: every planned check is listed, none of them run.
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 2, "{report:#}");
    for check in checks {
        assert_eq!(check["state"], "unsettled", "{check}");
        assert_eq!(check["cutBy"], "interruption", "{check}");
        assert_eq!(check["attempts"], 0, "{check}");
    }
    assert!(report["cluster"]["hostSuffix"].is_string(), "{report:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn while_reading_the_ca_bundles() {
    let cluster = Cluster::healthy().await;
    let bundle = fifo(&cluster.path("rds-ca.pem"));
    let outputs = Outputs::new(cluster.dir.path());
    // The postgres check is planned (tier 3 of a persistent cluster), so its bundle is read.
    let values = cluster.path("persistent.yaml");
    std::fs::copy(repo("examples/values-persistent.yaml"), &values).unwrap();
    let mut cmd = preflight_cmd();
    cmd.arg("--kubeconfig")
        .arg(cluster.path("kubeconfig"))
        .arg("--values")
        .arg(&values)
        .args([
            "--tier",
            "3",
            "--pg-host",
            "127.0.0.1",
            "--check",
            "postgres",
        ])
        .arg("--pg-ca-bundle")
        .arg(&bundle);
    outputs.add(&mut cmd);
    let run = signal_after(cmd.spawn().unwrap(), "TERM", Duration::from_millis(1500)).await;
    let report = outputs.assert_interrupted(&run, "tier 3");
    assert!(
        notes(&report).contains("stopped while reading the CA bundles"),
        "{report:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn while_running_the_checks() {
    let cluster = Cluster::healthy().await;
    set_all_nodes(&cluster, false);
    let outputs = Outputs::new(cluster.dir.path());
    let mut cmd = cluster.preflight(&["--tier", "0", "--wait", "60s"]);
    outputs.add(&mut cmd);
    let run = signal_after(cmd.spawn().unwrap(), "TERM", Duration::from_millis(2000)).await;
    let report = outputs.assert_interrupted(&run, "tier 0");
    let check = |id: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        check("kube-api")["state"],
        "judged",
        "what was known is kept"
    );
    let nodes = check("nodes-ready");
    assert_eq!(
        (&nodes["state"], &nodes["cutBy"], &nodes["code"]),
        (
            &"unsettled".into(),
            &"interruption".into(),
            &"nodes-not-ready".into()
        ),
        "{nodes}"
    );
}
