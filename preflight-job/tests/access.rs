//! `preflight rbac` and `preflight iam-policy` without bootstrap values, as on a fresh machine:
//! the RBAC of a tier for a mode given by flag, or for every mode that can run the tier; the
//! IAM policy, which names the environment's resources, for the environment given.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use support::*;

async fn preflight(args: &[&str]) -> Run {
    let mut cmd = preflight_cmd();
    cmd.args(args);
    run(cmd).await
}

async fn ok(args: &[&str]) -> Run {
    let run = preflight(args).await;
    assert_eq!(run.code, 0, "preflight {args:?}:\n{}", run.stderr);
    run
}

/// The rules of each RBAC object, by kind, namespace and name: what a union is compared on.
fn grants(yaml: &str) -> BTreeMap<(String, String, String), BTreeSet<String>> {
    let mut grants: BTreeMap<_, BTreeSet<String>> = BTreeMap::new();
    for doc in documents(yaml) {
        let key = (
            doc["kind"].as_str().unwrap_or_default().to_owned(),
            doc["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            doc["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
        let entry = grants.entry(key).or_default();
        for rule in doc["rules"].as_array().into_iter().flatten() {
            entry.insert(rule.to_string());
        }
        if let Some(role) = doc["metadata"]["annotations"].as_object() {
            entry.extend(role.iter().map(|(k, v)| format!("{k}={v}")));
        }
    }
    grants
}

/// Merges the grants of several outputs.
fn union(outputs: &[&str]) -> BTreeMap<(String, String, String), BTreeSet<String>> {
    let mut all: BTreeMap<_, BTreeSet<String>> = BTreeMap::new();
    for output in outputs {
        for (key, rules) in grants(output) {
            all.entry(key).or_default().extend(rules);
        }
    }
    all
}

fn comments(text: &str) -> Vec<&str> {
    text.lines().take_while(|l| l.starts_with('#')).collect()
}

/// Without any value, a tier both modes can run gets what either mode's gate reads, and says
/// so; a tier only a persistent cluster can run (tier 2 and 3, Backstage's hook) gets the
/// persistent cluster's RBAC, exactly what `hooks/` holds, and says why not the ephemeral one.
#[tokio::test(flavor = "multi_thread")]
async fn rbac_needs_no_values_and_covers_every_mode_that_can_run_the_tier() {
    for tier in ["0", "1", "1.5"] {
        let bare = ok(&["rbac", "--tier", tier, "--namespace", "argocd"]).await;
        let header = comments(&bare.stdout);
        assert_eq!(header.len(), 1, "{}", bare.stdout);
        assert!(
            header[0].contains(&format!("tier-{tier} gate"))
                && header[0].contains("either mode (ephemeral or persistent)"),
            "{}",
            header[0]
        );
        let ephemeral = ok(&[
            "rbac",
            "--tier",
            tier,
            "--mode",
            "ephemeral",
            "--env",
            "dev",
            "--build-id",
            "26-01-23-01",
        ])
        .await;
        let persistent = ok(&[
            "rbac",
            "--tier",
            tier,
            "--mode",
            "persistent",
            "--env",
            "prod",
        ])
        .await;
        assert!(
            comments(&ephemeral.stdout).is_empty() && comments(&persistent.stdout).is_empty(),
            "a mode given: no header"
        );
        assert_eq!(
            grants(&bare.stdout),
            union(&[&ephemeral.stdout, &persistent.stdout]),
            "tier {tier}: the union of both modes' RBAC"
        );
    }

    for (args, hook) in [
        (&["--tier", "2"][..], "hooks/tier-2/rbac/rbac.yaml"),
        (&["--tier", "3"][..], "hooks/tier-3/rbac/rbac.yaml"),
        (
            &["--app", "backstage", "--namespace", "backstage"][..],
            "hooks/apps/backstage/rbac/rbac.yaml",
        ),
    ] {
        let bare = ok(&[&["rbac"][..], args].concat()).await;
        let header = comments(&bare.stdout);
        assert!(
            header.len() == 2
                && header[0].contains("on a persistent cluster")
                && header[1].starts_with("# Not for an ephemeral cluster:")
                && header[1].contains("above this cluster's ceiling 1.5"),
            "{args:?}:\n{}",
            bare.stdout
        );
        let committed = std::fs::read_to_string(repo(hook)).unwrap();
        assert_eq!(
            grants(&bare.stdout),
            grants(&committed),
            "{args:?}: the persistent cluster's RBAC, as {hook} holds it"
        );
    }
}

/// A mode given by flag is the cluster's: its RBAC alone, and a tier it cannot run is the
/// usage error a run would give. Values that are given are validated as for a run.
#[tokio::test(flavor = "multi_thread")]
async fn rbac_for_a_mode_given_by_flag_or_file() {
    let ephemeral = ok(&["rbac", "--tier", "1.5", "--mode", "ephemeral"]).await;
    assert!(
        comments(&ephemeral.stdout).is_empty(),
        "{}",
        ephemeral.stdout
    );
    assert!(
        ephemeral
            .stdout
            .contains("name: preflight-tier-1-5\n  namespace: argocd"),
        "{}",
        ephemeral.stdout
    );

    for args in [
        &["rbac", "--tier", "2", "--mode", "ephemeral"][..],
        &["rbac", "--tier", "2", "--values", "examples/values.yaml"][..],
    ] {
        let mut cmd = preflight_cmd();
        cmd.args(args).current_dir(repo(""));
        let above = run(cmd).await;
        assert_eq!(above.code, 2, "{args:?}: {}", above.stderr);
        assert!(
            above
                .stderr
                .contains("tier 2 is above this cluster's ceiling 1.5"),
            "{args:?}: {}",
            above.stderr
        );
        assert!(above.stdout.is_empty(), "{}", above.stdout);
    }
}

/// The IAM policy names the environment's resources, so it needs the environment and nothing
/// else: without it, exit 2 naming `--env`; with it, the policy of every mode that can run
/// the tier, equal to the one for the full values of such a cluster.
#[tokio::test(flavor = "multi_thread")]
async fn the_iam_policy_needs_only_the_environment() {
    let bare = preflight(&["iam-policy", "--tier", "2"]).await;
    assert_eq!(bare.code, 2, "{}", bare.stderr);
    assert!(
        bare.stderr.contains("names the environment's resources") && bare.stderr.contains("--env"),
        "{}",
        bare.stderr
    );
    assert!(bare.stdout.is_empty());

    let prod = ok(&["iam-policy", "--tier", "2", "--env", "prod"]).await;
    let policy: Value = serde_json::from_str(&prod.stdout).expect("a JSON policy");
    assert!(
        prod.stdout.contains("arn:aws:rds:*:*:db:goldenpath-prod"),
        "{policy:#}"
    );
    assert!(
        prod.stderr.contains("on a persistent cluster")
            && prod.stderr.contains("Not for an ephemeral cluster"),
        "the note goes to stderr, JSON has no comments: {}",
        prod.stderr
    );
    let full = ok(&[
        "iam-policy",
        "--tier",
        "2",
        "--values",
        &repo("examples/values-persistent.yaml").to_string_lossy(),
    ])
    .await;
    assert_eq!(prod.stdout, full.stdout);
    assert!(full.stderr.is_empty(), "{}", full.stderr);

    // Tier 1 runs in both modes; each mode's policy is the same today, and the union is it.
    let dev = ok(&["iam-policy", "--tier", "1", "--env", "dev"]).await;
    let ephemeral = ok(&[
        "iam-policy",
        "--tier",
        "1",
        "--env",
        "dev",
        "--mode",
        "ephemeral",
        "--build-id",
        "26-01-23-01",
    ])
    .await;
    assert_eq!(dev.stdout, ephemeral.stdout);
    assert!(
        dev.stderr.contains("either mode (ephemeral or persistent)"),
        "{}",
        dev.stderr
    );

    let tier0 = ok(&["iam-policy", "--tier", "0"]).await;
    assert!(tier0.stdout.is_empty());
    assert!(
        tier0
            .stderr
            .contains("no AWS check is planned for tier 0: no IAM policy is needed"),
        "{}",
        tier0.stderr
    );
}
