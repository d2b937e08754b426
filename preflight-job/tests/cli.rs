//! The command line without a cluster: the plan, usage errors and bad input. Every bad input
//! exits 2 with a message naming the file, the place and the problem; none panics.

mod support;

use support::*;

fn values_file(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("values.yaml");
    std::fs::write(&path, text).expect("the temp dir is writable");
    path
}

async fn preflight(args: &[&str]) -> Run {
    let mut cmd = preflight_cmd();
    cmd.args(args);
    run(cmd).await
}

#[tokio::test]
async fn the_plan_lists_every_check_by_tier_and_what_is_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let values = values_file(&dir, EPHEMERAL_VALUES);
    let run = preflight(&[
        "plan",
        "--tier",
        "1",
        "--values",
        values.to_str().unwrap(),
        "--output",
        "json",
    ])
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plan = run.report();
    let planned: Vec<&str> = plan["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    // Tier 1's gate: what tier 1 needs from the foundation, nothing tier 1 installs.
    assert_eq!(
        planned,
        [
            "kube-api",
            "nodes-ready",
            "coredns",
            "cni",
            "route53-zone",
            "image-architecture",
            "irsa-roles",
            "tier-gating",
            "sync-waves",
            "admission-webhooks"
        ],
        "{plan:#}"
    );
    for c in plan["checks"].as_array().unwrap() {
        assert_eq!(c["providedBy"]["kind"], "foundation", "{c:#}");
    }
    let crds = plan["leftOut"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == "crds")
        .expect("crds left out");
    assert_eq!(crds["reason"], "above the requested tier 1", "{plan:#}");
    assert_eq!(crds["neededBy"]["tier"], "1.5");

    let human = preflight(&[
        "plan",
        "--tier",
        "1.5",
        "--values",
        values.to_str().unwrap(),
    ])
    .await;
    assert_eq!(human.code, 0);
    for needle in [
        "storage-class",
        "provided by kong (tier 1, wave 30); needed by tier 1.5",
        "ceiling",
    ] {
        assert!(human.stdout.contains(needle), "{needle}:\n{}", human.stdout);
    }
    assert!(
        human
            .stdout
            .lines()
            .any(|l| l.trim_start().starts_with("observability-crds ")
                && l.ends_with("needed by tier 2: above the requested tier 1.5")),
        "{}",
        human.stdout
    );
}

#[tokio::test]
async fn the_plan_contacts_nothing_and_defaults_to_the_ceiling() {
    let dir = tempfile::tempdir().unwrap();
    let values = values_file(&dir, EPHEMERAL_VALUES);
    let mut cmd = preflight_cmd();
    // An unreachable kubeconfig: the plan must not care.
    cmd.env("KUBECONFIG", dir.path().join("missing"));
    cmd.args([
        "plan",
        "--values",
        values.to_str().unwrap(),
        "--output",
        "json",
    ]);
    let run = run(cmd).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("storage-class"),
        "tier 1.5, the ceiling, is planned"
    );
}

