//! The platform's guards on its own configuration, against both API servers: ExternalDNS's
//! confinement read from its Deployment (`external-dns-confined`), the Applications' sync
//! waves (`sync-waves`) and tiers (`tier-gating`), the app-of-apps' listed children included,
//! and the Ingresses' hosts, class, issuers and certificates
//! (`ingress-hosts`). Each incident of the platform's log is reproduced on the objects' real
//! shapes; a Certificate that turns Ready while preflight waits is noticed through a watch.

#![allow(
    clippy::unwrap_used,
    reason = "the scenarios run by on_both_servers! are not #[test] functions, which clippy's allow-unwrap-in-tests covers"
)]

mod support;

use serde_json::{Value, json};
use support::*;

const SUFFIX: &str = "b-26-01-23-01.dev.goldenpathidp.io";

on_both_servers!(
    a_healthy_platform_passes_the_three_guards,
    external_dns_unconfined_too_wide_or_with_another_owner_fails,
    applications_placed_before_their_gate_are_named,
    a_child_the_root_lists_before_its_gate_fails_tier_1s_gate,
    a_root_listing_keycloak_on_an_ephemeral_cluster_fails_tier_gating,
    the_wave_a_root_lists_wins_over_the_live_annotation,
    a_band_that_moves_a_tier_moves_its_gate_and_a_disordered_one_is_refused,
    ingresses_outside_the_suffix_or_of_another_class_fail,
    a_persistent_clusters_ingress_in_a_build_subdomain_fails,
    an_ingress_naming_a_missing_cluster_issuer_fails,
    a_certificate_that_turns_ready_while_waiting_is_noticed,
);

/// A run of some checks at a gate, with a JSON report.
async fn checks(cluster: &Cluster, gate: &[&str], ids: &[&str]) -> Run {
    let mut args: Vec<&str> = gate.to_vec();
    for id in ids {
        args.extend(["--check", id]);
    }
    args.extend(["--output", "json"]);
    run(cluster.preflight(&args)).await
}

/// The tier-2 gate (with the ADR-0180 rules the ephemeral test cluster needs for it), which
/// reads tier 1.5's namespace `monitoring`.
async fn at_tier_2(cluster: &Cluster, ids: &[&str]) -> Run {
    let mut args = tier_2_adr(&["--output", "json"]);
    for id in ids {
        args.extend(["--check", id]);
    }
    run(cluster.preflight(&args)).await
}

fn message(run: &Run, id: &str) -> String {
    run.check(id)["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn hint(run: &Run, id: &str) -> String {
    run.check(id)["hint"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Grafana's Ingress as its chart renders it, with `host`, `class` and an issuer annotation.
fn grafana_ingress(host: &str, class: &str, issuer: Option<&str>) -> Value {
    let mut ingress = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "grafana", "namespace": "monitoring", "labels": {"app.kubernetes.io/name": "grafana"}},
        "spec": {
            "ingressClassName": class,
            "rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "grafana", "port": {"number": 80}}}}]}}],
            "tls": [{"hosts": [host], "secretName": "grafana-tls"}]
        }
    });
    if let Some(issuer) = issuer {
        ingress["metadata"]["annotations"] = json!({"cert-manager.io/cluster-issuer": issuer});
    }
    ingress
}

/// The Certificate cert-manager's ingress-shim makes for [`grafana_ingress`], Ready or still
/// issuing (as `kubectl describe certificate` shows it in cert-manager's docs).
fn grafana_certificate(ready: bool) -> Value {
    let condition = if ready {
        json!({"type": "Ready", "status": "True", "reason": "Ready", "message": "Certificate is up to date and has not expired", "observedGeneration": 1, "lastTransitionTime": "2026-01-23T10:02:11Z"})
    } else {
        json!({"type": "Ready", "status": "False", "reason": "DoesNotExist", "message": "Issuing certificate as Secret does not exist", "observedGeneration": 1, "lastTransitionTime": "2026-01-23T10:01:02Z"})
    };
    let mut status = json!({"conditions": [condition]});
    if ready {
        status["notAfter"] = json!("2026-04-23T09:02:10Z");
        status["revision"] = json!(1);
    }
    json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": "grafana-tls", "namespace": "monitoring", "generation": 1,
            "ownerReferences": [{"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "grafana", "uid": "6f0d1c2a-3b4c-4d5e-8f90-a1b2c3d4e5f6", "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"secretName": "grafana-tls", "dnsNames": [format!("grafana.{SUFFIX}")], "issuerRef": {"name": "letsencrypt-prod", "kind": "ClusterIssuer", "group": "cert-manager.io"}, "usages": ["digital signature", "key encipherment"]},
        "status": status
    })
}

