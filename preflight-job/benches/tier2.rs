//! Benchmarks of tier 2 against real parts on loopback:
//!
//! 1. the PostgreSQL check against `psql` doing the same TLS login (verify-full, same CA) and
//!    the same query on the same server (median wall time; target ratio at most 1.2);
//! 2. a full tier-2 run (fake Kubernetes API, real PostgreSQL 15, moto for RDS) against the sum
//!    of its checks run one by one (how much running them concurrently saves).
//!
//! Run with `cargo bench -p preflight-job --bench tier2` after `./tests/run.sh` has installed
//! moto. Prints a table; asserts nothing.

#![expect(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark reports on stdout and stops on a broken setup"
)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;
use support::moto::Moto;
use support::pg::{CANARY, TestPostgres};
use support::{Cluster, preflight_cmd};

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
    let values = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/values.yaml");
    println!(
        "tier-2 benchmarks (loopback, {} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let ours = time_tokio(
        || {
            let mut cmd = preflight_cmd();
            cmd.env("PREFLIGHT_PG_PASSWORD", CANARY)
                .env("PREFLIGHT_LOG", "warn");
            cmd.arg("--values").arg(&values).args([
                "--no-cluster-values",
                "--max-tier",
                "2",
                "--tier",
                "2",
                "--check",
                "postgres",
            ]);
            cmd.args([
                "--pg-host",
                "127.0.0.1",
                "--pg-port",
                &port,
                "--pg-user",
                "backstage",
                "--pg-database",
                "backstage",
                "--pg-require-createdb",
            ]);
            cmd.arg("--pg-ca-bundle")
                .arg(&ca)
                .args(["--output", "json=/dev/null"]);
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

    // A full tier-2 run against the sum of its checks, one by one.
    let moto = Moto::start();
    let endpoint = moto
        .create_instance("goldenpath-platform", "postgres")
        .await;
    let cluster = Cluster::healthy().await;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    cluster
        .kube
        .update("v1", "Secret", Some("backstage"), "backstage-postgres", |s| {
            s["data"] = json!({"POSTGRES_HOST": b64(&endpoint), "POSTGRES_PORT": b64(&port), "POSTGRES_USER": b64("backstage"), "POSTGRES_PASSWORD": b64(CANARY)});
        })
        .unwrap();
    let config = cluster.write(
        "preflight.yaml",
        &format!(
            "checks:\n  postgres:\n    databases:\n    - app: backstage\n      secret: backstage/backstage-postgres\n      host: 127.0.0.1\n      database: backstage\n      requireCreatedb: true\n      caBundle: {}\n",
            ca.display()
        ),
    );
    let run_with = |only: Option<&str>| {
        let mut args = vec![
            "--max-tier",
            "2",
            "--tier",
            "2",
            "--output",
            "json=/dev/null",
        ];
        if let Some(id) = only {
            args.extend(["--check", id]);
        }
        let mut cmd = cluster.preflight(&args);
        cmd.arg("--config")
            .arg(&config)
            .env("PREFLIGHT_LOG", "warn");
        moto.env(&mut cmd);
        cmd
    };
    let full = time_tokio(|| run_with(None), 7).await;
    let ids = [
        "kube-api",
        "nodes-ready",
        "coredns",
        "cni",
        "crds",
        "ingress-class",
        "cluster-secret-store",
        "irsa",
        "observability-crds",
        "storage-class",
        "external-secrets",
        "postgres",
        "rds-instance",
    ];
    let mut sum = Duration::ZERO;
    for id in ids {
        sum += time_tokio(|| run_with(Some(id)), 5).await;
    }
    println!(
        "full tier-2 run (13 checks)                   median of 7: {}",
        ms(full)
    );
    println!("sum of the 13 checks run one by one           {}", ms(sum));
    println!(
        "ratio full / sum                              {:.2}",
        full.as_secs_f64() / sum.as_secs_f64()
    );
}
