//! Whole tiers against the whole test platform: every check of the brief, real parts behind
//! each (fake cluster, PostgreSQL with TLS, moto for RDS and Route53, a fake Keycloak), and
//! every one of them passing.

mod support;

use support::platform::{PERSISTENT_VALUES, Platform};
use support::*;

/// Runs `preflight ARGS` (a tier's gate or an app's hook) and asserts that exactly `expected`
/// ran, every one passing.
async fn passes(platform: &Platform, args: &[&str], expected: &[&str]) -> Run {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let run = run(platform.preflight(&all)).await;
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

const TIER_1_5: [&str; 18] = [
    "kube-api",
    "nodes-ready",
    "coredns",
    "cni",
    "route53-zone",
    "image-architecture",
    "irsa-roles",
    "tier-gating",
    "sync-waves",
    "admission-webhooks",
    "lower-tiers-healthy",
    "crds",
    "ingress-class",
    "ingress-hosts",
    "irsa",
    "external-dns-confined",
    "dns-scope",
    "storage-class",
];

const TIER_2: [&str; 7] = [
    "cluster-secret-store",
    "observability-crds",
    "rds-instance",
    "s3-bucket",
    "secrets-manager",
    "cluster-issuers",
    "postgres",
];

#[tokio::test(flavor = "multi_thread")]
async fn tier_1_5_on_an_ephemeral_cluster_runs_every_check_of_its_tiers() {
    let platform = Platform::start(EPHEMERAL_VALUES).await;
    let run = passes(&platform, &["--tier", "1.5"], &TIER_1_5).await;
    let report = run.report();
    // The listed image was read from ECR (moto) and fits the nodes.
    let image = run.check("image-architecture");
    assert!(
        image["message"]
            .as_str()
            .unwrap()
            .contains("goldenpath/kong:3.9.1 (linux/amd64, linux/arm64)"),
        "{image:#}"
    );
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
    let mut expected = vec!["external-secrets", "keycloak-realm"];
    expected.extend(TIER_2);
    let mut left = left;
    left.sort_unstable();
    expected.sort_unstable();
    assert_eq!(left, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn tier_2_on_an_ephemeral_cluster_under_adr_0180_passes() {
    let values = EPHEMERAL_VALUES.replace("maxTier: \"1.5\"", "maxTier: \"2\"");
    let platform = Platform::start(&values).await;
    passes(
        &platform,
        &["--contract-rules", "adr-0180", "--tier", "2"],
        &[TIER_1_5.as_slice(), &TIER_2].concat(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_gate_and_app_hook_of_a_persistent_cluster_passes() {
    let platform = Platform::start(PERSISTENT_VALUES).await;
    let run = passes(
        &platform,
        &["--tier", "3"],
        &[TIER_1_5.as_slice(), &TIER_2].concat(),
    )
    .await;
    let scope = run.check("dns-scope");
    assert!(
        scope["message"]
            .as_str()
            .unwrap()
            .starts_with("2 ExternalDNS record(s) owned by goldenpath-dev "),
        "{scope:#}"
    );
    // At the gate, the logins come from the remote secrets in Secrets Manager.
    let postgres = run.check("postgres");
    assert!(
        postgres["message"]
            .as_str()
            .unwrap()
            .contains("backstage: logged in to backstage on 127.0.0.1"),
        "{postgres:#}"
    );
    // Keycloak's own login, checked at tier 3's gate before Keycloak syncs.
    assert!(
        postgres["message"].as_str().unwrap().contains(&format!(
            "keycloak: logged in to keycloak on 127.0.0.1:{} as keycloak_app over TLS",
            platform.pg.port
        )),
        "{postgres:#}"
    );
    // In the apps' own hooks, from what their ExternalSecrets synced.
    let backstage = passes(
        &platform,
        &["--app", "backstage"],
        &["external-secrets", "postgres"],
    )
    .await;
    assert_eq!(backstage.report()["app"], "backstage");
    let realm = passes(&platform, &["--app", "oidc-config"], &["keycloak-realm"]).await;
    assert!(
        realm.check("keycloak-realm")["message"]
            .as_str()
            .unwrap()
            .contains("with 1 signing key(s): k6oA8NfLq2bR (RS256)"),
        "{:#}",
        realm.check("keycloak-realm")
    );
}