async fn a_healthy_platform_passes_the_three_guards(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    let ids = ["external-dns-confined", "sync-waves", "ingress-hosts"];
    let run = checks(&cluster, &["--tier", "1.5"], &ids).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_check(
        &run,
        "external-dns-confined",
        "pass",
        "external-dns-confined",
    );
    assert_eq!(
        message(&run, "external-dns-confined"),
        format!(
            "ExternalDNS (Deployment external-dns/external-dns, container external-dns) is confined to this build's {SUFFIX}: --domain-filter={SUFFIX}, --txt-owner-id=goldenpath-dev-26-01-23-01, --policy=upsert-only, --registry=txt"
        )
    );
    assert_check(&run, "sync-waves", "pass", "sync-waves-in-band");
    assert!(
        message(&run, "sync-waves").starts_with("4 tier-labelled Application(s) in argocd"),
        "{}",
        message(&run, "sync-waves")
    );
    assert_check(&run, "ingress-hosts", "pass", "ingress-hosts-none");
    assert_eq!(
        message(&run, "ingress-hosts"),
        "no Ingress found in external-secrets, cert-manager, external-dns, kong, kube-system"
    );

    // Grafana's Ingress (tier 1.5) with its issued Certificate: tier 2's gate reads it, tier
    // 1.5's does not (on a first sync its namespace does not exist yet).
    cluster
        .kube
        .apply(grafana_ingress(
            &format!("grafana.{SUFFIX}"),
            "kong",
            Some("letsencrypt-prod"),
        ))
        .unwrap();
    cluster.kube.apply(grafana_certificate(true)).unwrap();
    let gate = at_tier_2(&cluster, &["ingress-hosts"]).await;
    assert_eq!(gate.code, 0, "{}\n{}", gate.stdout, gate.stderr);
    assert_check(&gate, "ingress-hosts", "pass", "ingress-hosts-valid");
    assert!(
        message(&gate, "ingress-hosts").contains(&format!(
            "1 Ingress(es) in external-secrets, cert-manager, external-dns, kong, kube-system, monitoring: hosts under {SUFFIX}, class kong, 1 certificate(s) Ready"
        )),
        "{}",
        message(&gate, "ingress-hosts")
    );
    let lower = checks(&cluster, &["--tier", "1.5"], &["ingress-hosts"]).await;
    assert_check(&lower, "ingress-hosts", "pass", "ingress-hosts-none");
}

fn set_external_dns_args(cluster: &Cluster, args: &[&str]) {
    cluster
        .kube
        .update(
            "apps/v1",
            "Deployment",
            Some("external-dns"),
            "external-dns",
            |d| d["spec"]["template"]["spec"]["containers"][0]["args"] = json!(args),
        )
        .unwrap();
}

