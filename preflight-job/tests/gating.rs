//! The gating model end to end: a tier's gate waits (through a watch) for the lower tiers'
//! ArgoCD Applications, the offline plan says what provides and what needs each check and
//! leaves out what an app checks in its own hook. (The contract rules from the command line are
//! tested in `cli.rs`, a declaration found false in `kube_checks.rs` and `aws.rs`.)

#![allow(
    clippy::unwrap_used,
    reason = "the scenarios run by on_both_servers! are not #[test] functions, which clippy's allow-unwrap-in-tests covers"
)]

mod support;

use serde_json::{Value, json};
use support::control_plane::ControlPlane;
use support::*;

const APPLICATIONS: &str = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications";
const APPLICATION_CRD: &str = "applications.argoproj.io";
/// An ArgoCD Application of `tier` in `argocd` with this sync and health status.
fn application(name: &str, tier: &str, sync: &str, health: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd", "labels": {"goldenpath.idp/tier": tier}},
        "spec": {"project": "platform", "source": {"repoURL": "https://github.com/goldenpath/platform.git", "path": format!("apps/{name}"), "targetRevision": "main"}, "destination": {"server": "https://kubernetes.default.svc", "namespace": name}},
        "status": {"sync": {"status": sync}, "health": {"status": health}}
    })
}

/// An empty cluster that serves ArgoCD's Applications (upstream's CRD, from
/// `tests/fixtures/crds/`), holding `apps`.
async fn argocd_cluster(backend: Backend, apps: Vec<Value>) -> Cluster {
    let cluster = Cluster::empty_on(backend).await;
    let crd = ControlPlane::crd_manifests()
        .into_iter()
        .find(|c| c["metadata"]["name"] == APPLICATION_CRD)
        .expect("the fixtures hold the Application CRD");
    cluster
        .kube
        .apply(crd)
        .expect("the Application CRD applies");
    for app in apps {
        cluster.kube.apply(app).expect("the Application applies");
    }
    cluster
}

fn set_status(cluster: &Cluster, name: &str, sync: &str, health: &str) {
    cluster
        .kube
        .update(
            "argoproj.io/v1alpha1",
            "Application",
            Some("argocd"),
            name,
            |a| {
                a["status"] = json!({"sync": {"status": sync}, "health": {"status": health}});
            },
        )
        .unwrap_or_else(|e| panic!("Application {name}: {e}"));
}

fn message(run: &Run, id: &str) -> String {
    run.check(id)["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{id} has a message: {}", run.stdout))
        .to_owned()
}

on_both_servers!(
    lower_tiers_are_watched_until_they_are_synced_and_healthy,
    a_degraded_lower_tier_fails_the_gate_and_higher_tiers_are_ignored,
    a_lower_tier_app_the_root_lists_but_has_not_created_fails_the_gate,
);

