//! A fresh bootstrap, replayed. The cluster starts with what Terraform and EKS leave (nodes,
//! CoreDNS, the CNI, a StorageClass, ArgoCD with the app-of-apps listing its children, none created,
//! the bootstrap ConfigMap), AWS with what Terraform creates (the hosted zone, the RDS
//! instance, the apps' remote secrets), and a real PostgreSQL with TLS standing in for RDS.
//! Then each hook runs exactly as `kubectl kustomize hooks/...` renders it (its arguments, the
//! values read from the ConfigMap in the cluster), at the moment ArgoCD would run it: each
//! tier's gate before the tier's apps exist, backstage's own hook after its ExternalSecret and
//! before its workloads, oidc-config's after Keycloak. Every one must pass there.
//!
//! Then, for each check, the same replay with its prerequisite removed: the hook that needs it
//! must fail, with that check's code.
//!
//! On the real kube-apiserver, each hook runs as its own ServiceAccount, with a token minted
//! by TokenRequest, after its ServiceAccount and RBAC (as `kubectl kustomize` renders them)
//! were applied at the hook's moment, into namespaces that exist then: the RBAC is proven
//! sufficient by the real authorizer, and, rule by rule, necessary.

#![allow(clippy::unwrap_used, reason = "the harness stops on a broken setup")]

mod support;

use std::path::PathBuf;

use fake_kube::FakeKeycloak;
use serde_json::{Value, json};
use support::moto::{Moto, REGION, external_dns_records, irsa_subject};
use support::pg::{CANARY, KEYCLOAK_PASSWORD, TestPostgres};
use support::registry::{ImageDocs, create_repository, put_image};
use support::*;

/// The stages of a bootstrap, in sync-wave order: what exists before each hook runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    /// Terraform, EKS and ArgoCD: the app-of-apps lists its child Applications, each with its
    /// wave, and has created none yet (it creates each at its wave).
    Foundation,
    /// Tier 1 synced (waves 10–40): External Secrets, cert-manager, ExternalDNS, Kong.
    Tier1,
    /// Tier 1.5 synced (waves 50–52): the Prometheus operator and its CRDs.
    Tier15,
    /// Inside the backstage Application, wave -2: its ExternalSecret, synced.
    BackstageSecret,
    /// Tier 2 synced (waves 100–102).
    Tier2,
    /// Keycloak synced (wave 200).
    Keycloak,
}

/// The hooks, in the order a bootstrap runs them, with the stage each runs after.
const HOOKS: [(&str, Stage); 7] = [
    ("tier-0", Stage::Foundation),
    ("tier-1", Stage::Foundation),
    ("tier-1-5", Stage::Tier1),
    ("tier-2", Stage::Tier15),
    ("apps/backstage", Stage::BackstageSecret),
    ("tier-3", Stage::Tier2),
    ("apps/oidc-config", Stage::Keycloak),
];

/// The platform's Applications: name, tier, wave, namespace.
const APPLICATIONS: [(&str, &str, i64, &str); 13] = [
    ("external-secrets", "1", 10, "external-secrets"),
    ("cert-manager", "1", 15, "cert-manager"),
    ("external-dns", "1", 20, "external-dns"),
    ("kong", "1", 30, "kong"),
    ("cluster-autoscaler", "1", 40, "kube-system"),
    ("prometheus", "1.5", 50, "monitoring"),
    ("alertmanager", "1.5", 51, "monitoring"),
    ("grafana-sqlite", "1.5", 52, "monitoring"),
    ("backstage", "2", 100, "backstage"),
    ("loki", "2", 101, "monitoring"),
    ("grafana-postgresql", "2", 102, "monitoring"),
    ("keycloak", "3", 200, "keycloak"),
    ("oidc-config", "3", 201, "keycloak"),
];

fn application(name: &str, tier: &str, wave: i64, namespace: &str, synced: bool) -> Value {
    let mut app = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd", "labels": {"goldenpath.idp/tier": tier}, "annotations": {"argocd.argoproj.io/sync-wave": wave.to_string()}},
        "spec": {"project": "platform", "source": {"repoURL": "https://github.com/goldenpath/platform.git", "path": format!("apps/{name}"), "targetRevision": "main"}, "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace}},
    });
    if synced {
        app["status"] = json!({
            "sync": {"status": "Synced", "revision": "4f2c1a9"},
            "health": {"status": "Healthy"},
            "operationState": {"phase": "Succeeded", "message": "successfully synced (all tasks run)"},
        });
    }
    app
}

/// The bootstrap values Terraform writes for a persistent cluster of `env`: V1 rules, ceiling
/// 3 derived from the mode, every prerequisite declared.
fn values(env: &str, base_domain: &str) -> String {
    format!(
        "bootstrap:\n  mode: persistent\n  env: {env}\nplatform:\n  rdsAvailable: true\n  storageClassReady: true\n  irsaConfigured: true\n  s3Available: true\ndns:\n  baseDomain: {base_domain}\n"
    )
}

fn issuer(name: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
        "metadata": {"name": name, "generation": 1},
        "spec": {"selfSigned": {}},
        "status": {"conditions": [if ready {
            json!({"type": "Ready", "status": "True", "reason": "IsReady", "observedGeneration": 1, "lastTransitionTime": "2026-01-02T20:06:10Z"})
        } else {
            json!({"type": "Ready", "status": "False", "reason": "ErrRegisterACMEAccount", "message": "Failed to register ACME account: 429 urn:ietf:params:acme:error:rateLimited", "observedGeneration": 1, "lastTransitionTime": "2026-01-02T20:06:10Z"})
        }]}
    })
}

const ESO_CRDS: [(&str, &str, &str); 3] = [
    (
        "externalsecrets.external-secrets.io",
        "ExternalSecret",
        "Namespaced",
    ),
    (
        "clustersecretstores.external-secrets.io",
        "ClusterSecretStore",
        "Cluster",
    ),
    (
        "secretstores.external-secrets.io",
        "SecretStore",
        "Namespaced",
    ),
];
const CERT_MANAGER_CRDS: [(&str, &str, &str); 3] = [
    ("certificates.cert-manager.io", "Certificate", "Namespaced"),
    ("clusterissuers.cert-manager.io", "ClusterIssuer", "Cluster"),
    ("issuers.cert-manager.io", "Issuer", "Namespaced"),
];
const PROMETHEUS_CRDS: [(&str, &str); 5] = [
    ("prometheuses.monitoring.coreos.com", "Prometheus"),
    ("alertmanagers.monitoring.coreos.com", "Alertmanager"),
    ("servicemonitors.monitoring.coreos.com", "ServiceMonitor"),
    ("podmonitors.monitoring.coreos.com", "PodMonitor"),
    ("prometheusrules.monitoring.coreos.com", "PrometheusRule"),
];

