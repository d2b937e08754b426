//! Benchmarks of whole tiers against real parts on loopback (fake Kubernetes API, real
//! PostgreSQL 15 with TLS, moto for RDS, Secrets Manager and Route53, the HTTPS Keycloak
//! stand-in), each ratio measured unconstrained and again inside a cgroup with the hook's
//! limits (500m CPU, 128 MiB), both sides of every ratio in the same setting:
//!
//! 1. the postgres check against `psql` doing the same TLS login (verify-full, same CA) and
//!    the same query on the same server (target at most 1.2);
//! 2. a full tier-3 gate against its slowest check run alone (target at most 1.3:
//!    concurrency works), and against the sum of its checks run one by one;
//! 3. the shell pipeline the platform's proposal wrote for its hooks (kubectl for the nodes,
//!    the default StorageClass and Backstage's ExternalSecret, `nc -z` to the database, `curl`
//!    of the Keycloak realm; in sequence, `set -e`) against the same servers, against the
//!    tier-3 gate (target: preflight at least 3x faster), with what each side verifies.
//!
//! Run with `cargo bench -p preflight-job --bench tiers` after `./tests/run.sh` has installed
//! moto and netcat. Prints every ratio with the commands of both sides, then a summary;
//! asserts only its setup.

#![expect(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark reports on stdout and stops on a broken setup"
)]

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Setting, Side, Summary, Target, describe, time_all};
use support::pg::{CANARY, SESSION_QUERY};
use support::platform::{PERSISTENT_VALUES, Platform};

/// Runs of each side of a ratio.
const RUNS: usize = 15;
/// Runs of each check alone, to find the slowest.
const ALONE_RUNS: usize = 5;

/// The StorageClass the proposal's script names: the test cluster's default (`gp3`, the one
/// the storage-class check finds annotated as default).
const STORAGE_CLASS: &str = "gp3";
/// The ExternalSecret tier 2 needs: Backstage's, as the platform's settings name it.
const EXTERNAL_SECRET: (&str, &str) = ("backstage", "backstage-postgres");
/// The realm the platform's apps log in with.
const REALM: &str = "goldenpath";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    for tool in ["nc", "curl"] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .unwrap()
                .status
                .success(),
            "{tool} is missing: run ./tests/run.sh, which installs it"
        );
    }
    println!(
        "tier benchmarks (loopback, {} cores; servers outside any limit, clients timed)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let platform = Platform::start(PERSISTENT_VALUES).await;
    let pipeline = Pipeline::new(&platform);
    facts(&platform, &pipeline).await;

    let settings = common::settings();
    let mut summary = Summary::default();
    for setting in &settings {
        println!();
        println!("== {} ==", setting.name);
        tokio::task::block_in_place(|| {
            postgres(&platform, setting, &mut summary);
            concurrency(&platform, setting, &mut summary);
            against_pipeline(&platform, &pipeline, setting, &mut summary);
        });
        if let Some(events) = setting.memory_events() {
            println!("cgroup after this setting: {events}");
        }
    }
    summary.print();
}

/// A tier-3 run (or an app's hook) of preflight against the whole platform, quiet.
fn preflight(platform: &Platform, args: &[&str]) -> Command {
    let mut cmd = platform.preflight(args);
    cmd.env("PREFLIGHT_LOG", "warn");
    cmd.into_std()
}

fn gate(platform: &Platform, only: Option<&str>) -> Command {
    let mut args = vec!["--tier", "3", "--output", "json=/dev/null"];
    if let Some(id) = only {
        args.extend(["--check", id]);
    }
    preflight(platform, &args)
}

/// 1. The postgres check, as CI runs it (flags, no cluster), against `psql` doing the same
///    TLS login and the same query.
fn postgres(platform: &Platform, setting: &Setting, summary: &mut Summary) {
    let pg = &platform.pg;
    let values = support::repo("examples/values-persistent.yaml");
    let mut ours = || {
        let mut cmd = support::pg::login_cmd(pg, &values, CANARY, "json=/dev/null");
        cmd.env("PREFLIGHT_LOG", "warn");
        cmd.into_std()
    };
    let mut theirs = || {
        // The versioned binary: /usr/bin/psql is Debian's pg_wrapper, a Perl script that
        // adds some 30 ms before psql starts.
        let mut cmd = Command::new(support::pg::bin("psql"));
        cmd.arg(format!(
            "host=127.0.0.1 port={} user=backstage dbname=backstage sslmode=verify-full sslrootcert={}",
            pg.port,
            pg.ca().display()
        ))
        .args(["-X", "-q", "-t", "-c", SESSION_QUERY])
        .env("PGPASSWORD", CANARY);
        cmd
    };
    let t = time_all(setting, RUNS, &mut [&mut ours, &mut theirs]);
    summary.ratio(
        setting,
        "postgres check / psql (same TLS login and query)",
        Target::AtMost(1.2),
        &Side {
            name: "preflight postgres check",
            timing: &t[0],
            command: describe(&ours()),
        },
        &Side {
            name: "psql",
            timing: &t[1],
            command: describe(&theirs()),
        },
    );
}

