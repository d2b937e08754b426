//! The Keycloak realm against a fake Keycloak over real HTTPS: the realm served, and each
//! failure a platform meets (no realm, the legacy /auth prefix, an untrusted certificate, a
//! login page in front, a 5xx, a malformed document, no signing key, a wrong issuer), plus the
//! client-credentials grant with its secret from a Secret, never shown.

mod support;

use fake_kube::FakeKeycloak;
use fake_kube::keycloak::Client;
use serde_json::json;
use support::platform::PERSISTENT_VALUES;
use support::*;

/// The client secret: no output may contain it.
const CLIENT_SECRET: &str = "canary-kc-client-secret-91d2";

/// A change to what the fake Keycloak serves.
type Change = Box<dyn Fn(&mut fake_kube::keycloak::Realms)>;

struct Realm {
    cluster: Cluster,
    keycloak: FakeKeycloak,
}

impl Realm {
    async fn start() -> Realm {
        let cluster = Cluster::empty().await;
        cluster.write("values.yaml", PERSISTENT_VALUES);
        let keycloak = FakeKeycloak::start()
            .await
            .expect("the fake Keycloak starts");
        cluster.write("keycloak-ca.pem", keycloak.ca_pem());
        Realm { cluster, keycloak }
    }

    /// Registers the confidential client `backstage` with its secret.
    fn set_client(&self, secret: &str, service_accounts: bool) {
        self.keycloak.update(|r| {
            r.clients.insert(
                "backstage".into(),
                Client {
                    secret: secret.into(),
                    service_accounts,
                },
            );
        });
    }

