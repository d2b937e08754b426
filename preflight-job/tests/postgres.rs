//! The postgres check against a real PostgreSQL 15 with TLS. In Backstage's own hook: a login
//! with the app's own credentials from the synced Secret, every failure produced for real. At
//! tier 2's gate: the credentials from the app's remote secret in Secrets Manager (moto), the
//! RDS endpoint when nothing names a host. From CI: flags and a password variable. No secret in
//! any output.

mod support;

use std::time::Duration;

use serde_json::json;
use support::moto::Moto;
use support::pg::{CANARY, GRAFANA_PASSWORD, TestPostgres, cluster_for, config};
use support::*;

/// A cluster where Backstage's ExternalSecret has synced its Secret: a persistent one, since
/// Backstage is tier 2.
async fn backstage_cluster(pg: &TestPostgres) -> Cluster {
    let cluster = cluster_for(pg).await;
    cluster.write("values.yaml", support::platform::PERSISTENT_VALUES);
    cluster
}

/// Both test databases in Backstage's hook, as if both were Backstage's, so that one run logs
/// in to several.
fn as_backstages(cfg: &str) -> String {
    let text = std::fs::read_to_string(cfg)
        .expect("the config was written")
        .replace("app: grafana-postgresql", "app: backstage");
    std::fs::write(cfg, text).expect("the config is writable");
    cfg.to_owned()
}