async fn a_lower_tier_app_the_root_lists_but_has_not_created_fails_the_gate(backend: Backend) {
    // A first sync stopped after tier 1: the root lists prometheus (tier 1.5) at wave 50 and
    // loki (tier 2) at 101, neither created. Another namespace's child is not this gate's.
    let mut root = application("platform-root", "0", "OutOfSync", "Missing");
    root["metadata"]["labels"] = json!({});
    root["status"]["resources"] = json!([
        {"group": "argoproj.io", "version": "v1alpha1", "kind": "Application", "namespace": "argocd", "name": "kong", "status": "Synced", "health": {"status": "Healthy"}, "syncWave": 30},
        {"group": "argoproj.io", "version": "v1alpha1", "kind": "Application", "namespace": "argocd", "name": "prometheus", "status": "OutOfSync", "health": {"status": "Missing"}, "syncWave": 50},
        {"group": "argoproj.io", "version": "v1alpha1", "kind": "Application", "namespace": "argocd", "name": "loki", "status": "OutOfSync", "health": {"status": "Missing"}, "syncWave": 101},
        {"group": "argoproj.io", "version": "v1alpha1", "kind": "Application", "namespace": "team", "name": "alertmanager", "status": "OutOfSync", "health": {"status": "Missing"}, "syncWave": 51},
    ]);
    let cluster = argocd_cluster(
        backend,
        vec![root, application("kong", "1", "Synced", "Healthy")],
    )
    .await;
    let gate = tier_2_adr(&["--check", "lower-tiers-healthy", "--output", "json"]);
    let failed = run(cluster.preflight(&gate)).await;
    assert_eq!(failed.code, 1, "{}\n{}", failed.stdout, failed.stderr);
    assert_check(
        &failed,
        "lower-tiers-healthy",
        "fail",
        "lower-tiers-unhealthy",
    );
    assert_eq!(
        message(&failed, "lower-tiers-healthy"),
        "Application prometheus (tier 1.5) does not exist yet: Application platform-root lists it at wave 50 (not created yet)"
    );

    // Exempt, it is not waited for.
    let config = cluster.write(
        "c.yaml",
        "checks:\n  lower-tiers-healthy:\n    exempt: [prometheus]\n",
    );
    let mut exempt = gate.clone();
    exempt.extend(["--config", config.to_str().unwrap()]);
    let passed = run(cluster.preflight(&exempt)).await;
    assert_eq!(passed.code, 0, "{}\n{}", passed.stdout, passed.stderr);
    assert_eq!(
        message(&passed, "lower-tiers-healthy"),
        "1 Application(s) of tiers below 2 are Synced and Healthy: kong"
    );
}

async fn lower_tiers_are_watched_until_they_are_synced_and_healthy(backend: Backend) {
    let cluster = argocd_cluster(
        backend,
        vec![application("kong", "1", "OutOfSync", "Progressing")],
    )
    .await;
    let child = cluster
        .preflight_watching(&[
            "--tier",
            "1.5",
            "--check",
            "lower-tiers-healthy",
            "--wait",
            "30s",
            "--output",
            "json",
        ])
        .spawn()
        .unwrap();
    cluster.watching(APPLICATIONS).await;
    set_status(&cluster, "kong", "Synced", "Healthy");
    let run = noticed_within_a_second(child).await;

    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, "lower-tiers-healthy", "pass", "lower-tiers-healthy");
    let check = run.check("lower-tiers-healthy");
    assert!(
        check["attempts"].as_u64().unwrap() >= 2,
        "re-checked after the change: {check:#}"
    );
    assert!(
        message(&run, "lower-tiers-healthy").contains("kong"),
        "{check:#}"
    );
    assert!(
        cluster.requests_to(APPLICATIONS, true) >= 1,
        "waited with a watch on {APPLICATIONS}"
    );
    let lists = cluster.requests_to(APPLICATIONS, false);
    assert!(lists <= 3, "not polled: {lists} lists of Applications");
}