    /// `--tier 3 --check keycloak-realm` with `extra` lines under `checks.keycloak-realm`.
    async fn run(&self, extra: &str, args: &[&str]) -> Run {
        let settings = format!(
            "checks:\n  keycloak-realm:\n    url: {}\n    caBundle: {}\n{extra}",
            self.keycloak.url(),
            self.cluster.path("keycloak-ca.pem").display()
        );
        let config = self
            .cluster
            .write("preflight.yaml", &settings)
            .display()
            .to_string();
        let mut all = vec![
            "--app",
            "oidc-config",
            "--check",
            "keycloak-realm",
            "--no-cluster-values",
            "--config",
            &config,
        ];
        all.extend_from_slice(args);
        if !args.contains(&"--output") {
            all.extend(["--output", "json"]);
        }
        run(self.cluster.preflight(&all)).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_realm_is_served_with_a_signing_key() {
    let realm = Realm::start().await;
    let run = realm.run("", &[]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_check(&run, "keycloak-realm", "pass", "keycloak-realm-served");
    let check = run.check("keycloak-realm");
    assert_eq!(
        check["evidence"]["issuer"],
        format!("{}/realms/goldenpath", realm.keycloak.url())
    );
}

/// Each failure, produced by the fake answering as a real deployment would.
#[tokio::test(flavor = "multi_thread")]
async fn each_failure_is_named_with_a_hint() {
    let realm = Realm::start().await;
    let cases: Vec<(&str, Change, &str, &str)> = vec![
        (
            "no realm",
            Box::new(|r| r.realms.clear()),
            "keycloak-realm-missing",
            "realm \"goldenpath\" does not exist (404 at",
        ),
        (
            "Keycloak < 17",
            Box::new(|r| r.legacy = true),
            "keycloak-legacy-path",
            "/auth/realms/goldenpath/.well-known/openid-configuration",
        ),
        (
            "login page",
            Box::new(|r| {
                r.redirect_to =
                    Some("https://sso.goldenpathidp.io/oauth2/start?rd=%2Frealms".into())
            }),
            "keycloak-redirected",
            "redirects (302) to https://sso.goldenpathidp.io/oauth2/start",
        ),
        (
            "5xx",
            Box::new(|r| r.discovery_override = Some((503, "no healthy upstream".into()))),
            "keycloak-server-error",
            "answered 503: no healthy upstream",
        ),
        (
            "malformed",
            Box::new(|r| r.discovery_override = Some((200, "{\"issuer\": [\"a\"]".into()))),
            "keycloak-discovery-malformed",
            "is not an OIDC discovery document",
        ),
        (
            "no keys",
            Box::new(|r| r.keys.clear()),
            "keycloak-jwks-empty",
            "has 0 key(s), none for signatures",
        ),
        (
            "encryption keys only",
            Box::new(|r| r.keys.retain(|k| k["use"] == "enc")),
            "keycloak-jwks-empty",
            "has 1 key(s), none for signatures",
        ),
        (
            "wrong hostname",
            Box::new(|r| r.issuer_base = Some("http://keycloak.keycloak.svc:8080".into())),
            "keycloak-issuer-mismatch",
            "names issuer \"http://keycloak.keycloak.svc:8080/realms/goldenpath\"",
        ),
    ];
    for (name, change, code, needle) in cases {
        realm
            .keycloak
            .update(|r| *r = fake_kube::keycloak::Realms::default());
        realm.keycloak.update(|r| change(r));
        let run = realm.run("", &[]).await;
        assert_eq!(run.code, 1, "{name}: {}\n{}", run.stdout, run.stderr);
        assert_check(&run, "keycloak-realm", "fail", code);
        let check = run.check("keycloak-realm");
        assert!(
            check["message"].as_str().unwrap().contains(needle),
            "{name}: {needle:?} in {check:#}"
        );
        assert!(check["hint"].is_string(), "{name}: a hint: {check:#}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_certificate_is_a_tls_failure_and_a_bad_bundle_a_usage_error() {
    let realm = Realm::start().await;
    let other = FakeKeycloak::start()
        .await
        .expect("the fake Keycloak starts");
    realm.cluster.write("keycloak-ca.pem", other.ca_pem());
    let run = realm.run("", &[]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_check(&run, "keycloak-realm", "fail", "keycloak-tls");
    assert!(
        run.check("keycloak-realm")["hint"]
            .as_str()
            .unwrap()
            .contains("caBundle")
    );

    realm
        .cluster
        .write("keycloak-ca.pem", "not a certificate\n");
    let bad = realm.run("", &[]).await;
    assert_eq!(bad.code, 2, "{}\n{}", bad.stdout, bad.stderr);
    assert!(
        bad.stderr.contains("keycloak-ca.pem") && bad.stderr.contains("PEM"),
        "{}",
        bad.stderr
    );
    std::fs::remove_file(realm.cluster.path("keycloak-ca.pem")).unwrap();
    let gone = realm.run("", &[]).await;
    assert_eq!(gone.code, 2);
    assert!(
        gone.stderr.contains("cannot read the CA bundle"),
        "{}",
        gone.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_connection_is_a_clear_failure() {
    let realm = Realm::start().await;
    let closed = closed_addr();
    let settings = format!("checks:\n  keycloak-realm:\n    url: https://{closed}\n");
    let config = realm
        .cluster
        .write("closed.yaml", &settings)
        .display()
        .to_string();
    let refused = support::run(realm.cluster.preflight(&[
        "--app",
        "oidc-config",
        "--check",
        "keycloak-realm",
        "--no-cluster-values",
        "--config",
        &config,
        "--output",
        "json",
    ]))
    .await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert_check(&refused, "keycloak-realm", "fail", "keycloak-unreachable");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_credentials_grant_uses_the_secret_without_showing_it() {
    let realm = Realm::start().await;
    realm
        .cluster
        .kube
        .apply(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "backstage-oidc", "namespace": "backstage"},
            "data": {"client-secret": b64(CLIENT_SECRET)}
        }))
        .unwrap();
    let grant = "    clientCredentials: {clientId: backstage, secret: backstage/backstage-oidc}\n";
    realm.set_client(CLIENT_SECRET, true);
    let json_path = realm.cluster.path("report.json").display().to_string();
    let junit_path = realm.cluster.path("report.xml").display().to_string();
    let ok = realm
        .run(
            grant,
            &[
                "--output",
                "human",
                "--output",
                &format!("json={json_path}"),
                "--output",
                &format!("junit={junit_path}"),
                "--output",
                "github",
            ],
        )
        .await;
    assert_eq!(ok.code, 0, "{}\n{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.contains("keycloak-realm"), "{}", ok.stdout);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "keycloak-realm")
        .unwrap()
        .clone();
    assert_eq!(
        check["evidence"]["token"],
        "client backstage obtained a Bearer token"
    );

    realm.set_client("rotated", true);
    let rejected = realm.run(grant, &[]).await;
    assert_check(
        &rejected,
        "keycloak-realm",
        "fail",
        "keycloak-client-rejected",
    );
    assert!(
        rejected.check("keycloak-realm")["message"]
            .as_str()
            .unwrap()
            .ends_with("(401): unauthorized_client: Invalid client or Invalid client credentials")
    );

    realm.set_client(CLIENT_SECRET, false);
    let disabled = realm.run(grant, &[]).await;
    assert_check(
        &disabled,
        "keycloak-realm",
        "fail",
        "keycloak-client-rejected",
    );
    assert!(
        disabled.check("keycloak-realm")["hint"]
            .as_str()
            .unwrap()
            .contains("Service accounts")
    );

    // A token endpoint announced over plain HTTP gets no secret.
    realm.set_client(CLIENT_SECRET, true);
    realm
        .keycloak
        .update(|r| r.token_base = Some("http://127.0.0.1:9".into()));
    let plaintext = realm.run(grant, &[]).await;
    assert_check(
        &plaintext,
        "keycloak-realm",
        "fail",
        "keycloak-token-endpoint-untrusted",
    );
    realm.keycloak.update(|r| r.token_base = None);

    let missing = realm
        .run(&grant.replace("backstage-oidc", "nope"), &[])
        .await;
    assert_check(
        &missing,
        "keycloak-realm",
        "fail",
        "keycloak-client-secret-missing",
    );

    let encoded = b64(CLIENT_SECRET);
    for (name, text) in [
        ("stdout", ok.stdout.clone()),
        ("stderr", ok.stderr.clone()),
        ("json", std::fs::read_to_string(&json_path).unwrap()),
        ("junit", std::fs::read_to_string(&junit_path).unwrap()),
        (
            "rejected",
            format!("{}{}", rejected.stdout, rejected.stderr),
        ),
        (
            "disabled",
            format!("{}{}", disabled.stdout, disabled.stderr),
        ),
    ] {
        assert!(
            !text.contains(CLIENT_SECRET)
                && !text.contains(&encoded)
                && !text.contains("fake.token"),
            "{name} shows a secret:\n{text}"
        );
    }
}

/// The system's CAs as preflight has OpenSSL read them when the system keeps them hashed (what
/// `update-ca-certificates` lays out): one file at a time, found by the subject's hash when a
/// chain needs it, with `SSL_CERT_FILE` empty and `SSL_CERT_DIR` naming the directory. Here the
/// directory is a test's, given by those same variables, holding Keycloak's CA.
#[tokio::test(flavor = "multi_thread")]
async fn a_ca_found_in_a_hashed_directory_is_trusted_without_a_bundle() {
    let realm = Realm::start().await;
    let certs = realm.cluster.path("certs");
    std::fs::create_dir(&certs).unwrap();
    let ca = realm.cluster.path("keycloak-ca.pem");
    let hash = std::process::Command::new("openssl")
        .args(["x509", "-hash", "-noout", "-in"])
        .arg(&ca)
        .output()
        .unwrap();
    assert!(hash.status.success());
    let link = certs.join(format!(
        "{}.0",
        String::from_utf8(hash.stdout).unwrap().trim()
    ));
    std::fs::copy(&ca, &link).unwrap();
    let config = realm.cluster.write(
        "system-trust.yaml",
        &format!(
            "checks:\n  keycloak-realm:\n    url: {}\n",
            realm.keycloak.url()
        ),
    );
    let run_with_system_trust = || {
        let mut cmd = realm.cluster.preflight(&[
            "--app",
            "oidc-config",
            "--check",
            "keycloak-realm",
            "--no-cluster-values",
            "--config",
            config.to_str().unwrap(),
            "--output",
            "json",
        ]);
        cmd.env("SSL_CERT_FILE", "/dev/null")
            .env("SSL_CERT_DIR", &certs);
        run(cmd)
    };
    let trusted = run_with_system_trust().await;
    assert_eq!(trusted.code, 0, "{}\n{}", trusted.stdout, trusted.stderr);
    assert_check(&trusted, "keycloak-realm", "pass", "keycloak-realm-served");
    // Without it in the directory, the same server is untrusted: the directory was read.
    std::fs::remove_file(&link).unwrap();
    let untrusted = run_with_system_trust().await;
    assert_eq!(untrusted.code, 1, "{}", untrusted.stderr);
    assert_check(&untrusted, "keycloak-realm", "fail", "keycloak-tls");
}