/// 2. The full tier-3 gate against its slowest check alone: each check alone first, to find
///    the slowest; then that one and the full run, in turn.
fn concurrency(platform: &Platform, setting: &Setting, summary: &mut Summary) {
    let ids = gate_checks(platform);
    let mut alone = Vec::new();
    for id in &ids {
        let t = common::time(setting, ALONE_RUNS, || gate(platform, Some(id)));
        alone.push((t, id.clone()));
    }
    let sum: f64 = alone.iter().map(|(t, _)| t.ms()).sum();
    let (_, slowest) = alone
        .iter()
        .max_by(|a, b| a.0.median.cmp(&b.0.median))
        .unwrap();
    println!(
        "[{}] each of the {} checks alone, median of {ALONE_RUNS}: slowest {slowest}; sum {sum:.1} ms",
        setting.name,
        ids.len()
    );
    let mut full = || gate(platform, None);
    let mut one = || gate(platform, Some(slowest));
    let t = time_all(setting, RUNS, &mut [&mut full, &mut one]);
    let full_side = Side {
        name: "full tier-3 run",
        timing: &t[0],
        command: describe(&full()),
    };
    summary.ratio(
        setting,
        "full tier-3 run / its slowest check alone",
        Target::AtMost(1.3),
        &full_side,
        &Side {
            name: &format!("{slowest} alone"),
            timing: &t[1],
            command: describe(&one()),
        },
    );
    summary.record(
        setting,
        "full tier-3 run / sum of its checks run one by one",
        Target::None,
        t[0].ms() / sum,
    );
}