async fn external_dns_unconfined_too_wide_or_with_another_owner_fails(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    let gate = ["--tier", "1.5"];
    let id = ["external-dns-confined"];
    let owner = "--txt-owner-id=goldenpath-dev-26-01-23-01";

    // The incident: started without --domain-filter, it would manage the whole zone.
    set_external_dns_args(
        &cluster,
        &[
            "--source=ingress",
            "--policy=sync",
            "--registry=txt",
            owner,
            "--provider=aws",
        ],
    );
    let run = checks(&cluster, &gate, &id).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_check(&run, id[0], "fail", "external-dns-unconfined");
    let text = message(&run, id[0]);
    assert!(
        text.starts_with("ExternalDNS (Deployment external-dns/external-dns, container external-dns): no --domain-filter: ExternalDNS manages every hosted zone its IAM role can reach, the persistent zone *.dev.goldenpathidp.io included"),
        "{text}"
    );
    assert!(text.ends_with("(--policy=sync, --registry=txt)"), "{text}");
    assert!(
        hint(&run, id[0]).contains(&format!("domainFilters: [{SUFFIX}]")),
        "{}",
        hint(&run, id[0])
    );
    assert_eq!(run.check(id[0])["evidence"]["policy"], "sync");

    // A filter wider than the build: the environment's persistent zone.
    set_external_dns_args(
        &cluster,
        &[
            "--domain-filter",
            SUFFIX,
            "--domain-filter",
            "dev.goldenpathidp.io",
            owner,
        ],
    );
    let run = checks(&cluster, &gate, &id).await;
    assert_check(&run, id[0], "fail", "external-dns-filter-too-wide");
    assert!(
        message(&run, id[0]).contains(&format!(
            "--domain-filter=dev.goldenpathidp.io is wider than this build's {SUFFIX}"
        )),
        "{}",
        message(&run, id[0])
    );

    // Another cluster's owner id, and the default one.
    let filter = format!("--domain-filter={SUFFIX}");
    set_external_dns_args(&cluster, &[&filter, "--txt-owner-id=goldenpath-dev"]);
    let run = checks(&cluster, &gate, &id).await;
    assert_check(&run, id[0], "fail", "external-dns-owner-id-wrong");
    assert!(
        message(&run, id[0]).contains(
            "--txt-owner-id=goldenpath-dev, not this cluster's owner id goldenpath-dev-26-01-23-01"
        ),
        "{}",
        message(&run, id[0])
    );
    assert!(
        hint(&run, id[0]).starts_with(
            "Set the external-dns chart value txtOwnerId: goldenpath-dev-26-01-23-01 (derived: goldenpath-{env}-{buildId})"
        ),
        "{}",
        hint(&run, id[0])
    );
    set_external_dns_args(&cluster, &[&filter]);
    let run = checks(&cluster, &gate, &id).await;
    assert_check(&run, id[0], "fail", "external-dns-owner-id-missing");

    // Without ownership records it stays confined, with a warning.
    set_external_dns_args(&cluster, &[&filter, "--registry=noop"]);
    let run = checks(&cluster, &gate, &id).await;
    assert_eq!(
        run.code, 0,
        "a warning does not fail the run: {}",
        run.stdout
    );
    assert_check(&run, id[0], "warn", "external-dns-registry-noop");

    // Not installed at tier 1.5's gate: tier 1 provides it.
    cluster
        .kube
        .delete(
            "apps/v1",
            "Deployment",
            Some("external-dns"),
            "external-dns",
        )
        .unwrap();
    let run = checks(&cluster, &gate, &id).await;
    assert_check(&run, id[0], "fail", "external-dns-deployment-missing");
    assert!(
        hint(&run, id[0]).contains("external-dns Application (wave 20)"),
        "{}",
        hint(&run, id[0])
    );
}

fn application(name: &str, tier: &str, wave: Option<&str>) -> Value {
    let mut app = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd", "labels": {"goldenpath.idp/tier": tier}},
        "spec": {"project": "platform", "source": {"repoURL": "https://github.com/goldenpath/platform.git", "path": format!("apps/{name}"), "targetRevision": "main"}, "destination": {"server": "https://kubernetes.default.svc", "namespace": name}}
    });
    if let Some(w) = wave {
        app["metadata"]["annotations"] = json!({"argocd.argoproj.io/sync-wave": w});
    }
    app
}