async fn a_degraded_lower_tier_fails_the_gate_and_higher_tiers_are_ignored(backend: Backend) {
    let mut degraded = application("external-secrets", "1", "Synced", "Degraded");
    degraded["status"]["health"]["message"] = json!("one resource is degraded");
    degraded["status"]["resources"] = json!([
        {"group": "", "version": "v1", "kind": "Service", "namespace": "external-secrets", "name": "webhook", "status": "Synced", "health": {"status": "Healthy"}},
        {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "external-secrets", "name": "external-secrets", "status": "Synced",
         "health": {"status": "Degraded", "message": "Deployment \"external-secrets\" exceeded its progress deadline"}}
    ]);
    let cluster = argocd_cluster(
        backend,
        vec![
            degraded,
            application("kong", "1", "Synced", "Healthy"),
            application("prometheus", "1.5", "OutOfSync", "Missing"),
            application("backstage", "2", "OutOfSync", "Degraded"),
        ],
    )
    .await;
    let args = [
        "--tier",
        "1.5",
        "--check",
        "lower-tiers-healthy",
        "--output",
        "json",
    ];

    let failed = run(cluster.preflight(&args)).await;
    assert_eq!(failed.code, 1, "{}\n{}", failed.stdout, failed.stderr);
    assert_check(
        &failed,
        "lower-tiers-healthy",
        "fail",
        "lower-tiers-unhealthy",
    );
    let text = message(&failed, "lower-tiers-healthy");
    for needle in [
        "Application external-secrets (tier 1): health Degraded (\"one resource is degraded\")",
        "resource apps/Deployment external-secrets/external-secrets: Degraded (\"Deployment \\\"external-secrets\\\" exceeded its progress deadline\")",
    ] {
        assert!(text.contains(needle), "{needle:?} in {text}");
    }
    for absent in ["webhook", "kong", "prometheus", "backstage"] {
        assert!(!text.contains(absent), "{absent:?} not in {text}");
    }

    // With tier 1 healthy, the gate opens although tiers 1.5 and 2 are not.
    set_status(&cluster, "external-secrets", "Synced", "Healthy");
    let passed = run(cluster.preflight(&args)).await;
    assert_eq!(passed.code, 0, "{}\n{}", passed.stdout, passed.stderr);
    assert_check(
        &passed,
        "lower-tiers-healthy",
        "pass",
        "lower-tiers-healthy",
    );
    let text = message(&passed, "lower-tiers-healthy");
    assert!(
        text.starts_with("2 Application(s) of tiers below 1.5 are Synced and Healthy"),
        "{text}"
    );
    assert!(
        !text.contains("prometheus") && !text.contains("backstage"),
        "{text}"
    );
}

async fn preflight(args: &[&str]) -> Run {
    let mut cmd = preflight_cmd();
    cmd.args(args);
    run(cmd).await
}

fn persistent() -> String {
    repo("examples/values-persistent.yaml")
        .to_str()
        .expect("the repository's path is UTF-8")
        .to_owned()
}

fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("a list of checks")
        .iter()
        .map(|c| c["id"].as_str().expect("each check has an id"))
        .collect()
}

/// The two lines a human plan prints for a planned check: its title, then who provides it
/// and who needs it.
fn planned_lines<'a>(stdout: &'a str, id: &str) -> (&'a str, &'a str) {
    let lines: Vec<&str> = stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with(&format!("{id} ")))
        .unwrap_or_else(|| panic!("{id} is planned:\n{stdout}"));
    (lines[at], lines.get(at + 1).copied().unwrap_or_default())
}