#[tokio::test]
async fn a_tier_above_the_ceiling_is_a_usage_error_naming_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let values = values_file(&dir, EPHEMERAL_VALUES);
    let above = preflight(&["plan", "--tier", "2", "--values", values.to_str().unwrap()]).await;
    assert_eq!(above.code, 2);
    assert!(
        above.stderr.contains(&format!(
            "tier 2 is above this cluster's ceiling 1.5: under the V1 contract rules bootstrap.maxTier is derived from bootstrap.mode ephemeral ({0}:2): ephemeral 1.5, persistent 3; bootstrap.maxTier 1.5 ({0}:3) agrees",
            values.display()
        )),
        "{}",
        above.stderr
    );
    // V1: an explicit maxTier that disagrees with the mode is a contract error quoting the
    // rule, wherever it comes from.
    let flag = preflight(&[
        "plan",
        "--tier",
        "1.5",
        "--values",
        values.to_str().unwrap(),
        "--max-tier",
        "3",
    ])
    .await;
    assert_eq!(flag.code, 2);
    assert!(
        flag.stderr.contains(&format!(
            "--max-tier: bootstrap.maxTier: \"3\" disagrees with bootstrap.mode ephemeral ({}:2): under the V1 contract rules maxTier is derived from the mode (ephemeral 1.5, persistent 3) and cannot be overridden",
            values.display()
        )),
        "{}",
        flag.stderr
    );
    let mut cmd = preflight_cmd();
    cmd.env("PREFLIGHT_MAX_TIER", "1");
    cmd.args([
        "plan",
        "--tier",
        "1.5",
        "--values",
        values.to_str().unwrap(),
    ]);
    let env = run(cmd).await;
    assert_eq!(env.code, 2);
    assert!(
        env.stderr.contains(
            "$PREFLIGHT_MAX_TIER: bootstrap.maxTier: \"1\" disagrees with bootstrap.mode ephemeral"
        ),
        "{}",
        env.stderr
    );

    // ADR-0180, when a platform chooses it: maxTier is the ceiling, and an ephemeral cluster
    // never gets tier 3.
    let adr = |extra: &'static [&'static str]| {
        let mut args = vec![
            "plan".to_owned(),
            "--values".to_owned(),
            values.to_str().unwrap().to_owned(),
            "--contract-rules".to_owned(),
            "adr-0180".to_owned(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        async move {
            let mut cmd = preflight_cmd();
            cmd.args(&args);
            run(cmd).await
        }
    };
    let capped = adr(&["--tier", "3", "--max-tier", "3"]).await;
    assert_eq!(capped.code, 2);
    assert!(
        capped.stderr.contains(
            "ceiling 2: bootstrap.maxTier is 3 (--max-tier), but bootstrap.mode is ephemeral"
        ),
        "{}",
        capped.stderr
    );
    let lowered = adr(&["--tier", "1.5", "--max-tier", "1"]).await;
    assert_eq!(lowered.code, 2);
    assert!(
        lowered.stderr.contains(
            "tier 1.5 is above this cluster's ceiling 1: bootstrap.maxTier is 1 (--max-tier)"
        ),
        "{}",
        lowered.stderr
    );
    let tier2 = adr(&["--tier", "2", "--max-tier", "2"]).await;
    assert_eq!(tier2.code, 0, "{}", tier2.stderr);

    // Tier 2 and above need RDS, under either rule set.
    let persistent = values_file(&dir, "bootstrap:\n  mode: persistent\n  env: prod\n");
    let no_rds = preflight(&["plan", "--values", persistent.to_str().unwrap()]).await;
    assert_eq!(no_rds.code, 2);
    assert!(
        no_rds
            .stderr
            .contains("platform.rdsAvailable: is absent, but tier 3 needs RDS"),
        "{}",
        no_rds.stderr
    );
}

#[tokio::test]
async fn bad_tiers_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let values = values_file(&dir, EPHEMERAL_VALUES);
    for bad in ["2.5", "-1", "abc", "1.50", ""] {
        let run = preflight(&[
            "plan",
            &format!("--tier={bad}"),
            "--values",
            values.to_str().unwrap(),
        ])
        .await;
        assert_eq!(run.code, 2, "{bad:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("is not a tier") || run.stderr.contains("a value is required"),
            "{bad:?}: {}",
            run.stderr
        );
    }
}

