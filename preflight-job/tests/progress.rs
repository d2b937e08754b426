//! Progress while a run waits: without a terminal (a hook Pod's log, CI) a line at a steady
//! interval; on a terminal a live line, redrawn in place and cleared before the report. Both
//! say which checks are pending, why, and the time left.

mod support;

use std::time::Duration;

use support::*;

/// The progress lines of a run's stderr.
fn progress_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("preflight: waiting for"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_line_at_each_interval_says_what_is_pending_and_why() {
    let cluster = Cluster::healthy().await;
    set_all_nodes(&cluster, false);
    let mut cmd = cluster.preflight(&["--tier", "0", "--wait", "4s"]);
    cmd.env("PREFLIGHT_PROGRESS_INTERVAL", "1s");
    let run = run(cmd).await;
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    let lines = progress_lines(&run.stderr);
    assert!(
        (3..=4).contains(&lines.len()),
        "one line a second for 4 s:\n{}",
        run.stderr
    );
    for line in &lines {
        assert!(
            line.contains("nodes-ready (nodes-not-ready: ")
                && line.contains(" left: ")
                && !line.contains("kube-api ("),
            "pending checks and their reasons, not the passed ones: {line}"
        );
    }
    assert!(
        lines[0].contains("3s left") || lines[0].contains("2s left"),
        "{}",
        lines[0]
    );
    assert!(
        !run.stdout.contains("waiting for"),
        "progress stays off stdout, where the report goes"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_progress_without_waiting() {
    let cluster = Cluster::healthy().await;
    set_all_nodes(&cluster, false);
    let mut cmd = cluster.preflight(&["--tier", "0"]);
    cmd.env("PREFLIGHT_PROGRESS_INTERVAL", "1ms");
    let run = run(cmd).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(progress_lines(&run.stderr).is_empty(), "{}", run.stderr);
}

/// On a terminal (a pseudo-terminal from `script`), the line is redrawn in place about once a
/// second and erased before the report, so the report starts on a clean line.
#[tokio::test(flavor = "multi_thread")]
async fn a_live_line_on_a_terminal() {
    let cluster = Cluster::healthy().await;
    set_all_nodes(&cluster, false);
    let preflight = env!("CARGO_BIN_EXE_preflight");
    let command = format!(
        "{preflight} --kubeconfig {} --values {} --tier 0 --wait 3s {}",
        cluster.path("kubeconfig").display(),
        cluster.path("values.yaml").display(),
        AWS_CHECKS.map(|id| format!("--skip {id}")).join(" ")
    );
    let mut cmd = tokio::process::Command::new("script");
    cmd.args(["-qfec", &command, "/dev/null"])
        .env("HOME", cluster.dir.path())
        .env_remove("KUBECONFIG")
        // The default log level: on a terminal, nothing may break up the live line.
        .env_remove("PREFLIGHT_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let run = finish(
        cmd.spawn().expect("script (util-linux) runs"),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    let redraws = run
        .stdout
        .matches("\r\x1b[2Kpreflight: waiting for 1 of")
        .count();
    assert!(
        (2..=3).contains(&redraws),
        "redrawn about once a second for 3 s, got {redraws}:\n{:?}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("\npreflight: waiting for"),
        "no log lines on a terminal: {:?}",
        run.stdout
    );
    // The last erase is not followed by a redraw: the line is cleared, then the report.
    let erased = run.stdout.rfind("\r\x1b[2K").unwrap();
    let after = &run.stdout[erased + "\r\x1b[2K".len()..];
    assert!(
        !after.starts_with("preflight: waiting") && after.contains("UNSETTLED"),
        "the line is erased before the report: {after:?}"
    );
}