async fn applications_placed_before_their_gate_are_named(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    // The incident: a tier-2 app at wave 45 syncs before tier 2's gate (wave 99), and a
    // tier-1.5 app without a wave syncs at wave 0, before every gate.
    cluster
        .kube
        .apply(application("backstage", "2", Some("45")))
        .unwrap();
    cluster
        .kube
        .apply(application("prometheus", "1.5", None))
        .unwrap();
    cluster
        .kube
        .apply(application("platform-root", "1", Some("0")))
        .unwrap();
    let run = checks(&cluster, &["--tier", "1"], &["sync-waves"]).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_check(&run, "sync-waves", "fail", "sync-waves-violated");
    let text = message(&run, "sync-waves");
    for needle in [
        "3 Application(s) sync out of their tier's place",
        "Application backstage (tier 2) is at wave 45, outside tier 2's band 100–102 and not after tier 2's gate at wave 99",
        "Application prometheus (tier 1.5) has no argocd.argoproj.io/sync-wave: ArgoCD syncs it at wave 0, before every gate (band 50–52, tier 1.5's gate at wave 49)",
        "Application platform-root (tier 1) is at wave 0",
    ] {
        assert!(text.contains(needle), "{needle:?} in {text}");
    }
    let h = hint(&run, "sync-waves");
    assert!(
        h.starts_with("Set argocd.argoproj.io/sync-wave: \"100\" on backstage, \"10\" on platform-root, \"50\" on prometheus"),
        "{h}"
    );

    // The app-of-apps' root is exempt; a wave inside the band passes.
    let config = cluster.write(
        "c.yaml",
        "checks:\n  sync-waves:\n    exempt: [platform-root]\n",
    );
    cluster
        .kube
        .apply(application("backstage", "2", Some("100")))
        .unwrap();
    cluster
        .kube
        .apply(application("prometheus", "1.5", Some("50")))
        .unwrap();
    let run = checks(
        &cluster,
        &["--tier", "1", "--config", config.to_str().unwrap()],
        &["sync-waves"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_check(&run, "sync-waves", "pass", "sync-waves-in-band");
}

/// The app-of-apps' root Application as ArgoCD's status shows it on a first sync: its
/// children listed with the waves it will create them at, `loki` not created yet.
fn platform_root(loki_wave: i64) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "platform-root", "namespace": "argocd"},
        "spec": {"project": "default", "source": {"repoURL": "https://github.com/goldenpath/platform.git", "path": "apps", "targetRevision": "main"}, "destination": {"server": "https://kubernetes.default.svc", "namespace": "argocd"}},
        "status": {
            "sync": {"status": "OutOfSync"},
            "health": {"status": "Progressing"},
            "resources": [
                {"group": "argoproj.io", "version": "v1alpha1", "kind": "Application", "namespace": "argocd", "name": "kong", "status": "Synced", "health": {"status": "Healthy"}, "syncWave": 30},
                {"group": "argoproj.io", "version": "v1alpha1", "kind": "Application", "namespace": "argocd", "name": "loki", "status": "OutOfSync", "health": {"status": "Missing"}, "syncWave": loki_wave},
                {"version": "v1", "kind": "ConfigMap", "namespace": "argocd", "name": "platform-values", "status": "Synced"},
            ],
        },
    })
}

async fn a_child_the_root_lists_before_its_gate_fails_tier_1s_gate(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    // The incident: loki (tier 2) at wave 45 is created by the root, and synced, at wave 45,
    // before tier 1.5's gate (49) or its own (99) could see its Application.
    cluster.kube.apply(platform_root(45)).unwrap();
    assert!(
        cluster
            .kube
            .get(
                "argoproj.io/v1alpha1",
                "Application",
                Some("argocd"),
                "platform-root"
            )
            .unwrap()["status"]["resources"][1]["syncWave"]
            == 45,
        "the server kept the root's status"
    );
    let run = checks(&cluster, &["--tier", "1"], &["sync-waves"]).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_check(&run, "sync-waves", "fail", "sync-waves-violated");
    assert_eq!(
        message(&run, "sync-waves"),
        "1 Application(s) sync out of their tier's place: Application loki (tier 2, not created yet) is listed by Application platform-root at wave 45, outside tier 2's band 100–102 and not after tier 2's gate at wave 99"
    );
    assert!(
        hint(&run, "sync-waves").starts_with("Set argocd.argoproj.io/sync-wave: \"101\" on loki"),
        "{}",
        hint(&run, "sync-waves")
    );

    cluster.kube.apply(platform_root(101)).unwrap();
    let run = checks(&cluster, &["--tier", "1"], &["sync-waves"]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_check(&run, "sync-waves", "pass", "sync-waves-in-band");
    assert_eq!(
        message(&run, "sync-waves"),
        "4 tier-labelled Application(s) in argocd sync inside their tier's band, after its gate; so do 1 not created yet, as Application(s) platform-root list them"
    );
}

/// An app-of-apps root as ArgoCD's status shows it, listing `children` (name, syncWave) as
/// Applications not created yet; a `None` wave is omitted, as ArgoCD before 2.6 (or at wave 0)
/// writes it.
fn root_listing(children: &[(&str, Option<i64>)]) -> Value {
    let resources: Vec<Value> = children
        .iter()
        .map(|(name, wave)| {
            let mut r = json!({"group": "argoproj.io", "version": "v1alpha1", "kind": "Application", "namespace": "argocd", "name": name, "status": "OutOfSync", "health": {"status": "Missing"}});
            if let Some(w) = wave {
                r["syncWave"] = json!(w);
            }
            r
        })
        .collect();
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "platform-root", "namespace": "argocd"},
        "spec": {"project": "default", "source": {"repoURL": "https://github.com/goldenpath/platform.git", "path": "apps", "targetRevision": "main"}, "destination": {"server": "https://kubernetes.default.svc", "namespace": "argocd"}},
        "status": {"sync": {"status": "OutOfSync"}, "health": {"status": "Progressing"}, "resources": resources},
    })
}