/// The ids of the checks of the tier-3 gate, from its JSON report.
fn gate_checks(platform: &Platform) -> Vec<String> {
    let out = gate(platform, None)
        .args(["--output", "json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The proposal's shell pipeline against the platform's servers.
struct Pipeline {
    kubeconfig: PathBuf,
    home: PathBuf,
    db: (String, u16),
    realm_url: String,
    realm_ca: PathBuf,
}

/// What each step of the pipeline verifies when it exits 0, and no more.
const PIPELINE_FACTS: [(&str, &str); 5] = [
    (
        "kubectl get nodes",
        "the API server answers the kubeconfig's credentials with a node list (readiness, count and taints not judged)",
    ),
    (
        "kubectl get storageclass",
        "the named StorageClass exists (not that it is the default, nor the only default)",
    ),
    (
        "kubectl get externalsecret",
        "Backstage's ExternalSecret exists (not that it synced, nor its Secret's keys)",
    ),
    (
        "nc -z",
        "the database's port accepts a TCP connection (no TLS, no certificate, no login, no database)",
    ),
    (
        "curl -f",
        "the realm URL answers 2xx over verified TLS (no issuer, token endpoint or signing key judged)",
    ),
];

impl Pipeline {
    fn new(platform: &Platform) -> Pipeline {
        let keycloak = platform.keycloak.as_ref().unwrap();
        Pipeline {
            kubeconfig: platform.cluster.path("kubeconfig"),
            home: platform.cluster.dir.path().to_owned(),
            // The test server stands in for the RDS endpoint, as it does in preflight's
            // settings (the endpoint's name resolves nowhere here).
            db: ("127.0.0.1".to_owned(), platform.pg.port),
            realm_url: format!("{}/realms/{REALM}", keycloak.url()),
            realm_ca: platform.cluster.path("keycloak-ca.pem"),
        }
    }

    /// The script: each step as the proposal has it, in sequence, `set -e`. kubectl's
    /// discovery cache is `cache` (a fresh directory: cold, as in a new hook Pod), or the
    /// one under `$HOME`, warm after the first run.
    fn script(&self, cache: Option<&Path>) -> String {
        let kubectl = format!(
            "{} --kubeconfig {}{}",
            common::kubectl().display(),
            self.kubeconfig.display(),
            cache.map_or(String::new(), |c| format!(" --cache-dir {}", c.display()))
        );
        let (ns, name) = EXTERNAL_SECRET;
        format!(
            "set -e
{kubectl} get nodes >/dev/null
{kubectl} get storageclass {STORAGE_CLASS} >/dev/null
{kubectl} get externalsecret {name} -n {ns} >/dev/null
nc -z {host} {port}
curl -sf --cacert {ca} {url} >/dev/null",
            host = self.db.0,
            port = self.db.1,
            ca = self.realm_ca.display(),
            url = self.realm_url,
        )
    }

    fn command(&self, cache: Option<&Path>) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(self.script(cache))
            .env("HOME", &self.home);
        cmd
    }
}

/// Preflight over the pipeline's scope and more: the tier-3 gate, then the hooks of the apps
/// that check what the pipeline's ExternalSecret and realm steps look at (backstage,
/// oidc-config), in sequence through the same shell.
fn pipeline_scope(platform: &Platform) -> Command {
    let runs = [
        gate(platform, None),
        preflight(
            platform,
            &["--app", "backstage", "--output", "json=/dev/null"],
        ),
        preflight(
            platform,
            &["--app", "oidc-config", "--output", "json=/dev/null"],
        ),
    ];
    let lines: Vec<String> = runs
        .iter()
        .map(|c| {
            let mut bare = Command::new(c.get_program());
            bare.args(c.get_args());
            describe(&bare)
        })
        .collect();
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!("set -e\n{}", lines.join("\n")));
    for (k, v) in runs[0].get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd
}

/// 3. The pipeline against the tier-3 gate, taken in turn; for reference, the pipeline with
///    kubectl's cache cold, and preflight over the pipeline's scope.
fn against_pipeline(
    platform: &Platform,
    pipeline: &Pipeline,
    setting: &Setting,
    summary: &mut Summary,
) {
    let caches = tempfile::tempdir().unwrap();
    let mut fresh = 0;
    let mut cold = || {
        fresh += 1;
        pipeline.command(Some(&caches.path().join(format!("run-{fresh}"))))
    };
    let mut warm = || pipeline.command(None);
    let mut full = || gate(platform, None);
    let mut scope = || pipeline_scope(platform);
    let t = time_all(
        setting,
        RUNS,
        &mut [&mut warm, &mut full, &mut cold, &mut scope],
    );
    let full_side = Side {
        name: "preflight, full tier-3 gate",
        timing: &t[1],
        command: describe(&full()),
    };
    summary.ratio(
        setting,
        "shell pipeline / full tier-3 run (preflight's speed-up)",
        Target::AtLeast(3.0),
        &Side {
            name: "shell pipeline, kubectl's discovery cache warm",
            timing: &t[0],
            command: describe(&warm()),
        },
        &full_side,
    );
    summary.ratio(
        setting,
        "shell pipeline, kubectl cache cold / full tier-3 run",
        Target::None,
        &Side {
            name: "shell pipeline, a fresh kubectl --cache-dir each run (as in a new hook Pod)",
            timing: &t[2],
            command: describe(&cold()),
        },
        &full_side,
    );
    summary.ratio(
        setting,
        "shell pipeline / preflight over its scope (gate + backstage + oidc-config hooks)",
        Target::None,
        &Side {
            name: "shell pipeline, kubectl's discovery cache warm",
            timing: &t[0],
            command: describe(&warm()),
        },
        &Side {
            name: "preflight: the tier-3 gate, then --app backstage, then --app oidc-config",
            timing: &t[3],
            command: describe(&scope()),
        },
    );
}

/// What each side verifies, counted in one unit: a claim about a named object that must
/// hold for the side to succeed (a shell step's exit 0; a preflight check's pass, as its
/// title states it, from the JSON report).
async fn facts(platform: &Platform, pipeline: &Pipeline) {
    println!();
    println!(
        "what each side verifies (unit: one claim about named objects that must hold for the side to pass)"
    );
    let status = Command::new("sh")
        .arg("-c")
        .arg(pipeline.script(None))
        .env("HOME", &pipeline.home)
        .status()
        .unwrap();
    assert!(status.success(), "the shell pipeline fails: {status}");
    println!(
        "  shell pipeline: {} claim(s), one per step:",
        PIPELINE_FACTS.len()
    );
    for (step, what) in PIPELINE_FACTS {
        println!("    {step}: {what}");
    }
    println!("    the script (sh -c):");
    for line in pipeline.script(None).lines() {
        println!("      {line}");
    }
    let mut total = 0;
    for (what, args) in [
        ("the tier-3 gate", &["--tier", "3"][..]),
        ("--app backstage", &["--app", "backstage"][..]),
        ("--app oidc-config", &["--app", "oidc-config"][..]),
    ] {
        let mut cmd = platform.preflight(args);
        cmd.args(["--output", "json"]);
        let run = support::run(cmd).await;
        let report = run.report();
        assert_eq!(run.code, 0, "{what} fails: {}", run.stderr);
        let checks = report["checks"].as_array().unwrap();
        let passed: Vec<_> = checks.iter().filter(|c| c["status"] == "pass").collect();
        total += passed.len();
        println!(
            "  preflight, {what}: {} claim(s), one per check passed ({} check(s) run):",
            passed.len(),
            checks.len()
        );
        for c in passed {
            println!(
                "    {}: {}",
                c["id"].as_str().unwrap(),
                c["title"].as_str().unwrap()
            );
        }
    }
    println!(
        "  preflight over the pipeline's scope (the three runs above): {total} claims; the gate alone leaves the ExternalSecret and the realm to the apps' own hooks"
    );
}
