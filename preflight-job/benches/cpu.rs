//! Where the CPU of a run goes, in instructions counted by callgrind: unlike seconds, the
//! counts repeat for the same binary and inputs whatever else the machine is doing.
//!
//! Against the same platform as the `tiers` benchmark (fake Kubernetes API, real PostgreSQL 15
//! with TLS, moto, the HTTPS Keycloak stand-in), it counts:
//! 1. a full tier-3 gate;
//! 2. the postgres check alone (the `tiers` benchmark's login: one database, its CA bundle),
//!    next to `psql` doing the same TLS login and query;
//!
//! and for each preflight run, the inclusive count of the steps that set up TLS (parsing a
//! trust store, building a connector, handshakes), so that a change to them shows as numbers.
//!
//! Run with `cargo bench -p preflight-job --bench cpu` (needs valgrind, and moto installed by
//! `./tests/run.sh`). Set `PREFLIGHT_CPU_TOP=N` to also print the N costliest functions of each
//! run. The profiles are kept in `target/cpu-profiles/` for `callgrind_annotate` (e.g.
//! `--inclusive=yes --tree=caller`). Prints a table; asserts nothing.

#![expect(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a benchmark reports on stdout and stops on a broken setup"
)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use support::pg::CANARY;
use support::platform::{PERSISTENT_VALUES, Platform};

/// The TLS steps whose inclusive cost is shown, by the function callgrind names (OpenSSL's
/// exported symbols, Rust's demangled paths).
const STEPS: &[(&str, &str)] = &[
    (
        "SSL_CTX_set_default_verify_paths",
        "OpenSSL's default trust store, loaded by every SslConnector::builder",
    ),
    (
        "SSL_CTX_load_verify_locations",
        "trust store files loaded by name (native-tls: the probed system bundle)",
    ),
    (
        "rustls_native_certs::load_native_certs",
        "the system trust store, read by rustls (the AWS SDK's default client)",
    ),
    ("SSL_CTX_new_ex", "OpenSSL contexts created"),
    ("SSL_do_handshake", "TLS handshakes (OpenSSL)"),
    ("X509_STORE_add_cert", "certificates added to trust stores"),
    ("PEM_X509_INFO_read_bio_ex", "PEM bundles parsed by OpenSSL"),
];

/// The counts of one run under callgrind.
struct Profile {
    total: u64,
    /// Inclusive count per function, as callgrind_annotate prints it.
    inclusive: Vec<(u64, String)>,
}

impl Profile {
    /// The inclusive count of the functions whose name contains `name` (the largest, so that
    /// recursive or nested entries are not added twice).
    fn of(&self, name: &str) -> u64 {
        self.inclusive
            .iter()
            .filter(|(_, f)| f.contains(name))
            .map(|(n, _)| *n)
            .max()
            .unwrap_or(0)
    }
}

/// Runs `cmd` under callgrind (all threads and the children it execs) and reads the counts.
fn callgrind(cmd: &Command, out_dir: &Path, name: &str) -> Profile {
    let out = out_dir.join(format!("callgrind.{name}"));
    let mut vg = Command::new("valgrind");
    vg.arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => vg.env(k, v),
            None => vg.env_remove(k),
        };
    }
    let status = vg
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{name} under callgrind: {status}");
    let annotated = Command::new("callgrind_annotate")
        .args(["--inclusive=yes", "--threshold=100"])
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&annotated.stdout);
    let number = |s: &str| s.replace(',', "").parse::<u64>().ok();
    let mut total = 0;
    let mut inclusive = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_suffix("PROGRAM TOTALS") {
            total = rest.split_whitespace().next().and_then(number).unwrap_or(0);
            continue;
        }
        // "1,234,567 (12.34%)  file:function [object]"
        let Some((count, rest)) = line.split_once(' ') else {
            continue;
        };
        let Some(count) = number(count) else { continue };
        let function = rest
            .split_once(')')
            .map_or(rest, |(_, f)| f)
            .trim()
            .split_once(':')
            .map_or("", |(_, f)| f);
        inclusive.push((count, function.to_owned()));
    }
    assert!(
        total > 0,
        "no totals in callgrind_annotate's output: {text}"
    );
    Profile { total, inclusive }
}

fn millions(n: u64) -> String {
    format!("{:.1} M", n as f64 / 1e6)
}

fn show(name: &str, command: &str, p: &Profile) {
    println!("{name}: {} instructions", millions(p.total));
    println!("  command: {command}");
    for (function, what) in STEPS {
        let n = p.of(function);
        if n > 0 {
            println!(
                "  {:>9} ({:>4.1}%)  {function}: {what}",
                millions(n),
                100.0 * n as f64 / p.total as f64
            );
        }
    }
    let top: usize = std::env::var("PREFLIGHT_CPU_TOP")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    for (n, f) in p.inclusive.iter().take(top) {
        println!("    {:>9}  {f}", millions(*n));
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let platform = Platform::start(PERSISTENT_VALUES).await;
    // Kept after the run, for callgrind_annotate or kcachegrind.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/cpu-profiles");
    std::fs::create_dir_all(&dir).unwrap();
    println!("profiles in {}", dir.display());
    // Valgrind runs a program some 50 times slower: every attempt gets room to finish.
    let mut full = platform.preflight(&[
        "--tier",
        "3",
        "--output",
        "json=/dev/null",
        "--attempt-timeout",
        "120s",
    ]);
    full.env("PREFLIGHT_LOG", "warn");
    let full_profile = callgrind(full.as_std(), &dir, "tier3");
    show("full tier-3 run", &describe(full.as_std()), &full_profile);

    // The same login as the `tiers` benchmark's, next to psql's: one database, its CA bundle.
    let values = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/values-persistent.yaml");
    let mut postgres = support::pg::login_cmd(&platform.pg, &values, CANARY, "json=/dev/null");
    postgres
        .args(["--attempt-timeout", "120s"])
        .env("PREFLIGHT_LOG", "warn");
    let postgres_profile = callgrind(postgres.as_std(), &dir, "postgres");
    show(
        "postgres check alone",
        &describe(postgres.as_std()),
        &postgres_profile,
    );

    let pg = &platform.pg;
    let mut psql = Command::new(support::pg::bin("psql"));
    psql.arg(format!(
        "host=127.0.0.1 port={} user=backstage dbname=backstage sslmode=verify-full sslrootcert={}",
        pg.port,
        pg.ca().display()
    ))
    .args(["-X", "-q", "-t", "-c", support::pg::SESSION_QUERY])
    .env("PGPASSWORD", CANARY);
    let psql_profile = callgrind(&psql, &dir, "psql");
    show(
        "psql, same login and query",
        &describe(&psql),
        &psql_profile,
    );
    println!(
        "ratio postgres check / psql (instructions)    {:.2}",
        postgres_profile.total as f64 / psql_profile.total as f64
    );
}

/// A command line to show: the program and its arguments (no environment: it holds the
/// password variable's value).
fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