async fn a_root_listing_keycloak_on_an_ephemeral_cluster_fails_tier_gating(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    // The incident: on a first sync nothing but the root exists at the tier-1 gate; the root
    // lists keycloak (tier 3), which it would create at wave 200 on an ephemeral cluster
    // (ceiling 1.5). The root itself carries no tier label and needs no exemption.
    cluster
        .kube
        .apply(root_listing(&[
            ("prometheus", Some(50)),
            ("keycloak", Some(200)),
        ]))
        .unwrap();
    let run = checks(&cluster, &["--tier", "1"], &["tier-gating"]).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_check(&run, "tier-gating", "fail", "tier-gating-violated");
    assert_eq!(
        message(&run, "tier-gating"),
        "Application keycloak (tier 3), listed by Application platform-root and not created yet, is above the ceiling 1.5, and an ephemeral cluster never runs tier 3 (Keycloak needs a persistent cluster)"
    );
    let h = hint(&run, "tier-gating");
    assert!(
        h.contains("render (and so list) an app only when its tier is at or below the ceiling")
            && h.contains("maxTier is derived from bootstrap.mode ephemeral"),
        "{h}"
    );
    assert_eq!(
        run.check("tier-gating")["evidence"]["roots"],
        "platform-root",
        "{}",
        run.stdout
    );

    // Without keycloak in the listing, the gate passes, the root exempt for being a root.
    cluster
        .kube
        .apply(root_listing(&[("prometheus", Some(50))]))
        .unwrap();
    let run = checks(&cluster, &["--tier", "1"], &["tier-gating"]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_check(&run, "tier-gating", "pass", "tier-gating-enforced");
    let text = message(&run, "tier-gating");
    assert!(
        text.ends_with("; so do 1 platform app(s) not created yet, as Application(s) platform-root list them (app-of-apps root(s) platform-root exempt: a root carries no tier of its own)"),
        "{text}"
    );
}

async fn the_wave_a_root_lists_wins_over_the_live_annotation(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    // loki exists with a wave inside tier 2's band, but the root's target manifest (what its
    // next sync applies) puts it at 45, before tier 2's gate at 99.
    cluster
        .kube
        .apply(application("loki", "2", Some("101")))
        .unwrap();
    cluster
        .kube
        .apply(root_listing(&[("kong", Some(10)), ("loki", Some(45))]))
        .unwrap();
    let run = checks(&cluster, &["--tier", "1"], &["sync-waves"]).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_check(&run, "sync-waves", "fail", "sync-waves-violated");
    assert_eq!(
        message(&run, "sync-waves"),
        "1 Application(s) sync out of their tier's place: Application loki (tier 2) is listed by platform-root at wave 45 (the wave its next sync applies; the live Application says 101), outside tier 2's band 100–102 and not after tier 2's gate at wave 99"
    );
    assert!(
        hint(&run, "sync-waves").starts_with("Set argocd.argoproj.io/sync-wave: \"101\" on loki"),
        "{}",
        hint(&run, "sync-waves")
    );

    // A root that lists no syncWave at all (ArgoCD before 2.6): its listing says nothing
    // about waves and is not judged; loki is judged by its live annotation, and passes.
    cluster
        .kube
        .apply(root_listing(&[
            ("kong", None),
            ("loki", None),
            ("keycloak", None),
        ]))
        .unwrap();
    let run = checks(&cluster, &["--tier", "1"], &["sync-waves"]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_check(&run, "sync-waves", "pass", "sync-waves-in-band");
    assert_eq!(
        message(&run, "sync-waves"),
        "5 tier-labelled Application(s) in argocd sync inside their tier's band, after its gate; Application(s) platform-root list no syncWave for any child (ArgoCD before 2.6), so their 1 platform app(s) not created yet were not judged"
    );
}

async fn a_band_that_moves_a_tier_moves_its_gate_and_a_disordered_one_is_refused(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    cluster
        .kube
        .apply(application("loki", "2", Some("92")))
        .unwrap();
    // Tier 2 moved to waves 90–102: its gate moves to 89, and loki at 92 is in place.
    let moved = cluster.write(
        "moved.yaml",
        "checks:\n  sync-waves:\n    bands: {\"2\": [90, 102]}\n",
    );
    let run = checks(
        &cluster,
        &["--tier", "1", "--config", moved.to_str().unwrap()],
        &["sync-waves"],
    )
    .await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, "sync-waves", "pass", "sync-waves-in-band");
    assert!(
        run.check("sync-waves")["evidence"]["gateWaves"]
            .as_str()
            .unwrap()
            .contains("2: 89"),
        "{}",
        run.stdout
    );

    // A band under the tier below's: a configuration error, exit 2, naming the file.
    let disordered = cluster.write(
        "disordered.yaml",
        "checks:\n  sync-waves:\n    bands: {\"2\": [40, 102]}\n",
    );
    let run = checks(
        &cluster,
        &["--tier", "1", "--config", disordered.to_str().unwrap()],
        &["sync-waves"],
    )
    .await;
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("disordered.yaml")
            && run.stderr.contains(
                "tier 2's band 40–102 (gate at wave 39) does not lie above tier 1.5's band 50–52"
            ),
        "{}",
        run.stderr
    );
}

