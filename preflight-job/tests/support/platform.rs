//! A whole platform for full-tier runs: the fake cluster, a real PostgreSQL with TLS, moto
//! with the RDS instance and the hosted zone ExternalDNS writes to, and (for a persistent
//! cluster) a fake Keycloak over HTTPS. Everything stops when dropped.

use fake_kube::FakeKeycloak;

use super::Cluster;
use super::moto::{Moto, external_dns_records};
use super::pg::{CANARY, GRAFANA_PASSWORD, KEYCLOAK_PASSWORD, TestPostgres, cluster_for, config};

/// Values of a persistent cluster: ceiling 3, hostnames under `dev.goldenpathidp.io`.
pub(crate) const PERSISTENT_VALUES: &str =
    "bootstrap:\n  mode: persistent\n  env: dev\nplatform:\n  rdsAvailable: true\n";

/// The build of the ephemeral values ([`super::EPHEMERAL_VALUES`]).
pub(crate) const BUILD_SUFFIX: &str = "b-26-01-23-01.dev.goldenpathidp.io";
/// Its ExternalDNS owner id.
pub(crate) const BUILD_OWNER: &str = "goldenpath-dev-26-01-23-01";
/// The persistent cluster's owner id.
pub(crate) const PERSISTENT_OWNER: &str = "goldenpath-dev";

/// The running platform.
pub(crate) struct Platform {
    pub(crate) cluster: Cluster,
    pub(crate) pg: TestPostgres,
    pub(crate) moto: Moto,
    pub(crate) keycloak: Option<FakeKeycloak>,
    pub(crate) zone: String,
    /// The settings file every run uses.
    pub(crate) config: String,
}

/// The hosted zone as both clusters' ExternalDNS leave it: each owner's records in its own
/// scope, in the older and the newer TXT formats, an escaped wildcard among them.
pub(crate) async fn seed_zone(moto: &Moto) -> String {
    let zone = moto.create_zone("goldenpathidp.io", false).await;
    let mut records = Vec::new();
    for (host, owner, prefixed) in [
        (format!("backstage.{BUILD_SUFFIX}"), BUILD_OWNER, true),
        (format!("grafana.{BUILD_SUFFIX}"), BUILD_OWNER, false),
        // As Route53 returns a wildcard: `*` escaped as \052 (moto keeps names as written).
        (format!("\\052.{BUILD_SUFFIX}"), BUILD_OWNER, true),
        (
            "keycloak.dev.goldenpathidp.io".to_owned(),
            PERSISTENT_OWNER,
            true,
        ),
        (
            "backstage.dev.goldenpathidp.io".to_owned(),
            PERSISTENT_OWNER,
            false,
        ),
    ] {
        records.extend(external_dns_records(
            &host,
            owner,
            "ingress/platform/app",
            prefixed,
        ));
    }
    moto.add_records(&zone, &records).await;
    zone
}

impl Platform {
    /// Starts everything a run of `values` up to its ceiling needs; a persistent cluster also
    /// gets Keycloak.
    pub(crate) async fn start(values: &str) -> Platform {
        let pg = TestPostgres::start();
        let moto = Moto::start();
        // What Terraform creates: the instance, and each app's remote secret with its login
        // (the test server's address standing in for the endpoint).
        let endpoint = moto.create_instance("goldenpath-dev", "postgres").await;
        for (app, user, password, db) in [
            ("backstage", "backstage", CANARY, "backstage"),
            ("grafana-postgresql", "grafana", GRAFANA_PASSWORD, "grafana"),
            ("keycloak", "keycloak_app", KEYCLOAK_PASSWORD, "keycloak"),
        ] {
            let login = serde_json::json!({"username": user, "password": password, "host": "127.0.0.1", "port": pg.port, "dbname": db, "engine": "postgres"});
            moto.create_secret(
                &format!("goldenpath/dev/{app}/postgres"),
                &login.to_string(),
            )
            .await;
        }
        let zone = seed_zone(&moto).await;
        // What CI pushed: kong's image, for both architectures, in ECR.
        let registry = super::registry::create_repository(&moto, "goldenpath/kong").await;
        super::registry::put_image(
            &moto,
            "goldenpath/kong",
            "3.9.1",
            &super::registry::ImageDocs::multi(&["amd64", "arm64"], true),
        )
        .await;
        // IRSA's roles and Loki's bucket.
        moto.create_irsa("dev", super::moto::irsa_subject).await;
        moto.create_bucket("goldenpath-dev-loki", super::moto::REGION)
            .await;
        let cluster = cluster_for(&pg).await;
        cluster.write("values.yaml", values);
        // Every tier below the ones checked has synced: a whole platform.
        cluster
            .kube
            .update(
                "argoproj.io/v1alpha1",
                "Application",
                Some("argocd"),
                "kube-prometheus-stack",
                |a| {
                    a["status"] = serde_json::json!({"sync": {"status": "Synced"}, "health": {"status": "Healthy"}});
                },
            )
            .unwrap();
        // The Secret names the RDS endpoint, as in production; the login goes to the test
        // server (the config's host).
        cluster.set_secret_key(
            "backstage",
            "backstage-postgres",
            "POSTGRES_HOST",
            &endpoint,
        );
        let mut settings =
            std::fs::read_to_string(config(&cluster, &pg, "host: 127.0.0.1", true)).unwrap();
        // The tiers' images, as the platform lists them for a first sync: one per app (kong's
        // multi-arch image stands in for each).
        settings.push_str("  image-architecture:\n    images:\n");
        for app in preflight_core::platform::app_names() {
            settings.push_str(&format!(
                "    - {{app: {app}, image: \"{registry}/goldenpath/kong:3.9.1\"}}\n"
            ));
        }
        if values.contains("persistent") {
            // The persistent cluster's ExternalDNS: its environment's zone, its owner id.
            cluster
                .kube
                .update(
                    "apps/v1",
                    "Deployment",
                    Some("external-dns"),
                    "external-dns",
                    |d| {
                        for arg in d["spec"]["template"]["spec"]["containers"][0]["args"]
                            .as_array_mut()
                            .unwrap()
                        {
                            let new = match arg.as_str().unwrap() {
                                a if a.starts_with("--txt-owner-id=") => {
                                    format!("--txt-owner-id={PERSISTENT_OWNER}")
                                }
                                a if a.starts_with("--domain-filter=") => {
                                    "--domain-filter=dev.goldenpathidp.io".to_owned()
                                }
                                a => a.to_owned(),
                            };
                            *arg = serde_json::Value::String(new);
                        }
                    },
                )
                .unwrap();
        }
        let keycloak = if values.contains("persistent") {
            let keycloak = FakeKeycloak::start().await.unwrap();
            let ca = cluster.write("keycloak-ca.pem", keycloak.ca_pem());
            settings.push_str(&format!(
                "  keycloak-realm:\n    url: {}\n    caBundle: {}\n",
                keycloak.url(),
                ca.display()
            ));
            Some(keycloak)
        } else {
            None
        };
        let config = cluster
            .write("preflight.yaml", &settings)
            .display()
            .to_string();
        Platform {
            cluster,
            pg,
            moto,
            keycloak,
            zone,
            config,
        }
    }

    /// `preflight` against all of it, with the platform's settings.
    pub(crate) fn preflight(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = self.cluster.preflight_aws(&self.moto, args);
        cmd.args(["--config", &self.config]);
        cmd
    }
}