#[tokio::test]
async fn the_plan_says_what_provides_and_needs_each_check() {
    let values = persistent();
    let tier2 = preflight(&["plan", "--tier", "2", "--values", &values]).await;
    assert_eq!(tier2.code, 0, "{}", tier2.stderr);
    let (_, not_run) = tier2
        .stdout
        .split_once("\nNot run\n")
        .unwrap_or_else(|| panic!("a Not run section:\n{}", tier2.stdout));
    for (id, line) in [
        (
            "ingress-class",
            "provided by kong (tier 1, wave 30); needed by tier 1.5",
        ),
        ("kube-api", "provided by foundation (EKS); needed by tier 0"),
        (
            "cluster-secret-store",
            "provided by external-secrets (tier 1, wave 10); needed by tier 2",
        ),
        (
            "observability-crds",
            "provided by prometheus (tier 1.5, wave 50); needed by tier 2",
        ),
    ] {
        let (_, next) = planned_lines(&tier2.stdout, id);
        assert_eq!(next.trim(), line, "{id}:\n{}", tier2.stdout);
    }
    // Every planned check has its provided-by / needed-by line.
    let planned = tier2.stdout.split("\nNot run\n").next().unwrap();
    let titles = planned
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .count();
    let provenance = planned
        .lines()
        .filter(|l| l.trim_start().starts_with("provided by ") && l.contains("; needed by "))
        .count();
    assert_eq!(titles, 25, "{}", tier2.stdout);
    assert_eq!(provenance, titles, "{}", tier2.stdout);
    assert!(
        not_run.contains(
            "external-secrets       needed by app backstage: what an app creates for itself is checked in its own hook (preflight --app backstage)"
        ),
        "{not_run}"
    );

    // Tier 1's gate runs before tier 1's apps exist: none of what they install is checked.
    let tier1 = preflight(&[
        "plan", "--tier", "1", "--values", &values, "--output", "json",
    ])
    .await;
    assert_eq!(tier1.code, 0, "{}", tier1.stderr);
    let plan = tier1.report();
    let planned = ids(&plan["checks"]);
    for installed in ["crds", "ingress-class", "irsa"] {
        assert!(!planned.contains(&installed), "{installed}: {planned:?}");
        let left = plan["leftOut"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["id"] == installed)
            .unwrap_or_else(|| panic!("{installed} left out: {plan:#}"));
        assert_eq!(left["reason"], "above the requested tier 1", "{left:#}");
    }

    // An app's own ExternalSecret is never a gate's business, at any tier.
    for tier in ["0", "1", "1.5", "2", "3"] {
        let run = preflight(&[
            "plan", "--tier", tier, "--values", &values, "--output", "json",
        ])
        .await;
        assert_eq!(run.code, 0, "tier {tier}: {}", run.stderr);
        let plan = run.report();
        assert!(
            !ids(&plan["checks"]).contains(&"external-secrets"),
            "tier {tier}: {plan:#}"
        );
        let left = plan["leftOut"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["id"] == "external-secrets")
            .unwrap_or_else(|| panic!("tier {tier}: external-secrets left out: {plan:#}"));
        assert!(
            left["reason"]
                .as_str()
                .unwrap()
                .contains("preflight --app backstage"),
            "tier {tier}: {left:#}"
        );
    }
}

#[tokio::test]
async fn an_apps_plan_runs_what_the_app_creates_for_itself() {
    let values = persistent();
    let backstage = preflight(&[
        "plan",
        "--app",
        "backstage",
        "--values",
        &values,
        "--output",
        "json",
    ])
    .await;
    assert_eq!(backstage.code, 0, "{}", backstage.stderr);
    let plan = backstage.report();
    assert_eq!(plan["scope"]["kind"], "app", "{plan:#}");
    assert_eq!(plan["scope"]["app"], "backstage", "{plan:#}");
    assert_eq!(ids(&plan["checks"]), ["external-secrets", "postgres"]);
    for check in plan["checks"].as_array().unwrap() {
        assert!(check["providedBy"].is_object(), "{check:#}");
        assert_eq!(check["providedBy"]["app"], "backstage", "{check:#}");
        assert!(
            check["neededBy"]["apps"]
                .as_array()
                .unwrap()
                .contains(&json!("backstage")),
            "{check:#}"
        );
    }

    let kong = preflight(&["plan", "--app", "kong", "--values", &values]).await;
    assert_eq!(kong.code, 2, "{}\n{}", kong.stdout, kong.stderr);
    assert!(
        kong.stderr.contains("app kong has no hook")
            && kong
                .stderr
                .contains("(apps with hooks: backstage, oidc-config)"),
        "{}",
        kong.stderr
    );

    let nope = preflight(&["plan", "--app", "nope", "--values", &values]).await;
    assert_eq!(nope.code, 2, "{}\n{}", nope.stdout, nope.stderr);
    assert!(
        nope.stderr.contains("--app: unknown app \"nope\""),
        "{}",
        nope.stderr
    );

    let both = preflight(&[
        "plan",
        "--tier",
        "2",
        "--app",
        "backstage",
        "--values",
        &values,
    ])
    .await;
    assert_eq!(both.code, 2, "{}\n{}", both.stdout, both.stderr);
    assert!(
        both.stderr.contains("--tier") && both.stderr.contains("--app"),
        "{}",
        both.stderr
    );
}
