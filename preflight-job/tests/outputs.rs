//! Several report outputs in one run, each opened before anything is checked, and the values
//! read from the cluster's ConfigMap.

mod support;

use std::io::Read as _;
use std::time::Duration;

use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn writes_every_output_at_once() {
    let cluster = Cluster::healthy().await;
    cluster
        .kube
        .delete("networking.k8s.io/v1", "IngressClass", None, "kong")
        .unwrap();
    let (json_path, junit_path, summary, termination) = (
        cluster.path("report.json"),
        cluster.path("report.xml"),
        cluster.path("summary.md"),
        cluster.path("termination-log"),
    );
    let mut cmd = cluster.preflight(&[
        "--tier",
        "1.5",
        "--output",
        "human",
        "--output",
        &format!("json={}", json_path.display()),
        "--output",
        &format!("junit={}", junit_path.display()),
        "--output",
        "github",
        "--termination-message-path",
        termination.to_str().unwrap(),
    ]);
    cmd.env("GITHUB_STEP_SUMMARY", &summary);
    // Only the pipe may keep the colours out: nothing else says no colour.
    colour_left_to_the_stream(&mut cmd);
    let run = run(cmd).await;
    assert_eq!(run.code, 1, "{}", run.stderr);

    assert!(
        run.stdout.contains("× ingress-class"),
        "human on stdout:\n{}",
        run.stdout
    );
    assert!(run.stdout.contains("✔ kube-api"), "{}", run.stdout);
    assert!(
        !run.stdout.contains('\u{1b}'),
        "no colour when stdout is not a terminal, even with NO_COLOR unset:\n{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("::error title=preflight ingress-class (ingress-class-missing)::"),
        "{}",
        run.stdout
    );

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_follows_schema(&report);
    assert_eq!(report["verdict"], "failed");
    let junit = std::fs::read_to_string(&junit_path).unwrap();
    assert!(
        junit.starts_with("<?xml") && junit.contains("ingress-class-missing"),
        "{junit}"
    );
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(summary.contains("ingress-class"), "{summary}");
    let termination = std::fs::read(&termination).unwrap();
    assert!(termination.len() <= 4096);
    assert!(
        String::from_utf8(termination)
            .unwrap()
            .contains("ingress-class")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn values_come_from_the_bootstrap_configmap_and_flags_override_them() {
    let cluster = Cluster::healthy().await;
    cluster
        .kube
        .apply(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "goldenpath-bootstrap", "namespace": "kube-system"},
            "data": {"values.yaml": "bootstrap:\n  mode: ephemeral\n  maxTier: \"1\"\n  env: dev\n  buildId: \"26-01-23-01\"\n"}
        }))
        .unwrap();
    // Under the V1 rules the cluster's maxTier must agree with its mode, and the error says
    // where it came from.
    let v1 = run(cluster.preflight(&["--tier", "1"])).await;
    assert_eq!(v1.code, 2, "{}", v1.stderr);
    assert!(
        v1.stderr.contains("ConfigMap kube-system/goldenpath-bootstrap (key values.yaml, line 3): bootstrap.maxTier: \"1\" disagrees with bootstrap.mode ephemeral"),
        "{}",
        v1.stderr
    );
    // Under ADR-0180 the cluster's maxTier (1) is the ceiling, overriding the file's (1.5).
    let adr = ["--contract-rules", "adr-0180"];
    let run1 = run(cluster.preflight(&[&adr[..], &["--tier", "1.5"]].concat())).await;
    assert_eq!(run1.code, 2, "{}", run1.stderr);
    assert!(
        run1.stderr.contains("tier 1.5 is above this cluster's ceiling 1: bootstrap.maxTier is 1 (ConfigMap kube-system/goldenpath-bootstrap (key values.yaml, line 3))"),
        "{}",
        run1.stderr
    );
    // A flag overrides the cluster.
    let run2 = run(cluster.preflight(
        &[
            &adr[..],
            &["--tier", "1.5", "--max-tier", "1.5", "--output", "json"],
        ]
        .concat(),
    ))
    .await;
    assert_eq!(run2.code, 0, "{}", run2.stderr);
    assert!(
        run2.report()["notes"].as_array().unwrap().iter().any(|n| n
            == "values read from ConfigMap kube-system/goldenpath-bootstrap (key values.yaml)")
    );
    // Without a tier, the ceiling is checked; the cluster's tier-1.5 Application is then
    // above it, which the tier-gating guard reports.
    let run3 = run(cluster.preflight(&[&adr[..], &["--output", "json"]].concat())).await;
    assert_eq!(run3.code, 1);
    assert_eq!(run3.report()["tier"], "1");
    assert_check(&run3, "tier-gating", "fail", "tier-gating-violated");
    assert!(
        run3.check("tier-gating")["message"]
            .as_str()
            .unwrap()
            .contains("kube-prometheus-stack is tier 1.5, above this cluster's ceiling 1")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_configmap_is_a_configuration_error() {
    let cluster = Cluster::healthy().await;
    cluster
        .kube
        .apply(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "goldenpath-bootstrap", "namespace": "kube-system"},
            "data": {"values.yaml": "bootstrap:\n  mode: ephemeral\n  colour: blue\n"}
        }))
        .unwrap();
    let run = run(cluster.preflight(&["--tier", "1"])).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("ConfigMap kube-system/goldenpath-bootstrap")
            && run.stderr.contains("unknown field `colour`"),
        "{}",
        run.stderr
    );
}

