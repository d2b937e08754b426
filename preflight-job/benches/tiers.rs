//! Benchmarks of whole tiers against real parts on loopback:
//!
//! 1. the PostgreSQL check against `psql` doing the same TLS login (verify-full, same CA) and
//!    the same query on the same server (median wall time; target ratio at most 1.2);
//! 2. a full tier-3 gate on a persistent platform (fake Kubernetes API, real PostgreSQL 15,
//!    moto for RDS, Secrets Manager and Route53) against its slowest check run alone (target
//!    at most 1.3: concurrency works) and against the sum of its checks run one by one;
//! 3. the same run against the shell pipeline a typical PreSync script runs in sequence
//!    (kubectl, a TCP probe, psql, curl of the Keycloak realm, which the gate leaves to
//!    oidc-config's hook), which checks far less.
//!
//! Run with `cargo bench -p preflight-job --bench tiers` after `./tests/run.sh` has installed
//! moto. Prints a table; asserts nothing.

#![expect(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark reports on stdout and stops on a broken setup"
)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::pg::{CANARY, TestPostgres};
use support::platform::{PERSISTENT_VALUES, Platform};

const RUNS: usize = 15;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn time_std(mut make: impl FnMut() -> Command) -> Duration {
    let warm = make().status().unwrap();
    assert!(warm.success(), "warm-up: {warm}");
    median(
        (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                assert!(make().status().unwrap().success());
                start.elapsed()
            })
            .collect(),
    )
}

async fn time_tokio(make: impl Fn() -> tokio::process::Command, runs: usize) -> Duration {
    let mut times = Vec::new();
    for i in 0..=runs {
        let start = Instant::now();
        let out = make().output().await.unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        if i > 0 {
            times.push(start.elapsed());
        }
    }
    median(times)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

const QUERY: &str = "SELECT current_setting('server_version'), coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false), (SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()), coalesce((SELECT rolcreatedb FROM pg_roles WHERE rolname = current_user), false)";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let pg = TestPostgres::start();
    let port = pg.port.to_string();
    let ca = pg.ca();
    // Tier 2 needs RDS declared (platform.rdsAvailable), as the persistent example does.
    let values =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/values-persistent.yaml");
    println!(
        "tier benchmarks (loopback, {} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let ours = time_tokio(
        || {
            let mut cmd = support::pg::login_cmd(&pg, &values, CANARY, "json=/dev/null");
            cmd.env("PREFLIGHT_LOG", "warn");
            cmd
        },
        RUNS,
    )
    .await;
    let theirs = tokio::task::block_in_place(|| {
        time_std(|| {
            let mut cmd = Command::new("psql");
            cmd.arg(format!("host=127.0.0.1 port={port} user=backstage dbname=backstage sslmode=verify-full sslrootcert={}", ca.display()));
            cmd.args(["-X", "-q", "-t", "-c", QUERY])
                .env("PGPASSWORD", CANARY)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            cmd
        })
    });
    println!(
        "preflight postgres check (TLS login + query)  median of {RUNS}: {}",
        ms(ours)
    );
    println!(
        "psql, same login and query                    median of {RUNS}: {}",
        ms(theirs)
    );
    println!(
        "ratio preflight / psql                        {:.2}   (target <= 1.2)",
        ours.as_secs_f64() / theirs.as_secs_f64()
    );

    // A full tier-3 run against each of its checks alone.
    drop(pg);
    let platform = Platform::start(PERSISTENT_VALUES).await;
    let run_with = |only: Option<&str>| {
        let mut args = vec!["--tier", "3", "--output", "json=/dev/null"];
        if let Some(id) = only {
            args.extend(["--check", id]);
        }
        let mut cmd = platform.preflight(&args);
        cmd.env("PREFLIGHT_LOG", "warn");
        cmd
    };
    let full = time_tokio(|| run_with(None), 7).await;
    let report = run_with(None)
        .arg("--output")
        .arg("json")
        .output()
        .await
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let ids: Vec<String> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    let mut sum = Duration::ZERO;
    let mut slowest = (Duration::ZERO, String::new());
    for id in &ids {
        let alone = time_tokio(|| run_with(Some(id)), 5).await;
        sum += alone;
        if alone > slowest.0 {
            slowest = (alone, id.clone());
        }
    }
    let n = ids.len();
    println!(
        "full tier-3 run ({n} checks)                   median of 7: {}",
        ms(full)
    );
    println!(
        "slowest check alone ({:<14})            median of 5: {}",
        slowest.1,
        ms(slowest.0)
    );
    println!("sum of the {n} checks run one by one           {}", ms(sum));
    println!(
        "ratio full / slowest check                    {:.2}   (target <= 1.3)",
        full.as_secs_f64() / slowest.0.as_secs_f64()
    );
    println!(
        "ratio full / sum                              {:.2}",
        full.as_secs_f64() / sum.as_secs_f64()
    );

    // The shell pipeline a typical PreSync script runs, in sequence: nodes, CRDs and issuers
    // with kubectl, a TCP probe of the database, a psql login, the realm with curl.
    let kubeconfig = platform.cluster.path("kubeconfig");
    let keycloak = platform.keycloak.as_ref().unwrap();
    let keycloak_ca = platform.cluster.path("keycloak-ca.pem");
    let script = format!(
        "set -e
kubectl --kubeconfig {k} get nodes -o json >/dev/null
kubectl --kubeconfig {k} get crd externalsecrets.external-secrets.io clusterissuers.cert-manager.io applications.argoproj.io >/dev/null
kubectl --kubeconfig {k} get clusterissuers.cert-manager.io >/dev/null
exec 3<>/dev/tcp/127.0.0.1/{port}; exec 3>&-
psql 'host=127.0.0.1 port={port} user=backstage dbname=backstage sslmode=verify-full sslrootcert={ca}' -X -q -t -c 'SELECT 1' >/dev/null
curl -sf --cacert {kc_ca} {kc}/realms/goldenpath/.well-known/openid-configuration >/dev/null",
        k = kubeconfig.display(),
        port = platform.pg.port,
        ca = platform.pg.ca().display(),
        kc_ca = keycloak_ca.display(),
        kc = keycloak.url(),
    );
    let pipeline = tokio::task::block_in_place(|| {
        time_std(|| {
            let mut cmd = Command::new("bash");
            // The real kubectl from the test virtualenv first, not a dispatcher on PATH.
            let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-venv/bin");
            let path = std::env::var("PATH").unwrap_or_default();
            cmd.args(["-c", &script])
                .env("PATH", format!("{}:{path}", venv.display()))
                .env("PGPASSWORD", CANARY)
                .env("HOME", platform.cluster.dir.path())
                .stdout(Stdio::null());
            cmd
        })
    });
    println!(
        "shell pipeline (3 kubectl, TCP probe, psql, curl) median of {RUNS}: {}",
        ms(pipeline)
    );
    println!(
        "ratio full preflight / pipeline               {:.2}   ({n} checks against 6 probes)",
        full.as_secs_f64() / pipeline.as_secs_f64()
    );
}