/// Everything outside the cluster, shared by every replay: moto with what Terraform creates
/// for each environment, the PostgreSQL standing in for RDS, Keycloak.
struct World {
    moto: Moto,
    pg: TestPostgres,
    keycloak: FakeKeycloak,
    dir: tempfile::TempDir,
}

impl World {
    async fn start() -> World {
        let moto = Moto::start();
        let pg = TestPostgres::start();
        let keycloak = FakeKeycloak::start().await.unwrap();
        let world = World {
            moto,
            pg,
            keycloak,
            dir: tempfile::tempdir().unwrap(),
        };
        // The hosted zone, with the persistent cluster's records in its own scope.
        let zone = world.moto.create_zone("goldenpathidp.io", false).await;
        let records = external_dns_records(
            "grafana.dev.goldenpathidp.io",
            "goldenpath-dev",
            "ingress/monitoring/grafana",
            true,
        );
        world.moto.add_records(&zone, &records).await;
        // What CI pushes: kong's image for both architectures, and a tag built for arm64 only.
        let registry = create_repository(&world.moto, KONG_REPOSITORY).await;
        assert_eq!(registry, ECR_REGISTRY);
        put_image(
            &world.moto,
            KONG_REPOSITORY,
            KONG_TAG,
            &ImageDocs::multi(&["amd64", "arm64"], true),
        )
        .await;
        put_image(
            &world.moto,
            KONG_REPOSITORY,
            KONG_ARM64_TAG,
            &ImageDocs::multi(&["arm64"], true),
        )
        .await;
        // What Terraform creates per environment; each other environment lacks one thing:
        // test has no RDS instance, staging's remote secret lacks the password, prod's holds a
        // wrong one.
        let secret = |password: Option<&str>| match password {
            Some(p) => json!({"username": "backstage", "password": p, "engine": "postgres"}),
            None => json!({"username": "backstage", "engine": "postgres"}),
        };
        for (env, rds, password) in [
            ("dev", true, Some(CANARY)),
            ("test", false, Some(CANARY)),
            ("staging", true, None),
            ("prod", true, Some("not-the-password")),
        ] {
            if rds {
                world
                    .moto
                    .create_instance(&format!("goldenpath-{env}"), "postgres")
                    .await;
            }
            // IRSA: test's ExternalDNS role trusts another ServiceAccount.
            world
                .moto
                .create_irsa(env, |ns, name| match (env, name) {
                    ("test", "external-dns") => irsa_subject(ns, "default"),
                    _ => irsa_subject(ns, name),
                })
                .await;
            // Loki's bucket; staging has none.
            if env != "staging" {
                world
                    .moto
                    .create_bucket(&format!("goldenpath-{env}-loki"), REGION)
                    .await;
            }
            world
                .moto
                .create_secret(
                    &format!("goldenpath/{env}/backstage/postgres"),
                    &secret(password).to_string(),
                )
                .await;
            // Keycloak's own login; prod's holds a wrong password too.
            let keycloak = if env == "prod" {
                "not-the-password"
            } else {
                KEYCLOAK_PASSWORD
            };
            world
                .moto
                .create_secret(
                    &format!("goldenpath/{env}/keycloak/postgres"),
                    &json!({"username": "keycloak_app", "password": keycloak, "engine": "postgres"})
                        .to_string(),
                )
                .await;
        }
        world
    }

    /// The settings a hook's ConfigMap-less config would carry here: the database is the test
    /// server (RDS's stand-in, its host a Helm value), Keycloak the fake one.
    fn config(&self, realm: &str) -> PathBuf {
        self.config_with(realm, KONG_TAG)
    }

    /// [`World::config`] with kong's image at `kong_tag`: on a first sync a gate cannot read
    /// its own tier's images from Applications the root has not created yet, so the platform
    /// lists them (as CI would, from the platform repository).
    fn config_with(&self, realm: &str, kong_tag: &str) -> PathBuf {
        let kc_ca = self.dir.path().join("keycloak-ca.pem");
        std::fs::write(&kc_ca, self.keycloak.ca_pem()).unwrap();
        let path = self
            .dir
            .path()
            .join(format!("preflight-{realm}-{kong_tag}.yaml"));
        std::fs::write(
            &path,
            format!(
                "checks:\n  postgres:\n    databases:\n    - app: backstage\n      secret: backstage/backstage-secrets\n      database: backstage_plugin_catalog\n      requireCreatedb: true\n      host: 127.0.0.1\n      port: {port}\n      caBundle: {ca}\n    - app: keycloak\n      database: keycloak\n      host: 127.0.0.1\n      port: {port}\n      caBundle: {ca}\n  keycloak-realm:\n    url: {}\n    caBundle: {}\n    realm: {realm}\n  image-architecture:\n    images:\n{images}",
                self.keycloak.url(),
                kc_ca.display(),
                port = self.pg.port,
                ca = self.pg.ca().display(),
                images = images(kong_tag),
            ),
        )
        .unwrap();
        path
    }
}

/// The ECR registry of the platform's images in moto (its default account), and kong's image
/// there: a multi-arch index, and a tag pushed for arm64 only.
const ECR_REGISTRY: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
const KONG_REPOSITORY: &str = "goldenpath/kong";
const KONG_TAG: &str = "3.9.1";
const KONG_ARM64_TAG: &str = "3.9.1-arm64";

/// The `images` list of the platform's config: every app's image (kong's multi-arch image
/// stands in for the others), kong's at `kong_tag`.
fn images(kong_tag: &str) -> String {
    preflight_core::platform::app_names()
        .into_iter()
        .map(|app| {
            let tag = if app == "kong" { kong_tag } else { KONG_TAG };
            format!("    - {{app: {app}, image: \"{ECR_REGISTRY}/{KONG_REPOSITORY}:{tag}\"}}\n")
        })
        .collect()
}