/// A report path that cannot be written is a usage error before anything is read or checked:
/// against an API server that never answers, the run ends at once (not after the attempt
/// timeout), writes no other output, and names the path.
#[tokio::test(flavor = "multi_thread")]
async fn an_output_that_cannot_be_written_is_a_usage_error_before_any_check() {
    let cluster = Cluster::healthy().await;
    cluster.kube.fake().blackhole(true);
    let json = cluster.path("report.json");
    let early = run(cluster.preflight(&[
        "--tier",
        "0",
        "--attempt-timeout",
        "10s",
        "--output",
        &format!("json={}", json.display()),
        "--output",
        "junit=/nonexistent/dir/r.xml",
    ]))
    .await;
    assert_eq!(early.code, 2, "{}\n{}", early.stdout, early.stderr);
    assert!(
        early
            .stderr
            .contains("cannot write the JUnit report to /nonexistent/dir/r.xml"),
        "{}",
        early.stderr
    );
    assert!(
        early.elapsed < std::time::Duration::from_secs(2),
        "nothing was read or checked first: {:?}",
        early.elapsed
    );
    assert_eq!(std::fs::read_to_string(&json).unwrap_or_default(), "");

    // The termination message's path too.
    let termination = run(cluster.preflight(&[
        "--tier",
        "0",
        "--termination-message-path",
        "/nonexistent/dir/termination-log",
    ]))
    .await;
    assert_eq!(termination.code, 2, "{}", termination.stderr);
    assert!(
        termination
            .stderr
            .contains("cannot write the termination message to /nonexistent/dir/termination-log"),
        "{}",
        termination.stderr
    );
}

/// A report that cannot be written after the run (a full disk: /dev/full refuses every
/// write) is said on stderr, and the run keeps its own exit code: 0 for a passing gate, 1 for
/// a failing one; the other outputs are still written.
#[tokio::test(flavor = "multi_thread")]
async fn a_report_that_cannot_be_written_after_the_run_keeps_the_runs_exit_code() {
    let cluster = Cluster::healthy().await;
    let json = cluster.path("report.json");
    let args = |json: &std::path::Path| {
        vec![
            "--tier".to_owned(),
            "0".to_owned(),
            "--output".to_owned(),
            "junit=/dev/full".to_owned(),
            "--output".to_owned(),
            format!("json={}", json.display()),
        ]
    };
    let owned = args(&json);
    let argv: Vec<&str> = owned.iter().map(String::as_str).collect();
    let passed = run(cluster.preflight(&argv)).await;
    assert_eq!(passed.code, 0, "{}", passed.stderr);
    assert!(
        passed.stderr.contains(
            "cannot write the report to /dev/full: No space left on device (os error 28) (the run's exit code 0 stands)"
        ),
        "{}",
        passed.stderr
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["verdict"], "passed");

    set_all_nodes(&cluster, false);
    let failed = run(cluster.preflight(&argv)).await;
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("(the run's exit code 1 stands)"),
        "{}",
        failed.stderr
    );
}