async fn a_persistent_clusters_ingress_in_a_build_subdomain_fails(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    cluster.write(
        "values.yaml",
        "bootstrap:\n  mode: persistent\n  env: dev\nplatform:\n  storageClassReady: true\n  rdsAvailable: true\n",
    );
    // The incident: a persistent cluster's Grafana published under an ephemeral build's
    // subdomain, where that build's ExternalDNS and certificates live.
    cluster
        .kube
        .apply(grafana_ingress(&format!("grafana.{SUFFIX}"), "kong", None))
        .unwrap();
    let gate = ["--tier", "2"];
    let run = checks(&cluster, &gate, &["ingress-hosts"]).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, "ingress-hosts", "fail", "ingress-host-in-build");
    assert_eq!(
        message(&run, "ingress-hosts"),
        format!(
            "Ingress monitoring/grafana: host grafana.{SUFFIX} lies in the build subdomain {SUFFIX}, which belongs to an ephemeral cluster"
        )
    );
    assert!(
        hint(&run, "ingress-hosts")
            .contains("outside the build subdomains b-<buildId>.dev.goldenpathidp.io"),
        "{}",
        hint(&run, "ingress-hosts")
    );

    cluster
        .kube
        .apply(grafana_ingress(
            "grafana.dev.goldenpathidp.io",
            "kong",
            None,
        ))
        .unwrap();
    let run = checks(&cluster, &gate, &["ingress-hosts"]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, "ingress-hosts", "pass", "ingress-hosts-valid");
}