/// The environment and base domain of bootstrap values.
fn env_and_base_domain(values: &str) -> (String, String) {
    let doc: Value = serde_saphyr::from_str(values).unwrap();
    let env = doc["bootstrap"]["env"].as_str().unwrap().to_owned();
    let base = doc["dns"]["baseDomain"]
        .as_str()
        .unwrap_or("goldenpathidp.io")
        .to_owned();
    (env, base)
}

/// ExternalDNS's Deployment with these arguments.
fn external_dns(args: &[String]) -> Value {
    let mut all: Vec<String> = [
        "--source=service",
        "--source=ingress",
        "--provider=aws",
        "--aws-zone-type=public",
    ]
    .map(str::to_owned)
    .to_vec();
    all.extend_from_slice(args);
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "external-dns", "namespace": "external-dns"},
        "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "external-dns"}},
            "template": {"metadata": {"labels": {"app.kubernetes.io/name": "external-dns"}},
                "spec": {"serviceAccountName": "external-dns", "containers": [{"name": "external-dns", "image": "registry.k8s.io/external-dns/external-dns:v0.15.1",
                    "args": all}]}}},
    })
}

/// Grafana's Ingress at `host`, through Kong, with a certificate from `letsencrypt-prod`.
fn grafana_ingress(host: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "grafana", "namespace": "monitoring", "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt-prod"}},
        "spec": {"ingressClassName": "kong",
            "rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "grafana", "port": {"number": 80}}}}]}}],
            "tls": [{"hosts": [host], "secretName": "grafana-tls"}]},
    })
}

/// A cluster as it is after `stage`, for the environment and base domain of `values`.
async fn cluster_at(backend: Backend, stage: Stage, values: &str) -> Cluster {
    let cluster = Cluster::empty_on(backend).await;
    let kube = &cluster.kube;
    let apply = |obj: Value| kube.apply(obj).unwrap();
    // Foundation.
    apply(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "goldenpath-bootstrap", "namespace": "kube-system"},
        "data": {"values.yaml": values},
    }));
    for node in fake_kube::nodes_from_template(&eks_node(), 3, true) {
        apply(node);
    }
    apply(coredns(true));
    apply(aws_node(3, 3));
    apply(storage_class("gp3", "ebs.csi.aws.com", true));
    // The AWS load balancer controller (an EKS add-on here) and its fail-closed pod webhook,
    // served; ArgoCD's server sits behind an ALB with pod readiness gates, so the webhook
    // intercepts the pods of ArgoCD's namespace, where the app-of-apps creates Applications.
    apply(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argocd", "labels": {"elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"}}}),
    );
    apply(lb_controller_webhook());
    apply(endpoint_slice("aws-load-balancer-webhook-service", true));
    apply(crd(
        "applications.argoproj.io",
        "Application",
        "Namespaced",
        &["v1alpha1"],
        true,
    ));
    apply(crd(
        "appprojects.argoproj.io",
        "AppProject",
        "Namespaced",
        &["v1alpha1"],
        true,
    ));
    let synced_through = match stage {
        Stage::Foundation => None,
        Stage::Tier1 => Some(40),
        Stage::Tier15 | Stage::BackstageSecret => Some(52),
        Stage::Tier2 => Some(102),
        Stage::Keycloak => Some(200),
    };
    // The app-of-apps: it creates its children wave by wave, so a child exists only once its
    // wave was reached; its status lists every child with its wave, created or not.
    let resources: Vec<Value> = APPLICATIONS
        .iter()
        .map(|(name, _, wave, _)| {
            let created = synced_through.is_some_and(|w| *wave <= w);
            json!({"group": "argoproj.io", "version": "v1alpha1", "kind": "Application", "namespace": "argocd", "name": name,
                "status": if created { "Synced" } else { "OutOfSync" },
                "health": {"status": if created { "Healthy" } else { "Missing" }},
                "syncWave": wave})
        })
        .collect();
    apply(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "platform-root", "namespace": "argocd"},
        "spec": {"project": "default", "source": {"repoURL": "https://github.com/goldenpath/platform.git", "path": "apps", "targetRevision": "main"}, "destination": {"server": "https://kubernetes.default.svc", "namespace": "argocd"}},
        "status": {"sync": {"status": "OutOfSync"}, "health": {"status": "Progressing"}, "resources": resources},
    }));
    for (name, tier, wave, ns) in APPLICATIONS {
        let synced = synced_through.is_some_and(|w| wave <= w);
        if !synced {
            continue;
        }
        let mut app = application(name, tier, wave, ns, synced);
        if name == "kong" {
            // Where ArgoCD records an app's image: its Helm parameters.
            app["spec"]["source"]["helm"] = json!({"parameters": [
                {"name": "image.repository", "value": format!("{ECR_REGISTRY}/{KONG_REPOSITORY}")},
                {"name": "image.tag", "value": KONG_TAG},
            ]});
        }
        apply(app);
        // A synced Application's namespace exists (CreateNamespace=true).
        if synced {
            apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
        }
    }
    if stage >= Stage::Tier1 {
        for (name, kind, scope) in ESO_CRDS {
            apply(crd(name, kind, scope, &["v1", "v1beta1"], true));
        }
        for (name, kind, scope) in CERT_MANAGER_CRDS {
            apply(crd(name, kind, scope, &["v1"], true));
        }
        apply(secret_store("v1", true, "store validated"));
        apply(service_account(
            "external-secrets",
            "external-secrets",
            Some("arn:aws:iam::123456789012:role/external-secrets"),
        ));
        apply(service_account(
            "external-dns",
            "external-dns",
            Some("arn:aws:iam::123456789012:role/external-dns"),
        ));
        apply(
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "kong"}, "spec": {"controller": "ingress-controllers.konghq.com/kong"}}),
        );
        for name in ["selfsigned", "letsencrypt-staging", "letsencrypt-prod"] {
            apply(issuer(name, true));
        }
    }
    if stage >= Stage::Tier1 {
        // ExternalDNS as its chart runs it on a persistent cluster: confined to the
        // environment's zone, owning its records under the contract's owner id.
        let (env, base_domain) = env_and_base_domain(values);
        apply(external_dns(&[
            format!("--domain-filter={env}.{base_domain}"),
            format!("--txt-owner-id=goldenpath-{env}"),
            "--policy=upsert-only".to_owned(),
            "--registry=txt".to_owned(),
        ]));
    }
    if stage >= Stage::Tier15 {
        for (name, kind) in PROMETHEUS_CRDS {
            apply(crd(name, kind, "Namespaced", &["v1"], true));
        }
        // Grafana's Ingress, with the Certificate cert-manager issued for it.
        let (env, base_domain) = env_and_base_domain(values);
        apply(grafana_ingress(&format!("grafana.{env}.{base_domain}")));
        apply(json!({
            "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"name": "grafana-tls", "namespace": "monitoring", "generation": 1},
            "spec": {"secretName": "grafana-tls", "dnsNames": [format!("grafana.{env}.{base_domain}")], "issuerRef": {"name": "letsencrypt-prod", "kind": "ClusterIssuer"}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "Certificate is up to date and has not expired", "observedGeneration": 1, "lastTransitionTime": "2026-01-23T10:00:00Z"}]},
        }));
    }
    if stage >= Stage::BackstageSecret {
        apply(json!({
            "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
            "metadata": {"name": "backstage-secrets", "namespace": "backstage", "generation": 1},
            "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "aws-secretsmanager", "kind": "ClusterSecretStore"}, "target": {"name": "backstage-secrets", "creationPolicy": "Owner"},
                     "data": [
                        {"secretKey": "POSTGRES_USER", "remoteRef": {"key": "goldenpath/dev/backstage/postgres", "property": "username"}},
                        {"secretKey": "POSTGRES_PASSWORD", "remoteRef": {"key": "goldenpath/dev/backstage/postgres", "property": "password"}},
                        {"secretKey": "GITHUB_TOKEN", "remoteRef": {"key": "goldenpath/dev/backstage/github", "property": "token"}}]},
            "status": {"refreshTime": "2026-01-23T10:00:00Z", "syncedResourceVersion": "1-abc", "conditions": [{"type": "Ready", "status": "True", "reason": "SecretSynced", "message": "secret synced", "lastTransitionTime": "2026-01-23T10:00:00Z"}]},
        }));
        apply(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "backstage-secrets", "namespace": "backstage"},
            "data": {"POSTGRES_USER": b64("backstage"), "POSTGRES_PASSWORD": b64(CANARY), "GITHUB_TOKEN": b64("ghp_not_a_real_token")},
        }));
    }
    cluster
}

