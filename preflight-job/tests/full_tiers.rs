//! Whole tiers against the whole test platform: every check of the brief, real parts behind
//! each (fake cluster, PostgreSQL with TLS, moto for RDS and Route53, a fake Keycloak), and
//! every one of them passing.

mod support;

use support::platform::{PERSISTENT_VALUES, Platform};
use support::*;

/// Runs `--tier N` and asserts that exactly `expected` ran, every one passing.
async fn passes(platform: &Platform, tier: &str, expected: &[&str]) -> Run {
    let run = run(platform.preflight(&["--tier", tier, "--output", "json"])).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = run.report();
    let checks = report["checks"].as_array().expect("a list of checks");
    let ids: Vec<&str> = checks.iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids, expected);
    for c in checks {
        assert_eq!(c["status"], "pass", "{c:#}");
    }
    run
}

const TIER_1_5: [&str; 13] = [
    "kube-api",
    "nodes-ready",
    "coredns",
    "cni",
    "crds",
    "ingress-class",
    "cluster-secret-store",
    "irsa",
    "tier-gating",
    "route53-zone",
    "dns-scope",
    "observability-crds",
    "storage-class",
];

const TIER_2: [&str; 4] = [
    "external-secrets",
    "postgres",
    "rds-instance",
    "cluster-issuers",
];

#[tokio::test(flavor = "multi_thread")]
async fn tier_1_5_on_an_ephemeral_cluster_runs_every_check_of_its_tiers() {
    let platform = Platform::start(EPHEMERAL_VALUES).await;
    let run = passes(&platform, "1.5", &TIER_1_5).await;
    let report = run.report();
    let scope = run.check("dns-scope");
    assert!(
        scope["message"]
            .as_str()
            .unwrap()
            .starts_with("3 ExternalDNS record(s) owned by goldenpath-dev-26-01-23-01"),
        "{scope:#}"
    );
    let left: Vec<&str> = report["leftOut"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(left, [TIER_2.as_slice(), &["keycloak-realm"]].concat());
}

#[tokio::test(flavor = "multi_thread")]
async fn tier_2_on_an_ephemeral_cluster_passes() {
    let values = EPHEMERAL_VALUES.replace("maxTier: \"1.5\"", "maxTier: \"2\"");
    let platform = Platform::start(&values).await;
    passes(&platform, "2", &[TIER_1_5.as_slice(), &TIER_2].concat()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tier_3_on_a_persistent_cluster_runs_every_check_of_the_brief() {
    let platform = Platform::start(PERSISTENT_VALUES).await;
    let run = passes(
        &platform,
        "3",
        &[TIER_1_5.as_slice(), &TIER_2, &["keycloak-realm"]].concat(),
    )
    .await;
    assert!(run.report()["leftOut"].as_array().unwrap().is_empty());
    let scope = run.check("dns-scope");
    assert!(
        scope["message"]
            .as_str()
            .unwrap()
            .starts_with("2 ExternalDNS record(s) owned by goldenpath-dev "),
        "{scope:#}"
    );
    let realm = run.check("keycloak-realm");
    assert!(
        realm["message"]
            .as_str()
            .unwrap()
            .contains("with 1 signing key(s): k6oA8NfLq2bR (RS256)"),
        "{realm:#}"
    );
}