#[tokio::test]
async fn malformed_values_name_the_file_the_line_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    for (text, needles) in [
        (
            "bootstrap:\n  mode: ephemeral\n  maxTeir: \"1.5\"\n",
            &["values.yaml:3:3: bootstrap.maxTeir: unknown field `maxTeir`"][..],
        ),
        (
            "bootstrap: [unclosed\n",
            &["values.yaml:1:12: bootstrap: "][..],
        ),
        (
            "bootstrap:\n  mode: sometimes\n  env: dev\n",
            &["values.yaml:2: bootstrap.mode: \"sometimes\" is not a mode"][..],
        ),
        (
            "bootstrap:\n  mode: persistent\n  env: dev\n  maxTier: \"2.5\"\n",
            &["values.yaml:4: bootstrap.maxTier: \"2.5\" is not a tier"][..],
        ),
        (
            "bootstrap:\n  mode: ephemeral\n  env: dev\n",
            &["bootstrap.buildId: is required when bootstrap.mode is ephemeral"][..],
        ),
        ("\u{0}\u{1}binary", &["values.yaml:1:1: "][..]),
    ] {
        let values = values_file(&dir, text);
        let run = preflight(&["plan", "--values", values.to_str().unwrap()]).await;
        assert_eq!(run.code, 2, "{text:?}: {}", run.stderr);
        for needle in needles {
            assert!(
                run.stderr.contains(needle),
                "{text:?} lacks {needle:?}:\n{}",
                run.stderr
            );
        }
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
    let missing = preflight(&[
        "plan",
        "--values",
        dir.path().join("nope.yaml").to_str().unwrap(),
    ])
    .await;
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("cannot read values file"),
        "{}",
        missing.stderr
    );
}

#[tokio::test]
async fn malformed_config_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let values = values_file(&dir, EPHEMERAL_VALUES);
    let config = dir.path().join("preflight.yaml");
    std::fs::write(&config, "checks:\n  nodes-ready:\n    minReady: many\n").unwrap();
    let run = preflight(&[
        "plan",
        "--values",
        values.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ])
    .await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("preflight.yaml:3:15: checks.nodes-ready.minReady: "),
        "{}",
        run.stderr
    );
    let unknown = preflight(&[
        "plan",
        "--values",
        values.to_str().unwrap(),
        "--check",
        "dns",
    ])
    .await;
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("unknown check \"dns\""),
        "{}",
        unknown.stderr
    );
}

#[tokio::test]
async fn missing_or_broken_kubeconfigs_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let values = values_file(&dir, EPHEMERAL_VALUES);
    let missing = dir.path().join("missing-kubeconfig");
    let run1 = preflight(&[
        "--tier",
        "0",
        "--values",
        values.to_str().unwrap(),
        "--kubeconfig",
        missing.to_str().unwrap(),
    ])
    .await;
    assert_eq!(run1.code, 2, "{}", run1.stderr);
    assert!(
        run1.stderr.contains("cannot load the kubeconfig")
            && run1.stderr.contains("missing-kubeconfig"),
        "{}",
        run1.stderr
    );

    let broken = dir.path().join("broken-kubeconfig");
    std::fs::write(&broken, "apiVersion: v1\nclusters: {not: [a list\n").unwrap();
    let run2 = preflight(&[
        "--tier",
        "0",
        "--values",
        values.to_str().unwrap(),
        "--kubeconfig",
        broken.to_str().unwrap(),
    ])
    .await;
    assert_eq!(run2.code, 2, "{}", run2.stderr);
    assert!(run2.stderr.contains("broken-kubeconfig"), "{}", run2.stderr);

    let mut cmd = preflight_cmd();
    cmd.env("HOME", dir.path());
    cmd.env("KUBECONFIG", dir.path().join("nowhere"));
    cmd.args(["--tier", "0", "--values", values.to_str().unwrap()]);
    let run3 = run(cmd).await;
    assert_eq!(run3.code, 2, "{}", run3.stderr);
}

#[tokio::test]
async fn help_documents_the_exit_codes() {
    let run = preflight(&["--help"]).await;
    assert_eq!(run.code, 0);
    for needle in [
        "Exit codes:",
        "0  every required check passed",
        "1  a required check failed",
        "2  usage or configuration error",
        "3  the --wait deadline",
    ] {
        assert!(run.stdout.contains(needle), "{needle}:\n{}", run.stdout);
    }
    let bad = preflight(&["--output", "xml", "--tier", "0"]).await;
    assert_eq!(bad.code, 2);
}