async fn ingresses_outside_the_suffix_or_of_another_class_fail(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    // The incident: a hard-coded host outside the build's hostSuffix.
    cluster
        .kube
        .apply(grafana_ingress("grafana.example.com", "kong", None))
        .unwrap();
    let run = at_tier_2(&cluster, &["ingress-hosts"]).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_check(&run, "ingress-hosts", "fail", "ingress-host-outside-suffix");
    assert_eq!(
        message(&run, "ingress-hosts"),
        format!("Ingress monitoring/grafana: host grafana.example.com is outside {SUFFIX}")
    );
    assert!(
        hint(&run, "ingress-hosts").contains(&format!(
            "{{app}}.{SUFFIX}, the Helm value global.hostSuffix"
        )),
        "{}",
        hint(&run, "ingress-hosts")
    );

    // Another controller's class.
    cluster
        .kube
        .apply(grafana_ingress(&format!("grafana.{SUFFIX}"), "nginx", None))
        .unwrap();
    let run = at_tier_2(&cluster, &["ingress-hosts"]).await;
    assert_check(&run, "ingress-hosts", "fail", "ingress-class-wrong");
    assert_eq!(
        message(&run, "ingress-hosts"),
        "Ingress monitoring/grafana has ingressClassName nginx, not kong"
    );
    assert!(
        hint(&run, "ingress-hosts").starts_with("Set spec.ingressClassName: kong"),
        "{}",
        hint(&run, "ingress-hosts")
    );
}

async fn an_ingress_naming_a_missing_cluster_issuer_fails(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    // The incident: a typo in the issuer's name; cert-manager never issues the certificate.
    cluster
        .kube
        .apply(grafana_ingress(
            &format!("grafana.{SUFFIX}"),
            "kong",
            Some("letsencrypt-prd"),
        ))
        .unwrap();
    let run = at_tier_2(&cluster, &["ingress-hosts"]).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_check(&run, "ingress-hosts", "fail", "ingress-issuer-missing");
    let text = message(&run, "ingress-hosts");
    assert!(
        text.contains("Ingress monitoring/grafana asks ClusterIssuer letsencrypt-prd, which does not exist (ClusterIssuers: letsencrypt-prod, letsencrypt-staging, selfsigned)"),
        "{text}"
    );
    assert!(
        text.contains(
            "Certificate monitoring/grafana-tls of Ingress monitoring/grafana does not exist yet"
        ),
        "{text}"
    );
    assert!(
        hint(&run, "ingress-hosts").starts_with("Set the annotation cert-manager.io/cluster-issuer to one of the ClusterIssuers (letsencrypt-prod, letsencrypt-staging, selfsigned)"),
        "{}",
        hint(&run, "ingress-hosts")
    );
}

async fn a_certificate_that_turns_ready_while_waiting_is_noticed(backend: Backend) {
    let cluster = Cluster::healthy_on(backend).await;
    cluster
        .kube
        .apply(grafana_ingress(
            &format!("grafana.{SUFFIX}"),
            "kong",
            Some("letsencrypt-prod"),
        ))
        .unwrap();
    cluster.kube.apply(grafana_certificate(false)).unwrap();
    let issuing = at_tier_2(&cluster, &["ingress-hosts"]).await;
    assert_check(&issuing, "ingress-hosts", "fail", "certificate-not-ready");
    assert_eq!(
        message(&issuing, "ingress-hosts"),
        "Certificate monitoring/grafana-tls of Ingress monitoring/grafana is not Ready: DoesNotExist: Issuing certificate as Secret does not exist"
    );

    let child = cluster
        .preflight_watching(&tier_2_adr(&[
            "--check",
            "ingress-hosts",
            "--wait",
            "30s",
            "--output",
            "json",
        ]))
        .spawn()
        .unwrap();
    let certificates = "/apis/cert-manager.io/v1/namespaces/monitoring/certificates";
    cluster.watching(certificates).await;
    cluster.kube.apply(grafana_certificate(true)).unwrap();
    let run = noticed_within_a_second(child).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, "ingress-hosts", "pass", "ingress-hosts-valid");
    assert!(run.check("ingress-hosts")["attempts"].as_u64().unwrap() >= 2);
    assert!(
        cluster.requests_to(certificates, true) >= 1,
        "waited with a watch"
    );
}