/// Leaves the choice of colour to whether stdout is a terminal: the harness's `NO_COLOR` and any
/// `CLICOLOR`/`CLICOLOR_FORCE` of the caller removed, and a colour-capable `TERM`, as a terminal
/// emulator sets it (without `TERM`, a terminal is taken to be one that cannot show colour).
fn colour_left_to_the_stream(cmd: &mut tokio::process::Command) {
    cmd.env_remove("NO_COLOR")
        .env_remove("CLICOLOR")
        .env_remove("CLICOLOR_FORCE")
        .env("TERM", "xterm-256color");
}

/// Runs the binary with its stdout on a new pseudo-terminal, as in an operator's terminal
/// (stderr stays a pipe), and returns what it wrote there as the run's stdout.
async fn on_a_terminal(mut cmd: tokio::process::Command) -> Run {
    use rustix::fs::{Mode, OFlags};
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};

    // Close-on-exec, both ends: a process that another test spawns meanwhile must not inherit
    // the terminal, or it would stay open after this run and its reader would never end.
    let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
        .expect("a pseudo-terminal");
    grantpt(&controller).expect("grantpt");
    unlockpt(&controller).expect("unlockpt");
    let name = ptsname(&controller, Vec::new()).expect("the terminal's name");
    let terminal = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .expect("the terminal opens");
    cmd.stdout(std::fs::File::from(terminal));
    let child = cmd.spawn().expect("preflight starts");
    // Our copy of the terminal closed: the controller's reads end once the child's does.
    drop(cmd);

    let mut controller = std::fs::File::from(controller);
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0; 4096];
        loop {
            match controller.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // EIO: every copy of the terminal is closed, all it held was read.
                Err(_) => break,
            }
        }
        out
    });
    let run = finish(child, Duration::from_secs(60)).await;
    let written = tokio::task::spawn_blocking(move || reader.join().expect("the reader"))
        .await
        .expect("the reader");
    Run {
        stdout: String::from_utf8_lossy(&written).into_owned(),
        ..run
    }
}

/// The human report is coloured on a terminal, and never with `NO_COLOR`: the real binary on
/// a pseudo-terminal, `NO_COLOR` unset, paints a failure red and a pass green; the same run on
/// the same kind of terminal with `NO_COLOR=1` writes the same report without one escape byte.
#[tokio::test(flavor = "multi_thread")]
async fn the_human_report_is_coloured_on_a_terminal_and_never_with_no_color() {
    let cluster = Cluster::healthy().await;
    cluster
        .kube
        .delete("networking.k8s.io/v1", "IngressClass", None, "kong")
        .unwrap();

    let mut cmd = cluster.preflight(&["--tier", "1.5"]);
    colour_left_to_the_stream(&mut cmd);
    let coloured = on_a_terminal(cmd).await;
    assert_eq!(coloured.code, 1, "{}", coloured.stderr);
    assert!(
        coloured
            .stdout
            .contains("\u{1b}[31m×\u{1b}[0m ingress-class"),
        "a red failure on the terminal:\n{:?}",
        coloured.stdout
    );
    assert!(
        coloured.stdout.contains("\u{1b}[32m✔\u{1b}[0m kube-api"),
        "a green pass on the terminal:\n{:?}",
        coloured.stdout
    );

    let mut cmd = cluster.preflight(&["--tier", "1.5"]);
    colour_left_to_the_stream(&mut cmd);
    cmd.env("NO_COLOR", "1");
    let plain = on_a_terminal(cmd).await;
    assert_eq!(plain.code, 1, "{}", plain.stderr);
    assert!(
        plain.stdout.contains("× ingress-class") && plain.stdout.contains("✔ kube-api"),
        "the report on the terminal:\n{}",
        plain.stdout
    );
    assert!(
        !plain.stdout.contains('\u{1b}'),
        "no colour with NO_COLOR:\n{:?}",
        plain.stdout
    );
}
