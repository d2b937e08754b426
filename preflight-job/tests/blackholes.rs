//! Endpoints that drop packets (`support::blackhole`: a listener whose accept queue is full,
//! so every SYN is dropped and a connect hangs): the Kubernetes API (the bootstrap ConfigMap's
//! read included), PostgreSQL, Keycloak and the AWS APIs. A run never hangs: with `--wait D`
//! it ends by D + 2 s; without it, by the attempt timeout + 2 s.

mod support;

use std::time::Duration;

use support::blackhole::Blackhole;
use support::moto::REGION;
use support::*;

/// The attempt timeout every run here is given.
const ATTEMPT: Duration = Duration::from_secs(2);
/// The deadline of the waiting runs.
const WAIT: Duration = Duration::from_secs(3);
/// What a run may take beyond its attempt timeout or deadline.
const SLACK: Duration = Duration::from_secs(2);

fn ended_by(run: &Run, limit: Duration) {
    assert!(
        run.elapsed <= limit + SLACK,
        "the run took {:?}, beyond {limit:?} + {SLACK:?}\n{}\n{}",
        run.elapsed,
        run.stdout,
        run.stderr
    );
}

/// Runs `args` once without `--wait` and once with it, asserting each ends in time, with the
/// check failing `timed-out` (exit 1) and cut by the deadline (exit 3).
async fn both_ways(cluster: &Cluster, args: &[&str], env: &[(&str, String)], id: &str) {
    for wait in [false, true] {
        let mut all = args.to_vec();
        all.extend(["--attempt-timeout", "2s", "--output", "json"]);
        if wait {
            all.extend(["--wait", "3s"]);
        }
        let mut cmd = cluster.preflight_every_check(&all);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let run = run(cmd).await;
        let c = run.check(id);
        if wait {
            ended_by(&run, WAIT);
            assert_eq!(run.code, 3, "{c:#}\n{}", run.stderr);
        } else {
            ended_by(&run, ATTEMPT);
            assert_eq!(run.code, 1, "{c:#}\n{}", run.stderr);
            assert_eq!(c["code"], "timed-out", "{c:#}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgresql_server_that_drops_packets() {
    let hole = Blackhole::start();
    let cluster = Cluster::healthy().await;
    let args = support::pg::login_args(hole.port());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    both_ways(
        &cluster,
        &args,
        &[("PREFLIGHT_PG_PASSWORD", "not-a-real-password".to_owned())],
        "postgres",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_keycloak_that_drops_packets() {
    let hole = Blackhole::start();
    let cluster = Cluster::healthy().await;
    // Keycloak is tier 3's: a persistent cluster.
    cluster.write("values.yaml", support::platform::PERSISTENT_VALUES);
    let config = cluster.write(
        "preflight.yaml",
        &format!(
            "checks:\n  keycloak-realm:\n    url: https://127.0.0.1:{}\n",
            hole.port()
        ),
    );
    both_ways(
        &cluster,
        &[
            "--no-cluster-values",
            "--app",
            "oidc-config",
            "--check",
            "keycloak-realm",
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
        "keycloak-realm",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_apis_that_drop_packets() {
    let hole = Blackhole::start();
    let cluster = Cluster::healthy().await;
    let aws = [
        (
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", hole.port()),
        ),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ];
    for id in [
        "route53-zone",
        "rds-instance",
        "s3-bucket",
        "secrets-manager",
    ] {
        both_ways(
            &cluster,
            &[
                "--no-cluster-values",
                "--tier",
                "2",
                "--contract-rules",
                "adr-0180",
                "--max-tier",
                "2",
                "--check",
                id,
            ],
            &aws,
            id,
        )
        .await;
    }
}

/// The Kubernetes API, from the bootstrap ConfigMap's read on: with a deadline, the whole
/// run (the read, then the checks) ends by it; without, the read and the checks share one
/// attempt timeout (the checks still get a last second each), and the read is said in the
/// report's notes.
#[tokio::test(flavor = "multi_thread")]
async fn a_kubernetes_api_that_drops_packets() {
    let hole = Blackhole::start();
    let cluster = Cluster::healthy().await;
    let kubeconfig = std::fs::read_to_string(cluster.path("kubeconfig")).unwrap();
    let server = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .unwrap()
        .to_owned();
    cluster.write(
        "kubeconfig",
        &kubeconfig.replace(&server, &format!("https://127.0.0.1:{}", hole.port())),
    );
    let waited = run(cluster.preflight(&[
        "--tier",
        "0",
        "--attempt-timeout",
        "2s",
        "--wait",
        "3s",
        "--output",
        "json",
    ]))
    .await;
    ended_by(&waited, WAIT);
    assert_eq!(waited.code, 3, "{}\n{}", waited.stdout, waited.stderr);
    assert!(
        waited.report()["notes"]
            .to_string()
            .contains("bootstrap ConfigMap kube-system/goldenpath-bootstrap not read"),
        "{}",
        waited.stdout
    );
    let once =
        run(cluster.preflight(&["--tier", "0", "--attempt-timeout", "2s", "--output", "json"]))
            .await;
    ended_by(&once, ATTEMPT);
    assert_eq!(once.code, 1, "{}\n{}", once.stdout, once.stderr);
    assert_check(&once, "kube-api", "fail", "timed-out");
    assert_eq!(once.check("kube-api")["state"], "timed-out");
}