/// The arguments of a hook's container, as `kubectl kustomize` renders its Job.
fn rendered_args(dir: &str) -> Vec<String> {
    let job = render(&format!("hooks/{dir}/job"))
        .into_iter()
        .find(|d| d["kind"] == "Job")
        .expect("a Job");
    job["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// What a hook run left: its exit code, stderr, and the JSON report it also wrote.
struct HookRun {
    code: i32,
    stdout: String,
    stderr: String,
    report: Value,
}

impl HookRun {
    fn check(&self, id: &str) -> Value {
        self.report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no check {id} in {:#}", self.report))
    }
}

/// Runs a hook's rendered command against `cluster`. Only the deadline changes: a run that
/// should pass keeps waiting, but for 10 s rather than the hook's 5 minutes, so that a hook
/// that would hang on a first sync fails this test quickly; a run that should fail makes one
/// attempt (no `--wait`). A JSON report is requested besides the hook's own human one, for the
/// assertions.
async fn run_hook(
    world: &World,
    cluster: &Cluster,
    dir: &str,
    config: &PathBuf,
    wait: bool,
) -> HookRun {
    run_hook_as(
        world,
        cluster,
        &cluster.path("kubeconfig"),
        dir,
        config,
        wait,
    )
    .await
}

/// [`run_hook`] with the credentials of `kubeconfig`.
async fn run_hook_as(
    world: &World,
    cluster: &Cluster,
    kubeconfig: &std::path::Path,
    dir: &str,
    config: &PathBuf,
    wait: bool,
) -> HookRun {
    let mut args = rendered_args(dir);
    let at = args.iter().position(|a| a == "--wait").expect("--wait");
    if wait {
        args[at + 1] = "10s".to_owned();
    } else {
        args.drain(at..at + 2);
    }
    let report_path = cluster.path(&format!("{}.json", dir.replace('/', "-")));
    // A run that writes no report must not be judged on the previous run's.
    let _ = std::fs::remove_file(&report_path);
    let mut cmd = preflight_cmd();
    cmd.args(&args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--output")
        .arg(format!("json={}", report_path.display()))
        .env("PREFLIGHT_CONFIG", config)
        .env("HOME", cluster.dir.path());
    world.moto.env(&mut cmd);
    let out = run(cmd).await;
    let report = std::fs::read_to_string(&report_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    for text in [&out.stdout, &out.stderr, &report.to_string()] {
        for password in [CANARY, KEYCLOAK_PASSWORD, "not-the-password"] {
            assert!(!text.contains(password), "{dir} printed a password");
        }
    }
    HookRun {
        code: out.code,
        stdout: out.stdout,
        stderr: out.stderr,
        report,
    }
}

fn ids(run: &HookRun) -> Vec<String> {
    run.report["checks"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| c["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The ServiceAccount, Roles, ClusterRole and bindings of a hook, as rendered from
/// `hooks/{dir}/rbac`.
fn hook_rbac(dir: &str) -> Vec<Value> {
    render(&format!("hooks/{dir}/rbac"))
}

/// On the real server: applies the hook's objects (its RBAC and its Job) as ArgoCD would at
/// this moment, without creating any namespace, and returns a kubeconfig with its
/// ServiceAccount's own token. On the fake (which does not authorize), the test's kubeconfig.
fn hook_identity(cluster: &Cluster, dir: &str) -> PathBuf {
    let Kube::Real(plane) = &cluster.kube else {
        return cluster.path("kubeconfig");
    };
    let job = render(&format!("hooks/{dir}/job"));
    for doc in &job {
        plane.apply_strict(doc.clone()).unwrap_or_else(|e| {
            panic!(
                "{dir}: ArgoCD cannot create {} {} at this moment: {e:#}",
                doc["kind"], doc["metadata"]["name"]
            )
        });
    }
    let account = job
        .iter()
        .find(|d| d["kind"] == "ServiceAccount")
        .expect("a ServiceAccount");
    let (ns, name) = (
        account["metadata"]["namespace"].as_str().unwrap(),
        account["metadata"]["name"].as_str().unwrap(),
    );
    cluster.write(
        &format!("{}.kubeconfig", dir.replace('/', "-")),
        &plane.kubeconfig_for(ns, name).unwrap(),
    )
}

/// The report's checks that ended `forbidden`.
fn forbidden(run: &HookRun) -> Vec<Value> {
    run.report["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["code"] == "forbidden")
        .cloned()
        .collect()
}

on_both_servers!(every_hook_passes_at_its_moment_of_a_fresh_bootstrap);

/// Every hook passes at its moment of a fresh bootstrap, with what it should check; on the
/// real server, as its own ServiceAccount with only the RBAC it ships.
async fn every_hook_passes_at_its_moment_of_a_fresh_bootstrap(backend: Backend) {
    let world = World::start().await;
    let config = world.config("goldenpath");
    let values = values("dev", "goldenpathidp.io");
    let mut checked = Vec::new();
    for (dir, stage) in HOOKS {
        let cluster = cluster_at(backend, stage, &values).await;
        let identity = hook_identity(&cluster, dir);
        let run = run_hook_as(&world, &cluster, &identity, dir, &config, true).await;
        assert_eq!(
            forbidden(&run),
            Vec::<Value>::new(),
            "{dir}: its RBAC is short"
        );
        assert_eq!(
            run.code, 0,
            "{dir} after {stage:?} fails on a first sync:\n{}\n{}",
            run.stdout, run.stderr
        );
        assert!(
            run.stderr
                .contains("values read from ConfigMap kube-system/goldenpath-bootstrap")
                || run.report["notes"]
                    .to_string()
                    .contains("values read from ConfigMap"),
            "{dir} reads its values from the cluster: {}",
            run.report["notes"]
        );
        checked.extend(ids(&run));
    }
    // Together the hooks run every check of the catalogue.
    let mut checked: Vec<String> = checked;
    checked.sort();
    checked.dedup();
    let mut all: Vec<String> = preflight_core::checks::ids()
        .into_iter()
        .map(str::to_owned)
        .collect();
    all.sort();
    assert_eq!(checked, all);
    // The moments matter: a tier's gate run where its own tier's apps would already be needed
    // is not what runs here, but each gate run one stage too early must fail.
    for (dir, stage, id) in [
        ("tier-1-5", Stage::Foundation, "lower-tiers-healthy"),
        ("tier-2", Stage::Tier1, "lower-tiers-healthy"),
        ("apps/backstage", Stage::Tier15, "external-secrets"),
    ] {
        let cluster = cluster_at(backend, stage, &values).await;
        let run = run_hook(&world, &cluster, dir, &config, false).await;
        assert_eq!(run.code, 1, "{dir} before its moment:\n{}", run.stdout);
        assert_eq!(
            run.check(id)["status"],
            "fail",
            "{dir}: {:#}",
            run.check(id)
        );
    }
}

/// Waits until the authorizer applies a change of RBAC: `rule` (of a Role in `namespace`, or
/// of a ClusterRole) granted to `account` or not.
fn await_rule(
    plane: &control_plane::ControlPlane,
    account: (&str, &str),
    rule: &Value,
    namespace: Option<&str>,
    granted: bool,
) {
    let resource = (
        rule["apiGroups"][0].as_str().unwrap(),
        rule["resources"][0].as_str().unwrap(),
    );
    let name = rule["resourceNames"][0].as_str();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while plane
        .allows(account, "list", resource, namespace, name)
        .unwrap()
        != granted
    {
        assert!(
            std::time::Instant::now() < deadline,
            "RBAC change not applied: {rule}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The rule a forbidden failure's hint tells to grant, parsed: (the line naming the kind of
/// role, the rule under it).
fn hinted_rule(text: &str) -> (String, Value) {
    let (head, yaml) = text
        .split_once(":\n")
        .unwrap_or_else(|| panic!("no rule in {text:?}"));
    let rules: Value = serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{e}: {yaml}"));
    (head.to_owned(), rules[0].clone())
}

/// Each rule of each hook's RBAC is needed, and its absence is named exactly: at the hook's
/// moment, on the real server, the hook's Role (or ClusterRole) is applied without one rule;
/// the hook then fails, and every check that ends `forbidden` names that rule (verb,
/// resource, API group, namespace, resource name) and hints exactly it, in the right kind of
/// role. Without the bootstrap ConfigMap's rule, the run stops before any check (exit 2),
/// naming it.
#[tokio::test(flavor = "multi_thread")]
async fn every_rule_of_every_hooks_rbac_is_needed_and_named_when_missing() {
    let world = World::start().await;
    let config = world.config("goldenpath");
    let values = values("dev", "goldenpathidp.io");
    let mut proven = 0;
    for (dir, stage) in HOOKS {
        let cluster = cluster_at(Backend::Real, stage, &values).await;
        let identity = hook_identity(&cluster, dir);
        let plane = cluster.kube.real();
        let rbac = hook_rbac(dir);
        let account = rbac.iter().find(|d| d["kind"] == "ServiceAccount").unwrap();
        let account = (
            account["metadata"]["namespace"].as_str().unwrap(),
            account["metadata"]["name"].as_str().unwrap(),
        );
        for role in rbac
            .iter()
            .filter(|d| d["kind"] == "Role" || d["kind"] == "ClusterRole")
        {
            let namespace = role["metadata"]["namespace"].as_str();
            let expected_role = match namespace {
                Some(ns) => format!(
                    "grant it to preflight's ServiceAccount in a Role in the namespace {ns:?}"
                ),
                None => "grant it to preflight's ServiceAccount in a ClusterRole".to_owned(),
            };
            for (i, rule) in role["rules"].as_array().unwrap().iter().enumerate() {
                let mut without = role.clone();
                without["rules"].as_array_mut().unwrap().remove(i);
                plane.apply_strict(without).unwrap();
                await_rule(plane, account, rule, namespace, false);
                let run = run_hook_as(&world, &cluster, &identity, dir, &config, false).await;
                let what = format!("{dir} without {rule} in its {}", role["kind"]);
                if rule["resources"][0] == "configmaps" {
                    assert_eq!(run.code, 2, "{what}: {}", run.stderr);
                    let at = run
                        .stderr
                        .find("grant it")
                        .unwrap_or_else(|| panic!("{what}: {}", run.stderr));
                    let hint = run.stderr[at..].split("\n(or").next().unwrap();
                    assert_eq!(
                        hinted_rule(hint),
                        (expected_role.clone(), rule.clone()),
                        "{what}"
                    );
                } else {
                    assert_eq!(
                        run.code, 1,
                        "{what} must fail:\n{}\n{}",
                        run.stdout, run.stderr
                    );
                    let denied = forbidden(&run);
                    assert!(
                        !denied.is_empty(),
                        "{what}: no check ended forbidden:\n{}",
                        run.stdout
                    );
                    for c in &denied {
                        let e = &c["evidence"];
                        assert!(
                            rule["verbs"].as_array().unwrap().contains(&e["verb"]),
                            "{what}: {c:#}"
                        );
                        assert_eq!(
                            (
                                &e["apiGroup"],
                                &e["resource"],
                                e["namespace"].as_str(),
                                e["resourceName"].as_str()
                            ),
                            (
                                &rule["apiGroups"][0],
                                &rule["resources"][0],
                                namespace,
                                rule["resourceNames"][0].as_str()
                            ),
                            "{what}: {c:#}"
                        );
                        assert_eq!(
                            hinted_rule(c["hint"].as_str().unwrap()),
                            (expected_role.clone(), rule.clone()),
                            "{what}: {c:#}"
                        );
                    }
                }
                plane.apply_strict(role.clone()).unwrap();
                await_rule(plane, account, rule, namespace, true);
                proven += 1;
            }
        }
    }
    assert!(proven > 20, "only {proven} rules");
}

/// An app's hook waiting for its synced Secret watches it by name, with only its own RBAC
/// (`resourceNames`), on the real server: the Secret appearing is noticed within a second,
/// with the backoff at minutes, which only a permitted watch explains.
#[tokio::test(flavor = "multi_thread")]
async fn an_app_hook_watches_its_secret_by_name_with_its_own_rbac() {
    let world = World::start().await;
    let values = values("dev", "goldenpathidp.io");
    let cluster = cluster_at(Backend::Real, Stage::BackstageSecret, &values).await;
    let identity = hook_identity(&cluster, "apps/backstage");
    let secret = cluster
        .kube
        .get("v1", "Secret", Some("backstage"), "backstage-secrets")
        .unwrap();
    cluster
        .kube
        .delete("v1", "Secret", Some("backstage"), "backstage-secrets")
        .unwrap();
    let config = format!(
        "{}runner:\n  backoffInitial: 2m\n  backoffMax: 4m\n",
        std::fs::read_to_string(world.config("goldenpath")).unwrap()
    );
    let config = cluster.write("long-backoff.yaml", &config);
    let plane = cluster.kube.real();
    let mark = plane.audit_mark();
    let (run, changed) = tokio::join!(
        run_hook_as(&world, &cluster, &identity, "apps/backstage", &config, true),
        async {
            tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
            let changed = std::time::Instant::now();
            cluster.kube.apply(secret).unwrap();
            changed
        }
    );
    assert!(
        changed.elapsed() < std::time::Duration::from_secs(1),
        "the Secret was not noticed through a watch: {:?}\n{}",
        changed.elapsed(),
        run.stderr
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(forbidden(&run), Vec::<Value>::new());
    let watched = plane
        .audit(mark, "system:serviceaccount:backstage:preflight-backstage")
        .into_iter()
        .any(|(verb, uri, code)| {
            verb == "watch"
                && uri.starts_with("/api/v1/namespaces/backstage/secrets?")
                && uri.contains("metadata.name%3Dbackstage-secrets")
                && code == 200
        });
    assert!(
        watched,
        "the hook's ServiceAccount watched the Secret by name"
    );
}

/// A hook's objects cannot be created before their namespace exists: the real server refuses
/// them, which is why each hook's RBAC may only name namespaces that exist at its moment.
#[tokio::test(flavor = "multi_thread")]
async fn the_real_server_refuses_a_hooks_role_before_its_namespace_exists() {
    let values = values("dev", "goldenpathidp.io");
    // Backstage's own hook, one stage before its Application creates its namespace.
    let cluster = cluster_at(Backend::Real, Stage::Tier15, &values).await;
    let role = hook_rbac("apps/backstage")
        .into_iter()
        .find(|d| d["kind"] == "Role" && d["metadata"]["namespace"] == "backstage")
        .expect("a Role in backstage");
    let err = cluster.kube.real().apply_strict(role).unwrap_err();
    assert!(
        format!("{err:#}").contains("namespaces \"backstage\" not found"),
        "{err:#}"
    );
}

/// One prerequisite removed: the hook that needs it, and the check and code it must fail with.
struct Gap {
    what: &'static str,
    hook: &'static str,
    stage: Stage,
    /// The environment and base domain of the values (moto holds a gap per environment).
    env: &'static str,
    base_domain: &'static str,
    realm: &'static str,
    /// The tag of kong's image the platform's config lists.
    kong_tag: &'static str,
    remove: fn(&Cluster),
    check: &'static str,
    code: &'static str,
    /// Text the message must hold.
    says: &'static str,
    /// The gap is a fault only the fake server can inject (an old `/version`).
    fake_only: bool,
}

impl Gap {
    const fn on_the_fake_only(self) -> Gap {
        Gap {
            fake_only: true,
            ..self
        }
    }
}

fn keep(_: &Cluster) {}

const fn gap(
    what: &'static str,
    hook: &'static str,
    stage: Stage,
    remove: fn(&Cluster),
    check: &'static str,
    code: &'static str,
    says: &'static str,
) -> Gap {
    Gap {
        what,
        hook,
        stage,
        env: "dev",
        base_domain: "goldenpathidp.io",
        realm: "goldenpath",
        kong_tag: KONG_TAG,
        remove,
        check,
        code,
        says,
        fake_only: false,
    }
}

fn gaps() -> Vec<Gap> {
    vec![
        gap(
            "an unsupported Kubernetes version",
            "tier-0",
            Stage::Foundation,
            |c| {
                c.kube.fake().set_version("v1.27.16-eks-2d5f260", "1", "27");
            },
            "kube-api",
            "version-unsupported",
            "1.27",
        )
        .on_the_fake_only(),
        gap(
            "no node Ready",
            "tier-0",
            Stage::Foundation,
            |c| {
                for node in fake_kube::nodes_from_template(&eks_node(), 3, false) {
                    c.kube.apply(node).unwrap();
                }
            },
            "nodes-ready",
            "nodes-not-ready",
            "NotReady",
        ),
        gap(
            "CoreDNS missing",
            "tier-0",
            Stage::Foundation,
            |c| {
                c.kube
                    .delete("apps/v1", "Deployment", Some("kube-system"), "coredns")
                    .unwrap();
            },
            "coredns",
            "coredns-missing",
            "kube-system/coredns",
        ),
        gap(
            "no CNI",
            "tier-0",
            Stage::Foundation,
            |c| {
                c.kube
                    .delete("apps/v1", "DaemonSet", Some("kube-system"), "aws-node")
                    .unwrap();
            },
            "cni",
            "cni-missing",
            "kube-system/aws-node",
        ),
        gap(
            "the load balancer controller's fail-closed webhook without a ready endpoint",
            "tier-1",
            Stage::Foundation,
            |c| {
                c.kube
                    .apply(endpoint_slice("aws-load-balancer-webhook-service", false))
                    .unwrap();
            },
            "admission-webhooks",
            "admission-webhook-unavailable",
            "kube-system/aws-load-balancer-webhook-service",
        ),
        Gap {
            env: "prod",
            ..gap(
                "Keycloak's remote secret's password wrong",
                "tier-3",
                Stage::Tier2,
                keep,
                "postgres",
                "wrong-password",
                "as keycloak_app to database keycloak",
            )
        },
        Gap {
            kong_tag: KONG_ARM64_TAG,
            ..gap(
                "an app's image pushed for arm64 only, on amd64 nodes",
                "tier-1",
                Stage::Foundation,
                keep,
                "image-architecture",
                "image-architecture-mismatch",
                "goldenpath/kong:3.9.1-arm64",
            )
        },
        gap(
            "the app-of-apps placing a tier-2 app in tier 1's waves",
            "tier-1",
            Stage::Foundation,
            |c| {
                c.kube
                    .update(
                        "argoproj.io/v1alpha1",
                        "Application",
                        Some("argocd"),
                        "platform-root",
                        |root| {
                            for child in root["status"]["resources"].as_array_mut().unwrap() {
                                if child["name"] == "loki" {
                                    child["syncWave"] = json!(45);
                                }
                            }
                        },
                    )
                    .unwrap();
            },
            "sync-waves",
            "sync-waves-violated",
            "loki",
        ),
        gap(
            "ExternalDNS started without --domain-filter",
            "tier-1-5",
            Stage::Tier1,
            |c| {
                c.kube
                    .apply(external_dns(&["--txt-owner-id=goldenpath-dev".to_owned()]))
                    .unwrap();
            },
            "external-dns-confined",
            "external-dns-unconfined",
            "no --domain-filter",
        ),
        gap(
            "Grafana's Ingress with a host outside the cluster's suffix",
            "tier-2",
            Stage::Tier15,
            |c| {
                c.kube
                    .apply(grafana_ingress("grafana.example.com"))
                    .unwrap();
            },
            "ingress-hosts",
            "ingress-host-outside-suffix",
            "grafana.example.com",
        ),
        Gap {
            env: "test",
            ..gap(
                "ExternalDNS's IAM role trusting another ServiceAccount",
                "tier-1",
                Stage::Foundation,
                keep,
                "irsa-roles",
                "irsa-trust-mismatch",
                "system:serviceaccount:external-dns:default",
            )
        },
        Gap {
            env: "staging",
            ..gap(
                "Loki's bucket missing",
                "tier-2",
                Stage::Tier15,
                keep,
                "s3-bucket",
                "s3-bucket-not-found",
                "platform.s3Available is declared true",
            )
        },
        Gap {
            base_domain: "nozone.io",
            ..gap(
                "no hosted zone for the base domain",
                "tier-1",
                Stage::Foundation,
                keep,
                "route53-zone",
                "route53-zone-missing",
                "nozone.io",
            )
        },
        gap(
            "an Application without its tier",
            "tier-1-5",
            Stage::Tier1,
            |c| {
                c.kube
                    .update(
                        "argoproj.io/v1alpha1",
                        "Application",
                        Some("argocd"),
                        "kong",
                        |a| {
                            a["metadata"]["labels"] = json!({});
                        },
                    )
                    .unwrap();
            },
            "tier-gating",
            "tier-gating-violated",
            "kong",
        ),
        gap(
            "a tier-1 app Degraded",
            "tier-1-5",
            Stage::Tier1,
            |c| {
                c.kube.update("argoproj.io/v1alpha1", "Application", Some("argocd"), "kong", |a| {
                a["status"]["health"] = json!({"status": "Degraded", "message": "Deployment \"kong-kong\" exceeded its progress deadline"});
            }).unwrap();
            },
            "lower-tiers-healthy",
            "lower-tiers-unhealthy",
            "kong",
        ),
        gap(
            "External Secrets installed without its CRDs",
            "tier-1-5",
            Stage::Tier1,
            |c| {
                c.kube
                    .delete(
                        "apiextensions.k8s.io/v1",
                        "CustomResourceDefinition",
                        None,
                        "externalsecrets.external-secrets.io",
                    )
                    .unwrap();
            },
            "crds",
            "crds-missing",
            "externalsecrets.external-secrets.io",
        ),
        gap(
            "IngressClass kong not found",
            "tier-1-5",
            Stage::Tier1,
            |c| {
                c.kube
                    .delete("networking.k8s.io/v1", "IngressClass", None, "kong")
                    .unwrap();
            },
            "ingress-class",
            "ingress-class-missing",
            "kong",
        ),
        gap(
            "ExternalDNS without its IRSA role",
            "tier-1-5",
            Stage::Tier1,
            |c| {
                c.kube
                    .apply(service_account("external-dns", "external-dns", None))
                    .unwrap();
            },
            "irsa",
            "irsa-missing",
            "ServiceAccount external-dns/external-dns has no eks.amazonaws.com/role-arn",
        ),
        gap(
            "no default StorageClass",
            "tier-1-5",
            Stage::Tier1,
            |c| {
                c.kube
                    .apply(storage_class("gp3", "ebs.csi.aws.com", false))
                    .unwrap();
            },
            "storage-class",
            "no-default-storage-class",
            "platform.storageClassReady is declared true",
        ),
        gap(
            "the ClusterSecretStore not Ready",
            "tier-2",
            Stage::Tier15,
            |c| {
                c.kube
                    .apply(secret_store(
                        "v1",
                        false,
                        "could not get provider client: AccessDeniedException",
                    ))
                    .unwrap();
            },
            "cluster-secret-store",
            "secret-store-not-ready",
            "AccessDeniedException",
        ),
        gap(
            "the Prometheus operator's CRDs missing",
            "tier-2",
            Stage::Tier15,
            |c| {
                c.kube
                    .delete(
                        "apiextensions.k8s.io/v1",
                        "CustomResourceDefinition",
                        None,
                        "servicemonitors.monitoring.coreos.com",
                    )
                    .unwrap();
            },
            "observability-crds",
            "crds-missing",
            "servicemonitors.monitoring.coreos.com",
        ),
        gap(
            "a ClusterIssuer failing ACME registration",
            "tier-2",
            Stage::Tier15,
            |c| {
                c.kube.apply(issuer("letsencrypt-prod", false)).unwrap();
            },
            "cluster-issuers",
            "cluster-issuer-not-ready",
            "letsencrypt-prod",
        ),
        Gap {
            env: "test",
            ..gap(
                "no RDS instance",
                "tier-2",
                Stage::Tier15,
                keep,
                "rds-instance",
                "rds-instance-not-found",
                "platform.rdsAvailable is declared true in the bootstrap contract",
            )
        },
        Gap {
            env: "staging",
            ..gap(
                "the remote secret without the password",
                "tier-2",
                Stage::Tier15,
                keep,
                "secrets-manager",
                "remote-secret-properties-missing",
                "password",
            )
        },
        Gap {
            env: "prod",
            ..gap(
                "the remote secret's password wrong",
                "tier-2",
                Stage::Tier15,
                keep,
                "postgres",
                "wrong-password",
                "backstage",
            )
        },
        gap(
            "the ExternalSecret failing to sync",
            "apps/backstage",
            Stage::BackstageSecret,
            |c| {
                c.kube.update("external-secrets.io/v1", "ExternalSecret", Some("backstage"), "backstage-secrets", |e| {
                e["status"]["conditions"] = json!([{"type": "Ready", "status": "False", "reason": "SecretSyncedError", "message": "could not get secret data from provider", "lastTransitionTime": "2026-01-23T10:00:00Z"}]);
            }).unwrap();
            },
            "external-secrets",
            "secret-not-synced",
            "SecretSyncedError",
        ),
        gap(
            "the synced password wrong",
            "apps/backstage",
            Stage::BackstageSecret,
            |c| {
                c.set_secret_key(
                    "backstage",
                    "backstage-secrets",
                    "POSTGRES_PASSWORD",
                    "stale-password",
                );
            },
            "postgres",
            "wrong-password",
            "backstage",
        ),
        Gap {
            realm: "platform",
            ..gap(
                "the Keycloak realm missing",
                "apps/oidc-config",
                Stage::Keycloak,
                keep,
                "keycloak-realm",
                "keycloak-realm-missing",
                "platform",
            )
        },
    ]
}

on_both_servers!(each_hook_fails_on_a_real_gap_below_it);

/// For each check, the replay with its prerequisite removed: the hook at whose moment it is
/// needed fails, with that check's code, and says what is wrong. On the real server, as the
/// hook's own ServiceAccount: a gap is never hidden behind a `forbidden`.
async fn each_hook_fails_on_a_real_gap_below_it(backend: Backend) {
    let world = World::start().await;
    let gaps = gaps();
    for g in gaps
        .iter()
        .filter(|g| backend == Backend::Fake || !g.fake_only)
    {
        let cluster = cluster_at(backend, g.stage, &values(g.env, g.base_domain)).await;
        (g.remove)(&cluster);
        let identity = hook_identity(&cluster, g.hook);
        let config = world.config_with(g.realm, g.kong_tag);
        let run = run_hook_as(&world, &cluster, &identity, g.hook, &config, false).await;
        assert_eq!(
            run.code, 1,
            "{}: {} must fail:\n{}\n{}",
            g.what, g.hook, run.stdout, run.stderr
        );
        let c = run.check(g.check);
        assert_eq!(
            (c["status"].as_str(), c["code"].as_str()),
            (Some("fail"), Some(g.code)),
            "{}: {c:#}",
            g.what
        );
        assert!(
            c["message"].as_str().unwrap_or_default().contains(g.says),
            "{}: {c:#}",
            g.what
        );
        assert!(
            c["hint"].is_string(),
            "{}: a failure says how to fix it: {c:#}",
            g.what
        );
    }
    // Every check of the catalogue has a gap that makes its hook fail (dns-scope has its own
    // violation case below).
    let mut covered: Vec<&str> = gaps.iter().map(|g| g.check).collect();
    covered.push("dns-scope");
    covered.sort_unstable();
    covered.dedup();
    let mut all = preflight_core::checks::ids();
    all.sort_unstable();
    assert_eq!(covered, all);
}

/// ExternalDNS writing into a build subdomain from the persistent cluster: the tier-1.5 gate,
/// the first after ExternalDNS runs, fails with the record named.
#[tokio::test(flavor = "multi_thread")]
async fn the_dns_scope_guard_fails_the_first_gate_after_external_dns() {
    let world = World::start().await;
    let zone = world.moto.create_zone("scope-case.io", false).await;
    let records = external_dns_records(
        "grafana.b-26-01-23-01.dev.scope-case.io",
        "goldenpath-dev",
        "ingress/monitoring/grafana",
        true,
    );
    world.moto.add_records(&zone, &records).await;
    let cluster = cluster_at(Backend::Fake, Stage::Tier1, &values("dev", "scope-case.io")).await;
    let run = run_hook(
        &world,
        &cluster,
        "tier-1-5",
        &world.config("goldenpath"),
        false,
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    let c = run.check("dns-scope");
    assert_eq!(c["code"], "dns-scope-violated", "{c:#}");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("grafana.b-26-01-23-01.dev.scope-case.io"),
        "{c:#}"
    );
}