/// Backstage's own hook: its ExternalSecret and its login with the synced credentials.
async fn tier2(cluster: &Cluster, config: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "--app",
        "backstage",
        "--check",
        "external-secrets",
        "--check",
        "postgres",
        "--config",
        config,
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    run(cluster.preflight(&args)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn both_apps_log_in_over_tls_with_their_own_credentials() {
    let pg = TestPostgres::start();
    let cluster = backstage_cluster(&pg).await;
    let cfg = as_backstages(&config(&cluster, &pg, "checkPlaintextRefused: true", true));
    let run = tier2(&cluster, &cfg, &[]).await;
    assert_eq!(run.code, 0, "{}\n{}\n{}", run.stdout, run.stderr, pg.log());
    for c in run.report()["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "pass", "{c:#}");
    }
    let message = run.check("postgres")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.starts_with(&format!("backstage: logged in to backstage on 127.0.0.1:{} as backstage over TLSv1.3; PostgreSQL 15.", pg.port)),
        "{message}"
    );
    assert!(
        message.contains("CREATEDB granted; plaintext refused; backstage: logged in to grafana"),
        "{message}"
    );
    assert!(pg.log().contains("connection authorized: user=backstage database=backstage application_name=preflight SSL enabled"), "{}", pg.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_login_failure_is_produced_for_real() {
    let pg = TestPostgres::start();
    let cluster = backstage_cluster(&pg).await;
    let closed = closed_addr().port();
    // Accepts TCP (the kernel does) but never answers: a blackholed database.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let bad_bundle = cluster.write(
        "bad-bundle.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    );
    let cases: Vec<(String, &[&str], i32, &str, &str)> = vec![
        (
            "database: nope\nrequireCreatedb: false".into(),
            &[],
            1,
            "fail",
            "database-missing",
        ),
        // An app that creates its own databases (Backstage's backstage_plugin_*) has not
        // created this one yet: its role may, so the app will.
        (
            "database: backstage_plugin_catalog".into(),
            &[],
            0,
            "pass",
            "postgres-login",
        ),
        (
            format!("caBundle: {}", pg.other_ca().display()),
            &[],
            1,
            "fail",
            "certificate-untrusted",
        ),
        (
            "host: 127.0.0.2".into(),
            &[],
            1,
            "fail",
            "certificate-mismatch",
        ),
        (
            "host: 127.0.0.2\nsslMode: verify-ca".into(),
            &[],
            0,
            "pass",
            "postgres-login",
        ),
        (
            "sslMode: require".into(),
            &[],
            0,
            "warn",
            "tls-not-verified",
        ),
        (
            format!("port: {closed}"),
            &[],
            1,
            "fail",
            "database-unreachable",
        ),
        (
            "database: locked".into(),
            &[],
            1,
            "fail",
            "missing-privilege",
        ),
        ("user: blocked".into(), &[], 1, "fail", "pg-hba-rejected"),
        (
            "host: db.does-not-exist.invalid".into(),
            &["--attempt-timeout", "5s"],
            1,
            "fail",
            "host-unresolvable",
        ),
        (
            format!("port: {silent_port}"),
            &["--attempt-timeout", "1s"],
            1,
            "fail",
            "timed-out",
        ),
    ];
    for (extra, flags, code, status, outcome) in cases {
        let cfg = config(&cluster, &pg, &extra, false);
        let run = tier2(&cluster, &cfg, flags).await;
        assert_eq!(run.code, code, "{extra}: {}\n{}", run.stdout, run.stderr);
        assert_check(&run, "postgres", status, outcome);
        assert!(
            run.check("postgres")["hint"].is_string() || status == "pass",
            "{outcome} has a hint"
        );
    }
    drop(silent);

    // A bundle that cannot be used is no login failure but a configuration error, found
    // before any check runs, as for every check that trusts a bundle.
    for (bundle, problem) in [
        (
            bad_bundle.clone(),
            "has a malformed certificate 1 at line 1: its body is not base64",
        ),
        (cluster.path("nowhere.pem"), "cannot read the CA bundle"),
    ] {
        let cfg = config(
            &cluster,
            &pg,
            &format!("caBundle: {}", bundle.display()),
            false,
        );
        let run = tier2(&cluster, &cfg, &[]).await;
        assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr
                .contains("checks.postgres.databases[0].caBundle: ")
                && run.stderr.contains(&bundle.display().to_string())
                && run.stderr.contains(problem),
            "{}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "nothing checked: {}", run.stdout);
    }

    let cfg = config(&cluster, &pg, "", false);
    assert_eq!(
        pg.psql("ALTER ROLE backstage NOCREATEDB").status.code(),
        Some(0)
    );
    let run1 = tier2(&cluster, &cfg, &[]).await;
    assert_check(&run1, "postgres", "fail", "missing-createdb");
    assert!(
        run1.check("postgres")["hint"]
            .as_str()
            .unwrap()
            .contains("ALTER ROLE backstage CREATEDB")
    );
    assert_eq!(
        pg.psql("ALTER ROLE backstage CREATEDB").status.code(),
        Some(0)
    );

    // A wrong password is permanent: no retries until the deadline.
    cluster.set_secret_key(
        "backstage",
        "backstage-postgres",
        "POSTGRES_PASSWORD",
        "wrong",
    );
    let run2 = tier2(&cluster, &cfg, &["--wait", "30s"]).await;
    assert_eq!(run2.code, 1);
    assert_check(&run2, "postgres", "fail", "wrong-password");
    assert_eq!(run2.check("postgres")["attempts"], 1);
    assert!(run2.elapsed < Duration::from_secs(10), "{:?}", run2.elapsed);

    // Bad Secret contents: a clear failure naming keys, never values.
    for (key, value, want) in [
        ("POSTGRES_PORT", Some("five-four-three-two"), "bad-port"),
        ("POSTGRES_PASSWORD", Some(""), "empty-password"),
        ("POSTGRES_USER", None, "credentials-incomplete"),
    ] {
        let cluster = backstage_cluster(&pg).await;
        cluster
            .kube
            .update(
                "v1",
                "Secret",
                Some("backstage"),
                "backstage-postgres",
                |s| match value {
                    Some(v) => s["data"][key] = json!(b64(v)),
                    None => {
                        s["data"].as_object_mut().unwrap().remove(key);
                    }
                },
            )
            .unwrap();
        let cfg = config(&cluster, &pg, "", false);
        let run = run(cluster.preflight(&[
            "--app",
            "backstage",
            "--check",
            "postgres",
            "--config",
            &cfg,
            "--output",
            "json",
        ]))
        .await;
        assert_eq!(run.code, 1, "{key}: {}", run.stdout);
        assert_check(&run, "postgres", "fail", want);
        assert!(
            !run.stdout.contains("five-four"),
            "the bad value is not echoed"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_waits_for_its_synced_secret_and_is_blocked_when_it_fails() {
    let pg = TestPostgres::start();
    let cluster = backstage_cluster(&pg).await;
    let cfg = config(&cluster, &pg, "", false);
    cluster
        .kube
        .update("external-secrets.io/v1", "ExternalSecret", Some("backstage"), "backstage-postgres", |es| {
            es["status"]["conditions"] = json!([{"type": "Ready", "status": "False", "reason": "SecretSyncedError", "message": "could not get secret data from provider"}]);
        })
        .unwrap();
    let run = tier2(&cluster, &cfg, &[]).await;
    assert_eq!(run.code, 1);
    let pgc = run.check("postgres");
    assert_eq!(
        (pgc["status"].as_str(), pgc["blockedBy"].as_str()),
        (Some("skip"), Some("external-secrets")),
        "{pgc:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_output_format_ever_shows_a_password() {
    let pg = TestPostgres::start();
    let cluster = backstage_cluster(&pg).await;
    let cfg = as_backstages(&config(&cluster, &pg, "", true));
    // One database fails (its password is wrong), one passes: both paths are printed.
    cluster
        .kube
        .update("v1", "Secret", Some("monitoring"), "grafana-db", |s| {
            s["data"]["password"] = json!(b64(&format!("{CANARY}-wrong")))
        })
        .unwrap();
    let (json_path, junit_path, summary, termination, human_path) = (
        cluster.path("r.json"),
        cluster.path("r.xml"),
        cluster.path("summary.md"),
        cluster.path("termination"),
        cluster.path("r.txt"),
    );
    let mut cmd = cluster.preflight(&[
        "--app",
        "backstage",
        "--config",
        &cfg,
        "--output",
        "human",
        "--output",
        &format!("human={}", human_path.display()),
        "--output",
        &format!("json={}", json_path.display()),
        "--output",
        &format!("junit={}", junit_path.display()),
        "--output",
        "github",
        "--termination-message-path",
        termination.to_str().unwrap(),
    ]);
    cmd.env("GITHUB_STEP_SUMMARY", &summary)
        .env("PREFLIGHT_LOG", "trace");
    let run = run(cmd).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains("wrong-password")
            || std::fs::read_to_string(&json_path)
                .unwrap()
                .contains("wrong-password")
    );
    let encoded = b64(CANARY);
    let mut everything = vec![run.stdout.clone(), run.stderr.clone()];
    for path in [&json_path, &junit_path, &summary, &termination, &human_path] {
        everything.push(std::fs::read_to_string(path).unwrap());
    }
    for (i, text) in everything.iter().enumerate() {
        assert!(
            !text.contains(CANARY) && !text.contains(&encoded) && !text.contains(GRAFANA_PASSWORD),
            "output {i} shows a password:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ci_runs_log_in_from_flags_and_the_password_variable_without_a_cluster() {
    let pg = TestPostgres::start();
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(&values, EPHEMERAL_VALUES).unwrap();
    let login = |password: &str| {
        let mut cmd = support::pg::login_cmd(&pg, &values, password, "json");
        cmd.env("KUBECONFIG", dir.path().join("no-cluster-here"))
            .env("HOME", dir.path());
        cmd
    };
    let ok = run(login(CANARY)).await;
    assert_eq!(ok.code, 0, "{}\n{}", ok.stdout, ok.stderr);
    assert!(
        ok.check("postgres")["message"]
            .as_str()
            .unwrap()
            .contains("CREATEDB granted")
    );
    let wrong = run(login("not-it")).await;
    assert_eq!(wrong.code, 1);
    assert_check(&wrong, "postgres", "fail", "wrong-password");
    let empty = run(login("")).await;
    assert_check(&empty, "postgres", "fail", "empty-password");
}

/// Backstage's remote secret, as Terraform writes it.
const REMOTE: &str = "goldenpath/dev/backstage/postgres";

/// Tier 2's gate on a persistent cluster, its checks of what Terraform provides for the
/// database: the RDS instance, Backstage's remote secret, and the login with its credentials.
async fn gate(cluster: &Cluster, moto: &Moto, config: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "--tier",
        "2",
        "--check",
        "rds-instance",
        "--check",
        "secrets-manager",
        "--check",
        "postgres",
        "--config",
        config,
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    let mut cmd = cluster.preflight_aws(moto, &args);
    cmd.env("PREFLIGHT_LOG", "trace");
    let run = run(cmd).await;
    for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(
            !text.contains(CANARY)
                && !text.contains(&b64(CANARY))
                && !text.contains(GRAFANA_PASSWORD),
            "{name} shows a password:\n{text}"
        );
    }
    run
}

/// A remote secret's JSON: the login, and the host only when given.
fn remote_login(pg: &TestPostgres, user: &str, password: &str, host: Option<&str>) -> String {
    let mut login =
        json!({"username": user, "password": password, "port": pg.port, "engine": "postgres"});
    if let Some(host) = host {
        login["host"] = json!(host);
    }
    login.to_string()
}

/// Replaces the remote secret's value (Terraform rotating it).
async fn put_remote(moto: &Moto, json: &str) {
    moto.secrets_manager()
        .await
        .put_secret_value()
        .secret_id(REMOTE)
        .secret_string(json)
        .send()
        .await
        .expect("moto takes the new value");
}

#[tokio::test(flavor = "multi_thread")]
async fn at_the_gate_the_login_comes_from_the_remote_secret_in_secrets_manager() {
    let pg = TestPostgres::start();
    let moto = Moto::start();
    let endpoint = moto.create_instance("goldenpath-dev", "postgres").await;
    let cluster = backstage_cluster(&pg).await;
    // The synced Secret is not read at the gate (Backstage does not exist yet): a wrong
    // password in it changes nothing.
    cluster.set_secret_key(
        "backstage",
        "backstage-postgres",
        "POSTGRES_PASSWORD",
        "not-read-at-the-gate",
    );
    let cfg = config(&cluster, &pg, "", false);

    // No remote secret: secrets-manager fails, and the login it would give is blocked by it.
    let missing = gate(&cluster, &moto, &cfg, &[]).await;
    assert_eq!(missing.code, 1, "{}", missing.stdout);
    assert_check(&missing, "rds-instance", "pass", "rds-available");
    assert_check(&missing, "secrets-manager", "fail", "remote-secret-missing");
    assert!(
        missing.check("secrets-manager")["message"]
            .as_str()
            .unwrap()
            .contains(REMOTE),
        "{}",
        missing.check("secrets-manager")
    );
    let blocked = missing.check("postgres");
    assert_eq!(
        (blocked["status"].as_str(), blocked["blockedBy"].as_str()),
        (Some("skip"), Some("secrets-manager")),
        "{blocked:#}"
    );

    // Terraform wrote it: the login uses its username, password, host and port.
    moto.create_secret(
        REMOTE,
        &remote_login(&pg, "backstage", CANARY, Some("127.0.0.1")),
    )
    .await;
    let ok = gate(&cluster, &moto, &cfg, &[]).await;
    assert_eq!(ok.code, 0, "{}\n{}\n{}", ok.stdout, ok.stderr, pg.log());
    for id in ["rds-instance", "secrets-manager", "postgres"] {
        assert_eq!(ok.check(id)["status"], "pass", "{:#}", ok.check(id));
    }
    let message = ok.check("postgres")["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with(&format!(
            "backstage: logged in to backstage on 127.0.0.1:{} as backstage over TLS",
            pg.port
        )),
        "{message}"
    );
    assert!(
        pg.log()
            .contains("connection authorized: user=backstage database=backstage"),
        "{}",
        pg.log()
    );

    // Backstage's catalog database, not created yet: the role has CREATEDB, so Backstage will.
    let catalog = config(&cluster, &pg, "database: backstage_plugin_catalog", false);
    let not_yet = gate(&cluster, &moto, &catalog, &[]).await;
    assert_eq!(not_yet.code, 0, "{}", not_yet.stdout);
    assert_check(&not_yet, "postgres", "pass", "postgres-login");
    let message = not_yet.check("postgres")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains(
            "database backstage_plugin_catalog does not exist yet, and the role has CREATEDB, so backstage creates it"
        ),
        "{message}"
    );

    // A remote secret whose role may not create it: missing for good.
    put_remote(
        &moto,
        &remote_login(&pg, "grafana", GRAFANA_PASSWORD, Some("127.0.0.1")),
    )
    .await;
    let uncreatable = gate(&cluster, &moto, &catalog, &[]).await;
    assert_eq!(uncreatable.code, 1, "{}", uncreatable.stdout);
    assert_check(&uncreatable, "postgres", "fail", "database-missing");
    assert!(
        uncreatable.check("postgres")["message"]
            .as_str()
            .unwrap()
            .contains("role grafana may not create it (no CREATEDB)"),
        "{}",
        uncreatable.check("postgres")
    );

    // A wrong password in the remote secret: permanent, not retried, never shown.
    put_remote(
        &moto,
        &remote_login(
            &pg,
            "backstage",
            &format!("{CANARY}-rotated"),
            Some("127.0.0.1"),
        ),
    )
    .await;
    let wrong = gate(&cluster, &moto, &cfg, &["--wait", "30s"]).await;
    assert_eq!(wrong.code, 1, "{}", wrong.stdout);
    assert_check(&wrong, "secrets-manager", "pass", "remote-secrets-present");
    assert_check(&wrong, "postgres", "fail", "wrong-password");
    assert_eq!(wrong.check("postgres")["attempts"], 1);
    assert!(
        wrong.elapsed < Duration::from_secs(10),
        "{:?}",
        wrong.elapsed
    );

    // Neither the remote secret nor the config names a host: the RDS instance's endpoint is
    // the host (moto's does not resolve).
    put_remote(&moto, &remote_login(&pg, "backstage", CANARY, None)).await;
    let rds = gate(&cluster, &moto, &cfg, &["--attempt-timeout", "5s"]).await;
    assert_eq!(rds.code, 1, "{}", rds.stdout);
    assert_check(&rds, "postgres", "fail", "host-unresolvable");
    assert!(
        rds.check("postgres")["message"]
            .as_str()
            .unwrap()
            .contains(&endpoint),
        "the login goes to {endpoint}: {}",
        rds.check("postgres")
    );
}
